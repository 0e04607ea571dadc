#include "host/data/arrow_stream.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <utility>

#include "host/core/error.h"
#include "host/data/row_parser.h"

namespace tessera {

int format_double_like_python(double v, char* out) {
  if (std::isnan(v)) return std::snprintf(out, 32, "nan");
  if (std::isinf(v)) return std::snprintf(out, 32, v > 0 ? "inf" : "-inf");
  char sci[40];
  auto r = std::to_chars(sci, sci + sizeof(sci), v, std::chars_format::scientific);
  *r.ptr = '\0';
  // sci: [-]d[.ddd]e(+|-)XX: the shortest digits and the decimal exponent.
  const char* p = sci;
  int n = 0;
  if (*p == '-') out[n++] = *p++;
  char digits[32] = {};
  int nd = 0;
  for (; *p != 'e'; ++p)
    if (*p != '.') digits[nd++] = *p;
  const int exp = std::atoi(p + 1);
  if (exp < -4 || exp >= 16) {  // Python's repr switches to an exponent here
    out[n++] = digits[0];
    if (nd > 1) {
      out[n++] = '.';
      for (int i = 1; i < nd; ++i) out[n++] = digits[i];
    }
    return n + std::snprintf(out + n, 8, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  }
  if (exp < 0) {
    out[n++] = '0';
    out[n++] = '.';
    for (int i = 0; i < -exp - 1; ++i) out[n++] = '0';
    for (int i = 0; i < nd; ++i) out[n++] = digits[i];
    return n;
  }
  for (int i = 0; i <= exp; ++i) out[n++] = i < nd ? digits[i] : '0';
  out[n++] = '.';
  if (nd <= exp + 1) {
    out[n++] = '0';
    return n;
  }
  for (int i = exp + 1; i < nd; ++i) out[n++] = digits[i];
  return n;
}

namespace {

enum class Kind : uint8_t { I8, U8, I16, U16, I32, U32, I64, U64, F32, F64, Bool, Utf8, LargeUtf8 };

bool kind_of(const char* format, Kind& k) {
  if (format == nullptr || format[0] == '\0' || format[1] != '\0') return false;
  switch (format[0]) {
    case 'c':
      k = Kind::I8;
      return true;
    case 'C':
      k = Kind::U8;
      return true;
    case 's':
      k = Kind::I16;
      return true;
    case 'S':
      k = Kind::U16;
      return true;
    case 'i':
      k = Kind::I32;
      return true;
    case 'I':
      k = Kind::U32;
      return true;
    case 'l':
      k = Kind::I64;
      return true;
    case 'L':
      k = Kind::U64;
      return true;
    case 'f':
      k = Kind::F32;
      return true;
    case 'g':
      k = Kind::F64;
      return true;
    case 'b':
      k = Kind::Bool;
      return true;
    case 'u':
      k = Kind::Utf8;
      return true;
    case 'U':
      k = Kind::LargeUtf8;
      return true;
    default:
      return false;
  }
}

bool is_integer(Kind k) {
  return k <= Kind::U64;
}
bool is_text(Kind k) {
  return k == Kind::Utf8 || k == Kind::LargeUtf8;
}

// One column's values in the current batch: where row i of the batch is, checked as it is read.
struct ColumnView {
  const ArrowArray* array = nullptr;
  int64_t first = 0;  // the batch's row 0 in the array's buffers (array offset + struct offset)
  const uint8_t* validity = nullptr;
  const void* values = nullptr;
  const char* data = nullptr;  // text
};

bool bit(const uint8_t* bits, int64_t i) {
  return (bits[i >> 3] >> (i & 7)) & 1;
}

// A stream column the schema reads.
struct Column {
  std::string name;
  int field = -1;  // in the schema's columns
  int child = -1;  // in the stream's struct
  ColumnType type = ColumnType::Numeric;
  Kind kind = Kind::I64;
  bool dictionary = false;
  Kind value_kind = Kind::Utf8;  // dictionary values
  ColumnView view, dict;
};

}  // namespace

struct ArrowRecordReader::Impl {
  ArrowArrayStream stream{};
  ArrowSchema schema{};
  ArrowArray batch{};
  std::string name;
  TableSchema table;
  std::vector<Column> columns;
  std::vector<int> record_fields;  // the schema fields a record holds, in order
  std::string missing;             // what a null becomes
  bool has_label = true;
  bool trim = true;
  int64_t row = 0, rows_in_batch = 0, records = 0, batches = 0;
  std::vector<std::string_view> scratch_views;
  std::vector<std::array<char, 40>> scratch;

  ~Impl() {
    if (batch.release != nullptr) batch.release(&batch);
    if (schema.release != nullptr) schema.release(&schema);
    if (stream.release != nullptr) stream.release(&stream);
  }

  [[noreturn]] void producer_failed(const char* what, int code) {
    const char* msg = stream.get_last_error != nullptr ? stream.get_last_error(&stream) : nullptr;
    TESSERA_THROW(Data, name << ": the Arrow stream's " << what << " failed (error " << code
                             << (msg != nullptr && *msg ? std::string("): ") + msg : ")"));
  }

  [[noreturn]] void bad_column(const Column& c, const std::string& why) const {
    TESSERA_THROW(Data, name << ": column '" << c.name << "': " << why);
  }
  [[noreturn]] void bad_value(const Column& c, int64_t i, const std::string& why) const {
    throw Error(ErrorKind::Data,
                name + ":" + std::to_string(records + 1) + ": column '" + c.name + "': " + why,
                ErrorLocation{name, records + 1, 0, ""});
  }

  void map_columns(LabelMode label_mode) {
    if (schema.format == nullptr || std::strcmp(schema.format, "+s") != 0 ||
        schema.n_children < 0 || (schema.n_children > 0 && schema.children == nullptr))
      TESSERA_THROW(Data, name << ": the Arrow stream's schema is not a struct of columns");
    std::vector<std::string> names;
    for (int64_t i = 0; i < schema.n_children; ++i) {
      const ArrowSchema* ch = schema.children[i];
      if (ch == nullptr)
        TESSERA_THROW(Data, name << ": the Arrow schema's child " << i << " is null");
      names.emplace_back(ch->name != nullptr ? ch->name : "");
    }
    auto listed = [&] {
      std::ostringstream s;
      for (size_t i = 0; i < names.size(); ++i) s << (i ? ", " : "") << names[i];
      return s.str();
    };
    for (size_t f = 0; f < table.columns.size(); ++f) {
      const ColumnSpec& spec = table.columns[f];
      if (spec.type == ColumnType::Ignore) {
        record_fields.push_back(static_cast<int>(f));
        continue;
      }
      int child = -1;
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == spec.name) child = static_cast<int>(i);
      if (child < 0 && spec.type == ColumnType::Label && label_mode == LabelMode::Optional &&
          f + 1 == table.columns.size()) {
        has_label = false;
        continue;
      }
      if (child < 0)
        TESSERA_THROW(Data, name << ": column '" << spec.name
                                 << "' is not in the data (columns: " << listed() << ")");
      record_fields.push_back(static_cast<int>(f));
      Column c;
      c.name = spec.name;
      c.field = static_cast<int>(f);
      c.child = child;
      c.type = spec.type;
      type_column(c, *schema.children[child]);
      columns.push_back(std::move(c));
    }
  }

  void type_column(Column& c, const ArrowSchema& s) const {
    const char* fmt = s.format != nullptr ? s.format : "(null)";
    if (!kind_of(s.format, c.kind))
      bad_column(c, std::string("Arrow type '") + fmt + "' is not read (numbers, bools, text)");
    if (s.dictionary != nullptr) {
      c.dictionary = true;
      if (!is_integer(c.kind)) bad_column(c, "a dictionary's indices are not integers");
      const char* vf = s.dictionary->format != nullptr ? s.dictionary->format : "(null)";
      if (!kind_of(s.dictionary->format, c.value_kind) ||
          !(is_text(c.value_kind) || is_integer(c.value_kind)))
        bad_column(c, std::string("a dictionary of '") + vf + "' is not read (text or integers)");
    }
  }

  // Checks one array of a batch (or a dictionary) and points `v` at it.
  void view_of(const Column& c, const ArrowArray* a, Kind k, int64_t first, int64_t rows,
               ColumnView& v) const {
    if (a == nullptr) bad_column(c, "the batch has no array for it");
    if (a->length < 0 || a->offset < 0 || a->n_buffers < 0)
      bad_column(c, "a negative length, offset or buffer count");
    if (first > std::numeric_limits<int64_t>::max() - a->offset)
      bad_column(c, "an array offset out of range");
    const int64_t start = a->offset + first;
    if (first > a->length || rows > a->length - first)
      bad_column(c, "the array has " + std::to_string(a->length) + " rows, the batch needs " +
                        std::to_string(first + rows));
    const int64_t want = is_text(k) ? 3 : 2;
    if (a->n_buffers != want || a->buffers == nullptr)
      bad_column(
          c, "expected " + std::to_string(want) + " buffers, got " + std::to_string(a->n_buffers));
    v.array = a;
    v.first = start;
    v.validity = static_cast<const uint8_t*>(a->buffers[0]);
    if (a->null_count > 0 && v.validity == nullptr)
      bad_column(c, "null values without a validity buffer");
    v.values = a->buffers[1];
    v.data = is_text(k) ? static_cast<const char*>(a->buffers[2]) : nullptr;
    if (rows > 0 && v.values == nullptr) bad_column(c, "a values buffer is null");
  }

  bool next_batch() {
    for (;;) {
      if (batch.release != nullptr) batch.release(&batch);
      batch = ArrowArray{};
      const int rc = stream.get_next(&stream, &batch);
      if (rc != 0) producer_failed("get_next", rc);
      if (batch.release == nullptr) return false;  // the end
      ++batches;
      if (batch.length < 0 || batch.offset < 0 || batch.n_children != schema.n_children ||
          (batch.n_children > 0 && batch.children == nullptr))
        TESSERA_THROW(Data, name << ": batch " << batches
                                 << " does not match the stream's schema (length " << batch.length
                                 << ", " << batch.n_children << " columns for " << schema.n_children
                                 << ")");
      if (batch.null_count > 0)
        TESSERA_THROW(Data, name << ": batch " << batches << " has null rows (not columns)");
      for (Column& c : columns) {
        view_of(c, batch.children[c.child], c.kind, batch.offset, batch.length, c.view);
        if (c.dictionary) {
          const ArrowArray* d = c.view.array->dictionary;
          if (d == nullptr) bad_column(c, "a dictionary column's batch has no dictionary");
          view_of(c, d, c.value_kind, 0, d->length, c.dict);
        }
      }
      row = 0;
      rows_in_batch = batch.length;
      if (rows_in_batch > 0) return true;
    }
  }

  template <typename T>
  T value(const ColumnView& v, int64_t i) const {
    T x;
    std::memcpy(&x, static_cast<const char*>(v.values) + (v.first + i) * sizeof(T), sizeof(T));
    return x;
  }

  // Text at row i of a utf8 / large_utf8 view, its offsets checked.
  template <typename O>
  std::string_view text(const Column& c, const ColumnView& v, int64_t i) const {
    const O begin = value<O>(v, i), end = value<O>(v, i + 1);
    if (begin < 0 || end < begin) bad_value(c, i, "string offsets out of order");
    if (v.data == nullptr && end > begin) bad_value(c, i, "a text column without a data buffer");
    return std::string_view(v.data + begin, static_cast<size_t>(end - begin));
  }

  // Row i of a view of kind k as text: numbers into `buf`.
  std::string_view field_of(const Column& c, const ColumnView& v, Kind k, int64_t i,
                            char* buf) const {
    auto integer = [&](auto x) {
      auto r = std::to_chars(buf, buf + 32, x);
      return std::string_view(buf, static_cast<size_t>(r.ptr - buf));
    };
    auto real = [&](double x) -> std::string_view {
      if (std::isnan(x)) return missing;
      if (c.type == ColumnType::Categorical)
        return std::string_view(buf, static_cast<size_t>(format_double_like_python(x, buf)));
      auto r = std::to_chars(buf, buf + 32, x);
      return std::string_view(buf, static_cast<size_t>(r.ptr - buf));
    };
    switch (k) {
      case Kind::I8:
        return integer(int(value<int8_t>(v, i)));
      case Kind::U8:
        return integer(unsigned(value<uint8_t>(v, i)));
      case Kind::I16:
        return integer(int(value<int16_t>(v, i)));
      case Kind::U16:
        return integer(unsigned(value<uint16_t>(v, i)));
      case Kind::I32:
        return integer(value<int32_t>(v, i));
      case Kind::U32:
        return integer(value<uint32_t>(v, i));
      case Kind::I64:
        return integer(value<int64_t>(v, i));
      case Kind::U64:
        return integer(value<uint64_t>(v, i));
      case Kind::F32:
        return real(double(value<float>(v, i)));
      case Kind::F64:
        return real(value<double>(v, i));
      case Kind::Bool:
        return bit(static_cast<const uint8_t*>(v.values), v.first + i) ? "1" : "0";
      case Kind::Utf8:
        return trimmed(text<int32_t>(c, v, i));
      case Kind::LargeUtf8:
        return trimmed(text<int64_t>(c, v, i));
    }
    return {};
  }

  std::string_view trimmed(std::string_view s) const {
    if (!trim) return s;
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  }

  int64_t dictionary_index(const Column& c, int64_t i) const {
    const ColumnView& v = c.view;
    int64_t k = 0;
    switch (c.kind) {
      case Kind::I8:
        k = value<int8_t>(v, i);
        break;
      case Kind::U8:
        k = value<uint8_t>(v, i);
        break;
      case Kind::I16:
        k = value<int16_t>(v, i);
        break;
      case Kind::U16:
        k = value<uint16_t>(v, i);
        break;
      case Kind::I32:
        k = value<int32_t>(v, i);
        break;
      case Kind::U32:
        k = value<uint32_t>(v, i);
        break;
      case Kind::I64:
        k = value<int64_t>(v, i);
        break;
      case Kind::U64: {
        const uint64_t u = value<uint64_t>(v, i);
        k = u > uint64_t(std::numeric_limits<int64_t>::max()) ? -1 : int64_t(u);
        break;
      }
      default:
        break;
    }
    if (k < 0 || k >= c.dict.array->length)
      bad_value(c, i,
                "dictionary index " + std::to_string(k) + " outside its " +
                    std::to_string(c.dict.array->length) + " values");
    return k;
  }

  std::string_view cell(size_t col, int64_t i) {
    const Column& c = columns[col];
    const ColumnView& v = c.view;
    if (v.validity != nullptr && !bit(v.validity, v.first + i)) return missing;
    char* buf = scratch[col].data();
    if (!c.dictionary) return field_of(c, v, c.kind, i, buf);
    const int64_t k = dictionary_index(c, i);
    if (c.dict.validity != nullptr && !bit(c.dict.validity, c.dict.first + k)) return missing;
    return field_of(c, c.dict, c.value_kind, k, buf);
  }
};

ArrowRecordReader::ArrowRecordReader(ArrowArrayStream* stream, const TableSchema& schema,
                                     LabelMode label, std::string name)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.name = std::move(name);
  if (stream == nullptr || stream->release == nullptr)
    TESSERA_THROW(Data, m.name << ": the Arrow stream was already consumed (released)");
  m.stream = *stream;
  stream->release = nullptr;  // ours now
  if (m.stream.get_schema == nullptr || m.stream.get_next == nullptr)
    TESSERA_THROW(Data, m.name << ": the Arrow stream has no get_schema / get_next callbacks");
  m.table = resolve_schema(schema);
  if (m.table.format == TableFormat::LibSvm)
    TESSERA_THROW(Config, m.name << ": libSVM rows are not read from Arrow data");
  m.trim = m.table.trim;
  m.missing = m.table.missing_tokens.empty() ? std::string() : m.table.missing_tokens.front();
  const int rc = m.stream.get_schema(&m.stream, &m.schema);
  if (rc != 0) m.producer_failed("get_schema", rc);
  m.map_columns(label);
  if (m.table.missing_tokens.empty())
    TESSERA_THROW(Config, m.name << ": the schema has no missing tokens, so an Arrow null has "
                                    "nothing to be read as (data.missing_tokens)");
  m.scratch.resize(m.columns.size());
}

ArrowRecordReader::~ArrowRecordReader() = default;

bool ArrowRecordReader::next(Record& out) {
  Impl& m = *impl_;
  if (m.row >= m.rows_in_batch && !m.next_batch()) return false;
  out.fields.assign(m.record_fields.size(), std::string_view());
  size_t col = 0;
  for (size_t r = 0; r < m.record_fields.size(); ++r) {
    if (col < m.columns.size() && m.columns[col].field == m.record_fields[r])
      out.fields[r] = m.cell(col++, m.row);
  }
  out.line = ++m.records;
  out.path = m.name;
  ++m.row;
  return true;
}

bool ArrowRecordReader::has_label() const {
  return impl_->has_label;
}
const std::string& ArrowRecordReader::name() const {
  return impl_->name;
}
int64_t ArrowRecordReader::records_read() const {
  return impl_->records;
}
int64_t ArrowRecordReader::batches_read() const {
  return impl_->batches;
}

}  // namespace tessera
