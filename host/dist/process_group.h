#pragma once
// The processes that train together (hybrid-parallel training, docs/distributed.md).
//
// Every rank runs the same command on its own part of the data; the collectives below are what
// the ranks exchange. The CLI installs an MPI group (host/dist/mpi_group.h) when it was started by
// mpirun and every rank trains; everywhere else the group is a single process, whose collectives
// return their input.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tessera {
class Backend;  // host/backend/backend.h
class Tensor;   // host/core/tensor.h
}  // namespace tessera

namespace tessera::dist {

// What a rank has sent since its group was made: the bytes it handed to the transport (for an
// MPI_Allreduce, the payload; the library's own algorithm decides what travels) and the calls.
struct CommStats {
  int64_t allreduce_calls = 0, allreduce_bytes = 0;
  int64_t broadcast_calls = 0, broadcast_bytes = 0;
  int64_t allgather_calls = 0, allgather_bytes = 0;
  // alltoallv: the bytes this rank sends to the other ranks (its own part to itself not
  // counted), plus the 8-byte lengths it sends them.
  int64_t alltoall_calls = 0, alltoall_bytes = 0;
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // Element-wise sums across the ranks, in place; every rank gets the same result. In a
  // deterministic group the sum of each element is taken in rank order (rank 0's value, plus
  // rank 1's, ...) in the element's type, so equal inputs give bit-identical results on every
  // run.
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // `bytes` bytes of rank `root`'s buffer into every rank's.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Every rank's `bytes` bytes of `send`, in rank order, into `recv` (world() * bytes bytes).
  virtual void allgather(const void* send, int64_t bytes, void* recv) = 0;
  // Every rank's `send` (of any length, each its own), in rank order. One call: the lengths are
  // all-gathered first, then the bytes. This default pads every part to the longest through
  // allgather; the MPI group overrides it with MPI_Allgatherv (the parts as they are). Counted
  // in allgather_calls / allgather_bytes as (N - 1) x the rank's own part (what it hands the
  // transport for the others), plus the lengths.
  virtual std::vector<std::string> allgatherv(const std::string& send);
  // Personalised exchange (tables split across ranks, embeddings/alltoall_tables.h): send[j]
  // (world() parts, each its own length) goes to rank j; returns recv[r], what rank r sent this
  // rank. One call: the lengths first, then the bytes. This default goes through allgatherv
  // (every rank receives every part, counted as an all-gather); the MPI group overrides it with
  // MPI_Alltoall of the lengths and MPI_Alltoallv of the parts (counted in alltoall_*).
  virtual std::vector<std::string> alltoallv(const std::vector<std::string>& send);
  virtual bool deterministic() const { return false; }
  virtual CommStats stats() const { return {}; }

  // Element-wise sums of f32 tensors on `be` across the ranks, in place (each rank passes the
  // same shapes in the same order). This default goes through host memory: each tensor is
  // copied to the host, summed by allreduce_sum(float*) and copied back. A group with a device
  // transport (cuda/nccl_group.h) sums them where they live, queued on the backend's stream, and
  // says so with reduces_on_device.
  virtual void allreduce_sum(Backend& be, const std::vector<Tensor*>& tensors);
  // Whether allreduce_sum(be, ...) sums on be's device without a host copy.
  virtual bool reduces_on_device(const Backend& /*be*/) const { return false; }
};

// The group this process trains in (a group of one unless set_process_group installed another).
ProcessGroup& process_group();
// Installs the process's group (the CLI under mpirun); nullptr restores the group of one.
void set_process_group(std::unique_ptr<ProcessGroup> group);
// A group of one process.
std::unique_ptr<ProcessGroup> make_local_group();

// Rank `root`'s string on every rank.
void broadcast_string(ProcessGroup& g, std::string& s, int root);
// Every rank's string, in rank order.
std::vector<std::string> allgather_strings(ProcessGroup& g, const std::string& s);

}  // namespace tessera::dist
