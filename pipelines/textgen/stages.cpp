#include "pipelines/textgen/stages.h"

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/task_stages.h"
#include "pipelines/textgen/textgen.h"
#include "pipelines/textgen/textgen_config.h"

namespace tessera::textgen {

namespace {

// The scheduler's stage API, which every function here is written against.
using namespace scheduler;

struct SampleConfig {
  std::vector<std::string> prompts;
  int64_t length = 200;
  double temperature = 0.8;
  int64_t top_k = 20;
  int64_t seed = 1;
};

SampleConfig parse_sample(const PipelineSpec& p, const StageSpec& s) {
  SampleConfig c;
  scheduler::read_stage_config(p, s, [&](json::ObjectReader& r) {
    c.prompts = r.string_list("prompts", {"\n"}, json::Text::Any, json::IntBounds::at_least(1));
    c.length = r.integer<int64_t>("length", 200, json::IntBounds::closed(1, 1 << 20));
    c.temperature = r.number("temperature", 0.8, json::Bounds::positive());
    c.top_k = r.integer<int64_t>("top_k", 20, json::IntBounds::at_least(0));
    c.seed = r.integer<int64_t>("seed", 1, json::IntBounds::at_least(0));
  });
  return c;
}

// The text files a textgen config names, on this machine ("" where not), and how validation is
// held out (the config is read as textgen::train reads it).
struct TextData {
  TextgenData data;
  std::string file;        // the training text
  std::string validation;  // the validation file; "" with a held-out share of the text
};

std::string local_file(const TextgenData& d, const FileSpec& f) {
  return scheduler::find_local_dataset_file(d.dataset, f.path);
}

TextData text_data(const std::string& config) {
  if (!is_textgen_config(config))
    TESSERA_THROW(Config, config << ": not a textgen config (\"task\": \"textgen\")");
  TextData t;
  t.data = read_textgen_config(config).data;
  t.file = local_file(t.data, t.data.train);
  if (t.data.validation) t.validation = local_file(t.data, *t.data.validation);
  return t;
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const std::string config = scheduler::parse_prep_config_path(p, s);
  const TextData t = text_data(config);
  std::vector<std::string> inputs = {config};
  for (const std::string& f : {t.file, t.validation})
    if (!f.empty()) inputs.push_back(f);
  return inputs;
}

// The validation text train measures: the validation file, or the held-out end of the text (from
// the first line break after the cut).
std::string validation_text(const TextData& t) {
  if (t.data.validation) return read_text(t.validation, *t.data.validation, t.data.max_chars);
  const std::string text = read_text(t.file, t.data.train, t.data.max_chars);
  auto cut =
      static_cast<size_t>(static_cast<double>(text.size()) * (1 - t.data.validation_fraction));
  const size_t line = text.find('\n', cut);
  if (line != std::string::npos) cut = line + 1;
  return text.substr(cut);
}

StageResult run_prep(const StageContext& ctx) {
  const std::string config = scheduler::parse_prep_config_path(*ctx.pipeline, *ctx.stage);
  const TextData t = text_data(config);
  if (t.file.empty() || (t.data.validation && t.validation.empty()))
    TESSERA_THROW(Data, "the text of " << config << " is not on this machine");
  const std::string validation = validation_text(t);
  write_file_atomic(ctx.work_dir + "/validation.txt", validation);
  StageResult r = scheduler::prep_result(
      ctx,
      "{\"config\":" + json_quote(config) + ",\"text\":" + json_quote(t.file) +
          ",\"validation_chars\":" + std::to_string(validation.size()) + "}",
      "data: " + t.file);
  r.files["validation"] = "validation.txt";
  return r;
}

std::string prep_config(const StageContext& ctx) {
  return scheduler::read_prep_config(ctx, {"text", "validation_chars"});
}

std::string device_of(const StageContext& ctx) {
  return ctx.device.empty() ? "auto" : ctx.device;
}

StageResult run_evaluate(const StageContext& ctx) {
  return scheduler::evaluation_result(
      ctx, perplexity(scheduler::trained_model(ctx),
                      scheduler::input_of_kind(ctx, StageKind::Prep).file("validation"),
                      device_of(ctx)));
}

StageResult run_sample(const StageContext& ctx) {
  const SampleConfig c = parse_sample(*ctx.pipeline, *ctx.stage);
  const std::string model = scheduler::trained_model(ctx);
  std::string out, json = "[";
  for (size_t i = 0; i < c.prompts.size(); ++i) {
    GenerateOptions g;
    g.device = device_of(ctx);
    g.prompt = c.prompts[i];
    g.length = c.length;
    g.temperature = c.temperature;
    g.top_k = c.top_k;
    g.seed = static_cast<uint64_t>(c.seed) + i;
    std::string text = g.prompt;
    generate(model, g, [&](const std::string& piece) { text += piece; });
    out += text + "\n\n";
    json += (i ? "," : "") + json_quote(text);
  }
  return scheduler::file_output_stage(ctx, "samples", "samples.txt", [&](const std::string& path) {
    write_file_atomic(path, out);
    return CommandResult{std::to_string(c.prompts.size()) + " samples",
                         "{\"samples\":" + json + "]}"};
  });
}

}  // namespace

void register_stages(scheduler::StageRegistry& registry) {
  add_prep_and_train(registry, "textgen", {prep_inputs, run_prep}, TimeBudget::Allowed, prep_config,
                     train);
  registry.add("textgen", StageKind::Evaluate, scheduler::config_free_stage(run_evaluate));
  registry.add("textgen", StageKind::BatchScore, {validate_only(parse_sample), run_sample});
}

}  // namespace tessera::textgen
