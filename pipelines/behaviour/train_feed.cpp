#include "pipelines/behaviour/train_feed.h"

#include <utility>

namespace tessera::behaviour {

namespace {
// Three slots: one computing, one uploading, one the host may fill while the oldest finishes.
constexpr int kStagingSlots = 3;
bool has_columns(const Tensor& t) {
  return t.defined() && t.rank() == 2 && t.dim(1) > 0;
}
}  // namespace

TrainFeed::TrainFeed(Backend& backend, BatchSource& source, int64_t max_batch, CatPlacement cat)
    : backend_(backend), source_(source), max_batch_(max_batch), cat_(cat) {}

TrainFeed::~TrainFeed() = default;

TrainFeed::Item TrainFeed::stage(Batch&& b) {
  TESSERA_CHECK(b.labels.defined(), "training batch without labels");
  if (b.rows == 0) {  // a rank's empty part of a short batch (batcher.h): nothing to upload
    Item it;
    it.batch = std::move(b);
    return it;
  }
  if (!stager_) {
    stage_dense_ = has_columns(b.dense);
    stage_cat_ = cat_ == CatPlacement::Device && has_columns(b.cat);
    std::vector<StagedTensorSpec> specs;
    if (stage_dense_) specs.push_back({{max_batch_, b.dense.dim(1)}, DType::F32});
    if (stage_cat_) specs.push_back({{max_batch_, b.cat.dim(1)}, DType::I64});
    specs.push_back({{max_batch_}, DType::F32});
    stager_ = backend_.make_batch_stager(kStagingSlots, specs);
  }
  std::vector<Tensor> src;
  if (stage_dense_) src.push_back(b.dense);
  if (stage_cat_) src.push_back(b.cat);
  src.push_back(b.labels);
  Item it;
  it.staged = stager_->stage(src, b.rows);
  size_t i = 0;
  it.dense = stage_dense_ ? it.staged.tensors[i++] : b.dense;
  it.cat = stage_cat_ ? it.staged.tensors[i++] : b.cat;
  it.labels = it.staged.tensors[i];
  it.batch = std::move(b);
  return it;
}

bool TrainFeed::next(Item& out) {
  if (!started_) {
    started_ = true;
    Batch b;
    if (!source_.next(b)) return false;
    ahead_ = stage(std::move(b));
    have_ahead_ = true;
  }
  if (!have_ahead_) {
    if (ahead_error_) std::rethrow_exception(std::exchange(ahead_error_, nullptr));
    return false;
  }
  out = std::move(ahead_);
  have_ahead_ = false;
  // Queue the following batch's upload now, before the caller queues this batch's compute.
  try {
    Batch b;
    if (source_.next(b)) {
      ahead_ = stage(std::move(b));
      have_ahead_ = true;
    }
  } catch (...) {
    ahead_error_ = std::current_exception();
  }
  return true;
}

void TrainFeed::done(Item& item) {
  if (stager_ && item.staged.slot >= 0) stager_->release(item.staged);
  item.staged.slot = -1;
}

}  // namespace tessera::behaviour
