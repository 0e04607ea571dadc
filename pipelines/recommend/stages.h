#pragma once
// The recommendation pipeline's stage kinds for the host scheduler, task "recommend"
// (pipelines/recommend/pipeline.json; register with one call, as host/cli/main.cpp does):
//   prep       config {"config": RECOMMEND_CONFIG}: validates the config and finds its ratings
//              file (and an mf config's data.test) on this machine (their fingerprints go into
//              the stage key). Output "data": data.json {config, ratings[, test]}.
//   train      config {"epochs": N, "device": D}: recommend::train into <stage>/run; an attempt
//              that was interrupted resumes from its last per-epoch checkpoint (bit-identical,
//              recommend's README). Outputs model, metrics, result, config, checkpoint.
//   evaluate   config {}, inputs train and prep: loads the train stage's model.tsm and measures
//              it on the held-out split rebuilt from the prep stage's ratings file and the
//              model's config and seed (test RMSE beside the global mean for mf; HR@K / NDCG@K
//              sampled and full ranking beside most-popular for two_tower), refusing ratings the
//              model was not trained on (recommend::evaluate_held_out); an mf model trained
//              with data.test is measured on that file instead. Output evaluation.json.
//   recommend  config {"k": K}: top-K items per user, seen items excluded, into topk.csv.
//   export     config {"format": "npy" | "safetensors" | "word2vec" | "faiss"}: every table
//              with its ids into <stage>/export/; each file is an output.
#include "host/scheduler/scheduler.h"

namespace tessera::recommend {

void register_stages(scheduler::StageRegistry& registry);

}  // namespace tessera::recommend
