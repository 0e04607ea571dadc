#include "pipelines/recommend/export.h"

#include <cstdio>
#include <cstring>

#include "host/config/choices.h"
#include "host/config/json_writer.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/path_name.h"
#include "pipelines/recommend/export_faiss.h"
#include "pipelines/recommend/rec_artefact.h"

namespace tessera::recommend {
namespace {

TESSERA_CHOICES(format_choices, ExportFormat, {"npy", ExportFormat::Npy},
                {"safetensors", ExportFormat::Safetensors}, {"word2vec", ExportFormat::Word2vec},
                {"faiss", ExportFormat::Faiss});

std::string shape_tuple(const Tensor& t) {
  std::string s = "(";
  for (int i = 0; i < t.rank(); ++i)
    s += std::to_string(t.dim(i)) + (t.rank() == 1 ? "," : i + 1 < t.rank() ? ", " : "");
  return s + ")";
}

template <typename T>
void append_raw(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);  // x86-64: little-endian
}

std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  json::JsonWriter w;
  w.begin_object();
  w.key("__metadata__")
      .begin_object()
      .field("format", "pt")
      .field("producer", "tessera")
      .end_object();
  uint64_t off = 0;
  for (const auto& [name, t] : tensors) {
    w.key(name).begin_object().field("dtype", t.dtype() == DType::F32 ? "F32" : "I64");
    w.key("shape").begin_array();
    for (int i = 0; i < t.rank(); ++i) w.value(t.dim(i));
    w.end_array();
    w.key("data_offsets").begin_array().value(off).value(off + t.bytes()).end_array();
    w.end_object();
    off += t.bytes();
  }
  w.end_object();
  std::string header = w.compact();
  while (header.size() % 8 != 0) header += ' ';
  std::string out;
  append_raw(out, static_cast<uint64_t>(header.size()));
  out += header;
  for (const auto& [name, t] : tensors) out.append(static_cast<const char*>(t.raw()), t.bytes());
  return out;
}

}  // namespace

ExportFormat parse_export_format(const std::string& name) {
  for (const auto& c : format_choices())
    if (name == c.name) return c.value;
  std::vector<std::string> names;
  for (const auto& c : format_choices()) names.emplace_back(c.name);
  TESSERA_THROW(Usage, "--format '" << name << "' is not one of " << json::quoted_list(names));
}

const char* table_id_kind(const std::string& table) {
  return table.rfind("user", 0) == 0 ? "user" : "item";
}

std::string npy_bytes(const Tensor& t) {
  TESSERA_CHECK(t.is_host() && (t.dtype() == DType::F32 || t.dtype() == DType::I64) &&
                    (t.rank() == 1 || t.rank() == 2),
                "npy_bytes: host f32/i64 tensors of rank 1 or 2 only, got " << t.describe());
  std::string header = std::string("{'descr': '") + (t.dtype() == DType::F32 ? "<f4" : "<i8") +
                       "', 'fortran_order': False, 'shape': " + shape_tuple(t) + ", }";
  // Magic (6) + version (2) + length (2) + header + '\n' padded to a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  append_raw(out, static_cast<uint16_t>(header.size()));
  out += header;
  out.append(static_cast<const char*>(t.raw()), t.bytes());
  return out;
}

Result export_model(const std::string& model_path, ExportFormat format, const std::string& outdir) {
  if (format == ExportFormat::Faiss && !faiss_available())
    write_faiss_index("", nullptr, 0, 0, nullptr);  // throws the "built without FAISS" error
  const RecArtefact a = load_rec_artefact(model_path);
  // Table names come from the model file and become file names under OUTDIR: all checked before
  // anything is written.
  for (const auto& table : a.tables)
    require_path_component(table.first, model_path + ": table name", ErrorKind::Io);
  make_directories(outdir);
  const Tensor user_ids =
      Tensor::host_from<int64_t>({static_cast<int64_t>(a.user_ids.size())}, a.user_ids);
  const Tensor item_ids =
      Tensor::host_from<int64_t>({static_cast<int64_t>(a.item_ids.size())}, a.item_ids);
  auto ids_of = [&](const std::string& table) -> const Tensor& {
    return std::strcmp(table_id_kind(table), "user") == 0 ? user_ids : item_ids;
  };
  std::vector<std::string> files;
  std::vector<std::pair<std::string, Tensor>> st;
  for (const auto& [name, t] : a.tables) {
    const Tensor& ids = ids_of(name);
    switch (format) {
      case ExportFormat::Npy:
        write_file_atomic(outdir + "/" + name + ".npy", npy_bytes(t));
        write_file_atomic(outdir + "/" + name + "_ids.npy", npy_bytes(ids));
        files.push_back(name + ".npy");
        files.push_back(name + "_ids.npy");
        break;
      case ExportFormat::Safetensors:
        st.emplace_back(name, t);
        st.emplace_back(name + "_ids", ids);
        break;
      case ExportFormat::Word2vec: {
        AtomicFileWriter f(outdir + "/" + name + ".txt");
        f.write(std::to_string(t.dim(0)) + " " + std::to_string(t.dim(1)) + "\n");
        const float* x = t.data<float>();
        const int64_t* id = ids.data<int64_t>();
        std::string line;
        char buf[32];
        for (int64_t r = 0; r < t.dim(0); ++r) {
          line = std::to_string(id[r]);
          for (int64_t k = 0; k < t.dim(1); ++k) {
            std::snprintf(buf, sizeof buf, " %.9g", static_cast<double>(x[r * t.dim(1) + k]));
            line += buf;
          }
          line += '\n';
          f.write(line);
        }
        f.commit();
        files.push_back(name + ".txt");
        break;
      }
      case ExportFormat::Faiss:
        if (name == "user" || name == "item") {
          write_faiss_index(outdir + "/" + name + ".faiss", t.data<float>(), t.dim(0), t.dim(1),
                            ids.data<int64_t>());
          files.push_back(name + ".faiss");
        }
        break;
    }
  }
  if (format == ExportFormat::Safetensors) {
    write_file_atomic(outdir + "/embeddings.safetensors", safetensors_bytes(st));
    files.push_back("embeddings.safetensors");
  }
  json::JsonWriter w;
  w.begin_object().field("command", "export").field("model", model_path);
  w.choice("format", format, format_choices()).field("outdir", outdir);
  w.key("tables").begin_array();
  for (const auto& [name, t] : a.tables) {
    w.begin_object().field("name", name).field("rows", t.dim(0)).field("dim", t.dim(1));
    w.field("ids", table_id_kind(name)).end_object();
  }
  w.end_array();
  w.field("files", files).end_object();
  const std::string manifest = w.compact();
  write_file_atomic(outdir + "/manifest.json", manifest + "\n");
  Result r;
  r.json = manifest;
  r.summary = "exported " + std::to_string(a.tables.size()) + " tables (" +
              std::to_string(files.size()) + " files) to " + outdir + "\n";
  return r;
}

}  // namespace tessera::recommend
