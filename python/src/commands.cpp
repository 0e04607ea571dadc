// tessera._core's commands (commands.h): the CLI's dispatch (pipelines/cli/main.cpp), through the
// same registry and task functions. What differs from the CLI is only what a Python caller needs:
// the per-epoch hook of train, and no exit codes (errors stay tessera::Error for core.cpp).
#include "python/src/commands.h"

#include <utility>

#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/core/error.h"
#include "host/scheduler/commands.h"
#include "pipelines/audio/audio.h"
#include "pipelines/behaviour/prep.h"
#include "pipelines/behaviour/stages.h"
#include "pipelines/behaviour/synthetic.h"
#include "pipelines/behaviour/synthetic_criteo.h"
#include "pipelines/image/image.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/task.h"
#include "pipelines/textclass/textclass.h"
#include "pipelines/textgen/textgen.h"
#include "pipelines/video/video.h"

namespace tessera::python {

namespace {

using TrainFn = std::function<CommandResult(const std::string&, const train::RunOptions&)>;

// Each registered task's train on run options: the function its registration wraps for the CLI
// (pipelines/<task>/task.cpp, task_with_train), called here with the hook set.
const std::map<std::string, TrainFn>& train_functions() {
  static const std::map<std::string, TrainFn> fns = {
      {"behaviour", behaviour::train_on_run_options},
      {"recommend",
       [](const std::string& c, const train::RunOptions& o) { return recommend::train(c, o); }},
      {"textgen",
       [](const std::string& c, const train::RunOptions& o) { return textgen::train(c, o); }},
      {"textclass",
       [](const std::string& c, const train::RunOptions& o) { return textclass::train(c, o); }},
      {"image",
       [](const std::string& c, const train::RunOptions& o) { return image::train(c, o); }},
      {"audio",
       [](const std::string& c, const train::RunOptions& o) { return audio::train(c, o); }},
      {"video",
       [](const std::string& c, const train::RunOptions& o) { return video::train(c, o); }},
  };
  return fns;
}

CliArgs args_of(std::string verb, std::vector<std::string> positionals, const Options& options) {
  CliArgs a;
  a.command = std::move(verb);
  a.positionals = std::move(positionals);
  a.options = options;
  return a;
}

// generate on a text-generation model: the CLI's verb streams the text to stdout, which a Python
// caller does not see (and a notebook's cell would not show); the same options, no stream, the
// text in the result.
CommandResult generate_command(const CliArgs& a) {
  textgen::GenerateOptions o;
  o.device = a.text("--device", "cpu");
  o.prompt = a.text("--prompt", "");
  o.length = a.count("--length", 200);
  o.top_k = a.count("--top-k", 0);
  o.seed = static_cast<uint64_t>(a.count("--seed", 0));
  o.temperature = a.number("--temperature", 1.0);
  return textgen::generate(a.positionals.at(0), o, [](const std::string&) {});
}

// evaluate, predict, generate, perplexity, recommend, export: the model file's task answers (the
// CLI's message when it does not).
CommandResult model_command(const CliArgs& a) {
  if (a.positionals.empty()) TESSERA_THROW(Usage, "'" << a.command << "' needs a model file");
  const Task& task = task_of_model(tasks(), a.positionals[0]);
  auto verb = task.model_verbs.find(a.command);
  if (verb != task.model_verbs.end() && task.name == "textgen" && a.command == "generate")
    return generate_command(a);
  if (verb == task.model_verbs.end()) {
    std::vector<std::string> verbs;
    for (const auto& [name, f] : task.model_verbs) verbs.push_back(name);
    TESSERA_THROW(Usage, "'" << a.positionals[0] << "' is a " << task.name << " model; it answers "
                             << json::quoted_list(verbs) << ", not '" << a.command << "'");
  }
  return verb->second(a);
}

CommandResult pipeline_command(const CliArgs& a) {
  namespace sched = scheduler;
  if (a.command == "runs") return sched::runs_command(a.text("--runs-dir", "runs"));
  if (a.command == "report") return sched::report_command(a.positionals.at(0));
  sched::RunOptions o;
  o.runs_dir = a.text("--runs-dir", "");
  o.cache_dir = a.text("--cache-dir", "");
  o.jobs = static_cast<int>(a.count("--jobs", 0));
  o.device = a.device();
  o.quiet = a.quiet();
  return sched::run_command(a.positionals.at(0), tasks().stages(), o,
                            a.flag("--dry-run") ? sched::Execution::DryRun : sched::Execution::Run);
}

CommandResult synthetic_command(const CliArgs& a) {
  const std::string layout = a.text("--layout", "behaviour");
  if (layout != "behaviour" && layout != "criteo")
    TESSERA_THROW(Usage, "--layout must be one of: behaviour, criteo");
  const bool criteo = layout == "criteo";
  const int64_t rows = a.count("--rows", criteo ? 100000 : 20000);
  if (rows < 100) TESSERA_THROW(Usage, "--rows must be at least 100");
  std::string cfg;
  if (criteo) {
    behaviour::CriteoSyntheticOptions o;
    o.train_rows = rows;
    o.test_rows = rows / 4;
    cfg = behaviour::write_synthetic_criteo(a.positionals.at(0), o);
  } else {
    behaviour::SyntheticOptions o;
    o.train_rows = rows;
    o.test_rows = rows / 4;
    cfg = behaviour::write_synthetic_dataset(a.positionals.at(0), o);
  }
  json::JsonWriter w;
  w.begin_object().field("command", "make-synthetic").field("layout", layout);
  w.field("config", cfg).field("train_rows", rows).field("test_rows", rows / 4).end_object();
  return {"wrote " + a.positionals[0] + " and " + cfg + "\n", w.compact()};
}

// prep CONFIG: a behaviour config's data as a prepared dataset (pipelines/behaviour/prep.h).
CommandResult prep_command(const CliArgs& a) {
  const Task& task = ::tessera::task_of_config(tasks(), a.positionals.at(0));
  if (task.name != "behaviour")
    TESSERA_THROW(Usage, "prep prepares behaviour data; '" << a.positionals[0] << "' is a "
                                                           << task.name << " config");
  behaviour::PrepCommandOptions o;
  o.out = a.text("--out", "");
  o.append = a.text("--append", "");
  o.shard_rows = a.count("--shard-rows", o.shard_rows);
  if (o.shard_rows < 1) TESSERA_THROW(Usage, "--shard-rows must be at least 1");
  o.threads = static_cast<int>(a.count("--threads", o.threads));
  if (o.threads < 1 || o.threads > 256) TESSERA_THROW(Usage, "--threads must be in [1, 256]");
  o.quiet = a.quiet();
  return behaviour::prep(a.positionals[0], o);
}

// config TASK: the example (documented JSON with comments) or the schema, as text; the Python
// side parses the schema.
CommandResult config_command(const CliArgs& a) {
  const Task& task = tasks().find(a.positionals.at(0), "the argument");
  const bool schema = a.flag("--schema");
  const auto& make = schema ? task.config_schema : task.config_example;
  if (!make) TESSERA_THROW(Usage, "the " << task.name << " task does not declare its config yet");
  return {make(), ""};
}

}  // namespace

CommandResult train(const std::string& config_path, const Options& options,
                    const std::function<bool(const std::string&)>& on_epoch) {
  const CliArgs a = args_of("train", {config_path}, options);
  const Task& task = task_of_config(tasks(), config_path);
  const auto& fns = train_functions();
  auto fn = fns.find(task.name);
  if (fn == fns.end()) {
    if (on_epoch)
      TESSERA_THROW(Usage,
                    "the Python package cannot pass callbacks to the " << task.name << " task yet");
    return task.train(a);
  }
  train::RunOptions o = run_options_of(a);
  o.on_epoch = on_epoch;
  return fn->second(config_path, o);
}

CommandResult command(const std::string& verb, const std::vector<std::string>& positionals,
                      const Options& options) {
  const CliArgs a = args_of(verb, positionals, options);
  if (verb == "config") return config_command(a);
  if (verb == "run" || verb == "runs" || verb == "report") return pipeline_command(a);
  if (verb == "make-synthetic") return synthetic_command(a);
  if (verb == "prep") return prep_command(a);
  for (const char* v : {"evaluate", "predict", "generate", "perplexity", "recommend", "export"})
    if (verb == v) return model_command(a);
  TESSERA_THROW(Usage, "unknown command '" << verb << "'");
}

std::string task_of_config(const std::string& path) {
  return ::tessera::task_of_config(tasks(), path).name;
}

std::string task_of_model(const std::string& path) {
  return ::tessera::task_of_model(tasks(), path).name;
}

std::vector<TaskInfo> task_list() {
  std::vector<TaskInfo> out;
  for (const Task& t : tasks().all()) {
    TaskInfo info{t.name, t.about, {}};
    for (const auto& [name, f] : t.model_verbs) info.verbs.push_back(name);
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace tessera::python
