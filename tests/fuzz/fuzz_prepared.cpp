// Fuzz target: the prepared data format's readers (host/data/prepared_format.h), as
// PreparedDataset::open uses them on the files of a prepared dataset directory.
//
// Input: 1 option byte, then the file's bytes.
//   bit 0 = 0  manifest.json: PreparedManifest::parse, then the fitted preprocessor it holds
//              (Preprocessor::from_json_string), as open() reads them
//   bit 0 = 1  a shard file: parse_shard_header over the bytes, then every column's bytes read
// Seeds: manifest.json and a shard (train-00000.tshard) that `tessera prep` wrote for a 12-row
// csv (2 numeric, 2 categorical columns, validation_fraction 0.25) and a Criteo-layout one.
// Invariants checked: a parsed manifest writes back to JSON that parses to the same JSON (its
// counts and files as read); a parsed shard header's columns lie inside the input, in order,
// 64-byte aligned, each rows x width x type size bytes.
#include <cstdint>
#include <string>

#include "host/data/prepared_format.h"
#include "host/data/preprocessor.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;

void manifest(const std::string& text) {
  fuzz::expect_input_errors([&] {
    // parse_text: the manifest alone (a "preprocessor_file" it names is not read from disk here).
    const PreparedManifest m = PreparedManifest::parse_text(text, "manifest.json");
    const std::string once = m.to_json();
    const PreparedManifest again =
        PreparedManifest::parse_text(once, "manifest.json (written back)");
    fuzz::check(again.to_json() == once, "manifest JSON round trip");
    fuzz::check(static_cast<int64_t>(m.columns.size()) == m.n_cat + 3, "column count");
    if (!m.preprocessor_json.empty()) Preprocessor::from_json_string(m.preprocessor_json);
  });
}

void shard(const uint8_t* data, size_t size) {
  fuzz::expect_input_errors([&] {
    const ShardHeader h = parse_shard_header(data, size, "shard");
    uint64_t previous_end = 0;
    uint32_t sum = 0;
    for (const ShardColumn& c : h.columns) {
      fuzz::check(c.offset % 64 == 0 && c.offset >= previous_end, "column offsets");
      fuzz::check(c.offset <= size && c.bytes <= size - c.offset, "column inside the file");
      fuzz::check(c.bytes == h.rows * c.width * prepared_type_size(c.type), "column bytes");
      for (uint64_t i = 0; i < c.bytes; ++i) sum += data[c.offset + i];  // ASan: in bounds
      previous_end = c.offset + c.bytes;
    }
    fuzz::check(sum <= 255u * size, "column bytes read");
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader in(data, size);
  const bool is_shard = in.flag();
  const std::string_view rest = in.rest();
  if (is_shard)
    shard(reinterpret_cast<const uint8_t*>(rest.data()), rest.size());
  else
    manifest(std::string(rest));
  return 0;
}
