#include "host/scheduler/stage_helpers.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/path_name.h"
#include "host/data/registry.h"

namespace tessera::scheduler {

namespace {

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

}  // namespace

std::unique_ptr<json::Document> parse_stage_config(const PipelineSpec& p, const StageSpec& s) {
  return json::parse(s.config_json, p.path + " (stage '" + s.name + "' config)");
}

std::string parse_prep_config_path(const PipelineSpec& p, const StageSpec& s) {
  auto doc = parse_stage_config(p, s);
  json::ObjectReader r = doc->root();
  const std::string config = resolve_spec_path(p, r.required_string("config"));
  r.finish();
  doc->errors.throw_if_any();
  return config;
}

TrainStageConfig parse_train_stage_config(const PipelineSpec& p, const StageSpec& s,
                                          TimeBudget budget) {
  auto doc = parse_stage_config(p, s);
  json::ObjectReader r = doc->root();
  TrainStageConfig c;
  c.epochs = r.integer<int64_t>("epochs", -1, json::IntBounds::at_least(1));
  if (budget == TimeBudget::Allowed)
    c.time_budget_s = r.number("time_budget_s", -1, json::Bounds::at_least(0));
  c.device = r.string("device", "", json::Text::NonEmpty);
  r.finish();
  doc->errors.throw_if_any();
  return c;
}

std::string resolve_spec_path(const PipelineSpec& p, const std::string& path) {
  if (path.empty()) return path;
  return real_path(path[0] == '/' ? path : p.dir + "/" + path);
}

const StageOutputs& input_of_kind(const StageContext& ctx, StageKind kind) {
  for (const std::string& in : ctx.stage->inputs)
    if (ctx.pipeline->stage(in).kind == kind) return ctx.inputs.at(in);
  TESSERA_THROW(Config, ctx.pipeline->path << ": stage '" << ctx.stage->name << "' needs a "
                                           << stage_kind_name(kind) << " stage among its inputs");
}

std::string find_local_dataset_file(const std::string& dataset, const std::string& file) {
  if (dataset.empty() || (!file.empty() && file[0] == '/'))
    return exists(file) ? real_path(file) : std::string();
  for (const SearchDir& d : dataset_search_dirs(dataset))
    if (exists(d.path + "/" + file)) return real_path(d.path + "/" + file);
  return "";
}

std::string fresh_subdir(const StageContext& ctx, const std::string& name) {
  require_path_component(name, "stage sub-directory", ErrorKind::Internal);
  const std::string dir = ctx.work_dir + "/" + name;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // no shell: never a command built from a path
  if (ec)
    TESSERA_THROW(Io, "cannot remove the unfinished attempt '" << dir << "': " << ec.message());
  return dir;
}

std::string json_quote(const std::string& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(sb.GetString(), sb.GetSize());
}

PrepConfigAndTest read_prep_config_and_test(const StageContext& ctx, const char* count_key) {
  const std::string path = input_of_kind(ctx, StageKind::Prep).file("data");
  std::unique_ptr<json::Document> doc = json::parse(read_file(path), path);
  json::ObjectReader r = doc->root();
  PrepConfigAndTest d;
  d.config = r.required_string("config");
  d.test = r.string("test", "", json::Text::Any);
  r.allow(count_key);
  r.finish();
  doc->errors.throw_if_any();
  return d;
}

StageResult train_run_result(std::string result_json, std::string summary, RunCheckpoint ck) {
  StageResult r;
  r.files = {{"model", "run/model.tsm"},
             {"metrics", "run/metrics.jsonl"},
             {"result", "run/result.json"},
             {"config", "run/config.json"}};
  if (ck == RunCheckpoint::Yes) r.files["checkpoint"] = "run/checkpoint.tsc";
  r.result_json = std::move(result_json);
  r.summary = std::move(summary);
  return r;
}

}  // namespace tessera::scheduler
