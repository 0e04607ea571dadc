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

namespace tessera::recommend {

namespace {

using scheduler::json_quote;
using scheduler::PipelineSpec;
using scheduler::StageContext;
using scheduler::StageKind;
using scheduler::StageResult;
using scheduler::StageSpec;

using scheduler::TrainStageConfig;

std::unique_ptr<json::Document> stage_config(const PipelineSpec& p, const StageSpec& s) {
  return scheduler::parse_stage_config(p, s);
}

std::string parse_prep(const PipelineSpec& p, const StageSpec& s) {
  return scheduler::parse_prep_config_path(p, s);
}

TrainStageConfig parse_train(const PipelineSpec& p, const StageSpec& s) {
  return scheduler::parse_train_stage_config(p, s, scheduler::TimeBudget::NotAllowed);
}

void parse_empty(const PipelineSpec& p, const StageSpec& s) {
  auto doc = stage_config(p, s);
  doc->root().finish();
  doc->errors.throw_if_any();
}

int64_t parse_recommend(const PipelineSpec& p, const StageSpec& s) {
  auto doc = stage_config(p, s);
  json::ObjectReader r = doc->root();
  const int64_t k = r.integer<int64_t>("k", 10, json::IntBounds::closed(1, 1 << 20));
  r.finish();
  doc->errors.throw_if_any();
  return k;
}

ExportFormat parse_export(const PipelineSpec& p, const StageSpec& s) {
  auto doc = stage_config(p, s);
  json::ObjectReader r = doc->root();
  const std::string format = r.string("format", "npy", json::Text::NonEmpty);
  r.finish();
  doc->errors.throw_if_any();
  try {
    return parse_export_format(format);
  } catch (const Error& e) {
    TESSERA_THROW(Config, p.path << ": stage '" << s.name << "' config.format: " << e.what());
  }
}

// The ratings file as recommend::train reads it: `data.path`, else `data.file` of the dataset.
std::string local_ratings(const RecommendConfig& c) {
  return c.data.path.empty() ? scheduler::find_local_dataset_file(c.data.dataset, c.data.file)
                             : scheduler::find_local_dataset_file("", c.data.path);
}

// An mf config's test file (data.test) on this machine; "" when it has none or it is absent.
std::string local_test(const RecommendConfig& c) {
  if (c.model != ModelKind::Mf || c.data.test.empty()) return "";
  return scheduler::find_local_dataset_file("", c.data.test);
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const std::string config = parse_prep(p, s);
  const RecommendConfig cfg = read_recommend_config(config);
  std::vector<std::string> inputs = {config};
  for (const std::string& f : {local_ratings(cfg), local_test(cfg)})
    if (!f.empty()) inputs.push_back(f);
  return inputs;
}

StageResult run_prep(const StageContext& ctx) {
  const std::string config = parse_prep(*ctx.pipeline, *ctx.stage);
  const RecommendConfig cfg = read_recommend_config(config);
  const std::string ratings = local_ratings(cfg);
  if (ratings.empty())
    TESSERA_THROW(Data, "the ratings of " << config << " are not on this machine (dataset '"
                                          << cfg.data.dataset << "', file '" << cfg.data.file
                                          << "', path '" << cfg.data.path << "')");
  const std::string test = local_test(cfg);
  if (test.empty() && cfg.model == ModelKind::Mf && !cfg.data.test.empty())
    TESSERA_THROW(Data, "the test ratings of " << config << " are not on this machine (data.test '"
                                               << cfg.data.test << "')");
  StageResult r;
  r.result_json = "{\"config\":" + json_quote(config) + ",\"ratings\":" + json_quote(ratings);
  if (!test.empty()) r.result_json += ",\"test\":" + json_quote(test);
  r.result_json += "}";
  write_file_atomic(ctx.work_dir + "/data.json", r.result_json + "\n");
  r.files["data"] = "data.json";
  r.summary = "data: " + ratings;
  return r;
}

std::string prep_config(const StageContext& ctx) {
  const std::string path = scheduler::input_of_kind(ctx, StageKind::Prep).file("data");
  std::unique_ptr<json::Document> doc = json::parse(read_file(path), path);
  json::ObjectReader r = doc->root();
  const std::string config = r.required_string("config");
  r.allow("ratings");
  r.allow("test");
  r.finish();
  doc->errors.throw_if_any();
  return config;
}

StageResult run_train(const StageContext& ctx) {
  const TrainStageConfig c = parse_train(*ctx.pipeline, *ctx.stage);
  TrainOptions o;
  o.device = !ctx.device.empty() ? ctx.device : c.device;
  o.quiet = ctx.quiet;
  o.epochs = c.epochs;
  // The stage key pins the config, so an interrupted attempt's checkpoint belongs to this one:
  // training resumes from it (or starts in the same directory when there is none yet).
  o.resume = ctx.work_dir + "/run";
  Result tr = train(prep_config(ctx), o);
  return scheduler::train_run_result(tr.json, tr.summary, scheduler::RunCheckpoint::Yes);
}

const std::string& model_of(const StageContext& ctx) {
  return scheduler::input_of_kind(ctx, StageKind::Train).file("model");
}

// The model as the train stage saved it, measured again on the held-out split of the ratings the
// prep stage found (rebuilt from the model's config and seed): numbers computed here, not copied.
StageResult run_evaluate(const StageContext& ctx) {
  parse_empty(*ctx.pipeline, *ctx.stage);
  const std::string path = scheduler::input_of_kind(ctx, StageKind::Prep).file("data");
  std::unique_ptr<json::Document> doc = json::parse(read_file(path), path);
  json::ObjectReader r = doc->root();
  r.allow("config");
  const std::string ratings = r.required_string("ratings");
  // An mf model trained with data.test is measured on that file (evaluate_held_out).
  const std::string test = r.string("test", "", json::Text::NonEmpty);
  r.finish();
  doc->errors.throw_if_any();
  Result er = evaluate_held_out(model_of(ctx), test.empty() ? ratings : test);
  StageResult out;
  out.result_json = er.json;
  write_file_atomic(ctx.work_dir + "/evaluation.json", out.result_json + "\n");
  out.files["evaluation"] = "evaluation.json";
  out.summary = er.summary;
  while (!out.summary.empty() && out.summary.back() == '\n') out.summary.pop_back();
  return out;
}

StageResult run_recommend(const StageContext& ctx) {
  RecommendOptions o;
  o.k = parse_recommend(*ctx.pipeline, *ctx.stage);
  o.quiet = ctx.quiet;
  Result rr = recommend(model_of(ctx), ctx.work_dir + "/topk.csv", o);
  StageResult r;
  r.files["topk"] = "topk.csv";
  r.result_json = rr.json;
  r.summary = rr.summary;
  return r;
}

StageResult run_export(const StageContext& ctx) {
  const ExportFormat format = parse_export(*ctx.pipeline, *ctx.stage);
  const std::string dir = scheduler::fresh_subdir(ctx, "export");
  Result er = export_model(model_of(ctx), format, dir);
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
  auto validate_only = [](auto parse) {
    return [parse](const PipelineSpec& p, const StageSpec& s) {
      parse(p, s);
      return std::vector<std::string>{};
    };
  };
  registry.add("recommend", StageKind::Prep, {prep_inputs, run_prep});
  registry.add("recommend", StageKind::Train, {validate_only(parse_train), run_train});
  registry.add("recommend", StageKind::Evaluate, {validate_only(parse_empty), run_evaluate});
  registry.add("recommend", StageKind::Recommend, {validate_only(parse_recommend), run_recommend});
  registry.add("recommend", StageKind::Export, {validate_only(parse_export), run_export});
}

}  // namespace tessera::recommend
