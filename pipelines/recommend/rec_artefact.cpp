#include "pipelines/recommend/rec_artefact.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "host/config/json_writer.h"
#include "host/core/archive.h"
#include "host/core/error.h"

namespace tessera::recommend {
namespace {

const Tensor* find(const NamedTensors& t, const std::string& name) {
  for (const auto& [n, v] : t)
    if (n == name) return &v;
  return nullptr;
}

}  // namespace

Scorer::Scorer(ModelKind kind, float global_mean, const NamedTensors& tables)
    : kind_(kind), mu_(global_mean), keep_(tables) {
  const Tensor* p = find(keep_, "user");
  const Tensor* q = find(keep_, "item");
  const Tensor* bi = find(keep_, "item_bias");
  const Tensor* bu = find(keep_, "user_bias");
  TESSERA_CHECK(p && q && bi && (kind != ModelKind::Mf || bu),
                "a recommendation model needs tables user, item, item_bias (and user_bias for mf)");
  users_ = p->dim(0);
  items_ = q->dim(0);
  dim_ = p->dim(1);
  p_ = p->data<float>();
  q_ = q->data<float>();
  bi_ = bi->data<float>();
  bu_ = kind == ModelKind::Mf ? bu->data<float>() : nullptr;
}

float Scorer::score(int32_t u, int32_t item) const {
  const float* a = p_ + static_cast<int64_t>(u) * dim_;
  const float* b = q_ + static_cast<int64_t>(item) * dim_;
  double dot = 0;
  for (int64_t k = 0; k < dim_; ++k) dot += static_cast<double>(a[k]) * b[k];
  double s = dot + bi_[item];
  if (bu_) s += mu_ + bu_[u];
  return static_cast<float>(s);
}

void Scorer::score_all(int32_t u, float* out) const {
  for (int64_t i = 0; i < items_; ++i) out[i] = score(u, static_cast<int32_t>(i));
}

void save_rec_artefact(const std::string& path, const RecArtefact& a) {
  json::JsonWriter w;
  w.begin_object();
  w.field("task", "recommend").choice("model", a.kind, model_choices()).field("name", a.name);
  w.field("global_mean", static_cast<double>(a.global_mean));
  w.field("users", static_cast<int64_t>(a.user_ids.size()))
      .field("items", static_cast<int64_t>(a.item_ids.size()));
  w.key("tables").begin_array();
  for (const auto& t : a.tables) w.value(t.first);
  w.end_array();
  w.end_object();
  // config and metrics are already JSON text: splice them in.
  std::string meta = w.compact();
  meta.pop_back();
  meta += ",\"config\":" + a.config_json +
          ",\"metrics\":" + (a.metrics_json.empty() ? std::string("{}") : a.metrics_json) + "}";

  NamedTensors t;
  for (const auto& [name, v] : a.tables) t.emplace_back("table/" + name, v);
  t.emplace_back("user_ids",
                 Tensor::host_from<int64_t>({static_cast<int64_t>(a.user_ids.size())}, a.user_ids));
  t.emplace_back("item_ids",
                 Tensor::host_from<int64_t>({static_cast<int64_t>(a.item_ids.size())}, a.item_ids));
  t.emplace_back(
      "seen_offsets",
      Tensor::host_from<int64_t>({static_cast<int64_t>(a.seen.offsets.size())}, a.seen.offsets));
  t.emplace_back("seen_items", Tensor::host_from<int32_t>(
                                   {static_cast<int64_t>(a.seen.items.size())}, a.seen.items));
  save_archive(path, meta, t);
}

RecArtefact load_rec_artefact(const std::string& path) {
  Archive ar = load_archive(path);
  rapidjson::Document meta;
  meta.Parse(ar.meta_json.c_str());
  if (meta.HasParseError() || !meta.IsObject() || !meta.HasMember("task") ||
      !meta["task"].IsString() || std::string(meta["task"].GetString()) != "recommend")
    TESSERA_THROW(Usage, path << ": not a recommendation model (train one with a config whose "
                                 "\"task\" is \"recommend\")");
  for (const char* key : {"model", "name"})
    if (!meta.HasMember(key) || !meta[key].IsString())
      TESSERA_THROW(Io, path << ": model header has no string '" << key << "'");
  for (const char* key : {"global_mean"})
    if (!meta.HasMember(key) || !meta[key].IsNumber())
      TESSERA_THROW(Io, path << ": model header has no number '" << key << "'");
  if (!meta.HasMember("tables") || !meta["tables"].IsArray())
    TESSERA_THROW(Io, path << ": model header has no 'tables' list");
  // The spliced-in JSON objects, back as compact text.
  auto text_of = [&](const char* key) {
    if (!meta.HasMember(key) || !meta[key].IsObject()) return std::string();
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    meta[key].Accept(w);
    return std::string(buf.GetString(), buf.GetSize());
  };
  RecArtefact a;
  a.config_json = text_of("config");
  a.metrics_json = text_of("metrics");
  const std::string model = meta["model"].GetString();
  a.kind = model == "mf" ? ModelKind::Mf : ModelKind::TwoTower;
  a.name = meta["name"].GetString();
  a.global_mean = static_cast<float>(meta["global_mean"].GetDouble());
  auto get = [&](const std::string& name) -> const Tensor& {
    auto it = ar.tensors.find(name);
    if (it == ar.tensors.end())
      TESSERA_THROW(Io, path << ": model is missing tensor '" << name << "'");
    return it->second;
  };
  for (const auto& t : meta["tables"].GetArray()) {
    if (!t.IsString()) TESSERA_THROW(Io, path << ": model header 'tables' holds a non-string");
    a.tables.emplace_back(t.GetString(), get(std::string("table/") + t.GetString()));
  }
  const Tensor& uid = get("user_ids");
  const Tensor& iid = get("item_ids");
  a.user_ids.assign(uid.data<int64_t>(), uid.data<int64_t>() + uid.numel());
  a.item_ids.assign(iid.data<int64_t>(), iid.data<int64_t>() + iid.numel());
  const Tensor& so = get("seen_offsets");
  const Tensor& si = get("seen_items");
  a.seen.offsets.assign(so.data<int64_t>(), so.data<int64_t>() + so.numel());
  a.seen.items.assign(si.data<int32_t>(), si.data<int32_t>() + si.numel());
  if (static_cast<int64_t>(a.seen.offsets.size()) != uid.numel() + 1)
    TESSERA_THROW(Io, path << ": seen_offsets has " << a.seen.offsets.size() << " entries for "
                           << uid.numel() << " users");
  return a;
}

}  // namespace tessera::recommend
