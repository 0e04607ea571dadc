// The CNN model over the Backend ops: every parameter's gradient against central differences of
// the whole network's loss (conv + batch norm + pooling + dense + softmax cross-entropy), the
// layer-list checks, and the train / eval behaviour of batch normalisation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "host/backend/backend.h"
#include "host/model/cnn.h"

namespace tessera {
namespace {

CnnLayerSpec layer(CnnLayerType t, int64_t units = 0, Activation act = Activation::None) {
  CnnLayerSpec l;
  l.type = t;
  l.units = units;
  l.activation = act;
  return l;
}

CnnSpec small_spec() {
  CnnSpec s;
  s.channels = 2;
  s.height = s.width = 6;
  s.classes = 3;
  CnnLayerSpec c1 = layer(CnnLayerType::Conv, 4, Activation::Tanh);
  c1.padding = 1;
  CnnLayerSpec c2 = layer(CnnLayerType::Conv, 4);
  c2.groups = 2;
  c2.dilation = 2;
  c2.padding = 2;
  c2.bias = false;
  CnnLayerSpec pool = layer(CnnLayerType::AvgPool);
  pool.kernel = 2;
  pool.stride = 2;
  s.layers = {c1,
              layer(CnnLayerType::BatchNorm),
              c2,
              pool,
              layer(CnnLayerType::Flatten),
              layer(CnnLayerType::Dense, 5, Activation::Tanh),
              layer(CnnLayerType::BatchNorm)};
  return s;
}

Tensor random_host(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::host(s);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

TEST(CnnModel, ParameterGradientsMatchFiniteDifferences) {
  auto be = make_host_backend();
  const CnnSpec spec = small_spec();
  const int64_t b = 4;
  CnnModel model(*be, spec, 7, b);
  const Tensor x = random_host({b, 2, 6, 6}, 1);
  const Tensor labels = Tensor::host_from<int32_t>({b}, {0, 2, 1, 2});
  Tensor loss = be->empty({b}), dlogits = be->empty({b, 3});
  auto total_loss = [&]() {
    Tensor logits = model.forward(x, CnnMode::Train);
    be->softmax_xent(logits, labels, 1.f / b, loss, dlogits);
    double s = 0;
    for (int64_t i = 0; i < b; ++i) s += loss.data<float>()[i];
    return s / b;
  };
  total_loss();
  model.backward(dlogits);
  int checked = 0;
  for (Parameter* p : model.parameters()) {
    const Tensor analytic = be->to_host(p->grad);
    float* w = p->value.data<float>();
    // Up to 8 elements of each parameter, spread over it (the op-level suites check every
    // element; here the point is the wiring between layers).
    const int64_t step = std::max<int64_t>(1, p->value.numel() / 8);
    for (int64_t i = 0; i < p->value.numel(); i += step) {
      const float orig = w[i];
      const float eps = 1e-2f;
      w[i] = orig + eps;
      const double hi = total_loss();
      w[i] = orig - eps;
      const double lo = total_loss();
      w[i] = orig;
      const double numeric = (hi - lo) / (2.0 * eps);
      const double ana = analytic.data<float>()[i];
      ASSERT_NEAR(ana, numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << p->name << " element " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 60);
}

TEST(CnnModel, LayerListErrorsNameTheLayer) {
  auto be = make_host_backend();
  CnnSpec s;
  s.height = s.width = 8;
  CnnLayerSpec big = layer(CnnLayerType::Conv, 4);
  big.kernel = 5;
  s.layers = {layer(CnnLayerType::MaxPool), big};  // 8x8 -> 4x4, then a 5x5 kernel
  s.layers[0].kernel = 2;
  s.layers[0].stride = 2;
  try {
    CnnModel m(*be, s, 1, 4);
    FAIL() << "a kernel larger than its input was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("layers[1] (conv)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
  }
  CnnSpec g;
  g.height = g.width = 8;
  g.channels = 3;
  CnnLayerSpec grouped = layer(CnnLayerType::Conv, 4);
  grouped.groups = 2;
  g.layers = {grouped};
  EXPECT_THROW(CnnModel(*be, g, 1, 4), Error);
}

TEST(CnnModel, EvalUsesRunningStatisticsAndIsDeterministic) {
  auto be = make_host_backend();
  const CnnSpec spec = small_spec();
  CnnModel model(*be, spec, 3, 8);
  const Tensor x = random_host({8, 2, 6, 6}, 5);
  const Tensor train_out = be->to_host(model.forward(x, CnnMode::Train));
  const Tensor e1 = be->to_host(model.forward(x, CnnMode::Eval));
  const Tensor e2 = be->to_host(model.forward(x, CnnMode::Eval));
  double diff = 0;
  for (int64_t i = 0; i < e1.numel(); ++i) {
    EXPECT_EQ(e1.data<float>()[i], e2.data<float>()[i]);
    diff += std::fabs(e1.data<float>()[i] - train_out.data<float>()[i]);
  }
  // One training step moved the running statistics only 10% of the way: eval differs.
  EXPECT_GT(diff, 1e-3);
  // The state holds the parameters and the running statistics of both batch norms.
  int running = 0;
  for (auto& [name, t] : model.state()) running += name.find("running_") != std::string::npos;
  EXPECT_EQ(running, 4);
  EXPECT_THROW(model.backward(be->empty({8, 3})), Error);  // after an eval forward
}

}  // namespace
}  // namespace tessera
