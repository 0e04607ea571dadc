#include "host/scheduler/pipeline_spec.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <functional>
#include <map>
#include <queue>
#include <set>

#include "host/config/choices.h"
#include "host/config/json_reader.h"
#include "host/core/error.h"
#include "host/core/path_name.h"

namespace tessera::scheduler {

namespace {

TESSERA_CHOICES(kind_choices, StageKind, {"prep", StageKind::Prep}, {"train", StageKind::Train},
                {"evaluate", StageKind::Evaluate}, {"export", StageKind::Export},
                {"batch-score", StageKind::BatchScore}, {"recommend", StageKind::Recommend});

void write_sorted(const rapidjson::Value& v, rapidjson::Writer<rapidjson::StringBuffer>& w) {
  if (v.IsObject()) {
    std::vector<const rapidjson::Value::Member*> members;
    for (const auto& m : v.GetObject()) members.push_back(&m);
    std::sort(members.begin(), members.end(), [](auto* a, auto* b) {
      return std::string(a->name.GetString()) < std::string(b->name.GetString());
    });
    w.StartObject();
    for (auto* m : members) {
      w.Key(m->name.GetString(), m->name.GetStringLength());
      write_sorted(m->value, w);
    }
    w.EndObject();
  } else if (v.IsArray()) {
    w.StartArray();
    for (const auto& e : v.GetArray()) write_sorted(e, w);
    w.EndArray();
  } else {
    v.Accept(w);
  }
}

std::string sorted_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  write_sorted(v, w);
  return std::string(sb.GetString(), sb.GetSize());
}

std::string resolve_path(const std::string& dir, const std::string& p) {
  if (p.empty() || p[0] == '/' || dir.empty()) return p;
  return dir + "/" + p;
}

}  // namespace

const char* stage_kind_name(StageKind kind) {
  return json::choice_name(kind, kind_choices());
}

const StageSpec& PipelineSpec::stage(const std::string& n) const {
  for (const StageSpec& s : stages)
    if (s.name == n) return s;
  TESSERA_THROW(Config, "pipeline '" << name << "' has no stage '" << n << "'");
}

std::string canonical_json(const std::string& text, const std::string& origin) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError())
    TESSERA_THROW(Config, origin << ": not valid JSON at offset " << d.GetErrorOffset());
  return sorted_json(d);
}

PipelineSpec parse_pipeline_spec(const std::string& text, const std::string& origin,
                                 const std::string& dir) {
  std::unique_ptr<json::Document> doc = json::parse(text, origin);
  json::ObjectReader root = doc->root();
  PipelineSpec spec;
  spec.path = origin;
  spec.dir = dir;
  spec.name = root.required_string("name");
  if (!spec.name.empty() && !is_valid_run_name(spec.name))  // it names the run directory
    root.error("name", "\"" + spec.name +
                           "\" cannot name a run directory: use letters, digits, '.', '_' and '-'");
  spec.task = root.required_string("task");
  spec.runs_dir = root.string("runs_dir", "runs", json::Text::NonEmpty);
  std::set<std::string> names;
  std::vector<json::ObjectReader> stages =
      root.required_object_list("stages", json::IntBounds::at_least(1));
  for (json::ObjectReader& r : stages) {
    StageSpec s;
    s.name = r.required_string("name");
    if (!s.name.empty() && !names.insert(s.name).second)
      r.error("name", "duplicate stage name '" + s.name + "'");
    if (!s.name.empty() && !is_valid_run_name(s.name))
      r.error("name", "\"" + s.name +
                          "\" cannot name a stage directory: use letters, digits, "
                          "'.', '_' and '-'");
    s.kind = r.required_choice("kind", kind_choices(), StageKind::Prep);
    s.inputs = r.string_list("inputs", {}, json::Text::NonEmpty);
    for (const std::string& f : r.string_list("files", {}, json::Text::NonEmpty))
      s.files.push_back(resolve_path(dir, f));
    if (const rapidjson::Value* c = r.raw("config")) {
      if (!c->IsObject())
        r.error("config", "expected an object, got " + json::describe_value(*c));
      else
        s.config_json = sorted_json(*c);
    }
    r.finish();
    spec.stages.push_back(std::move(s));
  }
  root.finish();
  // Inputs name declared stages, and not the stage itself.
  for (size_t i = 0; i < spec.stages.size(); ++i) {
    for (const std::string& in : spec.stages[i].inputs) {
      if (!names.count(in))
        doc->errors.add(
            json::child_path(json::element_path("$.stages", i), "inputs"),
            "unknown stage '" + in + "' (stages: " +
                json::quoted_list(std::vector<std::string>(names.begin(), names.end())) + ")");
      else if (in == spec.stages[i].name)
        doc->errors.add(json::child_path(json::element_path("$.stages", i), "inputs"),
                        "stage '" + in + "' lists itself as an input");
    }
  }
  doc->errors.throw_if_any();
  execution_order(spec);  // a cycle is a config error too
  return spec;
}

PipelineSpec load_pipeline_spec(const std::string& path) {
  const std::string text = json::read_text_file(path);
  const auto slash = path.find_last_of('/');
  return parse_pipeline_spec(text, path, slash == std::string::npos ? "." : path.substr(0, slash));
}

std::vector<size_t> execution_order(const PipelineSpec& spec) {
  const size_t n = spec.stages.size();
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < n; ++i) index[spec.stages[i].name] = i;
  // Kahn's algorithm, always taking the first declared stage whose inputs are all done (a
  // min-heap of ready stages), in O((stages + inputs) log stages): rescanning the whole list for
  // each stage taken was quadratic, minutes for a long chain declared backwards.
  std::vector<size_t> waiting(n, 0);            // inputs not done yet, counted per listing
  std::vector<std::vector<size_t>> readers(n);  // stages listing stage i as an input
  for (size_t i = 0; i < n; ++i) {
    for (const std::string& in : spec.stages[i].inputs) {
      auto it = index.find(in);
      if (it == index.end())
        TESSERA_THROW(Config, spec.path << ": stage '" << spec.stages[i].name
                                        << "' reads unknown stage '" << in << "'");
      readers[it->second].push_back(i);
      ++waiting[i];
    }
  }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<size_t>> ready;
  for (size_t i = 0; i < n; ++i)
    if (waiting[i] == 0) ready.push(i);
  std::vector<size_t> order;
  order.reserve(n);
  while (!ready.empty()) {
    const size_t i = ready.top();
    ready.pop();
    order.push_back(i);
    for (size_t r : readers[i])
      if (--waiting[r] == 0) ready.push(r);
  }
  if (order.size() < n) {
    std::string stuck;
    for (size_t i = 0; i < n; ++i)
      if (waiting[i] > 0) stuck += (stuck.empty() ? "'" : ", '") + spec.stages[i].name + "'";
    TESSERA_THROW(Config, spec.path << ": the stage inputs form a cycle among " << stuck);
  }
  return order;
}

}  // namespace tessera::scheduler
