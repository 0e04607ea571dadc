#pragma once
// The audio-classification pipeline's stage kinds for the host scheduler, task "audio"
// (pipelines/audio/pipeline.json; register with one call, as host/cli/main.cpp does):
//   prep      config {"config": AUDIO_CONFIG}: validates the config and finds the recordings it
//             selects on this machine (their fingerprints go into the stage key; never
//             downloads). Output "data": data.json {config, recordings, test}, where test is
//             "DATASET:test" for a registered dataset.
//   train     config {"epochs": N, "device": D}: audio::train into <stage>/run. Outputs model,
//             metrics, result, config.
//   evaluate  config {"data": "NAME" | "NAME:test" | "NAME:train" | FOLDER} (default: the prep
//             stage's test split): accuracy, per-class accuracy and the confusion matrix.
#include "host/scheduler/scheduler.h"

namespace tessera::audio {

void register_stages(scheduler::StageRegistry& registry);

}  // namespace tessera::audio
