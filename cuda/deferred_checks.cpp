#include "cuda/deferred_checks.h"

#include <cstdio>
#include <sstream>
#include <utility>

#include "cuda/cuda_check.h"
#include "cuda/device_guard.h"
#include "cuda/kernels/kernels.h"  // kNoBadPosition

namespace tessera::cuda {

namespace {
// One value copied from device memory to the host; waits for the stream (error path only).
template <typename T>
T read_device_value(const void* device_value, cudaStream_t stream) {
  T value{};
  TESSERA_CUDA_CHECK(
      cudaMemcpyAsync(&value, device_value, sizeof(value), cudaMemcpyDeviceToHost, stream));
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream));
  return value;
}
}  // namespace

const char* checked_op_name(CheckedOp op) {
  switch (op) {
    case CheckedOp::EmbeddingForward:
      return "embedding_forward";
    case CheckedOp::EmbeddingBackward:
      return "embedding_backward";
    case CheckedOp::SoftmaxXent:
      return "softmax_xent";
    case CheckedOp::EmbeddingBag:
      return "embedding_bag";
  }
  return "?";
}

DeferredChecks::DeferredChecks(int device_index, cudaStream_t stream, std::string where)
    : device_index_(device_index),
      stream_(stream),
      where_(std::move(where)),
      flags_(kSlots * sizeof(unsigned long long), device_index),
      host_flags_(kSlots * sizeof(unsigned long long)),
      events_(kSlots) {}

DeferredChecks::~DeferredChecks() {
  // The backend has waited for its stream: every pending copy has landed. A failure nobody
  // asked about is reported here, since a destructor may not throw.
  const auto* host = static_cast<const unsigned long long*>(host_flags_.data());
  for (const Pending& p : pending_) {
    bool done = false;
    try {
      done = landed(p);
    } catch (const std::exception& e) {  // a destructor never throws
      std::fprintf(stderr, "tessera: %s: %s\n", where_.c_str(), e.what());
      return;
    }
    if (!done || host[p.slot] == kNoBadPosition) continue;
    std::fprintf(stderr,
                 "tessera: %s: %s call %llu had an input outside its range at position %llu, "
                 "never reported (nothing synchronised the backend after it)\n",
                 where_.c_str(), checked_op_name(p.op), static_cast<unsigned long long>(p.call),
                 host[p.slot]);
  }
}

void DeferredChecks::queue(CheckedOp op, const Tensor& values, int64_t bound,
                           const std::function<void(unsigned long long* flag)>& launch,
                           DescribeBadPosition describe) {
  poll();
  if (pending_.size() == static_cast<size_t>(kSlots)) {  // the oldest holds the next slot
    TESSERA_CUDA_CHECK(cudaEventSynchronize(events_[pending_.front().slot].get()));
    resolve_front();
  }
  const int slot = next_slot_;
  auto* flag = static_cast<unsigned long long*>(flags_.data()) + slot;
  auto* host = static_cast<unsigned long long*>(host_flags_.data()) + slot;
  TESSERA_CUDA_CHECK(cudaMemsetAsync(flag, 0xFF, sizeof(*flag), stream_));  // kNoBadPosition
  launch(flag);
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(host, flag, sizeof(*flag), cudaMemcpyDeviceToHost, stream_));
  if (!events_[slot]) events_[slot] = make_event();
  TESSERA_CUDA_CHECK(cudaEventRecord(events_[slot].get(), stream_));
  next_slot_ = (next_slot_ + 1) % kSlots;
  pending_.push_back(
      Pending{op, ++calls_[static_cast<int>(op)], values, bound, slot, std::move(describe)});
}

bool DeferredChecks::landed(const Pending& p) const {
  const cudaError_t st = cudaEventQuery(events_[p.slot].get());
  if (st == cudaSuccess) return true;
  (void)cudaGetLastError();  // "not ready" must not surface at the next launch's check
  if (st == cudaErrorNotReady) return false;
  TESSERA_THROW(Backend, "cudaEventQuery of " << checked_op_name(p.op) << "'s check on " << where_
                                              << " failed: " << describe_status(st));
}

void DeferredChecks::poll() {
  while (!pending_.empty() && landed(pending_.front())) resolve_front();
}

void DeferredChecks::drain() {
  if (pending_.empty()) return;
  // One stream: the newest check's event completes after every older one.
  TESSERA_CUDA_CHECK(cudaEventSynchronize(events_[pending_.back().slot].get()));
  while (!pending_.empty()) resolve_front();
}

void DeferredChecks::resolve_front() {
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  const unsigned long long position =
      static_cast<const unsigned long long*>(host_flags_.data())[p.slot];
  if (position == kNoBadPosition) return;
  pending_.clear();  // queued after the failure: the error stops what they belonged to
  raise(p, position);
}

void DeferredChecks::raise(const Pending& p, unsigned long long position) {
  DeviceGuard guard(device_index_);
  std::ostringstream what;
  if (p.describe) {
    what << p.describe(position);
  } else if (p.op == CheckedOp::SoftmaxXent) {
    const int32_t label = read_device_value<int32_t>(p.values.data<int32_t>() + position, stream_);
    what << "class label " << label << " at row " << position << " is outside [0, " << p.bound
         << ")";
  } else {
    const int64_t id = read_device_value<int64_t>(p.values.data<int64_t>() + position, stream_);
    what << "embedding id " << id << " at position " << position
         << " is outside the table's rows [0, " << p.bound << ")";
  }
  TESSERA_THROW(Data, what.str() << " (" << checked_op_name(p.op) << " call " << p.call << " on "
                                 << where_ << ", found by its deferred check)");
}

}  // namespace tessera::cuda
