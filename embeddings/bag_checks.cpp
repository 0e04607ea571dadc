// The parts of the bag ops that every implementation shares: edge checks, the id policy's
// messages and warnings, optimizer state shapes and step parameters.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>

#include "embeddings/bag_ops.h"
#include "embeddings/table_rows.h"
#include "host/core/checked_size.h"
#include "host/core/enum_table.h"

namespace tessera::emb {

const char* sparse_optimizer_name(SparseOptimizer o) {
  static constexpr const char* kNames[] = {"sgd", "adagrad", "rowwise_adagrad", "lazy_adam"};
  return enum_entry<SparseOptimizer::LazyAdam>(o, kNames, "?");
}

int state_slots(SparseOptimizer kind) {
  static constexpr int kSlots[] = {0, 1, 1, 2};  // sgd, adagrad, rowwise_adagrad, lazy_adam
  return enum_entry<SparseOptimizer::LazyAdam>(kind, kSlots, 0);
}

int64_t state_size(SparseOptimizer kind, const TableLayout& layout) {
  return kind == SparseOptimizer::RowwiseAdagrad ? layout.total_rows() : layout.total_elements();
}

namespace {

// Host memory for large tables on transparent huge pages (2 MiB): row lookups are random, and
// with 4 KiB pages nearly every one also misses the TLB. Zero-filled like HostBuffer; madvise is
// a hint (without THP the pages are ordinary ones and nothing changes).
class HugePageHostBuffer final : public HostMemoryBuffer {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;
  explicit HugePageHostBuffer(size_t bytes) : HostMemoryBuffer(bytes) {
    const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    ptr_ = std::aligned_alloc(kHugePage, rounded);
    if (!ptr_)
      TESSERA_THROW(Backend,
                    "host allocation of " << bytes << " bytes for embedding storage failed");
#if defined(MADV_HUGEPAGE)
    (void)madvise(ptr_, rounded, MADV_HUGEPAGE);
#endif
    std::memset(ptr_, 0, rounded);
  }
  ~HugePageHostBuffer() override {
    std::free(ptr_);
  }
};

// elements values of `bytes_each` bytes: f32 [elements], or (2 bytes) packed i32 words.
Tensor storage_tensor(Backend& backend, int64_t elements, int64_t bytes_each = 4) {
  constexpr int64_t kHugePageMinBytes = int64_t{8} << 20;
  const int64_t words = bytes_each == 4 ? elements : packed_words(elements);
  const DType dtype = bytes_each == 4 ? DType::F32 : DType::I32;
  if (backend.device().kind == DeviceKind::Host && words * 4 >= kHugePageMinBytes)
    return Tensor(std::make_shared<HugePageHostBuffer>(static_cast<size_t>(words) * 4),
                  Shape{words}, dtype);
  return backend.empty({words}, dtype);
}

}  // namespace

BackendStorage::BackendStorage(Backend& backend, const TableLayout& layout,
                               const SparseOptimizerConfig& opt, TableDType dtype)
    : backend_(&backend), dtype_(dtype) {
  // Tables larger than the machine's memory fail here by name, not in the allocator (or by the
  // kernel's OOM killer once the zero-fill touches the pages).
  const int64_t bytes = table_dtype_bytes(dtype) * layout.total_elements() +
                        4 * state_slots(opt.kind) * state_size(opt.kind, layout);
  if (backend.device().kind == DeviceKind::Host) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    const int64_t physical = pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
    if (physical > 0 && bytes > physical)
      TESSERA_THROW(Config, "embedding tables and optimizer state need "
                                << bytes / (1 << 20) << " MiB; this machine has "
                                << physical / (1 << 20)
                                << " MiB of memory (make the tables smaller, "
                                << "or shard them over GPUs)");
  }
  weights_ = storage_tensor(backend, layout.total_elements(), table_dtype_bytes(dtype));
  for (int s = 0; s < state_slots(opt.kind); ++s) {
    states_.push_back(storage_tensor(backend, state_size(opt.kind, layout)));
    const bool adagrad =
        opt.kind == SparseOptimizer::Adagrad || opt.kind == SparseOptimizer::RowwiseAdagrad;
    if (adagrad && opt.initial_accumulator != 0.f)
      backend.fill(states_.back(), opt.initial_accumulator);
  }
}

SparseStepParams step_params(const SparseOptimizerConfig& c, int64_t step) {
  TESSERA_CHECK(step >= 1, "optimizer step numbers start at 1, got " << step);
  SparseStepParams p;
  p.lr = c.lr;
  p.eps = c.eps;
  p.beta1 = c.beta1;
  p.beta2 = c.beta2;
  p.bc1 =
      static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta1), static_cast<double>(step)));
  p.bc2 =
      static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta2), static_cast<double>(step)));
  return p;
}

void check_bags_shape(const TableLayout& layout, const Bags& bags, Device device) {
  TESSERA_CHECK(bags.batch >= 0, "negative batch size " << bags.batch);
  TESSERA_CHECK(
      bags.indices.defined() && bags.indices.dtype() == DType::I64 && bags.indices.rank() == 1,
      "bag indices must be i64 [nnz], got "
          << (bags.indices.defined() ? bags.indices.describe() : "none"));
  TESSERA_CHECK(
      bags.offsets.defined() && bags.offsets.dtype() == DType::I64 && bags.offsets.rank() == 1,
      "bag offsets must be i64 [T*B+1], got "
          << (bags.offsets.defined() ? bags.offsets.describe() : "none"));
  // T x B in checked arithmetic: the batch may come from another process's message.
  const std::optional<uint64_t> product =
      checked_mul(static_cast<uint64_t>(layout.num_tables()), static_cast<uint64_t>(bags.batch));
  TESSERA_CHECK(product && *product < static_cast<uint64_t>(bags.offsets.dim(0)),
                "bag offsets: " << bags.offsets.dim(0) << " entries cannot hold "
                                << layout.num_tables() << " tables x batch " << bags.batch);
  const int64_t n_bags = static_cast<int64_t>(*product);
  TESSERA_CHECK(bags.offsets.dim(0) == n_bags + 1,
                "bag offsets: " << bags.offsets.dim(0) << " entries for " << layout.num_tables()
                                << " tables x batch " << bags.batch
                                << " (need T*B+1 = " << n_bags + 1 << ")");
  TESSERA_CHECK(bags.indices.device() == device && bags.offsets.device() == device,
                "bags must live on " << device.str() << " (indices on "
                                     << bags.indices.device().str() << ", offsets on "
                                     << bags.offsets.device().str() << ")");
  if (bags.weights.defined()) {
    TESSERA_CHECK(
        bags.weights.dtype() == DType::F32 && bags.weights.numel() == bags.indices.numel(),
        "per-sample weights must be f32 [nnz = " << bags.indices.numel() << "], got "
                                                 << bags.weights.describe());
    TESSERA_CHECK(bags.weights.device() == device,
                  "per-sample weights must live on " << device.str());
  }
}

void report_bad_offsets(const TableLayout& layout, int64_t batch, int64_t first_bad_bag,
                        const std::vector<int64_t>& offsets, int64_t nnz) {
  if (first_bad_bag < 0) return;
  const int64_t b = first_bad_bag;
  const int64_t n_bags = static_cast<int64_t>(offsets.size()) - 1;
  if (b == 0 && offsets[0] != 0)
    TESSERA_THROW(Data, "bag offsets[0] is " << offsets[0] << ", must be 0");
  if (b == n_bags && offsets[b] >= offsets[b - 1])
    TESSERA_THROW(Data, "bag offsets[" << n_bags << "] (the end) is " << offsets[n_bags]
                                       << ", must equal the number of indices " << nnz);
  const int64_t t = batch > 0 ? (b - 1) / batch : 0;
  const int64_t s = batch > 0 ? (b - 1) % batch : 0;
  TESSERA_THROW(Data, "bag offsets decrease at offsets["
                          << b << "] = " << offsets[b] << " < offsets[" << b - 1
                          << "] = " << offsets[b - 1] << " (end of the bag of "
                          << layout.table_label(t) << ", sample " << s << ")");
}

namespace {
std::mutex& warnings_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::string>& warnings_store() {
  static auto* v = new std::vector<std::string>();
  return *v;
}
}  // namespace

const std::vector<std::string>& id_policy_warnings() {
  return warnings_store();
}

void apply_id_policy(const TableLayout& layout, int64_t batch, const BadIdFindings& found,
                     const std::vector<int64_t>& ids, const std::vector<int64_t>& offsets,
                     IdWarnState& warn) {
  const int64_t n_bags = static_cast<int64_t>(offsets.size()) - 1;
  auto where = [&](int64_t j, int64_t* t, int64_t* s) {
    const int64_t b = bag_of_position(offsets.data(), n_bags, j);
    *t = b / batch;
    *s = b % batch;
  };
  if (found.first_error >= 0) {
    int64_t t = 0, s = 0;
    where(found.first_error, &t, &s);
    TESSERA_THROW(Data, "embedding id " << ids[found.first_error] << " in " << layout.table_label(t)
                                        << ", sample " << s << " (index position "
                                        << found.first_error << ") is outside the table's rows [0, "
                                        << layout.spec(t).rows << ") (id policy 'error')");
  }
  warn.clamped_total += found.clamped;
  if (warn.warned.size() < static_cast<size_t>(layout.num_tables()))
    warn.warned.resize(static_cast<size_t>(layout.num_tables()), false);
  for (size_t tt = 0; tt < found.first_warn.size(); ++tt) {
    const int64_t j = found.first_warn[tt];
    if (j < 0 || warn.warned[tt]) continue;
    warn.warned[tt] = true;
    int64_t t = 0, s = 0;
    where(j, &t, &s);
    std::ostringstream os;
    os << "warning: embedding id " << ids[j] << " in " << layout.table_label(t) << ", sample " << s
       << " (index position " << j << ") is outside the table's rows [0, " << layout.spec(t).rows
       << "); clamped (id policy 'warn_clamp'; warned once per table; " << found.clamped
       << " ids clamped in this batch)";
    std::lock_guard<std::mutex> lock(warnings_mutex());
    warnings_store().push_back(os.str());
    std::cerr << os.str() << "\n";
  }
}

bool BadIdFindings::any() const {
  if (first_error >= 0) return true;
  for (int64_t j : first_warn)
    if (j >= 0) return true;
  return false;
}

}  // namespace tessera::emb
