#include "pipelines/behaviour/stages.h"

#include <cstdio>

#include "host/config/json_reader.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/registry.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/behaviour_config.h"
#include "pipelines/behaviour/prep.h"
#include "pipelines/behaviour/synthetic.h"
#include "pipelines/task_stages.h"

namespace tessera::behaviour {

namespace {

// The scheduler's stage API, which every function here is written against.
using namespace scheduler;

enum class Source : uint8_t { Auto, Dataset, Synthetic };

struct PrepConfig {
  Source source = Source::Auto;
  std::string config;  // resolved against the pipeline file
  int64_t synthetic_rows = 20000;
  bool prepare = false;  // also write the data as a prepared dataset (docs/prepared-format.md)
  int64_t shard_rows = int64_t{1} << 18;
};

struct ScoreConfig {
  int64_t batch_size = 4096;
};

PrepConfig parse_prep(const PipelineSpec& p, const StageSpec& s) {
  PrepConfig c;
  scheduler::read_stage_config(p, s, [&](json::ObjectReader& r) {
    c.source = r.choice("source", Source::Auto,
                        json::Choices<Source>{{"auto", Source::Auto},
                                              {"dataset", Source::Dataset},
                                              {"synthetic", Source::Synthetic}});
    // Absolute and free of symlinks: outputs stay valid from any working directory, and the
    // stage key does not depend on where the run was started.
    c.config = scheduler::resolve_spec_path(p, r.string("config", "", json::Text::Any));
    c.synthetic_rows = r.integer<int64_t>("synthetic_rows", 20000, json::IntBounds::at_least(100));
    c.prepare = r.boolean("prepare", false);
    c.shard_rows =
        r.integer<int64_t>("shard_rows", int64_t{1} << 18, json::IntBounds::closed(1, 1LL << 40));
    if (c.source != Source::Synthetic && c.config.empty())
      r.error("config", "source '" + std::string(c.source == Source::Auto ? "auto" : "dataset") +
                            "' needs the behaviour config whose data to use");
  });
  return c;
}

ScoreConfig parse_score(const PipelineSpec& p, const StageSpec& s) {
  ScoreConfig c;
  scheduler::read_stage_config(p, s, [&](json::ObjectReader& r) {
    c.batch_size = r.integer<int64_t>("batch_size", 4096, json::IntBounds::closed(1, 1 << 24));
  });
  return c;
}

// A config file's path: relative to the registry's dataset folder when the config names a
// dataset, else as written.
struct FoundData {
  bool found = false;
  std::string train, test;
  int test_skip_lines = 0;
  std::string searched;  // where we looked, for messages
};

FoundData find_local_data(const BehaviourConfig& cfg) {
  FoundData f;
  if (!cfg.data.test) {
    f.searched = "(the config has no data.test file to evaluate on)";
    return f;
  }
  f.test_skip_lines = cfg.data.test->skip_lines;  // a header line is checked by the reader
  auto locate = [&](const std::string& rel, std::string* out) {
    *out = scheduler::find_local_dataset_file(cfg.data.dataset, rel);
    if (cfg.data.dataset.empty() || (!rel.empty() && rel[0] == '/')) {
      f.searched += " " + rel;
      return;
    }
    for (const SearchDir& d : dataset_search_dirs(cfg.data.dataset))
      f.searched += " " + d.path + "/" + rel;
  };
  locate(cfg.data.train.path, &f.train);
  locate(cfg.data.test->path, &f.test);
  f.found = !f.train.empty() && !f.test.empty();
  return f;
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const PrepConfig c = parse_prep(p, s);
  if (c.source == Source::Synthetic) return {};  // a function of the stage config alone
  const BehaviourConfig cfg = load_behaviour_config(c.config);
  const FoundData f = find_local_data(cfg);
  if (f.found) return {c.config, f.train, f.test};
  if (c.source == Source::Dataset)
    TESSERA_THROW(Data, "stage '" << s.name << "': the data of " << c.config
                                  << " is not on this machine; looked at:" << f.searched);
  return {};  // auto: the synthetic fallback
}

struct PrepData {
  std::string config, test;
  int test_skip_lines = 0;
};

PrepData read_prep(const StageContext& ctx) {
  PrepData d;
  scheduler::read_prep_data(ctx, [&](json::ObjectReader& r) {
    d.config = r.required_string("config");
    d.test = r.required_string("test");
    d.test_skip_lines = r.integer<int>("test_skip_lines", 0, json::IntBounds::at_least(0));
    r.allow("source");
    r.allow("prepared");
  });
  return d;
}

StageResult run_prep(const StageContext& ctx) {
  const PrepConfig c = parse_prep(*ctx.pipeline, *ctx.stage);
  std::string config, test, source;
  int skip = 0;
  if (c.source != Source::Synthetic) {
    const BehaviourConfig cfg = load_behaviour_config(c.config);
    const FoundData f = find_local_data(cfg);
    if (f.found) {
      config = c.config;
      test = f.test;
      skip = f.test_skip_lines;
      source = cfg.data.dataset.empty() ? f.train : cfg.data.dataset;
    } else if (c.source == Source::Dataset) {
      TESSERA_THROW(
          Data, "the data of " << c.config << " is not on this machine; looked at:" << f.searched);
    }
  }
  if (config.empty()) {
    SyntheticOptions so;
    so.train_rows = c.synthetic_rows;
    so.test_rows = c.synthetic_rows / 4;
    config = write_synthetic_dataset(ctx.work_dir, so);
    test = ctx.work_dir + "/test.csv";
    skip = 0;  // its header line is read and checked
    source = "synthetic";
    if (!ctx.quiet)
      std::fprintf(stderr,
                   "tessera run: no local dataset for the pipeline; using the built-in "
                   "synthetic dataset (%lld rows)\n",
                   (long long)so.train_rows);
  }
  // The config's data as column shards: where its data.prepared says (training reads them
  // there), else with "prepare": true in the stage directory.
  const std::string declared = load_behaviour_config(config).data.prepared;
  std::string prepared;
  if (c.prepare || !declared.empty()) {
    PrepCommandOptions po;
    po.out = declared.empty() ? ctx.work_dir + "/prepared" : declared;
    po.shard_rows = c.shard_rows;
    po.quiet = ctx.quiet;
    prep(config, po);
    prepared = ",\"prepared\":" + json_quote(po.out);
  }
  return scheduler::prep_result(ctx,
                                "{\"config\":" + json_quote(config) +
                                    ",\"test\":" + json_quote(test) +
                                    ",\"test_skip_lines\":" + std::to_string(skip) +
                                    ",\"source\":" + json_quote(source) + prepared + "}",
                                "data: " + source + (prepared.empty() ? "" : " (prepared)"));
}

StageResult run_evaluate(const StageContext& ctx) {
  const PrepData d = read_prep(ctx);
  CommonOptions o = scheduler::stage_run_options<CommonOptions>(ctx);
  o.skip_lines = d.test_skip_lines;
  return scheduler::evaluation_result(ctx, evaluate(scheduler::trained_model(ctx), d.test, o));
}

StageResult run_score(const StageContext& ctx) {
  const ScoreConfig c = parse_score(*ctx.pipeline, *ctx.stage);
  const PrepData d = read_prep(ctx);
  PredictOptions o = scheduler::stage_run_options<PredictOptions>(ctx);
  o.skip_lines = d.test_skip_lines;
  o.batch_size = c.batch_size;
  return scheduler::file_output_stage(ctx, "scores", "scores.csv", [&](const std::string& out) {
    return predict(scheduler::trained_model(ctx), d.test, out, o);
  });
}

}  // namespace

Result train_on_run_options(const std::string& config, const train::RunOptions& run) {
  TrainOptions o;
  static_cast<train::RunOptions&>(o) = run;
  return train(config, o);
}

void register_stages(scheduler::StageRegistry& registry) {
  add_prep_and_train(registry, "behaviour", {prep_inputs, run_prep}, TimeBudget::NotAllowed,
                     config_of_prep(read_prep), train_on_run_options, RunDir::WorkDir);
  registry.add("behaviour", StageKind::Evaluate, scheduler::config_free_stage(run_evaluate));
  registry.add("behaviour", StageKind::BatchScore, {validate_only(parse_score), run_score});
}

}  // namespace tessera::behaviour
