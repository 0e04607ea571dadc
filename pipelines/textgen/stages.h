#pragma once
// The text-generation pipeline's stage kinds for the host scheduler, task "textgen"
// (pipelines/textgen/pipeline.json; register with one call, as host/cli/main.cpp does):
//   prep         config {"config": TEXTGEN_CONFIG}: finds the config's text on this machine and
//                writes its validation part (the last data.validation_fraction of the file, cut
//                at a line start) to validation.txt. Outputs "data" (data.json), "validation".
//   train        config {"epochs": N, "time_budget_s": S, "device": D}: textgen::train into
//                <stage>/run. Outputs model, metrics, result, config.
//   evaluate     config {}: perplexity and nats/char of the model on validation.txt.
//   batch-score  config {"prompts": [..], "length": N, "temperature": T, "top_k": K, "seed": S}:
//                one generated sample per prompt into samples.txt (the deploy step of this task).
#include "host/scheduler/scheduler.h"

namespace tessera::textgen {

void register_stages(scheduler::StageRegistry& registry);

}  // namespace tessera::textgen
