#pragma once
// The commands of tessera._core, in plain C++ (no Python here): what the CLI's dispatch
// (pipelines/cli/main.cpp) does for each verb, through the same task registry and the same task
// functions, so that a Python call and a CLI run of the same config and seed give the same files.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "host/core/command_result.h"
#include "host/data/arrow_stream.h"

namespace tessera::python {

using Options = std::map<std::string, std::string>;  // "--epochs" -> "2"; "--quiet" -> ""

// `tessera train CONFIG` with the CLI's options (parsed and checked as the CLI does), and a hook
// called with each epoch's metrics line (false stops after that epoch, its checkpoint written).
// The hook is honoured by every registered task; a task this file does not know (a new one)
// trains through its registered verb, without the hook (Usage error when a hook is given).
// "--seeds" S1,S2,.. trains once per seed and returns the CLI's summary of the repeats
// (host/train/repeats.h: every run's result, each metric's mean, std, min and max).
// `after_step`, when given, is called after every optimizer step of the registered tasks (an
// exception it throws stops training there, the last checkpoint kept: Ctrl-C).
CommandResult train(const std::string& config_path, const Options& options,
                    const std::function<bool(const std::string&)>& on_epoch,
                    const std::function<void()>& after_step = {});

// Any other verb of the CLI: evaluate, predict, generate, perplexity, recommend, export (by the
// model file's task), run, runs, report, config, make-synthetic, prep.
CommandResult command(const std::string& verb, const std::vector<std::string>& positionals,
                      const Options& options);

// The task a config file names, the task a model file was trained by.
std::string task_of_config(const std::string& path);
std::string task_of_model(const std::string& path);

// Every registered task: name, one-line description, the verbs its model files answer.
struct TaskInfo {
  std::string name, about;
  std::vector<std::string> verbs;
};
std::vector<TaskInfo> task_list();

// A behaviour config's rows from Arrow streams (train; validation when given, else the config's
// validation_fraction of train; test when given) as a prepared dataset in `dir`
// (host/data/prepared_writer.h), fitted and encoded as `tessera prep` does the same rows from a
// file; the config's data files are not read. Returns the prep command's summary and --json
// object.
CommandResult prepare_arrow(const std::string& config_path, const std::string& dir,
                            const ArrowStreamFactory& train, const ArrowStreamFactory& validation,
                            const ArrowStreamFactory& test, int64_t shard_rows, bool quiet);

}  // namespace tessera::python
