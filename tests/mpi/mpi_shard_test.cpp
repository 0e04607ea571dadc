// Shards in other processes: run under mpirun with 3 ranks (ctest does). Rank 0 runs the tests;
// ranks 1 and 2 serve the shards it places on them (shard k on rank 1 + k mod 2), so a
// collection of 2-5 shards spans both. The check is the in-process one (tests/shard_parity.h):
// lookups, weight gradients, training and checkpoint state equal one unsharded collection's.
#include <gtest/gtest.h>
#include <mpi.h>

#include "embeddings/mpi/mpi_shards.h"
#include "tests/shard_parity.h"

namespace tessera::emb {
namespace {

using namespace shard_test;

class MpiShardsEqualUnsharded : public ::testing::TestWithParam<ShardCase> {};

TEST_P(MpiShardsEqualUnsharded, AcrossProcesses) {
  expect_sharded_equals_unsharded(GetParam(), [](const ShardPlan& plan,
                                                 const CollectionOptions& opts) {
    return std::make_unique<ShardedEmbeddingCollection>(specs(), plan, mpi_shard_factory(), opts);
  });
}

INSTANTIATE_TEST_SUITE_P(
    Ranks, MpiShardsEqualUnsharded,
    ::testing::Values(ShardCase{2, Placement::TableWise, SparseOptimizer::LazyAdam},
                      ShardCase{3, Placement::RowWise, SparseOptimizer::RowwiseAdagrad},
                      ShardCase{4, Placement::ColumnWise, SparseOptimizer::Adagrad},
                      ShardCase{5, Placement::TableWise, SparseOptimizer::Sgd}),
    [](const auto& info) { return case_name(info.param); });

TEST(MpiShards, WhereNamesTheRankAndErrorsComeBack) {
  CollectionOptions opts;
  std::unique_ptr<EmbeddingShard> shard =
      make_remote_shard(make_mpi_shard_channel(1), {{"t", 5, 3, Pooling::Sum}}, opts);
  EXPECT_EQ(shard->where().rfind("mpi rank 2: ", 0), 0u) << shard->where();
  try {
    shard->table_to_host(3);
    FAIL() << "no error for table 3 of 1";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shard on mpi rank 2: "), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::emb

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int rc = 0;
  if (rank == 0) {
    ::testing::InitGoogleTest(&argc, argv);
    if (size != 3) {
      std::fprintf(stderr, "mpi_shard_test: run with 3 ranks (mpirun -np 3), got %d\n", size);
      rc = 2;
    } else {
      rc = RUN_ALL_TESTS();
    }
    tessera::emb::stop_mpi_shard_servers();
  } else {
    auto backend = tessera::make_host_backend();
    tessera::emb::serve_mpi_shards(*backend);
  }
  MPI_Finalize();
  return rc;
}
