#pragma once
// What the MPI gtest binaries (tests/mpi/*_test.cpp, which ctest runs under mpirun) share: a
// process group that forwards to one the test keeps, a scratch directory every rank names alike,
// and main()'s reporting (rank 0 prints gtest's report; every other rank only its failures, with
// its rank) and ending (the worst result of any rank, the scratch directory removed).
#include <gtest/gtest.h>
#include <mpi.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "host/dist/process_group.h"

namespace tessera::mpitest {

// Forwards every collective to `g`, which the test keeps: set_process_group takes ownership of
// what it installs, and a test installs the same group for several runs.
class Forwarding final : public dist::ProcessGroup {
 public:
  explicit Forwarding(dist::ProcessGroup& g) : g_(g) {}
  int rank() const override { return g_.rank(); }
  int world() const override { return g_.world(); }
  void allreduce_sum(float* d, int64_t n) override { g_.allreduce_sum(d, n); }
  void allreduce_sum(double* d, int64_t n) override { g_.allreduce_sum(d, n); }
  void allreduce_sum(Backend& be, const std::vector<Tensor*>& t) override {
    g_.allreduce_sum(be, t);
  }
  bool reduces_on_device(const Backend& be) const override { return g_.reduces_on_device(be); }
  void broadcast(void* d, int64_t b, int root) override { g_.broadcast(d, b, root); }
  void barrier() override { g_.barrier(); }
  void allgather(const void* s, int64_t b, void* r) override { g_.allgather(s, b, r); }
  std::vector<std::string> allgatherv(const std::string& s) override { return g_.allgatherv(s); }
  std::vector<std::string> alltoallv(const std::vector<std::string>& s) override {
    return g_.alltoallv(s);
  }
  bool deterministic() const override { return g_.deterministic(); }
  dist::CommStats stats() const override { return g_.stats(); }

 private:
  dist::ProcessGroup& g_;
};

// A new directory under /tmp (`prefix` and mkdtemp's letters), made by rank 0 of `world`; every
// rank gets its path.
inline std::string make_shared_dir(dist::ProcessGroup& world, const std::string& prefix) {
  std::string d;
  if (world.rank() == 0) {
    std::string tmpl = "/tmp/" + prefix + "_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "mkdtemp %s failed\n", tmpl.c_str());
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    d = tmpl;
  }
  dist::broadcast_string(world, d, 0);
  return d;
}

// Prints a failure with the rank that saw it.
class FailurePrinter final : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: %s\n", rank_, r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
  }

 private:
  int rank_;
};

// Rank 0 keeps gtest's report; any other rank prints only its failures, with its rank.
inline void report_from_rank0(int rank) {
  if (rank == 0) return;
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  delete listeners.Release(listeners.default_result_printer());
  listeners.Append(new FailurePrinter(rank));
}

// The worst of every rank's RUN_ALL_TESTS result `rc` (rank 0 says when only another rank
// failed), after which rank 0 removes `dir` (once every rank is done with it).
inline int worst_result(dist::ProcessGroup& world, int rc, const char* test,
                        const std::string& dir) {
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (worst != 0 && rc == 0 && world.rank() == 0)
    std::fprintf(stderr, "%s: a test failed on another rank\n", test);
  world.barrier();
  std::error_code ec;
  if (world.rank() == 0) std::filesystem::remove_all(dir, ec);
  return worst;
}

}  // namespace tessera::mpitest
