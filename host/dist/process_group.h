#pragma once
// The processes that train together (hybrid-parallel training, docs/design-decisions.md).
//
// Every rank runs the same command on its own part of the data; the collectives below are what
// the ranks exchange. The CLI installs an MPI group when it was started by mpirun (every rank
// trains); everywhere else the group is a single process, whose collectives return their input.
#include <cstdint>
#include <memory>

namespace tessera::dist {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // Element-wise sums across the ranks, in place; every rank gets the same result.
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // `bytes` bytes of rank `root`'s buffer into every rank's.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  virtual void barrier() = 0;
};

// The group this process trains in (a group of one unless set_process_group installed another).
ProcessGroup& process_group();
// Installs the process's group (the CLI under mpirun); nullptr restores the group of one.
void set_process_group(std::unique_ptr<ProcessGroup> group);
// A group of one process.
std::unique_ptr<ProcessGroup> make_local_group();

}  // namespace tessera::dist
