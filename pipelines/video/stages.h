#pragma once
// The video-clip classification pipeline's stage kinds for the host scheduler, task "video"
// (pipelines/video/pipeline.json; register with one call, as host/cli/main.cpp does):
//   prep         config {"config": VIDEO_CONFIG}: validates the config and finds its data on this
//                machine (generated clips: the four Fashion-MNIST IDX files; a folder: every file
//                under it; their fingerprints go into the stage key). A generated config's test
//                clips -- the very clips training tests on -- are written as
//                test/<class>/<i>.tclip (u8, lossless for these pixels); a folder config's test
//                folder is its "test_dir" (none: the later stages name their data). Output
//                "data": data.json {config, clips, test}.
//   train        config {"epochs": N, "device": D}: video::train into <stage>/run, resuming an
//                interrupted attempt from its last epoch. Outputs model, metrics, result,
//                checkpoint, config.
//   evaluate     config {"data": FOLDER} (default: the prep stage's test folder): accuracy,
//                macro-F1, per-class figures and the confusion matrix.
//   batch-score  config {"input": FOLDER} (default: the prep stage's test folder):
//                video::batch_predict into predictions.tsv (the deploy step of this task).
#include "host/scheduler/scheduler.h"

namespace tessera::video {

void register_stages(scheduler::StageRegistry& registry);

}  // namespace tessera::video
