#pragma once
// The behaviour-prediction pipeline's stage kinds for the host scheduler
// (host/scheduler/scheduler.h), registered under task "behaviour":
//   prep         config {"source": "auto" | "dataset" | "synthetic", "config": BEHAVIOUR_CONFIG,
//                        "synthetic_rows": N, "prepare": false, "shard_rows": 262144}: finds the
//                training config's dataset files locally (never downloads); where they are
//                absent ("auto") or by choice ("synthetic") writes the built-in synthetic dataset
//                and its config into the stage directory. A config that declares
//                data.prepared has its data prepared there (`tessera prep`,
//                docs/prepared-format.md; up to date: a fingerprint check), where training reads
//                it; with "prepare": true a config that declares none is prepared into the stage
//                directory's prepared/. Output "data": data.json {config, test, test_skip_lines,
//                source[, prepared]}.
//   train        config {"epochs": N, "device": D}: behaviour::train into the stage directory
//                with per-epoch checkpoints, resuming an interrupted run. Outputs model, metrics,
//                result, checkpoint, config.
//   evaluate     config {}: the trained model on the prep stage's test file.
//   batch-score  config {"batch_size": N}: streams the test file through the model into
//                scores.csv.
// Each stage's config is validated (unknown keys, types) when the pipeline is planned, before
// any stage runs.
#include <string>

#include "host/core/command_result.h"
#include "host/scheduler/scheduler.h"
#include "host/train/run_options.h"

namespace tessera::behaviour {

void register_stages(scheduler::StageRegistry& registry);

// behaviour::train on the run options every task's train takes (the train stage's and `tessera
// train`'s), with the default test encoding.
CommandResult train_on_run_options(const std::string& config, const train::RunOptions& run);

}  // namespace tessera::behaviour
