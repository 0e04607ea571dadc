#pragma once
// The verbs of the command line other than train, as library functions: the CLI
// (pipelines/cli/main.cpp) and the Python package (python/src/commands.cpp) call the same code, so
// a verb behaves the same from both and a change reaches both.
#include "host/core/command_result.h"
#include "pipelines/task.h"

namespace tessera::cli {

// evaluate, predict, generate, perplexity, recommend, export: the model file's task answers (a
// Usage error naming the verbs it has when it does not).
CommandResult model_command(const CliArgs& a);
// run, runs, report: the scheduler's, with every task's stage kinds.
CommandResult pipeline_command(const CliArgs& a);
// make-synthetic DIR [--layout behaviour|criteo] [--rows N] [--seed N]; criteo also [--size
// BYTES (40G, 512M: instead of --rows)] [--threads N] [--max-table-rows N] [--min-count N]
// (pipelines/behaviour/synthetic_criteo.h); its JSON then has the bytes, seconds and MB/s.
CommandResult synthetic_command(const CliArgs& a);
// prep CONFIG: a behaviour config's data as a prepared dataset (pipelines/behaviour/prep.h).
CommandResult prep_command(const CliArgs& a);
// config TASK --example | --schema: the task's declared config, as text and (schema) compact JSON.
CommandResult config_command(const CliArgs& a);

}  // namespace tessera::cli
