#include "pipelines/textgen/stages.h"

#include <rapidjson/document.h>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/textgen/textgen.h"

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

// The text file and validation share a textgen config names (the config itself is validated by
// textgen::train; here only what the prep stage needs).
struct TextData {
  std::string file;  // "" when not on this machine
  double validation_fraction = 0.1;
  int64_t max_chars = 0;  // > 0: only the first this many bytes are used
};

TextData text_data(const std::string& config) {
  if (!is_textgen_config(config))
    TESSERA_THROW(Config, config << ": not a textgen config (\"task\": \"textgen\")");
  const std::string text = json::read_text_file(config);
  rapidjson::Document d;
  d.Parse<rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(text.c_str(),
                                                                               text.size());
  TextData t;
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("data") || !d["data"].IsObject())
    TESSERA_THROW(Config, config << ": no \"data\" object");
  const auto& data = d["data"];
  auto str = [&](const char* k) {
    return data.HasMember(k) && data[k].IsString() ? std::string(data[k].GetString()) : "";
  };
  if (data.HasMember("validation_fraction") && data["validation_fraction"].IsNumber())
    t.validation_fraction = data["validation_fraction"].GetDouble();
  if (data.HasMember("max_chars") && data["max_chars"].IsInt64())
    t.max_chars = data["max_chars"].GetInt64();
  // As textgen::train reads it: "path" as given, else "file" of the registered dataset.
  t.file = str("path").empty() ? scheduler::find_local_dataset_file(str("dataset"), str("file"))
                               : scheduler::find_local_dataset_file("", str("path"));
  return t;
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const std::string config = scheduler::parse_prep_config_path(p, s);
  const TextData t = text_data(config);
  if (t.file.empty()) return {config};
  return {config, t.file};
}

StageResult run_prep(const StageContext& ctx) {
  const std::string config = scheduler::parse_prep_config_path(*ctx.pipeline, *ctx.stage);
  const TextData t = text_data(config);
  if (t.file.empty()) TESSERA_THROW(Data, "the text of " << config << " is not on this machine");
  std::string text = read_file(t.file);
  if (t.max_chars > 0 && static_cast<int64_t>(text.size()) > t.max_chars)
    text.resize(static_cast<size_t>(t.max_chars));
  size_t cut = static_cast<size_t>(static_cast<double>(text.size()) * (1 - t.validation_fraction));
  const size_t line = text.find('\n', cut);
  if (line != std::string::npos) cut = line + 1;
  write_file_atomic(ctx.work_dir + "/validation.txt", text.substr(cut));
  StageResult r = scheduler::prep_result(
      ctx,
      "{\"config\":" + json_quote(config) + ",\"text\":" + json_quote(t.file) +
          ",\"validation_chars\":" + std::to_string(text.size() - cut) + "}",
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
  write_file_atomic(ctx.work_dir + "/samples.txt", out);
  StageResult r;
  r.files["samples"] = "samples.txt";
  r.result_json = "{\"samples\":" + json + "]}";
  r.summary = std::to_string(c.prompts.size()) + " samples";
  return r;
}

}  // namespace

void register_stages(scheduler::StageRegistry& registry) {
  registry.add("textgen", StageKind::Prep, {prep_inputs, run_prep});
  registry.add("textgen", StageKind::Train,
               scheduler::train_stage(scheduler::TimeBudget::Allowed, prep_config, train));
  registry.add("textgen", StageKind::Evaluate, scheduler::config_free_stage(run_evaluate));
  registry.add("textgen", StageKind::BatchScore, {validate_only(parse_sample), run_sample});
}

}  // namespace tessera::textgen
