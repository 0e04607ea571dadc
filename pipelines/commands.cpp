// The command line's verbs other than train (commands.h).
#include "pipelines/commands.h"

#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/core/error.h"
#include "host/scheduler/commands.h"
#include "pipelines/behaviour/prep.h"
#include "pipelines/behaviour/synthetic.h"
#include "pipelines/behaviour/synthetic_criteo.h"

namespace tessera::cli {

// evaluate, predict, generate, perplexity, recommend, export: the model file's task answers.
CommandResult model_command(const CliArgs& a) {
  const Task& task = task_of_model(tasks(), a.positionals.at(0));
  auto verb = task.model_verbs.find(a.command);
  if (verb == task.model_verbs.end()) {
    std::vector<std::string> verbs;
    for (const auto& [name, f] : task.model_verbs) verbs.push_back(name);
    TESSERA_THROW(Usage, "'" << a.positionals.at(0) << "' is a " << task.name
                             << " model; it answers " << json::quoted_list(verbs) << ", not '"
                             << a.command << "'");
  }
  return verb->second(a);
}

// run, runs, report: the scheduler's, with every task's stage kinds.
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

// make-synthetic DIR: the behaviour task's generated datasets (a default that needs no download).
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
  return {"wrote " + a.positionals.at(0) + (criteo ? "/{train,test}.txt" : "/{train,test}.csv") +
              " and " + cfg + "\n",
          w.compact()};
}

// prep CONFIG: a behaviour config's data as a prepared dataset (pipelines/behaviour/prep.h).
CommandResult prep_command(const CliArgs& a) {
  const Task& task = task_of_config(tasks(), a.positionals.at(0));
  if (task.name != "behaviour")
    TESSERA_THROW(Usage, "prep prepares behaviour data; '" << a.positionals.at(0) << "' is a "
                                                           << task.name << " config");
  behaviour::PrepCommandOptions o;
  o.out = a.text("--out", "");
  o.append = a.text("--append", "");
  o.shard_rows = a.count("--shard-rows", o.shard_rows);
  if (o.shard_rows < 1) TESSERA_THROW(Usage, "--shard-rows must be at least 1");
  o.threads = static_cast<int>(a.count("--threads", o.threads));
  if (o.threads < 1 || o.threads > 256) TESSERA_THROW(Usage, "--threads must be in [1, 256]");
  o.quiet = a.quiet();
  return behaviour::prep(a.positionals.at(0), o);
}

// config TASK --example | --schema: the task's declared config, as text for people or a schema.
CommandResult config_command(const CliArgs& a) {
  const Task& task = tasks().find(a.positionals.at(0), "the command line");
  if (a.flag("--example") && a.flag("--schema"))
    TESSERA_THROW(Usage, "give one of --example and --schema");
  const bool schema = a.flag("--schema");
  const auto& make = schema ? task.config_schema : task.config_example;
  if (!make) TESSERA_THROW(Usage, "the " << task.name << " task does not declare its config yet");
  const std::string text = make();
  if (schema) {
    rapidjson::Document d;
    d.Parse(text.c_str());
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    d.Accept(writer);
    return {text, buffer.GetString()};
  }
  json::JsonWriter w;
  w.begin_object().field("command", "config").field("task", task.name).field("example", text);
  return {text, w.end_object().compact()};
}

}  // namespace tessera::cli
