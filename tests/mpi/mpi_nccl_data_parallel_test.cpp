// The GPU path of data-parallel training (cuda/nccl_group.h, docs/distributed.md "The GPU path"):
// dense gradients of a CUDA backend all-reduced by NCCL on the backend's stream. In the emulation
// build the backend is "cuda-emu" and NCCL is the MPI-backed stand-in (cuda/emu/nccl_emu.cpp),
// run by ctest at 2 and 3 ranks; in the CUDA build it is "cuda" on one GPU per rank and the real
// NCCL (tools/gpu-check.sh runs it at one rank per GPU, or at 1).
//
// Tolerances. The device path computes, per element, fl(fl(sum_r fl(n_r g_r)) x fl(1 / B)) with
// B = sum_r n_r; the host path computes fl(fl(sum_r fl(n_r g_r)) / B). The scaled terms are the
// same; the sums may be taken in different orders (NCCL's ring or tree against MPI's algorithm),
// each within (N - 1) eps sum_r |n_r g_r| of the exact sum; the device path's reciprocal and
// product add 2 eps relative, the division 1 eps. So the two differ by at most
//   (2 (N - 1) + 4) eps (sum_r n_r |g_r|) / B,
// which the direct test checks per element. The training test uses the bound of
// tests/mpi/mpi_data_parallel_test.cpp with one rounding more in its constant:
//   gamma = 2 (B + N + 12) eps  (the reciprocal and product in place of the division).
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/nccl_group.h"
#include "host/backend/backend.h"
#include "host/dist/mpi_group.h"
#include "host/dist/process_group.h"
#include "host/model/optimizer.h"
#include "host/train/data_parallel.h"
#include "host/train/trainer.h"
#include "tests/mpi/mpi_test_util.h"
#if TESSERA_CUDA_EMULATION
#include <nccl.h>

#include "cuda/emu/nccl_emu.h"
#endif

namespace tessera::train {
namespace {

constexpr double kEps = 1.0 / (1 << 24);
constexpr int64_t kRows = 60, kDim = 5, kHidden = 6, kBatch = 10;
constexpr int64_t kParams = kHidden * kDim + kHidden + kHidden + 1;
constexpr double kLr = 0.05;

std::unique_ptr<dist::ProcessGroup> g_world;     // MPI, for the tests' own exchanges
std::unique_ptr<dist::ProcessGroup> g_nccl;      // NCCL over an MPI group (pieces of 64 bytes)
std::unique_ptr<dist::ProcessGroup> g_nccl_det;  // NCCL over a deterministic MPI group
std::unique_ptr<dist::ProcessGroup> g_mpi;       // the MPI group alone: the host path
int g_device = 0;

std::unique_ptr<Backend> device_backend() {
#if TESSERA_CUDA_EMULATION
  return make_backend("cuda-emu:" + std::to_string(g_device));
#else
  return make_backend("cuda:" + std::to_string(g_device));
#endif
}

// NCCL calls and bytes this process carried out: the stand-in's own count in the emulation
// build, the group's count otherwise.
struct Calls {
  int64_t calls = 0, bytes = 0;
};
Calls nccl_calls(const dist::ProcessGroup& g) {
#if TESSERA_CUDA_EMULATION
  const emu::NcclCounters c = emu::nccl_counters();
  (void)g;
  return {c.allreduce_calls, c.allreduce_bytes};
#else
  const dist::CommStats s = g.stats();
  return {s.allreduce_calls, s.allreduce_bytes};
#endif
}

TEST(NcclGroup, SumsDeviceTensorsWhereTheyLive) {
  auto be = device_backend();
  const int rank = g_world->rank(), world = g_world->world();
  EXPECT_TRUE(g_nccl->reduces_on_device(*be));
  EXPECT_FALSE(g_nccl->reduces_on_device(*make_host_backend()));
  // Integer values: every summation order gives the exact sum.
  const std::vector<int64_t> sizes = {1, 16, 17, 100};
  std::vector<Tensor> ts;
  std::vector<Tensor*> ptrs;
  for (int64_t n : sizes) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i * (rank + 1));
    ts.push_back(be->to_device(Tensor::host_from({n}, v)));
  }
  for (Tensor& t : ts) ptrs.push_back(&t);
  const Calls before = nccl_calls(*g_nccl);
  g_nccl->allreduce_sum(*be, ptrs);
  const Calls after = nccl_calls(*g_nccl);
  const int64_t ranks_sum = static_cast<int64_t>(world) * (world + 1) / 2;
  int64_t want_calls = 0, want_bytes = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    const Tensor h = be->to_host(ts[k]);
    for (int64_t i = 0; i < sizes[k]; ++i)
      ASSERT_EQ(h.data<float>()[i], static_cast<float>(i * ranks_sum)) << "tensor " << k;
    want_calls += (sizes[k] + 15) / 16;  // pieces of 64 bytes
    want_bytes += 4 * sizes[k];
  }
  EXPECT_EQ(after.calls - before.calls, want_calls);
  EXPECT_EQ(after.bytes - before.bytes, want_bytes);
}

TEST(NcclGroup, DeterministicModeKeepsTheHostPath) {
  auto be = device_backend();
  EXPECT_FALSE(g_nccl_det->reduces_on_device(*be));
  Tensor t = be->to_device(Tensor::host_from({3}, std::vector<float>{1.f, 2.f, 3.f}));
  const Calls before = nccl_calls(*g_nccl_det);
  g_nccl_det->allreduce_sum(*be, {&t});
  EXPECT_EQ(nccl_calls(*g_nccl_det).calls, before.calls) << "the deterministic mode used NCCL";
  const Tensor h = be->to_host(t);
  const float w = static_cast<float>(g_world->world());
  EXPECT_EQ(h.data<float>()[0], w);
  EXPECT_EQ(h.data<float>()[2], 3 * w);
}

#if TESSERA_CUDA_EMULATION
// The stand-in refuses what the library documents as wrong, on every rank where the rule spans
// the ranks (so that no rank is left waiting).
TEST(NcclStandIn, RefusesBrokenCalls) {
  auto be = device_backend();
  ncclUniqueId id{};
  if (g_world->rank() == 0) ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  g_world->broadcast(&id, sizeof id, 0);
  ncclComm_t comm = nullptr;
  ncclComm_t none = nullptr;
  EXPECT_EQ(ncclCommInitRank(&none, 2, id, 2), ncclInvalidArgument);  // rank >= nranks
  ncclUniqueId forged{};
  EXPECT_EQ(ncclCommInitRank(&none, 1, forged, 0), ncclInvalidArgument);
  ASSERT_EQ(ncclCommInitRank(&comm, g_world->world(), id, g_world->rank()), ncclSuccess);
  int count = 0, rank = -1;
  EXPECT_EQ(ncclCommCount(comm, &count), ncclSuccess);
  EXPECT_EQ(ncclCommUserRank(comm, &rank), ncclSuccess);
  EXPECT_EQ(count, g_world->world());
  EXPECT_EQ(rank, g_world->rank());
  Tensor t = be->to_device(Tensor::host_from({4}, std::vector<float>{1, 2, 3, 4}));
  float* d = t.data<float>();
  std::vector<float> host(4, 1.f);
  EXPECT_EQ(ncclAllReduce(host.data(), host.data(), 4, ncclFloat32, ncclSum, comm, nullptr),
            ncclInvalidArgument);  // host memory
  // Past the end of an allocation (cudaMalloc's own: the backend's caching allocator hands out
  // tensors inside larger blocks, where the library could not tell either).
  void* raw = nullptr;
  ASSERT_EQ(cudaMalloc(&raw, 4 * sizeof(float)), cudaSuccess);
  EXPECT_EQ(ncclAllReduce(raw, raw, 5, ncclFloat32, ncclSum, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(cudaFree(raw), cudaSuccess);
  EXPECT_EQ(ncclAllReduce(d, d, 4, ncclFloat16, ncclSum, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAllReduce(d, d, 4, ncclFloat32, static_cast<ncclRedOp_t>(99), comm, nullptr),
            ncclInvalidArgument);
  cudaStream_t gone = nullptr;
  ASSERT_EQ(cudaStreamCreate(&gone), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(gone), cudaSuccess);
  EXPECT_EQ(ncclAllReduce(d, d, 4, ncclFloat32, ncclSum, comm, gone), ncclInvalidArgument);
  (void)cudaGetLastError();
  EXPECT_EQ(ncclGroupEnd(), ncclInvalidUsage);  // no ncclGroupStart
  // A count that differs between the ranks fails on every rank, and moves no data.
  if (g_world->world() > 1) {
    const size_t n = g_world->rank() == 0 ? 3 : 4;
    EXPECT_EQ(ncclAllReduce(d, d, n, ncclFloat32, ncclSum, comm, nullptr), ncclInvalidUsage);
    EXPECT_EQ(be->to_host(t).data<float>()[0], 1.f);
  }
  // A good call still works after the refusals: the communicator is intact.
  EXPECT_EQ(ncclAllReduce(d, d, 4, ncclFloat32, ncclMax, comm, nullptr), ncclSuccess);
  EXPECT_EQ(be->to_host(t).data<float>()[3], 4.f);
  EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(d, d, 4, ncclFloat32, ncclSum, comm, nullptr), ncclInvalidArgument);
}
#endif

// Rank r's gradient for parameter k: reproducible random values, different on every rank.
std::vector<float> rank_gradient(int rank, size_t k, int64_t n) {
  std::mt19937 gen(static_cast<unsigned>(1000 * rank + 17 * k + 5));
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(gen);
  return v;
}

// allreduce_dense_gradients on `be` in `group`; rank r holds r + 2 examples, rank 1 (if any)
// dropped its part. Returns the gradients on the host.
std::vector<std::vector<float>> reduce_once(dist::ProcessGroup& group, Backend& be,
                                            int64_t& total) {
  const std::vector<int64_t> sizes = {7, 40, 1};
  Optimizer opt(be, OptimizerConfig{}, LrSchedule{});
  std::vector<std::unique_ptr<Parameter>> params;
  std::vector<Parameter*> ptrs;
  for (size_t k = 0; k < sizes.size(); ++k) {
    auto p = std::make_unique<Parameter>();
    p->name = "p" + std::to_string(k);
    const Tensor g = Tensor::host_from({sizes[k]}, rank_gradient(group.rank(), k, sizes[k]));
    p->value = be.empty({sizes[k]});
    p->grad = be.device().kind == DeviceKind::Host ? g : be.to_device(g);
    ptrs.push_back(p.get());
    params.push_back(std::move(p));
  }
  opt.attach(ptrs);
  std::vector<float> scratch;
  total = allreduce_dense_gradients(group, opt, group.rank() + 2, group.rank() != 1, scratch);
  std::vector<std::vector<float>> out;
  for (const auto& p : params) {
    const Tensor h = be.to_host(p->grad);
    out.emplace_back(h.data<float>(), h.data<float>() + h.numel());
  }
  return out;
}

TEST(DataParallel, DeviceGradientsMatchTheHostPath) {
  auto be = device_backend();
  const int world = g_world->world();
  const Calls before = nccl_calls(*g_nccl);
  int64_t dev_total = 0, host_total = 0;
  const auto dev = reduce_once(*g_nccl, *be, dev_total);
  const Calls after = nccl_calls(*g_nccl);
  auto host_be = make_host_backend();
  const auto host = reduce_once(*g_mpi, *host_be, host_total);
  int64_t want_total = 0;
  for (int r = 0; r < world; ++r) want_total += r == 1 ? 0 : r + 2;
  EXPECT_EQ(dev_total, want_total);
  EXPECT_EQ(host_total, want_total);
  // In pieces of 16 floats: 7 -> 1 call, 40 -> 3, 1 -> 1, and the count: 6 calls.
  EXPECT_EQ(after.calls - before.calls, 6);
  EXPECT_EQ(after.bytes - before.bytes, 4 * (7 + 40 + 1 + 1));
  const double gamma = (2.0 * (world - 1) + 4) * kEps;
  double worst = 0;
  for (size_t k = 0; k < dev.size(); ++k)
    for (size_t i = 0; i < dev[k].size(); ++i) {
      double mag = 0;
      for (int r = 0; r < world; ++r)
        if (r != 1)
          mag += (r + 2) * std::fabs(rank_gradient(r, k, static_cast<int64_t>(dev[k].size()))[i]);
      const double bound = gamma * mag / static_cast<double>(want_total);
      const double diff = std::fabs(static_cast<double>(dev[k][i]) - host[k][i]);
      worst = std::max(worst, diff / bound);
    }
  EXPECT_LE(worst, 1.0) << "device and host paths differ beyond the bound (ratio " << worst << ")";
}

struct Data {
  std::vector<float> x, y;  // [kRows, kDim], [kRows]
  Data() {
    std::mt19937 gen(7);
    std::normal_distribution<float> n(0.f, 1.f);
    for (int64_t i = 0; i < kRows; ++i) {
      float s = 0;
      for (int64_t j = 0; j < kDim; ++j) {
        x.push_back(n(gen));
        s += x.back() * static_cast<float>(j % 2 ? 1 : -1);
      }
      y.push_back(s + 0.3f * n(gen) > 0 ? 1.f : 0.f);
    }
  }
};

std::vector<int64_t> global_batch(int64_t epoch, int64_t b) {
  std::vector<int64_t> perm(kRows);
  for (int64_t i = 0; i < kRows; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), std::mt19937(static_cast<unsigned>(100 + epoch)));
  return {perm.begin() + b * kBatch, perm.begin() + (b + 1) * kBatch};
}

// f(x) = w2 . tanh(W1 x + b1) + b2 with the logistic loss; w flat as (W1, b1, w2, b2). The mean
// gradient over `rows` into g; `mag` (if given): (1/n) sum_i |t_i| per element. Returns the
// summed loss.
double mlp_gradient(const Data& d, const std::vector<float>& w, const std::vector<int64_t>& rows,
                    std::vector<float>& g, std::vector<double>* mag) {
  const float* w1 = w.data();
  const float* b1 = w1 + kHidden * kDim;
  const float* w2 = b1 + kHidden;
  const float b2 = w2[kHidden];
  g.assign(static_cast<size_t>(kParams), 0.f);
  if (mag) mag->assign(static_cast<size_t>(kParams), 0.0);
  const float inv = rows.empty() ? 0.f : 1.f / static_cast<float>(rows.size());
  auto add = [&](int64_t at, float term, float unscaled) {
    g[static_cast<size_t>(at)] += term;
    if (mag) (*mag)[static_cast<size_t>(at)] += std::fabs(unscaled) / rows.size();
  };
  double loss = 0;
  for (const int64_t r : rows) {
    const float* x = &d.x[static_cast<size_t>(r * kDim)];
    float h[kHidden], z = b2;
    for (int64_t j = 0; j < kHidden; ++j) {
      float a = b1[j];
      for (int64_t k = 0; k < kDim; ++k) a += w1[j * kDim + k] * x[k];
      h[j] = std::tanh(a);
      z += w2[j] * h[j];
    }
    const float y = d.y[static_cast<size_t>(r)];
    loss += std::max(z, 0.f) - z * y + std::log1p(std::exp(-std::fabs(z)));
    const float e = 1.f / (1.f + std::exp(-z)) - y;
    const float dz = e * inv;
    add(kParams - 1, dz, e);
    for (int64_t j = 0; j < kHidden; ++j) {
      add(kHidden * kDim + kHidden + j, dz * h[j], e * h[j]);
      const float dh = dz * w2[j] * (1.f - h[j] * h[j]);
      const float uh = e * w2[j] * (1.f - h[j] * h[j]);
      add(kHidden * kDim + j, dh, uh);
      for (int64_t k = 0; k < kDim; ++k) add(j * kDim + k, dh * x[k], uh * x[k]);
    }
  }
  return loss;
}

// The MLP with its parameters and gradients on the device backend: each step computes the rank's
// part of the gradient on the host (the model is not what is tested) and copies it to the
// device, where the Trainer's all-reduce and the optimizer's update run.
class DeviceMlpTask final : public TrainTask {
 public:
  DeviceMlpTask(Backend& be, const Data& d) : be_(be), d_(d), opt_(be, sgd(), LrSchedule{}) {
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    std::vector<float> init(static_cast<size_t>(kParams));
    for (float& v : init) v = u(gen);
    const std::vector<std::pair<const char*, Shape>> shapes = {
        {"w1", {kHidden, kDim}}, {"b1", {kHidden}}, {"w2", {kHidden}}, {"b2", {1}}};
    size_t at = 0;
    for (const auto& [name, shape] : shapes) {
      auto p = std::make_unique<Parameter>();
      p->name = name;
      Tensor h = Tensor::host(shape);
      std::copy_n(init.begin() + static_cast<std::ptrdiff_t>(at), h.numel(), h.data<float>());
      at += static_cast<size_t>(h.numel());
      p->value = be.to_device(h);
      p->grad = be.empty(shape);
      params_.push_back(std::move(p));
    }
    std::vector<Parameter*> ps;
    for (auto& p : params_) ps.push_back(p.get());
    opt_.attach(ps);
  }
  static OptimizerConfig sgd() {
    OptimizerConfig c;
    c.type = OptimizerType::Sgd;
    c.lr = kLr;
    c.momentum = 0;
    return c;
  }
  int64_t batches_per_epoch() override { return kRows / kBatch; }
  void start_epoch(int64_t) override {}
  StepResult step(StepContext& ctx) override {
    const std::vector<int64_t> all = global_batch(ctx.epoch, ctx.batch);
    const dist::ProcessGroup& g = dist::process_group();
    const int64_t n = static_cast<int64_t>(all.size());
    const std::vector<int64_t> mine(all.begin() + n * g.rank() / g.world(),
                                    all.begin() + n * (g.rank() + 1) / g.world());
    before_ = read(false);
    last_batch_ = all;
    std::vector<float> grad;
    StepResult r;
    r.loss_sum = mlp_gradient(d_, before_, mine, grad, nullptr);
    size_t at = 0;
    for (auto& p : params_) {
      Tensor h = Tensor::host(p->grad.shape());
      std::copy_n(grad.begin() + static_cast<std::ptrdiff_t>(at), h.numel(), h.data<float>());
      at += static_cast<size_t>(h.numel());
      be_.copy(h, p->grad);
    }
    r.examples = static_cast<int64_t>(mine.size());
    r.units = r.examples;
    return r;
  }
  Optimizer* optimizer() override { return &opt_; }
  double learning_rate() override { return opt_.current_lr(); }
  void check_weights(DivergenceGuard& guard) override {
    std::vector<Parameter*> ps;
    for (auto& p : params_) ps.push_back(p.get());
    guard.check_weights(be_, ps);
  }
  Metrics validate(DivergenceGuard&) override {
    std::vector<int64_t> rows(kRows);
    for (int64_t i = 0; i < kRows; ++i) rows[i] = i;
    std::vector<float> g;
    return {{"validation_loss", mlp_gradient(d_, read(false), rows, g, nullptr) / kRows}};
  }
  NamedTensors training_state() override { return {}; }
  void restore_training_state(const NamedTensors&, int64_t) override {}
  NamedTensors snapshot() override { return {}; }
  void restore_snapshot(const NamedTensors&) override {}
  void finish(FinishContext&) override {}

  // The weights (or the gradients) on the host, flat.
  std::vector<float> read(bool grads) const {
    std::vector<float> w;
    for (const auto& p : params_) {
      const Tensor h = be_.to_host(grads ? p->grad : p->value);
      w.insert(w.end(), h.data<float>(), h.data<float>() + h.numel());
    }
    return w;
  }
  // The one-process gradient of the last global batch at the weights before its step, and S.
  void reference_gradient(std::vector<float>& g, std::vector<double>& mag) const {
    mlp_gradient(d_, before_, last_batch_, g, &mag);
  }

 private:
  Backend& be_;
  const Data& d_;
  Optimizer opt_;
  std::vector<std::unique_ptr<Parameter>> params_;
  std::vector<float> before_;
  std::vector<int64_t> last_batch_;
};

std::string shared_dir() {
  static const std::string dir = mpitest::make_shared_dir(*g_world, "tessera_mpi_nccl");
  return dir;
}

struct Trained {
  std::vector<float> weights;
  int64_t checks = 0;
  double worst_ratio = 0, carried_bound = 0;
  Calls nccl;
};

// 2 epochs of 6 global batches on the device backend, in `group` (nullptr: this process alone).
Trained train(dist::ProcessGroup* group, const std::string& run) {
  dist::set_process_group(group ? std::make_unique<mpitest::Forwarding>(*group) : nullptr);
  const int world = group ? group->world() : 1;
  auto be = device_backend();
  Data data;
  DeviceMlpTask task(*be, data);
  TrainerOptions o;
  o.task = "mpi-nccl-test";
  o.name = "dp";
  o.run_dir = shared_dir() + "/" + run +
              (group ? std::string() : "-rank" + std::to_string(g_world->rank()));
  o.epochs = 2;
  o.quiet = true;
  Trained out;
  const double gamma = 2.0 * static_cast<double>(kBatch + world + 12) * kEps;
  o.after_step = [&](int64_t, bool) {
    std::vector<float> ref;
    std::vector<double> mag;
    task.reference_gradient(ref, mag);
    const std::vector<float> got = task.read(true);
    double step_bound = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      const double bound = gamma * mag[i];
      step_bound = std::max(step_bound, kLr * bound);
      const double diff = std::fabs(static_cast<double>(got[i]) - ref[i]);
      out.worst_ratio = std::max(out.worst_ratio, bound > 0 ? diff / bound : diff > 0 ? 1e30 : 0);
    }
    double wmax = 0;
    for (float w : task.read(false)) wmax = std::max(wmax, static_cast<double>(std::fabs(w)));
    out.carried_bound += step_bound + 2 * kEps * wmax;
    ++out.checks;
  };
  const Calls before = group ? nccl_calls(*group) : Calls{};
  try {
    Trainer(o).fit(task);
  } catch (...) {
    dist::set_process_group(nullptr);
    throw;
  }
  dist::set_process_group(nullptr);
  if (group) {
    const Calls after = nccl_calls(*group);
    out.nccl = {after.calls - before.calls, after.bytes - before.bytes};
  }
  out.weights = task.read(false);
  return out;
}

TEST(DataParallel, TheMlpTrainsOnTheDeviceToTheOneProcessModel) {
  const Trained ref = train(nullptr, "ref");
  const Trained dp = train(g_nccl.get(), "dp");
  const int world = g_world->world();
  EXPECT_EQ(dp.checks, 12);
  EXPECT_LE(dp.worst_ratio, 1.0) << "a step's all-reduced gradient left gamma S of the "
                                    "one-process gradient (ratio "
                                 << dp.worst_ratio << ")";
  ASSERT_EQ(dp.weights.size(), ref.weights.size());
  const double tol = 4 * dp.carried_bound;
  for (size_t i = 0; i < ref.weights.size(); ++i) {
    if (world == 1)
      EXPECT_EQ(dp.weights[i], ref.weights[i]) << "weight " << i << ", one rank";
    else
      EXPECT_NEAR(dp.weights[i], ref.weights[i], tol) << "weight " << i << " (bound " << tol << ")";
  }
  if (world > 1) {
    // Per step: 4 gradients of at most 16 floats each piece (w1 is 30: 2 pieces) and the count.
    EXPECT_EQ(dp.nccl.calls, 12 * (2 + 1 + 1 + 1 + 1));
    EXPECT_EQ(dp.nccl.bytes, 12 * 4 * (kParams + 1));
  } else {  // one rank: the Trainer does not all-reduce
    EXPECT_EQ(dp.nccl.calls, 0);
  }
}

// An exception ends a test body on one rank while the others wait in its collectives: end the job
// then (exit 1 through MPI_Abort) rather than hang until the ctest timeout.
class AbortOnException final : public ::testing::EmptyTestEventListener {
 public:
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed() || std::string(r.summary()).find("exception") == std::string::npos) return;
    std::fprintf(stderr, "[rank %d] %s: ending the job\n", g_world->rank(), r.summary());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
};

}  // namespace
}  // namespace tessera::train

int main(int argc, char** argv) {
  using namespace tessera;
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  train::g_world = dist::make_mpi_group();
  int rc = 0;
  try {
    // A listing (tools/gpu-check.sh --dry-run, on a machine without a GPU) runs no case.
    const bool listing = GTEST_FLAG_GET(list_tests);
    if (!listing) train::g_device = cuda::use_local_device();
    cuda::NcclGroupOptions pieces;
    pieces.bucket_bytes = 64;
    train::g_nccl = cuda::make_nccl_group(dist::make_mpi_group(), pieces);  // no device work yet
    dist::MpiGroupOptions det;
    det.deterministic = true;
    train::g_nccl_det = cuda::make_nccl_group(dist::make_mpi_group(det), pieces);
    train::g_mpi = dist::make_mpi_group();
    mpitest::report_from_rank0(train::g_world->rank());
    ::testing::UnitTest::GetInstance()->listeners().Append(new train::AbortOnException);
    rc = RUN_ALL_TESTS();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_nccl_data_parallel_test: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const int worst = mpitest::worst_result(*train::g_world, rc, "mpi_nccl_data_parallel_test",
                                          train::shared_dir());
  train::g_nccl.reset();
  train::g_nccl_det.reset();
  train::g_mpi.reset();
  train::g_world.reset();
  MPI_Finalize();
  return worst;
}
