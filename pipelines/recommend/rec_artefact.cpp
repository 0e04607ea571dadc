#include "pipelines/recommend/rec_artefact.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <limits>

#include "host/config/json_writer.h"
#include "host/core/archive.h"
#include "host/core/error.h"
#include "host/core/json_fields.h"

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
  if (a.has_rating_range)
    w.field("min_rating", static_cast<double>(a.min_rating))
        .field("max_rating", static_cast<double>(a.max_rating));
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

namespace {

// The stored tensor `name`: present, of `dtype` and rank `rank` (an Io error naming it).
const Tensor& stored(const Archive& ar, const std::string& path, const std::string& name,
                     DType dtype, int rank) {
  auto it = ar.tensors.find(name);
  if (it == ar.tensors.end())
    TESSERA_THROW(Io, path << ": model is missing tensor '" << name << "'");
  if (it->second.dtype() != dtype || it->second.rank() != rank)
    TESSERA_THROW(Io, path << ": model tensor '" << name << "' is " << it->second.describe()
                           << ", expected " << dtype_name(dtype) << " of rank " << rank);
  return it->second;
}

// What recommend, evaluate and export index by: the tables agree with the id lists (user and
// item tables [U, d] and [I, d], biases of U or I values), and each user's seen items are
// ascending item indices inside their own slice of seen_items.
void check_consistent(const RecArtefact& a, const std::string& path) {
  auto bad = [&](const std::string& why) {
    TESSERA_THROW(Io, path << ": the model's tensors disagree: " << why);
  };
  const int64_t U = static_cast<int64_t>(a.user_ids.size());
  const int64_t I = static_cast<int64_t>(a.item_ids.size());
  if (I > std::numeric_limits<int32_t>::max()) bad(std::to_string(I) + " items");
  auto table = [&](const char* name) -> const Tensor* {
    for (const auto& [n, t] : a.tables)
      if (n == name) return &t;
    return nullptr;
  };
  const Tensor* user = table("user");
  const Tensor* item = table("item");
  const Tensor* item_bias = table("item_bias");
  const Tensor* user_bias = table("user_bias");
  if (!user || !item || !item_bias || (a.kind == ModelKind::Mf && !user_bias))
    bad("a recommendation model needs tables user, item, item_bias (and user_bias for mf)");
  for (const auto& [name, t] : a.tables)
    if (t.dtype() != DType::F32 || t.rank() != 2)
      bad("table '" + name + "' is " + t.describe() + ", not f32 [rows, dim]");
  if (user->dim(0) != U || item->dim(0) != I || user->dim(1) != item->dim(1))
    bad("tables user " + shape_str(user->shape()) + " and item " + shape_str(item->shape()) +
        " for " + std::to_string(U) + " users and " + std::to_string(I) + " items");
  if (item_bias->numel() != I || (user_bias && user_bias->numel() != U))
    bad("bias tables of " + std::to_string(item_bias->numel()) + " items / " +
        std::to_string(user_bias ? user_bias->numel() : U) + " users");
  const std::vector<int64_t>& off = a.seen.offsets;
  if (static_cast<int64_t>(off.size()) != U + 1 || off.front() != 0 ||
      off.back() != static_cast<int64_t>(a.seen.items.size()))
    bad("seen_offsets has " + std::to_string(off.size()) + " entries for " + std::to_string(U) +
        " users, or does not span seen_items");
  for (int64_t u = 0; u < U; ++u) {
    if (off[u] > off[u + 1]) bad("seen_offsets decrease at user " + std::to_string(u));
    for (int64_t j = off[u]; j < off[u + 1]; ++j) {
      const int32_t item_index = a.seen.items[j];
      if (item_index < 0 || item_index >= I || (j > off[u] && item_index <= a.seen.items[j - 1]))
        bad("user " + std::to_string(u) + "'s seen items are not ascending item indices");
    }
  }
}

}  // namespace

RecArtefact load_rec_artefact(const std::string& path) {
  Archive ar = load_archive(path);
  const std::string source = path + ": model header";
  rapidjson::Document meta;
  parse_json_object(meta, ar.meta_json, source);
  const JsonFields h(meta, source);
  if (!h.has("task") || !h.get("task").IsString() || h.string("task") != "recommend")
    TESSERA_THROW(Usage, path << ": not a recommendation model (train one with a config whose "
                                 "\"task\" is \"recommend\")");
  RecArtefact a;
  const std::string model = h.string("model");
  bool known = false;
  for (const auto& c : model_choices())
    if (model == c.name) a.kind = c.value, known = true;
  if (!known) h.fail("model", "is not a known model (\"" + model + "\")");
  a.name = h.string("name");
  a.global_mean = static_cast<float>(h.number("global_mean"));
  if (h.has("min_rating") || h.has("max_rating")) {
    a.min_rating = static_cast<float>(h.number("min_rating"));
    a.max_rating = static_cast<float>(h.number("max_rating"));
    if (a.min_rating > a.max_rating) h.fail("max_rating", "is below min_rating");
    a.has_rating_range = true;
  }
  // The spliced-in JSON objects, back as compact text.
  a.config_json = h.has("config") && h.get("config").IsObject() ? h.json("config") : "";
  a.metrics_json = h.has("metrics") && h.get("metrics").IsObject() ? h.json("metrics") : "";
  for (const std::string& t : h.strings("tables"))
    a.tables.emplace_back(t, stored(ar, path, "table/" + t, DType::F32, 2));
  const Tensor& uid = stored(ar, path, "user_ids", DType::I64, 1);
  const Tensor& iid = stored(ar, path, "item_ids", DType::I64, 1);
  a.user_ids.assign(uid.data<int64_t>(), uid.data<int64_t>() + uid.numel());
  a.item_ids.assign(iid.data<int64_t>(), iid.data<int64_t>() + iid.numel());
  const Tensor& so = stored(ar, path, "seen_offsets", DType::I64, 1);
  const Tensor& si = stored(ar, path, "seen_items", DType::I32, 1);
  a.seen.offsets.assign(so.data<int64_t>(), so.data<int64_t>() + so.numel());
  a.seen.items.assign(si.data<int32_t>(), si.data<int32_t>() + si.numel());
  check_consistent(a, path);
  check_finite(ar.tensors, path);
  return a;
}

}  // namespace tessera::recommend
