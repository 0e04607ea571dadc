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
// Prints one JSON line per repetition and a summary line (last); exits 1 when the target is
// missed or a run fails.
//
//   build/bench/pipeline_overlap_bench [--pipeline PATH] [--reps N] [--target R]
// Run from the repository root (datasets are found as for `tessera run`).
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/commands.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/stages.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double loadavg() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  f >> l;
  return l;
}

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

}  // namespace

int main(int argc, char** argv) {
  std::string pipeline = "pipelines/behaviour/pipeline.json";
  int reps = 2;
  double target = 1.1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--pipeline" && i + 1 < argc) {
      pipeline = argv[++i];
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--target" && i + 1 < argc) {
      target = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--pipeline PATH] [--reps N] [--target R]\n", argv[0]);
      return 2;
    }
  }
  char tmpl[] = "/tmp/tessera-overlap-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string tmp = tmpl;
  int status = 0;
  try {
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
    const double ratio = median(pipe_s) / median(alone_s);
    const double ratio_min = *std::min_element(pipe_s.begin(), pipe_s.end()) /
                             *std::min_element(alone_s.begin(), alone_s.end());
    const bool met = ratio <= target;
    std::printf(
        "{\"bench\":\"pipeline_overlap_summary\",\"pipeline\":\"%s\",\"reps\":%d,"
        "\"pipeline_seconds\":%.3f,\"pipeline_jobs1_seconds\":%.3f,\"train_stage_seconds\":%.3f,"
        "\"train_alone_seconds\":%.3f,\"prep_before_training_seconds\":%.3f,\"ratio\":%.4f,"
        "\"ratio_min\":%.4f,\"ratio_paired\":%.4f,\"ratio_jobs1\":%.4f,\"target\":%.2f,\"target_"
        "met\":%s,\"loadavg_1m\":%"
        ".2f}\n",
        pipeline.c_str(), reps, median(pipe_s), median(pipe1_s), median(train_stage_s),
        median(alone_s), median(prep_s), ratio, ratio_min, median(paired),
        median(pipe1_s) / median(alone_s), target, met ? "true" : "false", loadavg());
    status = met ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipeline_overlap_bench: %s\n", e.what());
    std::printf("{\"bench\":\"pipeline_overlap_summary\",\"error\":true}\n");
    status = 1;
  }
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  return status;
}
