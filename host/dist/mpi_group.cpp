// The MPI ProcessGroup (mpi_group.h). This file sits under host/, whose library takes every .cpp
// without linking MPI: there it compiles to nothing, and the top-level CMakeLists.txt builds it
// again, with TESSERA_DIST_MPI=1, into tessera_dist_mpi, which links MPI::MPI_CXX.
#if TESSERA_DIST_MPI
#include "host/dist/mpi_group.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "host/core/error.h"

namespace tessera::dist {

namespace {

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  TESSERA_THROW(Io, what << " failed: " << std::string(text, static_cast<size_t>(len)));
}

class MpiGroup final : public ProcessGroup {
 public:
  explicit MpiGroup(const MpiGroupOptions& o) : o_(o) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) TESSERA_THROW(Internal, "an MPI process group needs MPI initialised first");
    if (o_.bucket_bytes < 64) TESSERA_THROW(Usage, "bucket_bytes must be at least 64");
    if (o_.ranks > 0) {
      int world_rank = 0;
      MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
      check(MPI_Comm_split(MPI_COMM_WORLD, world_rank < o_.ranks ? 0 : MPI_UNDEFINED, world_rank,
                           &comm_),
            "MPI_Comm_split");
      if (comm_ == MPI_COMM_NULL) return;  // outside the group: make_mpi_group returns nullptr
    } else {
      check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    }
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &world_);
  }
  ~MpiGroup() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  bool member() const { return comm_ != MPI_COMM_NULL; }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  void allreduce_sum(float* data, int64_t n) override { allreduce(data, n); }
  void allreduce_sum(double* data, int64_t n) override { allreduce(data, n); }
  void broadcast(void* data, int64_t bytes, int root) override;
  void barrier() override { check(MPI_Barrier(comm_), "MPI_Barrier"); }
  void allgather(const void* send, int64_t bytes, void* recv) override;
  std::vector<std::string> allgatherv(const std::string& send) override;
  std::vector<std::string> alltoallv(const std::vector<std::string>& send) override;
  bool deterministic() const override { return o_.deterministic; }
  CommStats stats() const override { return stats_; }

 private:
  template <typename T>
  void allreduce(T* data, int64_t n);
  template <typename T>
  void ordered_sum(T* data, int m);

  MpiGroupOptions o_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, world_ = 1;
  CommStats stats_;
  std::vector<char> scratch_;
};

template <typename T>
void MpiGroup::allreduce(T* data, int64_t n) {
  if (n < 0) TESSERA_THROW(Internal, "allreduce of " << n << " elements");
  if (world_ == 1 || n == 0) return;
  ++stats_.allreduce_calls;
  const int64_t bucket =
      std::min<int64_t>(INT_MAX / 2, std::max<int64_t>(1, o_.bucket_bytes / sizeof(T)));
  for (int64_t off = 0; off < n; off += bucket) {
    const int m = static_cast<int>(std::min(bucket, n - off));
    if (o_.deterministic) {
      ordered_sum(data + off, m);
    } else {
      check(MPI_Allreduce(MPI_IN_PLACE, data + off, m, mpi_type<T>(), MPI_SUM, comm_),
            "MPI_Allreduce");
      stats_.allreduce_bytes += static_cast<int64_t>(m) * static_cast<int64_t>(sizeof(T));
    }
  }
}

// One bucket in rank order: slice j of the bucket ([m j / N, m (j+1) / N)) goes from every rank to
// rank j (MPI_Alltoallv), which sums its N copies as rank 0's + rank 1's + ...; the summed slices
// then go to every rank (MPI_Allgatherv). Each rank sends m - (its slice) elements in the first
// exchange and (N - 1) x (its slice) in the second: 2 (N - 1) / N x m in all for even slices,
// the bandwidth a ring all-reduce needs.
template <typename T>
void MpiGroup::ordered_sum(T* data, int m) {
  const int N = world_;
  std::vector<int> start(static_cast<size_t>(N) + 1), len(static_cast<size_t>(N));
  for (int j = 0; j <= N; ++j)
    start[static_cast<size_t>(j)] = static_cast<int>(static_cast<int64_t>(m) * j / N);
  for (int j = 0; j < N; ++j) len[static_cast<size_t>(j)] = start[j + 1] - start[j];
  const int mine = len[static_cast<size_t>(rank_)];
  scratch_.resize(static_cast<size_t>(N) * static_cast<size_t>(std::max(mine, 1)) * sizeof(T));
  T* recv = reinterpret_cast<T*>(scratch_.data());
  std::vector<int> rcounts(static_cast<size_t>(N), mine), rdispls(static_cast<size_t>(N));
  for (int r = 0; r < N; ++r) rdispls[static_cast<size_t>(r)] = r * mine;
  check(MPI_Alltoallv(data, len.data(), start.data(), mpi_type<T>(), recv, rcounts.data(),
                      rdispls.data(), mpi_type<T>(), comm_),
        "MPI_Alltoallv");
  std::vector<T> sum(recv, recv + mine);
  for (int r = 1; r < N; ++r)
    for (int i = 0; i < mine; ++i) sum[static_cast<size_t>(i)] += recv[r * mine + i];
  check(MPI_Allgatherv(sum.data(), mine, mpi_type<T>(), data, len.data(), start.data(),
                       mpi_type<T>(), comm_),
        "MPI_Allgatherv");
  stats_.allreduce_bytes += (static_cast<int64_t>(m - mine) + static_cast<int64_t>(N - 1) * mine) *
                            static_cast<int64_t>(sizeof(T));
}

void MpiGroup::broadcast(void* data, int64_t bytes, int root) {
  if (root < 0 || root >= world_)
    TESSERA_THROW(Internal, "broadcast from rank " << root << " of " << world_);
  if (world_ == 1) return;
  ++stats_.broadcast_calls;
  if (rank_ == root) stats_.broadcast_bytes += bytes * (world_ - 1);
  char* p = static_cast<char*>(data);
  for (int64_t off = 0; off < bytes; off += INT_MAX) {
    const int m = static_cast<int>(std::min<int64_t>(INT_MAX, bytes - off));
    check(MPI_Bcast(p + off, m, MPI_BYTE, root, comm_), "MPI_Bcast");
  }
}

void MpiGroup::allgather(const void* send, int64_t bytes, void* recv) {
  if (bytes < 0 || bytes > INT_MAX)
    TESSERA_THROW(Internal, "allgather of " << bytes << " bytes per rank (at most INT_MAX)");
  ++stats_.allgather_calls;
  stats_.allgather_bytes += bytes * (world_ - 1);
  check(MPI_Allgather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes),
                      MPI_BYTE, comm_),
        "MPI_Allgather");
}

// The lengths go first (MPI_Allgather of one i64 per rank), then the parts as they are
// (MPI_Allgatherv): no padding to the longest, which the sparse step exchange's uneven parts
// would pay for. MPI counts and displacements are int, so the parts together stay under 2 GiB.
std::vector<std::string> MpiGroup::allgatherv(const std::string& send) {
  const int64_t mine = static_cast<int64_t>(send.size());
  std::vector<int64_t> sizes(static_cast<size_t>(world_));
  check(MPI_Allgather(&mine, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, comm_), "MPI_Allgather");
  std::vector<int> counts(static_cast<size_t>(world_)), displs(static_cast<size_t>(world_));
  int64_t total = 0;
  for (int r = 0; r < world_; ++r) {
    displs[static_cast<size_t>(r)] = static_cast<int>(total);
    counts[static_cast<size_t>(r)] = static_cast<int>(sizes[static_cast<size_t>(r)]);
    total += sizes[static_cast<size_t>(r)];
    if (total > INT_MAX)
      TESSERA_THROW(Internal, "allgatherv of " << total << " bytes over " << world_
                                               << " ranks (at most INT_MAX)");
  }
  ++stats_.allgather_calls;
  stats_.allgather_bytes += (mine + static_cast<int64_t>(sizeof mine)) * (world_ - 1);
  std::string all(static_cast<size_t>(total), '\0');
  check(MPI_Allgatherv(send.data(), static_cast<int>(mine), MPI_BYTE, all.data(), counts.data(),
                       displs.data(), MPI_BYTE, comm_),
        "MPI_Allgatherv");
  std::vector<std::string> out;
  for (int r = 0; r < world_; ++r)
    out.push_back(all.substr(static_cast<size_t>(displs[static_cast<size_t>(r)]),
                             static_cast<size_t>(counts[static_cast<size_t>(r)])));
  return out;
}

// The lengths go first (MPI_Alltoall of one i64 per pair), then the parts (MPI_Alltoallv of
// bytes). MPI counts and displacements are int: what a rank sends, and what it receives, must
// each stay under 2 GiB.
std::vector<std::string> MpiGroup::alltoallv(const std::vector<std::string>& send) {
  if (static_cast<int>(send.size()) != world_)
    TESSERA_THROW(Internal, "alltoallv of " << send.size() << " parts over " << world_ << " ranks");
  const size_t N = static_cast<size_t>(world_);
  std::vector<int64_t> out_len(N), in_len(N);
  for (size_t j = 0; j < N; ++j) out_len[j] = static_cast<int64_t>(send[j].size());
  check(MPI_Alltoall(out_len.data(), 1, MPI_INT64_T, in_len.data(), 1, MPI_INT64_T, comm_),
        "MPI_Alltoall");
  std::vector<int> scounts(N), sdispls(N), rcounts(N), rdispls(N);
  std::string out_bytes, in_bytes;
  int64_t sent = 0, received = 0;
  for (size_t j = 0; j < N; ++j) {
    if (sent + out_len[j] > INT_MAX || received + in_len[j] > INT_MAX)
      TESSERA_THROW(Internal, "alltoallv of more than INT_MAX bytes to or from one rank");
    sdispls[j] = static_cast<int>(sent);
    scounts[j] = static_cast<int>(out_len[j]);
    rdispls[j] = static_cast<int>(received);
    rcounts[j] = static_cast<int>(in_len[j]);
    sent += out_len[j];
    received += in_len[j];
    out_bytes += send[j];
  }
  in_bytes.resize(static_cast<size_t>(received));
  check(MPI_Alltoallv(out_bytes.data(), scounts.data(), sdispls.data(), MPI_BYTE, in_bytes.data(),
                      rcounts.data(), rdispls.data(), MPI_BYTE, comm_),
        "MPI_Alltoallv");
  ++stats_.alltoall_calls;
  const int64_t own = out_len[static_cast<size_t>(rank_)];
  stats_.alltoall_bytes += sent - own + static_cast<int64_t>(sizeof(int64_t)) * (world_ - 1);
  std::vector<std::string> recv;
  for (size_t r = 0; r < N; ++r)
    recv.push_back(
        in_bytes.substr(static_cast<size_t>(rdispls[r]), static_cast<size_t>(rcounts[r])));
  return recv;
}

}  // namespace

std::unique_ptr<ProcessGroup> make_mpi_group(const MpiGroupOptions& options) {
  auto g = std::make_unique<MpiGroup>(options);
  if (!g->member()) return nullptr;
  return g;
}

}  // namespace tessera::dist
#endif
