// The cuDNN plan caches' keys and bounds (cuda/cudnn_plans.h), CUDA-free so the normal build runs
// them: the LSTM keeps its weight space per layer config while text lengths vary, convolution
// algorithms are shared by every batch size of a layer, and cuDNN's alignment test.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "cuda/cudnn_plans.h"

namespace tessera::cuda {
namespace {

struct Built {
  int id = 0;
};

LstmConfig lstm(int64_t input, int64_t hidden, float dropout = 0.f) {
  LstmConfig c;
  c.input_size = input;
  c.hidden_size = hidden;
  c.num_layers = 2;
  c.dropout = dropout;
  return c;
}

TEST(CudnnPlans, VariableLengthTextMakesShapeEntriesButOneWeightSpacePerConfig) {
  // The two-level cache cudnn_lstm.cpp uses: config -> (weight space, shapes (T, B) -> plan).
  struct Config {
    BoundedCache<LstmShapeKey, Built> shapes{64};
  };
  BoundedCache<LstmConfigKey, Config> configs(16);
  const LstmConfig c = lstm(8, 16);
  const std::vector<std::pair<int64_t, int64_t>> batches{{12, 32}, {40, 32}, {12, 32}, {7, 32},
                                                         {40, 5},  {12, 32}, {7, 32}};
  for (auto [t, b] : batches) {
    Config& cfg = configs.get(lstm_config_key(c), [] { return std::make_unique<Config>(); });
    cfg.shapes.get(lstm_shape_key(t, b), [] { return std::make_unique<Built>(); });
  }
  EXPECT_EQ(configs.built(), 1u) << "a new weight space for a new text length";
  const Config* cfg = configs.find(lstm_config_key(c));
  ASSERT_NE(cfg, nullptr);
  EXPECT_EQ(cfg->shapes.built(), 4u);  // (12,32) (40,32) (7,32) (40,5)
  // The seed does not change cuDNN's layer (its dropout states are per probability); sizes and
  // the dropout probability do.
  LstmConfig seeded = c;
  seeded.dropout_seed = 99;
  EXPECT_EQ(lstm_config_key(seeded), lstm_config_key(c));
  EXPECT_NE(lstm_config_key(lstm(8, 16, 0.5f)), lstm_config_key(c));
  EXPECT_NE(lstm_config_key(lstm(9, 16)), lstm_config_key(c));
  LstmConfig bi = c;
  bi.directions = LstmDirections::Bidirectional;
  EXPECT_NE(lstm_config_key(bi), lstm_config_key(c));
}

TEST(CudnnPlans, ConvolutionLayerKeyLeavesOutOnlyTheBatchSize) {
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  const Shape w{16, 3, 3, 3};
  const std::string full = conv_layer_key(p, {32, 3, 28, 28}, w);
  EXPECT_EQ(conv_layer_key(p, {7, 3, 28, 28}, w), full) << "the last partial batch re-measures";
  EXPECT_NE(conv_shape_key(p, {7, 3, 28, 28}, w), conv_shape_key(p, {32, 3, 28, 28}, w));
  EXPECT_NE(conv_layer_key(p, {32, 3, 28, 27}, w), full);
  EXPECT_NE(conv_layer_key(p, {32, 3, 28, 28}, {16, 3, 5, 5}), full);
  Conv2dParams strided = p;
  strided.stride_w = 2;
  EXPECT_NE(conv_layer_key(strided, {32, 3, 28, 28}, w), full);
  Conv2dParams grouped = p;
  grouped.groups = 3;
  EXPECT_NE(conv_layer_key(grouped, {32, 3, 28, 28}, {15, 1, 3, 3}),
            conv_layer_key(p, {32, 3, 28, 28}, {15, 1, 3, 3}));
}

TEST(CudnnPlans, BoundedCacheEmptiesWhenFullAndKeepsWhatItFinds) {
  BoundedCache<int, Built> cache(3);
  int made = 0;
  auto make = [&] {
    auto b = std::make_unique<Built>();
    b->id = ++made;
    return b;
  };
  for (int k : {1, 2, 3, 1, 2, 3}) cache.get(k, make);
  EXPECT_EQ(made, 3);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.get(4, make).id, 4);  // a fourth key: the cache starts over
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find(1), nullptr);
  EXPECT_EQ(cache.get(1, make).id, 5);
  EXPECT_EQ(cache.built(), 5u);
  // A failing make leaves the cache as it was.
  EXPECT_THROW(cache.get(9, []() -> std::unique_ptr<Built> { throw std::runtime_error("x"); }),
               std::runtime_error);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.find(4), nullptr);
}

TEST(CudnnPlans, AlignmentIsSixteenBytes) {
  alignas(16) static float buffer[16];
  EXPECT_TRUE(cudnn_aligned(buffer));
  EXPECT_TRUE(cudnn_aligned(buffer + 4));
  for (int i : {1, 2, 3, 5}) EXPECT_FALSE(cudnn_aligned(buffer + i)) << i << " floats in";
  EXPECT_FALSE(cudnn_aligned(reinterpret_cast<const char*>(buffer) + 8));
}

}  // namespace
}  // namespace tessera::cuda
