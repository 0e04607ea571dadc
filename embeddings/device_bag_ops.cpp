// The device implementation of the bag ops (the CUDA backend, on a GPU or on the emulator of the
// emulation build): custom kernels for checks, resolution, pooling, the segment-reduced backward
// and the sparse optimizers (embeddings/kernels/bag_kernels.h), sort/de-duplication by
// sort_segments (CUB; its stand-in under emulation). Memory comes from the Backend; launches go on
// its stream, with the backend's device made current (cuda:N, N >= 1, launches nowhere else).
// Validation mirrors the host implementation flag for flag, and the messages are produced by the
// same functions (bag_checks.cpp), so both follow the id policy identically.
//
// Host round trips per training batch: none for a host batch that goes up through stage() into
// tables that stop on a bad id: its offsets are checked on the host before the upload, the
// upload is an asynchronous copy from a ring of page-locked buffers, and the resolve's id check
// is a deferred check of the backend (cuda/deferred_checks.h). A batch handed over on the device
// (its offsets unchecked: the forward would read past the ids), or one with a table that warns
// and clamps (the warning belongs to its batch), has its flags read back once in resolve. The
// fused backward + update reads nothing (the sort's run count stays on the device). backward()
// alone reads the count, since SparseGrad carries it on the host.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "embeddings/bag_ops.h"
#include "embeddings/device_segments.h"
#include "embeddings/kernels/bag_kernels.h"
#include "embeddings/table_rows.h"

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/device_guard.h"
#include "cuda/pinned_stager.h"

namespace tessera::emb {
namespace {

cuda::CudaBackend& cuda_of(Backend& backend) {
  auto* cuda_backend = dynamic_cast<cuda::CudaBackend*>(&backend);
  TESSERA_CHECK(cuda_backend != nullptr,
                "device bag ops need the CUDA backend, got " << backend.name());
  return *cuda_backend;
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

// The same read without the backend (whose copies resolve the deferred checks): for a deferred
// check's message, on its error path, with the device current.
std::vector<int64_t> read_back(const Tensor& t, cudaStream_t stream) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  if (v.empty()) return v;
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(v.data(), t.raw(), t.bytes(), cudaMemcpyDeviceToHost, stream));
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream));
  return v;
}

// The first b where offsets [n_bags + 1] break the CSR rules (resolve's offset check), or -1.
int64_t first_bad_offset(const int64_t* off, int64_t n_bags, int64_t nnz) {
  if (off[0] != 0) return 0;
  for (int64_t b = 1; b <= n_bags; ++b)
    if (off[b] < off[b - 1]) return b;
  return off[n_bags] != nnz ? n_bags : -1;
}

// Whether a bad id in some table clamps and warns instead of stopping the batch.
bool any_table_clamps(const TableLayout& layout) {
  for (int64_t t = 0; t < layout.num_tables(); ++t)
    if (layout.spec(t).id_policy == IdPolicy::WarnClamp &&
        layout.spec(t).id_mapping == IdMapping::Direct)
      return true;
  return false;
}

// Host batches go up from a ring of page-locked slots (one pinned allocation), so the copies are
// queued on the backend's stream and nobody waits for them. A slot is rewritten only after the
// event recorded behind its last copies has completed. The ring grows (waiting for every slot's
// copies, then one new allocation, half as large again) only for a batch larger than any before.
class UploadRing {
 public:
  static constexpr int kSlots = 4;

  explicit UploadRing(cuda::CudaBackend& backend) : backend_(&backend) {}

  Bags upload(const Bags& host) {
    const cuda::DeviceGuard guard(backend_->device().index);
    const size_t bytes = host.indices.bytes() + host.offsets.bytes() +
                         (host.weights.defined() ? host.weights.bytes() : 0);
    if (!pinned_ || bytes > slot_bytes_) grow(bytes);
    const int slot = next_;
    next_ = (next_ + 1) % kSlots;
    EventHandle& copied = copied_[slot];
    if (copied) wait_copied(copied);
    char* at = static_cast<char*>(pinned_->data()) + static_cast<size_t>(slot) * slot_bytes_;
    Bags d;
    d.batch = host.batch;
    d.offsets_checked = true;
    d.indices = copy_up(host.indices, &at);
    d.offsets = copy_up(host.offsets, &at);
    if (host.weights.defined()) d.weights = copy_up(host.weights, &at);
    if (!copied) copied = cuda::make_event();
    TESSERA_CUDA_CHECK(cudaEventRecord(copied.get(), backend_->stream()));
    return d;
  }

 private:
  using EventHandle = cuda::EventHandle;

  // Waits only when the copies queued kSlots batches ago have not run yet.
  static void wait_copied(const EventHandle& copied) {
    const cudaError_t st = cudaEventQuery(copied.get());
    if (st == cudaSuccess) return;
    (void)cudaGetLastError();  // "not ready" must not surface at the next launch's check
    if (st != cudaErrorNotReady) TESSERA_CUDA_CHECK(st);
    TESSERA_CUDA_CHECK(cudaEventSynchronize(copied.get()));
  }

  void grow(size_t bytes) {
    for (const EventHandle& e : copied_)
      if (e) wait_copied(e);
    pinned_.reset();
    slot_bytes_ = std::max(bytes, slot_bytes_ + slot_bytes_ / 2);
    slot_bytes_ = (slot_bytes_ + 63) / 64 * 64;
    pinned_ = std::make_unique<cuda::PinnedBuffer>(slot_bytes_ * kSlots);
  }

  // `host` into the pinned slot at *at, then an asynchronous copy of it into device memory from
  // the backend's cache (stream-ordered: it is free again once the batch's tensors go).
  Tensor copy_up(const Tensor& host, char** at) {
    const size_t bytes = host.bytes();
    Tensor d(backend_->device_buffer(bytes), host.shape(), host.dtype());
    if (bytes) {
      std::memcpy(*at, host.raw(), bytes);
      TESSERA_CUDA_CHECK(
          cudaMemcpyAsync(d.raw(), *at, bytes, cudaMemcpyHostToDevice, backend_->stream()));
      *at += bytes;
    }
    return d;
  }

  cuda::CudaBackend* backend_;
  std::unique_ptr<cuda::PinnedBuffer> pinned_;  // kSlots slots of slot_bytes_
  size_t slot_bytes_ = 0;
  EventHandle copied_[kSlots];  // recorded behind each slot's last copies
  int next_ = 0;
};

class DeviceBagOps final : public BagOps {
 public:
  explicit DeviceBagOps(Backend& backend)
      : backend_(&backend), cuda_(&cuda_of(backend)), stream_(cuda_->stream()), ring_(*cuda_) {}

  std::string name() const override { return "device (" + backend_->name() + ")"; }
  std::string notes() const override {
    return "kernels: embeddings/kernels/embedding_bag*.cu; sort/unique: " + sort_segments_path();
  }

  Bags stage(const TableLayout& layout, const Bags& host_bags) override {
    check_bags_shape(layout, host_bags, Device{});
    const int64_t n_bags = host_bags.offsets.numel() - 1;
    const int64_t nnz = host_bags.indices.numel();
    const int64_t* off = host_bags.offsets.data<int64_t>();
    const int64_t bad = first_bad_offset(off, n_bags, nnz);
    if (bad >= 0)
      report_bad_offsets(layout, host_bags.batch, bad, std::vector<int64_t>(off, off + n_bags + 1),
                         nnz);
    return ring_.upload(host_bags);
  }

  ResolvedBags resolve(const TableLayout& layout, const Bags& bags, IdWarnState& warn) override {
    check_bags_shape(layout, bags, backend_->device());
    const int64_t T = layout.num_tables();
    const int64_t B = bags.batch;
    const int64_t nnz = bags.indices.numel();
    const DeviceScope scope(*backend_);
    const Tensor& meta = meta_for(layout);
    unsigned long long* f = flags_for(T);
    // Set on the stream (bag_flags_init_kernel): positions start at all-ones, the count at 0.
    cuda::launch_bag_flags_init(f, T, stream_);
    cuda::launch_bag_check_offsets(bags.offsets.data<int64_t>(), T * B, nnz, f, stream_);
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
    if (bags.offsets_checked && !any_table_clamps(layout))
      defer_id_check(bags, f);
    else
      read_flags(layout, bags, warn, r);
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
    const float* psw = r.weights.defined() ? r.weights.data<float>() : nullptr;
    if (half()) {
      cuda::launch_bag_forward_half(meta_for(layout).data<int64_t>(), layout.num_tables(), r.batch,
                                    layout.max_dim(), layout.out_dim(), half_table(weights),
                                    r.keys.data<int64_t>(), r.offsets.data<int64_t>(), psw,
                                    out.data<float>(), stream_);
      return;
    }
    cuda::launch_bag_forward(meta_for(layout).data<int64_t>(), layout.num_tables(), r.batch,
                             layout.max_dim(), layout.out_dim(), weights.data<float>(),
                             r.keys.data<int64_t>(), r.offsets.data<int64_t>(), psw,
                             out.data<float>(), stream_);
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
    if (half()) {
      cuda::launch_bag_backward_update_half(row_inputs(layout, r, dout, seg), seg.capacity, kind, p,
                                            half_table(storage.weights()), state_ptr(storage, 0),
                                            state_ptr(storage, 1), stream_);
      return;
    }
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
    if (half()) {
      cuda::launch_bag_weight_grad_half(meta_for(layout).data<int64_t>(), r.batch, layout.out_dim(),
                                        half_table(weights), r.keys.data<int64_t>(),
                                        r.bag_of.data<int64_t>(), r.offsets.data<int64_t>(),
                                        dout.data<float>(), g.data<float>(), r.nnz, stream_);
      return g;
    }
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
    if (half()) {
      cuda::launch_sparse_update_half(kind, p, meta_for(layout).data<int64_t>(),
                                      layout.num_tables(), layout.max_dim(), g.keys.data<int64_t>(),
                                      g.grads.data<float>(), g.count, half_table(storage.weights()),
                                      state_ptr(storage, 0), state_ptr(storage, 1), stream_);
      return;
    }
    cuda::launch_sparse_update(kind, p, meta_for(layout).data<int64_t>(), layout.num_tables(),
                               layout.max_dim(), g.keys.data<int64_t>(), g.grads.data<float>(),
                               g.count, storage.weights().data<float>(), state_ptr(storage, 0),
                               state_ptr(storage, 1), stream_);
  }

 private:
  // 16-bit tables (table_rows.h's packed layout): the kernels' view of the buffer.
  bool half() const { return format_.dtype != TableDType::F32; }
  cuda::BagHalfTable half_table(const Tensor& weights) const {
    return {half_data(weights), static_cast<int>(format_.dtype),
            format_.stochastic_rounding ? 1 : 0};
  }
  void check_weights(const TableLayout& layout, const Tensor& weights) const {
    const Device d = backend_->device();
    if (half()) {
      const int64_t words = packed_words(layout.total_elements());
      TESSERA_CHECK(
          weights.device() == d && weights.dtype() == DType::I32 && weights.numel() == words,
          table_dtype_name(format_.dtype)
              << " embedding weights must be i32 [" << words << "] (packed "
              << layout.total_elements() << " values) on " << d.str() << ", got "
              << weights.describe());
      return;
    }
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
    TESSERA_CHECK(storage.dtype() == format_.dtype, "embedding storage holds "
                                                        << table_dtype_name(storage.dtype())
                                                        << " tables, the ops were set up for "
                                                        << table_dtype_name(format_.dtype));
  }
  // The one read of a batch: broken offsets first (the keys are then meaningless), ids next.
  void read_flags(const TableLayout& layout, const Bags& bags, IdWarnState& warn, ResolvedBags& r) {
    const int64_t B = bags.batch;
    const int64_t nnz = bags.indices.numel();
    const std::vector<int64_t> fl = to_vector(*backend_, flags_);
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
  }

  // The batch's first bad position goes to a deferred check slot (a copy on the stream); a bad id
  // is raised later with apply_id_policy's message, read back from the batch's own device
  // tensors, which the check keeps alive.
  void defer_id_check(const Bags& bags, const unsigned long long* f) {
    const cudaStream_t stream = stream_;
    const unsigned long long* first_error = f + cuda::kBagFlagFirstError;
    cuda::DescribeBadPosition describe = [layout = layout_copy_, indices = bags.indices,
                                          offsets = bags.offsets, batch = bags.batch,
                                          stream](unsigned long long position) {
      BadIdFindings found;
      found.first_error = static_cast<int64_t>(position);
      found.first_warn.assign(static_cast<size_t>(layout->num_tables()), -1);
      IdWarnState unused;
      try {
        apply_id_policy(*layout, batch, found, read_back(indices, stream),
                        read_back(offsets, stream), unused);
      } catch (const Error& e) {
        return std::string(e.what());
      }
      TESSERA_THROW(Internal, "the id policy let the bad id at position " << position << " pass");
    };
    cuda_->deferred_checks().queue(
        cuda::CheckedOp::EmbeddingBag, bags.indices, 0,
        [&](unsigned long long* flag) {
          TESSERA_CUDA_CHECK(
              cudaMemcpyAsync(flag, first_error, sizeof(*flag), cudaMemcpyDeviceToDevice, stream));
        },
        std::move(describe));
  }

  // The batch's validation flags [kBagFlagFirstWarn + T]: one buffer, reset on the stream by
  // every resolve (stream order keeps a batch's reads before the next batch's reset).
  unsigned long long* flags_for(int64_t tables) {
    if (!flags_.defined() || flags_.numel() != cuda::kBagFlagFirstWarn + tables)
      flags_ = backend_->empty({cuda::kBagFlagFirstWarn + tables}, DType::I64);
    return reinterpret_cast<unsigned long long*>(flags_.data<int64_t>());
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
      layout_copy_ = std::make_shared<const TableLayout>(layout);
      meta_ = backend_->to_device(
          Tensor::host_from<int64_t>({static_cast<int64_t>(meta_host_.size())}, meta_host_));
    }
    return meta_;
  }

  Backend* backend_;
  cuda::CudaBackend* cuda_;
  cudaStream_t stream_;
  UploadRing ring_;
  std::vector<int64_t> meta_host_;
  Tensor meta_;
  // The layout meta_ was made from, for deferred checks' messages (which may outlive the call).
  std::shared_ptr<const TableLayout> layout_copy_;
  Tensor flags_;
};

}  // namespace

void order_device_streams(Backend& consumer, Backend& producer) {
  cuda_of(consumer).wait_for(cuda_of(producer));
}

std::unique_ptr<BagOps> make_device_bag_ops(Backend& backend) {
  return std::make_unique<DeviceBagOps>(backend);
}

}  // namespace tessera::emb
