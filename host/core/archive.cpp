#include "host/core/archive.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <zlib.h>

#include <cstring>

#include "host/core/atomic_file.h"

namespace tessera {

namespace {
constexpr char kMagic[8] = {'T', 'E', 'S', 'S', 'E', 'R', 'A', '1'};
size_t align64(size_t x) { return (x + 63) / 64 * 64; }
}  // namespace

void save_archive(const std::string& path, const std::string& meta_json,
                  const std::vector<std::pair<std::string, Tensor>>& tensors) {
  rapidjson::Document meta;
  meta.Parse(meta_json.c_str());
  TESSERA_CHECK(!meta.HasParseError(), "archive metadata is not valid JSON");
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& al = doc.GetAllocator();
  doc.AddMember("meta", rapidjson::Value(meta, al), al);
  rapidjson::Value list(rapidjson::kArrayType);
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    TESSERA_CHECK(t.is_host(), "archive tensor '" << name << "' must be on the host");
    rapidjson::Value e(rapidjson::kObjectType);
    e.AddMember("name", rapidjson::Value(name.c_str(), al), al);
    e.AddMember("dtype", rapidjson::Value(dtype_name(t.dtype()), al), al);
    rapidjson::Value shape(rapidjson::kArrayType);
    for (int64_t d : t.shape()) shape.PushBack(d, al);
    e.AddMember("shape", shape, al);
    e.AddMember("offset", static_cast<uint64_t>(offset), al);
    e.AddMember("bytes", static_cast<uint64_t>(t.bytes()), al);
    list.PushBack(e, al);
    offset = align64(offset + t.bytes());
  }
  doc.AddMember("tensors", list, al);
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  doc.Accept(w);
  const std::string header(sb.GetString(), sb.GetSize());

  std::string out;
  out.append(kMagic, 8);
  uint64_t hb = header.size();
  out.append(reinterpret_cast<const char*>(&hb), 8);
  out += header;
  const size_t data_start = out.size();
  for (const auto& [name, t] : tensors) {
    out.resize(data_start + align64(out.size() - data_start), '\0');
    out.append(static_cast<const char*>(t.raw()), t.bytes());
  }
  uint32_t crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size())));
  out.append(reinterpret_cast<const char*>(&crc), 4);
  write_file_atomic(path, out);
}

Archive load_archive(const std::string& path) {
  const std::string bytes = read_file(path);
  auto corrupt = [&](const std::string& why) {
    TESSERA_THROW(Io, "'" << path << "' is not a valid tessera file: " << why);
  };
  if (bytes.size() < 20 || std::memcmp(bytes.data(), kMagic, 8) != 0)
    corrupt("missing the TESSERA1 header");
  uint32_t crc_stored;
  std::memcpy(&crc_stored, bytes.data() + bytes.size() - 4, 4);
  uint32_t crc = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()),
                                             static_cast<uInt>(bytes.size() - 4)));
  if (crc != crc_stored) corrupt("checksum mismatch (truncated or corrupted)");
  uint64_t hb;
  std::memcpy(&hb, bytes.data() + 8, 8);
  if (16 + hb > bytes.size() - 4) corrupt("header length out of range");
  rapidjson::Document doc;
  doc.Parse(bytes.data() + 16, hb);
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("meta") || !doc.HasMember("tensors"))
    corrupt("unreadable header");
  Archive a;
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  doc["meta"].Accept(w);
  a.meta_json.assign(sb.GetString(), sb.GetSize());
  const size_t data_start = 16 + hb;
  const size_t data_end = bytes.size() - 4;
  for (const auto& e : doc["tensors"].GetArray()) {
    std::string dt = e["dtype"].GetString();
    DType dtype = dt == "f32" ? DType::F32 : dt == "i32" ? DType::I32 : DType::I64;
    Shape shape;
    for (const auto& d : e["shape"].GetArray()) shape.push_back(d.GetInt64());
    const size_t off = e["offset"].GetUint64(), nb = e["bytes"].GetUint64();
    if (data_start + off + nb > data_end) corrupt("tensor data out of range");
    Tensor t = Tensor::host(shape, dtype);
    if (t.bytes() != nb) corrupt("tensor size mismatch");
    std::memcpy(t.raw(), bytes.data() + data_start + off, nb);
    a.tensors.emplace(e["name"].GetString(), t);
  }
  return a;
}

}  // namespace tessera
