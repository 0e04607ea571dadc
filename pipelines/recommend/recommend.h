#pragma once
// The personalised-recommendation pipeline on explicit ratings (ml-latest-small by default):
//   train      config -> run directory (the shared Trainer's, host/train/trainer.h):
//              config.json, metrics.jsonl (one line per epoch), checkpoint.tsc (embeddings +
//              optimizer state + step after every epoch; --resume continues exactly), model.tsm,
//              result.json;
//              mf: RMSE on a seeded random split (or on the data.test file, the training
//              file's rows all training) beside the global-mean baseline;
//              two_tower: HR@K / NDCG@K under the NCF protocol (1 held-out positive vs N sampled
//              negatives) and under full ranking, beside the most-popular baseline; the
//              held-out cases go to leave_last_out.csv (raw ids) for reference implementations.
//   recommend  model -> top-K items per user, items seen in training excluded, streamed to a CSV
//              written atomically (user,rank,item,score).
//   export     model -> every table with its ids as npy, safetensors, word2vec text or a FAISS
//              index (export.h).
#include <cstdint>
#include <string>

#include "host/core/command_result.h"
#include "host/train/run_options.h"

namespace tessera::recommend {

using Result = CommandResult;

using TrainOptions = train::RunOptions;

Result train(const std::string& config_path, const TrainOptions& options);

struct RecommendOptions {
  int64_t k = 10;
  bool quiet = false;
};
Result recommend(const std::string& model_path, const std::string& output_path,
                 const RecommendOptions& options);

}  // namespace tessera::recommend
