#include "pipelines/image/stages.h"

#include "host/config/image_config.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/image/image.h"

namespace tessera::image {

namespace {

using scheduler::json_quote;
using scheduler::PipelineSpec;
using scheduler::StageContext;
using scheduler::StageKind;
using scheduler::StageResult;
using scheduler::StageSpec;

struct PrepConfig {
  std::string config;
};
using scheduler::TrainStageConfig;
struct EvalConfig {
  std::string images, labels;
};

PrepConfig parse_prep(const PipelineSpec& p, const StageSpec& s) {
  PrepConfig c;
  c.config = scheduler::parse_prep_config_path(p, s);
  return c;
}

TrainStageConfig parse_train(const PipelineSpec& p, const StageSpec& s) {
  return scheduler::parse_train_stage_config(p, s, scheduler::TimeBudget::NotAllowed);
}

EvalConfig parse_eval(const PipelineSpec& p, const StageSpec& s) {
  auto doc = scheduler::parse_stage_config(p, s);
  json::ObjectReader r = doc->root();
  EvalConfig c;
  c.images = scheduler::resolve_spec_path(p, r.string("images", "", json::Text::Any));
  c.labels = scheduler::resolve_spec_path(p, r.string("labels", "", json::Text::Any));
  if (c.images.empty() && !c.labels.empty()) r.error("labels", "labels without images");
  r.finish();
  doc->errors.throw_if_any();
  return c;
}

// The config's data files found on this machine: where a file is missing, "".
struct LocalData {
  std::vector<std::string> train;
  std::string test_images, test_labels;
};

std::string locate(const ImageDataConfig& d, const std::string& f) {
  if (f.empty()) return "";
  if (!d.dir.empty() && f[0] != '/') return scheduler::find_local_dataset_file("", d.dir + "/" + f);
  return scheduler::find_local_dataset_file(d.dataset, f);
}

LocalData local_data(const ImageConfig& c) {
  LocalData l;
  const ImageDataConfig& d = c.data;
  if (d.format == ImageFormat::DigitsCsv) {
    l.train = {locate(d, d.train)};
  } else {
    l.train = {locate(d, d.train_images), locate(d, d.train_labels)};
    l.test_images = locate(d, d.test_images);
    l.test_labels = locate(d, d.test_labels);
  }
  return l;
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const PrepConfig c = parse_prep(p, s);
  const ImageConfig cfg = load_image_config(c.config);
  std::vector<std::string> files = {c.config};
  const LocalData l = local_data(cfg);
  for (const std::string& f : l.train)
    if (!f.empty()) files.push_back(f);
  for (const std::string& f : {l.test_images, l.test_labels})
    if (!f.empty()) files.push_back(f);
  return files;
}

StageResult run_prep(const StageContext& ctx) {
  const PrepConfig c = parse_prep(*ctx.pipeline, *ctx.stage);
  const ImageConfig cfg = load_image_config(c.config);
  const LocalData l = local_data(cfg);
  for (const std::string& f : l.train)
    if (f.empty())
      TESSERA_THROW(Data, "the training images of "
                              << c.config << " are not on this machine (dataset '"
                              << cfg.data.dataset << "', dir '" << cfg.data.dir << "')");
  const std::string json = "{\"config\":" + json_quote(c.config) +
                           ",\"test_images\":" + json_quote(l.test_images) +
                           ",\"test_labels\":" + json_quote(l.test_labels) + "}";
  write_file_atomic(ctx.work_dir + "/data.json", json + "\n");
  StageResult r;
  r.files["data"] = "data.json";
  r.result_json = json;
  r.summary = "data: " + (cfg.data.dataset.empty() ? cfg.data.dir : cfg.data.dataset);
  return r;
}

struct PrepData {
  std::string config, test_images, test_labels;
};

PrepData read_prep(const StageContext& ctx) {
  const std::string path = scheduler::input_of_kind(ctx, StageKind::Prep).file("data");
  std::unique_ptr<json::Document> doc = json::parse(read_file(path), path);
  json::ObjectReader r = doc->root();
  PrepData d;
  d.config = r.required_string("config");
  d.test_images = r.string("test_images", "", json::Text::Any);
  d.test_labels = r.string("test_labels", "", json::Text::Any);
  r.finish();
  doc->errors.throw_if_any();
  return d;
}

StageResult run_train(const StageContext& ctx) {
  const TrainStageConfig c = parse_train(*ctx.pipeline, *ctx.stage);
  const PrepData d = read_prep(ctx);
  const TrainOptions o = train_stage_options(ctx, c);
  Result tr = train(d.config, o);
  return scheduler::train_run_result(tr.json, tr.summary, scheduler::RunCheckpoint::Yes);
}

StageResult run_evaluate(const StageContext& ctx) {
  EvalConfig c = parse_eval(*ctx.pipeline, *ctx.stage);
  if (c.images.empty()) {
    const PrepData d = read_prep(ctx);
    if (d.test_images.empty())
      TESSERA_THROW(Config, "stage '" << ctx.stage->name
                                      << "': the config has no IDX test set on this machine; "
                                         "name one with \"images\" (and \"labels\")");
    c.images = d.test_images;
    c.labels = d.test_labels;
  }
  Options o;
  o.device = ctx.device;
  o.quiet = ctx.quiet;
  Result er = evaluate(scheduler::input_of_kind(ctx, StageKind::Train).file("model"),
                       c.labels.empty() ? c.images : c.images + "," + c.labels, o);
  write_file_atomic(ctx.work_dir + "/evaluation.json", er.json + "\n");
  StageResult r;
  r.files["evaluation"] = "evaluation.json";
  r.result_json = er.json;
  r.summary = er.summary;
  return r;
}

}  // namespace

TrainOptions train_stage_options(const scheduler::StageContext& ctx,
                                 const scheduler::TrainStageConfig& c) {
  TrainOptions o;
  o.device = !ctx.device.empty() ? ctx.device : c.device;
  o.quiet = ctx.quiet;
  o.epochs = c.epochs;
  // The same directory on every attempt (the stage key pins the config): a rerun after a kill
  // resumes from its last epoch's checkpoint.
  o.resume = ctx.work_dir + "/run";
  return o;
}

void register_stages(scheduler::StageRegistry& registry) {
  auto validate_only = [](auto parse) {
    return [parse](const PipelineSpec& p, const StageSpec& s) {
      parse(p, s);
      return std::vector<std::string>{};
    };
  };
  registry.add("image", StageKind::Prep, {prep_inputs, run_prep});
  registry.add("image", StageKind::Train, {validate_only(parse_train), run_train});
  registry.add("image", StageKind::Evaluate,
               {[](const PipelineSpec& p, const StageSpec& s) {
                  const EvalConfig c = parse_eval(p, s);
                  std::vector<std::string> files;
                  for (const std::string& f : {c.images, c.labels})
                    if (!f.empty()) files.push_back(f);
                  return files;
                },
                run_evaluate});
}

}  // namespace tessera::image
