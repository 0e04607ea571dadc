// One DLRM training step in the CUDA emulator, scored by the emulator's GPU cost model
// (cuda/emu/cost_model.h), and the step's time predicted for an H100.
//
// The model is the MLPerf DLRM shape: 13 dense features, 26 tables of dimension 128, bottom MLP
// 512-256-128, top MLP 1024-1024-512-256-1, dot interaction, row-wise Adagrad on the tables and
// plain SGD on the MLPs. The emulator runs every CUDA thread as a fiber, so the step runs at two
// small batch sizes (default 64 and 128) and every recorded quantity — bytes, sectors, FLOPs — is
// fitted per kernel as a + b * batch and evaluated at the MLPerf batch (65,536). Table rows do not
// change the per-step traffic of a lookup (only which rows) as long as the distinct rows of a batch
// grow with the batch, so the tables are far smaller than MLPerf's (default 100,000 rows each; ids
// from a Zipf(1.05) law, the shape of Criteo's click logs).
//
// Predicted time per kernel on an H100 SXM:
//   max(DRAM bytes / 3.35 TB/s, FLOPs / 67 TFLOP/s (FP32, no tensor cores: the backend's cuBLAS
//   and cuDNN math mode), launches x 2 us (a launch floor))
// with DRAM bytes = 32-byte sectors touched x 32 (the model credits no cache reuse) for the
// custom kernels, and operands-once bytes for the vendor calls (their stand-ins report FLOPs and
// bytes). Printed next to the anchor: HugeCTR's MLPerf Training v3.x DLRM-DCNv2 result, about
// 1.9M samples/s per H200 GPU — a different model (DCNv2 cross layers, 40M-row tables, mixed
// precision), so a scale reference, not a like-for-like comparison.
//
//   gpu_model_bench [--batches B1,B2] [--rows R] [--target-batch N] [--seed S]
// Prints one JSON object per kernel and a last "step" object. Needs the emulation build with the
// cost model (-DTESSERA_CUDA_EMULATION=ON, no sanitizer, GCC); elsewhere it says so and exits 2.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "pipelines/behaviour/dlrm_model.h"
#if defined(TESSERA_HAVE_CUDA_EMULATION) && TESSERA_HAVE_CUDA_EMULATION
#include "cuda/emu/cost_model.h"
#include "cuda/emu/grid_launch.h"
#endif

namespace tessera {
namespace {

struct Options {
  std::vector<int64_t> batches = {64, 128};
  int64_t rows = 100000;
  int64_t target_batch = 65536;
  uint64_t seed = 1;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "gpu_model_bench: %s\nusage: gpu_model_bench [--batches B1,B2] [--rows R] "
               "[--target-batch N] [--seed S]\n",
               why);
  std::exit(2);
}

int64_t positive(const char* s, const char* what) {
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v <= 0) usage(what);
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const char* v = argv[++i];
    if (a == "--batches") {
      const char* comma = std::strchr(v, ',');
      if (!comma) usage("--batches takes two sizes, B1,B2");
      const std::string first(v, comma);
      o.batches = {positive(first.c_str(), "--batches: a positive size"),
                   positive(comma + 1, "--batches: a positive size")};
      if (o.batches[0] == o.batches[1]) usage("--batches: two different sizes");
    } else if (a == "--rows") {
      o.rows = positive(v, "--rows: a positive count");
    } else if (a == "--target-batch") {
      o.target_batch = positive(v, "--target-batch: a positive size");
    } else if (a == "--seed") {
      o.seed = static_cast<uint64_t>(positive(v, "--seed: a positive integer"));
    } else {
      usage(("unknown option " + a).c_str());
    }
  }
  return o;
}

#if defined(TESSERA_HAVE_CUDA_EMULATION) && TESSERA_HAVE_CUDA_EMULATION

constexpr double kHbmBytesPerSecond = 3.35e12;  // H100 SXM HBM3
constexpr double kFp32FlopsPerSecond = 67e12;   // H100 SXM FP32 (no tensor cores)
constexpr double kLaunchFloorSeconds = 2e-6;
constexpr double kAnchorSamplesPerSecond = 1.9e6;  // HugeCTR MLPerf DLRM-DCNv2, per H200

DlrmSpec mlperf_spec(int64_t rows) {
  DlrmSpec s;
  s.n_dense = 13;
  s.table_rows.assign(26, rows);
  s.embedding_dim = 128;
  s.bottom = {512, 256};           // + the last layer of embedding_dim
  s.top = {1024, 1024, 512, 256};  // + the last layer of width 1
  s.sparse.kind = emb::SparseOptimizer::RowwiseAdagrad;
  s.sparse.lr = 0.01f;
  return s;
}

// Ids from a Zipf(1.05) law over each table's rows (rank r with weight 1 / r^1.05).
Tensor zipf_ids(int64_t batch, int64_t tables, int64_t rows, std::mt19937_64& rng) {
  std::vector<double> cdf(static_cast<size_t>(rows));
  double total = 0;
  for (int64_t r = 0; r < rows; ++r)
    cdf[static_cast<size_t>(r)] = total += std::pow(r + 1.0, -1.05);
  std::uniform_real_distribution<double> u(0.0, total);
  Tensor cat = Tensor::host({batch, tables}, DType::I64);
  for (int64_t i = 0; i < cat.numel(); ++i)
    cat.data<int64_t>()[i] =
        std::min<int64_t>(rows - 1, std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
  return cat;
}

struct StepCost {
  std::map<std::string, emu::KernelCost> kernels;
  std::map<std::string, uint64_t> launches;
};

void train_step(Backend& be, DlrmModel& m, const Tensor& dense, const Tensor& cat,
                const Tensor& labels) {
  const int64_t b = dense.dim(0);
  Tensor logits = m.forward(dense, cat, Mode::Train, 0);
  Tensor loss = be.empty({b}), dlogits = be.empty({b, 1});
  be.bce_with_logits(logits, labels, 1.f / static_cast<float>(b), loss, dlogits);
  m.backward(dlogits);
  for (Parameter* p : m.parameters()) {
    if (!p->state1.defined()) p->state1 = be.empty(p->value.shape());
    be.sgd_update({/*lr=*/0.01f, /*momentum=*/0.f}, p->value, p->grad, p->state1);
  }
  be.synchronize();
}

// One warm-up step (plans, caches), then one recorded step at batch b.
StepCost measure(Backend& be, const Options& o, int64_t b) {
  const DlrmSpec spec = mlperf_spec(o.rows);
  DlrmModel m(be, spec, o.seed, b);
  std::mt19937_64 rng(o.seed);
  Tensor dense = Tensor::host({b, spec.n_dense});
  std::normal_distribution<float> n01;
  for (int64_t i = 0; i < dense.numel(); ++i) dense.data<float>()[i] = n01(rng);
  Tensor labels = Tensor::host({b});
  for (int64_t i = 0; i < b; ++i) labels.data<float>()[i] = static_cast<float>(rng() % 2);
  const Tensor cat = zipf_ids(b, static_cast<int64_t>(spec.table_rows.size()), o.rows, rng);
  const Tensor dense_d = be.to_device(dense), labels_d = be.to_device(labels);
  train_step(be, m, dense_d, cat, labels_d);

  emu::reset_kernel_stats();
  StepCost c;
  {
    emu::ScopedChecks one_run(emu::EmulatorChecks{false, false, true});  // no second schedule
    emu::CostModelScope scope;
    train_step(be, m, dense_d, cat, labels_d);
    for (const emu::KernelCost& k : scope.costs()) c.kernels[k.kernel] = k;
  }
  for (const emu::KernelStats& k : emu::kernel_stats()) c.launches[k.kernel] = k.launches;
  for (const auto& [name, k] : c.kernels)
    if (k.vendor) c.launches[name] = k.blocks;  // one call each
  return c;
}

// a + slope * x through (x0, y0), (x1, y1), evaluated at x.
double extrapolate(double x0, double y0, double x1, double y1, double x) {
  const double slope = (y1 - y0) / (x1 - x0);
  return std::max(0.0, y0 + slope * (x - x0));
}

int run(const Options& o) {
  if (!emu::cost_model_available()) {
    std::fprintf(stderr,
                 "gpu_model_bench: this build's kernels carry no cost-model instrumentation "
                 "(it needs the emulation build without sanitizers, on GCC)\n");
    return 2;
  }
  auto be = make_backend("cuda-emu");
  const StepCost lo = measure(*be, o, o.batches[0]);
  const StepCost hi = measure(*be, o, o.batches[1]);
  const double x0 = static_cast<double>(o.batches[0]), x1 = static_cast<double>(o.batches[1]);
  const double x = static_cast<double>(o.target_batch);
  double step_seconds = 0, step_bytes = 0, step_flops = 0;
  int below_80 = 0;
  for (const auto& [name, k1] : hi.kernels) {
    const auto it = lo.kernels.find(name);
    const emu::KernelCost k0 = it == lo.kernels.end() ? emu::KernelCost{} : it->second;
    const auto fit = [&](double a, double b) { return extrapolate(x0, a, x1, b, x); };
    const double bytes = fit(static_cast<double>(k0.global_bytes_read + k0.global_bytes_written),
                             static_cast<double>(k1.global_bytes_read + k1.global_bytes_written));
    const double flops = fit(k0.flops, k1.flops);
    const double launches = static_cast<double>(hi.launches.count(name) ? hi.launches.at(name) : 1);
    const double seconds = std::max(
        {bytes / kHbmBytesPerSecond, flops / kFp32FlopsPerSecond, launches * kLaunchFloorSeconds});
    step_seconds += seconds;
    step_bytes += bytes;
    step_flops += flops;
    if (!k1.vendor && k1.global_requests > 0 && k1.sector_efficiency() < 0.8) ++below_80;
    std::printf(
        "{\"kernel\":\"%s\",\"vendor\":%s,\"launches\":%.0f,\"bytes\":%.4g,\"flops\":%.4g,"
        "\"sector_efficiency\":%.3f,\"sectors_per_request\":%.2f,\"bank_conflicts_per_request\":%."
        "2f,"
        "\"imbalance\":%.2f,\"predicted_us\":%.1f}\n",
        name.c_str(), k1.vendor ? "true" : "false", launches, bytes, flops, k1.sector_efficiency(),
        k1.global_requests ? static_cast<double>(k1.global_sectors) / k1.global_requests : 0.0,
        k1.bank_conflicts_per_request(), k1.imbalance(), seconds * 1e6);
  }
  const double samples_per_second = x / step_seconds;
  std::printf(
      "{\"step\":\"dlrm_mlperf\",\"batch\":%lld,\"fitted_from\":[%lld,%lld],\"rows_per_table\":%"
      "lld,"
      "\"bytes\":%.4g,\"flops\":%.4g,\"predicted_ms_h100\":%.3f,\"predicted_samples_per_s\":%.4g,"
      "\"anchor_hugectr_dcnv2_samples_per_s_per_h200\":%.4g,\"kernels_below_80pct_sector_"
      "efficiency\":%d,"
      "\"model\":\"max(bytes/3.35TB/s, flops/67TFLOP/s, launches*2us) per kernel\"}\n",
      static_cast<long long>(o.target_batch), static_cast<long long>(o.batches[0]),
      static_cast<long long>(o.batches[1]), static_cast<long long>(o.rows), step_bytes, step_flops,
      step_seconds * 1e3, samples_per_second, kAnchorSamplesPerSecond, below_80);
  return 0;
}

#else

int run(const Options&) {
  std::fprintf(stderr,
               "gpu_model_bench: needs the CUDA emulation build (-DTESSERA_CUDA_EMULATION=ON "
               "-DTESSERA_WITH_CUDA=OFF), whose emulator carries the cost model\n");
  return 2;
}

#endif

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  try {
    return tessera::run(tessera::parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_model_bench: %s\n", e.what());
    return 1;
  }
}
