// The NCCL stand-in of the emulation build (cuda/emu/include/nccl.h): the calls cuda/nccl_group.cpp
// makes, carried over MPI between emulated ranks (one process per rank, MPI initialised by the
// program). Every cuda/emu/*.cpp goes into tessera_cuda_emu, which links no MPI: there this file
// compiles to nothing, and the top-level CMakeLists.txt builds it again, with TESSERA_NCCL_EMU=1,
// into tessera_nccl.
//
// The rules it checks (a broken one returns ncclInvalidArgument or ncclInvalidUsage, prints the
// reason to stderr and keeps it for ncclGetLastError):
//   - ncclCommInitRank: 0 <= rank < nranks, an id made by ncclGetUniqueId, the same id and
//     nranks on every rank, each rank once; nranks must be the MPI world's size (the emulated
//     ranks are the MPI processes); the communicator belongs to the current device.
//   - ncclAllReduce: a communicator this process made and has not destroyed; a datatype and an
//     op the library defines (the stand-in carries f32, f64, i32 and i64 with sum, prod, max and
//     min, and refuses the rest as not emulated); both buffers inside one device allocation of
//     the communicator's device, count elements long; a stream that exists (or 0); and the same
//     count, datatype and op on every rank for the same call (checked with an all-gather before
//     the data moves, so a mismatch fails on every rank instead of hanging).
//   - ncclGroupStart/End nest; End without Start is ncclInvalidUsage. Calls inside a group are
//     checked at once and carried out at the outermost End, in order.
// Timing: the real library runs the reduction on the stream, asynchronously to the host. The
// stand-in waits for the stream's earlier work, reduces with MPI_Allreduce in place on the
// device memory (host memory under emulation) and returns when it is done: stream order holds.
#if TESSERA_NCCL_EMU
#include "cuda/emu/nccl_emu.h"

#include <mpi.h>
#include <nccl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cuda/emu/device_memory.h"

struct ncclComm {
  MPI_Comm mpi = MPI_COMM_NULL;
  int rank = 0, nranks = 1, device = 0;
};

namespace {

constexpr char kMagic[8] = {'t', 'e', 's', 's', 'n', 'c', 'c', 'l'};

struct Pending {
  const void* send;
  void* recv;
  size_t count;
  ncclDataType_t type;
  ncclRedOp_t op;
  ncclComm_t comm;
  cudaStream_t stream;
};

struct State {
  std::set<ncclComm_t> live;
  int group_depth = 0;
  std::vector<Pending> queued;
  std::string last_error;
  tessera::emu::NcclCounters counters;
};

State& state() {
  static State s;
  return s;
}

ncclResult_t fail(ncclResult_t rc, const std::string& why) {
  state().last_error = why;
  std::fprintf(stderr, "nccl-emu: %s\n", why.c_str());
  return rc;
}

size_t type_size(ncclDataType_t t) {
  switch (t) {
    case ncclFloat32:
    case ncclInt32:
      return 4;
    case ncclFloat64:
    case ncclInt64:
      return 8;
    default:
      return 0;
  }
}

MPI_Datatype mpi_type(ncclDataType_t t) {
  switch (t) {
    case ncclFloat32:
      return MPI_FLOAT;
    case ncclFloat64:
      return MPI_DOUBLE;
    case ncclInt32:
      return MPI_INT32_T;
    default:
      return MPI_INT64_T;
  }
}

MPI_Op mpi_op(ncclRedOp_t op) {
  switch (op) {
    case ncclSum:
      return MPI_SUM;
    case ncclProd:
      return MPI_PROD;
    case ncclMax:
      return MPI_MAX;
    default:
      return MPI_MIN;
  }
}

// `bytes` from p inside one allocation of `device`.
bool in_device_memory(const void* p, size_t bytes, int device, std::string& why) {
  const auto a = tessera::emu::find_device_allocation(p);
  if (!a) {
    why = "is not device memory";
    return false;
  }
  if (a->device != device) {
    why = "is on device " + std::to_string(a->device) + ", the communicator's is " +
          std::to_string(device);
    return false;
  }
  const auto* c = static_cast<const unsigned char*>(p);
  if (c + bytes > a->base + a->bytes) {
    why = "runs past the end of its allocation (" + a->label + ")";
    return false;
  }
  return true;
}

ncclResult_t check_call(const Pending& c) {
  if (!c.comm || !state().live.count(c.comm))
    return fail(ncclInvalidArgument, "ncclAllReduce: not a live communicator of this rank");
  if (c.type < ncclInt8 || c.type > ncclBfloat16 || c.op < ncclSum || c.op > ncclAvg)
    return fail(ncclInvalidArgument, "ncclAllReduce: datatype " + std::to_string(c.type) +
                                         " or op " + std::to_string(c.op) + " is not NCCL's");
  if (type_size(c.type) == 0 || c.op == ncclAvg)
    return fail(ncclInvalidArgument, "ncclAllReduce: datatype " + std::to_string(c.type) +
                                         " with op " + std::to_string(c.op) + " is not emulated");
  if (c.stream && cudaStreamQuery(c.stream) == cudaErrorInvalidResourceHandle) {
    (void)cudaGetLastError();
    return fail(ncclInvalidArgument, "ncclAllReduce: the stream does not exist");
  }
  const size_t bytes = c.count * type_size(c.type);
  std::string why;
  if (c.count > 0 && !in_device_memory(c.send, bytes, c.comm->device, why))
    return fail(ncclInvalidArgument, "ncclAllReduce: sendbuff " + why);
  if (c.count > 0 && !in_device_memory(c.recv, bytes, c.comm->device, why))
    return fail(ncclInvalidArgument, "ncclAllReduce: recvbuff " + why);
  return ncclSuccess;
}

// Collective over the communicator: the same call on every rank, then the data.
ncclResult_t carry_out(const Pending& c) {
  const long long mine[3] = {static_cast<long long>(c.count), c.type, c.op};
  std::vector<long long> all(static_cast<size_t>(3 * c.comm->nranks));
  MPI_Allgather(mine, 3, MPI_LONG_LONG, all.data(), 3, MPI_LONG_LONG, c.comm->mpi);
  for (int r = 0; r < c.comm->nranks; ++r)
    if (!std::equal(mine, mine + 3, all.begin() + 3 * r))
      return fail(ncclInvalidUsage,
                  "ncclAllReduce: rank " + std::to_string(r) + " called with count " +
                      std::to_string(all[3 * r]) + ", datatype " + std::to_string(all[3 * r + 1]) +
                      ", op " + std::to_string(all[3 * r + 2]) + "; rank " +
                      std::to_string(c.comm->rank) + " with " + std::to_string(c.count) + ", " +
                      std::to_string(c.type) + ", " + std::to_string(c.op));
  if (cudaStreamSynchronize(c.stream) != cudaSuccess)
    return fail(ncclUnhandledCudaError, "ncclAllReduce: the stream's earlier work failed");
  const size_t size = type_size(c.type);
  if (c.send != c.recv && c.count > 0) std::memmove(c.recv, c.send, c.count * size);
  auto* p = static_cast<char*>(c.recv);
  for (size_t off = 0; off < c.count; off += INT_MAX) {
    const int m = static_cast<int>(std::min<size_t>(INT_MAX, c.count - off));
    if (MPI_Allreduce(MPI_IN_PLACE, p + off * size, m, mpi_type(c.type), mpi_op(c.op),
                      c.comm->mpi) != MPI_SUCCESS)
      return fail(ncclSystemError, "ncclAllReduce: MPI_Allreduce failed");
  }
  ++state().counters.allreduce_calls;
  state().counters.allreduce_bytes += static_cast<int64_t>(c.count * size);
  return ncclSuccess;
}

}  // namespace

namespace tessera::emu {
NcclCounters nccl_counters() {
  return state().counters;
}
}  // namespace tessera::emu

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (!id) return fail(ncclInvalidArgument, "ncclGetUniqueId: null id");
  std::memset(id->internal, 0, sizeof id->internal);
  std::memcpy(id->internal, kMagic, sizeof kMagic);
  std::random_device rd;
  const unsigned long long salt[2] = {(static_cast<unsigned long long>(rd()) << 32) ^ rd(),
                                      static_cast<unsigned long long>(::getpid())};
  std::memcpy(id->internal + sizeof kMagic, salt, sizeof salt);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) return fail(ncclSystemError, "ncclCommInitRank: the stand-in needs MPI");
  if (!comm) return fail(ncclInvalidArgument, "ncclCommInitRank: null comm");
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return fail(ncclInvalidArgument,
                "ncclCommInitRank: rank " + std::to_string(rank) + " of " + std::to_string(nranks));
  if (std::memcmp(id.internal, kMagic, sizeof kMagic) != 0)
    return fail(ncclInvalidArgument, "ncclCommInitRank: the id is not from ncclGetUniqueId");
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  std::vector<char> all(static_cast<size_t>(world) * (sizeof id + 2 * sizeof(int)));
  std::vector<char> mine(sizeof id + 2 * sizeof(int));
  std::memcpy(mine.data(), &id, sizeof id);
  std::memcpy(mine.data() + sizeof id, &nranks, sizeof(int));
  std::memcpy(mine.data() + sizeof id + sizeof(int), &rank, sizeof(int));
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, all.data(),
                static_cast<int>(mine.size()), MPI_BYTE, MPI_COMM_WORLD);
  if (nranks != world)
    return fail(ncclInvalidUsage, "ncclCommInitRank: " + std::to_string(nranks) +
                                      " ranks; the stand-in's are the MPI world's " +
                                      std::to_string(world));
  std::vector<int> seen(static_cast<size_t>(world), 0);
  for (int r = 0; r < world; ++r) {
    const char* e = all.data() + static_cast<size_t>(r) * mine.size();
    int their_n = 0, their_rank = 0;
    std::memcpy(&their_n, e + sizeof id, sizeof(int));
    std::memcpy(&their_rank, e + sizeof id + sizeof(int), sizeof(int));
    if (std::memcmp(e, &id, sizeof id) != 0 || their_n != nranks || their_rank < 0 ||
        their_rank >= world || seen[static_cast<size_t>(their_rank)]++)
      return fail(ncclInvalidUsage,
                  "ncclCommInitRank: the ranks disagree on the id, the size "
                  "or who is which rank");
  }
  auto* c = new ncclComm;
  c->rank = rank;
  c->nranks = nranks;
  cudaGetDevice(&c->device);
  MPI_Comm_split(MPI_COMM_WORLD, 0, rank, &c->mpi);
  state().live.insert(c);
  ++state().counters.comms_created;
  *comm = c;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm || !state().live.erase(comm))
    return fail(ncclInvalidArgument, "ncclCommDestroy: not a live communicator");
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm->mpi);
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (!comm || !state().live.count(comm) || !count)
    return fail(ncclInvalidArgument, "ncclCommCount: not a live communicator");
  *count = comm->nranks;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (!comm || !state().live.count(comm) || !rank)
    return fail(ncclInvalidArgument, "ncclCommUserRank: not a live communicator");
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream) {
  const Pending c{sendbuff, recvbuff, count, datatype, op, comm, stream};
  if (const ncclResult_t rc = check_call(c); rc != ncclSuccess) return rc;
  if (state().group_depth > 0) {
    state().queued.push_back(c);
    return ncclSuccess;
  }
  return carry_out(c);
}

ncclResult_t ncclGroupStart() {
  ++state().group_depth;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd() {
  State& s = state();
  if (s.group_depth == 0) return fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
  if (--s.group_depth > 0) return ncclSuccess;
  ++s.counters.groups;
  std::vector<Pending> calls;
  calls.swap(s.queued);
  for (const Pending& c : calls)
    if (const ncclResult_t rc = carry_out(c); rc != ncclSuccess) return rc;
  return ncclSuccess;
}

const char* ncclGetLastError(ncclComm_t) {
  return state().last_error.c_str();
}
#endif
