#include "pipelines/behaviour/sparse_input.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "host/core/error.h"

namespace tessera::behaviour {

namespace {

constexpr int64_t kBlockRows = 8192;
constexpr int64_t kPaddingId = kSparsePaddingId;

// Every entry a row may name is read; the layout decides what fits (fit_layout, row_entries).
LibSvmReadOptions read_options(BadRowPolicy policy) {
  LibSvmReadOptions o;
  o.on_error = policy;
  o.max_index = kLibSvmMaxSparseIndex;
  o.limit_reason.clear();
  return o;
}

int64_t line_of(const SparseTable& t, int64_t r) {
  return r < static_cast<int64_t>(t.lines.size()) ? t.lines[static_cast<size_t>(r)] : r + 1;
}

// Row r of a block as (global id, value), one per feature (a repeated feature keeps its last
// value), ascending by id. Entries outside the layout are dropped (counted in *dropped), or are
// an Error(Data) naming file and line when dropped is null.
void row_entries(const SparseTable& t, int64_t r, const SparseLayout& layout,
                 const std::vector<int64_t>& offsets, std::vector<std::pair<int64_t, float>>& out,
                 int64_t* dropped) {
  out.clear();
  for (int64_t k = t.offsets[r]; k < t.offsets[r + 1]; ++k) {
    const int64_t table = t.has_fields ? t.fields[static_cast<size_t>(k)] : 0;
    const int64_t idx = t.indices[static_cast<size_t>(k)];
    if (t.has_fields != layout.fields || table >= layout.tables() ||
        idx >= layout.table_rows[static_cast<size_t>(table)]) {
      if (dropped != nullptr) {
        ++*dropped;
        continue;
      }
      if (t.has_fields != layout.fields)
        TESSERA_THROW(Data, t.path << ":" << line_of(t, r) << ": entries "
                                   << (t.has_fields ? "with" : "without")
                                   << " fields, for a model whose input has "
                                   << (layout.fields ? "fields" : "none"));
      TESSERA_THROW(Data, t.path << ":" << line_of(t, r) << ": "
                                 << (t.has_fields ? "field " + std::to_string(table) + " " : "")
                                 << "feature " << idx << " is outside the "
                                 << (table >= layout.tables()
                                         ? std::to_string(layout.tables()) + " fields"
                                         : std::to_string(layout.table_rows[table]) + " features")
                                 << " of data.libsvm_" << (layout.fields ? "field_" : "")
                                 << "features");
    }
    out.emplace_back(offsets[static_cast<size_t>(table)] + idx, t.values[static_cast<size_t>(k)]);
  }
  // Stable: of a repeated id, the last written stays last; keep it.
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t w = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (i + 1 < out.size() && out[i + 1].first == out[i].first) continue;
    out[w++] = out[i];
  }
  out.resize(w);
}

// What the first pass over a file finds.
struct Scan {
  int64_t rows = 0;
  int64_t slots = 0;             // the most entries of a row
  bool fields = false;           // the file's entries carry fields
  bool unit = true;              // every value is 1: the slots need no values
  std::vector<int64_t> max_idx;  // per field (or [0]) the largest index; -1: none
};

// The first pass: widths and the widest row. With `layout` (a model's, or configured sizes), the
// widest row counts only what fits (drop: the rest is dropped, else an error).
Scan scan_file(const FileSpec& file, BadRowPolicy policy, const SparseLayout* layout, bool drop) {
  Scan s;
  LibSvmReader reader(file, read_options(policy), nullptr);
  SparseTable block;
  std::vector<std::pair<int64_t, float>> entries;
  std::vector<int64_t> keys;
  std::vector<int64_t> offsets = layout != nullptr ? layout->offsets() : std::vector<int64_t>{};
  int64_t dropped = 0;
  while (reader.next_block(block, kBlockRows)) {
    s.rows += block.rows();
    s.fields = block.has_fields;
    for (float v : block.values) s.unit = s.unit && v == 1.f;
    const size_t tables = block.has_fields ? static_cast<size_t>(block.max_field + 1) : 1;
    if (s.max_idx.size() < tables) s.max_idx.resize(tables, -1);
    for (int64_t k = 0; k < block.nnz(); ++k) {
      int64_t& m = s.max_idx[block.has_fields ? block.fields[static_cast<size_t>(k)] : 0];
      m = std::max(m, block.indices[static_cast<size_t>(k)]);
    }
    for (int64_t r = 0; r < block.rows(); ++r) {
      if (layout != nullptr) {
        row_entries(block, r, *layout, offsets, entries, drop ? &dropped : nullptr);
        s.slots = std::max<int64_t>(s.slots, static_cast<int64_t>(entries.size()));
      } else {  // distinct (field, feature) pairs: a repeated one takes one slot
        keys.clear();
        for (int64_t k = block.offsets[r]; k < block.offsets[r + 1]; ++k)
          keys.push_back(
              (block.has_fields ? int64_t{block.fields[static_cast<size_t>(k)]} << 31 : 0) +
              block.indices[static_cast<size_t>(k)]);
        std::sort(keys.begin(), keys.end());
        s.slots = std::max<int64_t>(s.slots, std::unique(keys.begin(), keys.end()) - keys.begin());
      }
    }
  }
  return s;
}

// The layout of the training file's scan, or the configured sizes.
SparseLayout fit_layout(const BehaviourDataConfig& d, const FileSpec& train, const Scan& s) {
  SparseLayout l;
  l.fields = s.fields;
  if (!s.fields && !d.libsvm_field_features.empty())
    TESSERA_THROW(Data, train.path << ": data.libsvm_field_features sizes fields, and the rows "
                                      "have none (index:value): use data.libsvm_features");
  if (s.fields && d.schema.libsvm_features > 0)
    TESSERA_THROW(Data, train.path << ": the rows have fields (field:index:value): size their "
                                      "tables with data.libsvm_field_features, not "
                                      "data.libsvm_features");
  if (!s.fields) {
    const int64_t width = d.schema.libsvm_features > 0 ? d.schema.libsvm_features
                                                       : (s.max_idx.empty() ? 0 : s.max_idx[0] + 1);
    if (width > kLibSvmMaxFeatures)
      TESSERA_THROW(Data, train.path << ": feature index " << width - 1 << " is above the limit "
                                     << kLibSvmMaxFeatures - 1
                                     << " of libSVM rows without fields; write fields "
                                        "(field:index:value) to use wider data");
    if (width < 1) TESSERA_THROW(Data, train.path << ": no row has a feature");
    l.table_rows = {width};
    return l;
  }
  if (!d.libsvm_field_features.empty()) {
    l.table_rows.assign(d.libsvm_field_features.begin(), d.libsvm_field_features.end());
    return l;
  }
  for (size_t f = 0; f < s.max_idx.size(); ++f) {
    // A field no row names still gets a table (of one row), so field numbers stay table numbers.
    l.table_rows.push_back(std::max<int64_t>(1, s.max_idx[f] + 1));
  }
  return l;
}

// Writes rows [0, n) of `block` into slots of width `width` of the tables chosen by `part`
// (nullptr: all into *outs[0]; else part[row ordinal] picks outs[0] or outs[1]).
struct SlotWriter {
  const SparseLayout& layout;
  std::vector<int64_t> offsets;
  int64_t width;
  bool unit;         // ids only (every value 1)
  int64_t* dropped;  // nullptr: an entry outside the layout is an error
  std::vector<std::pair<int64_t, float>> entries;

  void append(const SparseTable& block, int64_t r, EncodedTable& out) {
    row_entries(block, r, layout, offsets, entries, dropped);
    for (int64_t k = 0; k < width; ++k) {
      const bool used = k < static_cast<int64_t>(entries.size());
      out.cat.push_back(used ? entries[static_cast<size_t>(k)].first : kPaddingId);
      if (!unit) out.dense.push_back(used ? entries[static_cast<size_t>(k)].second : 0.f);
    }
    out.labels.push_back(block.labels[static_cast<size_t>(r)]);
    out.lines.push_back(line_of(block, r));
    ++out.rows;
  }
};

EncodedTable empty_table(int64_t width, bool unit) {
  EncodedTable t;
  t.n_dense = unit ? 0 : width;
  t.n_cat = width;
  t.has_labels = true;
  return t;
}

// The second pass: every good row of `file` into `outs` (see SlotWriter), with *bad the bad rows.
void fill_file(const FileSpec& file, BadRowPolicy policy, BadRowReport* bad, SlotWriter& w,
               const std::vector<uint8_t>* part, EncodedTable* outs[2], int64_t rows) {
  for (int i = 0; i < (part != nullptr ? 2 : 1); ++i) {
    if (!w.unit) outs[i]->dense.reserve(static_cast<size_t>(rows * w.width));
    outs[i]->cat.reserve(static_cast<size_t>(rows * w.width));
  }
  LibSvmReader reader(file, read_options(policy), bad);
  SparseTable block;
  int64_t ordinal = 0;
  while (reader.next_block(block, kBlockRows)) {
    for (int64_t r = 0; r < block.rows(); ++r, ++ordinal) {
      const int which = part != nullptr ? (*part)[static_cast<size_t>(ordinal)] : 0;
      w.append(block, r, *outs[which]);
    }
  }
}

EncodedTable load_with(const FileSpec& file, const SparseLayout& layout, BadRowPolicy policy,
                       BadRowReport* bad, int64_t* dropped) {
  const Scan s = scan_file(file, policy, &layout, /*drop=*/true);
  EncodedTable t = empty_table(s.slots, s.unit);
  int64_t ignored = 0;
  SlotWriter w{layout, layout.offsets(), s.slots, s.unit, dropped != nullptr ? dropped : &ignored,
               {}};
  EncodedTable* outs[2] = {&t, nullptr};
  fill_file(file, policy, bad, w, nullptr, outs, s.rows);
  return t;
}

}  // namespace

std::vector<int64_t> SparseLayout::offsets() const {
  std::vector<int64_t> o;
  int64_t at = 0;
  for (int64_t rows : table_rows) {
    o.push_back(at);
    at += rows;
  }
  return o;
}

int64_t SparseLayout::total_rows() const {
  int64_t n = 0;
  for (int64_t rows : table_rows) n += rows;
  return n;
}

SparseLayout sparse_layout(const BehaviourConfig& c, int64_t width) {
  SparseLayout l;
  if (!has_sparse_layout(c) && width > 0) {
    l.table_rows = {width};
    return l;
  }
  if (!c.data.libsvm_field_features.empty()) {
    l.fields = true;
    l.table_rows.assign(c.data.libsvm_field_features.begin(), c.data.libsvm_field_features.end());
    return l;
  }
  if (c.data.schema.libsvm_features < 1)
    TESSERA_THROW(Config,
                  "a libSVM model's config names no feature width (data.libsvm_features "
                  "or data.libsvm_field_features): it is written when training reads "
                  "the rows");
  l.table_rows = {c.data.schema.libsvm_features};
  return l;
}

bool has_sparse_layout(const BehaviourConfig& c) {
  return !c.data.libsvm_field_features.empty() || c.data.schema.libsvm_features > 0;
}

void record_layout(BehaviourConfig& c, const SparseLayout& l) {
  if (l.fields) {
    c.data.libsvm_field_features.assign(l.table_rows.begin(), l.table_rows.end());
  } else {
    TESSERA_CHECK(l.tables() == 1, "a layout without fields has " << l.tables() << " tables");
    c.data.schema.libsvm_features = static_cast<int>(l.table_rows[0]);
    c.data.libsvm_field_features.clear();
  }
}

SparseRows prepare_sparse(const BehaviourDataConfig& d, const FileSpec& train,
                          const FileSpec* validation, const FileSpec* test, uint64_t seed) {
  const BadRowPolicy policy = d.schema.on_error;
  SparseRows out;
  const Scan s = scan_file(train, policy, nullptr, false);
  out.layout = fit_layout(d, train, s);
  int64_t slots = s.slots;
  if (!d.libsvm_field_features.empty() || d.schema.libsvm_features > 0)
    slots = scan_file(train, policy, &out.layout, /*drop=*/false).slots;  // checks the sizes
  SlotWriter w{out.layout, out.layout.offsets(), slots, s.unit, nullptr, {}};
  out.train = empty_table(slots, s.unit);
  out.validation = empty_table(slots, s.unit);
  EncodedTable* outs[2] = {&out.train, &out.validation};
  if (validation != nullptr) {
    fill_file(train, policy, &out.train_rep.bad_rows, w, nullptr, outs, s.rows);
    out.validation =
        load_with(*validation, out.layout, policy, &out.val_rep.bad_rows, &out.dropped);
  } else {
    if (!(d.validation_fraction >= 0.0 && d.validation_fraction <= 1.0))
      TESSERA_THROW(Config, "validation fraction must be in [0, 1], got " << d.validation_fraction);
    // split_table()'s rows exactly, without holding the rows twice.
    const int64_t n_val = std::llround(static_cast<double>(s.rows) * d.validation_fraction);
    const std::vector<int64_t> perm = seeded_permutation(s.rows, seed);
    std::vector<uint8_t> part(static_cast<size_t>(s.rows), 0);
    for (int64_t i = 0; i < n_val; ++i) part[static_cast<size_t>(perm[i])] = 1;
    fill_file(train, policy, &out.train_rep.bad_rows, w, &part, outs, s.rows);
  }
  if (test != nullptr)
    out.test = load_with(*test, out.layout, policy, &out.test_rep.bad_rows, &out.dropped);
  return out;
}

EncodedTable load_sparse(const FileSpec& file, const SparseLayout& layout, BadRowPolicy policy,
                         BadRowReport* bad, int64_t* dropped) {
  return load_with(file, layout, policy, bad, dropped);
}

SparseBatchStream::SparseBatchStream(const FileSpec& file, SparseLayout layout, BadRowPolicy policy,
                                     int64_t batch_rows)
    : layout_(std::move(layout)),
      offsets_(layout_.offsets()),
      reader_(file, read_options(policy), &bad_),
      batch_rows_(batch_rows) {
  TESSERA_CHECK(batch_rows > 0, "batch rows " << batch_rows);
}

bool SparseBatchStream::next(Batch& out) {
  if (!reader_.next_block(block_, batch_rows_)) return false;
  std::vector<std::vector<std::pair<int64_t, float>>> rows(static_cast<size_t>(block_.rows()));
  int64_t width = 0;
  for (int64_t r = 0; r < block_.rows(); ++r) {
    row_entries(block_, r, layout_, offsets_, rows[static_cast<size_t>(r)], &dropped_);
    width = std::max<int64_t>(width, static_cast<int64_t>(rows[static_cast<size_t>(r)].size()));
  }
  const int64_t b = block_.rows();
  out = Batch();
  out.rows = b;
  out.dense = Tensor::host({b, width});
  out.cat = Tensor::host({b, width}, DType::I64);
  out.labels = Tensor::host({b});
  std::fill_n(out.dense.data<float>(), b * width, 0.f);
  std::fill_n(out.cat.data<int64_t>(), b * width, kPaddingId);
  for (int64_t r = 0; r < b; ++r) {
    const auto& e = rows[static_cast<size_t>(r)];
    for (size_t k = 0; k < e.size(); ++k) {
      out.cat.data<int64_t>()[r * width + static_cast<int64_t>(k)] = e[k].first;
      out.dense.data<float>()[r * width + static_cast<int64_t>(k)] = e[k].second;
    }
    out.labels.data<float>()[r] = block_.labels[static_cast<size_t>(r)];
  }
  out.lines = block_.lines;
  out.index = batches_++;
  return true;
}

void SparseBatchStream::seek(int64_t, int64_t) {
  TESSERA_THROW(Usage, "a libSVM file is scored in one pass, in order: it cannot seek");
}

emb::Bags slot_bags(Backend& backend, const Tensor& values, const Tensor& ids,
                    const SparseLayout& layout, bool one_table) {
  const Tensor v = values.is_host() ? values : backend.to_host(values);
  const Tensor c = ids.is_host() ? ids : backend.to_host(ids);
  TESSERA_CHECK(v.rank() == 2 && c.rank() == 2 && v.dim(0) == c.dim(0) &&
                    (v.dim(1) == c.dim(1) || v.dim(1) == 0) && v.dtype() == DType::F32 &&
                    c.dtype() == DType::I64,
                "sparse slots: values " << v.describe() << " and ids " << c.describe());
  const int64_t b = c.dim(0), s = c.dim(1);
  const bool unit = v.dim(1) == 0 && s > 0;  // ids only: every weight 1
  const std::vector<int64_t> offsets = one_table ? std::vector<int64_t>{0} : layout.offsets();
  const int64_t nt = static_cast<int64_t>(offsets.size());
  const int64_t total = layout.total_rows();
  const float* vp = unit ? nullptr : v.data<float>();
  const int64_t* cp = c.data<int64_t>();
  // A slot takes part unless it is padding (or a 0, which adds nothing).
  auto used = [&](int64_t i) { return cp[i] != kPaddingId && (unit || vp[i] != 0.f); };
  auto table_of = [&](int64_t id) {
    TESSERA_CHECK(id >= 0 && id < total,
                  "sparse slot id " << id << " outside the model's " << total << " feature rows");
    return static_cast<int64_t>(std::upper_bound(offsets.begin(), offsets.end(), id) -
                                offsets.begin()) -
           1;
  };
  std::vector<int64_t> count(static_cast<size_t>(nt * b + 1), 0);
  for (int64_t r = 0; r < b; ++r)
    for (int64_t k = 0; k < s; ++k)
      if (used(r * s + k)) ++count[static_cast<size_t>(table_of(cp[r * s + k]) * b + r + 1)];
  for (size_t i = 1; i < count.size(); ++i) count[i] += count[i - 1];
  const int64_t nnz = count.back();
  emb::Bags bags;
  bags.batch = b;
  bags.offsets = Tensor::host({nt * b + 1}, DType::I64);
  bags.indices = Tensor::host({nnz}, DType::I64);
  if (!unit) bags.weights = Tensor::host({nnz});
  std::copy(count.begin(), count.end(), bags.offsets.data<int64_t>());
  for (int64_t r = 0; r < b; ++r)
    for (int64_t k = 0; k < s; ++k) {
      if (!used(r * s + k)) continue;
      const int64_t id = cp[r * s + k], t = table_of(id);
      const int64_t at = count[static_cast<size_t>(t * b + r)]++;
      bags.indices.data<int64_t>()[at] = id - offsets[static_cast<size_t>(t)];
      if (!unit) bags.weights.data<float>()[at] = vp[r * s + k];
    }
  return bags;
}

}  // namespace tessera::behaviour
