#include "pipelines/task.h"

#include <rapidjson/document.h>

#include <cerrno>
#include <cstdlib>

#include "host/config/json_reader.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"

namespace tessera {

std::string CliArgs::text(const std::string& key, const std::string& fallback) const {
  auto it = options.find(key);
  return it == options.end() ? fallback : it->second;
}

int64_t CliArgs::count(const std::string& key, int64_t fallback) const {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || v < 0 || errno == ERANGE)
    TESSERA_THROW(Usage,
                  "option " << key << " expects a non-negative integer, got '" << it->second << "'");
  return v;
}

double CliArgs::number(const std::string& key, double fallback) const {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0' || errno == ERANGE)
    TESSERA_THROW(Usage, "option " << key << " expects a number, got '" << it->second << "'");
  return v;
}

train::RunOptions run_options_of(const CliArgs& a) {
  train::RunOptions o;
  o.device = a.device();
  o.runs_dir = a.text("--runs-dir", "");
  o.run_dir = a.text("--run-dir", "");
  o.resume = a.text("--resume", "");
  o.epochs = a.count("--epochs", -1);
  // 0 epochs would save an untrained model.
  if (a.flag("--epochs") && o.epochs < 1)
    TESSERA_THROW(Usage, "option --epochs expects a positive integer, got '"
                             << a.options.at("--epochs") << "'");
  o.time_budget_s = a.number("--time-budget", -1);
  o.seed = a.count("--seed", -1);
  o.quiet = a.quiet();
  return o;
}

void TaskRegistry::add(Task task) {
  for (const Task& t : tasks_)
    if (t.name == task.name) TESSERA_THROW(Internal, "task '" << task.name << "' registered twice");
  tasks_.push_back(std::move(task));
}

std::vector<std::string> TaskRegistry::names() const {
  std::vector<std::string> n;
  for (const Task& t : tasks_) n.push_back(t.name);
  return n;
}

const Task& TaskRegistry::find(const std::string& name, const std::string& origin) const {
  for (const Task& t : tasks_)
    if (t.name == name) return t;
  TESSERA_THROW(Config, origin << ": no task '" << name << "' (tasks: "
                               << json::quoted_list(names()) << ")");
}

scheduler::StageRegistry TaskRegistry::stages() const {
  scheduler::StageRegistry r;
  for (const Task& t : tasks_)
    if (t.stages) t.stages(r);
  return r;
}

const Task& task_of_config(const TaskRegistry& registry, const std::string& path) {
  std::unique_ptr<json::Document> doc = json::parse(read_file(path), path);
  json::Choices<size_t> choices;
  for (size_t i = 0; i < registry.all().size(); ++i)
    choices.push_back({registry.all()[i].name.c_str(), i});
  json::ObjectReader root = doc->root();
  const size_t index = root.required_choice("task", choices, size_t{0});
  doc->errors.throw_if_any();
  return registry.all()[index];
}

const Task& task_of_model(const TaskRegistry& registry, const std::string& path) {
  const std::string meta = load_archive_meta(path);
  rapidjson::Document d;
  d.Parse(meta.c_str(), meta.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("task") || !d["task"].IsString())
    TESSERA_THROW(Io, "'" << path << "' is not a tessera model file: its header names no task");
  return registry.find(d["task"].GetString(), "model file '" + path + "'");
}

}  // namespace tessera
