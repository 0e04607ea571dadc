#pragma once
// DCN-V2 (Wang et al. 2021, "DCN V2: Improved Deep & Cross Network") for behaviour prediction, on
// any Backend:
//   dense [B, n_dense] -> bottom MLP (act after every layer, last of width d) -> [B, d], or the
//     dense features as they are when the bottom MLP is off (no widths) -> [B, n_dense]
//   categorical column t -> its own embedding table of dim d -> e [B, T*d]
//   x0 = [dense part | e]  [B, D]
//   cross network (cross_network.h): x_{l+1} = x0 (.) (W_l x_l + b_l) + x_l, full rank or low rank
//   stacked:  deep tower (hidden layers, act, dropout) on x_L, then a final linear -> logit [B, 1]
//   parallel: deep tower on x0 beside the cross network; final linear on [x_L | deep] -> logit
// Parameters: "bottom<i>.*", "cross<l>.*", "deep<i>.*" (stacked: its last layer is the final
// linear), "final.weight" [D + deep width, 1] and "final.bias" [1] (parallel), and the tables
// ("embedding.tables"), stepped by their sparse optimizer as the optimizer's sparse group.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pipelines/behaviour/cross_network.h"
#include "pipelines/behaviour/dense_tower.h"
#include "pipelines/behaviour/table_model.h"

namespace tessera {

struct DcnSpec : TableModelSpec {
  std::vector<int64_t> bottom = {64};  // hidden widths (a last layer of embedding_dim is added);
                                       // empty: no bottom MLP
  int64_t cross_layers = 3;
  int64_t low_rank = 0;  // 0: full rank
  bool parallel = false;
  int64_t dense_width() const;  // the dense part of x0
  int64_t x0_width() const;     // D
};

class DcnModel final : public TableModel {
 public:
  // Validates the spec (at least one table). Dense weights He/Xavier-uniform from `seed`, tables
  // uniform in +-1/sqrt(rows).
  DcnModel(Backend& backend, const DcnSpec& spec, uint64_t seed, int64_t max_batch);
  std::vector<Parameter*> parameters() override;
  const DcnSpec& spec() const { return dcn_; }
  // Every weight's name and shape besides "embedding.tables" (what the model artefact checks).
  static std::vector<std::pair<std::string, Shape>> weight_shapes(const DcnSpec& spec);

 private:
  Tensor forward_layers(int64_t b, Mode mode, uint64_t dropout_seed) override;
  void backward_layers(const Tensor& dl) override;
  static DenseTowerSpec bottom_spec(const DcnSpec& s);
  static DenseTowerSpec deep_spec(const DcnSpec& s);
  static CrossNetworkSpec cross_spec(const DcnSpec& s);

  DcnSpec dcn_;
  DenseTower bottom_, deep_;
  CrossNetwork cross_;
  Parameter final_w_, final_b_;  // parallel only
  Tensor x0_, xc_, deep_out_;    // the last forward's
  Tensor logits_, dl_, dx0_, dxc_, ddeep_;
};

}  // namespace tessera
