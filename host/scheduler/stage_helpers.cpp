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

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

// `doc` read field by field by `read`; then unknown keys and every error are reported.
void read_fields(json::Document& doc, const ReadFields& read) {
  json::ObjectReader r = doc.root();
  read(r);
  r.finish();
  doc.errors.throw_if_any();
}

// A train stage's run options (see train_stage).
train::RunOptions train_stage_options(const StageContext& ctx, const TrainStageConfig& c,
                                      RunDir run_dir) {
  train::RunOptions o;
  o.device = !ctx.device.empty() ? ctx.device : c.device;
  o.quiet = ctx.quiet;
  o.epochs = c.epochs;
  o.time_budget_s = c.time_budget_s;
  o.resume = run_dir == RunDir::Sub ? ctx.work_dir + "/run" : ctx.work_dir;
  return o;
}

// A train stage's result when the task trained into `dir` (WORK/run/ or WORK/): its model,
// metrics, result, config and epoch checkpoint files.
StageResult train_run_result(const CommandResult& tr, RunDir dir) {
  const std::string in = dir == RunDir::Sub ? "run/" : "";
  StageResult r;
  r.files = {{"model", in + "model.tsm"},
             {"metrics", in + "metrics.jsonl"},
             {"result", in + "result.json"},
             {"checkpoint", in + "checkpoint.tsc"},
             {"config", in + "config.json"}};
  r.result_json = tr.json;
  r.summary = tr.summary;
  return r;
}

}  // namespace

bool path_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::unique_ptr<json::Document> parse_stage_config(const PipelineSpec& p, const StageSpec& s) {
  return json::parse(s.config_json, p.path + " (stage '" + s.name + "' config)");
}

void read_stage_config(const PipelineSpec& p, const StageSpec& s, const ReadFields& read) {
  read_fields(*parse_stage_config(p, s), read);
}

void parse_empty_stage_config(const PipelineSpec& p, const StageSpec& s) {
  read_stage_config(p, s, [](json::ObjectReader&) {});
}

StageRunner config_free_stage(std::function<StageResult(const StageContext&)> run) {
  return {validate_only(parse_empty_stage_config), [run = std::move(run)](const StageContext& ctx) {
            parse_empty_stage_config(*ctx.pipeline, *ctx.stage);
            return run(ctx);
          }};
}

std::string parse_prep_config_path(const PipelineSpec& p, const StageSpec& s) {
  std::string config;
  read_stage_config(p, s, [&](json::ObjectReader& r) {
    config = resolve_spec_path(p, r.required_string("config"));
  });
  return config;
}

TrainStageConfig parse_train_stage_config(const PipelineSpec& p, const StageSpec& s,
                                          TimeBudget budget) {
  TrainStageConfig c;
  read_stage_config(p, s, [&](json::ObjectReader& r) {
    c.epochs = r.integer<int64_t>("epochs", -1, json::IntBounds::at_least(1));
    if (budget == TimeBudget::Allowed)
      c.time_budget_s = r.number("time_budget_s", -1, json::Bounds::at_least(0));
    c.device = r.string("device", "", json::Text::NonEmpty);
  });
  return c;
}

StageRunner train_stage(TimeBudget budget, PrepConfigOf prep_config, TaskTrain train,
                        RunDir run_dir) {
  auto parse = [budget](const PipelineSpec& p, const StageSpec& s) {
    return parse_train_stage_config(p, s, budget);
  };
  auto run = [parse, prep_config = std::move(prep_config), train = std::move(train),
              run_dir](const StageContext& ctx) {
    const TrainStageConfig c = parse(*ctx.pipeline, *ctx.stage);
    const std::string config = prep_config(ctx);
    return train_run_result(train(config, train_stage_options(ctx, c, run_dir)), run_dir);
  };
  return {validate_only(parse), run};
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

const std::string& trained_model(const StageContext& ctx) {
  return input_of_kind(ctx, StageKind::Train).file("model");
}

std::string find_local_dataset_file(const std::string& dataset, const std::string& file) {
  if (dataset.empty() || (!file.empty() && file[0] == '/'))
    return path_exists(file) ? real_path(file) : std::string();
  for (const SearchDir& d : dataset_search_dirs(dataset))
    if (path_exists(d.path + "/" + file)) return real_path(d.path + "/" + file);
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

void read_prep_data(const StageContext& ctx, const ReadFields& read) {
  const std::string path = input_of_kind(ctx, StageKind::Prep).file("data");
  read_fields(*json::parse(read_file(path), path), read);
}

std::string read_prep_config(const StageContext& ctx,
                             std::initializer_list<const char*> other_keys) {
  std::string config;
  read_prep_data(ctx, [&](json::ObjectReader& r) {
    config = r.required_string("config");
    for (const char* k : other_keys) r.allow(k);
  });
  return config;
}

PrepConfigAndTest read_prep_config_and_test(const StageContext& ctx, const char* count_key) {
  PrepConfigAndTest d;
  read_prep_data(ctx, [&](json::ObjectReader& r) {
    d.config = r.required_string("config");
    d.test = r.string("test", "", json::Text::Any);
    r.allow(count_key);
  });
  return d;
}

StageResult prep_result(const StageContext& ctx, std::string json, std::string summary) {
  write_file_atomic(ctx.work_dir + "/data.json", json + "\n");
  StageResult r;
  r.files["data"] = "data.json";
  r.result_json = std::move(json);
  r.summary = std::move(summary);
  return r;
}

StageResult file_output_stage(const StageContext& ctx, const std::string& name,
                              const std::string& file, const WriteFile& write) {
  const CommandResult cr = write(ctx.work_dir + "/" + file);
  StageResult r;
  r.files[name] = file;
  r.result_json = cr.json;
  r.summary = cr.summary;
  return r;
}

StageResult evaluation_result(const StageContext& ctx, const CommandResult& er) {
  return file_output_stage(ctx, "evaluation", "evaluation.json", [&](const std::string& path) {
    write_file_atomic(path, er.json + "\n");
    return er;
  });
}

}  // namespace tessera::scheduler
