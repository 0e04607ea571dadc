#pragma once
// DeferredChecks: the CUDA backend's input checks (embedding ids, class labels) without a host
// round trip per op. Each check
//   1. resets one slot of a device flag array to kNoBadPosition and runs the op's check kernel
//      (cuda/kernels/embedding.cu, losses.cu), which records the smallest bad position there;
//   2. copies the slot to page-locked host memory with cudaMemcpyAsync and records an event;
//   3. stays pending. The backend looks at a pending check's host copy only once its event has
//      completed (cudaEventQuery: no wait) -- at every later checked op -- and always at
//      synchronize(), a copy to pageable host memory, and check_deferred() (drain: waits).
// A bad input raises Error(Data) naming the position, the value (read back then: a wait is fine
// on the error path; the checked tensor is kept alive until its check is resolved, but a caller
// that rewrites it in place, like a staging slot, may show the newer value), the op and which
// call of it on this backend. Pending checks queued after a failed one are dropped.
// A check may bring its own description (queue's `describe`): the embedding-bag resolve does, to
// name the table, sample and id of the first bad position exactly as the host ops do.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "cuda/device_buffer.h"
#include "cuda/pinned_stager.h"  // PinnedBuffer, EventHandle
#include "host/core/tensor.h"

namespace tessera::cuda {

enum class CheckedOp : uint8_t {
  EmbeddingForward = 0,
  EmbeddingBackward = 1,
  SoftmaxXent = 2,
  EmbeddingBag = 3,  // the device bag ops' id resolution (embeddings/device_bag_ops.cpp)
};
const char* checked_op_name(CheckedOp op);  // "embedding_forward", ...

// What a failed check says about its first bad position (read back then: a wait is fine on the
// error path, but it must not go through the backend's checked copies): "embedding id 9 in table
// 'c1', sample 3 ... is outside ...". The deferred check appends the op, call and backend.
using DescribeBadPosition = std::function<std::string(unsigned long long position)>;

class DeferredChecks {
 public:
  // Checks that may be in flight at once; one more waits for the oldest (the host is then that
  // many checked ops ahead of the device, which a training step never is).
  static constexpr int kSlots = 256;

  // stream: the backend's (not owned; must outlive this). `where` names the backend in messages
  // ("cuda:0"). Call with the device current.
  DeferredChecks(int device_index, cudaStream_t stream, std::string where);
  ~DeferredChecks();  // logs (never throws) a failed check that nobody resolved
  DeferredChecks(const DeferredChecks&) = delete;
  DeferredChecks& operator=(const DeferredChecks&) = delete;

  // Raises a failed earlier check (poll), then queues one: launch(flag) queues the check kernel,
  // writing into `flag`. values: the ids (i64) or labels (i32) being checked; bound: the table's
  // rows or the number of classes.
  // describe: set, it words the error instead (values and bound are then only kept alive).
  void queue(CheckedOp op, const Tensor& values, int64_t bound,
             const std::function<void(unsigned long long* flag)>& launch,
             DescribeBadPosition describe = nullptr);
  // Resolves the pending checks whose event has completed, oldest first; never waits. Throws the
  // first failure's Error(Data).
  void poll();
  // Waits for every pending check, then resolves them all.
  void drain();
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    CheckedOp op;
    uint64_t call;  // 1-based count of this op's checked calls on the backend
    Tensor values;
    int64_t bound;
    int slot;
    DescribeBadPosition describe;  // null: the id / label message of raise()
  };
  bool landed(const Pending& p) const;  // cudaEventQuery on p's event
  void resolve_front();                 // the oldest pending check, which has landed
  [[noreturn]] void raise(const Pending& p, unsigned long long position);

  int device_index_;
  cudaStream_t stream_;
  std::string where_;
  DeviceBuffer flags_;               // [kSlots] unsigned long long on the device
  PinnedBuffer host_flags_;          // [kSlots] their copies
  std::vector<EventHandle> events_;  // [kSlots], made on a slot's first use
  std::deque<Pending> pending_;      // oldest first; slots are handed out round robin
  int next_slot_ = 0;
  uint64_t calls_[4] = {};
};

}  // namespace tessera::cuda
