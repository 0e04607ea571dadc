#include "host/backend/batch_stager.h"

#include <cstdio>

#include "host/backend/backend.h"

namespace tessera {

namespace {

// The host backend computes on the caller's tensors directly: no copy, nothing to wait for.
class PassthroughEngine final : public StagingEngine {
 public:
  std::vector<Tensor> upload(int, const std::vector<Tensor>& src, int64_t rows) override {
    std::vector<Tensor> out;
    out.reserve(src.size());
    for (const Tensor& t : src) out.push_back(t.dim(0) == rows ? t : t.rows(0, rows));
    return out;
  }
  void hand_over(int) override {}
  void mark_consumed(int) override {}
  void wait_consumed(int) override {}
};

// A backend without a staging engine of its own (the emulated CUDA backend): Backend::copy,
// which returns once the data is where the backend's later ops will read it.
class CopyingEngine final : public StagingEngine {
 public:
  CopyingEngine(Backend& backend, int slots, const std::vector<StagedTensorSpec>& specs)
      : backend_(backend), slots_(slots) {
    for (auto& slot : slots_)
      for (const StagedTensorSpec& s : specs) slot.push_back(backend.empty(s.max_shape, s.dtype));
  }
  std::vector<Tensor> upload(int slot, const std::vector<Tensor>& src, int64_t rows) override {
    std::vector<Tensor> out;
    for (size_t i = 0; i < src.size(); ++i) {
      Tensor dst = slots_[slot][i].rows(0, rows);
      backend_.copy(src[i].rows(0, rows), dst);
      out.push_back(dst);
    }
    return out;
  }
  // The backend's ops are ordered on one queue, so a later upload cannot overtake the compute,
  // and the copy is where later ops read it when upload() returns.
  void hand_over(int) override {}
  void mark_consumed(int) override {}
  void wait_consumed(int) override {}

 private:
  Backend& backend_;
  std::vector<std::vector<Tensor>> slots_;
};

}  // namespace

std::unique_ptr<StagingEngine> make_passthrough_staging_engine() {
  return std::make_unique<PassthroughEngine>();
}

std::unique_ptr<StagingEngine> make_copying_staging_engine(
    Backend& backend, int slots, const std::vector<StagedTensorSpec>& specs) {
  return std::make_unique<CopyingEngine>(backend, slots, specs);
}

BatchStager::BatchStager(int slots, std::vector<StagedTensorSpec> specs,
                         std::unique_ptr<StagingEngine> engine)
    : specs_(std::move(specs)), engine_(std::move(engine)) {
  TESSERA_CHECK(slots >= 2, "a batch stager needs at least 2 slots, got " << slots);
  TESSERA_CHECK(engine_ != nullptr, "a batch stager needs a staging engine");
  state_.assign(static_cast<size_t>(slots), SlotState::Free);
}

BatchStager::~BatchStager() {
  // The engine's memory may still be read by queued compute: wait for every released slot
  // (an engine's wait never throws on the destructor's behalf).
  for (size_t i = 0; i < state_.size(); ++i) {
    if (state_[i] == SlotState::Free) continue;
    try {
      if (state_[i] == SlotState::Staged) engine_->mark_consumed(static_cast<int>(i));
      engine_->wait_consumed(static_cast<int>(i));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tessera: batch stager slot %zu: %s (ignored in a destructor)\n", i,
                   e.what());
    }
  }
}

BatchStager::Staged BatchStager::stage(const std::vector<Tensor>& src, int64_t rows) {
  TESSERA_CHECK(src.size() == specs_.size(),
                "staging " << src.size() << " tensors into a stager of " << specs_.size());
  for (size_t i = 0; i < src.size(); ++i) {
    const Tensor& t = src[i];
    const StagedTensorSpec& s = specs_[i];
    TESSERA_CHECK(t.defined() && t.is_host(), "staged tensor " << i
                                                               << " must be a defined host "
                                                                  "tensor, got "
                                                               << t.describe());
    TESSERA_CHECK(rows >= 1 && rows <= s.max_shape.at(0) && t.rank() == (int)s.max_shape.size() &&
                      t.dim(0) >= rows && t.dtype() == s.dtype,
                  "staged tensor " << i << " " << t.describe() << " with " << rows
                                   << " rows does not fit the slot " << shape_str(s.max_shape)
                                   << " " << dtype_name(s.dtype));
    for (int d = 1; d < t.rank(); ++d)
      TESSERA_CHECK(t.dim(d) == s.max_shape[d], "staged tensor " << i << " " << t.describe()
                                                                 << " does not fit the slot "
                                                                 << shape_str(s.max_shape));
  }
  const int slot = next_slot_;
  if (state_[slot] == SlotState::Staged)
    TESSERA_THROW(Usage, "batch stager: all " << slots()
                                              << " slots are staged and none released; release "
                                                 "a batch after queuing its compute");
  if (state_[slot] == SlotState::Released) engine_->wait_consumed(slot);
  Staged out;
  out.tensors = engine_->upload(slot, src, rows);
  out.slot = slot;
  out.sequence = next_sequence_++;
  state_[slot] = SlotState::Staged;
  next_slot_ = (slot + 1) % slots();
  // Nothing older is waiting for its compute: this batch is the consumer's next.
  if (out.sequence == next_release_) engine_->hand_over(slot);
  return out;
}

void BatchStager::release(const Staged& s) {
  TESSERA_CHECK(s.slot >= 0 && s.slot < slots() && state_[s.slot] == SlotState::Staged &&
                    s.sequence == next_release_,
                "batch stager: release of batch " << s.sequence << " (slot " << s.slot
                                                  << "), expected batch " << next_release_);
  engine_->mark_consumed(s.slot);
  state_[s.slot] = SlotState::Released;
  ++next_release_;
  // The next batch, if already staged, is the consumer's now (its slot follows in ring order).
  if (next_release_ < next_sequence_) engine_->hand_over((s.slot + 1) % slots());
}

// ---- Backend's factory (declared in backend.h) -----------------------------------------------

std::unique_ptr<BatchStager> Backend::make_batch_stager(
    int slots, const std::vector<StagedTensorSpec>& specs) {
  TESSERA_CHECK(slots >= 2, "a batch stager needs at least 2 slots, got " << slots);
  for (const StagedTensorSpec& s : specs)
    TESSERA_CHECK(!s.max_shape.empty() && s.max_shape[0] >= 1,
                  "staged tensor shape " << shape_str(s.max_shape) << " needs rows");
  return std::make_unique<BatchStager>(slots, specs, make_staging_engine_impl(slots, specs));
}

std::unique_ptr<StagingEngine> Backend::make_staging_engine_impl(
    int slots, const std::vector<StagedTensorSpec>& specs) {
  if (device().kind == DeviceKind::Host) return make_passthrough_staging_engine();
  return make_copying_staging_engine(*this, slots, specs);
}

}  // namespace tessera
