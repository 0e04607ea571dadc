#include "host/train/data_parallel.h"

#include <cstring>

#include "host/core/error.h"

namespace tessera::train {

namespace {

// Counts travel in the gradients' float buffer: exact up to 2^24.
constexpr int64_t kMaxExactCount = int64_t{1} << 24;

void check_global_count(float all) {
  if (all >= static_cast<float>(kMaxExactCount))
    TESSERA_THROW(Internal, "a global batch of " << all << " examples (at most "
                                                 << kMaxExactCount - 1 << " in data-parallel)");
}

// The device path (the group sums the backend's tensors where they live: NCCL on the backend's
// stream): each gradient is scaled by the rank's weight in place (zeroed for weight 0, so that a
// skipped part's non-finite values do not travel), the weight goes in a one-element device
// tensor, and the group sums them all in one call. Only the summed count comes to the host (4
// bytes, which the step decision needs); the gradients never leave the device. The final scale
// multiplies by the rounded 1 / count: one rounding more than the host path's division.
int64_t device_allreduce(dist::ProcessGroup& group, Backend& be,
                         const std::vector<Parameter*>& params, float weight) {
  std::vector<Tensor*> tensors;
  for (Parameter* p : params) {
    if (weight > 0)
      be.axpby(weight, p->grad, 0.f, p->grad);
    else
      be.fill(p->grad, 0.f);
    tensors.push_back(&p->grad);
  }
  // Filled on the stream: an upload from pageable memory would wait for the whole backward first.
  Tensor count = be.empty({1});
  be.fill(count, weight);
  tensors.push_back(&count);
  group.allreduce_sum(be, tensors);
  const float all = be.to_host(count).data<float>()[0];
  if (!(all > 0)) return 0;
  check_global_count(all);
  const float inv = 1.f / all;
  for (Parameter* p : params) be.axpby(inv, p->grad, 0.f, p->grad);
  return static_cast<int64_t>(all);
}

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
  const float weight = applied ? static_cast<float>(examples) : 0.f;
  Backend& be = opt.backend();
  bool on_device = group.reduces_on_device(be);
  for (const Parameter* p : params) on_device = on_device && !p->grad.is_host();
  if (on_device) return device_allreduce(group, be, params, weight);
  scratch.assign(static_cast<size_t>(total), 0.f);
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
  check_global_count(all);
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

void exchange_sparse_steps(dist::ProcessGroup& group, Optimizer& opt, int64_t examples,
                           bool applied, int64_t global) {
  if (global <= 0) TESSERA_THROW(Internal, "a sparse step exchange of an empty global batch");
  // One rounding: n_r / sum_r n_r, as the dense path's weight n_r and division by the sum.
  const float scale =
      applied && examples > 0 ? static_cast<float>(examples) / static_cast<float>(global) : 0.f;
  for (const Optimizer::NamedGroup& g : opt.sparse_groups()) {
    if (!g.group->exchanges_steps())
      TESSERA_THROW(Usage, "the sparse parameter group '" << g.name
                                                          << "' cannot exchange its steps "
                                                             "between data-parallel ranks");
    g.group->exchange_step(group, scale);
  }
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
