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
#include "host/scheduler/stage_helpers.h"
#include "pipelines/image/image.h"

namespace tessera::image {

void register_stages(scheduler::StageRegistry& registry);

// The TrainOptions of a train stage of the image family (image, audio, video): the stage's or
// the run's device, epochs, quiet, and WORK/run as the run directory to resume (the same on
// every attempt, so a rerun after a kill resumes from its last epoch's checkpoint).
TrainOptions train_stage_options(const scheduler::StageContext& ctx,
                                 const scheduler::TrainStageConfig& c);

}  // namespace tessera::image
