// The command line's verbs other than train (commands.h).
#include "pipelines/commands.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
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

namespace {

// "40G", "1.5G", "512M", "64K", "2T" (powers of 1024; a trailing "B" or "iB" is allowed) or a
// plain number of bytes.
int64_t parse_byte_size(const std::string& key, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  std::string unit(end == nullptr ? "" : end);
  if (unit == "B" || unit.empty()) unit = "";
  if (unit.size() == 3 && unit.compare(1, 2, "iB") == 0) unit.resize(1);
  if (unit.size() == 2 && unit[1] == 'B') unit.resize(1);
  static const std::string kUnits = "KMGT";
  const size_t power = unit.empty() ? 0 : kUnits.find(static_cast<char>(std::toupper(unit[0])));
  if (text.empty() || end == text.c_str() || errno == ERANGE || !(v > 0) || unit.size() > 1 ||
      power == std::string::npos)
    TESSERA_THROW(Usage, "option " << key
                                   << " expects a size such as 40G, 512M or a number of "
                                      "bytes, got '"
                                   << text << "'");
  const double bytes = v * std::pow(1024.0, static_cast<double>(unit.empty() ? 0 : power + 1));
  if (bytes >= 9.0e18) TESSERA_THROW(Usage, "option " << key << ": '" << text << "' is too large");
  return static_cast<int64_t>(bytes);
}

CommandResult criteo_synthetic(const CliArgs& a) {
  behaviour::CriteoSyntheticOptions o;
  const bool sized = a.options.count("--size") != 0;
  if (sized && a.options.count("--rows") != 0)
    TESSERA_THROW(Usage, "give one of --rows and --size");
  if (sized) {
    o.target_bytes = parse_byte_size("--size", a.text("--size", ""));
    if (o.target_bytes < (int64_t{1} << 16)) TESSERA_THROW(Usage, "--size must be at least 64K");
  } else {
    o.train_rows = a.count("--rows", 100000);
    if (o.train_rows < 100) TESSERA_THROW(Usage, "--rows must be at least 100");
    o.test_rows = o.train_rows / 4;
  }
  o.max_table_rows = a.count("--max-table-rows", o.max_table_rows);
  if (o.max_table_rows < 1) TESSERA_THROW(Usage, "--max-table-rows must be at least 1");
  o.min_count = a.count("--min-count", o.min_count);
  if (o.min_count < 1) TESSERA_THROW(Usage, "--min-count must be at least 1");
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  o.threads = static_cast<int>(a.count("--threads", std::min(hw, 16u)));
  if (o.threads < 1 || o.threads > 256) TESSERA_THROW(Usage, "--threads must be in [1, 256]");
  o.seed = static_cast<uint64_t>(a.count("--seed", static_cast<int64_t>(o.seed)));
  const behaviour::CriteoSyntheticResult r =
      behaviour::write_synthetic_criteo(a.positionals.at(0), o);
  const double mb_per_s = r.seconds > 0 ? static_cast<double>(r.bytes) / 1e6 / r.seconds : 0.0;
  json::JsonWriter w;
  w.begin_object().field("command", "make-synthetic").field("layout", "criteo");
  w.field("config", r.config).field("pipeline", r.pipeline);
  w.field("train_rows", r.train_rows).field("test_rows", r.test_rows);
  w.field("bytes", r.bytes).field("seconds", r.seconds).field("mb_per_s", mb_per_s);
  w.field("threads", static_cast<int64_t>(o.threads)).field("max_table_rows", o.max_table_rows);
  w.key("table_rows").begin_array();
  for (int64_t n : r.table_rows) w.value(n);
  w.end_array().end_object();
  std::ostringstream s;
  s << "wrote " << r.train_rows << " + " << r.test_rows << " rows (" << r.bytes / 1000000
    << " MB in " << r.seconds << " s, " << static_cast<int64_t>(mb_per_s) << " MB/s on "
    << o.threads << " threads) to " << a.positionals.at(0) << "/{train,test}.txt and " << r.config
    << "\nprepare it, then train: tessera prep " << r.config << " && tessera train " << r.config
    << "\n(or all stages: tessera run " << r.pipeline << ")\n";
  return {s.str(), w.compact()};
}

}  // namespace

// make-synthetic DIR: the behaviour task's generated datasets (a default that needs no download;
// the criteo layout at any size for scale tests).
CommandResult synthetic_command(const CliArgs& a) {
  const std::string layout = a.text("--layout", "behaviour");
  if (layout != "behaviour" && layout != "criteo")
    TESSERA_THROW(Usage, "--layout must be one of: behaviour, criteo");
  if (layout == "criteo") return criteo_synthetic(a);
  for (const char* option : {"--size", "--max-table-rows", "--min-count", "--threads"})
    if (a.options.count(option) != 0)
      TESSERA_THROW(Usage, option << " applies to --layout criteo only");
  const int64_t rows = a.count("--rows", 20000);
  if (rows < 100) TESSERA_THROW(Usage, "--rows must be at least 100");
  behaviour::SyntheticOptions o;
  o.train_rows = rows;
  o.test_rows = rows / 4;
  o.seed = static_cast<uint64_t>(a.count("--seed", static_cast<int64_t>(o.seed)));
  const std::string cfg = behaviour::write_synthetic_dataset(a.positionals.at(0), o);
  json::JsonWriter w;
  w.begin_object().field("command", "make-synthetic").field("layout", layout);
  w.field("config", cfg).field("train_rows", rows).field("test_rows", rows / 4).end_object();
  return {"wrote " + a.positionals.at(0) + "/{train,test}.csv and " + cfg + "\n", w.compact()};
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
