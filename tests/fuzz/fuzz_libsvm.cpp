// Fuzz target: libSVM / libFM sparse rows (host/data/libsvm.h) as the behaviour task reads
// them: read_libsvm, then densified to the train width (max index + 1, or a config's
// libsvm_features) with table_from_sparse, split into train and validation, and the same file
// read again as a test file for a model of half that width (wider features dropped).
//
// Input: 1 option byte, then the file's bytes.
//   bit 0  on_error skip
//   bit 1  a fixed width (libsvm_features) of 1 + the option byte's upper 6 bits, instead of the
//          max index + 1
// Invariants checked: the CSR arrays agree (offsets ascending from 0 to nnz, one label and line
// per row), indices are below the limit, dense rows have the width asked for, the narrow read
// keeps the features below its width as they were.
#include <algorithm>
#include <cstdint>

#include "host/data/encoded_table.h"
#include "host/data/libsvm.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;

void check_csr(const SparseTable& t) {
  fuzz::check(t.offsets.size() == static_cast<size_t>(t.rows()) + 1, "offsets: rows + 1");
  fuzz::check(t.offsets.front() == 0 && t.offsets.back() == t.nnz(), "offsets span the entries");
  fuzz::check(std::is_sorted(t.offsets.begin(), t.offsets.end()), "offsets ascend");
  fuzz::check(t.values.size() == t.indices.size(), "one value per index");
  fuzz::check(t.lines.size() == static_cast<size_t>(t.rows()), "one line per row");
  for (int64_t i : t.indices) {
    fuzz::check(i >= 0 && i < kLibSvmMaxFeatures && i <= t.max_index, "an index out of range");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::TempFile tmp("libsvm");
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const BadRowPolicy policy = (flags & 1) != 0 ? BadRowPolicy::Skip : BadRowPolicy::Error;
  const int64_t features = (flags & 2) != 0 ? 1 + (flags >> 2) : 0;
  const FileSpec file{tmp.write(in.rest()), 0};
  fuzz::expect_input_errors([&] {
    BadRowReport bad;
    const SparseTable train = read_libsvm(file, policy, &bad);
    check_csr(train);
    const int64_t width = features > 0 ? features : train.max_index + 1;
    const EncodedTable all = table_from_sparse(train, width, OutOfRangeFeature::Error);
    fuzz::check(all.dense.size() == static_cast<size_t>(all.rows * width), "dense rows x width");
    const TableSplit split = split_table(all, 0.25, 11);
    fuzz::check(split.train.rows + split.validation.rows == all.rows, "the split keeps every row");
    // As a test file for a model trained on half the width: the wider features are dropped.
    const int64_t narrow = width / 2;
    const EncodedTable test =
        table_from_sparse(read_libsvm(file, policy, &bad), narrow, OutOfRangeFeature::Drop);
    fuzz::check(
        test.rows == all.rows && test.n_dense == (narrow > 0 ? narrow : train.max_index + 1),
        "the test read has every row, at the train width");
    for (int64_t r = 0; r < train.rows() && narrow > 0; ++r) {
      for (int64_t k = train.offsets[r]; k < train.offsets[r + 1]; ++k) {
        const int64_t j = train.indices[k];
        if (j >= narrow) continue;
        fuzz::check(test.dense[r * narrow + j] == all.dense[r * width + j],
                    "a kept feature differs from the full-width table");
      }
    }
  });
  return 0;
}
