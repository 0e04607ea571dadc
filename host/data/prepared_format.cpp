#include "host/data/prepared_format.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include <rapidjson/document.h>

#include "host/config/json_writer.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/json_fields.h"
#include "host/data/sha256.h"

namespace tessera {

size_t prepared_type_size(PreparedType t) {
  switch (t) {
    case PreparedType::F32:
    case PreparedType::I32:
      return 4;
    case PreparedType::I16:
      return 2;
    case PreparedType::U8:
      return 1;
    case PreparedType::I64:
      return 8;
  }
  return 0;
}

const char* prepared_type_name(PreparedType t) {
  switch (t) {
    case PreparedType::F32:
      return "f32";
    case PreparedType::I32:
      return "i32";
    case PreparedType::I16:
      return "i16";
    case PreparedType::U8:
      return "u8";
    case PreparedType::I64:
      return "i64";
  }
  return "?";
}

bool prepared_type_from_name(const std::string& name, PreparedType* out) {
  for (PreparedType t : {PreparedType::F32, PreparedType::I32, PreparedType::I16, PreparedType::U8,
                         PreparedType::I64}) {
    if (name == prepared_type_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

PreparedType narrowest_id_type(int64_t rows) {
  if (rows <= 256) return PreparedType::U8;
  if (rows <= 32768) return PreparedType::I16;
  if (rows <= (int64_t{1} << 31)) return PreparedType::I32;
  return PreparedType::I64;
}

namespace {

constexpr size_t kFixedHeader = 24;  // magic, version, n_columns, rows
constexpr size_t kColumnEntry = 24;

template <typename T>
void put(std::string& s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  s.append(b, sizeof(T));
}

template <typename T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

uint64_t align64(uint64_t x) {
  return (x + 63) / 64 * 64;
}

}  // namespace

std::string shard_header_bytes(ShardHeader& h) {
  std::string s(kShardMagic, 8);
  put<uint32_t>(s, kShardVersion);
  put<uint32_t>(s, static_cast<uint32_t>(h.columns.size()));
  put<uint64_t>(s, h.rows);
  uint64_t at = align64(kFixedHeader + kColumnEntry * h.columns.size() + 4);
  for (ShardColumn& c : h.columns) {
    c.offset = at;
    c.bytes = h.rows * c.width * prepared_type_size(c.type);
    at = align64(at + c.bytes);
    put<uint8_t>(s, static_cast<uint8_t>(c.type));
    s.append(3, '\0');
    put<uint32_t>(s, c.width);
    put<uint64_t>(s, c.offset);
    put<uint64_t>(s, c.bytes);
  }
  put<uint32_t>(s, crc32_of(s.data(), s.size()));
  return s;
}

ShardHeader parse_shard_header(const uint8_t* data, size_t size, const std::string& name) {
  auto fail = [&](const std::string& why) { TESSERA_THROW(Io, name << ": shard header: " << why); };
  if (size < kFixedHeader + 4) fail("file of " + std::to_string(size) + " bytes is too short");
  if (std::memcmp(data, kShardMagic, 8) != 0) fail("not a tessera shard (bad magic)");
  const uint32_t version = get<uint32_t>(data + 8);
  if (version != kShardVersion)
    fail("version " + std::to_string(version) + ", this build reads " +
         std::to_string(kShardVersion));
  const uint32_t n = get<uint32_t>(data + 12);
  if (n < 1 || n > kMaxShardColumns) fail("column count " + std::to_string(n) + " out of range");
  ShardHeader h;
  h.rows = get<uint64_t>(data + 16);
  if (h.rows > kMaxShardRows) fail("row count " + std::to_string(h.rows) + " out of range");
  const size_t header_end = kFixedHeader + kColumnEntry * n;
  if (size < header_end + 4) fail("truncated column table");
  if (get<uint32_t>(data + header_end) != crc32_of(data, header_end))
    fail("header checksum mismatch");
  uint64_t previous_end = header_end + 4;
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* e = data + kFixedHeader + kColumnEntry * i;
    ShardColumn c;
    const std::string col = "column " + std::to_string(i) + ": ";
    if (e[0] > static_cast<uint8_t>(PreparedType::I64)) fail(col + "unknown type");
    c.type = static_cast<PreparedType>(e[0]);
    c.width = get<uint32_t>(e + 4);
    c.offset = get<uint64_t>(e + 8);
    c.bytes = get<uint64_t>(e + 16);
    if (c.width < 1 || c.width > kMaxColumnWidth) fail(col + "width out of range");
    // rows < 2^40, width <= 2^20, size <= 8: the product fits in 64 bits.
    if (c.bytes != h.rows * c.width * prepared_type_size(c.type))
      fail(col + "byte count does not match rows x width");
    if (c.offset % 64 != 0 || c.offset < previous_end) fail(col + "bad offset");
    if (c.offset > size || c.bytes > size - c.offset)
      fail(col + "data runs past the end of the file (truncated?)");
    previous_end = c.offset + c.bytes;
    h.columns.push_back(c);
  }
  return h;
}

SourceFingerprint fingerprint_source(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) TESSERA_THROW(Io, path << ": cannot stat the source file");
  SourceFingerprint f;
  f.size = static_cast<int64_t>(st.st_size);
  f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> fp(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!fp) TESSERA_THROW(Io, path << ": cannot open the source file");
  constexpr int64_t kMiB = 1 << 20;
  std::string buf(static_cast<size_t>(std::min(f.size, kMiB)), '\0');
  auto hash_at = [&](int64_t offset) {
    if (std::fseek(fp.get(), static_cast<long>(offset), SEEK_SET) != 0 ||
        std::fread(&buf[0], 1, buf.size(), fp.get()) != buf.size())
      TESSERA_THROW(Io, path << ": cannot read the source file");
    return sha256_hex(buf);
  };
  f.head_sha256 = hash_at(0);
  f.tail_sha256 = hash_at(f.size - static_cast<int64_t>(buf.size()));
  return f;
}

int64_t SourceInfo::rows() const {
  int64_t n = 0;
  for (const ShardInfo& s : shards) n += s.rows;
  return n;
}

int64_t PreparedManifest::rows(const std::string& split) const {
  auto it = splits.find(split);
  if (it == splits.end()) return 0;
  int64_t n = 0;
  for (const SourceInfo& s : it->second) n += s.rows();
  return n;
}

std::string shard_file_name(const std::string& split, int64_t index) {
  char b[32];
  std::snprintf(b, sizeof b, "-%05lld.tshard", static_cast<long long>(index));
  return split + b;
}

namespace {

using Alloc = rapidjson::MemoryPoolAllocator<rapidjson::CrtAllocator>;

const char* selection_name(SourceSelection s) {
  return s == SourceSelection::All ? "all" : s == SourceSelection::Train ? "train" : "validation";
}

rapidjson::Value str(const std::string& s, Alloc& a) {
  return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
}

rapidjson::Value source_json(const SourceInfo& s, Alloc& a) {
  rapidjson::Value v(rapidjson::kObjectType);
  v.AddMember("path", str(s.path, a), a);
  v.AddMember("skip_lines", s.skip_lines, a);
  v.AddMember("size", s.fingerprint.size, a);
  v.AddMember("mtime_ns", s.fingerprint.mtime_ns, a);
  v.AddMember("head_sha256", str(s.fingerprint.head_sha256, a), a);
  v.AddMember("tail_sha256", str(s.fingerprint.tail_sha256, a), a);
  v.AddMember("selection", rapidjson::StringRef(selection_name(s.selection)), a);
  v.AddMember("appended", s.appended, a);
  v.AddMember("complete", s.complete, a);
  v.AddMember("records", s.records, a);
  v.AddMember("bad_rows", s.bad_rows, a);
  rapidjson::Value shards(rapidjson::kArrayType);
  for (const ShardInfo& sh : s.shards) {
    rapidjson::Value o(rapidjson::kObjectType);
    o.AddMember("file", str(sh.file, a), a);
    o.AddMember("rows", sh.rows, a);
    o.AddMember("bytes", sh.bytes, a);
    o.AddMember("crc32", sh.crc32, a);
    o.AddMember("first_record", sh.first_record, a);
    o.AddMember("end_record", sh.end_record, a);
    shards.PushBack(o, a);
  }
  v.AddMember("shards", shards, a);
  return v;
}

}  // namespace

std::string PreparedManifest::to_json() const {
  rapidjson::Document d(rapidjson::kObjectType);
  Alloc& a = d.GetAllocator();
  d.AddMember("format", "tessera.prepared", a);
  d.AddMember("version", version, a);
  d.AddMember("complete", complete, a);
  d.AddMember("inputs_key", str(inputs_key, a), a);
  d.AddMember("shard_rows", shard_rows, a);
  d.AddMember("seed", static_cast<int64_t>(seed), a);  // as the config wrote it
  d.AddMember("validation_fraction", validation_fraction, a);
  d.AddMember("n_dense", n_dense, a);
  d.AddMember("n_cat", n_cat, a);
  rapidjson::Value cols(rapidjson::kArrayType);
  for (const PreparedColumnInfo& c : columns) {
    rapidjson::Value o(rapidjson::kObjectType);
    o.AddMember("name", str(c.name, a), a);
    o.AddMember("type", rapidjson::StringRef(prepared_type_name(c.type)), a);
    o.AddMember("width", c.width, a);
    o.AddMember("offset", c.offset, a);
    cols.PushBack(o, a);
  }
  d.AddMember("columns", cols, a);
  rapidjson::Value splits_json(rapidjson::kObjectType);
  for (const auto& [name, sources] : splits) {
    rapidjson::Value list(rapidjson::kArrayType);
    for (const SourceInfo& s : sources) list.PushBack(source_json(s, a), a);
    splits_json.AddMember(str(name, a), list, a);
  }
  d.AddMember("splits", splits_json, a);
  if (!preprocessor_file.empty()) {
    rapidjson::Value o(rapidjson::kObjectType);
    o.AddMember("file", str(preprocessor_file, a), a);
    o.AddMember("bytes", preprocessor_bytes, a);
    o.AddMember("crc32", preprocessor_crc32, a);
    d.AddMember("preprocessor_file", o, a);
    return json::format_pretty(d);
  }
  rapidjson::Document pre;
  pre.Parse(preprocessor_json.c_str());
  TESSERA_CHECK(!pre.HasParseError() && pre.IsObject(), "manifest: preprocessor JSON is invalid");
  d.AddMember("preprocessor", rapidjson::Value(pre, a), a);
  return json::format_pretty(d);
}

namespace {

SourceInfo parse_source(const JsonFields& f, const std::string& path) {
  SourceInfo s;
  s.path = f.string("path");
  s.skip_lines = static_cast<int>(f.integer("skip_lines", 0, 1 << 30));
  s.fingerprint.size = f.integer("size", 0);
  s.fingerprint.mtime_ns = f.integer("mtime_ns");
  s.fingerprint.head_sha256 = f.string("head_sha256");
  s.fingerprint.tail_sha256 = f.string("tail_sha256");
  const std::string sel = f.string("selection");
  if (sel == "all")
    s.selection = SourceSelection::All;
  else if (sel == "train")
    s.selection = SourceSelection::Train;
  else if (sel == "validation")
    s.selection = SourceSelection::Validation;
  else
    f.fail(f.field("selection"), "is not one of \"all\", \"train\", \"validation\"");
  s.appended = f.boolean("appended");
  s.complete = f.boolean("complete");
  s.records = f.integer("records", 0);
  s.bad_rows = f.integer("bad_rows", 0);
  const rapidjson::Value& shards = f.array("shards");
  for (rapidjson::SizeType i = 0; i < shards.Size(); ++i) {
    JsonFields sh(shards[i], path, f.field("shards") + "[" + std::to_string(i) + "]");
    ShardInfo info;
    info.file = sh.string("file");
    if (info.file.empty() || info.file.find('/') != std::string::npos || info.file[0] == '.')
      sh.fail(sh.field("file"), "must be a plain file name in the dataset directory");
    info.rows = sh.integer("rows", 0, static_cast<int64_t>(kMaxShardRows));
    info.bytes = sh.integer("bytes", 0);
    info.crc32 = static_cast<uint32_t>(sh.integer("crc32", 0, 0xffffffffLL));
    info.first_record = sh.integer("first_record", 0);
    info.end_record = sh.integer("end_record", info.first_record);
    s.shards.push_back(info);
  }
  return s;
}

}  // namespace

void PreparedManifest::store_preprocessor_in(const std::string& file) {
  preprocessor_file = file;
  preprocessor_bytes = static_cast<int64_t>(preprocessor_json.size());
  preprocessor_crc32 = crc32_of(preprocessor_json.data(), preprocessor_json.size());
}

PreparedManifest PreparedManifest::parse(const std::string& text, const std::string& path) {
  PreparedManifest m = parse_text(text, path);
  if (m.preprocessor_file.empty()) return m;
  const size_t slash = path.rfind('/');
  const std::string file =
      (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) +
      m.preprocessor_file;
  std::string bytes;
  try {
    bytes = read_file(file);
  } catch (const Error&) {
    TESSERA_THROW(Io,
                  file << ": the preprocessor file " << path << " names is missing or unreadable");
  }
  if (static_cast<int64_t>(bytes.size()) != m.preprocessor_bytes)
    TESSERA_THROW(Io, file << ": preprocessor file is " << bytes.size() << " bytes, " << path
                           << " says " << m.preprocessor_bytes << " (truncated or replaced?)");
  const uint32_t crc = crc32_of(bytes.data(), bytes.size());
  if (crc != m.preprocessor_crc32)
    TESSERA_THROW(Io, file << ": preprocessor file checksum " << crc << ", " << path << " says "
                           << m.preprocessor_crc32 << " (corrupt or replaced?)");
  m.preprocessor_json = std::move(bytes);
  return m;
}

PreparedManifest PreparedManifest::parse_text(const std::string& text, const std::string& path) {
  rapidjson::Document d;
  parse_json_object(d, text, path);
  JsonFields f(d, path);
  if (f.string("format") != "tessera.prepared")
    f.fail(f.field("format"), "is not \"tessera.prepared\"");
  PreparedManifest m;
  m.version = static_cast<int>(f.integer("version", 0, 1 << 20));
  if (m.version < kOldestManifestVersion || m.version > kManifestVersion)
    f.fail(f.field("version"), "is " + std::to_string(m.version) + "; this build reads " +
                                   std::to_string(kOldestManifestVersion) + " to " +
                                   std::to_string(kManifestVersion));
  m.complete = f.boolean("complete");
  m.inputs_key = f.string("inputs_key");
  m.shard_rows = f.integer("shard_rows", 1, static_cast<int64_t>(kMaxShardRows));
  m.seed = static_cast<uint64_t>(f.integer("seed"));
  m.validation_fraction = f.number("validation_fraction");
  m.n_dense = f.integer("n_dense", 0, kMaxColumnWidth);
  m.n_cat = f.integer("n_cat", 0, kMaxShardColumns - 3);
  const rapidjson::Value& cols = f.array("columns");
  for (rapidjson::SizeType i = 0; i < cols.Size(); ++i) {
    JsonFields c(cols[i], path, "columns[" + std::to_string(i) + "]");
    PreparedColumnInfo info;
    info.name = c.string("name");
    if (!prepared_type_from_name(c.string("type"), &info.type))
      c.fail(c.field("type"), "is not a known type");
    info.width = c.integer("width", 1, kMaxColumnWidth);
    info.offset = c.integer("offset", 0);
    m.columns.push_back(info);
  }
  if (static_cast<int64_t>(m.columns.size()) != m.n_cat + 3)
    f.fail(f.field("columns"), "has " + std::to_string(m.columns.size()) + " entries, expected " +
                                   std::to_string(m.n_cat + 3) + " (label, dense, tables, line)");
  JsonFields splits = f.object("splits");
  for (auto it = d["splits"].MemberBegin(); it != d["splits"].MemberEnd(); ++it) {
    const std::string name = it->name.GetString();
    const rapidjson::Value& list = splits.array(name.c_str());
    std::vector<SourceInfo>& out = m.splits[name];
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i)
      out.push_back(parse_source(
          JsonFields(list[i], path, "splits." + name + "[" + std::to_string(i) + "]"), path));
  }
  if (d.HasMember("preprocessor_file")) {  // the preprocessor in its own file
    if (m.version < 2) f.fail(f.field("preprocessor_file"), "needs manifest version 2");
    if (d.HasMember("preprocessor"))
      f.fail(f.field("preprocessor_file"), "and \"preprocessor\" are both present");
    JsonFields p = f.object("preprocessor_file");
    m.preprocessor_file = p.string("file");
    if (m.preprocessor_file.empty() || m.preprocessor_file.find('/') != std::string::npos ||
        m.preprocessor_file[0] == '.')
      p.fail(p.field("file"), "must be a plain file name in the dataset directory");
    m.preprocessor_bytes = p.integer("bytes", 2, int64_t{1} << 40);
    m.preprocessor_crc32 = static_cast<uint32_t>(p.integer("crc32", 0, 0xffffffffLL));
    return m;
  }
  f.object("preprocessor");  // an object, whose fields Preprocessor::from_json checks
  m.preprocessor_json = f.json("preprocessor");
  return m;
}

}  // namespace tessera
