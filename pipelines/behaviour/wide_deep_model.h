#pragma once
// Wide & Deep (Cheng et al. 2016) for behaviour prediction, on any Backend:
//   wide: logit_w = sum_t w_t[cat_t] + dense . v  -- a 1-wide embedding table per categorical
//         column ("wide" tables, zero-initialised, stepped by the sparse optimizer with the deep
//         tables) plus a linear on the dense features ("wide.weight" [n_dense, 1])
//   deep: x = [dense | e_1 .. e_T] (e_t the column's embedding of dim d) -> deep tower (hidden
//         layers, act, dropout; "deep<i>.*") -> logit_d [B, 1] (its last layer has the bias)
//   logit = logit_w + logit_d
// The tables are one collection ("embedding.tables": the T deep tables, then the T wide ones).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pipelines/behaviour/dense_tower.h"
#include "pipelines/behaviour/table_model.h"

namespace tessera {

struct WideDeepSpec : TableModelSpec {
  std::vector<FeatureTable> wide_tables() const;  // one of dim 1 per column, zero-initialised
};

class WideDeepModel final : public TableModel {
 public:
  WideDeepModel(Backend& backend, const WideDeepSpec& spec, uint64_t seed, int64_t max_batch);
  std::vector<Parameter*> parameters() override;
  static std::vector<std::pair<std::string, Shape>> weight_shapes(const WideDeepSpec& spec);

 private:
  Tensor forward_layers(int64_t b, Mode mode, uint64_t dropout_seed) override;
  void backward_layers(const Tensor& dl) override;
  static DenseTowerSpec deep_spec(const WideDeepSpec& s);

  DenseTower deep_;
  Parameter wide_w_;  // [n_dense, 1] (n_dense > 0)
  Tensor wide_sum_;   // [T*d + T, 1]: 1 on the wide tables' columns, 0 on the deep ones
  Tensor x_, logits_;
};

}  // namespace tessera
