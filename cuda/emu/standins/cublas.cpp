// The cuBLAS stand-in (cuda/emu/include/cublas_v2.h): handles, their stream and modes, and the
// 64-bit SGEMM. Each entry point records its call and checks, in order, the argument rules the
// cuBLAS documentation states for it, then the emulator's own (every matrix's referenced range
// inside one device allocation). The first broken rule returns the library's status and queues
// nothing; otherwise the product is queued on the handle's stream (tessera::emu::enqueue) and
// computed there in FP32 by oneDNN's row-major sgemm on the transposed problem.
#include <cublas_v2.h>
#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

#include "cuda/emu/cost_model.h"
#include "cuda/emu/device_memory.h"
#include "cuda/emu/standin.h"
#include "cuda/emu/stream_model.h"
#include "host/core/error.h"

struct cublasContext {
  int device = 0;  // current when cublasCreate ran: the library's context is tied to it
  cudaStream_t stream = nullptr;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
  cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
  bool destroyed = false;
};

namespace tessera::emu {
namespace {

constexpr const char* kLib = "cuBLAS";
constexpr const char* kRuleHandle = "handle created by cublasCreate and not destroyed";

// Every context ever created, destroyed ones included (marked), so a destroyed handle is
// recognised as such and its address is never reused for a new one while the process runs.
struct Handles {
  std::mutex mutex;
  std::map<const cublasContext*, std::unique_ptr<cublasContext>> all;
};
Handles& handles() {
  static auto* h = new Handles();  // never destroyed: handles may be released from static dtors
  return *h;
}

// The live context behind `handle`, or nullptr after recording the broken handle rule.
cublasContext* live_context(const char* entry, cublasHandle_t handle) {
  Handles& h = handles();
  std::lock_guard<std::mutex> lock(h.mutex);
  const auto it = h.all.find(handle);
  const bool ok = it != h.all.end() && !it->second->destroyed;
  std::string detail;
  if (!ok) {
    std::ostringstream d;
    d << "handle " << static_cast<const void*>(handle)
      << (it == h.all.end() ? " was never created" : " was destroyed");
    detail = d.str();
  }
  return check_rule(kLib, entry, kRuleHandle, ok, detail) ? it->second.get() : nullptr;
}

std::string values(const char* names, long long a, long long b = 0, long long c = 0) {
  std::ostringstream d;
  d << names << " " << a << ", " << b << ", " << c;
  return d.str();
}

bool valid_op(cublasOperation_t op) {
  return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C;
}

// Elements a column-major rows x cols operand with leading dimension ld spans (0 if empty), or -1
// when that does not fit in 64 bits.
long long referenced_elements(int64_t rows, int64_t cols, int64_t ld) {
  if (rows <= 0 || cols <= 0) return 0;
  long long span = 0;
  if (__builtin_mul_overflow(static_cast<long long>(ld), static_cast<long long>(cols - 1), &span) ||
      __builtin_add_overflow(span, static_cast<long long>(rows), &span))
    return -1;
  return span;
}

// The emulator's own rule: `what` (rows x cols, leading dimension ld) lies in one allocation.
bool check_operand_range(const char* what, const char* rule, const float* p, int64_t rows,
                         int64_t cols, int64_t ld) {
  const long long elements = referenced_elements(rows, cols, ld);
  if (elements == 0) return true;
  const bool ok = elements > 0 && is_device_range(p, static_cast<size_t>(elements) * sizeof(float));
  std::ostringstream d;
  if (!ok) {
    d << what << " " << static_cast<const void*>(p) << ": " << rows << " x " << cols << ", ld "
      << ld << " spans " << elements << " floats";
  }
  return check_rule(kLib, "cublasSgemm_64", rule, ok, d.str());
}

// Where alpha and beta must live in `mode`: host memory (not device) or device memory.
bool check_scalar_location(cublasPointerMode_t mode, const float* alpha, const float* beta) {
  const bool device = mode == CUBLAS_POINTER_MODE_DEVICE;
  const bool ok = is_device_range(alpha, sizeof(float)) == device &&
                  is_device_range(beta, sizeof(float)) == device;
  std::ostringstream d;
  if (!ok) {
    d << "pointer mode " << (device ? "DEVICE" : "HOST") << ", alpha "
      << (is_device_range(alpha, sizeof(float)) ? "device" : "host") << ", beta "
      << (is_device_range(beta, sizeof(float)) ? "device" : "host");
  }
  return check_rule(kLib, "cublasSgemm_64",
                    "alpha and beta are host pointers in host pointer mode, device pointers in "
                    "device pointer mode",
                    ok, d.str());
}

// The launch rules: the handle is used on the device it was created on (cuBLAS ties a handle to
// the device current at cublasCreate) and its stream belongs to that device (a launch to another
// device's stream fails). Broken: the launch would fail, CUBLAS_STATUS_EXECUTION_FAILED.
bool launch_rules(const char* entry, const cublasContext& c) {
  const int current = detail::current_device();
  const int stream_device = detail::stream_device(c.stream);
  return check_rule(kLib, entry, "the current device is the one the handle was created on",
                    current == c.device,
                    values("handle device, current device", c.device, current)) &&
         check_rule(kLib, entry, "the handle's stream exists and belongs to the handle's device",
                    stream_device == c.device,
                    detail::stream_label(c.stream) + " (stream device " +
                        std::to_string(stream_device) + "), handle device " +
                        std::to_string(c.device));
}

// The emulator's rule: operands are memory of the handle's device (no peer access is enabled).
bool check_operand_device(const char* what, const void* p, int device) {
  const auto a = find_device_allocation(p);
  const bool ok = !a || a->device == device;  // not device memory at all: the range rule says so
  return check_rule(kLib, "cublasSgemm_64", "A, B and C are memory of the handle's device", ok,
                    ok ? ""
                       : std::string(what) + " is on device " + std::to_string(a->device) +
                             ", the handle's device is " + std::to_string(device));
}

struct Gemm {
  cublasOperation_t ta, tb;
  int64_t m, n, k;
  const float *a, *b;
  int64_t lda, ldb, ldc;
  float* c;
};

// The argument rules of cublas<t>gemm as documented (all give CUBLAS_STATUS_INVALID_VALUE).
bool documented_gemm_rules(const Gemm& g, const float* alpha, const float* beta,
                           cublasPointerMode_t mode) {
  const char* e = "cublasSgemm_64";
  const int64_t rows_a = g.ta == CUBLAS_OP_N ? g.m : g.k;
  const int64_t rows_b = g.tb == CUBLAS_OP_N ? g.k : g.n;
  return check_rule(kLib, e, "transa is CUBLAS_OP_N, CUBLAS_OP_T or CUBLAS_OP_C", valid_op(g.ta),
                    values("transa", g.ta)) &&
         check_rule(kLib, e, "transb is CUBLAS_OP_N, CUBLAS_OP_T or CUBLAS_OP_C", valid_op(g.tb),
                    values("transb", g.tb)) &&
         check_rule(kLib, e, "m, n, k >= 0", g.m >= 0 && g.n >= 0 && g.k >= 0,
                    values("m, n, k", g.m, g.n, g.k)) &&
         check_rule(kLib, e, "lda >= max(1, m) when transa is N, else max(1, k)",
                    g.lda >= std::max<int64_t>(1, rows_a), values("lda, m, k", g.lda, g.m, g.k)) &&
         check_rule(kLib, e, "ldb >= max(1, k) when transb is N, else max(1, n)",
                    g.ldb >= std::max<int64_t>(1, rows_b), values("ldb, k, n", g.ldb, g.k, g.n)) &&
         check_rule(kLib, e, "ldc >= max(1, m)", g.ldc >= std::max<int64_t>(1, g.m),
                    values("ldc, m", g.ldc, g.m)) &&
         check_rule(kLib, e, "alpha and beta are not null", alpha && beta) &&
         check_scalar_location(mode, alpha, beta) &&
         check_rule(kLib, e, "C is not null when it is written (m > 0 and n > 0)",
                    g.c || g.m == 0 || g.n == 0);
}

// The emulator's rules: what the product reads and writes lies inside device allocations.
bool emulator_gemm_rules(const Gemm& g, int device) {
  const bool n_a = g.ta == CUBLAS_OP_N, n_b = g.tb == CUBLAS_OP_N;
  if (g.m == 0 || g.n == 0) return true;  // nothing is read or written
  // A and B are not read when K = 0; C always is (or written).
  if ((g.k > 0 &&
       (!check_operand_device("A", g.a, device) || !check_operand_device("B", g.b, device))) ||
      !check_operand_device("C", g.c, device))
    return false;
  return check_operand_range("A", "A's referenced range (lda * (cols - 1) + rows) is device memory",
                             g.a, n_a ? g.m : g.k, n_a ? g.k : g.m, g.lda) &&
         check_operand_range("B", "B's referenced range (ldb * (cols - 1) + rows) is device memory",
                             g.b, n_b ? g.k : g.n, n_b ? g.n : g.k, g.ldb) &&
         check_operand_range("C", "C's referenced range (ldc * (n - 1) + m) is device memory", g.c,
                             g.m, g.n, g.ldc);
}

// C = beta * C over the m x n column-major block; beta == 0 writes zeros without reading C.
void scale_c(const Gemm& g, float beta) {
  for (int64_t j = 0; j < g.n; ++j) {
    float* col = g.c + j * g.ldc;
    for (int64_t i = 0; i < g.m; ++i) col[i] = beta == 0.f ? 0.f : beta * col[i];
  }
}

// In the queued work, before anything is read: the operands are still allocated (one released
// before the stream ran the product would be a use after free on the device).
// alpha and beta are given in device pointer mode (nullptr in host mode).
void require_operands_allocated(const Gemm& g, const float* alpha, const float* beta) {
  const char* rule =
      "A, B, C (and device alpha, beta) stay allocated until the queued work has run";
  const bool n_a = g.ta == CUBLAS_OP_N, n_b = g.tb == CUBLAS_OP_N;
  const struct {
    const char* name;
    const float* p;
    long long elements;
  } operands[] = {
      {"A", g.a, g.k ? referenced_elements(n_a ? g.m : g.k, n_a ? g.k : g.m, g.lda) : 0},
      {"B", g.b, g.k ? referenced_elements(n_b ? g.k : g.n, n_b ? g.n : g.k, g.ldb) : 0},
      {"C", g.c, referenced_elements(g.m, g.n, g.ldc)},
      {"alpha", alpha, alpha ? 1 : 0},
      {"beta", beta, beta ? 1 : 0}};
  for (const auto& o : operands) {
    if (o.elements <= 0 || is_device_range(o.p, static_cast<size_t>(o.elements) * sizeof(float)))
      continue;
    const std::string detail = std::string(o.name) + " was released before the work ran";
    check_rule(kLib, "cublasSgemm_64", rule, false, detail);
    TESSERA_THROW(Backend, "cublasSgemm_64 (cuBLAS stand-in, queued work): " << rule << " ("
                                                                             << detail << ")");
  }
  check_rule(kLib, "cublasSgemm_64", rule, true);
}

// Runs on the stream. Column-major C = alpha op(A) op(B) + beta C is, read row-major, C^T [n, m]
// = alpha op(B)^T op(A)^T + beta C^T, where each column-major operand read row-major is its
// transpose with the same leading dimension: oneDNN's row-major sgemm with the operands swapped.
void run_gemm(const Gemm& g, float alpha, float beta) {
  if (g.m == 0 || g.n == 0) return;
  if (beta == 0.f) scale_c(g, 0.f);  // cuBLAS: beta == 0 means C is not read (NaN does not stay)
  if (g.k == 0 || alpha == 0.f) {
    if (beta != 0.f) scale_c(g, beta);
    return;
  }
  const double flops = 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * g.k;
  const int threads = omp_get_max_threads();
  const bool serial = flops < 64.0 * 1024 * 1024 && threads > 1;  // as HostBackend::gemm_impl
  if (serial) omp_set_num_threads(1);
  const dnnl_status_t st =
      dnnl_sgemm(g.tb == CUBLAS_OP_N ? 'N' : 'T', g.ta == CUBLAS_OP_N ? 'N' : 'T', g.n, g.m, g.k,
                 alpha, g.b, g.ldb, g.a, g.lda, beta, g.c, g.ldc);
  if (serial) omp_set_num_threads(threads);
  TESSERA_CHECK(st == dnnl_success,
                "cublasSgemm_64 stand-in: oneDNN sgemm failed with status " << st);
}

}  // namespace
}  // namespace tessera::emu

using tessera::emu::check_rule;
using tessera::emu::kLib;
using tessera::emu::record_call;

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  record_call(kLib, "cublasCreate");
  if (!check_rule(kLib, "cublasCreate", "handle (the output pointer) is not null", handle))
    return CUBLAS_STATUS_INVALID_VALUE;
  auto& h = tessera::emu::handles();
  auto context = std::make_unique<cublasContext>();
  context->device = tessera::emu::detail::current_device();
  std::lock_guard<std::mutex> lock(h.mutex);
  *handle = context.get();
  h.all.emplace(context.get(), std::move(context));
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  record_call(kLib, "cublasDestroy");
  cublasContext* c = tessera::emu::live_context("cublasDestroy", handle);
  if (!c) return CUBLAS_STATUS_NOT_INITIALIZED;
  std::lock_guard<std::mutex> lock(tessera::emu::handles().mutex);
  c->destroyed = true;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  record_call(kLib, "cublasSetStream");
  cublasContext* c = tessera::emu::live_context("cublasSetStream", handle);
  if (!c) return CUBLAS_STATUS_NOT_INITIALIZED;
  c->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
  record_call(kLib, "cublasSetPointerMode");
  cublasContext* c = tessera::emu::live_context("cublasSetPointerMode", handle);
  if (!c) return CUBLAS_STATUS_NOT_INITIALIZED;
  const bool ok = mode == CUBLAS_POINTER_MODE_HOST || mode == CUBLAS_POINTER_MODE_DEVICE;
  if (!check_rule(kLib, "cublasSetPointerMode", "mode is CUBLAS_POINTER_MODE_HOST or _DEVICE", ok,
                  "mode " + std::to_string(static_cast<int>(mode))))
    return CUBLAS_STATUS_INVALID_VALUE;
  c->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  record_call(kLib, "cublasSetMathMode");
  cublasContext* c = tessera::emu::live_context("cublasSetMathMode", handle);
  if (!c) return CUBLAS_STATUS_NOT_INITIALIZED;
  // A base mode, optionally or-ed with CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION.
  const int base = static_cast<int>(mode) & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  const bool ok = base >= CUBLAS_DEFAULT_MATH && base <= CUBLAS_TF32_TENSOR_OP_MATH;
  if (!check_rule(kLib, "cublasSetMathMode", "mode is a cublasMath_t the library defines", ok,
                  "mode " + std::to_string(static_cast<int>(mode))))
    return CUBLAS_STATUS_INVALID_VALUE;
  c->math_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm_64(cublasHandle_t handle, cublasOperation_t transa,
                              cublasOperation_t transb, int64_t m, int64_t n, int64_t k,
                              const float* alpha, const float* A, int64_t lda, const float* B,
                              int64_t ldb, const float* beta, float* C, int64_t ldc) {
  record_call(kLib, "cublasSgemm_64");
  cublasContext* context = tessera::emu::live_context("cublasSgemm_64", handle);
  if (!context) return CUBLAS_STATUS_NOT_INITIALIZED;
  const tessera::emu::Gemm g{transa, transb, m, n, k, A, B, lda, ldb, ldc, C};
  const cublasPointerMode_t mode = context->pointer_mode;
  if (!tessera::emu::documented_gemm_rules(g, alpha, beta, mode) ||
      !tessera::emu::emulator_gemm_rules(g, context->device))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;  // nothing to do, nothing launched
  if (!tessera::emu::launch_rules("cublasSgemm_64", *context))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  // Host scalars are read at the call (the caller may reuse them at once); device scalars when
  // the queued work runs, in stream order.
  const bool host_scalars = mode == CUBLAS_POINTER_MODE_HOST;
  const float alpha_now = host_scalars ? *alpha : 0.f, beta_now = host_scalars ? *beta : 0.f;
  // For the cost model (cost_model.h): 2mnk FLOPs, each operand read once, C written once (and
  // read when beta may be non-zero).
  const double mn = static_cast<double>(m) * static_cast<double>(n);
  const bool reads_c = !host_scalars || beta_now != 0.f;
  tessera::emu::record_vendor_work(
      "cublasSgemm_64", 2.0 * mn * static_cast<double>(k),
      4.0 * (static_cast<double>(m) * k + static_cast<double>(k) * n + (reads_c ? mn : 0.0)),
      4.0 * mn);
  tessera::emu::enqueue(context->stream, "cublasSgemm_64", [=] {
    tessera::emu::require_operands_allocated(g, host_scalars ? nullptr : alpha,
                                             host_scalars ? nullptr : beta);
    tessera::emu::run_gemm(g, host_scalars ? alpha_now : *alpha, host_scalars ? beta_now : *beta);
  });
  return CUBLAS_STATUS_SUCCESS;
}
