#pragma once
// Device-side CUDA for the emulation build: the index variables, barriers, warp primitives,
// atomics, memory-access intrinsics and math that kernel sources call, as host C++.
//
// How it maps (see cuda/emu/README.md for what is and is not checked):
//   - threadIdx/blockIdx/blockDim/gridDim read per-OS-thread variables that the block scheduler
//     sets before it resumes each fiber (one fiber per CUDA thread).
//   - __syncthreads() and the warp collectives suspend the calling fiber until every thread
//     they wait for has arrived; the last arrival releases the rest. Lanes really exchange
//     values: a shuffle returns what the source lane passed.
//   - Atomics are plain read-modify-write: the emulator runs one block at a time per OS thread
//     and fibers switch only inside barriers and warp collectives, so no update interleaves.
//     Integer atomics wrap like the hardware (computed in unsigned arithmetic: no UB).
//   - Barriers and collectives take the call site through __builtin_FILE/__builtin_LINE
//     default arguments, so a divergence report names file:line.
#include <math.h>  // the global float overloads (sqrt(float), ...) that CUDA code calls

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cuda/emu/vector_types.h"

namespace tessera::emu {
namespace detail {

// Set by the block scheduler before each fiber resumes; constant-initialised inline
// thread_locals, so reading them costs one TLS load and no wrapper call.
inline thread_local uint3 t_thread_idx{0, 0, 0};
inline thread_local uint3 t_block_idx{0, 0, 0};
inline thread_local dim3 t_block_dim{1, 1, 1};
inline thread_local dim3 t_grid_dim{1, 1, 1};
inline thread_local unsigned char* t_dynamic_shared = nullptr;
// True while the shared-memory race detector runs: atomics on shared memory announce
// themselves so the detector does not report them as conflicting writes.
inline thread_local bool t_track_shared_atomics = false;

enum class BarrierKind : uint8_t { Sync, Count, And, Or };
enum class WarpOpKind : uint8_t {
  SyncWarp,
  ShflIdx,
  ShflUp,
  ShflDown,
  ShflXor,
  Ballot,
  Any,
  All,
  MatchAny,
  MatchAll,
  ReduceAdd,
  ReduceMinU,
  ReduceMinS,
  ReduceMaxU,
  ReduceMaxS,
  ReduceAnd,
  ReduceOr,
  ReduceXor,
};
const char* warp_op_name(WarpOpKind op);

// Implemented by the block scheduler (block_runner.cpp). They throw tessera::Error on misuse
// (mask without the calling lane, lanes that disagree on the collective, ...); the scheduler
// turns that into a launch error naming the kernel, block and thread.
int block_barrier(BarrierKind kind, int predicate, const char* file, int line);
uint64_t warp_collective(WarpOpKind op, unsigned mask, uint64_t value, unsigned value_bytes,
                         int arg, int width, const char* file, int line);
unsigned active_mask();
void note_shared_atomic(const void* address, size_t bytes);
[[noreturn]] void device_trap(const char* what, const char* file, int line);

template <typename T>
uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8,
                "warp collectives take 1-, 2-, 4- or 8-byte trivially copyable values");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

template <typename T>
inline void atomic_hook(T* p) {
  if (t_track_shared_atomics) note_shared_atomic(p, sizeof(T));
}

}  // namespace detail

// The kernel's dynamic shared memory (the launch's smem bytes, fresh for every block and
// filled with 0xFF bytes, i.e. NaN floats and -1 integers, so reading it before writing shows).
template <typename T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(detail::t_dynamic_shared);
}

}  // namespace tessera::emu

// ---- built-in variables (global namespace, as in CUDA) -----------------------------------------
#define threadIdx (static_cast<const uint3&>(::tessera::emu::detail::t_thread_idx))
#define blockIdx (static_cast<const uint3&>(::tessera::emu::detail::t_block_idx))
#define blockDim (static_cast<const dim3&>(::tessera::emu::detail::t_block_dim))
#define gridDim (static_cast<const dim3&>(::tessera::emu::detail::t_grid_dim))
constexpr int warpSize = 32;

// ---- barriers ---------------------------------------------------------------------------------
inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::tessera::emu::detail::block_barrier(::tessera::emu::detail::BarrierKind::Sync, 0, file, line);
}
inline int __syncthreads_count(int predicate, const char* file = __builtin_FILE(),
                               int line = __builtin_LINE()) {
  return ::tessera::emu::detail::block_barrier(::tessera::emu::detail::BarrierKind::Count,
                                               predicate, file, line);
}
inline int __syncthreads_and(int predicate, const char* file = __builtin_FILE(),
                             int line = __builtin_LINE()) {
  return ::tessera::emu::detail::block_barrier(::tessera::emu::detail::BarrierKind::And,
                                               predicate, file, line);
}
inline int __syncthreads_or(int predicate, const char* file = __builtin_FILE(),
                            int line = __builtin_LINE()) {
  return ::tessera::emu::detail::block_barrier(::tessera::emu::detail::BarrierKind::Or, predicate,
                                               file, line);
}
// Fences order memory between threads on a GPU; here only one fiber runs at a time.
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}

// ---- warp primitives --------------------------------------------------------------------------
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(),
                       int line = __builtin_LINE()) {
  ::tessera::emu::detail::warp_collective(::tessera::emu::detail::WarpOpKind::SyncWarp, mask, 0,
                                          0, 0, warpSize, file, line);
}
inline unsigned __activemask() { return ::tessera::emu::detail::active_mask(); }

template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
              const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  using namespace ::tessera::emu::detail;
  return from_bits<T>(warp_collective(WarpOpKind::ShflIdx, mask, to_bits(var), sizeof(T),
                                      src_lane, width, file, line));
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                 const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  using namespace ::tessera::emu::detail;
  return from_bits<T>(warp_collective(WarpOpKind::ShflUp, mask, to_bits(var), sizeof(T),
                                      static_cast<int>(delta), width, file, line));
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                   const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  using namespace ::tessera::emu::detail;
  return from_bits<T>(warp_collective(WarpOpKind::ShflDown, mask, to_bits(var), sizeof(T),
                                      static_cast<int>(delta), width, file, line));
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  using namespace ::tessera::emu::detail;
  return from_bits<T>(warp_collective(WarpOpKind::ShflXor, mask, to_bits(var), sizeof(T),
                                      lane_mask, width, file, line));
}
inline unsigned __ballot_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  using namespace ::tessera::emu::detail;
  return static_cast<unsigned>(warp_collective(WarpOpKind::Ballot, mask, predicate != 0, 4, 0,
                                               warpSize, file, line));
}
inline int __any_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
  using namespace ::tessera::emu::detail;
  return static_cast<int>(
      warp_collective(WarpOpKind::Any, mask, predicate != 0, 4, 0, warpSize, file, line));
}
inline int __all_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
  using namespace ::tessera::emu::detail;
  return static_cast<int>(
      warp_collective(WarpOpKind::All, mask, predicate != 0, 4, 0, warpSize, file, line));
}
template <typename T>
unsigned __match_any_sync(unsigned mask, T value, const char* file = __builtin_FILE(),
                          int line = __builtin_LINE()) {
  using namespace ::tessera::emu::detail;
  return static_cast<unsigned>(warp_collective(WarpOpKind::MatchAny, mask, to_bits(value),
                                               sizeof(T), 0, warpSize, file, line));
}
template <typename T>
unsigned __match_all_sync(unsigned mask, T value, int* pred, const char* file = __builtin_FILE(),
                          int line = __builtin_LINE()) {
  using namespace ::tessera::emu::detail;
  unsigned r = static_cast<unsigned>(warp_collective(WarpOpKind::MatchAll, mask, to_bits(value),
                                                     sizeof(T), 0, warpSize, file, line));
  *pred = r != 0;
  return r;
}
#define TESSERA_EMU_WARP_REDUCE(name, T, kind)                                                 \
  inline T name(unsigned mask, T value, const char* file = __builtin_FILE(),                   \
                int line = __builtin_LINE()) {                                                 \
    using namespace ::tessera::emu::detail;                                                    \
    return from_bits<T>(warp_collective(WarpOpKind::kind, mask, to_bits(value), sizeof(T), 0, \
                                        warpSize, file, line));                               \
  }
TESSERA_EMU_WARP_REDUCE(__reduce_add_sync, unsigned, ReduceAdd)
TESSERA_EMU_WARP_REDUCE(__reduce_add_sync, int, ReduceAdd)
TESSERA_EMU_WARP_REDUCE(__reduce_min_sync, unsigned, ReduceMinU)
TESSERA_EMU_WARP_REDUCE(__reduce_min_sync, int, ReduceMinS)
TESSERA_EMU_WARP_REDUCE(__reduce_max_sync, unsigned, ReduceMaxU)
TESSERA_EMU_WARP_REDUCE(__reduce_max_sync, int, ReduceMaxS)
TESSERA_EMU_WARP_REDUCE(__reduce_and_sync, unsigned, ReduceAnd)
TESSERA_EMU_WARP_REDUCE(__reduce_or_sync, unsigned, ReduceOr)
TESSERA_EMU_WARP_REDUCE(__reduce_xor_sync, unsigned, ReduceXor)
#undef TESSERA_EMU_WARP_REDUCE

// ---- atomics ----------------------------------------------------------------------------------
namespace tessera::emu::detail {
template <typename T, typename F>
T atomic_rmw(T* p, F update) {
  atomic_hook(p);
  T old = *p;
  *p = update(old);
  return old;
}
// Wrapping integer arithmetic, as the hardware does.
template <typename T>
T wrap_add(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
}
template <typename T>
T wrap_sub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
}
}  // namespace tessera::emu::detail

#define TESSERA_EMU_INT_ATOMICS(T)                                                             \
  inline T atomicAdd(T* p, T v) {                                                              \
    return ::tessera::emu::detail::atomic_rmw(                                                 \
        p, [v](T o) { return ::tessera::emu::detail::wrap_add(o, v); });                       \
  }                                                                                            \
  inline T atomicSub(T* p, T v) {                                                              \
    return ::tessera::emu::detail::atomic_rmw(                                                 \
        p, [v](T o) { return ::tessera::emu::detail::wrap_sub(o, v); });                       \
  }                                                                                            \
  inline T atomicExch(T* p, T v) {                                                             \
    return ::tessera::emu::detail::atomic_rmw(p, [v](T) { return v; });                       \
  }                                                                                            \
  inline T atomicMin(T* p, T v) {                                                              \
    return ::tessera::emu::detail::atomic_rmw(p, [v](T o) { return v < o ? v : o; });          \
  }                                                                                            \
  inline T atomicMax(T* p, T v) {                                                              \
    return ::tessera::emu::detail::atomic_rmw(p, [v](T o) { return v > o ? v : o; });          \
  }                                                                                            \
  inline T atomicAnd(T* p, T v) {                                                              \
    return ::tessera::emu::detail::atomic_rmw(p, [v](T o) { return static_cast<T>(o & v); });  \
  }                                                                                            \
  inline T atomicOr(T* p, T v) {                                                               \
    return ::tessera::emu::detail::atomic_rmw(p, [v](T o) { return static_cast<T>(o | v); });  \
  }                                                                                            \
  inline T atomicXor(T* p, T v) {                                                              \
    return ::tessera::emu::detail::atomic_rmw(p, [v](T o) { return static_cast<T>(o ^ v); });  \
  }                                                                                            \
  inline T atomicCAS(T* p, T compare, T v) {                                                   \
    return ::tessera::emu::detail::atomic_rmw(p, [=](T o) { return o == compare ? v : o; });   \
  }
TESSERA_EMU_INT_ATOMICS(int)
TESSERA_EMU_INT_ATOMICS(unsigned int)
TESSERA_EMU_INT_ATOMICS(long long)
TESSERA_EMU_INT_ATOMICS(unsigned long long)
#undef TESSERA_EMU_INT_ATOMICS

inline unsigned short atomicCAS(unsigned short* p, unsigned short compare, unsigned short v) {
  return ::tessera::emu::detail::atomic_rmw(p, [=](unsigned short o) {
    return o == compare ? v : o;
  });
}
inline float atomicAdd(float* p, float v) {
  return ::tessera::emu::detail::atomic_rmw(p, [v](float o) { return o + v; });
}
inline double atomicAdd(double* p, double v) {
  return ::tessera::emu::detail::atomic_rmw(p, [v](double o) { return o + v; });
}
inline float atomicExch(float* p, float v) {
  return ::tessera::emu::detail::atomic_rmw(p, [v](float) { return v; });
}
// atomicInc/Dec wrap at `limit` exactly as documented: ((old >= limit) ? 0 : old + 1), and
// (((old == 0) || (old > limit)) ? limit : old - 1).
inline unsigned atomicInc(unsigned* p, unsigned limit) {
  return ::tessera::emu::detail::atomic_rmw(p, [limit](unsigned o) {
    return o >= limit ? 0u : o + 1u;
  });
}
inline unsigned atomicDec(unsigned* p, unsigned limit) {
  return ::tessera::emu::detail::atomic_rmw(p, [limit](unsigned o) {
    return (o == 0u || o > limit) ? limit : o - 1u;
  });
}
#define TESSERA_EMU_SCOPED_ATOMIC(name)                                           \
  template <typename T, typename... A>                                            \
  auto name##_block(T* p, A... a) -> decltype(name(p, a...)) { return name(p, a...); } \
  template <typename T, typename... A>                                            \
  auto name##_system(T* p, A... a) -> decltype(name(p, a...)) { return name(p, a...); }
TESSERA_EMU_SCOPED_ATOMIC(atomicAdd)
TESSERA_EMU_SCOPED_ATOMIC(atomicSub)
TESSERA_EMU_SCOPED_ATOMIC(atomicExch)
TESSERA_EMU_SCOPED_ATOMIC(atomicMin)
TESSERA_EMU_SCOPED_ATOMIC(atomicMax)
TESSERA_EMU_SCOPED_ATOMIC(atomicCAS)
#undef TESSERA_EMU_SCOPED_ATOMIC

// ---- memory-access intrinsics -----------------------------------------------------------------
template <typename T>
T __ldg(const T* p) { return *p; }
template <typename T>
T __ldcg(const T* p) { return *p; }
template <typename T>
T __ldca(const T* p) { return *p; }
template <typename T>
T __ldcs(const T* p) { return *p; }
template <typename T>
T __ldlu(const T* p) { return *p; }
template <typename T>
T __ldcv(const T* p) { return *p; }
template <typename T>
void __stcg(T* p, T v) { *p = v; }
template <typename T>
void __stcs(T* p, T v) { *p = v; }
template <typename T>
void __stwb(T* p, T v) { *p = v; }
template <typename T>
void __stwt(T* p, T v) { *p = v; }

// ---- integer intrinsics -----------------------------------------------------------------------
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) {
  return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x));
}
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned long long __brevll(unsigned long long x) {
  unsigned long long r = 0;
  for (int i = 0; i < 64; ++i) r |= ((x >> i) & 1ull) << (63 - i);
  return r;
}
// The low 24 bits of each operand, sign-extended (shifted as unsigned: no UB for negatives).
inline int __mul24(int a, int b) {
  const int64_t a24 = static_cast<int32_t>(static_cast<uint32_t>(a) << 8) >> 8;
  const int64_t b24 = static_cast<int32_t>(static_cast<uint32_t>(b) << 8) >> 8;
  return static_cast<int>(static_cast<uint32_t>(static_cast<uint64_t>(a24 * b24)));
}
inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xffffffu) * (b & 0xffffffu); }
inline int __mulhi(int a, int b) {
  return static_cast<int>((static_cast<int64_t>(a) * static_cast<int64_t>(b)) >> 32);
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<uint64_t>(a) * b) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline long long __mul64hi(long long a, long long b) {
  return static_cast<long long>((static_cast<__int128>(a) * b) >> 64);
}

// ---- float intrinsics and conversions ---------------------------------------------------------
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / std::cbrt(x); }
// glibc's math.h declares __expf, __logf, __log2f, __log10f, __sinf, __cosf, __tanf, __sincosf,
// __powf and __exp10f (with C linkage) but libm does not export them; math_shims.cpp defines
// them as the accurate functions, so kernels calling CUDA's fast intrinsics link and agree
// with the host backend to within float rounding.
inline float __fdividef(float a, float b) { return a / b; }
inline float fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __saturatef(float x) { return x != x ? 0.0f : (x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x)); }
// Float-to-int conversions saturate on the device (NaN -> 0); a plain cast would be UB here.
namespace tessera::emu::detail {
template <typename I>
I saturating_cast(double v) {
  if (v != v) return 0;
  if (v <= static_cast<double>(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
  if (v >= static_cast<double>(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return static_cast<I>(v);
}
}  // namespace tessera::emu::detail
inline int __float2int_rn(float x) { return ::tessera::emu::detail::saturating_cast<int>(std::nearbyint(x)); }
inline int __float2int_rz(float x) { return ::tessera::emu::detail::saturating_cast<int>(std::trunc(x)); }
inline int __float2int_rd(float x) { return ::tessera::emu::detail::saturating_cast<int>(std::floor(x)); }
inline int __float2int_ru(float x) { return ::tessera::emu::detail::saturating_cast<int>(std::ceil(x)); }
inline unsigned __float2uint_rn(float x) { return ::tessera::emu::detail::saturating_cast<unsigned>(std::nearbyint(x)); }
inline unsigned __float2uint_rz(float x) { return ::tessera::emu::detail::saturating_cast<unsigned>(std::trunc(x)); }
inline long long __float2ll_rn(float x) { return ::tessera::emu::detail::saturating_cast<long long>(std::nearbyint(x)); }
inline long long __float2ll_rz(float x) { return ::tessera::emu::detail::saturating_cast<long long>(std::trunc(x)); }
inline int __double2int_rn(double x) { return ::tessera::emu::detail::saturating_cast<int>(std::nearbyint(x)); }
inline int __double2int_rz(double x) { return ::tessera::emu::detail::saturating_cast<int>(std::trunc(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline float __uint2float_rn(unsigned x) { return static_cast<float>(x); }
inline float __ll2float_rn(long long x) { return static_cast<float>(x); }
inline float __double2float_rn(double x) { return static_cast<float>(x); }
inline int __float_as_int(float x) { return ::tessera::emu::detail::from_bits<int>(::tessera::emu::detail::to_bits(x)); }
inline unsigned __float_as_uint(float x) { return ::tessera::emu::detail::from_bits<unsigned>(::tessera::emu::detail::to_bits(x)); }
inline float __int_as_float(int x) { return ::tessera::emu::detail::from_bits<float>(::tessera::emu::detail::to_bits(x)); }
inline float __uint_as_float(unsigned x) { return ::tessera::emu::detail::from_bits<float>(::tessera::emu::detail::to_bits(x)); }
inline long long __double_as_longlong(double x) { return ::tessera::emu::detail::from_bits<long long>(::tessera::emu::detail::to_bits(x)); }
inline double __longlong_as_double(long long x) { return ::tessera::emu::detail::from_bits<double>(::tessera::emu::detail::to_bits(x)); }

// CUDA's global min/max: integer overloads compare after the usual conversions, floating ones
// are fminf/fmaxf (a NaN operand yields the other operand).
template <typename A, typename B,
          std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>, int> = 0>
constexpr std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) {
    return std::fmin(static_cast<C>(a), static_cast<C>(b));
  } else {
    return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(a) : static_cast<C>(b);
  }
}
template <typename A, typename B,
          std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>, int> = 0>
constexpr std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) {
    return std::fmax(static_cast<C>(a), static_cast<C>(b));
  } else {
    return static_cast<C>(a) > static_cast<C>(b) ? static_cast<C>(a) : static_cast<C>(b);
  }
}
inline unsigned umin(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned umax(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long llmin(long long a, long long b) { return a < b ? a : b; }
inline long long llmax(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long ullmin(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long ullmax(unsigned long long a, unsigned long long b) { return a > b ? a : b; }

// ---- misc -------------------------------------------------------------------------------------
// A kernel that traps aborts the launch; here that is a tessera::Error naming kernel and thread.
[[noreturn]] inline void __trap(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::tessera::emu::detail::device_trap("__trap()", file, line);
}
[[noreturn]] inline void __brkpt(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::tessera::emu::detail::device_trap("__brkpt()", file, line);
}
inline void __nanosleep(unsigned) {}
long long clock64();
