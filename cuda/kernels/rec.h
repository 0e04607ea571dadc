#pragma once
// Launchers of the recommendation models' score and loss kernels (rec.cu), behind
// Backend::rec_score_forward, rec_score_backward, squared_error and pairwise_logistic (backend.h
// states what each computes). Raw device pointers, 64-bit sizes, an explicit stream; the
// Backend's edge checks have run. Device math is f32 (the host backend accumulates in double:
// results agree within f32 rounding).
#include <cstdint>

#if defined(TESSERA_CUDA_EMULATION)
#include "cuda/emu/emulator.h"
#else
#include <cuda_runtime_api.h>
#endif

namespace tessera::cuda {

// out [rows, width] (p | q | bias columns) -> score [rows]: offset + <p, q> + the bias columns.
// One warp per row: the lanes read consecutive columns (coalesced) and reduce with shuffles.
void launch_rec_score_forward(const float* out, int64_t rows, int64_t width, int64_t dim,
                              float offset, float* score, cudaStream_t stream);
// dscore [rows] -> dout [rows, width], overwritten; one thread per element of dout.
void launch_rec_score_backward(const float* out, const float* dscore, int64_t rows, int64_t width,
                               int64_t dim, float l2, float bias_l2, float* dout,
                               cudaStream_t stream);
// pred, target, loss, dpred [n]: e = pred - target, loss = e * e, dpred = grad_scale * e.
void launch_squared_error(const float* pred, const float* target, float grad_scale, float* loss,
                          float* dpred, int64_t n, cudaStream_t stream);
// scores, dscores [groups * group] (a positive, then group - 1 negatives), loss [groups]: BPR,
// one thread per group.
void launch_pairwise_logistic(const float* scores, int64_t groups, int64_t group, float grad_scale,
                              float* loss, float* dscores, cudaStream_t stream);

}  // namespace tessera::cuda
