#pragma once
// Table specifications and the table-batched layout of an embedding collection.
//
// All tables of a collection live in one flat f32 buffer (FBGEMM's TBE layout): table t owns
// elements [weight_offset[t], weight_offset[t+1]) = rows[t] * dim[t] floats, row-major. A "global
// row" (key) numbers the rows of every table one after another: key = row_offset[t] + local row.
// A batch's pooled output is [B, out_dim] with table t in columns [out_offset[t], out_offset[t+1]).
// All offsets are 64-bit.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::emb {

// How a bag's rows are combined: the (weighted) sum, or that sum divided by the bag's length.
enum class Pooling : uint8_t { Sum = 0, Mean = 1 };
// What an id outside [0, rows) does (ids of a hashed table are never out of range):
//   Error      throw Error(Data) naming the table, the sample, the index position and the id;
//   WarnClamp  warn once per table (stderr), clamp to [0, rows - 1], and count it.
enum class IdPolicy : uint8_t { Error = 0, WarnClamp = 1 };
// Direct: the id is the row. Hash: any int64 raw id maps to math::mix64(id) % rows.
enum class IdMapping : uint8_t { Direct = 0, Hash = 1 };

const char* pooling_name(Pooling p);
const char* id_policy_name(IdPolicy p);
const char* id_mapping_name(IdMapping m);

struct TableSpec {
  std::string name;
  int64_t rows = 0;
  int64_t dim = 0;
  Pooling pooling = Pooling::Sum;
  IdPolicy id_policy = IdPolicy::Error;
  IdMapping id_mapping = IdMapping::Direct;
};

// The per-table integer fields a kernel needs, packed as int64 so one device array carries them:
// meta[t * kMetaFields + field].
enum MetaField : int {
  kMetaRows = 0,
  kMetaDim = 1,
  kMetaRowOffset = 2,
  kMetaWeightOffset = 3,
  kMetaOutOffset = 4,
  kMetaPooling = 5,
  kMetaPolicy = 6,
  kMetaMapping = 7,
  kMetaFields = 8
};

class TableLayout {
 public:
  TableLayout() = default;
  // Validates every spec (positive rows and dim, unique non-empty names); the error names the
  // table by index and name.
  explicit TableLayout(std::vector<TableSpec> specs);

  int64_t num_tables() const { return static_cast<int64_t>(specs_.size()); }
  const TableSpec& spec(int64_t t) const { return specs_.at(static_cast<size_t>(t)); }
  const std::vector<TableSpec>& specs() const { return specs_; }
  int64_t row_offset(int64_t t) const { return row_offset_[static_cast<size_t>(t)]; }
  int64_t weight_offset(int64_t t) const { return weight_offset_[static_cast<size_t>(t)]; }
  int64_t out_offset(int64_t t) const { return out_offset_[static_cast<size_t>(t)]; }
  int64_t total_rows() const { return row_offset_.back(); }
  int64_t total_elements() const { return weight_offset_.back(); }
  int64_t out_dim() const { return out_offset_.back(); }
  int64_t max_dim() const { return max_dim_; }
  // The table owning global row `key` (binary search over row offsets).
  int64_t table_of_key(int64_t key) const;
  // Element offset of global row `key` in the flat buffer.
  int64_t element_offset(int64_t key) const;
  // [T * kMetaFields] for the kernels.
  const std::vector<int64_t>& meta() const { return meta_; }
  // "table 'name' (#t)" for messages.
  std::string table_label(int64_t t) const;

 private:
  std::vector<TableSpec> specs_;
  std::vector<int64_t> row_offset_{0};     // [T + 1]
  std::vector<int64_t> weight_offset_{0};  // [T + 1]
  std::vector<int64_t> out_offset_{0};     // [T + 1]
  std::vector<int64_t> meta_;
  int64_t max_dim_ = 0;
};

}  // namespace tessera::emb
