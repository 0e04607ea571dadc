#pragma once
// tessera predict on a recommendation model (mf or two_tower): scores from a file of ids.
//   pairs  rows `user,item[,...]` (comma or tab separated, further columns such as a rating or a
//          timestamp ignored, so a ratings file scores as it is) -> OUTPUT `user,item,score`:
//          mf the predicted rating (clipped to the training ratings' range, as evaluate
//          measures it), two_tower the ranking score <u, v_i> + b_i. A row whose user or item the
//          model lacks gets an empty score and is counted.
//   users  rows of one column, `user` -> OUTPUT `user,rank,item,score`: that user's top-K items,
//          the items seen in training excluded (the lists `tessera recommend` writes for every
//          user). A user the model lacks gets no rows and is counted.
// The first row says which (a first line whose first field is not an integer is a header);
// every row must have as many columns. A bad row is a Data error `file:line (field): reason`, or
// with --on-error skip counted and skipped. OUTPUT is streamed and written atomically.
#include <cstdint>
#include <string>
#include <vector>

#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/recommend.h"

namespace tessera::recommend {

struct PredictOptions {
  int64_t k = 10;              // users mode: items per user
  bool skip_bad_rows = false;  // --on-error skip
};

Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const PredictOptions& options);

// User u's top `k` items by score, the items u saw in training excluded (ties by item order),
// as `user,rank,item,score` lines with raw ids. `scores` and `candidates` are scratch space.
std::string top_k_lines(const RecArtefact& a, const Scorer& scorer, int32_t u, int64_t k,
                        std::vector<float>& scores, std::vector<int32_t>& candidates);

}  // namespace tessera::recommend
