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
// header passes an undefined vector as the unused merge source: -Wmaybe-uninitialized there.)
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
#pragma GCC diagnostic pop
#endif

struct VectorPaths {
  bool bf16 = false;
  bool f16 = false;
};
VectorPaths detect_paths() {
  VectorPaths p;
#if TESSERA_EMB_X86
  p.bf16 = detect_avx512_bf16();
  p.f16 = __builtin_cpu_supports("avx512f");
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
  if (d == TableDType::F16 && vector_paths().f16) return narrow_f16_avx512(src, dst, n);
#endif
  if (d == TableDType::BF16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
  }
}

void narrow_row_stochastic(TableDType d, const float* src, uint16_t* dst, int64_t n,
                           uint64_t stream, int64_t first_element) {
  for (int64_t i = 0; i < n; ++i)
    dst[i] = round_to_half(d, src[i], true, stream, first_element + i);
}

void widen_row(TableDType d, const uint16_t* src, float* dst, int64_t n) {
  if (d == TableDType::BF16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
  }
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
