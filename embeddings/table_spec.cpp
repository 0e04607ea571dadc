#include "embeddings/table_spec.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "host/core/error.h"

namespace tessera::emb {

const char* pooling_name(Pooling p) {
  return p == Pooling::Sum ? "sum" : "mean";
}
const char* id_policy_name(IdPolicy p) {
  return p == IdPolicy::Error ? "error" : "warn_clamp";
}
const char* id_mapping_name(IdMapping m) {
  return m == IdMapping::Direct ? "direct" : "hash";
}

TableLayout::TableLayout(std::vector<TableSpec> specs) : specs_(std::move(specs)) {
  TESSERA_CHECK(!specs_.empty(), "an embedding collection needs at least one table");
  std::set<std::string> names;
  for (size_t t = 0; t < specs_.size(); ++t) {
    const TableSpec& s = specs_[t];
    if (s.name.empty()) TESSERA_THROW(Config, "embedding table #" << t << " has no name");
    if (!names.insert(s.name).second)
      TESSERA_THROW(Config, "embedding table #" << t << ": name '" << s.name << "' is used twice");
    if (s.rows <= 0)
      TESSERA_THROW(Config, "embedding table '" << s.name << "' (#" << t
                                                << "): rows must be > 0, got " << s.rows);
    if (s.dim <= 0)
      TESSERA_THROW(Config, "embedding table '" << s.name << "' (#" << t
                                                << "): dim must be > 0, got " << s.dim);
    // rows x dim over all tables, with up to two optimizer copies, in bytes, must fit an int64.
    constexpr int64_t kMaxElements = int64_t{1} << 58;
    if (s.rows > (kMaxElements - weight_offset_.back()) / s.dim)
      TESSERA_THROW(Config, "embedding table '" << s.name << "' (#" << t << "): " << s.rows
                                                << " rows x dim " << s.dim
                                                << " is beyond any machine's memory");
    row_offset_.push_back(row_offset_.back() + s.rows);
    weight_offset_.push_back(weight_offset_.back() + s.rows * s.dim);
    out_offset_.push_back(out_offset_.back() + s.dim);
    max_dim_ = std::max(max_dim_, s.dim);
    const int64_t fields[kMetaFields] = {s.rows,
                                         s.dim,
                                         row_offset_[t],
                                         weight_offset_[t],
                                         out_offset_[t],
                                         static_cast<int64_t>(s.pooling),
                                         static_cast<int64_t>(s.id_policy),
                                         static_cast<int64_t>(s.id_mapping)};
    meta_.insert(meta_.end(), fields, fields + kMetaFields);
  }
}

int64_t TableLayout::table_of_key(int64_t key) const {
  TESSERA_CHECK(key >= 0 && key < total_rows(),
                "global row " << key << " outside [0, " << total_rows() << ")");
  auto it = std::upper_bound(row_offset_.begin(), row_offset_.end(), key);
  return static_cast<int64_t>(it - row_offset_.begin()) - 1;
}

int64_t TableLayout::element_offset(int64_t key) const {
  const int64_t t = table_of_key(key);
  return weight_offset_[t] + (key - row_offset_[t]) * specs_[t].dim;
}

std::string TableLayout::table_label(int64_t t) const {
  std::ostringstream os;
  os << "table '" << spec(t).name << "' (#" << t << ")";
  return os.str();
}

}  // namespace tessera::emb
