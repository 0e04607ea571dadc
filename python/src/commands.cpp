// tessera._core's commands (commands.h): the CLI's verbs (pipelines/commands.h) and its train,
// through the same registry and task functions. What differs from the CLI is only what a Python
// caller needs: the per-epoch hook of train, and no exit codes (errors stay tessera::Error for
// core.cpp).
#include "python/src/commands.h"

#include <utility>

#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/core/error.h"
#include "host/data/prepared_writer.h"
#include "host/train/repeats.h"
#include "pipelines/audio/audio.h"
#include "pipelines/behaviour/prep.h"
#include "pipelines/behaviour/stages.h"
#include "pipelines/commands.h"
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

// evaluate, predict, generate, perplexity, recommend, export: the model file's task answers
// (pipelines/commands.h), except a text-generation model's generate, which returns its text.
CommandResult model_command(const CliArgs& a) {
  if (a.positionals.empty()) TESSERA_THROW(Usage, "'" << a.command << "' needs a model file");
  if (a.command == "generate" && task_of_model(tasks(), a.positionals[0]).name == "textgen")
    return generate_command(a);
  return cli::model_command(a);
}

// One training run of `a` (no --seeds) by `task`, with the per-epoch hook where the task has one.
CommandResult train_once(const Task& task, const CliArgs& a,
                         const std::function<bool(const std::string&)>& on_epoch,
                         const std::function<void()>& after_step) {
  const std::string& config_path = a.positionals.at(0);
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
  if (after_step) o.after_step = [after_step](int64_t, bool) { after_step(); };
  return fn->second(config_path, o);
}

}  // namespace

// With --seeds: one run per seed, each in its own run directory, then every metric's mean and
// spread (host/train/repeats.h), as the CLI's train_command (pipelines/cli/main.cpp) does.
CommandResult train(const std::string& config_path, const Options& options,
                    const std::function<bool(const std::string&)>& on_epoch,
                    const std::function<void()>& after_step) {
  const CliArgs a = args_of("train", {config_path}, options);
  const Task& task = task_of_config(tasks(), config_path);
  if (!a.flag("--seeds")) return train_once(task, a, on_epoch, after_step);
  for (const char* other : {"--seed", "--run-dir", "--resume"})
    if (a.flag(other))
      TESSERA_THROW(Usage,
                    "--seeds trains one run directory per seed under --runs-dir: it "
                    "cannot be combined with "
                        << other);
  const std::vector<int64_t> seeds = train::parse_seed_list(a.options.at("--seeds"));
  std::vector<CommandResult> runs;
  std::string lines;
  for (const int64_t seed : seeds) {
    CliArgs one = a;
    one.options.erase("--seeds");
    one.options["--seed"] = std::to_string(seed);
    runs.push_back(train_once(task, one, on_epoch, after_step));
    lines += "== seed " + std::to_string(seed) + "\n" + runs.back().summary;
    if (!lines.empty() && lines.back() != '\n') lines += '\n';
  }
  CommandResult all = train::summarize_repeats(seeds, runs);
  all.summary = lines + all.summary;
  return all;
}

CommandResult command(const std::string& verb, const std::vector<std::string>& positionals,
                      const Options& options) {
  const CliArgs a = args_of(verb, positionals, options);
  if (verb == "config") return cli::config_command(a);
  if (verb == "run" || verb == "runs" || verb == "report") return cli::pipeline_command(a);
  if (verb == "make-synthetic") return cli::synthetic_command(a);
  if (verb == "prep") return cli::prep_command(a);
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

CommandResult prepare_arrow(const std::string& config_path, const std::string& dir,
                            const ArrowStreamFactory& train, const ArrowStreamFactory& validation,
                            const ArrowStreamFactory& test, int64_t shard_rows, bool quiet) {
  if (task_of_config(config_path) != "behaviour")
    TESSERA_THROW(Usage, "data= takes tabular data for behaviour configs; a "
                             << task_of_config(config_path) << " config reads its files");
  const PrepareInputs in = behaviour::prepare_inputs_of(config_path);
  ArrowPrepareInputs a;
  a.schema = in.schema;
  a.options = in.options;
  a.train = train;
  a.validation = validation;
  a.validation_fraction = validation ? 0.0 : in.validation_fraction;
  a.seed = in.seed;
  a.test = test;
  PrepareOptions po;
  po.shard_rows = shard_rows;
  po.quiet = quiet;
  const PrepareResult r = prepare_dataset_from_arrow(a, dir, po);
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "prep").field("out", dir).field("status", prepare_status_name(r.status));
  w.field("shards_written", r.shards_written).field("records_read", r.records_read);
  w.field("bad_rows", r.bad_rows).field("seconds", r.seconds);
  w.key("rows").begin_object();
  for (const auto& [split, n] : r.rows) w.field(split, n);
  w.end_object();
  w.end_object();
  return {r.summary(dir), w.compact()};
}

}  // namespace tessera::python
