#include "pipelines/textclass/stages.h"

#include <map>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/task_stages.h"
#include "pipelines/textclass/text_data.h"
#include "pipelines/textclass/textclass.h"
#include "pipelines/textclass/textclass_config.h"

namespace tessera::textclass {

namespace {

// The scheduler's stage API, which every function here is written against.
using namespace scheduler;

struct EvalConfig {
  std::string data;
  int64_t skip_lines = kAutoHeader;
};
struct ScoreConfig {
  std::string input;
  int64_t batch_size = 4096;
};

EvalConfig parse_eval(const PipelineSpec& p, const StageSpec& s) {
  EvalConfig c;
  scheduler::read_stage_config(p, s, [&](json::ObjectReader& r) {
    c.data = scheduler::resolve_spec_path(p, r.string("data", "", json::Text::Any));
    c.skip_lines = r.integer<int64_t>("skip_lines", kAutoHeader, json::IntBounds::at_least(-1));
    if (c.data.empty() && r.has("skip_lines")) r.error("skip_lines", "skip_lines without data");
  });
  return c;
}

ScoreConfig parse_score(const PipelineSpec& p, const StageSpec& s) {
  ScoreConfig c;
  scheduler::read_stage_config(p, s, [&](json::ObjectReader& r) {
    c.input = scheduler::resolve_spec_path(p, r.string("input", "", json::Text::Any));
    c.batch_size = r.integer<int64_t>("batch_size", 4096, json::IntBounds::at_least(1));
  });
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
  return {find(c.data.train.path), find(path_or_empty(c.data.validation)),
          find(path_or_empty(c.data.test))};
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const std::string config = scheduler::parse_prep_config_path(p, s);
  const LocalFiles l = local_files(read_textclass_config(config));
  std::vector<std::string> files = {config};
  for (const std::string& f : {l.train, l.validation, l.test})
    if (!f.empty()) files.push_back(f);
  return files;
}

StageResult run_prep(const StageContext& ctx) {
  const std::string config = scheduler::parse_prep_config_path(*ctx.pipeline, *ctx.stage);
  const TextclassConfig cfg = read_textclass_config(config);
  const DataConfig& d = cfg.data;
  const LocalFiles l = local_files(cfg);
  auto missing = [&](const std::string& what, const std::string& file) {
    TESSERA_THROW(Data, "the " << what << " file '" << file << "' of " << config
                               << " is not on this machine (dataset '" << d.dataset << "')");
  };
  if (l.train.empty()) missing("train", d.train.path);
  if (d.validation && l.validation.empty()) missing("validation", d.validation->path);
  if (d.test && l.test.empty()) missing("test", d.test->path);
  // The test rows textclass::train reports on: the test file, else the seeded split's test part.
  std::vector<LabelledText> test;
  if (d.test) {
    test = read_labelled_file(l.test, d.layout, d.skip_lines, d.max_rows);
  } else if (d.test_fraction > 0) {
    test = stratified_split(read_labelled_file(l.train, d.layout, d.skip_lines, d.max_rows),
                            d.validation_fraction, d.test_fraction, static_cast<uint64_t>(cfg.seed))
               .test;
  }
  std::map<std::string, std::string> test_files;
  if (!test.empty()) {
    std::string tsv, texts;
    for (const LabelledText& t : test) {
      tsv += t.label + "\t" + t.text + "\n";
      texts += t.text + "\n";
    }
    write_file_atomic(ctx.work_dir + "/test.tsv", tsv);
    write_file_atomic(ctx.work_dir + "/texts.txt", texts);
    test_files = {{"test", "test.tsv"}, {"texts", "texts.txt"}};
  }
  StageResult r = scheduler::prep_result(
      ctx,
      "{\"config\":" + json_quote(config) + ",\"train\":" + json_quote(l.train) +
          ",\"test_rows\":" + std::to_string(test.size()) + "}",
      "data: " + l.train + ", " + std::to_string(test.size()) + " test rows");
  r.files.insert(test_files.begin(), test_files.end());
  return r;
}

std::string prep_config(const StageContext& ctx) {
  return scheduler::read_prep_config(ctx, {"train", "test_rows"});
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

// textclass runs on the CPU unless the run names a device.
RunOptions run_options(const StageContext& ctx) {
  RunOptions o = scheduler::stage_run_options<RunOptions>(ctx);
  if (o.device.empty()) o.device = "cpu";
  return o;
}

StageResult run_evaluate(const StageContext& ctx) {
  EvalConfig c = parse_eval(*ctx.pipeline, *ctx.stage);
  const bool prep_rows = c.data.empty();  // label<TAB>text, whatever the model's layout
  if (c.data.empty()) {
    c.data = prep_file(ctx, "test", "data");
    c.skip_lines = 0;  // written by prep without a header
  }
  RunOptions o = run_options(ctx);
  o.skip_lines = c.skip_lines;
  o.plain_rows = prep_rows;
  return scheduler::evaluation_result(ctx, evaluate(scheduler::trained_model(ctx), c.data, o));
}

StageResult run_score(const StageContext& ctx) {
  ScoreConfig c = parse_score(*ctx.pipeline, *ctx.stage);
  if (c.input.empty()) c.input = prep_file(ctx, "texts", "input");
  RunOptions o = run_options(ctx);
  o.batch_size = c.batch_size;
  return scheduler::file_output_stage(
      ctx, "predictions", "predictions.tsv", [&](const std::string& out) {
        return predict(scheduler::trained_model(ctx), c.input, out, o);
      });
}

}  // namespace

void register_stages(scheduler::StageRegistry& registry) {
  // A stage naming its own file reads it: its fingerprint goes into the key.
  auto named_file = [](auto parse, auto member) {
    return [parse, member](const PipelineSpec& p, const StageSpec& s) {
      const std::string f = parse(p, s).*member;
      return f.empty() ? std::vector<std::string>{} : std::vector<std::string>{f};
    };
  };
  add_prep_and_train(registry, "textclass", {prep_inputs, run_prep}, TimeBudget::Allowed,
                     prep_config, train);
  registry.add("textclass", StageKind::Evaluate,
               {named_file(parse_eval, &EvalConfig::data), run_evaluate});
  registry.add("textclass", StageKind::BatchScore,
               {named_file(parse_score, &ScoreConfig::input), run_score});
}

}  // namespace tessera::textclass
