// The shard server refuses a table or optimizer-state index outside the shard by name, after
// reading the whole request (embeddings/remote_shard.cpp, read_index), whichever call sends it.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "embeddings/remote_shard.h"
#include "embeddings/sharding.h"
#include "host/backend/backend.h"
#include "host/core/error.h"
#include "tests/support/error_of.h"

namespace tessera::emb {
namespace {

// The error `call` raises, which must be an Io error from the far side.
std::string far_side_error(const std::function<void()>& call) {
  return test::error_of_kind(ErrorKind::Io, call);
}

TEST(RemoteShardIndex, IndicesOutsideTheShardAreRefusedByName) {
  auto backend = make_host_backend();
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::LazyAdam;  // two state slots
  auto shard = make_remote_shard(make_loopback_channel(*backend),
                                 {{"a", 5, 3, Pooling::Sum}, {"b", 4, 2, Pooling::Sum}}, opts);
  ASSERT_EQ(shard->num_states(), 2);
  const struct {
    std::function<void()> call;
    const char* message;
  } cases[] = {
      {[&] { shard->table_to_host(2); }, "shard message: table 2 of 2"},
      {[&] { shard->table_to_host(-1); }, "shard message: table -1 of 2"},
      {[&] {
         shard->set_table(7, Tensor::host({5, 3}));
       },
       "shard message: table 7 of 2"},
      {[&] { shard->state_to_host(2); }, "shard message: optimizer state 2 of 2"},
      {[&] { shard->set_state(-3, Tensor::host({23})); }, "shard message: optimizer state -3 of 2"},
  };
  for (const auto& c : cases) {
    const std::string m = far_side_error(c.call);
    EXPECT_NE(m.find(c.message), std::string::npos) << m;
  }
  // Indices inside the shard still work after the refusals.
  EXPECT_EQ(shard->table_to_host(1).numel(), 8);
  shard->set_state(1, Tensor::host({23}));
  EXPECT_EQ(shard->state_to_host(1).numel(), 23);
}

}  // namespace
}  // namespace tessera::emb
