// The data side of issue 18 (streamed training >= 0.95x the in-memory path): what producing the
// training batches costs, without the model. One prepared split, read both ways in one process,
// alternating, --reps times (medians reported):
//   memory   read_prepared_table once (not timed), then a Batcher (per-epoch permutation) over it:
//            what data.read "memory" runs on its prefetch thread
//   stream   a PreparedSource (block shuffle + shuffle buffer on its prefetch thread): what
//            data.read "stream" runs
// Each run drains --epochs epochs of --batch rows through the source's queue, as the trainer does.
// Reported per batch: wall microseconds and the process's CPU microseconds (the prefetch thread's
// work: the consumer only waits). On a 2-core host the training step's threads share the cores
// with the prefetch thread, so its CPU time per batch is what the stream path takes from the
// step; stream_over_memory_cpu is that ratio (lower is better, 1 = as cheap as memory).
// first_batch_ms: from the source's construction to its first batch (medians), the wait a
// training run's first step sees; stream_with_checksum includes the shard checksum (the first
// reader of a freshly opened directory checks it), stream does not.
// Both modes must deliver the same rows (each epoch a permutation of the split): sums of the
// labels, line numbers and embedding rows are compared and the bench exits 1 on a mismatch.
//
//   build/bench/prepared_reader_bench --prepared DIR [--batch N] [--epochs E] [--reps R]
//                                     [--block-rows K] [--shuffle-buffer S] [--seed S]
// DIR: a `tessera prep` output (tools/stream_vs_memory.sh --work W leaves one in W/prepared).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "host/core/error.h"
#include "host/data/batcher.h"
#include "host/data/prepared.h"

namespace {

using tessera::bench::loadavg;
using tessera::bench::median;

using namespace tessera;
using Clock = std::chrono::steady_clock;

struct Setup {
  std::string prepared;
  int64_t batch = 1024, epochs = 2, block_rows = 4096, shuffle_buffer = 65536;
  uint64_t seed = 42;
  int reps = 5;
};

double cpu_seconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Order-free sums of what a run delivered: equal for two runs over the same rows.
struct Sums {
  double labels = 0;
  int64_t lines = 0, ids = 0, rows = 0, batches = 0;
  bool operator==(const Sums& o) const {
    return labels == o.labels && lines == o.lines && ids == o.ids && rows == o.rows;
  }
};

struct Run {
  double wall = 0, cpu = 0;
  Sums sums;
};

Run drain(BatchSource& src) {
  Run r;
  Batch b;
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  while (src.next(b)) {
    const float* l = b.labels.data<float>();
    for (int64_t i = 0; i < b.rows; ++i) r.sums.labels += l[i];
    for (int64_t x : b.lines) r.sums.lines += x;
    const int64_t* c = b.cat.data<int64_t>();
    const int64_t ids = b.cat.numel();
    for (int64_t i = 0; i < ids; ++i) r.sums.ids += c[i];
    r.sums.rows += b.rows;
    ++r.sums.batches;
  }
  r.wall = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpu = cpu_seconds() - c0;
  return r;
}

Run run_memory(const EncodedTable& t, const Setup& s) {
  BatcherOptions o;
  o.batch_size = s.batch;
  o.seed = s.seed;
  o.epochs = s.epochs;
  Batcher b(t, o);
  return drain(b);
}

Run run_stream(const PreparedDataset& ds, const Setup& s) {
  PreparedReadOptions o;
  o.batch_size = s.batch;
  o.shuffle = true;
  o.seed = s.seed;
  o.block_rows = s.block_rows;
  o.shuffle_buffer = s.shuffle_buffer;
  o.epochs = s.epochs;
  PreparedSource src(ds, o);
  return drain(src);
}

// Milliseconds from nothing to the first batch in hand, as a training run starts: memory, a
// Batcher over the table already read (data.read "memory" reads it before training); stream, the
// directory opened afresh and a PreparedSource (its first shard's checksum, the blocks the first
// batch draws on).
enum class First { Memory, Stream, StreamChecked };
double first_batch_ms(const EncodedTable& t, const Setup& s, First mode) {
  Batch b;
  const auto t0 = Clock::now();
  if (mode != First::Memory) {
    const PreparedDataset ds = PreparedDataset::open(s.prepared);
    PreparedReadOptions o;
    o.verify_checksums = mode == First::StreamChecked;
    o.batch_size = s.batch;
    o.shuffle = true;
    o.seed = s.seed;
    o.block_rows = s.block_rows;
    o.shuffle_buffer = s.shuffle_buffer;
    PreparedSource src(ds, o);
    src.next(b);
  } else {
    BatcherOptions o;
    o.batch_size = s.batch;
    o.seed = s.seed;
    Batcher src(t, o);
    src.next(b);
  }
  return 1e3 * std::chrono::duration<double>(Clock::now() - t0).count();
}

Setup parse(int argc, char** argv) {
  Setup s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "prepared_reader_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--prepared")
      s.prepared = val();
    else if (a == "--batch")
      s.batch = std::stoll(val());
    else if (a == "--epochs")
      s.epochs = std::stoll(val());
    else if (a == "--reps")
      s.reps = std::stoi(val());
    else if (a == "--block-rows")
      s.block_rows = std::stoll(val());
    else if (a == "--shuffle-buffer")
      s.shuffle_buffer = std::stoll(val());
    else if (a == "--seed")
      s.seed = std::stoull(val());
    else {
      std::fprintf(stderr, "prepared_reader_bench: unknown argument '%s'\n", a.c_str());
      std::exit(2);
    }
  }
  if (s.prepared.empty() || s.reps < 1) {
    std::fprintf(stderr, "prepared_reader_bench: --prepared DIR is required (reps >= 1)\n");
    std::exit(2);
  }
  return s;
}

void print_mode(const char* name, const std::vector<Run>& runs, bool last) {
  std::vector<double> wall, cpu;
  const double nb = static_cast<double>(runs[0].sums.batches);
  for (const Run& r : runs) {
    wall.push_back(1e6 * r.wall / nb);
    cpu.push_back(1e6 * r.cpu / nb);
  }
  std::printf("\"%s\": {\"wall_us_per_batch\": [", name);
  for (size_t i = 0; i < wall.size(); ++i) std::printf("%s%.1f", i ? ", " : "", wall[i]);
  std::printf("], \"cpu_us_per_batch\": [");
  for (size_t i = 0; i < cpu.size(); ++i) std::printf("%s%.1f", i ? ", " : "", cpu[i]);
  std::printf("], \"median_wall_us\": %.1f, \"median_cpu_us\": %.1f}%s", median(wall), median(cpu),
              last ? "" : ", ");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Setup s = parse(argc, argv);
    const PreparedDataset ds = PreparedDataset::open(s.prepared);
    ds.verify("train");  // both modes start with checked shards: the checksum is not timed
    const EncodedTable table = read_prepared_table(ds, "train");
    std::vector<Run> mem, str;
    std::vector<double> first_mem, first_str, first_checked;
    for (int r = 0; r < s.reps; ++r) {
      mem.push_back(run_memory(table, s));
      str.push_back(run_stream(ds, s));
      first_mem.push_back(first_batch_ms(table, s, First::Memory));
      first_str.push_back(first_batch_ms(table, s, First::Stream));
      first_checked.push_back(first_batch_ms(table, s, First::StreamChecked));
    }
    bool ok = true;
    for (size_t i = 0; i < mem.size(); ++i)
      ok = ok && mem[i].sums == mem[0].sums && str[i].sums == mem[0].sums;
    auto med = [](const std::vector<Run>& v, bool cpu) {
      std::vector<double> x;
      for (const Run& r : v) x.push_back(cpu ? r.cpu : r.wall);
      return median(x);
    };
    std::printf(
        "{\"bench\": \"prepared_reader\", \"rows\": %lld, \"batch\": %lld, \"epochs\": %lld, "
        "\"block_rows\": %lld, \"shuffle_buffer\": %lld, \"reps\": %d, \"loadavg\": %.2f, ",
        (long long)table.rows, (long long)s.batch, (long long)s.epochs, (long long)s.block_rows,
        (long long)s.shuffle_buffer, s.reps, loadavg());
    print_mode("memory", mem, false);
    print_mode("stream", str, false);
    std::printf(
        "\"first_batch_ms\": {\"memory\": %.1f, \"stream\": %.1f, "
        "\"stream_with_checksum\": %.1f}, ",
        median(first_mem), median(first_str), median(first_checked));
    std::printf(
        "\"stream_over_memory_cpu\": %.3f, \"stream_over_memory_wall\": %.3f, "
        "\"same_rows\": %s}\n",
        med(str, true) / med(mem, true), med(str, false) / med(mem, false), ok ? "true" : "false");
    if (!ok) {
      std::fprintf(stderr, "prepared_reader_bench: the modes delivered different rows\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prepared_reader_bench: %s\n", e.what());
    return 1;
  }
}
