// Fuzz target: the Criteo layout (host/data/criteo.h) as the behaviour task reads it: label,
// I1..I13 (log1p), C1..C26, empty fields missing; fitted and encoded like any delimited table
// (tests/fuzz/table_checks.h).
//
// Input: 1 option byte, then the file's bytes.
//   bit 0  the derived-sample layout (comma separated, header "label,I1,...,C26") instead of
//          the original (tab separated, no header)
//   bit 1  on_error skip
//   bit 2  hashed categoricals (1000 buckets, as the DLRM configs use) instead of vocabularies
//   bit 3  min_count 2
//   bit 4  scoring (the label column may be absent)
#include <cstdint>

#include "host/data/criteo.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/table_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static fuzz::TempFile tmp("criteo");
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const bool sample_layout = (flags & 1) != 0;
  TableSchema schema = sample_layout ? criteo_schema(',', true) : criteo_schema('\t', false);
  schema.on_error = (flags & 2) != 0 ? BadRowPolicy::Skip : BadRowPolicy::Error;
  PreprocessOptions options;
  options.categorical.hash_buckets = (flags & 4) != 0 ? 1000 : 0;
  options.categorical.min_count = (flags & 8) != 0 ? 2 : 1;
  const LabelMode label = (flags & 16) != 0 ? LabelMode::Optional : LabelMode::Required;
  const FileSpec file{tmp.write(in.rest()), 0};
  fuzz::expect_input_errors([&] { fuzz::fit_and_encode(file, schema, options, label); });
  return 0;
}
