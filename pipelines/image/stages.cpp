#include "pipelines/image/stages.h"

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/image/image.h"
#include "pipelines/image/image_config.h"
#include "pipelines/task_stages.h"

namespace tessera::image {

namespace {

// The scheduler's stage API, which every function here is written against.
using namespace scheduler;

struct EvalConfig {
  std::string images, labels;
};

EvalConfig parse_eval(const PipelineSpec& p, const StageSpec& s) {
  EvalConfig c;
  scheduler::read_stage_config(p, s, [&](json::ObjectReader& r) {
    c.images = scheduler::resolve_spec_path(p, r.string("images", "", json::Text::Any));
    c.labels = scheduler::resolve_spec_path(p, r.string("labels", "", json::Text::Any));
    if (c.images.empty() && !c.labels.empty()) r.error("labels", "labels without images");
  });
  return c;
}

// The config's data files found on this machine: where a file is missing, "". A digits CSV test
// file is test_images (its labels are in it).
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
    l.test_images = locate(d, d.test);
  } else {
    l.train = {locate(d, d.train_images), locate(d, d.train_labels)};
    l.test_images = locate(d, d.test_images);
    l.test_labels = locate(d, d.test_labels);
  }
  return l;
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const std::string config = scheduler::parse_prep_config_path(p, s);
  const ImageConfig cfg = load_image_config(config);
  std::vector<std::string> files = {config};
  const LocalData l = local_data(cfg);
  for (const std::string& f : l.train)
    if (!f.empty()) files.push_back(f);
  for (const std::string& f : {l.test_images, l.test_labels})
    if (!f.empty()) files.push_back(f);
  return files;
}

StageResult run_prep(const StageContext& ctx) {
  const std::string config = scheduler::parse_prep_config_path(*ctx.pipeline, *ctx.stage);
  const ImageConfig cfg = load_image_config(config);
  const LocalData l = local_data(cfg);
  for (const std::string& f : l.train)
    if (f.empty())
      TESSERA_THROW(Data, "the training images of "
                              << config << " are not on this machine (dataset '" << cfg.data.dataset
                              << "', dir '" << cfg.data.dir << "')");
  return scheduler::prep_result(
      ctx,
      "{\"config\":" + json_quote(config) + ",\"test_images\":" + json_quote(l.test_images) +
          ",\"test_labels\":" + json_quote(l.test_labels) + "}",
      "data: " + (cfg.data.dataset.empty() ? cfg.data.dir : cfg.data.dataset));
}

struct PrepData {
  std::string config, test_images, test_labels;
};

PrepData read_prep(const StageContext& ctx) {
  PrepData d;
  scheduler::read_prep_data(ctx, [&](json::ObjectReader& r) {
    d.config = r.required_string("config");
    d.test_images = r.string("test_images", "", json::Text::Any);
    d.test_labels = r.string("test_labels", "", json::Text::Any);
  });
  return d;
}

StageResult run_evaluate(const StageContext& ctx) {
  EvalConfig c = parse_eval(*ctx.pipeline, *ctx.stage);
  if (c.images.empty()) {
    const PrepData d = read_prep(ctx);
    if (d.test_images.empty())
      TESSERA_THROW(Config, "stage '" << ctx.stage->name
                                      << "': the config has no test file on this machine; "
                                         "name one with \"images\" (and \"labels\")");
    c.images = d.test_images;
    c.labels = d.test_labels;
  }
  return scheduler::evaluation_result(
      ctx, evaluate(scheduler::trained_model(ctx),
                    c.labels.empty() ? c.images : c.images + "," + c.labels,
                    scheduler::stage_run_options<Options>(ctx)));
}

}  // namespace

void register_stages(scheduler::StageRegistry& registry) {
  add_prep_and_train(registry, "image", {prep_inputs, run_prep}, TimeBudget::NotAllowed,
                     config_of_prep(read_prep), train);
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
