// Host embedding-bag training step (forward + de-duplicated backward + sparse SGD update, the
// fused host path of embeddings/) against
//   - the machine's memory bandwidth, measured in the same run with a STREAM-style triad
//     (a[i] = b[i] + s * c[i], OpenMP, arrays far larger than the caches, best of several), and
//   - PyTorch nn.EmbeddingBag(mode='sum', sparse=True) x T + torch.optim.SGD at the same sizes on
//     the same ids (bench/torch_embedding_bag.py; --torch), PyTorch at the same thread count.
// Defaults: 26 tables x 50,000 rows x dim 64, batch 4096, 8 ids per bag drawn from a Zipf(1.05)
// law over each table's rows (hot rows scattered by a hash), 16 distinct batches cycled.
//
// Bytes per step (FBGEMM's TBE convention: every looked-up row counts, cached or not):
//   forward  nnz * D * 4 (rows) + B * T * D * 4 (pooled out) + nnz * 8 + (T*B+1) * 8 (ids, offsets)
//   backward B * T * D * 4 (dout) + nnz * 8 (ids) + U * D * 4 * 2 (read + write each touched row)
// The step's GB/s is that over the median step time; ratio_to_triad = GB/s / triad GB/s. A
// "unique_bytes" variant counting each distinct row once is printed beside it.
//
// --device cuda[:N] (or cuda-emu in the emulation build) runs the same step on that backend
// instead (CUDA kernels; batches and dout uploaded beforehand, the device synchronised around
// each phase) against the device's copy bandwidth measured in the same run (a device-to-device
// copy of 2 x 512 MiB, read + write bytes, best of 5), and checks its first pooled output against
// the host's. tools/gpu-check.sh runs it on the GPU machine.
//
// --hot-rows (with --device) runs the device step a second time on uniform ids and prints the
// hottest row's occurrences and the Zipf / uniform step-time ratio: the backward parallelises a
// row's occurrences, so a Zipf batch (fewer distinct rows, one row holding thousands of ids) should
// not be slower than a uniform one. --optimizer sgd|adagrad|rowwise_adagrad|lazy_adam picks the
// device step's sparse optimizer (default sgd; the host step is always sgd).
//
//   embedding_bag_bench [--tables T] [--rows R] [--dim D] [--batch B] [--pooling L]
//                       [--alpha A] [--steps N] [--torch] [--quick] [--enforce-targets]
//                       [--device cpu|cuda|cuda:N|cuda-emu [--optimizer NAME] [--hot-rows]]
//                       [--dtype f32|bf16|f16 [--stochastic-rounding]]
// --dtype bf16|f16 (host) also times the same step on tables stored in that type (lookups and
// the update in f32, rows rounded back: embeddings/table_dtype.h) and prints its GB/s under the
// same byte model with 2-byte rows, and its speedup over the f32 step (target: >= 1.7x for bf16);
// --stochastic-rounding rounds that step's updated rows stochastically.
//
// Prints one JSON object per line; the last is the summary (with "targets_met"; with --device,
// the device step with "ratio_to_copy", which has no target). Exits 1 if the check of the fused
// step against the unfused one (device: of the device forward against the host's) fails or the
// reference run fails; 3 with --enforce-targets when a host target (>= 0.7 of triad, >= 3x
// PyTorch) is missed.
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "embeddings/collection.h"
#include "embeddings/table_rows.h"
#include "tests/support/run_program.h"

using namespace tessera;
using namespace tessera::emb;

namespace {

using tessera::bench::loadavg;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// STREAM triad, best of `reps`, GB/s (3 arrays x n x 4 bytes per pass).
double triad_gbs(int64_t n, int reps) {
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n)),
      c(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    a[static_cast<size_t>(i)] = 0.f;
    b[static_cast<size_t>(i)] = 1.f;
    c[static_cast<size_t>(i)] = 2.f;
  }
  double best = 1e30;
  const float s = 3.f;
  float* pa = a.data();
  const float* pb = b.data();
  const float* pc = c.data();
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) pa[i] = pb[i] + s * pc[i];
    best = std::min(best, now_s() - t0);
  }
  if (a[static_cast<size_t>(n / 2)] != 7.f) {
    std::cerr << "triad check failed\n";
    std::exit(1);
  }
  return 3.0 * static_cast<double>(n) * 4.0 / best / 1e9;
}

struct Args {
  int64_t tables = 26, rows = 50000, dim = 64, batch = 4096, pooling = 8, steps = 10, batches = 16;
  double alpha = 1.05;
  SparseOptimizer optimizer = SparseOptimizer::Sgd;  // --optimizer (device runs)
  bool hot_rows = false;                             // --hot-rows (device runs)
  bool torch = false;
  std::string device = "cpu";
  TableDType dtype = TableDType::F32;  // --dtype: a second host step on 16-bit tables
  bool stochastic_rounding = false;    // --stochastic-rounding: that step rounds stochastically
  bool enforce =
      false;  // exit 3 when a target is missed (off by default: shared machines are noisy)
};

// Zipf(alpha) over [0, rows) by inverse CDF, then scattered: rank r -> (r * odd) mod rows, so hot
// rows are not neighbours in memory.
class ZipfIds {
 public:
  ZipfIds(int64_t rows, double alpha) : rows_(rows), cdf_(static_cast<size_t>(rows)) {
    double s = 0;
    for (int64_t r = 0; r < rows; ++r)
      cdf_[static_cast<size_t>(r)] = (s += 1.0 / std::pow(r + 1.0, alpha));
    for (double& x : cdf_) x /= s;
  }
  int64_t draw(std::mt19937_64& gen) const {
    const double u = std::uniform_real_distribution<double>(0, 1)(gen);
    const int64_t rank = std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
    const int64_t r = std::min(rank, rows_ - 1);
    return static_cast<int64_t>((static_cast<unsigned __int128>(r) * 2654435761u) %
                                static_cast<uint64_t>(rows_));
  }

 private:
  int64_t rows_;
  std::vector<double> cdf_;
};

// a.batches batches of T * B bags of L ids each (offsets multiples of L), ids Zipf(alpha) per table
// (alpha 0: uniform).
std::vector<Bags> make_batches(const Args& a, double alpha, std::mt19937_64& gen) {
  const int64_t T = a.tables, B = a.batch, L = a.pooling, nnz = T * B * L;
  const ZipfIds zipf(a.rows, alpha);
  std::vector<int64_t> offsets(static_cast<size_t>(T * B + 1));
  for (int64_t b = 0; b <= T * B; ++b) offsets[static_cast<size_t>(b)] = b * L;
  const Tensor off = Tensor::host_from<int64_t>({T * B + 1}, offsets);
  std::vector<Bags> batches;
  for (int64_t k = 0; k < a.batches; ++k) {
    Bags bags;
    bags.batch = B;
    bags.offsets = off;
    bags.indices = Tensor::host({nnz}, DType::I64);
    int64_t* ids = bags.indices.data<int64_t>();
    for (int64_t j = 0; j < nnz; ++j) ids[j] = zipf.draw(gen);
    batches.push_back(std::move(bags));
  }
  return batches;
}

// The most occurrences of one row in one table of one batch (what one row's gradient sums).
int64_t hottest_row(const Args& a, const std::vector<Bags>& batches) {
  const int64_t per_table = a.batch * a.pooling;
  int64_t best = 0;
  std::vector<int64_t> count(static_cast<size_t>(a.rows));
  for (const Bags& bags : batches)
    for (int64_t t = 0; t < a.tables; ++t) {
      std::fill(count.begin(), count.end(), 0);
      const int64_t* ids = bags.indices.data<int64_t>() + t * per_table;
      for (int64_t j = 0; j < per_table; ++j)
        best = std::max(best, ++count[static_cast<size_t>(ids[j])]);
    }
  return best;
}

bool write_raw(const std::string& path, const void* p, size_t bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(p), static_cast<std::streamsize>(bytes));
  return static_cast<bool>(out);
}

std::string json_field(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  size_t p = json.find(k);
  if (p == std::string::npos) return "null";
  p += k.size();
  while (p < json.size() && json[p] == ' ') ++p;
  size_t e = p;
  while (e < json.size() && json[e] != ',' && json[e] != '}') ++e;
  return json.substr(p, e - p);
}

// Device-to-device copy bandwidth (read + write bytes), best of `reps`, GB/s.
double device_copy_gbs(Backend& be, int64_t floats, int reps) {
  Tensor a = be.empty({floats}), b = be.empty({floats});
  be.copy(a, b);  // warm-up (first touch, clocks)
  be.synchronize();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s();
    be.copy(a, b);
    be.synchronize();
    best = std::min(best, now_s() - t0);
  }
  return 2.0 * static_cast<double>(floats) * 4.0 / best / 1e9;
}

// The timed steps (2 warm-up steps first) and the bytes one step moves.
struct StepTimes {
  double median = 0, best = 0, forward_median = 0;
  double update_median = 0;  // backward + update (the fused half), median over the steps
  double unique_rows = 0;    // distinct rows per batch, from the unfused backward (not timed)
};

// forward + fused backward/update per step, cycling the batches; `sync` (a device backend) is
// synchronised around each phase.
StepTimes time_steps(EmbeddingCollection& emb, const std::vector<Bags>& batches, const Tensor& dout,
                     int64_t steps, Backend* sync) {
  const int64_t nb = static_cast<int64_t>(batches.size());
  Tensor out;
  std::vector<double> times, fwd_times, upd_times;
  for (int64_t it = 0; it < steps + 2; ++it) {
    const Bags& bags = batches[static_cast<size_t>(it % nb)];
    if (sync) sync->synchronize();
    const double t0 = now_s();
    emb.forward(bags, out);
    if (sync) sync->synchronize();
    const double t1 = now_s();
    emb.backward_and_update(dout);
    if (sync) sync->synchronize();
    const double t2 = now_s();
    if (it >= 2) {
      times.push_back(t2 - t0);
      fwd_times.push_back(t1 - t0);
      upd_times.push_back(t2 - t1);
    }
  }
  StepTimes r;
  for (const Bags& bags : batches) {
    emb.forward(bags, out);
    r.unique_rows += static_cast<double>(emb.backward(dout).count);
  }
  r.unique_rows /= static_cast<double>(nb);
  std::sort(times.begin(), times.end());
  std::sort(fwd_times.begin(), fwd_times.end());
  r.median = times[times.size() / 2];
  r.best = times.front();
  r.forward_median = fwd_times[fwd_times.size() / 2];
  std::sort(upd_times.begin(), upd_times.end());
  r.update_median = upd_times[upd_times.size() / 2];
  return r;
}

// The header's byte model: forward rows + pooled out + ids + offsets; backward dout + ids + a read
// and a write of each touched row.
double step_bytes(const Args& a, int64_t nnz, double unique_rows, int64_t elem_bytes = 4) {
  const int64_t T = a.tables, B = a.batch, D = a.dim;
  const double row_bytes = static_cast<double>(D * elem_bytes);
  const double out_bytes = static_cast<double>(B * T * D) * 4;
  const double fwd = static_cast<double>(nnz) * row_bytes + out_bytes + nnz * 8.0 +
                     static_cast<double>(T * B + 1) * 8.0;
  const double bwd = out_bytes + nnz * 8.0 + unique_rows * row_bytes * 2;
  return fwd + bwd;
}

// The step on a device backend over `host` batches (uploaded first): forward + fused
// backward/update per step, synchronised around each phase.
StepTimes time_device(Backend& be, const Args& a, const std::vector<TableSpec>& specs,
                      const std::vector<Bags>& host, const Tensor& dout) {
  CollectionOptions opts;
  opts.optimizer.kind = a.optimizer;
  opts.optimizer.lr = 0.01f;
  EmbeddingCollection emb(specs, be, opts);
  std::vector<Bags> batches;
  for (const Bags& h : host) batches.push_back(bags_to(be, h));
  return time_steps(emb, batches, dout, a.steps, &be);
}

// Hot rows (--hot-rows): the same step on uniform ids, beside the Zipf run. A backward bound by
// its hottest row would make the Zipf step far slower than the uniform one although it touches
// fewer rows.
void report_hot_rows(Backend& be, const Args& a, const std::vector<TableSpec>& specs,
                     const std::vector<Bags>& zipf_batches, const Tensor& dout,
                     const StepTimes& zipf) {
  std::mt19937_64 gen(11);
  const std::vector<Bags> uniform_batches = make_batches(a, 0.0, gen);
  const StepTimes uni = time_device(be, a, specs, uniform_batches, dout);
  std::cout << "{\"bench\":\"embedding_bag_hot_rows_device\",\"device\":\"" << be.name()
            << "\",\"alpha\":" << a.alpha << ",\"optimizer\":\""
            << sparse_optimizer_name(a.optimizer)
            << "\",\"zipf_hottest_row_occurrences\":" << hottest_row(a, zipf_batches)
            << ",\"uniform_hottest_row_occurrences\":" << hottest_row(a, uniform_batches)
            << ",\"zipf_median_step_ms\":" << zipf.median * 1e3
            << ",\"uniform_median_step_ms\":" << uni.median * 1e3
            << ",\"zipf_unique_rows_per_batch\":" << zipf.unique_rows
            << ",\"uniform_unique_rows_per_batch\":" << uni.unique_rows
            << ",\"zipf_over_uniform\":" << zipf.median / uni.median << "}" << std::endl;
}

// The step on a device backend with the same byte model as the host's; the first batch's pooled
// output is checked against the host.
int run_device(const Args& a, const std::vector<TableSpec>& specs, const std::vector<Bags>& host,
               const Tensor& dout_host, int64_t nnz) {
  std::unique_ptr<Backend> be = make_backend(a.device);
  const int64_t T = a.tables, B = a.batch, D = a.dim;
  const double copy = device_copy_gbs(*be, int64_t{1} << 27, 5);
  std::cout << "{\"bench\":\"device_copy\",\"device\":\"" << be->name()
            << "\",\"array_mib\":512,\"gbs\":" << copy << "}" << std::endl;
  const Tensor dout = be->to_device(dout_host);
  // Check: the device's first forward equals the host's (same counter-based initial tables).
  double max_diff = 0;
  {
    CollectionOptions opts;
    auto hb = make_host_backend();
    EmbeddingCollection ref(specs, *hb, opts), emb(specs, *be, opts);
    Tensor ho, dev;
    ref.forward(host[0], ho);
    emb.forward(bags_to(*be, host[0]), dev);
    const Tensor d = be->to_host(dev);
    for (int64_t i = 0; i < ho.numel(); ++i)
      max_diff = std::max(max_diff,
                          static_cast<double>(std::fabs(ho.data<float>()[i] - d.data<float>()[i])));
    if (!(max_diff <= 1e-4)) {
      std::cerr << "embedding_bag_bench: device forward differs from the host by " << max_diff
                << "\n";
      return 1;
    }
  }
  const StepTimes st = time_device(*be, a, specs, host, dout);
  const double bytes = step_bytes(a, nnz, st.unique_rows);
  const double gbs = bytes / st.median / 1e9;
  std::cout << "{\"bench\":\"embedding_bag_step_device\",\"device\":\"" << be->name()
            << "\",\"tables\":" << T << ",\"rows\":" << a.rows << ",\"dim\":" << D
            << ",\"batch\":" << B << ",\"pooling\":" << a.pooling << ",\"alpha\":" << a.alpha
            << ",\"optimizer\":\"" << sparse_optimizer_name(a.optimizer)
            << "\",\"median_step_ms\":" << st.median * 1e3 << ",\"best_step_ms\":" << st.best * 1e3
            << ",\"forward_ms\":" << st.forward_median * 1e3
            << ",\"unique_rows_per_batch\":" << st.unique_rows << ",\"step_mb\":" << bytes / 1e6
            << ",\"gbs\":" << gbs << ",\"copy_gbs\":" << copy << ",\"ratio_to_copy\":" << gbs / copy
            << ",\"forward_max_abs_diff_vs_host\":" << max_diff << "}" << std::endl;
  if (a.hot_rows) report_hot_rows(*be, a, specs, host, dout, st);
  return 0;
}

// --dtype: the host step again on tables stored as a.dtype, beside the f32 step (f32_median s).
// The byte model's rows are 2 bytes an element there; pooled rows, ids and dout stay as they are.
void report_half_step(const Args& a, const std::vector<TableSpec>& specs,
                      const std::vector<Bags>& batches, const Tensor& dout, int64_t nnz,
                      double triad, double f32_median, double f32_gbs) {
  auto backend = make_host_backend();
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::Sgd;
  opts.optimizer.lr = 0.01f;
  opts.table_dtype = a.dtype;
  opts.stochastic_rounding = a.stochastic_rounding;
  EmbeddingCollection emb(specs, *backend, opts);
  const StepTimes st = time_steps(emb, batches, dout, a.steps, nullptr);
  const double bytes = step_bytes(a, nnz, st.unique_rows, table_dtype_bytes(a.dtype));
  const double gbs = bytes / st.median / 1e9;
  std::cout << "{\"bench\":\"embedding_bag_step_dtype\",\"dtype\":\"" << table_dtype_name(a.dtype)
            << "\",\"stochastic_rounding\":" << (a.stochastic_rounding ? "true" : "false")
            << ",\"avx512_bf16\":" << (cpu_has_avx512_bf16() ? "true" : "false")
            << ",\"median_step_ms\":" << st.median * 1e3 << ",\"best_step_ms\":" << st.best * 1e3
            << ",\"forward_ms\":" << st.forward_median * 1e3
            << ",\"backward_update_ms\":" << st.update_median * 1e3
            << ",\"step_mb\":" << bytes / 1e6 << ",\"gbs\":" << gbs
            << ",\"ratio_to_triad\":" << gbs / triad
            << ",\"f32_median_step_ms\":" << f32_median * 1e3 << ",\"f32_gbs\":" << f32_gbs
            << ",\"f32_ratio_to_triad\":" << f32_gbs / triad
            << ",\"speedup_vs_f32\":" << f32_median / st.median
            << ",\"target_speedup_vs_f32\":1.7,\"loadavg_1m\":" << loadavg() << "}" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "embedding_bag_bench: " << f << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (f == "--tables")
      a.tables = std::stoll(next());
    else if (f == "--rows")
      a.rows = std::stoll(next());
    else if (f == "--dim")
      a.dim = std::stoll(next());
    else if (f == "--batch")
      a.batch = std::stoll(next());
    else if (f == "--pooling")
      a.pooling = std::stoll(next());
    else if (f == "--steps")
      a.steps = std::stoll(next());
    else if (f == "--alpha")
      a.alpha = std::stod(next());
    else if (f == "--torch")
      a.torch = true;
    else if (f == "--enforce-targets")
      a.enforce = true;
    else if (f == "--device")
      a.device = next();
    else if (f == "--hot-rows")
      a.hot_rows = true;
    else if (f == "--stochastic-rounding")
      a.stochastic_rounding = true;
    else if (f == "--dtype") {
      try {
        a.dtype = parse_table_dtype(next().c_str());
      } catch (const std::exception& e) {
        std::cerr << "embedding_bag_bench: --dtype: " << e.what() << "\n";
        return 2;
      }
    } else if (f == "--optimizer") {
      const std::string name = next();
      bool known = false;
      for (SparseOptimizer k : {SparseOptimizer::Sgd, SparseOptimizer::Adagrad,
                                SparseOptimizer::RowwiseAdagrad, SparseOptimizer::LazyAdam})
        if (name == sparse_optimizer_name(k)) {
          a.optimizer = k;
          known = true;
        }
      if (!known) {
        std::cerr << "embedding_bag_bench: unknown --optimizer '" << name << "'\n";
        return 2;
      }
    } else if (f == "--quick") {
      a.rows = 20000;
      a.batch = 1024;
      a.steps = 5;
      a.batches = 4;
    } else if (f == "-h" || f == "--help") {
      std::cout
          << "embedding_bag_bench [--tables T] [--rows R] [--dim D] [--batch B] [--pooling L] "
             "[--alpha A] [--steps N] [--torch] [--quick] [--enforce-targets] "
             "[--device cpu|cuda|cuda:N|cuda-emu [--optimizer NAME] [--hot-rows]] "
             "[--dtype f32|bf16|f16 [--stochastic-rounding]]\n";
      return 0;
    } else {
      std::cerr << "embedding_bag_bench: unknown option '" << f << "' (see --help)\n";
      return 2;
    }
  }
  if (a.steps < 1 || a.tables < 1 || a.rows < 1 || a.dim < 1 || a.batch < 1 || a.pooling < 1) {
    std::cerr << "embedding_bag_bench: --steps, --tables, --rows, --dim, --batch and --pooling "
                 "must be >= 1\n";
    return 2;
  }
  if ((a.hot_rows || a.optimizer != SparseOptimizer::Sgd) && a.device == "cpu") {
    std::cerr << "embedding_bag_bench: --hot-rows and --optimizer apply to --device runs\n";
    return 2;
  }
  if (a.stochastic_rounding && a.dtype == TableDType::F32) {
    std::cerr << "embedding_bag_bench: --stochastic-rounding needs --dtype bf16|f16\n";
    return 2;
  }
  if (a.dtype != TableDType::F32 && a.device != "cpu") {
    std::cerr << "embedding_bag_bench: --dtype times the host step; the device kernels store f32 "
                 "tables\n";
    return 2;
  }
  if (a.torch && a.device != "cpu") {
    std::cerr << "embedding_bag_bench: --torch compares the host step; drop it with --device\n";
    return 2;
  }
  try {
    const int threads = omp_get_max_threads();
    const double triad = a.device == "cpu" ? triad_gbs(int64_t{1} << 25, 7) : 0.0;
    if (a.device == "cpu")
      std::cout << "{\"bench\":\"stream_triad\",\"threads\":" << threads
                << ",\"array_mib\":128,\"gbs\":" << triad << "}" << std::endl;

    // Batches: fixed L ids per bag (offsets are multiples of L), Zipf ids per table.
    const int64_t T = a.tables, B = a.batch, L = a.pooling, D = a.dim;
    const int64_t nnz = T * B * L;
    std::vector<TableSpec> specs;
    for (int64_t t = 0; t < T; ++t) specs.push_back({"t" + std::to_string(t), a.rows, D});
    std::mt19937_64 gen(7);
    char dir_template[] = "/tmp/tessera_embbench_XXXXXX";
    std::string dir;
    if (a.torch) {
      if (!mkdtemp(dir_template)) throw std::runtime_error("mkdtemp failed");
      dir = dir_template;
    }
    const std::vector<Bags> batches = make_batches(a, a.alpha, gen);
    for (int64_t k = 0; a.torch && k < a.batches; ++k) {
      const Tensor& ids = batches[static_cast<size_t>(k)].indices;
      if (!write_raw(dir + "/ids" + std::to_string(k) + ".bin", ids.data<int64_t>(),
                     static_cast<size_t>(nnz) * 8))
        throw std::runtime_error("cannot write " + dir);
    }
    Tensor dout = Tensor::host({B, T * D});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = 1e-3f * static_cast<float>((i * 7919) % 13 - 6);
    if (a.device != "cpu") return run_device(a, specs, batches, dout, nnz);

    auto backend = make_host_backend();
    CollectionOptions opts;
    opts.optimizer.kind = SparseOptimizer::Sgd;
    opts.optimizer.lr = 0.01f;
    EmbeddingCollection emb(specs, *backend, opts);

    // Check: the fused step equals the unfused one (backward, then update) on a copy, with
    // enough tables (2 per thread) that the fused step takes its one-table-per-thread path.
    {
      CollectionOptions small = opts;
      const int64_t n_check = std::min<int64_t>(T, std::max(3, 2 * threads));
      std::vector<TableSpec> few(specs.begin(), specs.begin() + n_check);
      EmbeddingCollection f(few, *backend, small), u(few, *backend, small);
      Bags bb;
      bb.batch = B;
      const int64_t n3 = static_cast<int64_t>(few.size()) * B * L;
      bb.indices = batches[0].indices.rows(0, n3);
      bb.offsets = batches[0].offsets.rows(0, static_cast<int64_t>(few.size()) * B + 1);
      Tensor o1, o2;
      f.forward(bb, o1);
      u.forward(bb, o2);
      Tensor d3 = Tensor::host({B, static_cast<int64_t>(few.size()) * D});
      for (int64_t i = 0; i < d3.numel(); ++i)
        d3.data<float>()[i] = 0.5f - static_cast<float>(i % 7) * 0.1f;
      f.backward_and_update(d3);
      u.apply(u.backward(d3));
      const Tensor w1 = f.weights_to_host(), w2 = u.weights_to_host();
      for (int64_t i = 0; i < w1.numel(); ++i)
        if (w1.data<float>()[i] != w2.data<float>()[i]) {
          std::cerr << "mismatch: fused vs unfused step at element " << i << "\n";
          return 1;
        }
    }

    const StepTimes st = time_steps(emb, batches, dout, a.steps, nullptr);
    const double med = st.median, fmed = st.forward_median, unique_rows = st.unique_rows;
    const double row_bytes = static_cast<double>(D) * 4;
    const double out_bytes = static_cast<double>(B * T * D) * 4;
    const double bytes = step_bytes(a, nnz, unique_rows);
    const double unique_bytes =
        unique_rows * row_bytes * 3 + 2 * out_bytes + nnz * 16.0 + (T * B + 1) * 8.0;
    const double gbs = bytes / med / 1e9;
    std::cout << "{\"bench\":\"embedding_bag_step\",\"tables\":" << T << ",\"rows\":" << a.rows
              << ",\"dim\":" << D << ",\"batch\":" << B << ",\"pooling\":" << L
              << ",\"alpha\":" << a.alpha << ",\"optimizer\":\"sgd\",\"threads\":" << threads
              << ",\"median_step_ms\":" << med * 1e3 << ",\"best_step_ms\":" << st.best * 1e3
              << ",\"forward_ms\":" << fmed * 1e3
              << ",\"backward_update_ms\":" << st.update_median * 1e3
              << ",\"unique_rows_per_batch\":" << unique_rows << ",\"step_mb\":" << bytes / 1e6
              << ",\"gbs\":" << gbs << ",\"ratio_to_triad\":" << gbs / triad
              << ",\"unique_bytes_gbs\":" << unique_bytes / med / 1e9 << "}" << std::endl;
    if (a.dtype != TableDType::F32) report_half_step(a, specs, batches, dout, nnz, triad, med, gbs);

    std::string torch_line;
    double torch_ms = -1;
    double torch_best_ms = -1;
    if (a.torch) {
      // Beside this source file (CMake compiles it by its absolute path).
      std::string here = __FILE__;
      here = here.substr(0, here.find_last_of('/'));
      const std::string script = here + "/torch_embedding_bag.py";
      // An argument vector, no shell: the paths are passed as they are.
      test::ProgramOptions po;
      po.env = {"OPENBLAS_CORETYPE=Cooperlake",
                "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp"};
      std::vector<std::string> py_args = {"/usr/bin/python3", script, "--dir", dir};
      const std::pair<const char*, int64_t> flags[] = {
          {"--tables", T},  {"--rows", a.rows},       {"--dim", D},         {"--batch", B},
          {"--pooling", L}, {"--batches", a.batches}, {"--steps", a.steps}, {"--threads", threads}};
      for (const auto& [flag, value] : flags) {
        py_args.push_back(flag);
        py_args.push_back(std::to_string(value));
      }
      const test::ProgramResult ran = test::run_program(py_args, po);
      std::cerr << ran.err;
      std::istringstream lines(ran.out);
      for (std::string line; std::getline(lines, line);) torch_line = line;
      const int rc = ran.status;
      for (int64_t k = 0; k < a.batches; ++k)
        unlink((dir + "/ids" + std::to_string(k) + ".bin").c_str());
      rmdir(dir.c_str());
      if (rc != 0 || torch_line.empty()) {
        std::cerr << "embedding_bag_bench: the PyTorch reference failed (rc " << rc << ")\n";
        return 1;
      }
      while (!torch_line.empty() && (torch_line.back() == '\n' || torch_line.back() == '\r'))
        torch_line.pop_back();
      std::cout << torch_line << std::endl;
      torch_ms = std::stod(json_field(torch_line, "median_step_ms"));
      torch_best_ms = std::stod(json_field(torch_line, "best_step_ms"));
    }
    const bool targets_met = gbs / triad >= 0.7 && (torch_ms <= 0 || torch_ms / (med * 1e3) >= 3.0);
    std::cout << "{\"bench\":\"embedding_bag_summary\",\"triad_gbs\":" << triad
              << ",\"step_gbs\":" << gbs << ",\"ratio_to_triad\":" << gbs / triad
              << ",\"target_ratio_to_triad\":0.7,\"median_step_ms\":" << med * 1e3
              << ",\"torch_median_step_ms\":" << (torch_ms > 0 ? std::to_string(torch_ms) : "null")
              << ",\"speedup_vs_torch\":"
              << (torch_ms > 0 ? std::to_string(torch_ms / (med * 1e3)) : "null")
              << ",\"best_speedup_vs_torch\":"
              << (torch_best_ms > 0 ? std::to_string(torch_best_ms / (st.best * 1e3)) : "null")
              << ",\"best_ratio_to_triad\":" << bytes / st.best / 1e9 / triad
              << ",\"target_speedup_vs_torch\":3,\"targets_met\":"
              << (targets_met ? "true" : "false") << ",\"loadavg_1m\":" << loadavg() << "}"
              << std::endl;
    if (a.enforce && !targets_met) {
      std::cerr << "embedding_bag_bench: targets missed (>= 0.7 of triad"
                << (a.torch ? ", >= 3x PyTorch" : "") << ")\n";
      return 3;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "embedding_bag_bench: " << e.what() << "\n";
    return 1;
  }
}
