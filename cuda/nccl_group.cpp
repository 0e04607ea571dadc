// The NCCL ProcessGroup (nccl_group.h). Every cuda/*.cpp goes into the CUDA backend's library,
// which links no NCCL: there this file compiles to nothing, and the top-level CMakeLists.txt
// builds it again, with TESSERA_WITH_NCCL=1, into tessera_nccl.
#if TESSERA_WITH_NCCL
#include "cuda/nccl_group.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "host/backend/backend.h"
#include "host/core/error.h"

namespace tessera::cuda {

namespace {

class NcclGroup final : public dist::ProcessGroup {
 public:
  NcclGroup(std::unique_ptr<dist::ProcessGroup> inner, const NcclGroupOptions& o)
      : inner_(std::move(inner)), o_(o) {
    if (!inner_) TESSERA_THROW(Internal, "an NCCL group needs an inner process group");
    if (o_.bucket_bytes < 64) TESSERA_THROW(Usage, "bucket_bytes must be at least 64");
  }
  ~NcclGroup() override {
    if (comm_) (void)ncclCommDestroy(comm_);  // nothing to report to in a destructor
  }
  int rank() const override { return inner_->rank(); }
  int world() const override { return inner_->world(); }
  void allreduce_sum(float* d, int64_t n) override { inner_->allreduce_sum(d, n); }
  void allreduce_sum(double* d, int64_t n) override { inner_->allreduce_sum(d, n); }
  void broadcast(void* d, int64_t b, int root) override { inner_->broadcast(d, b, root); }
  void barrier() override { inner_->barrier(); }
  void allgather(const void* s, int64_t b, void* r) override { inner_->allgather(s, b, r); }
  // The inner group's own (MPI_Allgatherv: each part as it is, not padded to the longest).
  std::vector<std::string> allgatherv(const std::string& s) override {
    return inner_->allgatherv(s);
  }
  // The inner group's (MPI_Alltoallv through host memory): embedding tables split across the
  // ranks exchange their ids, pooled rows and gradients there; no NCCL all-to-all yet.
  std::vector<std::string> alltoallv(const std::vector<std::string>& s) override {
    return inner_->alltoallv(s);
  }
  bool deterministic() const override { return inner_->deterministic(); }
  dist::CommStats stats() const override {
    dist::CommStats s = inner_->stats();
    s.allreduce_calls += device_calls_;
    s.allreduce_bytes += device_bytes_;
    return s;
  }
  bool reduces_on_device(const Backend& be) const override {
    return !inner_->deterministic() && dynamic_cast<const CudaBackend*>(&be) != nullptr;
  }
  void allreduce_sum(Backend& be, const std::vector<Tensor*>& tensors) override;

 private:
  void init_comm(int device);

  std::unique_ptr<dist::ProcessGroup> inner_;
  NcclGroupOptions o_;
  ncclComm_t comm_ = nullptr;
  int comm_device_ = -1;
  int64_t device_calls_ = 0, device_bytes_ = 0;
};

// Collective over the inner group: every rank gets here at its first device all-reduce.
void NcclGroup::init_comm(int device) {
  ncclUniqueId id{};
  if (inner_->rank() == 0) TESSERA_CUDA_CHECK(ncclGetUniqueId(&id));
  inner_->broadcast(&id, sizeof id, 0);
  int current = -1;
  TESSERA_CUDA_CHECK(cudaGetDevice(&current));
  TESSERA_CUDA_CHECK(cudaSetDevice(device));
  const ncclResult_t rc = ncclCommInitRank(&comm_, inner_->world(), id, inner_->rank());
  TESSERA_CUDA_CHECK(cudaSetDevice(current));
  TESSERA_CUDA_CHECK(rc);
  comm_device_ = device;
}

void NcclGroup::allreduce_sum(Backend& be, const std::vector<Tensor*>& tensors) {
  auto* cuda = dynamic_cast<CudaBackend*>(&be);
  if (!cuda || inner_->deterministic()) {  // the host path (ProcessGroup's default)
    ProcessGroup::allreduce_sum(be, tensors);
    return;
  }
  const int device = be.device().index;
  for (const Tensor* t : tensors)
    if (!t || !t->defined() || t->dtype() != DType::F32 || t->device() != be.device())
      TESSERA_THROW(Internal, "an NCCL all-reduce takes defined f32 tensors on " << be.name());
  if (!comm_) init_comm(device);
  if (device != comm_device_)
    TESSERA_THROW(Internal, "the NCCL communicator was made on device "
                                << comm_device_ << ", not on " << be.name());
  const int64_t bucket = std::max<int64_t>(1, o_.bucket_bytes / int64_t{sizeof(float)});
  // One group: NCCL launches the calls together instead of one after another.
  TESSERA_CUDA_CHECK(ncclGroupStart());
  ncclResult_t failed = ncclSuccess;
  for (Tensor* t : tensors) {
    float* p = t->data<float>();
    const int64_t n = t->numel();
    for (int64_t off = 0; off < n && failed == ncclSuccess; off += bucket) {
      const size_t m = static_cast<size_t>(std::min(bucket, n - off));
      failed = ncclAllReduce(p + off, p + off, m, ncclFloat32, ncclSum, comm_, cuda->stream());
      ++device_calls_;
      device_bytes_ += static_cast<int64_t>(m * sizeof(float));
    }
  }
  const ncclResult_t ended = ncclGroupEnd();  // always closes the group, even after a failure
  TESSERA_CUDA_CHECK(failed);
  TESSERA_CUDA_CHECK(ended);
}

}  // namespace

int use_local_device() {
  int count = 0;
  TESSERA_CUDA_CHECK(cudaGetDeviceCount(&count));
  if (count < 1) TESSERA_THROW(Backend, "no GPU is visible to this rank");
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    const char* v = std::getenv(name);
    if (!v || !*v) continue;
    char* end = nullptr;
    const long r = std::strtol(v, &end, 10);
    if (*end != '\0' || r < 0) TESSERA_THROW(Usage, name << "='" << v << "' is not a rank");
    const int device = static_cast<int>(r % count);
    TESSERA_CUDA_CHECK(cudaSetDevice(device));
    return device;
  }
  TESSERA_CUDA_CHECK(cudaSetDevice(0));
  return 0;
}

void use_device(int device) {
  int count = 0;
  TESSERA_CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count)
    TESSERA_THROW(Backend,
                  "GPU " << device << " is not visible to this rank (" << count << " visible)");
  TESSERA_CUDA_CHECK(cudaSetDevice(device));
}

std::unique_ptr<dist::ProcessGroup> make_nccl_group(std::unique_ptr<dist::ProcessGroup> inner,
                                                    const NcclGroupOptions& options) {
  return std::make_unique<NcclGroup>(std::move(inner), options);
}

}  // namespace tessera::cuda
#endif
