#pragma once
// The GPU path of data-parallel training (docs/distributed.md, "The GPU path"): a ProcessGroup
// that keeps another group (the MPI group) for everything on the host and sums a CUDA backend's
// f32 tensors with NCCL on the backend's own stream, so gradients make no host round trip.
//
// The communicator is made on the first device all-reduce, from the inner group's ranks: rank 0
// calls ncclGetUniqueId, the id is broadcast over the inner group, every rank calls
// ncclCommInitRank(world, id, rank) on the backend's device. One GPU per rank: pick it with
// use_local_device() before making the backend. The deterministic mode is not served here:
// when the inner group is deterministic, reduces_on_device is false and the Trainer keeps the
// MPI host path (rank-order sums).
//
// Built into tessera_nccl (top-level CMakeLists.txt) with TESSERA_WITH_NCCL=1: against the real
// NCCL in the CUDA build, against the MPI-backed stand-in (cuda/emu/nccl_emu.h) in the emulation
// build. Elsewhere this header's functions are not defined.
#include <cstdint>
#include <memory>

#include "host/dist/process_group.h"

namespace tessera::cuda {

struct NcclGroupOptions {
  // A tensor longer than this goes in pieces of it, one ncclAllReduce each (NCCL's count is a
  // size_t; the pieces bound a single call's size, as the MPI group's buckets do).
  int64_t bucket_bytes = int64_t{64} << 20;
};

// Picks and makes current (cudaSetDevice) the device of this process on its node, and returns
// it: OMPI_COMM_WORLD_LOCAL_RANK (Open MPI's node-local rank; MPI_LOCALRANKID or SLURM_LOCALID
// where that is unset) modulo the number of GPUs, 0 without any of them. Call it before making
// the backend ("cuda:<device>"). Throws when no GPU is visible.
int use_local_device();
// Makes device `device` current (the caller computed this rank's node-local rank); Backend error
// when there is no such device.
void use_device(int device);

// `inner` (usually the MPI group) for the host collectives; NCCL for allreduce_sum over tensors
// of a CUDA backend. The group counts the device all-reduces in its stats (allreduce_calls,
// allreduce_bytes: the payload of each ncclAllReduce) on top of the inner group's.
std::unique_ptr<dist::ProcessGroup> make_nccl_group(std::unique_ptr<dist::ProcessGroup> inner,
                                                    const NcclGroupOptions& options = {});

}  // namespace tessera::cuda
