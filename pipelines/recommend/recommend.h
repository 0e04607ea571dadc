#pragma once
// The personalised-recommendation pipeline on explicit ratings (ml-latest-small by default):
//   train      config -> run directory (the shared Trainer's, host/train/trainer.h):
//              config.json, metrics.jsonl (one line per epoch), checkpoint.tsc (embeddings +
//              optimizer state + step after every epoch; --resume continues exactly), model.tsm,
//              result.json;
//              mf: RMSE on a seeded random split beside the global-mean baseline;
//              two_tower: HR@K / NDCG@K under the NCF protocol (1 held-out positive vs N sampled
//              negatives) and under full ranking, beside the most-popular baseline; the
//              held-out cases go to leave_last_out.csv (raw ids) for reference implementations.
//   recommend  model -> top-K items per user, items seen in training excluded, streamed to a CSV
//              written atomically (user,rank,item,score).
//   export     model -> every table with its ids as npy, safetensors, word2vec text or a FAISS
//              index (export.h).
#include <cstdint>
#include <string>

namespace tessera::recommend {

struct Result {
  std::string summary;  // human-readable lines
  std::string json;     // one JSON object, compact
};

struct TrainOptions {
  std::string device;    // empty: the config's
  std::string runs_dir;  // empty: the config's
  std::string run_dir;   // exact run directory (must not exist)
  // A run directory holding checkpoint.tsc (every run writes one after each epoch): continue it
  // exactly where it stopped (the same config, but for train.epochs, train.on_nonfinite,
  // runs_dir, device and the shards); one without a checkpoint yet starts there from the start.
  std::string resume;
  int64_t epochs = -1;  // -1: the config's
  bool quiet = false;
};

Result train(const std::string& config_path, const TrainOptions& options);

struct RecommendOptions {
  int64_t k = 10;
  bool quiet = false;
};
Result recommend(const std::string& model_path, const std::string& output_path,
                 const RecommendOptions& options);

}  // namespace tessera::recommend
