// Sharded embeddings on N host shards (a machine without GPUs runs the same code that places
// shards on N devices): the planner's choices and its printed plan, and sharded == unsharded for
// lookups, per-sample weight gradients, training (every sparse optimizer; table-, row- and
// column-wise), checkpoint state and the id policies.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

#include "embeddings/remote_shard.h"
#include "embeddings/sharding.h"
#include "embeddings/tables.h"
#include "tests/shard_parity.h"

namespace tessera::emb {
namespace {

using namespace shard_test;

TEST(EmbeddingShardPlan, SmallTablesWholeBigTablesSplitAndPrinted) {
  SparseOptimizerConfig opt;
  opt.kind = SparseOptimizer::Adagrad;
  const ShardPlan plan = plan_shards(specs(), {100000, 100000}, opt);
  const std::string text = plan.describe(specs());
  std::cout << text;
  // big: 400 x 6 x 4 x 2 = 19200 B, more than the average load -> row-wise; the rest table-wise.
  EXPECT_EQ(plan.tables[1].placement, Placement::RowWise) << text;
  ASSERT_EQ(plan.tables[1].parts.size(), 2u);
  EXPECT_EQ(plan.tables[1].parts[0].row_begin, 0);
  EXPECT_EQ(plan.tables[1].parts[1].row_end, 400);
  EXPECT_EQ(plan.tables[0].placement, Placement::TableWise);
  EXPECT_NE(text.find("table 'big' [400 x 6]"), std::string::npos) << text;
  EXPECT_NE(text.find("row-wise: shard 0 rows [0, "), std::string::npos) << text;
  // A table larger than any shard but not than all of them together is split; too large is an
  // error.
  const ShardPlan tight = plan_shards({{"huge", 1000, 8}}, {20000, 20000}, {});
  EXPECT_EQ(tight.tables[0].placement, Placement::RowWise);
  try {
    plan_shards({{"huge", 1000, 8}}, {10000, 10000}, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("need 0.03 MiB"), std::string::npos) << e.what();
  }
}

class ShardedEqualsUnsharded : public ::testing::TestWithParam<ShardCase> {};

TEST_P(ShardedEqualsUnsharded, LookupsAndTrainingMatch) {
  const ShardCase c = GetParam();
  std::vector<std::unique_ptr<Backend>> owned;
  std::vector<Backend*> backends;
  for (int k = 0; k < c.shards; ++k) {
    owned.push_back(make_host_backend());
    backends.push_back(owned.back().get());
  }
  expect_sharded_equals_unsharded(c, [&](const ShardPlan& plan, const CollectionOptions& opts) {
    return std::make_unique<ShardedEmbeddingCollection>(specs(), plan, backends, opts);
  });
}

INSTANTIATE_TEST_SUITE_P(
    HostShards, ShardedEqualsUnsharded,
    ::testing::Values(ShardCase{2, Placement::TableWise, SparseOptimizer::Sgd},
                      ShardCase{3, Placement::TableWise, SparseOptimizer::LazyAdam},
                      ShardCase{2, Placement::RowWise, SparseOptimizer::Adagrad},
                      ShardCase{3, Placement::RowWise, SparseOptimizer::RowwiseAdagrad},
                      ShardCase{5, Placement::RowWise, SparseOptimizer::LazyAdam},
                      ShardCase{2, Placement::ColumnWise, SparseOptimizer::Sgd},
                      ShardCase{3, Placement::ColumnWise, SparseOptimizer::Adagrad},
                      ShardCase{4, Placement::ColumnWise, SparseOptimizer::LazyAdam},
                      // more shards than any table has columns
                      ShardCase{8, Placement::ColumnWise, SparseOptimizer::Adagrad},
                      // more shards than tables: one shard holds nothing
                      ShardCase{5, Placement::TableWise, SparseOptimizer::Adagrad}),
    [](const auto& info) { return case_name(info.param); });

// Shards behind a channel, as in another process: every call is encoded as a request, run by a
// ShardServer, and its reply decoded (embeddings/remote_shard.h). The same check as above.
class RemoteShardsEqualUnsharded : public ::testing::TestWithParam<ShardCase> {};

TEST_P(RemoteShardsEqualUnsharded, ThroughALoopbackChannel) {
  auto backend = make_host_backend();
  expect_sharded_equals_unsharded(
      GetParam(), [&](const ShardPlan& plan, const CollectionOptions& opts) {
        return std::make_unique<ShardedEmbeddingCollection>(
            specs(), plan,
            remote_shard_factory([&](int) { return make_loopback_channel(*backend); }), opts);
      });
}

INSTANTIATE_TEST_SUITE_P(
    Loopback, RemoteShardsEqualUnsharded,
    ::testing::Values(ShardCase{2, Placement::TableWise, SparseOptimizer::LazyAdam},
                      ShardCase{3, Placement::RowWise, SparseOptimizer::RowwiseAdagrad},
                      ShardCase{3, Placement::ColumnWise, SparseOptimizer::Adagrad}),
    [](const auto& info) { return case_name(info.param); });

// The far side's errors come back with their kind and message, naming where the shard lives;
// a message that does not decode is refused by name, never a crash.
TEST(RemoteShards, ErrorsCrossTheChannelAndBadMessagesAreRefused) {
  auto backend = make_host_backend();
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::Adagrad;
  std::unique_ptr<EmbeddingShard> shard =
      make_remote_shard(make_loopback_channel(*backend), {{"t", 5, 3, Pooling::Sum}}, opts);
  EXPECT_NE(shard->where().find("loopback: "), std::string::npos) << shard->where();
  EXPECT_EQ(shard->num_states(), 1);
  try {
    shard->set_state(0, Tensor::host({4}));
    FAIL() << "no error for a state of the wrong size";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("shard on loopback: "), std::string::npos) << m;
    EXPECT_NE(m.find("has 15 elements"), std::string::npos) << m;
  }
  try {
    shard->forward(make_host_bags({{{0, 7}}}));  // id 7 of 5 rows, policy Error
    FAIL() << "no error for an id out of range";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data) << e.what();
  }
  const Tensor out = shard->forward(make_host_bags({{{0, 4}}}));
  EXPECT_EQ(out.dim(0), 1);
  EXPECT_EQ(out.dim(1), 3);
  // A forward started and never finished (the parent failed in between): its reply is drained,
  // and the next call reads its own.
  shard->start_forward(make_host_bags({{{1}}}));
  const Tensor table = shard->table_to_host(0);
  ASSERT_EQ(table.rank(), 2);
  EXPECT_EQ(table.dim(0), 5);
  EXPECT_EQ(table.dim(1), 3);
  shard->start_forward(make_host_bags({{{2}}}));
  const Tensor row2 = shard->finish_forward();
  for (int c = 0; c < 3; ++c) EXPECT_EQ(row2.data<float>()[c], table.data<float>()[2 * 3 + c]);

  ShardServer server(*backend);
  auto refused = [&](const Message& m, const std::string& what) {
    const Message reply = server.handle(m);
    ASSERT_FALSE(reply.empty());
    EXPECT_EQ(reply[0], 0) << what << ": accepted";
    const std::string text(reply.begin(), reply.end());
    EXPECT_NE(text.find(what), std::string::npos) << text;
  };
  refused({}, "truncated");
  refused({2}, "before the shard was created");
  refused({1, 1, 2, 3}, "truncated");
  refused({1, 0, 0, 0, 0}, "protocol 0");
  refused({99}, "before the shard was created");
  EXPECT_FALSE(server.closed());
}

TEST(EmbeddingShardPlan, ColumnWiseSplitsColumnsAndRefusesRowwiseAdagrad) {
  PlannerOptions po;
  po.force_all = true;
  po.force = Placement::ColumnWise;
  SparseOptimizerConfig opt;
  opt.kind = SparseOptimizer::Adagrad;
  const ShardPlan plan = plan_shards(specs(), {100000, 100000, 100000, 100000}, opt, po);
  const std::string text = plan.describe(specs());
  std::cout << text;
  // 'big' is 6 wide over 4 shards: 2 + 2 + 1 + 1 columns.
  const TablePlacement& big = plan.tables[1];
  EXPECT_EQ(big.placement, Placement::ColumnWise);
  ASSERT_EQ(big.parts.size(), 4u);
  const int64_t widths[] = {2, 2, 1, 1};
  int64_t col = 0;
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(big.parts[k].shard, static_cast<int>(k));
    EXPECT_EQ(big.parts[k].col_begin, col);
    EXPECT_EQ(big.parts[k].col_end - big.parts[k].col_begin, widths[k]);
    EXPECT_EQ(big.parts[k].row_begin, 0);
    EXPECT_EQ(big.parts[k].row_end, 400);
    col = big.parts[k].col_end;
  }
  // 'mid' is 3 wide: 3 parts, starting at the shard with the most free memory after 'big'
  // (shards 2 and 3 got one column of it, 0 and 1 two), not at shard 0.
  ASSERT_EQ(plan.tables[2].parts.size(), 3u);
  EXPECT_EQ(plan.tables[2].parts[0].shard, 2);
  EXPECT_EQ(plan.tables[2].parts[2].shard, 0);
  // Every byte planned once: 4 + 6 + 3 + 5 columns of 2 floats per element.
  int64_t planned = 0;
  for (int64_t b : plan.shard_bytes) planned += b;
  EXPECT_EQ(planned, (10 * 4 + 400 * 6 + 60 * 3 + 23 * 5) * 4 * 2);
  EXPECT_NE(text.find("column-wise: shard 0 cols [0, 2) shard 1 cols [2, 4)"), std::string::npos)
      << text;
  opt.kind = SparseOptimizer::RowwiseAdagrad;
  try {
    plan_shards(specs(), {100000, 100000}, opt, po);
    FAIL() << "column-wise with rowwise_adagrad was planned";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("column-wise sharding cannot train with rowwise_adagrad"),
              std::string::npos)
        << e.what();
  }
}

TEST(EmbeddingShards, IdPolicyAsUnsharded) {
  std::vector<std::unique_ptr<Backend>> owned;
  owned.push_back(make_host_backend());
  owned.push_back(make_host_backend());
  std::vector<Backend*> backends{owned[0].get(), owned[1].get()};
  PlannerOptions po;
  po.force_all = true;
  po.force = Placement::RowWise;
  const ShardPlan plan = plan_shards(specs(), {1 << 20, 1 << 20}, {}, po);
  ShardedEmbeddingCollection sharded(specs(), plan, backends, {});
  auto host = make_host_backend();
  EmbeddingCollection single(specs(), *host, {});
  // 'small' (Error) holds id 10 at sample 1.
  const Bags bad = make_host_bags({{{1}, {10}}, {{0}, {1}}, {{0}, {1}}, {{0}, {1}}});
  std::string ms, mu;
  Tensor out;
  try {
    sharded.forward(bad, out);
  } catch (const Error& e) {
    ms = e.what();
  }
  try {
    single.forward(bad, out);
  } catch (const Error& e) {
    mu = e.what();
  }
  EXPECT_NE(ms.find("embedding id 10 in table 'small' (#0), sample 1"), std::string::npos) << ms;
  EXPECT_EQ(ms, mu);
  // 'mid' (WarnClamp): clamped the same way.
  const Bags clamp = make_host_bags({{{1}, {2}}, {{0}, {1}}, {{70}, {-2}}, {{0}, {1}}});
  Tensor os, ou;
  sharded.forward(clamp, os);
  single.forward(clamp, ou);
  for (int64_t i = 0; i < ou.numel(); ++i)
    EXPECT_NEAR(os.data<float>()[i], ou.data<float>()[i], 1e-6);
  EXPECT_EQ(sharded.clamped_ids(), 2u);
}

// Every prefix of real requests, and real requests with a bit flipped, get a reply (a result or
// an error), never a crash or an allocation the message cannot back (run under ASan in CI).
TEST(RemoteShards, TruncatedAndCorruptedRequestsAreAnsweredNotCrashedOn) {
  auto backend = make_host_backend();
  // Records the requests a remote shard sends, on their way to a loopback server.
  struct Recorder final : ShardChannel {
    std::unique_ptr<ShardChannel> inner;
    std::vector<Message>* log;
    void send(Message m) override {
      log->push_back(m);
      inner->send(std::move(m));
    }
    Message receive() override { return inner->receive(); }
    std::string where() const override { return "recorder"; }
  };
  std::vector<Message> log;
  auto rec = std::make_unique<Recorder>();
  rec->inner = make_loopback_channel(*backend);
  rec->log = &log;
  const std::vector<TableSpec> specs{{"a", 6, 2, Pooling::Sum}, {"b", 4, 3, Pooling::Sum}};
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::LazyAdam;
  {
    auto shard = make_remote_shard(std::move(rec), specs, opts);
    shard->forward(
        make_host_bags({{{0, 5}, {}}, {{3}, {1, 2}}}, {{{0.5f, 2.f}, {}}, {{1.f}, {-1.f, 3.f}}}));
    shard->backward_update(Tensor::host({2, 5}));
    shard->set_table(1, Tensor::host({4, 3}));
    shard->set_state(0, Tensor::host({24}));
    shard->state_to_host(1);
    shard->set_steps(7);
  }
  ASSERT_GE(log.size(), 7u);
  size_t answered = 0;
  auto fresh = [&]() {
    auto server = std::make_unique<ShardServer>(*backend);
    const Message ok = server->handle(log[0]);  // the create request
    EXPECT_EQ(ok.at(0), 1);
    return server;
  };
  for (size_t i = 0; i < log.size(); ++i) {
    for (size_t n = 0; n < log[i].size(); ++n) {
      auto server = i == 0 ? std::make_unique<ShardServer>(*backend) : fresh();
      const Message reply = server->handle(Message(log[i].begin(), log[i].begin() + n));
      ASSERT_FALSE(reply.empty());
      EXPECT_EQ(reply[0], 0) << "request " << i << " cut to " << n << " bytes was accepted";
      ++answered;
    }
    // Bits flipped in every request but the create (where a flipped table size is a legitimate
    // request for a huge table: BackendStorage refuses what exceeds the machine's memory).
    std::mt19937 gen(static_cast<unsigned>(i));
    for (int k = 0; k < (i == 0 ? 0 : 64); ++k) {
      Message m = log[i];
      const size_t at = std::uniform_int_distribution<size_t>(0, m.size() - 1)(gen);
      m[at] ^= static_cast<uint8_t>(1u << std::uniform_int_distribution<int>(0, 7)(gen));
      auto server = fresh();
      const Message reply = server->handle(m);
      ASSERT_FALSE(reply.empty());
      ASSERT_LE(reply[0], 1);
      ++answered;
    }
  }
  EXPECT_GT(answered, 500u);
}

// Replies from the far side are checked against what the call returns before the parent
// indexes them by its own layout: a reply tensor of the wrong size was returned as it came, and
// the sharded collection read past its end.
TEST(RemoteShards, RepliesOfTheWrongSizeAreRefusedByName) {
  auto backend = make_host_backend();
  // A loopback channel whose replies after the create are replaced by `forged` ones.
  struct Forger final : ShardChannel {
    std::unique_ptr<ShardChannel> inner;
    Message forged;
    int calls = 0;
    void send(Message m) override { inner->send(std::move(m)); }
    Message receive() override {
      Message real = inner->receive();
      return calls++ == 0 || forged.empty() ? real : forged;
    }
    std::string where() const override { return "forger"; }
  };
  // The reply a server sends with a result tensor of `shape`.
  auto tensor_reply = [&](const Shape& shape, DType dtype) {
    Message m{1, 1, static_cast<uint8_t>(dtype), static_cast<uint8_t>(shape.size())};
    for (int64_t d : shape)
      m.insert(m.end(), reinterpret_cast<const uint8_t*>(&d),
               reinterpret_cast<const uint8_t*>(&d) + 8);
    m.resize(m.size() + static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype));
    return m;
  };
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::Adagrad;
  auto forger = std::make_unique<Forger>();
  Forger* f = forger.get();
  forger->inner = make_loopback_channel(*backend);
  auto shard = make_remote_shard(std::move(forger), {{"t", 5, 3, Pooling::Sum}}, opts);
  const Bags bags = make_host_bags({{{0, 4}, {1}}});  // 2 samples, 3 ids
  auto refused = [&](const std::function<void()>& call, const std::string& what) {
    try {
      call();
      ADD_FAILURE() << "a forged reply was accepted; expected " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  f->forged = tensor_reply({1, 3}, DType::F32);  // one sample where two were asked for
  refused([&] { shard->forward(bags); }, "reply to forward holds f32[1, 3]");
  f->forged = tensor_reply({2, 3}, DType::I32);
  refused([&] { shard->forward(bags); }, "expected f32[2, 3]");
  f->forged = tensor_reply({4}, DType::F32);
  refused([&] { shard->weight_grad(Tensor::host({2, 3})); }, "expected f32[3]");
  f->forged = tensor_reply({5, 2}, DType::F32);
  refused([&] { shard->table_to_host(0); }, "expected f32[5, 3]");
  f->forged = tensor_reply({14}, DType::F32);
  refused([&] { shard->state_to_host(0); }, "expected f32[15]");
  f->forged = {1, 0};  // no tensor at all
  refused([&] { shard->table_to_host(0); }, "no tensor");
  f->forged.clear();  // the real replies pass
  EXPECT_EQ(shard->forward(bags).shape(), (Shape{2, 3}));
  EXPECT_EQ(shard->table_to_host(0).shape(), (Shape{5, 3}));
}

// A forward request whose batch times the table count overflows: refused by name (the product
// T x B overflowed a signed integer; found by fuzz_remote_shard).
TEST(RemoteShards, ABatchTooLargeForItsOffsetsIsRefused) {
  auto backend = make_host_backend();
  EmbeddingCollection emb({{"a", 6, 2, Pooling::Sum}, {"b", 4, 3, Pooling::Sum}}, *backend, {});
  Bags bags = make_host_bags({{{0}}, {{1}}});
  for (const int64_t batch : {int64_t{4703258152856977410}, int64_t{1} << 62, int64_t{3}}) {
    bags.batch = batch;
    Tensor out;
    try {
      emb.forward(bags, out);
      ADD_FAILURE() << "batch " << batch << " over 3 offsets was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("3 entries cannot hold 2 tables x batch " +
                                           std::to_string(batch)),
                std::string::npos)
          << e.what();
    }
  }
}

// A server with a memory limit refuses a create request for more, by name, before allocating.
TEST(RemoteShards, AServerRefusesTablesBeyondItsMemoryLimit) {
  auto backend = make_host_backend();
  // Keeps the create request (outside the channel: the failed shard destroys its channel).
  struct Capture final : ShardChannel {
    Message* request = nullptr;
    void send(Message m) override { *request = std::move(m); }
    Message receive() override { return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}; }  // an error reply
    std::string where() const override { return "capture"; }
  };
  Message create;
  auto capture = std::make_unique<Capture>();
  capture->request = &create;
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::Adagrad;  // one state slot: 2 x 4 bytes per element
  EXPECT_THROW(make_remote_shard(std::move(capture), {{"big", 1000, 100, Pooling::Sum}}, opts),
               Error);
  ASSERT_FALSE(create.empty());
  ShardServer limited(*backend, 799999);
  const Message no = limited.handle(create);
  ASSERT_FALSE(no.empty());
  EXPECT_EQ(no[0], 0);
  EXPECT_NE(std::string(no.begin(), no.end()).find("take 800000 bytes, over this server's 799999"),
            std::string::npos);
  EXPECT_EQ(ShardServer(*backend, 800000).handle(create).at(0), 1);
}

// The lr factor of a schedule reaches every shard: sharded tables with factor 0.5 (then 0.25,
// 0.167) train exactly as unsharded ones with that factor (and not as with 1), and so do shards
// in another process, whose update requests carry the factor (loopback channels: every call is
// encoded and decoded as it would be between processes).
TEST(EmbeddingShards, LrScaleReachesEveryShardInProcessOrRemote) {
  auto host = make_host_backend();
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::Adagrad;
  opts.init_scale = 0.3f;
  auto sharded = make_embedding_tables(specs(), *host, opts, 3, ShardPlacement::Row);
  auto local = make_embedding_tables(specs(), *host, opts, 1);
  auto unscaled = make_embedding_tables(specs(), *host, opts, 1);
  set_remote_shard_factory(remote_shard_factory([&](int) { return make_loopback_channel(*host); }),
                           "loopback");
  auto remote = make_embedding_tables(specs(), *host, opts, 2, ShardPlacement::Row, true);
  set_remote_shard_factory(nullptr, "");
  std::mt19937 gen(23);
  for (int step = 0; step < 3; ++step) {
    const float scale = 0.5f / static_cast<float>(step + 1);
    for (EmbeddingTables* t : {sharded.get(), local.get(), remote.get()}) t->set_lr_scale(scale);
    const Bags bags = random_bags(9, gen, step == 1);
    for (EmbeddingTables* t : {sharded.get(), local.get(), remote.get(), unscaled.get()})
      t->forward_host(bags);
    Tensor dout = Tensor::host({9, local->layout().out_dim()});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
    for (EmbeddingTables* t : {sharded.get(), local.get(), remote.get(), unscaled.get()})
      t->backward_and_update_host(dout);
  }
  const Tensor ws = sharded->weights_to_host(), wl = local->weights_to_host();
  const Tensor wr = remote->weights_to_host(), wu = unscaled->weights_to_host();
  ASSERT_EQ(wr.numel(), wl.numel());
  int64_t differ = 0;
  for (int64_t i = 0; i < wl.numel(); ++i) {
    ASSERT_EQ(ws.data<float>()[i], wl.data<float>()[i]) << "element " << i;
    ASSERT_EQ(wr.data<float>()[i], wl.data<float>()[i]) << "remote, element " << i;
    differ += wl.data<float>()[i] != wu.data<float>()[i];
  }
  EXPECT_GT(differ, 0);
  EXPECT_EQ(remote->steps(), 3);
  // A factor no schedule gives is refused by the parent before anything is sent.
  for (const float bad : {0.f, -0.5f, std::nanf(""), std::numeric_limits<float>::infinity()}) {
    try {
      remote->set_lr_scale(bad);
      ADD_FAILURE() << "a remote shard accepted the lr factor " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage) << e.what();
      EXPECT_NE(std::string(e.what()).find("finite and > 0"), std::string::npos) << e.what();
    }
  }
}

// The server checks the factor an update request carries, whatever sent it: a NaN, an Inf, zero
// or a negative factor, or a request without one (the older wire format), is an error reply by
// name, and the tables are left as they were.
TEST(RemoteShards, AServerRefusesAnUpdateWithABadLrFactor) {
  auto backend = make_host_backend();
  // Keeps every request the parent sends and answers it from a real server.
  struct Record final : ShardChannel {
    std::vector<Message>* requests = nullptr;
    Message* last_reply = nullptr;
    std::unique_ptr<ShardChannel> inner;
    void send(Message m) override {
      requests->push_back(m);
      inner->send(std::move(m));
    }
    Message receive() override { return *last_reply = inner->receive(); }
    std::string where() const override { return "record"; }
  };
  std::vector<Message> requests;
  Message table_reply;
  auto record = std::make_unique<Record>();
  record->requests = &requests;
  record->last_reply = &table_reply;
  record->inner = make_loopback_channel(*backend);
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::Sgd;
  auto shard = make_remote_shard(std::move(record), {{"t", 5, 3, Pooling::Sum}}, opts);
  const Bags bags = make_host_bags({{{0, 4}, {1}}});
  shard->set_lr_scale(0.5f);
  shard->forward(bags);
  Tensor dout = Tensor::host({2, 3});
  for (int64_t i = 0; i < dout.numel(); ++i) dout.data<float>()[i] = 1.f;
  shard->backward_update(dout);
  shard->table_to_host(0);
  ASSERT_EQ(requests.size(), 4u);  // create, forward, backward + update, table
  const Message create = requests[0], forward = requests[1], update = requests[2];
  const Message table = requests[3];
  ASSERT_GE(update.size(), 4u);
  float sent = 0;
  std::memcpy(&sent, update.data() + update.size() - 4, 4);
  EXPECT_EQ(sent, 0.5f);  // the factor is the request's last field

  ShardServer server(*backend);
  ASSERT_EQ(server.handle(create).at(0), 1);
  ASSERT_EQ(server.handle(forward).at(0), 1);
  auto with_factor = [&](float f) {
    Message m = update;
    std::memcpy(m.data() + m.size() - 4, &f, 4);
    return m;
  };
  Message older = update;  // TSH1: the gradient only
  older.resize(older.size() - 4);
  const std::vector<std::pair<Message, std::string>> bad = {
      {with_factor(std::nanf("")), "lr factor nan"},
      {with_factor(std::numeric_limits<float>::infinity()), "lr factor inf"},
      {with_factor(0.f), "lr factor 0 (must be finite and > 0)"},
      {with_factor(-1.f), "lr factor -1"},
      {older, "truncated"}};
  for (const auto& [request, what] : bad) {
    const Message reply = server.handle(request);
    ASSERT_FALSE(reply.empty());
    EXPECT_EQ(reply[0], 0) << what;
    EXPECT_EQ(reply.at(1), static_cast<uint8_t>(ErrorKind::Io)) << what;
    EXPECT_NE(std::string(reply.begin(), reply.end()).find(what), std::string::npos)
        << what << " in " << std::string(reply.begin() + 2, reply.end());
  }
  // The refused updates moved nothing: with the good one after them, the table is the parent's
  // after its single update.
  ASSERT_EQ(server.handle(update).at(0), 1);
  EXPECT_EQ(server.handle(table), table_reply);
}
// What a model asks for with "remote_shards": EmbeddingTables whose shards the registered factory
// puts elsewhere (here loopback channels; under mpirun the other ranks). They train exactly as
// in-process shards; with no factory registered the request is refused by name.
TEST(RemoteShards, EmbeddingTablesUseTheRegisteredFactory) {
  auto host = make_host_backend();
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::Adagrad;
  opts.init_scale = 0.3f;
  set_remote_shard_factory(remote_shard_factory([&](int) { return make_loopback_channel(*host); }),
                           "loopback");
  auto remote = make_embedding_tables(specs(), *host, opts, 2, ShardPlacement::Row, true);
  auto local = make_embedding_tables(specs(), *host, opts, 2, ShardPlacement::Row, false);
  EXPECT_EQ(remote->shard_plan().rfind("shards in other processes (loopback)\n", 0), 0u)
      << remote->shard_plan();
  std::mt19937 gen(17);
  for (int step = 0; step < 3; ++step) {
    const Bags bags = random_bags(9, gen, step == 1);
    const Tensor a = remote->forward_host(bags), b = local->forward_host(bags);
    ASSERT_EQ(a.numel(), b.numel());
    for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]);
    Tensor dout = Tensor::host({9, remote->layout().out_dim()});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
    remote->backward_and_update_host(dout);
    local->backward_and_update_host(dout);
  }
  const Tensor wr = remote->weights_to_host(), wl = local->weights_to_host();
  for (int64_t i = 0; i < wl.numel(); ++i) ASSERT_EQ(wr.data<float>()[i], wl.data<float>()[i]);
  EXPECT_EQ(remote->steps(), 3);
  remote.reset();
  set_remote_shard_factory(nullptr, "");
  try {
    make_embedding_tables(specs(), *host, opts, 2, ShardPlacement::Row, true);
    FAIL() << "remote shards made with no factory registered";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("mpirun"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::emb
