#pragma once
// The ProcessGroup of every rank mpirun started (MPI_COMM_WORLD, duplicated), for data-parallel
// training (docs/distributed.md). Declared without MPI's types, so that code which only installs
// the group needs no mpi.h; defined in the tessera_dist_mpi library, which links MPI (the host
// library builds without it).
#include <cstdint>
#include <memory>

#include "host/dist/process_group.h"

namespace tessera::dist {

struct MpiGroupOptions {
  // Sums in rank order (each rank sums one slice of every bucket over the ranks' copies, then
  // the slices are gathered): bit-identical from run to run. Otherwise MPI_Allreduce, whose
  // summation order is the library's.
  bool deterministic = false;
  // Vectors longer than this go in pieces of it (one collective per piece), which bounds the
  // deterministic mode's scratch memory and keeps every count within MPI's int.
  int64_t bucket_bytes = int64_t{4} << 20;
  // > 0: the group spans only world ranks [0, ranks) (a run at a smaller world size inside one
  // job: tests resume an N-rank checkpoint at M < N). 0: every rank.
  int ranks = 0;
};

// MPI must be initialised (MPI_Init or MPI_Init_thread) and stay so while the group lives.
// Collective over MPI_COMM_WORLD; with options.ranks > 0, the world ranks outside [0, ranks) get
// nullptr.
std::unique_ptr<ProcessGroup> make_mpi_group(const MpiGroupOptions& options = {});

}  // namespace tessera::dist
