#include "pipelines/textclass/stages.h"

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/textclass/text_data.h"
#include "pipelines/textclass/textclass.h"
#include "pipelines/textclass/textclass_config.h"

namespace tessera::textclass {

namespace {

using scheduler::json_quote;
using scheduler::PipelineSpec;
using scheduler::StageContext;
using scheduler::StageKind;
using scheduler::StageResult;
using scheduler::StageSpec;

using scheduler::TrainStageConfig;
struct EvalConfig {
  std::string data;
  int64_t skip_lines = kAutoHeader;
};
struct ScoreConfig {
  std::string input;
  int64_t batch_size = 4096;
};

std::string parse_prep(const PipelineSpec& p, const StageSpec& s) {
  return scheduler::parse_prep_config_path(p, s);
}

TrainStageConfig parse_train(const PipelineSpec& p, const StageSpec& s) {
  return scheduler::parse_train_stage_config(p, s, scheduler::TimeBudget::Allowed);
}

EvalConfig parse_eval(const PipelineSpec& p, const StageSpec& s) {
  auto doc = scheduler::parse_stage_config(p, s);
  json::ObjectReader r = doc->root();
  EvalConfig c;
  c.data = scheduler::resolve_spec_path(p, r.string("data", "", json::Text::Any));
  c.skip_lines = r.integer<int64_t>("skip_lines", kAutoHeader, json::IntBounds::at_least(-1));
  if (c.data.empty() && r.has("skip_lines")) r.error("skip_lines", "skip_lines without data");
  r.finish();
  doc->errors.throw_if_any();
  return c;
}

ScoreConfig parse_score(const PipelineSpec& p, const StageSpec& s) {
  auto doc = scheduler::parse_stage_config(p, s);
  json::ObjectReader r = doc->root();
  ScoreConfig c;
  c.input = scheduler::resolve_spec_path(p, r.string("input", "", json::Text::Any));
  c.batch_size = r.integer<int64_t>("batch_size", 4096, json::IntBounds::at_least(1));
  r.finish();
  doc->errors.throw_if_any();
  return c;
}

// The config's files on this machine ("" where absent), found as textclass::train finds them:
// files of the registered dataset, or paths when no dataset is named.
struct LocalFiles {
  std::string train, validation, test;
};

LocalFiles local_files(const TextclassConfig& c) {
  auto find = [&](const std::string& f) {
    return f.empty() ? "" : scheduler::find_local_dataset_file(c.data.dataset, f);
  };
  return {find(c.data.train), find(c.data.validation), find(c.data.test)};
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const std::string config = parse_prep(p, s);
  const LocalFiles l = local_files(read_textclass_config(config));
  std::vector<std::string> files = {config};
  for (const std::string& f : {l.train, l.validation, l.test})
    if (!f.empty()) files.push_back(f);
  return files;
}

StageResult run_prep(const StageContext& ctx) {
  const std::string config = parse_prep(*ctx.pipeline, *ctx.stage);
  const TextclassConfig cfg = read_textclass_config(config);
  const DataConfig& d = cfg.data;
  const LocalFiles l = local_files(cfg);
  auto missing = [&](const std::string& what, const std::string& file) {
    TESSERA_THROW(Data, "the " << what << " file '" << file << "' of " << config
                               << " is not on this machine (dataset '" << d.dataset << "')");
  };
  if (l.train.empty()) missing("train", d.train);
  if (!d.validation.empty() && l.validation.empty()) missing("validation", d.validation);
  if (!d.test.empty() && l.test.empty()) missing("test", d.test);
  // The test rows textclass::train reports on: the test file, else the seeded split's test part.
  std::vector<LabelledText> test;
  if (!d.test.empty()) {
    test = read_labelled_file(l.test, d.skip_lines, d.max_rows);
  } else if (d.test_fraction > 0) {
    test = stratified_split(read_labelled_file(l.train, d.skip_lines, d.max_rows),
                            d.validation_fraction, d.test_fraction, static_cast<uint64_t>(cfg.seed))
               .test;
  }
  StageResult r;
  r.files["data"] = "data.json";
  if (!test.empty()) {
    std::string tsv, texts;
    for (const LabelledText& t : test) {
      tsv += t.label + "\t" + t.text + "\n";
      texts += t.text + "\n";
    }
    write_file_atomic(ctx.work_dir + "/test.tsv", tsv);
    write_file_atomic(ctx.work_dir + "/texts.txt", texts);
    r.files["test"] = "test.tsv";
    r.files["texts"] = "texts.txt";
  }
  r.result_json = "{\"config\":" + json_quote(config) + ",\"train\":" + json_quote(l.train) +
                  ",\"test_rows\":" + std::to_string(test.size()) + "}";
  write_file_atomic(ctx.work_dir + "/data.json", r.result_json + "\n");
  r.summary = "data: " + l.train + ", " + std::to_string(test.size()) + " test rows";
  return r;
}

std::string prep_config(const StageContext& ctx) {
  const std::string path = scheduler::input_of_kind(ctx, StageKind::Prep).file("data");
  std::unique_ptr<json::Document> doc = json::parse(read_file(path), path);
  json::ObjectReader r = doc->root();
  const std::string config = r.required_string("config");
  r.allow("train");
  r.allow("test_rows");
  r.finish();
  doc->errors.throw_if_any();
  return config;
}

// The prep stage's output `name`; a Config error naming the stage and `key` when it has none.
std::string prep_file(const StageContext& ctx, const std::string& name, const std::string& key) {
  const scheduler::StageOutputs& prep = scheduler::input_of_kind(ctx, StageKind::Prep);
  if (prep.files.count(name) == 0)
    TESSERA_THROW(Config, "stage '" << ctx.stage->name
                                    << "': the config has no test set; name a file with \"" << key
                                    << "\"");
  return prep.file(name);
}

std::string device_of(const StageContext& ctx) {
  return ctx.device.empty() ? "cpu" : ctx.device;
}

StageResult run_train(const StageContext& ctx) {
  const TrainStageConfig c = parse_train(*ctx.pipeline, *ctx.stage);
  TrainOptions o;
  o.device = !ctx.device.empty() ? ctx.device : c.device;
  o.quiet = ctx.quiet;
  o.epochs = c.epochs;
  o.time_budget_s = c.time_budget_s;
  // The stage key pins the config, so an interrupted attempt's checkpoint belongs to this one:
  // training resumes from it (or starts in the same directory when there is none yet).
  o.resume = ctx.work_dir + "/run";
  Result tr = train(prep_config(ctx), o);
  return scheduler::train_run_result(tr.json, tr.summary, scheduler::RunCheckpoint::Yes);
}

StageResult run_evaluate(const StageContext& ctx) {
  EvalConfig c = parse_eval(*ctx.pipeline, *ctx.stage);
  if (c.data.empty()) {
    c.data = prep_file(ctx, "test", "data");
    c.skip_lines = 0;  // written by prep without a header
  }
  RunOptions o;
  o.device = device_of(ctx);
  o.quiet = ctx.quiet;
  o.skip_lines = c.skip_lines;
  Result er = evaluate(scheduler::input_of_kind(ctx, StageKind::Train).file("model"), c.data, o);
  write_file_atomic(ctx.work_dir + "/evaluation.json", er.json + "\n");
  StageResult r;
  r.files["evaluation"] = "evaluation.json";
  r.result_json = er.json;
  r.summary = er.summary;
  return r;
}

StageResult run_score(const StageContext& ctx) {
  ScoreConfig c = parse_score(*ctx.pipeline, *ctx.stage);
  if (c.input.empty()) c.input = prep_file(ctx, "texts", "input");
  RunOptions o;
  o.device = device_of(ctx);
  o.quiet = ctx.quiet;
  o.batch_size = c.batch_size;
  Result pr = predict(scheduler::input_of_kind(ctx, StageKind::Train).file("model"), c.input,
                      ctx.work_dir + "/predictions.tsv", o);
  StageResult r;
  r.files["predictions"] = "predictions.tsv";
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
  // A stage naming its own file reads it: its fingerprint goes into the key.
  auto named_file = [](auto parse, auto member) {
    return [parse, member](const PipelineSpec& p, const StageSpec& s) {
      const std::string f = parse(p, s).*member;
      return f.empty() ? std::vector<std::string>{} : std::vector<std::string>{f};
    };
  };
  registry.add("textclass", StageKind::Prep, {prep_inputs, run_prep});
  registry.add("textclass", StageKind::Train,
               {validate_only(parse_train), run_train});
  registry.add("textclass", StageKind::Evaluate,
               {named_file(parse_eval, &EvalConfig::data), run_evaluate});
  registry.add("textclass", StageKind::BatchScore,
               {named_file(parse_score, &ScoreConfig::input), run_score});
}

}  // namespace tessera::textclass
