#pragma once
// Tasks: one folder under pipelines/ each (behaviour, recommend, textgen, textclass, image, audio,
// video), registered once in pipelines/tasks.cpp. A Task says what its config trains, which verbs
// its model files answer (evaluate, predict, generate, ...), and its pipeline stage kinds. The CLI
// reads a config's "task" (or a model file's) once and dispatches through the registry; the
// scheduler's stage registry is filled from it; the Python package calls the same entry points.
//
// Adding a task: a folder pipelines/<task>/ with its code and a `void register_task(TaskRegistry&)`
// (pipelines/README.md), and one line in pipelines/tasks.cpp.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "host/core/command_result.h"
#include "host/scheduler/scheduler.h"
#include "host/train/run_options.h"

namespace tessera {

// A command line as the verbs see it: the positional arguments after the command, and the
// options ("--json" -> "" for a flag).
struct CliArgs {
  std::string command;
  std::vector<std::string> positionals;
  std::map<std::string, std::string> options;

  bool flag(const std::string& key) const { return options.count(key) > 0; }
  std::string text(const std::string& key, const std::string& fallback) const;
  // A non-negative integer option (Usage error naming it otherwise).
  int64_t count(const std::string& key, int64_t fallback) const;
  double number(const std::string& key, double fallback) const;
  std::string device() const { return text("--device", ""); }
  bool quiet() const { return flag("--quiet"); }
};

using Verb = std::function<CommandResult(const CliArgs&)>;

// The options every task's train takes, from the command line: --device, --runs-dir, --run-dir,
// --resume, --epochs (a positive integer), --time-budget (seconds), --quiet.
train::RunOptions run_options_of(const CliArgs& args);

struct Task {
  std::string name;   // the "task" of its configs and model files
  std::string about;  // one line for `tessera --help`
  // `tessera train CONFIG`: positionals[0] is the config.
  Verb train;
  // The verbs a model file of this task answers, by command name: positionals[0] is the model.
  std::map<std::string, Verb> model_verbs;
  // Its pipeline stage kinds (host/scheduler); empty when it has no pipeline.
  std::function<void(scheduler::StageRegistry&)> stages;
  // `tessera config TASK --example`: a complete config with every default, documented as //
  // comments; `--schema`: its JSON Schema (draft 2020-12). Both derived from the config's one
  // declaration (host/config/declare.h).
  std::function<std::string()> config_example;
  std::function<std::string()> config_schema;
};

class TaskRegistry {
 public:
  void add(Task task);  // Internal error when the name is taken
  // The task named `name`; Config error naming `origin` and listing the tasks otherwise.
  const Task& find(const std::string& name, const std::string& origin) const;
  const std::vector<Task>& all() const { return tasks_; }
  std::vector<std::string> names() const;
  // Every task's stage kinds.
  scheduler::StageRegistry stages() const;

 private:
  std::vector<Task> tasks_;
};

// Every task of this build (pipelines/tasks.cpp).
const TaskRegistry& tasks();

// The task a config file names in "task" (Config error with file:line:column and the choices
// when it names none of `registry`'s, or is not a JSON object; Io error when unreadable).
const Task& task_of_config(const TaskRegistry& registry, const std::string& path);
// The task a model file's header names (Io error when it is not a tessera model file).
const Task& task_of_model(const TaskRegistry& registry, const std::string& path);

}  // namespace tessera
