#include "host/core/archive.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>

#include "host/core/atomic_file.h"
#include "host/core/checked_size.h"
#include "host/core/json_fields.h"

namespace tessera {

namespace {
constexpr char kMagic[8] = {'T', 'E', 'S', 'S', 'E', 'R', 'A', '1'};
size_t align64(size_t x) {
  return (x + 63) / 64 * 64;
}

struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t offset = 0, bytes = 0;
};

// One entry of the header's "tensors" list, every field type-checked; `where` names it
// ("tensors[3]"), `corrupt` throws.
TensorEntry read_entry(const rapidjson::Value& e, const std::string& where,
                       const std::function<void(const std::string&)>& corrupt) {
  auto bad = [&](const char* key, const char* why) {
    corrupt("header field '" + where + (key ? std::string(".") + key : "") + "' " + why);
  };
  if (!e.IsObject()) bad(nullptr, "is not an object");
  auto field = [&](const char* key) -> const rapidjson::Value& {
    auto it = e.FindMember(key);
    if (it == e.MemberEnd()) bad(key, "is missing");
    return it->value;
  };
  TensorEntry t;
  const rapidjson::Value& name = field("name");
  if (!name.IsString()) bad("name", "is not a string");
  t.name.assign(name.GetString(), name.GetStringLength());
  const rapidjson::Value& dt = field("dtype");
  const std::string dtype = dt.IsString() ? dt.GetString() : "";
  if (dtype == "f32")
    t.dtype = DType::F32;
  else if (dtype == "i32")
    t.dtype = DType::I32;
  else if (dtype == "i64")
    t.dtype = DType::I64;
  else
    bad("dtype", "is not one of \"f32\", \"i32\", \"i64\"");
  const rapidjson::Value& shape = field("shape");
  if (!shape.IsArray()) bad("shape", "is not an array");
  for (const auto& d : shape.GetArray()) {
    if (!d.IsInt64() || d.GetInt64() < 0)
      bad("shape", "holds something other than a non-negative integer");
    t.shape.push_back(d.GetInt64());
  }
  const rapidjson::Value& offset = field("offset");
  if (!offset.IsUint64()) bad("offset", "is not a non-negative integer");
  t.offset = offset.GetUint64();
  const rapidjson::Value& bytes = field("bytes");
  if (!bytes.IsUint64()) bad("bytes", "is not a non-negative integer");
  t.bytes = bytes.GetUint64();
  return t;
}
}  // namespace

namespace {
// Whether v[0, n) holds a NaN or an infinity: the exponent bits all ones. Reduced without a
// branch per element so that it vectorises (a model file's load checks every weight: for a
// 100 MB model, the per-element std::isfinite loop, with numel() called each iteration, was most
// of the load).
bool any_non_finite(const float* v, int64_t n) {
  uint32_t all_ones = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, v + i, sizeof bits);
    all_ones |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return all_ones != 0;
}
}  // namespace

void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& path) {
  constexpr int64_t kChunk = 16384;
  for (const auto& [name, t] : tensors) {
    if (t.dtype() != DType::F32) continue;
    const float* v = t.data<float>();
    const int64_t n = t.numel();
    for (int64_t at = 0; at < n; at += kChunk) {
      const int64_t m = std::min(kChunk, n - at);
      if (!any_non_finite(v + at, m)) continue;
      for (int64_t i = at; i < at + m; ++i)
        if (!std::isfinite(v[i]))
          TESSERA_THROW(Io, "'" << path << "': tensor '" << name << "' holds " << v[i]
                                << " at element " << i
                                << " (a model never saves a non-finite value)");
    }
  }
}

uint32_t crc32_of(const void* data, size_t size, size_t chunk) {
  TESSERA_CHECK(chunk > 0 && chunk <= std::numeric_limits<uInt>::max(),
                "crc32_of: chunk of " << chunk << " bytes");
  const auto* p = static_cast<const Bytef*>(data);
  uLong crc = crc32(0L, Z_NULL, 0);
  while (size > 0) {
    const size_t n = std::min(size, chunk);
    crc = crc32(crc, p, static_cast<uInt>(n));
    p += n;
    size -= n;
  }
  return static_cast<uint32_t>(crc);
}

namespace {

// The archive's bytes go to the file as they are produced, their CRC-32 taken on the way: the
// file's contents are never all in memory at once (a model's tables were copied whole into one
// string, half the end-of-run spike of issue 18's scale test). Handed to AtomicFileWriter in
// pieces of 1 MiB, which it buffers at most once before writing.
class CrcFileWriter {
 public:
  explicit CrcFileWriter(const std::string& path) : file_(path) {}
  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const size_t k = std::min(n, kPiece);
      file_.write(p, k);
      crc_ = crc32(crc_, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(k));
      p += k;
      n -= k;
      written_ += k;
    }
  }
  void write(const std::string& s) { write(s.data(), s.size()); }
  void pad_to(uint64_t offset) {  // zero bytes up to `offset` bytes written
    static const char zeros[64] = {};
    TESSERA_CHECK(offset >= written_ && offset - written_ <= sizeof zeros,
                  "archive padding from " << written_ << " to " << offset);
    write(zeros, static_cast<size_t>(offset - written_));
  }
  uint64_t written() const { return written_; }
  // The CRC of everything written, then fsync and rename into place.
  void commit() {
    const auto crc = static_cast<uint32_t>(crc_);
    file_.write(reinterpret_cast<const char*>(&crc), 4);
    file_.commit();
  }

 private:
  static constexpr size_t kPiece = size_t{1} << 20;
  AtomicFileWriter file_;
  uLong crc_ = crc32(0L, Z_NULL, 0);
  uint64_t written_ = 0;
};

// The header's "tensors" list: name, dtype, shape, offset from the data start (64-aligned) and
// byte count of each tensor, in order.
std::string tensor_list_json(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartArray();
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    TESSERA_CHECK(t.is_host(), "archive tensor '" << name << "' must be on the host");
    w.StartObject();
    w.Key("name");
    w.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    w.Key("dtype");
    w.String(dtype_name(t.dtype()));
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape()) w.Int64(d);
    w.EndArray();
    w.Key("offset");
    w.Uint64(offset);
    w.Key("bytes");
    w.Uint64(t.bytes());
    w.EndObject();
    offset = align64(offset + t.bytes());
  }
  w.EndArray();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

void save_archive(const std::string& path, const std::string& meta_json,
                  const std::vector<std::pair<std::string, Tensor>>& tensors) {
  // Checked with rapidjson's SAX reader (no document: the meta of a model with millions of
  // vocabulary tokens is large) and written as given.
  rapidjson::Reader reader;
  rapidjson::BaseReaderHandler<> ignore;
  rapidjson::StringStream in(meta_json.c_str());
  TESSERA_CHECK(meta_json.find('\0') == std::string::npos && !reader.Parse(in, ignore).IsError(),
                "archive metadata is not valid JSON");
  const std::string head = "{\"meta\":", list = ",\"tensors\":" + tensor_list_json(tensors) + "}";
  const uint64_t hb = head.size() + meta_json.size() + list.size();
  CrcFileWriter out(path);
  out.write(kMagic, 8);
  out.write(&hb, 8);
  out.write(head);
  out.write(meta_json);
  out.write(list);
  const uint64_t data_start = out.written();
  for (const auto& [name, t] : tensors) {
    out.pad_to(data_start + align64(out.written() - data_start));
    out.write(t.raw(), t.bytes());
  }
  out.commit();
}

std::string load_archive_meta(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) TESSERA_THROW(Io, "cannot open '" << path << "': " << std::strerror(errno));
  auto corrupt = [&](const std::string& why) {
    throw Error(ErrorKind::Io, "'" + path + "' is not a valid tessera file: " + why,
                ErrorLocation{path, 0, 0, ""});
  };
  char head[16];
  if (!in.read(head, sizeof head) || std::memcmp(head, kMagic, 8) != 0)
    corrupt("missing the TESSERA1 header");
  uint64_t hb;
  std::memcpy(&hb, head + 8, 8);
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(in.tellg());
  if (size < 20 || hb > size - 20)
    corrupt("header length " + std::to_string(hb) + " runs past the end of the file");
  std::string header(static_cast<size_t>(hb), '\0');
  in.seekg(16);
  if (!in.read(header.data(), static_cast<std::streamsize>(hb))) corrupt("cannot read the header");
  if (!json_nesting_within(header.data(), header.size(), kJsonMaxNesting))
    corrupt("header nests deeper than " + std::to_string(kJsonMaxNesting) + " levels");
  rapidjson::Document doc;
  doc.Parse(header.data(), header.size());
  if (doc.HasParseError() || !doc.IsObject()) corrupt("header is not a JSON object");
  auto meta = doc.FindMember("meta");
  if (meta == doc.MemberEnd()) corrupt("header field 'meta' is missing");
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  meta->value.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

namespace {

// An archive file read in place with pread: the CRC pass streams it in pieces and each tensor's
// bytes are read straight into its tensor. Reading the whole file into a string first (through a
// growing stream buffer) held every model two to three times over while it loaded: most of
// evaluate's peak at issue 18's scale.
class ArchiveFile {
 public:
  explicit ArchiveFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      throw Error(ErrorKind::Io, "cannot open '" + path + "': " + std::strerror(errno),
                  ErrorLocation{path, 0, 0, ""});
    struct stat st;
    size_ = ::fstat(fd_, &st) == 0 && st.st_size > 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }
  ~ArchiveFile() { ::close(fd_); }
  ArchiveFile(const ArchiveFile&) = delete;
  ArchiveFile& operator=(const ArchiveFile&) = delete;
  uint64_t size() const { return size_; }
  // n bytes at `offset` into `out`; false when the file ends first or cannot be read.
  bool read(uint64_t offset, void* out, size_t n) const {
    auto* p = static_cast<char*>(out);
    while (n > 0) {
      const ssize_t r =
          ::pread(fd_, p, std::min<size_t>(n, size_t{1} << 30), static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      p += r;
      offset += static_cast<uint64_t>(r);
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  // zlib's CRC-32 of the first n bytes, read 1 MiB at a time; false when they cannot be read.
  bool crc32_of_prefix(uint64_t n, uint32_t& crc) const {
    std::vector<char> piece(size_t{1} << 20);
    uLong c = crc32(0L, Z_NULL, 0);
    for (uint64_t at = 0; at < n;) {
      const auto k = static_cast<size_t>(std::min<uint64_t>(piece.size(), n - at));
      if (!read(at, piece.data(), k)) return false;
      c = crc32(c, reinterpret_cast<const Bytef*>(piece.data()), static_cast<uInt>(k));
      at += k;
    }
    crc = static_cast<uint32_t>(c);
    return true;
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace

Archive load_archive(const std::string& path) {
  const ArchiveFile file(path);
  const std::function<void(const std::string&)> corrupt = [&](const std::string& why) {
    TESSERA_THROW(Io, "'" << path << "' is not a valid tessera file: " << why);
  };
  char head[16];
  if (file.size() < 20 || !file.read(0, head, 16) || std::memcmp(head, kMagic, 8) != 0)
    corrupt("missing the TESSERA1 header");
  uint32_t crc_stored = 0, crc = 0;
  if (!file.read(file.size() - 4, &crc_stored, 4) || !file.crc32_of_prefix(file.size() - 4, crc) ||
      crc != crc_stored)
    corrupt("checksum mismatch (truncated or corrupted)");
  uint64_t hb;
  std::memcpy(&hb, head + 8, 8);
  const uint64_t data_end = file.size() - 4;
  if (hb > data_end - 16)
    corrupt("header length " + std::to_string(hb) + " runs past the end of the file");
  std::string header(static_cast<size_t>(hb), '\0');
  if (!file.read(16, header.data(), header.size())) corrupt("cannot read the header");
  if (!json_nesting_within(header.data(), hb, kJsonMaxNesting))
    corrupt("header nests deeper than " + std::to_string(kJsonMaxNesting) + " levels");
  rapidjson::Document doc;
  doc.Parse(header.data(), hb);
  if (doc.HasParseError() || !doc.IsObject()) corrupt("header is not a JSON object");
  auto meta = doc.FindMember("meta");
  if (meta == doc.MemberEnd()) corrupt("header field 'meta' is missing");
  auto list = doc.FindMember("tensors");
  if (list == doc.MemberEnd() || !list->value.IsArray())
    corrupt("header field 'tensors' is missing or not an array");
  Archive a;
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  meta->value.Accept(w);
  a.meta_json.assign(sb.GetString(), sb.GetSize());
  const uint64_t data_start = 16 + hb;
  const uint64_t data_bytes = data_end - data_start;
  uint64_t data_used = 0;  // the end of the last tensor's bytes
  rapidjson::SizeType i = 0;
  for (const auto& e : list->value.GetArray()) {
    TensorEntry t = read_entry(e, "tensors[" + std::to_string(i++) + "]", corrupt);
    if (a.tensors.count(t.name)) corrupt("tensor '" + t.name + "' appears twice");
    // The shape's byte count in checked arithmetic, against the bytes present, before allocating.
    const std::optional<uint64_t> numel = checked_product(t.shape);
    const std::optional<uint64_t> nb =
        numel ? checked_mul(*numel, dtype_size(t.dtype)) : std::nullopt;
    if (!nb || *nb != t.bytes)
      corrupt("tensor '" + t.name + "' of shape " + shape_str(t.shape) + " (" +
              dtype_name(t.dtype) + ") does not hold the " + std::to_string(t.bytes) +
              " bytes its entry gives");
    if (t.offset > data_bytes || t.bytes > data_bytes - t.offset)
      corrupt("tensor '" + t.name + "' data out of range");
    // In order and apart, as save_archive lays them out: tensors sharing bytes would let a small
    // file ask for many copies of its data.
    if (t.offset < data_used) corrupt("tensor '" + t.name + "' data overlaps the tensor before it");
    data_used = t.offset + t.bytes;
    Tensor host = Tensor::host(t.shape, t.dtype);
    if (t.bytes > 0 && !file.read(data_start + t.offset, host.raw(), static_cast<size_t>(t.bytes)))
      corrupt("cannot read tensor '" + t.name + "'");
    a.tensors.emplace(std::move(t.name), std::move(host));
  }
  return a;
}

}  // namespace tessera
