#include "host/train/data_parallel.h"

#include <cstring>

#include "host/core/error.h"

namespace tessera::train {

namespace {

// Counts travel in the gradients' float buffer: exact up to 2^24.
constexpr int64_t kMaxExactCount = int64_t{1} << 24;

}  // namespace

int64_t allreduce_dense_gradients(dist::ProcessGroup& group, Optimizer& opt, int64_t examples,
                                  bool applied, std::vector<float>& scratch) {
  const std::vector<Parameter*>& params = opt.dense_parameters();
  if (examples < 0 || examples >= kMaxExactCount)
    TESSERA_THROW(Internal, "a rank's batch of " << examples << " examples (at most "
                                                 << kMaxExactCount - 1 << " in data-parallel)");
  int64_t total = 1;
  for (const Parameter* p : params) {
    if (!p->grad.defined() || p->grad.dtype() != DType::F32)
      TESSERA_THROW(Internal, "data-parallel training needs an f32 gradient for parameter '"
                                  << p->name << "'");
    total += p->grad.numel();
  }
  scratch.assign(static_cast<size_t>(total), 0.f);
  const float weight = applied ? static_cast<float>(examples) : 0.f;
  Backend& be = opt.backend();
  int64_t off = 0;
  for (const Parameter* p : params) {
    const int64_t n = p->grad.numel();
    if (weight > 0) {
      const Tensor h = p->grad.is_host() ? p->grad : be.to_host(p->grad);
      const float* g = h.data<float>();
      for (int64_t i = 0; i < n; ++i) scratch[static_cast<size_t>(off + i)] = weight * g[i];
    }
    off += n;
  }
  scratch.back() = weight;
  group.allreduce_sum(scratch.data(), total);
  const float all = scratch.back();
  if (!(all > 0)) return 0;
  if (all >= static_cast<float>(kMaxExactCount))
    TESSERA_THROW(Internal, "a global batch of " << all << " examples (at most "
                                                 << kMaxExactCount - 1 << " in data-parallel)");
  off = 0;
  for (Parameter* p : params) {
    const int64_t n = p->grad.numel();
    Tensor h = p->grad.is_host() ? p->grad : Tensor::host(p->grad.shape());
    float* g = h.data<float>();
    for (int64_t i = 0; i < n; ++i) g[i] = scratch[static_cast<size_t>(off + i)] / all;
    if (!p->grad.is_host()) be.copy(h, p->grad);
    off += n;
  }
  return static_cast<int64_t>(all);
}

void broadcast_metrics(dist::ProcessGroup& group, Metrics& metrics, int root) {
  if (group.world() == 1) return;
  // name '\0' and the value's 8 bytes, per metric.
  std::string text;
  if (group.rank() == root)
    for (const auto& [name, v] : metrics) {
      text += name;
      text.push_back('\0');
      text.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
  dist::broadcast_string(group, text, root);
  if (group.rank() == root) return;
  metrics.clear();
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = text.find('\0', at);
    if (end == std::string::npos || end + 1 + sizeof(double) > text.size())
      TESSERA_THROW(Internal, "broadcast metrics cut short at byte " << at);
    double v;
    std::memcpy(&v, text.data() + end + 1, sizeof v);
    metrics.emplace_back(text.substr(at, end - at), v);
    at = end + 1 + sizeof v;
  }
}

bool broadcast_flag(dist::ProcessGroup& group, bool flag, int root) {
  if (group.world() == 1) return flag;
  char c = flag ? 1 : 0;
  group.broadcast(&c, 1, root);
  return c != 0;
}

}  // namespace tessera::train
