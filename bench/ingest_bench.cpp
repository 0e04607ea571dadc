// Where `tessera prep`'s time goes (issue 18 deliver 7, bench/ingest.sh's breakdown): on one
// behaviour config (csv or criteo; its train file, plus validation/test when the config has them),
// each phase timed on its own, alternating, --reps times (medians and bests reported):
//   read     the train file read sequentially in 1 MiB blocks, newlines counted (the floor any
//            text reader pays: the page cache's bandwidth)
//   records  the train file split into records and fields by RecordReader (the writer's one
//            serial reader stream), nothing parsed
//   fit      fit_preprocessor_threads on the train file with --threads (pass 1: vocabularies and
//            normalisers, as prepare fits them)
//   prepare  prepare_dataset into a fresh directory with --threads (pass 1 again, then pass 2:
//            parse, encode, write the shards): what `tessera prep` runs
// encode_write = prepare - fit (pass 2 alone). Rows/s and MB/s are over the train file.
//
//   build/bench/ingest_bench --config CONFIG [--out DIR] [--threads N] [--reps N]
//                            [--shard-rows N] [--phases read,records,fit,prepare]
// --shard-rows (prep's default 262144): rows per shard; a smaller value writes more shards (and
// the manifest, which carries the fitted vocabularies, once per shard), so two runs with
// different values show what a shard costs beyond its rows.
// Output: one JSON line per phase and repetition, then a summary line. Exit 1 on a failure.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "host/core/error.h"
#include "host/data/encoded_table.h"
#include "host/data/prepared_writer.h"
#include "host/data/record_reader.h"
#include "pipelines/behaviour/prep.h"

namespace {

using tessera::bench::loadavg;
using tessera::bench::median;

using namespace tessera;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Setup {
  std::string config, out;
  int threads = 2;
  int reps = 3;
  int64_t shard_rows = int64_t{1} << 18;
  std::vector<std::string> phases = {"read", "records", "fit", "prepare"};
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = std::min(s.find(',', at), s.size());
    if (comma > at) out.push_back(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

Setup parse_args(int argc, char** argv) {
  Setup s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) TESSERA_THROW(Usage, a << " needs a value");
      return argv[++i];
    };
    if (a == "--config")
      s.config = value();
    else if (a == "--out")
      s.out = value();
    else if (a == "--threads")
      s.threads = std::stoi(value());
    else if (a == "--reps")
      s.reps = std::stoi(value());
    else if (a == "--shard-rows")
      s.shard_rows = std::stoll(value());
    else if (a == "--phases")
      s.phases = split_commas(value());
    else
      TESSERA_THROW(Usage, "unknown option '" << a << "' (see the header of ingest_bench.cpp)");
  }
  if (s.config.empty()) TESSERA_THROW(Usage, "--config CONFIG is required");
  if (s.threads < 1 || s.reps < 1 || s.shard_rows < 1)
    TESSERA_THROW(Usage, "--threads, --reps and --shard-rows must be >= 1");
  for (const std::string& p : s.phases)
    if (p != "read" && p != "records" && p != "fit" && p != "prepare")
      TESSERA_THROW(Usage, "unknown phase '" << p << "' (read, records, fit, prepare)");
  if (s.out.empty()) s.out = behaviour::default_prepared_dir(s.config) + "-ingest-bench";
  return s;
}

// One phase once: its seconds and the rows it saw (-1 where the phase does not count rows).
struct PhaseRun {
  double seconds = 0;
  int64_t rows = -1;
  int64_t shards = -1;  // prepare only
};

PhaseRun time_read(const std::string& path) {
  const auto t0 = Clock::now();
  std::FILE* f = std::fopen(path.c_str(), "rb");
  TESSERA_CHECK(f != nullptr, path << ": cannot open");
  std::vector<char> buf(size_t{1} << 20);
  int64_t lines = 0;
  size_t got = 0;
  while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0)
    lines += std::count(buf.data(), buf.data() + got, '\n');
  std::fclose(f);
  return {seconds_since(t0), lines};
}

PhaseRun time_records(const PrepareInputs& in) {
  const auto t0 = Clock::now();
  RecordReader reader(in.train, in.schema);
  Record rec;
  int64_t fields = 0;
  while (reader.next(rec)) fields += static_cast<int64_t>(rec.fields.size());
  TESSERA_CHECK(fields > 0, in.train.path << ": no fields read");
  return {seconds_since(t0), reader.records_read()};
}

PhaseRun time_fit(const PrepareInputs& in, int threads) {
  const auto t0 = Clock::now();
  // As prepare_dataset selects the rows it fits on.
  const bool all = in.validation || in.validation_fraction == 0;
  const RowSelection rows{all ? SplitPart::All : SplitPart::Train, in.validation_fraction, in.seed};
  const Preprocessor pre = fit_preprocessor_threads(in.train, in.schema, in.options, rows, threads);
  TESSERA_CHECK(pre.n_dense() + pre.n_cat() > 0, "fit: no features");
  return {seconds_since(t0), -1};
}

PhaseRun time_prepare(const PrepareInputs& in, const Setup& s) {
  std::filesystem::remove_all(s.out);
  PrepareOptions o;
  o.threads = s.threads;
  o.shard_rows = s.shard_rows;
  o.quiet = true;
  const auto t0 = Clock::now();
  const PrepareResult r = prepare_dataset(in, s.out, o);
  const double sec = seconds_since(t0);
  TESSERA_CHECK(r.status == PrepareStatus::Prepared,
                "prepare: status " << prepare_status_name(r.status));
  int64_t rows = 0;
  for (const auto& [split, n] : r.rows) rows += n;
  return {sec, rows, r.shards_written};
}

// The summary's "phases" object (medians and bests per phase) and prepare - fit in medians
// (-1 unless both phases ran).
std::string phases_json(const Setup& s, const std::vector<std::vector<double>>& times,
                        const std::vector<std::vector<double>>& cpus, double mb, int64_t train_rows,
                        double* encode_write) {
  std::string out;
  double fit_med = -1, prep_med = -1;
  for (size_t p = 0; p < s.phases.size(); ++p) {
    const double med = median(times[p]);
    const double best = *std::min_element(times[p].begin(), times[p].end());
    if (s.phases[p] == "fit") fit_med = med;
    if (s.phases[p] == "prepare") prep_med = med;
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "%s\"%s\":{\"median_s\":%.4f,\"best_s\":%.4f,\"median_cpu_s\":%.4f,"
                  "\"train_mb_per_s\":%.1f",
                  out.empty() ? "" : ",", s.phases[p].c_str(), med, best, median(cpus[p]),
                  mb / med);
    out += buf;
    if (train_rows > 0) {
      std::snprintf(buf, sizeof buf, ",\"train_rows_per_s\":%.0f,\"train_rows_per_cpu_s\":%.0f",
                    static_cast<double>(train_rows) / med,
                    static_cast<double>(train_rows) / median(cpus[p]));
      out += buf;
    }
    out += "}";
  }
  *encode_write = fit_med >= 0 && prep_med >= 0 ? prep_med - fit_med : -1.0;
  return out;
}

int run(const Setup& s) {
  const PrepareInputs in = behaviour::prepare_inputs_of(s.config);
  const double mb = static_cast<double>(std::filesystem::file_size(in.train.path)) / 1e6;
  std::vector<std::vector<double>> times(s.phases.size()), cpus(s.phases.size());
  int64_t train_rows = -1;
  for (int rep = 0; rep < s.reps; ++rep) {
    for (size_t p = 0; p < s.phases.size(); ++p) {
      const std::string& name = s.phases[p];
      const std::clock_t c0 = std::clock();  // the process's CPU time: every thread
      const PhaseRun r = name == "read"      ? time_read(in.train.path)
                         : name == "records" ? time_records(in)
                         : name == "fit"     ? time_fit(in, s.threads)
                                             : time_prepare(in, s);
      if (name == "records" || (name == "prepare" && train_rows < 0)) train_rows = r.rows;
      const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
      times[p].push_back(r.seconds);
      cpus[p].push_back(cpu);
      std::printf(
          "{\"phase\":\"%s\",\"rep\":%d,\"seconds\":%.4f,\"cpu_s\":%.4f,\"rows\":%lld,"
          "\"shards\":%lld,\"loadavg\":%.2f}\n",
          name.c_str(), rep, r.seconds, cpu, static_cast<long long>(r.rows),
          static_cast<long long>(r.shards), loadavg());
      std::fflush(stdout);
    }
  }
  std::filesystem::remove_all(s.out);
  double encode_write = -1;
  const std::string phases = phases_json(s, times, cpus, mb, train_rows, &encode_write);
  std::printf(
      "{\"summary\":\"ingest_bench\",\"config\":\"%s\",\"threads\":%d,\"reps\":%d,"
      "\"shard_rows\":%lld,"
      "\"train_mb\":%.2f,\"train_rows\":%lld,\"phases\":{%s},\"encode_write_median_s\":%.4f,"
      "\"loadavg\":%.2f}\n",
      s.config.c_str(), s.threads, s.reps, static_cast<long long>(s.shard_rows), mb,
      static_cast<long long>(train_rows), phases.c_str(), encode_write, loadavg());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ingest_bench: %s\n", e.what());
    return 1;
  }
}
