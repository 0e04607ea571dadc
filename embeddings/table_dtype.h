#pragma once
// Storage types of embedding tables: f32 (the default), bf16 or f16. A 16-bit table is stored as
// its 16-bit values; lookups and pooling read a row, widen it to f32 (exact) and accumulate in
// f32; the sparse optimizers run in f32 on the widened row with f32 state, and the updated row is
// rounded back to the storage type: to nearest even, or stochastically (round up with probability
// equal to the distance from the lower neighbour over the gap) from a counter-based generator, so
// a run is reproducible.
//
// The conversions here are the specification, shared by the host ops (g++) and the kernels (nvcc,
// emulator): they work on the 16-bit patterns (uint16_t), so host and device round identically.
//   bf16  to nearest even, f32 subnormal inputs become signed zeros and NaNs stay (quiet) NaNs:
//         what AVX-512 BF16's VCVTNE2PS2BF16 does, so its vector path and this scalar one agree
//         bit for bit.
//   f16   IEEE binary16, to nearest even, subnormal halves kept (an f16 table's small weights are
//         subnormal: f16's smallest normal is 6.1e-5), |x| >= 65520 becomes infinity.
#include <cstdint>
#include <cstring>

#include "host/core/hd.h"
#include "host/core/math.h"

namespace tessera::emb {

enum class TableDType : uint8_t { F32 = 0, BF16 = 1, F16 = 2 };
const char* table_dtype_name(TableDType d);
// "f32" | "bf16" | "f16"; Error(Config) naming the accepted values otherwise.
TableDType parse_table_dtype(const char* name);
TESSERA_HD int64_t table_dtype_bytes(TableDType d) {
  return d == TableDType::F32 ? 4 : 2;
}

// How a collection stores its tables (EmbeddingCollection passes it to its ops).
struct StorageFormat {
  TableDType dtype = TableDType::F32;
  bool stochastic_rounding = false;  // 16-bit tables: round updated rows stochastically
};

TESSERA_HD uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}
TESSERA_HD float f32_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// ---- bf16 ------------------------------------------------------------------------------------
TESSERA_HD float bf16_to_f32(uint16_t h) {
  return f32_from_bits(static_cast<uint32_t>(h) << 16);
}
// `add` is added to the f32 pattern before the low 16 bits are dropped: 0x7FFF plus the kept
// value's lowest bit rounds to nearest even, 16 random bits round stochastically.
TESSERA_HD uint16_t bf16_round_with(uint32_t u, uint32_t add) {
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0)
    return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN: quiet, sign and top payload kept
  if ((u & 0x7F800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);  // +-0, subnormal
  if ((u & 0x7F800000u) == 0x7F800000u) return static_cast<uint16_t>(u >> 16);    // +-inf
  return static_cast<uint16_t>((u + add) >> 16);
}
TESSERA_HD uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  return bf16_round_with(u, 0x7FFFu + ((u >> 16) & 1u));
}
TESSERA_HD uint16_t f32_to_bf16_stochastic(float f, uint32_t random) {
  return bf16_round_with(f32_bits(f), random & 0xFFFFu);
}

// ---- f16 -------------------------------------------------------------------------------------
// Written with bit masks, not branches, so that compilers vectorise the lookups' widening loops
// (a branch per element kept the f16 forward scalar; with ternaries GCC still branches, as it may
// not speculate the float multiply). em < 0x400 is a subnormal half (or zero): m * 2^-24, exact
// in f32; em >= 0x7C00 infinity or NaN (payload kept); otherwise a normal half, rebiased (+112 in
// the exponent) with its mantissa moved up 13 bits.
TESSERA_HD float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7FFFu;
  const uint32_t normal = (em << 13) + (112u << 23);
  const uint32_t special = (em << 13) | 0x7F800000u;
  const uint32_t sub =
      f32_bits(static_cast<float>(static_cast<int32_t>(em)) * 5.9604644775390625e-8f);
  const uint32_t is_sub = 0u - static_cast<uint32_t>(em < 0x400u);
  const uint32_t is_special = 0u - static_cast<uint32_t>(em >= 0x7C00u);
  return f32_from_bits(sign | (sub & is_sub) | (special & is_special) |
                       (normal & ~(is_sub | is_special)));
}

// Rounds |f|'s pattern a to f16 keeping `drop` low bits' worth by adding `add` (a value below
// 2^drop) and shifting: RNE passes half - 1 + the kept lowest bit, stochastic passes random bits.
TESSERA_HD uint16_t f16_round_with(uint32_t u, bool nearest_even, uint32_t random) {
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
  if (a >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65536 or inf
  if (a >= 0x38800000u) {  // a normal half: rebias the exponent, drop 13 mantissa bits
    const uint32_t r = a - 0x38000000u;
    const uint32_t add = nearest_even ? 0xFFFu + ((r >> 13) & 1u) : (random & 0x1FFFu);
    const uint32_t q = (r + add) >> 13;  // a carry into 0x7C00 is infinity, as it should be
    return static_cast<uint16_t>(sign | q);
  }
  if (a < 0x33000000u && nearest_even) return static_cast<uint16_t>(sign);  // below 2^-25
  if (a < 0x2F800000u) return static_cast<uint16_t>(sign);  // below 2^-32: 0 (stochastic too)
  // A subnormal half (or zero): units of 2^-24, from the 24-bit significand m * 2^(e - 150).
  const uint32_t e = a >> 23;
  const uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126u - e;  // 14 .. 31
  const uint32_t mask = (1u << shift) - 1u;
  uint32_t q = m >> shift;
  const uint32_t rem = m & mask;
  if (nearest_even) {
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;
  } else if (rem > (random & mask)) {
    ++q;
  }
  return static_cast<uint16_t>(sign | q);
}
TESSERA_HD uint16_t f32_to_f16(float f) {
  return f16_round_with(f32_bits(f), true, 0);
}
TESSERA_HD uint16_t f32_to_f16_stochastic(float f, uint32_t random) {
  return f16_round_with(f32_bits(f), false, random);
}

// ---- either --------------------------------------------------------------------------------
TESSERA_HD float half_to_f32(TableDType d, uint16_t h) {
  return d == TableDType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}
TESSERA_HD uint16_t f32_to_half(TableDType d, float f) {
  return d == TableDType::BF16 ? f32_to_bf16(f) : f32_to_f16(f);
}
// The random bits stochastic rounding uses for flat element `element` in the step whose stream is
// `stream` (SparseStepParams::round_stream): one splitmix64 draw, counter-based, so the result
// depends on neither thread layout nor backend.
TESSERA_HD uint32_t rounding_bits(uint64_t stream, int64_t element) {
  return static_cast<uint32_t>(
      math::mix64(stream + static_cast<uint64_t>(element) * 0x9E3779B97F4A7C15ull) >> 32);
}
// The stored value of f in a 16-bit table: nearest even, or stochastic with element's bits.
TESSERA_HD uint16_t round_to_half(TableDType d, float f, bool stochastic, uint64_t stream,
                                  int64_t element) {
  if (!stochastic) return f32_to_half(d, f);
  const uint32_t bits = rounding_bits(stream, element);
  return d == TableDType::BF16 ? f32_to_bf16_stochastic(f, bits) : f32_to_f16_stochastic(f, bits);
}

}  // namespace tessera::emb
