#pragma once
// The text-classification pipeline's stage kinds for the host scheduler, task "textclass"
// (pipelines/textclass/pipeline.json; register with one call, as host/cli/main.cpp does):
//   prep         config {"config": TEXTCLASS_CONFIG}: validates the config, finds its files on
//                this machine (their fingerprints go into the stage key) and writes its test set:
//                the `data.test` file's rows, or the seeded stratified test split of the train
//                file (the same rows textclass::train tests on), as test.tsv (`label<TAB>text`)
//                and its texts alone as texts.txt. Outputs "data" (data.json), and "test",
//                "texts" when the config has a test set.
//   train        config {"epochs": N, "time_budget_s": S, "device": D}: textclass::train into
//                <stage>/run. Outputs model, metrics, result, config.
//   evaluate     config {"data": PATH, "skip_lines": N} (default: the prep stage's test.tsv):
//                accuracy, macro-F1 and the confusion matrix of the model on a labelled file.
//   batch-score  config {"input": PATH, "batch_size": N} (default: the prep stage's texts.txt):
//                textclass::predict into predictions.tsv (the deploy step of this task).
#include "host/scheduler/scheduler.h"

namespace tessera::textclass {

void register_stages(scheduler::StageRegistry& registry);

}  // namespace tessera::textclass
