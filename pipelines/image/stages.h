#pragma once
// The image-classification pipeline's stage kinds for the host scheduler, task "image"
// (pipelines/image/pipeline.json; register with one call, as host/cli/main.cpp does):
//   prep      config {"config": IMAGE_CONFIG}: validates the training config and finds its data
//             on this machine (the data files' fingerprints go into the stage key).
//             Output "data": data.json {config, test_images, test_labels}.
//   train     config {"epochs": N, "device": D}: image::train into <stage>/run. Outputs model,
//             metrics, result (test accuracy, per-class accuracy, confusion matrix), config.
//   evaluate  config {"images": PATH, "labels": PATH} (default: the config's IDX test pair):
//             the trained model on a labelled set; the result carries the confusion matrix.
#include "host/scheduler/scheduler.h"

namespace tessera::image {

void register_stages(scheduler::StageRegistry& registry);

}  // namespace tessera::image
