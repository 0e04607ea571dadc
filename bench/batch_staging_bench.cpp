// Host -> device batch upload overlapped with compute (issue 7: pinned memory and a copy stream on
// GPU). Side by side in one process, alternating, --reps times (medians reported), `--steps`
// training-like steps of one [rows, width] f32 batch each:
//   compute_only  the batches already on the device: the compute alone (the floor)
//   sync_copy     Backend::copy from pageable host memory, then the compute (the old path:
//                 the copy waits on the compute stream and the host waits for it)
//   staged        Backend::make_batch_stager (3 slots), batch k+1 staged before batch k's
//                 compute is queued (pipelines/behaviour/train_feed.h's pattern)
// A step's compute: `--gemms` GEMMs [rows, width] x [width, width] plus acc += batch, so every
// mode's acc must come out bit-identical (exit 1 otherwise).
// hidden_copy_fraction = (sync_copy - staged) / (sync_copy - compute_only): 1 = the upload is
// entirely hidden behind compute, 0 = no overlap. On the host backend the stager copies nothing,
// so the figures only show its overhead. The summary line carries "device_memory" (the caching
// allocator's statistics: host/backend/memory_stats.h) for a backend that has them.
//
//   build/bench/batch_staging_bench [--device cuda|cpu] [--rows N] [--width N] [--steps N]
//                                   [--gemms N] [--reps N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "host/backend/backend.h"
#include "host/backend/memory_stats.h"
#include "host/core/error.h"

namespace {

using tessera::bench::loadavg;
using tessera::bench::median;

using namespace tessera;
using Clock = std::chrono::steady_clock;

struct Setup {
  std::string device = "cuda";
  int64_t rows = 8192, width = 256, steps = 40, gemms = 2;
  int reps = 3;
};

enum class Mode { ComputeOnly, SyncCopy, Staged };

struct Run {
  double seconds = 0;
  std::vector<float> acc;
};

Run run(Backend& be, const Setup& s, Mode mode, const std::vector<Tensor>& host_batches,
        const std::vector<Tensor>& device_batches, const Tensor& w) {
  Tensor acc = be.empty({s.rows, s.width}), out = be.empty({s.rows, s.width});
  Tensor dev = be.empty({s.rows, s.width}), vel;
  math::SgdParams add;
  add.lr = -1.f;  // acc -= -batch
  auto compute = [&](const Tensor& x) {
    for (int64_t g = 0; g < s.gemms; ++g)
      be.gemm(Transpose::No, Transpose::No, 1.f, x, w, 0.f, out);
    be.sgd_update(add, acc, x, vel);
  };
  const size_t nb = host_batches.size();
  be.synchronize();
  const auto t0 = Clock::now();
  if (mode == Mode::Staged) {
    auto st = be.make_batch_stager(3, {{{s.rows, s.width}, DType::F32}});
    BatchStager::Staged cur = st->stage({host_batches[0]}, s.rows);
    for (int64_t k = 0; k < s.steps; ++k) {
      BatchStager::Staged ahead;
      if (k + 1 < s.steps) ahead = st->stage({host_batches[(k + 1) % nb]}, s.rows);
      compute(cur.tensors[0]);
      st->release(cur);
      cur = ahead;
    }
  } else {
    for (int64_t k = 0; k < s.steps; ++k) {
      if (mode == Mode::SyncCopy) {
        be.copy(host_batches[k % nb], dev);
        compute(dev);
      } else {
        compute(device_batches[k % nb]);
      }
    }
  }
  be.synchronize();
  Run r;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  Tensor h = be.to_host(acc);
  r.acc.assign(h.data<float>(), h.data<float>() + h.numel());
  return r;
}

int64_t arg_int(int& i, int argc, char** argv) {
  TESSERA_CHECK(i + 1 < argc, argv[i] << " needs a value");
  return std::atoll(argv[++i]);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Setup s;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--device" && i + 1 < argc)
        s.device = argv[++i];
      else if (a == "--rows")
        s.rows = arg_int(i, argc, argv);
      else if (a == "--width")
        s.width = arg_int(i, argc, argv);
      else if (a == "--steps")
        s.steps = arg_int(i, argc, argv);
      else if (a == "--gemms")
        s.gemms = arg_int(i, argc, argv);
      else if (a == "--reps")
        s.reps = static_cast<int>(arg_int(i, argc, argv));
      else
        TESSERA_THROW(Usage, "unknown argument '" << a << "'");
    }
    TESSERA_CHECK(s.rows > 0 && s.width > 0 && s.steps > 1 && s.gemms >= 0 && s.reps > 0,
                  "--rows, --width, --reps > 0, --steps > 1, --gemms >= 0");
    auto be = make_backend(s.device);
    // A few distinct batches (pageable host memory, as the batcher makes them).
    std::vector<Tensor> host_batches, device_batches;
    for (int b = 0; b < 4; ++b) {
      Tensor h = Tensor::host({s.rows, s.width});
      float* p = h.data<float>();
      for (int64_t i = 0; i < h.numel(); ++i)
        p[i] = static_cast<float>((i * 7 + b * 13) % 17) / 16.f;
      host_batches.push_back(h);
      device_batches.push_back(be->to_device(h));
    }
    Tensor w = be->to_device(host_batches[1].rows(0, s.width));
    run(*be, s, Mode::Staged, host_batches, device_batches, w);  // warm-up (allocations, plans)
    std::vector<double> t_compute, t_sync, t_staged;
    bool identical = true;
    for (int r = 0; r < s.reps; ++r) {
      Run c = run(*be, s, Mode::ComputeOnly, host_batches, device_batches, w);
      Run y = run(*be, s, Mode::SyncCopy, host_batches, device_batches, w);
      Run g = run(*be, s, Mode::Staged, host_batches, device_batches, w);
      identical = identical && c.acc == y.acc && y.acc == g.acc;
      t_compute.push_back(c.seconds);
      t_sync.push_back(y.seconds);
      t_staged.push_back(g.seconds);
      std::printf("{\"rep\":%d,\"compute_only_s\":%.6f,\"sync_copy_s\":%.6f,\"staged_s\":%.6f}\n",
                  r, c.seconds, y.seconds, g.seconds);
    }
    const double c = median(t_compute), y = median(t_sync), g = median(t_staged);
    const double batch_mib = static_cast<double>(s.rows * s.width * 4) / (1 << 20);
    std::printf(
        "{\"bench\":\"batch_staging\",\"backend\":\"%s\",\"rows\":%lld,\"width\":%lld,"
        "\"batch_mib\":%.2f,\"steps\":%lld,\"gemms\":%lld,\"reps\":%d,\"compute_only_s\":%.6f,"
        "\"sync_copy_s\":%.6f,\"staged_s\":%.6f,\"staged_over_sync\":%.4f,"
        "\"staged_over_compute\":%.4f,\"hidden_copy_fraction\":%.4f,\"identical\":%s,"
        "\"loadavg\":%.2f%s}\n",
        be->name().c_str(), (long long)s.rows, (long long)s.width, batch_mib, (long long)s.steps,
        (long long)s.gemms, s.reps, c, y, g, g / y, g / c, y > c ? (y - g) / (y - c) : 0.0,
        identical ? "true" : "false", loadavg(), memory_stats_field(*be).c_str());
    if (!identical) {
      std::fprintf(stderr, "batch_staging_bench: the modes' results differ\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "batch_staging_bench: %s\n", e.what());
    return 1;
  }
}
