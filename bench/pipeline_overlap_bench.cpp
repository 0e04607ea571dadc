// The issue-7 target: on the behaviour-prediction pipeline, end-to-end wall time with data
// preparation overlapped <= 1.1x the training time alone.
//
// Side by side in one process, alternating, `--reps` times (medians reported):
//   pipeline       run_command() on the pipeline (default pipelines/behaviour/pipeline.json)
//                  into a fresh runs directory, so nothing is cached: prep -> train ->
//                  {evaluate, batch-score} with the scheduler's worker pool, plus the report.
//   pipeline_jobs1 the same with one worker (stages one after another): what the pool saves.
//   train_alone    behaviour::train() on the config the pipeline's prep stage chose, with every
//                  file encoded before the first step (TestPrep::BeforeTraining) and the same
//                  per-epoch checkpoints as the train stage; its "fit_seconds" (epochs,
//                  validation, checkpoints, final evaluation, model file: everything after the
//                  data is in memory) is the training time alone.
// ratio = median(pipeline) / median(train_alone), judged against the target; ratio_min uses
// each side's fastest repetition, and ratio_paired = median over repetitions of the pipeline's
// wall time / its own train stage's fit_seconds (both from one run, so the load that slows one
// slows the other; less sensitive to other processes on a shared machine).
// Prints one JSON line per repetition and a summary line (last) with the ratio and "target_met".
// A ratio is a measurement, noisy on a shared machine: a missed target is reported, not a
// failure, unless --enforce-target asks for one (exit 3). Exit 1 only when a run fails, 2 on a
// usage error.
//
//   build/bench/pipeline_overlap_bench [--pipeline PATH] [--reps N] [--target R]
//                                      [--enforce-target] [--check-args]
// Runs from any working directory: the source tree is $TESSERA_SOURCE_DIR, else the one the
// binary was built from (BUILD/CMakeCache.txt beside BUILD/bench/), else the working directory.
// The default pipeline is the source tree's; a relative --pipeline is taken from the working
// directory, else from the source tree. TESSERA_SOURCE_DIR is set for the runs (datasets are then
// found beside the source tree, as for `tessera run` there). --check-args parses the arguments,
// resolves the pipeline, prints them as one JSON line and exits (tools/gpu-check.sh --dry-run).
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/commands.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/stages.h"

namespace {

using tessera::bench::loadavg;
using tessera::bench::median;

using Clock = std::chrono::steady_clock;

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject())
    TESSERA_THROW(Internal, "not a JSON object: " << text.substr(0, 200));
  return d;
}

struct PipelineTiming {
  double seconds = 0;
  std::string config;  // what the prep stage chose
  double train_stage_seconds = 0;
  double train_fit_seconds = 0;  // the train stage's own training time, in the same run
  int64_t epochs = 0;
};

PipelineTiming run_pipeline_once(const std::string& pipeline, const std::string& runs_dir,
                                 int jobs) {
  namespace sched = tessera::scheduler;
  sched::StageRegistry registry;
  tessera::behaviour::register_stages(registry);
  sched::RunOptions o;
  o.runs_dir = runs_dir;
  o.quiet = true;
  o.jobs = jobs;
  const auto t0 = Clock::now();
  const sched::CommandResult r = sched::run_command(pipeline, registry, o, sched::Execution::Run);
  PipelineTiming t;
  t.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const rapidjson::Document d = parse(r.json);
  for (const auto& s : d["stages"].GetObject()) {
    const std::string kind = s.value["kind"].GetString();
    const auto& res = s.value["result"];
    if (kind == "prep") t.config = res["config"].GetString();
    if (kind == "train") {
      t.epochs = res["epochs"].GetInt64();
      t.train_fit_seconds = res["fit_seconds"].GetDouble();
    }
  }
  std::ifstream lines(d["run_dir"].GetString() + std::string("/stages.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const rapidjson::Document s = parse(line);
    if (std::string(s["kind"].GetString()) == "train")
      t.train_stage_seconds = s["seconds"].GetDouble();
  }
  return t;
}

struct AloneTiming {
  double fit_seconds = 0, prep_seconds = 0;
  int64_t epochs = 0;
};

AloneTiming train_alone(const std::string& config, const std::string& run_dir) {
  tessera::behaviour::TrainOptions o;
  o.quiet = true;
  o.resume = run_dir;
  o.test_prep = tessera::behaviour::TestPrep::BeforeTraining;
  const tessera::behaviour::Result r = tessera::behaviour::train(config, o);
  const rapidjson::Document d = parse(r.json);
  return {d["fit_seconds"].GetDouble(), d["prep_seconds"].GetDouble(), d["epochs"].GetInt64()};
}

namespace fs = std::filesystem;

// `s` inside a JSON string literal (paths in the output lines).
std::string json_escaped(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) o += c;
  }
  return o;
}

// The source tree of this checkout (see the header): "" when none is found.
std::string source_dir(const char* argv0) {
  if (const char* env = std::getenv("TESSERA_SOURCE_DIR"); env != nullptr && *env != '\0')
    return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) exe = fs::absolute(argv0, ec);
  // BUILD/bench/pipeline_overlap_bench: BUILD/CMakeCache.txt names the source tree.
  std::ifstream cache(exe.parent_path().parent_path() / "CMakeCache.txt");
  const std::string key = "CMAKE_HOME_DIRECTORY:INTERNAL=";
  for (std::string line; std::getline(cache, line);)
    if (line.compare(0, key.size(), key) == 0) return line.substr(key.size());
  if (fs::exists("pipelines/behaviour/pipeline.json", ec)) return fs::current_path(ec).string();
  return "";
}

struct Args {
  std::string pipeline;  // "" = the source tree's default
  int reps = 2;
  double target = 1.1;
  bool enforce_target = false;
  bool check_args = false;
};

// Parses the command line; false (after the usage line) on a usage error.
bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    const bool has_value = i + 1 < argc;
    if (f == "--pipeline" && has_value) {
      a.pipeline = argv[++i];
    } else if (f == "--reps" && has_value) {
      a.reps = std::atoi(argv[++i]);
    } else if (f == "--target" && has_value) {
      a.target = std::atof(argv[++i]);
    } else if (f == "--enforce-target") {
      a.enforce_target = true;
    } else if (f == "--check-args") {
      a.check_args = true;
    } else {
      std::fprintf(stderr, "pipeline_overlap_bench: unknown or incomplete option '%s'\n",
                   f.c_str());
      a.reps = 0;
      break;
    }
  }
  if (a.reps < 1 || !(a.target > 0)) {
    std::fprintf(stderr,
                 "usage: pipeline_overlap_bench [--pipeline PATH] [--reps N >= 1] [--target R > 0] "
                 "[--enforce-target] [--check-args]\n");
    return false;
  }
  return true;
}

// The pipeline file to run (see the header); "" when it cannot be found, with the reason in `why`.
std::string resolve_pipeline(const Args& a, const std::string& src, std::string& why) {
  std::error_code ec;
  if (a.pipeline.empty()) {
    if (src.empty()) {
      why = "no source tree: set TESSERA_SOURCE_DIR or give --pipeline";
      return "";
    }
    const std::string p = src + "/pipelines/behaviour/pipeline.json";
    if (fs::exists(p, ec)) return p;
    why = p + " not found";
    return "";
  }
  if (fs::exists(a.pipeline, ec)) return fs::absolute(a.pipeline, ec).string();
  if (!src.empty() && fs::path(a.pipeline).is_relative() && fs::exists(src + "/" + a.pipeline, ec))
    return src + "/" + a.pipeline;
  why = a.pipeline + " not found (from the working directory" +
        (src.empty() ? std::string(")") : " or " + src + ")");
  return "";
}

struct Medians {
  double pipeline = 0, pipeline_jobs1 = 0, train_stage = 0, alone = 0, prep = 0, paired = 0;
  double ratio = 0, ratio_min = 0;
};

// Runs the three variants `reps` times, printing one line per repetition.
Medians measure(const std::string& pipeline, int reps, const std::string& tmp) {
  std::vector<double> pipe_s, pipe1_s, alone_s, train_stage_s, prep_s, paired;
  for (int rep = 0; rep < reps; ++rep) {
    const std::string r = std::to_string(rep);
    const PipelineTiming p = run_pipeline_once(pipeline, tmp + "/runs-" + r, /*jobs=*/0);
    const PipelineTiming p1 = run_pipeline_once(pipeline, tmp + "/runs1-" + r, /*jobs=*/1);
    const AloneTiming a = train_alone(p.config, tmp + "/alone-" + r);
    if (a.epochs != p.epochs)
      TESSERA_THROW(Internal,
                    "the pipeline trained " << p.epochs << " epochs, the reference " << a.epochs);
    pipe_s.push_back(p.seconds);
    pipe1_s.push_back(p1.seconds);
    alone_s.push_back(a.fit_seconds);
    train_stage_s.push_back(p.train_stage_seconds);
    prep_s.push_back(a.prep_seconds);
    paired.push_back(p.seconds / p.train_fit_seconds);
    std::printf(
        "{\"bench\":\"pipeline_overlap\",\"rep\":%d,\"pipeline_seconds\":%.3f,"
        "\"pipeline_jobs1_seconds\":%.3f,\"train_stage_seconds\":%.3f,"
        "\"train_alone_seconds\":%.3f,\"prep_before_training_seconds\":%.3f,\"ratio\":%.4f,"
        "\"ratio_paired\":%.4f,\"loadavg_1m\":%.2f}\n",
        rep, p.seconds, p1.seconds, p.train_stage_seconds, a.fit_seconds, a.prep_seconds,
        p.seconds / a.fit_seconds, paired.back(), loadavg());
    std::fflush(stdout);
  }
  Medians m{median(pipe_s),  median(pipe1_s), median(train_stage_s),
            median(alone_s), median(prep_s),  median(paired)};
  m.ratio = m.pipeline / m.alone;
  m.ratio_min = *std::min_element(pipe_s.begin(), pipe_s.end()) /
                *std::min_element(alone_s.begin(), alone_s.end());
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse_args(argc, argv, args)) return 2;
  const std::string src = source_dir(argv[0]);
  std::string why;
  const std::string pipeline = resolve_pipeline(args, src, why);
  if (pipeline.empty()) {
    std::fprintf(stderr, "pipeline_overlap_bench: %s\n", why.c_str());
    return 2;
  }
  if (args.check_args) {
    std::printf(
        "{\"bench\":\"pipeline_overlap\",\"check_args\":true,\"pipeline\":\"%s\",\"source_dir\":"
        "\"%s\",\"reps\":%d,\"target\":%.3f,\"enforce_target\":%s}\n",
        json_escaped(pipeline).c_str(), json_escaped(src).c_str(), args.reps, args.target,
        args.enforce_target ? "true" : "false");
    return 0;
  }
  if (!src.empty()) ::setenv("TESSERA_SOURCE_DIR", src.c_str(), /*overwrite=*/0);
  char tmpl[] = "/tmp/tessera-overlap-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string tmp = tmpl;
  int status = 0;
  try {
    const Medians m = measure(pipeline, args.reps, tmp);
    const bool met = m.ratio <= args.target;
    std::printf(
        "{\"bench\":\"pipeline_overlap_summary\",\"pipeline\":\"%s\",\"reps\":%d,"
        "\"pipeline_seconds\":%.3f,\"pipeline_jobs1_seconds\":%.3f,\"train_stage_seconds\":%.3f,"
        "\"train_alone_seconds\":%.3f,\"prep_before_training_seconds\":%.3f,\"ratio\":%.4f,"
        "\"ratio_min\":%.4f,\"ratio_paired\":%.4f,\"ratio_jobs1\":%.4f,\"target\":%.2f,"
        "\"target_met\":%s,\"target_enforced\":%s,\"loadavg_1m\":%.2f}\n",
        json_escaped(pipeline).c_str(), args.reps, m.pipeline, m.pipeline_jobs1, m.train_stage,
        m.alone, m.prep, m.ratio, m.ratio_min, m.paired, m.pipeline_jobs1 / m.alone, args.target,
        met ? "true" : "false", args.enforce_target ? "true" : "false", loadavg());
    if (!met)
      std::fprintf(stderr, "pipeline_overlap_bench: ratio %.4f above the target %.2f%s\n", m.ratio,
                   args.target, args.enforce_target ? " (enforced: exit 3)" : " (reported only)");
    status = met || !args.enforce_target ? 0 : 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipeline_overlap_bench: %s\n", e.what());
    std::printf("{\"bench\":\"pipeline_overlap_summary\",\"error\":true}\n");
    status = 1;
  }
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  return status;
}
