#pragma once
// libSVM / libFM input for the behaviour models, kept sparse (host/data/libsvm.h reads the rows).
//
// The feature tables. Without fields (libSVM, "index:value"): one table whose row i is feature i,
// as many rows as data.libsvm_features (0 in the config: the largest index on train + 1). With
// fields (libFM, "field:index:value"): one table per field, field f's feature i its row i, as many
// rows as data.libsvm_field_features[f] (empty in the config: fitted on train). Training writes
// the fitted sizes into its config, so the model file records what the training read. A global
// id numbers the rows of every table one after another (table f's first row at offsets()[f]).
//
// The rows as the models see them (an EncodedTable or a Batch): S slots per row (S = the most
// entries of any row of that file, so widths differ between files), slot k holding an entry's
// global id in cat[r, k] and its value in dense[r, k]; a row with fewer entries is padded with
// id kSparsePaddingId (value 0), which every model skips, as it skips a value of 0 (which adds
// nothing to x W). A file whose values are all 1 (one-hot data, libFM CTR rows) keeps no values:
// dense is [rows, 0]. Memory is rows x S x 12 bytes (8 when every value is 1), never rows x
// features. A feature repeated in a row keeps its last value (as densifying did); an entry outside
// its table (a test file wider than train) is dropped and counted, on train it is an error naming
// file and line when the sizes were configured.
//
// Bad rows follow data.on_error with the reader's file:line:token messages.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "embeddings/bag_ops.h"
#include "host/data/batch_source.h"
#include "host/data/batcher.h"
#include "host/data/encoded_table.h"
#include "host/data/libsvm.h"
#include "pipelines/behaviour/behaviour_config.h"

namespace tessera::behaviour {

inline constexpr int64_t kSparsePaddingId = -1;

struct SparseLayout {
  bool fields = false;
  std::vector<int64_t> table_rows;  // fields: one per field; else one, the feature width

  int64_t tables() const { return static_cast<int64_t>(table_rows.size()); }
  std::vector<int64_t> offsets() const;  // [tables()] the first global id of each table
  int64_t total_rows() const;
};

// The layout a config records (after training: always resolved). A config without one (before
// training fitted it, or a model file of the densified reader, which recorded only its width in
// the model's spec) gets one table of `width` rows when width > 0, else an Error(Config).
SparseLayout sparse_layout(const BehaviourConfig& config, int64_t width = 0);
bool has_sparse_layout(const BehaviourConfig& config);
// Writes `layout` into the config's data.libsvm_features / libsvm_field_features.
void record_layout(BehaviourConfig& config, const SparseLayout& layout);

struct SparseRows {
  EncodedTable train, validation, test;
  LoadReport train_rep, val_rep, test_rep;
  SparseLayout layout;
  int64_t dropped = 0;  // entries of validation / test rows outside their table
};

// Training's rows: the layout fitted on `train` (or taken from data.libsvm_features /
// libsvm_field_features), the validation rows from `validation` or, when null, split from train
// exactly as split_table() would (round(rows * fraction) rows by seeded_permutation(rows, seed)),
// and `test` when given. Each file is read twice (its widest row, then the rows), a block at a
// time.
SparseRows prepare_sparse(const BehaviourDataConfig& data, const FileSpec& train,
                          const FileSpec* validation, const FileSpec* test, uint64_t seed);

// A whole file of a trained model's input (tessera evaluate), with entries outside the model's
// tables dropped (counted in *dropped when given).
EncodedTable load_sparse(const FileSpec& file, const SparseLayout& layout, BadRowPolicy policy,
                         BadRowReport* bad, int64_t* dropped = nullptr);

// One pass over a file in batches of up to batch_rows rows, in file order, a batch in memory at a
// time (tessera predict). Labels are optional: a row's label is read when written.
class SparseBatchStream final : public BatchSource {
 public:
  SparseBatchStream(const FileSpec& file, SparseLayout layout, BadRowPolicy policy,
                    int64_t batch_rows);
  bool next(Batch& out) override;
  int64_t batches_per_epoch() const override { return 0; }
  void seek(int64_t epoch, int64_t batch) override;
  const BadRowReport& bad_rows() const { return bad_; }
  int64_t dropped() const { return dropped_; }

 private:
  BadRowReport bad_;
  SparseLayout layout_;
  std::vector<int64_t> offsets_;
  LibSvmReader reader_;
  SparseTable block_;
  int64_t batch_rows_;
  int64_t batches_ = 0;
  int64_t dropped_ = 0;
};

// A batch's slots (values f32 [B, S] or [B, 0] when every value is 1, global ids i64 [B, S], host
// or backend) as bags of the layout's tables, table-major (bag t * B + s: sample s's entries of
// table t), ids local to their table, values as the per-sample weights (none when [B, 0]), padding
// and values of 0 left out. `one_table`: every id a
// row of one table of total_rows() (the MLP's first layer), ids kept global.
emb::Bags slot_bags(Backend& backend, const Tensor& values, const Tensor& ids,
                    const SparseLayout& layout, bool one_table);

}  // namespace tessera::behaviour
