#include "pipelines/behaviour/model_artefact.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <vector>

#include "host/core/archive.h"

namespace tessera::behaviour {

namespace {
constexpr const char* kFormat = "tessera.model";
constexpr int kVersion = 1;

std::string spec_json(const MlpSpec& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("type");
  w.String("mlp");
  w.Key("n_dense");
  w.Int64(s.n_dense);
  w.Key("n_cat");
  w.Int64(s.n_cat);
  w.Key("embedding_rows");
  w.Int64(s.embedding_rows);
  w.Key("embedding_dim");
  w.Int64(s.embedding_dim);
  w.Key("hidden");
  w.StartArray();
  for (int64_t h : s.hidden) w.Int64(h);
  w.EndArray();
  w.Key("dropout");
  w.Double(s.dropout);
  w.Key("activation");
  w.Int(static_cast<int>(s.activation));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::string to_string(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}
}  // namespace

bool is_libsvm(const BehaviourConfig& c) {
  return c.data.schema.format == TableFormat::LibSvm;
}

void save_model(const std::string& path, const ModelArtefact& a) {
  std::string meta = std::string("{\"format\":\"") + kFormat +
                     "\",\"version\":" + std::to_string(kVersion) +
                     ",\"task\":\"behaviour\",\"spec\":" + spec_json(a.spec) +
                     ",\"config\":" + to_json(a.config) + ",\"preprocessor\":" +
                     (is_libsvm(a.config) ? std::string("null") : a.preprocessor.to_json_string()) +
                     ",\"metrics\":" + a.metrics_json + "}";
  std::vector<std::pair<std::string, Tensor>> tensors(a.weights.begin(), a.weights.end());
  save_archive(path, meta, tensors);
}

ModelArtefact load_model(const std::string& path) {
  Archive ar = load_archive(path);
  rapidjson::Document doc;
  doc.Parse(ar.meta_json.c_str());
  auto bad = [&](const std::string& why) {
    TESSERA_THROW(Io, "'" << path << "' is not a tessera behaviour model: " << why);
  };
  if (doc.HasParseError() || !doc.IsObject()) bad("unreadable metadata");
  if (!doc.HasMember("format") || std::string(doc["format"].GetString()) != kFormat)
    bad("wrong format tag");
  if (!doc.HasMember("version") || doc["version"].GetInt() != kVersion)
    bad("unsupported version (this build reads version " + std::to_string(kVersion) + ")");
  if (!doc.HasMember("task") || std::string(doc["task"].GetString()) != "behaviour")
    bad("it is a model of another task");
  ModelArtefact a;
  a.config = parse_behaviour_config(to_string(doc["config"]), path + " (embedded config)");
  // The artefact holds whole tables: scoring runs in this process (on the config's local shards,
  // if any), not in the MPI job that trained it.
  a.config.model.remote_shards = false;
  if (!is_libsvm(a.config)) a.preprocessor = Preprocessor::from_json(doc["preprocessor"]);
  const auto& s = doc["spec"];
  a.spec.n_dense = s["n_dense"].GetInt64();
  a.spec.n_cat = s["n_cat"].GetInt64();
  a.spec.embedding_rows = s["embedding_rows"].GetInt64();
  a.spec.embedding_dim = s["embedding_dim"].GetInt64();
  a.spec.hidden.clear();
  for (const auto& h : s["hidden"].GetArray()) a.spec.hidden.push_back(h.GetInt64());
  a.spec.dropout = static_cast<float>(s["dropout"].GetDouble());
  a.spec.activation = static_cast<Activation>(s["activation"].GetInt());
  a.metrics_json = doc.HasMember("metrics") ? to_string(doc["metrics"]) : "{}";
  a.weights = std::move(ar.tensors);
  return a;
}

std::map<std::string, Tensor> snapshot_weights(MlpModel& model) {
  std::map<std::string, Tensor> w;
  for (Parameter* p : model.parameters()) w[p->name] = model.backend().to_host(p->value);
  return w;
}

void restore_weights(MlpModel& model, const std::map<std::string, Tensor>& weights) {
  for (Parameter* p : model.parameters()) {
    auto it = weights.find(p->name);
    if (it == weights.end()) TESSERA_THROW(Io, "model weights lack parameter '" << p->name << "'");
    if (it->second.shape() != p->value.shape())
      TESSERA_THROW(Io, "parameter '" << p->name << "' has shape " << shape_str(it->second.shape())
                                      << ", the model expects " << shape_str(p->value.shape()));
    model.backend().copy(it->second, p->value);
  }
}

}  // namespace tessera::behaviour
