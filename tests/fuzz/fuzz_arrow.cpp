// Fuzz target: the Arrow C stream reader (host/data/arrow_stream.h) as a producer's batches reach
// it, then the text path's RowParser and PreprocessorFitter on its rows. The stream is synthetic,
// built from the input: a schema and batches whose lengths, offsets, null counts, buffer counts,
// string offsets and dictionary indices are the fuzzer's, with buffers sized (as the interface
// promises a producer sizes them) for what each array claims: a reader that trusted a batch's
// length over its column's, or a string offset or dictionary index unchecked, reads past a buffer
// (ASan).
//
// Input: a header, then one block per column, then one block per batch; bytes past the end read 0.
//   0  columns: low 3 bits + 1 (1..8); bit 3 LabelMode::Optional; bit 4 on_error skip;
//      bit 5 the schema names a column the stream lacks
//   1  batches: low 2 bits (0..3); bit 2 get_next fails after the first batch
//   per column: format (byte % 16: c C s S i I l L f g b u U, dictionary of utf8 by int8 or by
//      int32, "x" unknown), schema type (byte % 4: numeric, categorical, label, ignore)
//   per batch: length (byte % 9), struct offset (byte % 3), then per column: claimed length
//      (byte % 12), offset (byte % 4), null_count (byte % 4 - 1), flags (1 validity buffer,
//      2 one buffer too few, 4 dictionary length byte follows), then the values' bytes (drawn
//      from the rest of the input, cycled; string offsets masked to [-4095, 4095]).
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "host/data/arrow_stream.h"
#include "host/data/preprocessor.h"
#include "host/data/row_parser.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;

const char* const kFormats[] = {"c", "C", "s", "S", "i", "I", "l", "L",
                                "f", "g", "b", "u", "U", "c", "i", "x"};
size_t width_of(const std::string& f) {
  switch (f[0]) {
    case 'c':
    case 'C':
      return 1;
    case 's':
    case 'S':
      return 2;
    case 'i':
    case 'I':
    case 'f':
    case 'u':
      return 4;
    case 'l':
    case 'L':
    case 'g':
    case 'U':
      return 8;
    default:
      return 0;  // b (bits), x
  }
}

// One array's storage: buffers sized for offset + length.
struct Storage {
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<const void*> pointers;
  ArrowArray array{};
  std::unique_ptr<Storage> dictionary;
};

struct Batch {
  ArrowArray top{};
  std::vector<const void*> top_buffers{nullptr};
  std::vector<std::unique_ptr<Storage>> columns;
  std::vector<ArrowArray*> children;
};

struct Stream {
  std::vector<std::string> names, formats;
  std::vector<bool> dictionary;
  std::vector<std::unique_ptr<Batch>> batches;
  size_t next = 0;
  bool fail_after_first = false;
  int released_batches = 0, released_streams = 0, schema_releases = 0;
  std::vector<ArrowSchema> kids, dicts;
  std::vector<ArrowSchema*> kid_ptrs;
};

void fill(fuzz::ByteReader& in, std::vector<uint8_t>& buf, std::string_view pool, size_t& at) {
  for (uint8_t& b : buf) b = pool.empty() ? 0 : static_cast<uint8_t>(pool[at++ % pool.size()]);
}

// A utf8 / large_utf8 array's offsets masked into the data buffer's 4096 bytes (or negative).
template <typename O>
void mask_offsets(std::vector<uint8_t>& buf) {
  for (size_t i = 0; i + sizeof(O) <= buf.size(); i += sizeof(O)) {
    O v;
    std::memcpy(&v, &buf[i], sizeof(O));
    const bool negative = v < 0;
    v = static_cast<O>(v & 0xFFF);
    if (negative) v = static_cast<O>(-v);
    std::memcpy(&buf[i], &v, sizeof(O));
  }
}

std::unique_ptr<Storage> make_array(fuzz::ByteReader& in, const std::string& format, int64_t length,
                                    int64_t offset, std::string_view pool, size_t& at) {
  auto s = std::make_unique<Storage>();
  const int64_t n = length + offset;
  const bool text = format == "u" || format == "U";
  s->buffers.emplace_back(static_cast<size_t>((n + 7) / 8));  // validity
  const size_t w = width_of(format);
  s->buffers.emplace_back(format == "b" ? static_cast<size_t>((n + 7) / 8)
                                        : w * static_cast<size_t>(n + (text ? 1 : 0)));
  for (auto& b : s->buffers) fill(in, b, pool, at);
  if (format == "u") mask_offsets<int32_t>(s->buffers[1]);
  if (format == "U") mask_offsets<int64_t>(s->buffers[1]);
  if (text) s->buffers.emplace_back(4096, uint8_t{'a'});
  for (auto& b : s->buffers) s->pointers.push_back(b.data());
  s->array.length = length;
  s->array.offset = offset;
  s->array.n_buffers = static_cast<int64_t>(s->pointers.size());
  s->array.buffers = s->pointers.data();
  s->array.release = [](ArrowArray* a) { a->release = nullptr; };
  return s;
}

void build_batch(fuzz::ByteReader& in, Stream& st, std::string_view pool, size_t& at) {
  auto b = std::make_unique<Batch>();
  b->top.length = in.byte() % 9;
  b->top.offset = in.byte() % 3;
  for (size_t c = 0; c < st.formats.size(); ++c) {
    const int64_t claimed = in.byte() % 12, offset = in.byte() % 4;
    const int64_t null_count = int64_t(in.byte() % 4) - 1;
    const uint8_t flags = in.byte();
    auto s = make_array(in, st.formats[c], claimed, offset, pool, at);
    if ((flags & 1) == 0) s->pointers[0] = nullptr;
    s->array.null_count = null_count;
    if ((flags & 2) != 0) --s->array.n_buffers;
    if (st.dictionary[c]) {
      const int64_t dn = (flags & 4) != 0 ? in.byte() % 6 : 3;
      s->dictionary = make_array(in, "u", dn, 0, pool, at);
      s->array.dictionary = &s->dictionary->array;
    }
    b->children.push_back(&s->array);
    b->columns.push_back(std::move(s));
  }
  b->top.n_buffers = 1;
  b->top.buffers = b->top_buffers.data();
  b->top.n_children = static_cast<int64_t>(b->children.size());
  b->top.children = b->children.data();
  st.batches.push_back(std::move(b));
}

int get_schema(ArrowArrayStream* s, ArrowSchema* out) {
  auto* st = static_cast<Stream*>(s->private_data);
  st->kids.assign(st->names.size(), ArrowSchema{});
  st->dicts.assign(st->names.size(), ArrowSchema{});
  st->kid_ptrs.clear();
  for (size_t i = 0; i < st->names.size(); ++i) {
    st->kids[i].name = st->names[i].c_str();
    st->kids[i].format = st->formats[i].c_str();
    if (st->dictionary[i]) {
      st->dicts[i].format = "u";
      st->kids[i].dictionary = &st->dicts[i];
    }
    st->kid_ptrs.push_back(&st->kids[i]);
  }
  *out = ArrowSchema{};
  out->format = "+s";
  out->n_children = static_cast<int64_t>(st->kids.size());
  out->children = st->kid_ptrs.data();
  out->private_data = st;
  out->release = [](ArrowSchema* sc) {
    ++static_cast<Stream*>(sc->private_data)->schema_releases;
    sc->release = nullptr;
  };
  return 0;
}

int get_next(ArrowArrayStream* s, ArrowArray* out) {
  auto* st = static_cast<Stream*>(s->private_data);
  *out = ArrowArray{};
  if (st->fail_after_first && st->next == 1) return 5;
  if (st->next >= st->batches.size()) return 0;
  *out = st->batches[st->next++]->top;
  out->private_data = st;
  out->release = [](ArrowArray* a) {
    ++static_cast<Stream*>(a->private_data)->released_batches;
    a->release = nullptr;
  };
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader in(data, size);
  const uint8_t head = in.byte(), batches = in.byte();
  const int n_cols = (head & 7) + 1;
  Stream st;
  st.fail_after_first = (batches & 4) != 0;
  TableSchema schema;
  schema.on_error = (head & 16) != 0 ? BadRowPolicy::Skip : BadRowPolicy::Error;
  for (int c = 0; c < n_cols; ++c) {
    const uint8_t f = in.byte() % 16;
    st.names.push_back("c" + std::to_string(c));
    st.formats.push_back(kFormats[f]);
    st.dictionary.push_back(f == 13 || f == 14);
    ColumnSpec col;
    col.name = st.names.back();
    col.type = static_cast<ColumnType>(in.byte() % 4);
    schema.columns.push_back(col);
  }
  if ((head & 32) != 0) schema.columns.push_back({"absent", ColumnType::Numeric});
  const std::string_view pool = in.rest();
  size_t at = 0;
  for (int b = 0; b < (batches & 3); ++b) build_batch(in, st, pool, at);

  ArrowArrayStream stream{};
  stream.get_schema = get_schema;
  stream.get_next = get_next;
  stream.get_last_error = [](ArrowArrayStream*) { return "synthetic failure"; };
  stream.release = [](ArrowArrayStream* s) {
    ++static_cast<Stream*>(s->private_data)->released_streams;
    s->release = nullptr;
  };
  stream.private_data = &st;
  const LabelMode mode = (head & 8) != 0 ? LabelMode::Optional : LabelMode::Required;
  int64_t records = 0;
  fuzz::expect_input_errors([&] {
    ArrowRecordReader reader(&stream, schema, mode, "fuzz");
    RowParser parser(schema, mode);
    PreprocessorFitter fitter(parser.schema(), PreprocessOptions{});
    Record rec;
    ParsedRow row;
    BadRowReport bad;
    while (reader.next(rec)) {
      ++records;
      if (parser.parse(rec, row, &bad)) fitter.add(row);
    }
    fuzz::check(reader.records_read() == records, "records_read counts the rows returned");
  });
  fuzz::check(stream.release == nullptr, "the reader took the stream over");
  fuzz::check(st.released_streams == 1, "the stream is released exactly once");
  fuzz::check(st.schema_releases <= 1, "the schema is released at most once");
  fuzz::check(st.released_batches == static_cast<int>(st.next),
              "every batch get_next gave is released exactly once");
  return 0;
}
