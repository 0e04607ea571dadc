#include "python/src/model_tables.h"

#include <utility>

#include "host/core/error.h"
#include "pipelines/behaviour/model_artefact.h"
#include "pipelines/recommend/export.h"
#include "pipelines/recommend/rec_artefact.h"
#include "python/src/commands.h"

namespace tessera::python {

namespace {

ModelTables behaviour_tables(const std::string& path) {
  behaviour::ModelArtefact a = behaviour::load_model(path);
  const std::vector<behaviour::TableView> views = behaviour::table_views(a);
  ModelTables out;
  std::vector<std::string> kept;  // weight names, in out.tensors' order
  for (const behaviour::TableView& v : views) {
    size_t k = 0;
    while (k < kept.size() && kept[k] != v.weight) ++k;
    if (k == kept.size()) {
      kept.push_back(v.weight);
      out.tensors.push_back(a.weights.at(v.weight));  // shares the loaded buffer
    }
    const float* base = out.tensors[k].data<float>();
    out.tables.push_back({v.name,
                          base + v.offset,
                          DType::F32,
                          {static_cast<size_t>(v.rows), static_cast<size_t>(v.dim)}});
  }
  return out;  // the other weights are freed with `a`
}

ModelTables recommend_tables(const std::string& path) {
  recommend::RecArtefact a = recommend::load_rec_artefact(path);
  ModelTables out;
  // Moved, not copied: a vector's buffer stays where it is.
  out.ids.push_back(std::move(a.user_ids));
  out.ids.push_back(std::move(a.item_ids));
  for (auto& [name, t] : a.tables) {
    if (t.dtype() != DType::F32 || t.rank() < 1 || t.rank() > 2)
      TESSERA_THROW(Io, "'" << path << "': table '" << name << "' is " << t.describe()
                            << ", not an f32 matrix");
    std::vector<size_t> shape;
    for (int i = 0; i < t.rank(); ++i) shape.push_back(static_cast<size_t>(t.dim(i)));
    out.tensors.push_back(t);
    out.tables.push_back({name, out.tensors.back().raw(), DType::F32, shape});
    const std::vector<int64_t>& ids =
        out.ids[std::string(recommend::table_id_kind(name)) == "user" ? 0 : 1];
    if (static_cast<size_t>(t.dim(0)) != ids.size())
      TESSERA_THROW(Io, "'" << path << "': table '" << name << "' has " << t.dim(0) << " rows for "
                            << ids.size() << " " << recommend::table_id_kind(name) << " ids");
    out.tables.push_back({name + "_ids", ids.data(), DType::I64, {ids.size()}});
  }
  return out;
}

}  // namespace

ModelTables load_model_tables(const std::string& path) {
  const std::string task = task_of_model(path);
  if (task == "behaviour") return behaviour_tables(path);
  if (task == "recommend") return recommend_tables(path);
  TESSERA_THROW(Usage, "'" << path << "' is a model of the " << task
                           << " task; embeddings() reads the tables of behaviour and "
                              "recommendation models");
}

}  // namespace tessera::python
