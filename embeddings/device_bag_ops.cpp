// The device implementation of the bag ops (CUDA backend, or the cuda-emu backend in the emulation
// build): custom kernels for checks, resolution, pooling, the segment-reduced backward and the
// sparse optimizers (embeddings/kernels/bag_kernels.h), sort/de-duplication by sort_segments (CUB
// on a GPU; host fallback under emulation). Memory comes from the Backend; launches go on its
// stream. Validation mirrors the host implementation flag for flag, and the messages are produced
// by the same functions (bag_checks.cpp), so both follow the id policy identically.
#include <vector>

#include "embeddings/bag_ops.h"
#include "embeddings/device_segments.h"
#include "embeddings/kernels/bag_kernels.h"

#if !defined(TESSERA_CUDA_EMULATION)
#include "cuda/cuda_backend.h"
#endif

namespace tessera::emb {
namespace {

cudaStream_t stream_of(Backend& backend) {
#if defined(TESSERA_CUDA_EMULATION)
  (void)backend;
  return cudaStream_t{};  // the emulator completes every launch before it returns
#else
  auto* cuda_backend = dynamic_cast<cuda::CudaBackend*>(&backend);
  TESSERA_CHECK(cuda_backend != nullptr,
                "device bag ops need the CUDA backend, got " << backend.name());
  return cuda_backend->stream();
#endif
}

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
    const Tensor& meta = meta_for(layout);
    // flags: positions start at all-ones (no bad position), the count at 0.
    std::vector<int64_t> init(static_cast<size_t>(cuda::kBagFlagFirstWarn + T), -1);
    init[cuda::kBagFlagClamped] = 0;
    Tensor flags =
        backend_->to_device(Tensor::host_from<int64_t>({static_cast<int64_t>(init.size())}, init));
    auto* f = reinterpret_cast<unsigned long long*>(flags.data<int64_t>());
    cuda::launch_bag_check_offsets(bags.offsets.data<int64_t>(), n_bags, nnz, f, stream_);
    {
      const std::vector<int64_t> fl = to_vector(*backend_, flags);
      if (fl[cuda::kBagFlagBadOffset] != -1)
        report_bad_offsets(layout, B, fl[cuda::kBagFlagBadOffset],
                           to_vector(*backend_, bags.offsets), nnz);
    }
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
    const std::vector<int64_t> fl = to_vector(*backend_, flags);
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
    const DeviceSegments seg = sort_segments(*backend_, r.keys, layout.total_rows(), stream_ptr());
    SparseGrad g;
    g.count = seg.count;
    g.keys = seg.ukeys;
    g.grads = backend_->empty({seg.count, layout.max_dim()});
    cuda::launch_bag_backward(meta_for(layout).data<int64_t>(), layout.num_tables(), r.batch,
                              layout.max_dim(), layout.out_dim(), seg.ukeys.data<int64_t>(),
                              seg.seg_start.data<int64_t>(), seg.sorted_pos.data<int64_t>(),
                              r.bag_of.data<int64_t>(), r.offsets.data<int64_t>(),
                              r.weights.defined() ? r.weights.data<float>() : nullptr,
                              dout.data<float>(), g.grads.data<float>(), seg.count, stream_);
    return g;
  }

  Tensor weight_grad(const TableLayout& layout, const Tensor& weights, const ResolvedBags& r,
                     const Tensor& dout) override {
    check_weights(layout, weights);
    check_dout(layout, r, dout);
    Tensor g = backend_->empty({r.nnz});
    cuda::launch_bag_weight_grad(meta_for(layout).data<int64_t>(), layout.num_tables(), r.batch,
                                 layout.out_dim(), weights.data<float>(), r.keys.data<int64_t>(),
                                 r.bag_of.data<int64_t>(), r.offsets.data<int64_t>(),
                                 dout.data<float>(), g.data<float>(), r.nnz, stream_);
    return g;
  }

  void update(const TableLayout& layout, SparseOptimizer kind, const SparseStepParams& p,
              const SparseGrad& g, EmbeddingStorage& storage) override {
    TESSERA_CHECK(storage.num_states() == state_slots(kind),
                  "storage holds " << storage.num_states() << " optimizer state tensors, "
                                   << sparse_optimizer_name(kind) << " needs "
                                   << state_slots(kind));
    TESSERA_CHECK(
        storage.device() == backend_->device(),
        "storage on " << storage.device().str() << ", ops on " << backend_->device().str());
    float* s0 = storage.num_states() > 0 ? storage.state(0).data<float>() : nullptr;
    float* s1 = storage.num_states() > 1 ? storage.state(1).data<float>() : nullptr;
    cuda::launch_sparse_update(kind, p, meta_for(layout).data<int64_t>(), layout.num_tables(),
                               layout.max_dim(), g.keys.data<int64_t>(), g.grads.data<float>(),
                               g.count, storage.weights().data<float>(), s0, s1, stream_);
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
