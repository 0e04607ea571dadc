#pragma once
// The embedding tables of a model file, loaded once and held for Python's Model.embeddings(),
// which hands out numpy views of these buffers (python/src/core.cpp): plain C++, no Python here.
#include <cstdint>
#include <string>
#include <vector>

#include "host/core/tensor.h"

namespace tessera::python {

struct ModelTables {
  struct Table {
    std::string name;
    const void* data = nullptr;  // into `tensors` or `ids` below
    DType dtype = DType::F32;    // F32 (tables) or I64 (raw ids)
    std::vector<size_t> shape;   // [rows, dim], or [rows] for ids
  };
  std::vector<Table> tables;  // in the model's table order
  // The buffers the tables point into, kept as loaded (no per-table copy).
  std::vector<Tensor> tensors;
  std::vector<std::vector<int64_t>> ids;
};

// Behaviour models (pipelines/behaviour/model_artefact.h table_views): every table a 2-D view of
// the one weight holding it ("embedding.tables" for DLRM, DCN-v2 and Wide & Deep), named by its
// categorical column. Recommendation models: the tables `tessera export` writes, each followed
// by NAME_ids (its rows' raw ids; tables of the same ids share one buffer). Model files carry f32
// (16-bit tables are widened on write), so every table is f32. Usage error for other tasks; Io
// error for a bad file (the loaders' checks).
ModelTables load_model_tables(const std::string& path);

}  // namespace tessera::python
