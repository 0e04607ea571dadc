#include "pipelines/behaviour/stages.h"

#include <sys/stat.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "host/config/behaviour_config.h"
#include "host/config/json_reader.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/registry.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/synthetic.h"

namespace tessera::behaviour {

namespace {

using scheduler::PipelineSpec;
using scheduler::StageContext;
using scheduler::StageKind;
using scheduler::StageResult;
using scheduler::StageRunner;
using scheduler::StageSpec;

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// Absolute and free of symlinks: outputs stay valid from any working directory, and the stage
// key does not depend on where the run was started.
std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

std::string origin_of(const PipelineSpec& p, const StageSpec& s) {
  return p.path + " (stage '" + s.name + "' config)";
}

std::string resolve(const PipelineSpec& p, const std::string& path) {
  return path.empty() || path[0] == '/' ? path : p.dir + "/" + path;
}

enum class Source : uint8_t { Auto, Dataset, Synthetic };

struct PrepConfig {
  Source source = Source::Auto;
  std::string config;  // resolved against the pipeline file
  int64_t synthetic_rows = 20000;
};

struct TrainStageConfig {
  int64_t epochs = -1;
  std::string device;
};

struct ScoreConfig {
  int64_t batch_size = 4096;
};

PrepConfig parse_prep(const PipelineSpec& p, const StageSpec& s) {
  std::unique_ptr<json::Document> doc = json::parse(s.config_json, origin_of(p, s));
  json::ObjectReader r = doc->root();
  PrepConfig c;
  c.source = r.choice(
      "source", Source::Auto,
      json::Choices<Source>{
          {"auto", Source::Auto}, {"dataset", Source::Dataset}, {"synthetic", Source::Synthetic}});
  c.config = resolve(p, r.string("config", "", json::Text::Any));
  if (!c.config.empty()) c.config = real_path(c.config);
  c.synthetic_rows = r.integer<int64_t>("synthetic_rows", 20000, json::IntBounds::at_least(100));
  if (c.source != Source::Synthetic && c.config.empty())
    r.error("config", "source '" + std::string(c.source == Source::Auto ? "auto" : "dataset") +
                          "' needs the behaviour config whose data to use");
  r.finish();
  doc->errors.throw_if_any();
  return c;
}

TrainStageConfig parse_train(const PipelineSpec& p, const StageSpec& s) {
  std::unique_ptr<json::Document> doc = json::parse(s.config_json, origin_of(p, s));
  json::ObjectReader r = doc->root();
  TrainStageConfig c;
  c.epochs = r.integer<int64_t>("epochs", -1, json::IntBounds::at_least(1));
  c.device = r.string("device", "", json::Text::NonEmpty);
  r.finish();
  doc->errors.throw_if_any();
  return c;
}

ScoreConfig parse_score(const PipelineSpec& p, const StageSpec& s) {
  std::unique_ptr<json::Document> doc = json::parse(s.config_json, origin_of(p, s));
  json::ObjectReader r = doc->root();
  ScoreConfig c;
  c.batch_size = r.integer<int64_t>("batch_size", 4096, json::IntBounds::closed(1, 1 << 24));
  r.finish();
  doc->errors.throw_if_any();
  return c;
}

void parse_empty(const PipelineSpec& p, const StageSpec& s) {
  std::unique_ptr<json::Document> doc = json::parse(s.config_json, origin_of(p, s));
  doc->root().finish();
  doc->errors.throw_if_any();
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
    if (cfg.data.dataset.empty() || (!rel.empty() && rel[0] == '/')) {
      if (exists(rel)) *out = real_path(rel);
      f.searched += " " + rel;
      return;
    }
    for (const SearchDir& d : dataset_search_dirs(cfg.data.dataset)) {
      f.searched += " " + d.path + "/" + rel;
      if (out->empty() && exists(d.path + "/" + rel)) *out = real_path(d.path + "/" + rel);
    }
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

const scheduler::StageOutputs& input_of_kind(const StageContext& ctx, StageKind kind) {
  for (const std::string& in : ctx.stage->inputs)
    if (ctx.pipeline->stage(in).kind == kind) return ctx.inputs.at(in);
  TESSERA_THROW(Config, ctx.pipeline->path << ": stage '" << ctx.stage->name << "' needs a "
                                           << scheduler::stage_kind_name(kind)
                                           << " stage among its inputs");
}

struct PrepData {
  std::string config, test;
  int test_skip_lines = 0;
};

PrepData read_prep(const StageContext& ctx) {
  const std::string path = input_of_kind(ctx, StageKind::Prep).file("data");
  std::unique_ptr<json::Document> doc = json::parse(read_file(path), path);
  json::ObjectReader r = doc->root();
  PrepData d;
  d.config = r.required_string("config");
  d.test = r.required_string("test");
  d.test_skip_lines = r.integer<int>("test_skip_lines", 0, json::IntBounds::at_least(0));
  r.allow("source");
  r.finish();
  doc->errors.throw_if_any();
  return d;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
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
  const std::string json = "{\"config\":" + quoted(config) + ",\"test\":" + quoted(test) +
                           ",\"test_skip_lines\":" + std::to_string(skip) +
                           ",\"source\":" + quoted(source) + "}";
  write_file_atomic(ctx.work_dir + "/data.json", json + "\n");
  StageResult r;
  r.files["data"] = "data.json";
  r.result_json = json;
  r.summary = "data: " + source;
  return r;
}

StageResult run_train(const StageContext& ctx) {
  const TrainStageConfig c = parse_train(*ctx.pipeline, *ctx.stage);
  const PrepData d = read_prep(ctx);
  TrainOptions o;
  o.device = !ctx.device.empty() ? ctx.device : c.device;
  o.quiet = ctx.quiet;
  // The stage key pins the config, so an interrupted attempt's checkpoint belongs to this one:
  // training resumes from it (or starts in the same directory when there is none yet).
  o.resume = ctx.work_dir;
  o.epochs = c.epochs;
  Result tr = train(d.config, o);
  StageResult r;
  r.files = {{"model", "model.tsm"},
             {"metrics", "metrics.jsonl"},
             {"result", "result.json"},
             {"checkpoint", "checkpoint.tsc"},
             {"config", "config.json"}};
  r.result_json = tr.json;
  r.summary = tr.summary;
  return r;
}

StageResult run_evaluate(const StageContext& ctx) {
  parse_empty(*ctx.pipeline, *ctx.stage);
  const PrepData d = read_prep(ctx);
  CommonOptions o;
  o.device = ctx.device;
  o.quiet = ctx.quiet;
  o.skip_lines = d.test_skip_lines;
  Result er = evaluate(input_of_kind(ctx, StageKind::Train).file("model"), d.test, o);
  write_file_atomic(ctx.work_dir + "/evaluation.json", er.json + "\n");
  StageResult r;
  r.files["evaluation"] = "evaluation.json";
  r.result_json = er.json;
  r.summary = er.summary;
  return r;
}

StageResult run_score(const StageContext& ctx) {
  const ScoreConfig c = parse_score(*ctx.pipeline, *ctx.stage);
  const PrepData d = read_prep(ctx);
  PredictOptions o;
  o.device = ctx.device;
  o.quiet = ctx.quiet;
  o.skip_lines = d.test_skip_lines;
  o.batch_size = c.batch_size;
  Result pr = predict(input_of_kind(ctx, StageKind::Train).file("model"), d.test,
                      ctx.work_dir + "/scores.csv", o);
  StageResult r;
  r.files["scores"] = "scores.csv";
  r.result_json = pr.json;
  r.summary = pr.summary;
  return r;
}

}  // namespace

void register_stages(scheduler::StageRegistry& registry) {
  auto validate_only = [](auto parse) {
    return [parse](const PipelineSpec& p, const StageSpec& s) {
      parse(p, s);
      return std::vector<std::string>{};
    };
  };
  registry.add("behaviour", StageKind::Prep, {prep_inputs, run_prep});
  registry.add("behaviour", StageKind::Train, {validate_only(parse_train), run_train});
  registry.add("behaviour", StageKind::Evaluate, {validate_only(parse_empty), run_evaluate});
  registry.add("behaviour", StageKind::BatchScore, {validate_only(parse_score), run_score});
}

}  // namespace tessera::behaviour
