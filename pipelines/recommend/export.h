#pragma once
// tessera export: a recommendation model's tables with their ids, in one of
//   npy          OUTDIR/<table>.npy (float32 [rows, dim]) + OUTDIR/<table>_ids.npy (int64 [rows])
//   safetensors  OUTDIR/embeddings.safetensors: "<table>" F32 and "<table>_ids" I64 tensors
//   word2vec     OUTDIR/<table>.txt: "rows dim", then one "id v_1 ... v_dim" line per row
//   faiss        OUTDIR/<table>.faiss for the user and item tables (exact inner product, raw ids)
// plus OUTDIR/manifest.json (format, tables, files, shapes). Every file is written atomically.
// The model artefact holds whole tables (however training was sharded), so the export does not
// depend on the number of shards. Tables user/user_bias carry user ids; item/item_bias item ids.
#include <string>

#include "host/core/tensor.h"
#include "pipelines/recommend/recommend.h"

namespace tessera::recommend {

enum class ExportFormat : uint8_t { Npy = 0, Safetensors = 1, Word2vec = 2, Faiss = 3 };

// Usage error listing the valid choices for an unknown name.
ExportFormat parse_export_format(const std::string& name);

Result export_model(const std::string& model_path, ExportFormat format, const std::string& outdir);

// Whose raw ids number a table's rows (the artefact's user_ids or item_ids): "user" for the tables
// named user*, else "item". The export's NAME_ids and Python's Model.embeddings() follow it.
const char* table_id_kind(const std::string& table);

// NumPy .npy (format 1.0) bytes of a host f32 or i64 tensor of rank 1 or 2.
std::string npy_bytes(const Tensor& t);

}  // namespace tessera::recommend
