#pragma once
// Host-side rows of 16-bit tables: the packed tensor a bf16 / f16 table lives in, and whole-row
// conversions (AVX-512 where the CPU has it, the scalar table_dtype.h functions otherwise; both
// give the same bits).
//
// A 16-bit table's flat buffer (EmbeddingStorage::weights()) is an i32 tensor of
// packed_words(total_elements) words holding the 16-bit values one after another: element i is
// the i-th uint16_t of the buffer (a Tensor has no 16-bit dtype; the i32 words only carry the
// bytes, and the last word's upper half is unused when the count is odd).
#include <cstdint>

#include "embeddings/table_dtype.h"
#include "host/core/tensor.h"

namespace tessera::emb {

int64_t packed_words(int64_t elements);
// The 16-bit values of a packed tensor (host or device pointer; i32 dtype checked).
inline uint16_t* half_data(const Tensor& packed) {
  TESSERA_CHECK(packed.dtype() == DType::I32,
                "a 16-bit table's buffer is packed i32 words, got " << packed.describe());
  return static_cast<uint16_t*>(packed.raw());
}

// dst[i] = f32_to_bf16 / f32_to_f16 (src[i]) (to nearest even).
void narrow_row(TableDType d, const float* src, uint16_t* dst, int64_t n);
// Stochastic rounding of flat elements [first_element, first_element + n) of a step's stream.
void narrow_row_stochastic(TableDType d, const float* src, uint16_t* dst, int64_t n,
                           uint64_t stream, int64_t first_element);
void widen_row(TableDType d, const uint16_t* src, float* dst, int64_t n);
// SGD's step on a 16-bit row without an f32 copy of it: w[i] = the rounding (to nearest even, or
// stochastic for flat elements first_element + i of `stream`) of widen(w[i]) + a * x[i], the
// product rounded to f32 before the sum (no FMA): narrow(widen(w) + a * x) bit for bit. Returns
// false, doing nothing, where the CPU has no vector path for it (the caller widens, steps and
// narrows instead).
bool axpy_half_row(TableDType d, uint16_t* w, float a, const float* x, int64_t n, bool stochastic,
                   uint64_t stream, int64_t first_element);

// Host f32 values -> a packed host i32 tensor (to nearest even); and back: elements
// [first, first + n) of a packed host tensor as f32 [n] (exact).
Tensor pack_table_values(const Tensor& host_f32, TableDType d);
Tensor unpack_table_values(const Tensor& host_packed, int64_t first, int64_t n, TableDType d);

// Whether this CPU runs VCVTNE2PS2BF16 (CPUID leaf 7.1 EAX bit 5, with AVX-512 enabled by the OS).
bool cpu_has_avx512_bf16();
// Tests: false forces the scalar conversions, true restores what the CPU supports.
void set_vector_rounding(bool on);

}  // namespace tessera::emb
