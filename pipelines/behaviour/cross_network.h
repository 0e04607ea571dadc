#pragma once
// DCN-V2's cross network (Wang et al. 2021) on a Backend: over x0 [B, D],
//   x_{l+1} = x0 (.) (W_l x_l + b_l) + x_l,   l = 0 .. layers - 1,
// with W_l full rank ("cross<l>.weight" [D, D], stored [in, out] as the towers' weights) or of
// rank r: W_l = U_l V_l^T, applied as x -> x V_l [r] -> (x V_l) U_l^T [D] ("cross<l>.v" [D, r],
// "cross<l>.u" [r, D]); b_l "cross<l>.bias" [D]. Composed of gemm, bias_act and the element-wise
// mul_add / axpby, so every backend runs it.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/parameter.h"

namespace tessera {

struct CrossNetworkSpec {
  int64_t width = 0;  // D
  int64_t layers = 1;
  int64_t low_rank = 0;  // 0: full rank
};

class CrossNetwork {
 public:
  CrossNetwork() = default;
  // W (or U, V) Xavier-uniform from `seed`, biases 0.
  CrossNetwork(Backend& backend, const CrossNetworkSpec& spec, uint64_t seed, int64_t max_batch);

  // x0 [B, D] on the backend (kept by reference until the backward) -> x_L [B, D], valid until
  // the next forward.
  Tensor forward(const Tensor& x0);
  // dy = dL/dx_L [B, D] for the last forward: parameter gradients overwritten, dL/dx0 (through
  // every layer's x0 factor and through x_0 itself) added to dx0 [B, D].
  void backward(const Tensor& dy, Tensor& dx0);

  std::vector<Parameter*> parameters();
  int64_t parameter_count() const;
  static std::vector<std::pair<std::string, Shape>> weight_shapes(const CrossNetworkSpec& spec);

 private:
  struct Layer {
    Parameter w;     // full rank: [D, D]
    Parameter u, v;  // low rank: [r, D], [D, r]
    Parameter b;     // [D]
    Tensor xv;       // low rank: [max_batch, r] = x_l V_l
    Tensor z;        // [max_batch, D] = W_l x_l + b_l
    Tensor x_out;    // [max_batch, D] = x_{l+1}
  };
  Backend* backend_ = nullptr;
  CrossNetworkSpec spec_;
  std::vector<Layer> layers_;
  Tensor x0_;                // the last forward's x0 (a view)
  Tensor dz_, dx_a_, dx_b_;  // [max_batch, D] scratch; dxv_ [max_batch, r]
  Tensor dxv_;
};

}  // namespace tessera
