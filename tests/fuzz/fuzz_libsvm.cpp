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
// per row, one field per entry when the file has fields), indices are below the limit, dense rows
// have the width asked for, the narrow read keeps the features below its width as they were.
//
// The sparse route too (pipelines/behaviour/sparse_input.h), under its own limits: the block
// reader (blocks of 1 + the option byte's bits 2-4 rows) gives read_libsvm's rows, and the file's
// slots under a layout fitted on it (and under one of half its width) hold each row's distinct
// features, ascending, within the layout, padded with value 0.
#include <algorithm>
#include <cstdint>

#include "host/data/encoded_table.h"
#include "host/data/libsvm.h"
#include "pipelines/behaviour/sparse_input.h"
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
    fuzz::check(i >= 0 && i <= kLibSvmMaxSparseIndex && i <= t.max_index, "an index out of range");
  }
  fuzz::check(t.fields.size() == (t.has_fields ? t.indices.size() : 0), "one field per entry");
  for (int32_t f : t.fields) fuzz::check(f >= 0 && f <= t.max_field, "a field out of range");
}

// The slots of `file` under `layout`: every row's ids ascending and distinct within the layout,
// then padding (kSparsePaddingId); values beside them, or none when every value is 1.
void check_slots(const FileSpec& file, const behaviour::SparseLayout& layout, BadRowPolicy policy,
                 int64_t rows) {
  int64_t dropped = 0;
  BadRowReport bad;
  const EncodedTable t = behaviour::load_sparse(file, layout, policy, &bad, &dropped);
  fuzz::check(t.rows == rows, "the slots have every row");
  fuzz::check((t.n_dense == 0 || t.n_cat == t.n_dense) &&
                  t.cat.size() == static_cast<size_t>(t.rows * t.n_cat) &&
                  t.dense.size() == static_cast<size_t>(t.rows * t.n_dense),
              "slots: ids and values of one width");
  for (int64_t r = 0; r < t.rows; ++r) {
    const int64_t* id = t.cat.data() + r * t.n_cat;
    int64_t used = t.n_cat;  // the slots before the padding
    while (used > 0 && id[used - 1] == behaviour::kSparsePaddingId) --used;
    for (int64_t k = 0; k < used; ++k) {
      fuzz::check(id[k] >= 0 && id[k] < layout.total_rows(), "a slot id outside the layout");
      fuzz::check(k == 0 || id[k] > id[k - 1], "a row's ids ascend, each once");
    }
  }
}

// The sparse route: blocks, then slots under the fitted layout and under a narrower one.
void check_sparse(const FileSpec& file, BadRowPolicy policy, int64_t block_rows) {
  LibSvmReadOptions o;
  o.on_error = policy;
  o.max_index = kLibSvmMaxSparseIndex;
  const SparseTable all = read_libsvm(file, o);
  check_csr(all);
  LibSvmReader reader(file, o);
  SparseTable block;
  int64_t rows = 0, nnz = 0;
  while (reader.next_block(block, block_rows)) {
    check_csr(block);
    fuzz::check(block.rows() <= block_rows, "a block within its rows");
    for (int64_t r = 0; r < block.rows(); ++r)
      fuzz::check(block.lines[r] == all.lines[rows + r], "blocks read the same rows");
    for (int64_t k = 0; k < block.nnz(); ++k)
      fuzz::check(
          block.indices[k] == all.indices[nnz + k] && block.values[k] == all.values[nnz + k],
          "blocks read the same entries");
    rows += block.rows();
    nnz += block.nnz();
  }
  fuzz::check(rows == all.rows() && nnz == all.nnz(), "blocks read every row");
  behaviour::SparseLayout layout;
  layout.fields = all.has_fields;
  const int64_t tables = all.has_fields ? all.max_field + 1 : 1;
  layout.table_rows.assign(static_cast<size_t>(std::max<int64_t>(tables, 1)), 1);
  for (int64_t k = 0; k < all.nnz(); ++k) {
    int64_t& n = layout.table_rows[all.has_fields ? all.fields[k] : 0];
    n = std::max(n, all.indices[k] + 1);
  }
  check_slots(file, layout, policy, all.rows());
  for (int64_t& n : layout.table_rows) n = std::max<int64_t>(1, n / 2);
  check_slots(file, layout, policy, all.rows());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::TempFile tmp("libsvm");
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const BadRowPolicy policy = (flags & 1) != 0 ? BadRowPolicy::Skip : BadRowPolicy::Error;
  const int64_t features = (flags & 2) != 0 ? 1 + (flags >> 2) : 0;
  const FileSpec file{tmp.write(in.rest()), 0};
  fuzz::expect_input_errors([&] { check_sparse(file, policy, 1 + ((flags >> 2) & 7)); });
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
