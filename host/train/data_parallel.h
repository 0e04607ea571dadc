#pragma once
// What the Trainer exchanges between the ranks of a data-parallel run (docs/distributed.md):
// each rank steps on its part of every global batch, and the ranks agree on the global batch's
// gradient, the epoch's sums and the validation figures before anything depends on them.
#include <cstdint>
#include <string>
#include <vector>

#include "host/dist/process_group.h"
#include "host/model/optimizer.h"
#include "host/train/trainer.h"

namespace tessera::train {

// Makes every dense gradient of `opt` the global batch's mean gradient on every rank: each rank
// holds the mean over its `examples` rows (its part of the batch), and the result is
// sum_r n_r g_r / sum_r n_r over the ranks whose part was applied (n_r = 0 for a rank whose guard
// dropped its part, or that had no rows). One all-reduce of every gradient and the count
// together, through `scratch`. Returns sum_r n_r (0: no rank applied its part, and the
// optimizer must not step; the gradients are then left as they were on the host path, zeroed on
// the device path).
// Where the group sums the backend's tensors on the device (group.reduces_on_device: NCCL on
// a CUDA backend, cuda/nccl_group.h), the gradients are scaled, summed and divided there, in one
// group call with the count as a one-element tensor, and only the count comes to the host.
// Otherwise (host backends, the MPI group, its deterministic mode) they go through `scratch`.
int64_t allreduce_dense_gradients(dist::ProcessGroup& group, Optimizer& opt, int64_t examples,
                                  bool applied, std::vector<float>& scratch);

// Hands every sparse group of `opt` (embedding tables replicated on every rank) the global
// batch's step: each rank exports its pending step with the gradient scaled by its share
// examples / global (0 when its part was not applied), the packs are all-gathered in rank
// order (ProcessGroup::allgatherv, one call per group; SparseGroup::exchange_step, which tables
// split across the ranks override with an all-to-all), and every rank imports them, so the
// optimizer's next step applies the same sparse update on every rank: the one-process update of
// the global batch, up to the scale's rounding. Call once allreduce_dense_gradients has returned
// global > 0. Refuses (Error(Usage)) a group that cannot exchange its steps.
void exchange_sparse_steps(dist::ProcessGroup& group, Optimizer& opt, int64_t examples,
                           bool applied, int64_t global);

// Rank `root`'s metrics (names and values, bit for bit) on every rank.
void broadcast_metrics(dist::ProcessGroup& group, Metrics& metrics, int root);

// Rank `root`'s flag on every rank.
bool broadcast_flag(dist::ProcessGroup& group, bool flag, int root);

}  // namespace tessera::train
