#include "embeddings/table_dtype.h"

#include <cstring>
#include <string>

#include "embeddings/table_rows.h"
#include "host/core/error.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define TESSERA_EMB_X86 1
#else
#define TESSERA_EMB_X86 0
#endif

namespace tessera::emb {

const char* table_dtype_name(TableDType d) {
  switch (d) {
    case TableDType::F32:
      return "f32";
    case TableDType::BF16:
      return "bf16";
    case TableDType::F16:
      return "f16";
  }
  return "?";
}

TableDType parse_table_dtype(const char* name) {
  const std::string s = name ? name : "";
  if (s == "f32") return TableDType::F32;
  if (s == "bf16") return TableDType::BF16;
  if (s == "f16") return TableDType::F16;
  TESSERA_THROW(Config, "table dtype '" << s << "' is not one of f32, bf16, f16");
}

namespace {

#if TESSERA_EMB_X86
// AVX-512 BF16 (VCVTNE2PS2BF16: 32 floats to 32 bf16, to nearest even, subnormals to zero, as
// f32_to_bf16) needs CPUID leaf 7 sub-leaf 1 EAX bit 5, and AVX-512 state the OS saves.
bool detect_avx512_bf16() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return (a & (1u << 5)) != 0 && __builtin_cpu_supports("avx512f");
}

__attribute__((target("avx512f,avx512bf16,avx512vl"))) void narrow_bf16_avx512(const float* src,
                                                                               uint16_t* dst,
                                                                               int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 lo = _mm512_loadu_ps(src + i);
    const __m512 hi = _mm512_loadu_ps(src + i + 16);
    const __m512bh v = _mm512_cvtne2ps_pbh(hi, lo);  // lo in the low half
    _mm512_storeu_si512(reinterpret_cast<void*>(dst + i), reinterpret_cast<const __m512i&>(v));
  }
  for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

// VCVTPS2PH with round-to-nearest-even is IEEE conversion: f32_to_f16 bit for bit. (GCC 12's
// headers pass an undefined vector as the unused merge source of many intrinsics:
// -Wmaybe-uninitialized is off for this section.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void narrow_f16_avx512(const float* src, uint16_t* dst,
                                                          int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i v =
        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), v);
  }
  for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

// The AVX-512 paths below (F + DQ for the 64-bit multiplies of the rounding bits, BW + VL for
// 16-bit masked loads and stores) work on 16 elements per vector and give the scalar functions'
// bits exactly (embedding_bf16_test compares them on every pattern and on random floats).
#define TESSERA_EMB_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))

// 16 widened values. bf16 is the top half of an f32 (a 16-bit shift); VCVTPH2PS is IEEE
// conversion, exact as f16_to_f32, except that it quietens signalling NaNs, whose payload
// f16_to_f32 keeps: those lanes are rebuilt from the bits.
TESSERA_EMB_AVX512 inline __m512 widen16(TableDType d, __m256i h16) {
  const __m512i h = _mm512_cvtepu16_epi32(h16);
  if (d == TableDType::BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
  const __m512i exp = _mm512_set1_epi32(0x7C00), man = _mm512_set1_epi32(0x3FF);
  __m512 f = _mm512_cvtph_ps(h16);
  const __mmask16 nan =
      _mm512_mask_test_epi32_mask(_mm512_cmpeq_epi32_mask(_mm512_and_si512(h, exp), exp), h, man);
  if (nan) {
    const __m512i bits =
        _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(h, _mm512_set1_epi32(0x8000)), 16),
                        _mm512_or_si512(_mm512_set1_epi32(0x7F800000),
                                        _mm512_slli_epi32(_mm512_and_si512(h, man), 13)));
    f = _mm512_mask_mov_ps(f, nan, _mm512_castsi512_ps(bits));
  }
  return f;
}

// rounding_bits (table_dtype.h) of elements e .. e + 15, as 16 x u32: splitmix64 on 8 x u64 lanes
// twice, each lane's upper 32 bits kept.
TESSERA_EMB_AVX512 inline __m512i rounding_bits16(uint64_t stream, int64_t e) {
  const __m512i golden = _mm512_set1_epi64(static_cast<long long>(0x9E3779B97F4A7C15ull));
  const __m512i m1 = _mm512_set1_epi64(static_cast<long long>(0xBF58476D1CE4E5B9ull));
  const __m512i m2 = _mm512_set1_epi64(static_cast<long long>(0x94D049BB133111EBull));
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  __m256i half[2];
  for (int k = 0; k < 2; ++k) {
    const __m512i idx = _mm512_add_epi64(_mm512_set1_epi64(e + 8 * k), lane);
    __m512i x = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(stream)),
                                 _mm512_mullo_epi64(idx, golden));
    x = _mm512_add_epi64(x, golden);  // mix64's own increment
    x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 30)), m1);
    x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 27)), m2);
    x = _mm512_xor_si512(x, _mm512_srli_epi64(x, 31));
    half[k] = _mm512_cvtepi64_epi32(_mm512_srli_epi64(x, 32));
  }
  return _mm512_inserti64x4(_mm512_castsi256_si512(half[0]), half[1], 1);
}

// bf16_round_with on 16 lanes: (u + add) >> 16, then the lanes whose exponent is all ones (inf:
// u >> 16; NaN: quietened) or zero (+-0 and subnormals: signed zero) replaced.
TESSERA_EMB_AVX512 inline __m256i bf16_round16(__m512i u, __m512i add) {
  const __m512i exp_mask = _mm512_set1_epi32(0x7F800000);
  const __m512i exp = _mm512_and_si512(u, exp_mask);
  const __m512i hi = _mm512_srli_epi32(u, 16);
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, add), 16);
  const __mmask16 all_ones = _mm512_cmpeq_epi32_mask(exp, exp_mask);
  const __mmask16 nan = _mm512_mask_test_epi32_mask(all_ones, u, _mm512_set1_epi32(0x007FFFFF));
  r = _mm512_mask_mov_epi32(r, all_ones, hi);
  r = _mm512_mask_or_epi32(r, nan, r, _mm512_set1_epi32(0x40));
  r = _mm512_mask_and_epi32(r, _mm512_cmpeq_epi32_mask(exp, _mm512_setzero_si512()), hi,
                            _mm512_set1_epi32(0x8000));
  return _mm512_cvtepi32_epi16(r);
}

// f16_round_with (stochastic) on 16 lanes for normal halves: rebias, add 13 random bits, shift.
// *scalar gets the lanes outside the normal range (overflow, NaN, subnormal halves, zero), which
// the caller passes through the scalar function: an f16 table holds few, and they need per-lane
// shifts.
TESSERA_EMB_AVX512 inline __m256i f16_stochastic16(__m512i u, __m512i rnd, __mmask16* scalar) {
  const __m512i a = _mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF));
  const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x8000));
  const __m512i r = _mm512_sub_epi32(a, _mm512_set1_epi32(0x38000000));
  const __m512i q =
      _mm512_srli_epi32(_mm512_add_epi32(r, _mm512_and_si512(rnd, _mm512_set1_epi32(0x1FFF))), 13);
  *scalar = _mm512_cmplt_epu32_mask(a, _mm512_set1_epi32(0x38800000)) |
            _mm512_cmpge_epu32_mask(a, _mm512_set1_epi32(0x47800000));
  return _mm512_cvtepi32_epi16(_mm512_or_si512(sign, q));
}

// Lanes k (a mask) of v rounded to the storage type, for flat elements e .. e + 15: to nearest
// even, or stochastically with the step's stream.
TESSERA_EMB_AVX512 inline __m256i narrow16(TableDType d, __m512 v, __mmask16 k, bool stochastic,
                                           uint64_t stream, int64_t e) {
  const __m512i u = _mm512_castps_si512(v);
  if (!stochastic) {
    if (d == TableDType::F16)
      return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return bf16_round16(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb));
  }
  const __m512i rnd = rounding_bits16(stream, e);
  if (d == TableDType::BF16)
    return bf16_round16(u, _mm512_and_si512(rnd, _mm512_set1_epi32(0xFFFF)));
  __mmask16 scalar = 0;
  __m256i h = f16_stochastic16(u, rnd, &scalar);
  scalar &= k;
  if (scalar) {
    alignas(64) float f[16];
    alignas(32) uint16_t out[16];
    _mm512_store_ps(f, v);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out), h);
    for (; scalar; scalar &= static_cast<__mmask16>(scalar - 1)) {
      const int l = __builtin_ctz(scalar);
      out[l] = round_to_half(d, f[l], true, stream, e + l);
    }
    h = _mm256_load_si256(reinterpret_cast<const __m256i*>(out));
  }
  return h;
}

inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

TESSERA_EMB_AVX512 void widen_avx512(TableDType d, const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(dst + i, k, widen16(d, _mm256_maskz_loadu_epi16(k, src + i)));
  }
}

TESSERA_EMB_AVX512 void narrow_stochastic_avx512(TableDType d, const float* src, uint16_t* dst,
                                                 int64_t n, uint64_t stream,
                                                 int64_t first_element) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, src + i);
    _mm256_mask_storeu_epi16(dst + i, k, narrow16(d, v, k, true, stream, first_element + i));
  }
}

// w = round(widen(w) + a * x), 16 elements at a time, the row never copied. The product is kept
// apart from the sum (the empty asm), so no FMA is formed: the result is axpy's on the widened row.
// Whole vectors use plain loads and stores (masked stores cost more on some cores), the tail
// masked ones.
// Kernel = the rounding: narrow16, or (bf16 to nearest even, on CPUs with AVX-512 BF16)
// VCVTNEPS2BF16, which gives f32_to_bf16's bits with fewer instructions.
struct Narrow16 {
  TESSERA_EMB_AVX512 static __m256i round(TableDType d, __m512 v, __mmask16 k, bool stochastic,
                                          uint64_t stream, int64_t e) {
    return narrow16(d, v, k, stochastic, stream, e);
  }
};
#define TESSERA_EMB_AVX512_BF16 \
  __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")))
struct NarrowBf16Nearest {
  TESSERA_EMB_AVX512_BF16 static __m256i round(TableDType, __m512 v, __mmask16, bool, uint64_t,
                                               int64_t) {
    const __m256bh h = _mm512_cvtneps_pbh(v);
    return reinterpret_cast<const __m256i&>(h);
  }
};

// One step of axpy_half_avx512 on 16 lanes (k: the lanes in the row).
template <class Round>
TESSERA_EMB_AVX512_BF16 inline __m256i axpy_half16(TableDType d, __m256i h, __m512 a, __m512 x,
                                                   __mmask16 k, bool stochastic, uint64_t stream,
                                                   int64_t e) {
  __m512 prod = _mm512_mul_ps(a, x);
  asm("" : "+v"(prod));
  return Round::round(d, _mm512_add_ps(widen16(d, h), prod), k, stochastic, stream, e);
}
// w = round(widen(w) + a * x), 16 elements at a time, the row never copied. The product is kept
// apart from the sum (the empty asm), so no FMA is formed: the result is axpy's on the widened row.
// Whole vectors use plain loads and stores (masked stores cost more on some cores), the tail
// masked ones. The templates carry the BF16 target so that either Round inlines into them; only
// NarrowBf16Nearest emits a BF16 instruction, and it is called only where the CPU has one.
template <class Round>
TESSERA_EMB_AVX512_BF16 inline void axpy_half_rows(TableDType d, uint16_t* w, float a,
                                                   const float* x, int64_t n, bool stochastic,
                                                   uint64_t stream, int64_t first_element) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i* wi = reinterpret_cast<__m256i*>(w + i);
    _mm256_storeu_si256(
        wi, axpy_half16<Round>(d, _mm256_loadu_si256(wi), va, _mm512_loadu_ps(x + i), 0xFFFF,
                               stochastic, stream, first_element + i));
  }
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    const __m256i h = axpy_half16<Round>(d, _mm256_maskz_loadu_epi16(k, w + i), va,
                                         _mm512_maskz_loadu_ps(k, x + i), k, stochastic, stream,
                                         first_element + i);
    _mm256_mask_storeu_epi16(w + i, k, h);
  }
}
TESSERA_EMB_AVX512 void axpy_half_avx512(TableDType d, uint16_t* w, float a, const float* x,
                                         int64_t n, bool stochastic, uint64_t stream,
                                         int64_t first_element) {
  axpy_half_rows<Narrow16>(d, w, a, x, n, stochastic, stream, first_element);
}
TESSERA_EMB_AVX512_BF16 void axpy_bf16_nearest_avx512(uint16_t* w, float a, const float* x,
                                                      int64_t n) {
  axpy_half_rows<NarrowBf16Nearest>(TableDType::BF16, w, a, x, n, false, 0, 0);
}
#pragma GCC diagnostic pop
#endif

// Which vector paths this CPU runs; each gives the scalar functions' bits exactly.
struct VectorPaths {
  bool bf16 = false;    // narrow bf16 (AVX-512 BF16)
  bool avx512 = false;  // narrow f16 (AVX-512F)
  bool rows = false;    // widening, stochastic rounding, axpy_half_row (TESSERA_EMB_AVX512)
};
VectorPaths detect_paths() {
  VectorPaths p;
#if TESSERA_EMB_X86
  p.bf16 = detect_avx512_bf16();
  p.avx512 = __builtin_cpu_supports("avx512f");
  p.rows = p.avx512 && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#endif
  return p;
}
VectorPaths& vector_paths() {
  static VectorPaths p = detect_paths();
  return p;
}

}  // namespace

bool cpu_has_avx512_bf16() {
  return detect_paths().bf16;
}

void set_vector_rounding(bool on) {
  vector_paths() = on ? detect_paths() : VectorPaths{};
}

void narrow_row(TableDType d, const float* src, uint16_t* dst, int64_t n) {
#if TESSERA_EMB_X86
  if (d == TableDType::BF16 && vector_paths().bf16) return narrow_bf16_avx512(src, dst, n);
  if (d == TableDType::F16 && vector_paths().avx512) return narrow_f16_avx512(src, dst, n);
#endif
  if (d == TableDType::BF16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
  }
}

void narrow_row_stochastic(TableDType d, const float* src, uint16_t* dst, int64_t n,
                           uint64_t stream, int64_t first_element) {
#if TESSERA_EMB_X86
  if (vector_paths().rows) return narrow_stochastic_avx512(d, src, dst, n, stream, first_element);
#endif
  for (int64_t i = 0; i < n; ++i)
    dst[i] = round_to_half(d, src[i], true, stream, first_element + i);
}

void widen_row(TableDType d, const uint16_t* src, float* dst, int64_t n) {
#if TESSERA_EMB_X86
  if (vector_paths().rows) return widen_avx512(d, src, dst, n);
#endif
  if (d == TableDType::BF16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
  }
}

bool axpy_half_row(TableDType d, uint16_t* w, float a, const float* x, int64_t n, bool stochastic,
                   uint64_t stream, int64_t first_element) {
#if TESSERA_EMB_X86
  const VectorPaths& v = vector_paths();
  if (v.rows && v.bf16 && d == TableDType::BF16 && !stochastic) {
    axpy_bf16_nearest_avx512(w, a, x, n);
    return true;
  }
  if (v.rows) {
    axpy_half_avx512(d, w, a, x, n, stochastic, stream, first_element);
    return true;
  }
#endif
  return false;
}

int64_t packed_words(int64_t elements) {
  return (elements + 1) / 2;
}

Tensor pack_table_values(const Tensor& host_f32, TableDType d) {
  TESSERA_CHECK(host_f32.is_host() && host_f32.dtype() == DType::F32,
                "table values to pack must be host f32, got " << host_f32.describe());
  TESSERA_CHECK(d != TableDType::F32, "pack_table_values: an f32 table is not packed");
  const int64_t n = host_f32.numel();
  Tensor packed = Tensor::host({packed_words(n)}, DType::I32);
  narrow_row(d, host_f32.data<float>(), half_data(packed), n);
  return packed;
}

Tensor unpack_table_values(const Tensor& host_packed, int64_t first, int64_t n, TableDType d) {
  TESSERA_CHECK(host_packed.is_host() && host_packed.dtype() == DType::I32 && first >= 0 &&
                    n >= 0 && first + n <= 2 * host_packed.numel(),
                "packed table values [" << first << ", " << first + n << ") out of "
                                        << host_packed.describe());
  Tensor out = Tensor::host({n});
  widen_row(d, half_data(host_packed) + first, out.data<float>(), n);
  return out;
}

}  // namespace tessera::emb
