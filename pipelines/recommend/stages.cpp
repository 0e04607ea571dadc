#include "pipelines/recommend/stages.h"

#include <filesystem>

#include "host/config/json_writer.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/recommend/export.h"
#include "pipelines/recommend/held_out.h"
#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/recommend/recommend_config.h"
#include "pipelines/task_stages.h"

namespace tessera::recommend {

namespace {

// The scheduler's stage API, which every function here is written against.
using namespace scheduler;

int64_t parse_recommend(const PipelineSpec& p, const StageSpec& s) {
  int64_t k = 10;
  scheduler::read_stage_config(p, s, [&](json::ObjectReader& r) {
    k = r.integer<int64_t>("k", 10, json::IntBounds::closed(1, 1 << 20));
  });
  return k;
}

ExportFormat parse_export(const PipelineSpec& p, const StageSpec& s) {
  std::string format;
  scheduler::read_stage_config(p, s, [&](json::ObjectReader& r) {
    format = r.string("format", "npy", json::Text::NonEmpty);
  });
  try {
    return parse_export_format(format);
  } catch (const Error& e) {
    TESSERA_THROW(Config, p.path << ": stage '" << s.name << "' config.format: " << e.what());
  }
}

// The ratings file as recommend::train reads it: data.train, of the dataset when one is named.
std::string local_ratings(const RecommendConfig& c) {
  return scheduler::find_local_dataset_file(c.data.dataset, c.data.train.path);
}

// A config's test file (data.test) on this machine; "" when it has none or it is absent.
std::string local_test(const RecommendConfig& c) {
  if (!c.data.test) return "";
  return scheduler::find_local_dataset_file(c.data.dataset, c.data.test->path);
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const std::string config = scheduler::parse_prep_config_path(p, s);
  const RecommendConfig cfg = read_recommend_config(config);
  std::vector<std::string> inputs = {config};
  for (const std::string& f : {local_ratings(cfg), local_test(cfg)})
    if (!f.empty()) inputs.push_back(f);
  return inputs;
}

StageResult run_prep(const StageContext& ctx) {
  const std::string config = scheduler::parse_prep_config_path(*ctx.pipeline, *ctx.stage);
  const RecommendConfig cfg = read_recommend_config(config);
  const std::string ratings = local_ratings(cfg);
  if (ratings.empty())
    TESSERA_THROW(Data, "the ratings of " << config << " are not on this machine (dataset '"
                                          << cfg.data.dataset << "', train '" << cfg.data.train.path
                                          << "')");
  const std::string test = local_test(cfg);
  if (test.empty() && cfg.data.test)
    TESSERA_THROW(Data, "the test ratings of " << config << " are not on this machine (data.test '"
                                               << cfg.data.test->path << "')");
  std::string json = "{\"config\":" + json_quote(config) + ",\"ratings\":" + json_quote(ratings);
  if (!test.empty()) json += ",\"test\":" + json_quote(test);
  return scheduler::prep_result(ctx, json + "}", "data: " + ratings);
}

std::string prep_config(const StageContext& ctx) {
  return scheduler::read_prep_config(ctx, {"ratings", "test"});
}

// The model as the train stage saved it, measured again on the held-out split of the ratings the
// prep stage found (rebuilt from the model's config and seed): numbers computed here, not copied.
StageResult run_evaluate(const StageContext& ctx) {
  std::string ratings, test;
  scheduler::read_prep_data(ctx, [&](json::ObjectReader& r) {
    r.allow("config");
    ratings = r.required_string("ratings");
    // A model trained with data.test is measured on that file (evaluate_held_out).
    test = r.string("test", "", json::Text::NonEmpty);
  });
  Result er = evaluate_held_out(scheduler::trained_model(ctx), test.empty() ? ratings : test);
  while (!er.summary.empty() && er.summary.back() == '\n') er.summary.pop_back();
  return scheduler::evaluation_result(ctx, er);
}

StageResult run_recommend(const StageContext& ctx) {
  RecommendOptions o;
  o.k = parse_recommend(*ctx.pipeline, *ctx.stage);
  o.quiet = ctx.quiet;
  return scheduler::file_output_stage(ctx, "topk", "topk.csv", [&](const std::string& out) {
    return recommend(scheduler::trained_model(ctx), out, o);
  });
}

StageResult run_export(const StageContext& ctx) {
  const ExportFormat format = parse_export(*ctx.pipeline, *ctx.stage);
  const std::string dir = scheduler::fresh_subdir(ctx, "export");
  Result er = export_model(scheduler::trained_model(ctx), format, dir);
  StageResult r;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) {
      const std::string name = e.path().filename().string();
      r.files[name] = "export/" + name;
    }
  r.result_json = er.json;
  r.summary = er.summary;
  return r;
}

}  // namespace

void register_stages(scheduler::StageRegistry& registry) {
  add_prep_and_train(registry, "recommend", {prep_inputs, run_prep}, TimeBudget::NotAllowed,
                     prep_config, train);
  registry.add("recommend", StageKind::Evaluate, scheduler::config_free_stage(run_evaluate));
  registry.add("recommend", StageKind::Recommend, {validate_only(parse_recommend), run_recommend});
  registry.add("recommend", StageKind::Export, {validate_only(parse_export), run_export});
}

}  // namespace tessera::recommend
