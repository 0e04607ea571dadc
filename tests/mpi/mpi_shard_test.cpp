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

// Replies too large to go out eagerly (MPI then waits for the receiver), with rank 1 holding two
// of the three shards: the parent sends all three requests before it reads a reply, so it must
// not wait on its sends (it did, and hung, until the channel's sends were made non-blocking).
TEST(MpiShards, LargeRepliesFromARankWithTwoShardsDoNotDeadlock) {
  const std::vector<TableSpec> big = {
      {"a", 3000, 64, Pooling::Sum}, {"b", 2000, 64, Pooling::Mean}, {"c", 1000, 64, Pooling::Sum}};
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::Adagrad;
  opts.init_scale = 0.2f;
  PlannerOptions po;
  po.force_all = true;
  po.force = Placement::TableWise;
  const ShardPlan plan =
      plan_shards(big, std::vector<int64_t>(3, int64_t{1} << 30), opts.optimizer, po);
  ShardedEmbeddingCollection sharded(big, plan, mpi_shard_factory(), opts);
  auto host = make_host_backend();
  EmbeddingCollection single(big, *host, opts);
  std::mt19937 gen(3);
  const int64_t B = 1024;  // replies of 1024 x 64 floats: 256 KiB
  for (int step = 0; step < 3; ++step) {
    std::vector<std::vector<std::vector<int64_t>>> ids(3, std::vector<std::vector<int64_t>>(B));
    for (size_t t = 0; t < 3; ++t)
      for (auto& bag : ids[t])
        for (int k = 0; k < 4; ++k)
          bag.push_back(std::uniform_int_distribution<int64_t>(0, big[t].rows - 1)(gen));
    const Bags bags = make_host_bags(ids);
    Tensor os, ou;
    sharded.forward(bags, os);
    single.forward(bags, ou);
    ASSERT_EQ(os.numel(), ou.numel());
    for (int64_t i = 0; i < ou.numel(); ++i)
      ASSERT_EQ(os.data<float>()[i], ou.data<float>()[i]) << "step " << step << ", " << i;
    Tensor dout = Tensor::host({B, single.layout().out_dim()});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
    sharded.backward_and_update(dout);
    single.backward_and_update(dout);
  }
  const Tensor ws = sharded.weights_to_host(), wu = single.weights_to_host();
  for (int64_t i = 0; i < wu.numel(); ++i) ASSERT_EQ(ws.data<float>()[i], wu.data<float>()[i]) << i;
}

// Delegates to a shard, but its first finish_forward fails after the reply was read.
class FailsOnce final : public EmbeddingShard {
 public:
  explicit FailsOnce(std::unique_ptr<EmbeddingShard> s) : s_(std::move(s)) {}
  const TableLayout& layout() const override { return s_->layout(); }
  Tensor forward(const Bags& b) override { return s_->forward(b); }
  void backward_update(const Tensor& d) override { s_->backward_update(d); }
  Tensor weight_grad(const Tensor& d) override { return s_->weight_grad(d); }
  Tensor table_to_host(int64_t t) override { return s_->table_to_host(t); }
  void set_table(int64_t t, const Tensor& v) override { s_->set_table(t, v); }
  int num_states() const override { return s_->num_states(); }
  Tensor state_to_host(int slot) override { return s_->state_to_host(slot); }
  void set_state(int slot, const Tensor& v) override { s_->set_state(slot, v); }
  void set_steps(int64_t steps) override { s_->set_steps(steps); }
  std::string where() const override { return s_->where(); }
  void start_forward(const Bags& b) override { s_->start_forward(b); }
  Tensor finish_forward() override {
    Tensor t = s_->finish_forward();
    if (!failed_) {
      failed_ = true;
      throw Error(ErrorKind::Data, "injected failure");
    }
    return t;
  }
  void start_backward_update(const Tensor& d) override { s_->start_backward_update(d); }
  void finish_backward_update() override { s_->finish_backward_update(); }

 private:
  std::unique_ptr<EmbeddingShard> s_;
  bool failed_ = false;
};

// A shard failing between start and finish: the collection still reads every other shard's reply
// (rank 1 holds shards 0 and 2, and a large unread reply would block it), so the error comes
// back, the next forward is right, and closing the shards does not hang.
TEST(MpiShards, AFailingShardLeavesNoReplyUnread) {
  const std::vector<TableSpec> big = {
      {"a", 3000, 64, Pooling::Sum}, {"b", 2000, 64, Pooling::Sum}, {"c", 1000, 64, Pooling::Sum}};
  CollectionOptions opts;
  PlannerOptions po;
  po.force_all = true;
  po.force = Placement::TableWise;
  const ShardPlan plan =
      plan_shards(big, std::vector<int64_t>(3, int64_t{1} << 30), opts.optimizer, po);
  const ShardFactory mpi = mpi_shard_factory();
  auto factory = [&](int k, std::vector<TableSpec> specs, const CollectionOptions& o) {
    std::unique_ptr<EmbeddingShard> s = mpi(k, std::move(specs), o);
    if (k == 1) return std::unique_ptr<EmbeddingShard>(new FailsOnce(std::move(s)));
    return s;
  };
  auto host = make_host_backend();
  EmbeddingCollection single(big, *host, opts);
  const int64_t B = 1024;
  std::vector<std::vector<std::vector<int64_t>>> ids(3, std::vector<std::vector<int64_t>>(B));
  for (size_t t = 0; t < 3; ++t)
    for (int64_t s = 0; s < B; ++s) ids[t][static_cast<size_t>(s)] = {s % big[t].rows};
  const Bags bags = make_host_bags(ids);
  {
    ShardedEmbeddingCollection sharded(big, plan, factory, opts);
    Tensor os;
    EXPECT_THROW(sharded.forward(bags, os), Error);
  }  // closes the three shards at once
  {
    ShardedEmbeddingCollection sharded(big, plan, factory, opts);
    Tensor os, ou;
    EXPECT_THROW(sharded.forward(bags, os), Error);
    sharded.forward(bags, os);
    single.forward(bags, ou);
    ASSERT_EQ(os.numel(), ou.numel());
    for (int64_t i = 0; i < ou.numel(); ++i) ASSERT_EQ(os.data<float>()[i], ou.data<float>()[i]);
  }  // closes the three shards
}

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

// A frame whose length field promises 2^62 bytes followed by a 3-byte piece: the receiver
// refuses it by name instead of allocating the promise (it did: std::bad_alloc).
TEST(MpiShards, AFrameLengthIsCheckedAgainstThePiecesThatArrive) {
  const int tag = 32000;  // above the tags the shard channels hand out in these tests
  for (const int64_t length : {int64_t{1} << 62, int64_t{-5}, int64_t{4}}) {
    const char piece[3] = {'a', 'b', 'c'};
    MPI_Request sends[2];
    MPI_Isend(&length, 1, MPI_INT64_T, 0, tag, MPI_COMM_WORLD, &sends[0]);
    MPI_Isend(piece, 3, MPI_BYTE, 0, tag, MPI_COMM_WORLD, &sends[1]);
    try {
      recv_mpi_message(0, tag);
      ADD_FAILURE() << "a frame declaring " << length << " bytes over a 3-byte piece was taken";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::to_string(length)), std::string::npos) << e.what();
    }
    char drain[3];  // the piece the refused frame left behind
    MPI_Recv(drain, 3, MPI_BYTE, 0, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Waitall(2, sends, MPI_STATUSES_IGNORE);
  }
  const int64_t three = 3;
  const char piece[3] = {'x', 'y', 'z'};
  MPI_Request sends[2];
  MPI_Isend(&three, 1, MPI_INT64_T, 0, tag, MPI_COMM_WORLD, &sends[0]);
  MPI_Isend(piece, 3, MPI_BYTE, 0, tag, MPI_COMM_WORLD, &sends[1]);
  EXPECT_EQ(recv_mpi_message(0, tag), (Message{'x', 'y', 'z'}));
  MPI_Waitall(2, sends, MPI_STATUSES_IGNORE);
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
