// The device implementation of the bag ops (the CUDA backend, on a GPU or on the emulator of the
// emulation build): custom kernels for checks, resolution, pooling, the segment-reduced backward
// and the sparse optimizers (embeddings/kernels/bag_kernels.h), sort/de-duplication by
// sort_segments (CUB; its stand-in under emulation). Memory comes from the Backend; launches go on
// its stream, with the backend's device made current (cuda:N, N >= 1, launches nowhere else).
// Validation mirrors the host implementation flag for flag, and the messages are produced by the
// same functions (bag_checks.cpp), so both follow the id policy identically.
//
// Host round trips per training batch: resolve reads the validation flags back once (the id
// policy must stop the batch, or warn, before its forward); the fused backward + update reads
// nothing (the sort's run count stays on the device). backward() alone reads the count, since
// SparseGrad carries it on the host.
#include <vector>

#include "embeddings/bag_ops.h"
#include "embeddings/device_segments.h"
#include "embeddings/kernels/bag_kernels.h"

#include "cuda/cuda_backend.h"
#include "cuda/device_guard.h"

namespace tessera::emb {
namespace {

cudaStream_t stream_of(Backend& backend) {
  auto* cuda_backend = dynamic_cast<cuda::CudaBackend*>(&backend);
  TESSERA_CHECK(cuda_backend != nullptr,
                "device bag ops need the CUDA backend, got " << backend.name());
  return cuda_backend->stream();
}

// Makes the backend's device current for a scope (a launch on cuda:N, N >= 1, fails otherwise).
class DeviceScope {
 public:
  explicit DeviceScope(const Backend& backend) : guard_(backend.device().index) {}

 private:
  cuda::DeviceGuard guard_;
};

std::vector<int64_t> to_vector(Backend& backend, const Tensor& t) {
  const Tensor h = backend.to_host(t);
  const int64_t* p = h.data<int64_t>();
  return std::vector<int64_t>(p, p + h.numel());
}

class DeviceBagOps final : public BagOps {
 public:
  explicit DeviceBagOps(Backend& backend) : backend_(&backend), stream_(stream_of(backend)) {}

  std::string name() const override { return "device (" + backend_->name() + ")"; }
  std::string notes() const override {
    return "kernels: embeddings/kernels/embedding_bag*.cu; sort/unique: " + sort_segments_path();
  }

  ResolvedBags resolve(const TableLayout& layout, const Bags& bags, IdWarnState& warn) override {
    check_bags_shape(layout, bags, backend_->device());
    const int64_t T = layout.num_tables();
    const int64_t B = bags.batch;
    const int64_t n_bags = T * B;
    const int64_t nnz = bags.indices.numel();
    const DeviceScope scope(*backend_);
    const Tensor& meta = meta_for(layout);
    // Set on the stream (bag_flags_init_kernel): positions start at all-ones, the count at 0.
    Tensor flags = backend_->empty({cuda::kBagFlagFirstWarn + T}, DType::I64);
    auto* f = reinterpret_cast<unsigned long long*>(flags.data<int64_t>());
    cuda::launch_bag_flags_init(f, T, stream_);
    cuda::launch_bag_check_offsets(bags.offsets.data<int64_t>(), n_bags, nnz, f, stream_);
    ResolvedBags r;
    r.keys = backend_->empty({nnz}, DType::I64);
    r.bag_of = backend_->empty({nnz}, DType::I64);
    r.offsets = bags.offsets;
    r.weights = bags.weights;
    r.batch = B;
    r.nnz = nnz;
    cuda::launch_bag_resolve(meta.data<int64_t>(), T, B, bags.indices.data<int64_t>(),
                             bags.offsets.data<int64_t>(), nnz, r.keys.data<int64_t>(),
                             r.bag_of.data<int64_t>(), f, stream_);
    // The one read of the batch: broken offsets first (the keys are then meaningless), ids next.
    const std::vector<int64_t> fl = to_vector(*backend_, flags);
    if (fl[cuda::kBagFlagBadOffset] != -1)
      report_bad_offsets(layout, B, fl[cuda::kBagFlagBadOffset], to_vector(*backend_, bags.offsets),
                         nnz);
    BadIdFindings found;
    found.first_error = fl[cuda::kBagFlagFirstError];
    found.clamped = static_cast<uint64_t>(fl[cuda::kBagFlagClamped]);
    found.first_warn.assign(fl.begin() + cuda::kBagFlagFirstWarn, fl.end());
    r.clamped = found.clamped;
    if (found.any())
      apply_id_policy(layout, B, found, to_vector(*backend_, bags.indices),
                      to_vector(*backend_, bags.offsets), warn);
    return r;
  }

  void forward(const TableLayout& layout, const Tensor& weights, const ResolvedBags& r,
               Tensor& out) override {
    const Device d = backend_->device();
    check_weights(layout, weights);
    check_keys(r);
    const DeviceScope scope(*backend_);
    TESSERA_CHECK(out.device() == d && out.dtype() == DType::F32 && out.rank() == 2 &&
                      out.dim(0) == r.batch && out.dim(1) == layout.out_dim(),
                  "pooled output must be f32 [" << r.batch << ", " << layout.out_dim() << "] on "
                                                << d.str() << ", got " << out.describe());
    cuda::launch_bag_forward(
        meta_for(layout).data<int64_t>(), layout.num_tables(), r.batch, layout.max_dim(),
        layout.out_dim(), weights.data<float>(), r.keys.data<int64_t>(), r.offsets.data<int64_t>(),
        r.weights.defined() ? r.weights.data<float>() : nullptr, out.data<float>(), stream_);
  }

  SparseGrad backward(const TableLayout& layout, const ResolvedBags& r,
                      const Tensor& dout) override {
    check_dout(layout, r, dout);
    const DeviceScope scope(*backend_);
    const DeviceSegments seg = sort_segments(*backend_, r.keys, layout.total_rows(), stream_ptr());
    Tensor grads = backend_->empty({seg.capacity, layout.max_dim()});
    cuda::launch_bag_backward(row_inputs(layout, r, dout, seg), seg.capacity, grads.data<float>(),
                              stream_);
    SparseGrad g;
    g.count = segment_count(*backend_, seg);  // SparseGrad holds U on the host: one read
    g.keys = seg.ukeys.rows(0, g.count);
    g.grads = grads.rows(0, g.count);
    return g;
  }

  // The training step's path: sort, then one kernel forms each touched row's gradient and steps
  // it; U never leaves the device, and no gradient tensor is allocated.
  void backward_update(const TableLayout& layout, const ResolvedBags& r, const Tensor& dout,
                       SparseOptimizer kind, const SparseStepParams& p,
                       EmbeddingStorage& storage) override {
    check_dout(layout, r, dout);
    check_storage(kind, storage);
    const DeviceScope scope(*backend_);
    const DeviceSegments seg = sort_segments(*backend_, r.keys, layout.total_rows(), stream_ptr());
    cuda::launch_bag_backward_update(row_inputs(layout, r, dout, seg), seg.capacity, kind, p,
                                     storage.weights().data<float>(), state_ptr(storage, 0),
                                     state_ptr(storage, 1), stream_);
  }

  Tensor weight_grad(const TableLayout& layout, const Tensor& weights, const ResolvedBags& r,
                     const Tensor& dout) override {
    check_weights(layout, weights);
    check_dout(layout, r, dout);
    const DeviceScope scope(*backend_);
    Tensor g = backend_->empty({r.nnz});
    cuda::launch_bag_weight_grad(meta_for(layout).data<int64_t>(), layout.num_tables(), r.batch,
                                 layout.out_dim(), weights.data<float>(), r.keys.data<int64_t>(),
                                 r.bag_of.data<int64_t>(), r.offsets.data<int64_t>(),
                                 dout.data<float>(), g.data<float>(), r.nnz, stream_);
    return g;
  }

  void update(const TableLayout& layout, SparseOptimizer kind, const SparseStepParams& p,
              const SparseGrad& g, EmbeddingStorage& storage) override {
    check_storage(kind, storage);
    const DeviceScope scope(*backend_);
    cuda::launch_sparse_update(kind, p, meta_for(layout).data<int64_t>(), layout.num_tables(),
                               layout.max_dim(), g.keys.data<int64_t>(), g.grads.data<float>(),
                               g.count, storage.weights().data<float>(), state_ptr(storage, 0),
                               state_ptr(storage, 1), stream_);
  }

 private:
  void check_weights(const TableLayout& layout, const Tensor& weights) const {
    const Device d = backend_->device();
    TESSERA_CHECK(weights.device() == d && weights.dtype() == DType::F32 &&
                      weights.numel() == layout.total_elements(),
                  "embedding weights must be f32 [" << layout.total_elements() << "] on " << d.str()
                                                    << ", got " << weights.describe());
  }
  // The kernels index global rows: a batch the device resolved itself, never the host's
  // table-local keys.
  static void check_keys(const ResolvedBags& r) {
    TESSERA_CHECK(!r.local_keys, "device bag ops take only batches the device resolved");
  }
  void check_dout(const TableLayout& layout, const ResolvedBags& r, const Tensor& dout) const {
    check_keys(r);
    const Device d = backend_->device();
    TESSERA_CHECK(dout.device() == d && dout.dtype() == DType::F32 && dout.rank() == 2 &&
                      dout.dim(0) == r.batch && dout.dim(1) == layout.out_dim(),
                  "dout must be f32 [" << r.batch << ", " << layout.out_dim() << "] on " << d.str()
                                       << ", got " << dout.describe());
  }
  void check_storage(SparseOptimizer kind, EmbeddingStorage& storage) const {
    TESSERA_CHECK(storage.num_states() == state_slots(kind),
                  "storage holds " << storage.num_states() << " optimizer state tensors, "
                                   << sparse_optimizer_name(kind) << " needs "
                                   << state_slots(kind));
    TESSERA_CHECK(
        storage.device() == backend_->device(),
        "storage on " << storage.device().str() << ", ops on " << backend_->device().str());
  }
  static float* state_ptr(EmbeddingStorage& storage, int slot) {
    return storage.num_states() > slot ? storage.state(slot).data<float>() : nullptr;
  }
  cuda::BagRowInputs row_inputs(const TableLayout& layout, const ResolvedBags& r,
                                const Tensor& dout, const DeviceSegments& seg) {
    cuda::BagRowInputs in{};
    in.meta = meta_for(layout).data<int64_t>();
    in.tables = layout.num_tables();
    in.batch = r.batch;
    in.max_dim = layout.max_dim();
    in.out_dim = layout.out_dim();
    in.ukeys = seg.ukeys.data<int64_t>();
    in.seg_start = seg.seg_start.data<int64_t>();
    in.sorted_pos = seg.sorted_pos.data<int64_t>();
    in.bag_of = r.bag_of.data<int64_t>();
    in.offsets = r.offsets.data<int64_t>();
    in.psw = r.weights.defined() ? r.weights.data<float>() : nullptr;
    in.dout = dout.data<float>();
    in.touched = seg.count.data<int64_t>();
    return in;
  }
  void* stream_ptr() const { return reinterpret_cast<void*>(stream_); }

  // The layout's meta on the device, uploaded once per distinct layout.
  const Tensor& meta_for(const TableLayout& layout) {
    if (!meta_.defined() || meta_host_ != layout.meta()) {
      meta_host_ = layout.meta();
      meta_ = backend_->to_device(
          Tensor::host_from<int64_t>({static_cast<int64_t>(meta_host_.size())}, meta_host_));
    }
    return meta_;
  }

  Backend* backend_;
  cudaStream_t stream_;
  std::vector<int64_t> meta_host_;
  Tensor meta_;
};

}  // namespace

std::unique_ptr<BagOps> make_device_bag_ops(Backend& backend) {
  return std::make_unique<DeviceBagOps>(backend);
}

}  // namespace tessera::emb
