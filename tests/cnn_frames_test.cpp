// The CNN's per-frame layers (host/model/cnn.h): frames_to_batch folds a clip's T frames into the
// batch and temporal_avgpool / temporal_maxpool pool them back to one vector per clip. Checked
// against things the model does not compute itself: every parameter's gradient against central
// differences of the loss (with a batch norm and a dense layer running on the folded rows), the
// average-pooled model against the mean of a one-frame model's logits run frame by frame (same
// weights: a conv's weights do not depend on T), frame-order invariance, and the layer-list
// errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
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

Tensor random_host(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::host(s);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// [T frames of 6x6] -> per-frame conv, batch norm, pool, dense -> temporal pool -> dense -> head.
CnnSpec per_frame_spec(int64_t frames, CnnLayerType pool) {
  CnnSpec s;
  s.channels = frames;
  s.height = s.width = 6;
  s.classes = 3;
  CnnLayerSpec c1 = layer(CnnLayerType::Conv, 3, Activation::Tanh);
  c1.padding = 1;
  CnnLayerSpec avg = layer(CnnLayerType::AvgPool);
  avg.kernel = avg.stride = 2;
  s.layers = {layer(CnnLayerType::FramesToBatch),
              c1,
              layer(CnnLayerType::BatchNorm),
              avg,
              layer(CnnLayerType::Dense, 5, Activation::Tanh),
              layer(pool),
              layer(CnnLayerType::Dense, 4, Activation::Tanh)};
  return s;
}

void check_gradients(CnnLayerType pool) {
  auto be = make_host_backend();
  const int64_t b = 3, t = 4;
  CnnModel model(*be, per_frame_spec(t, pool), 11, b);
  const Tensor x = random_host({b, t, 6, 6}, 2);
  const Tensor labels = Tensor::host_from<int32_t>({b}, {2, 0, 1});
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
  EXPECT_GT(checked, 50);
}

TEST(CnnFrames, GradientsThroughTemporalAveragePoolingMatchFiniteDifferences) {
  check_gradients(CnnLayerType::TemporalAvgPool);
}

TEST(CnnFrames, GradientsThroughTemporalMaxPoolingMatchFiniteDifferences) {
  check_gradients(CnnLayerType::TemporalMaxPool);
}

TEST(CnnFrames, ShapesFoldFramesIntoTheBatchAndPoolThemBack) {
  auto be = make_host_backend();
  CnnModel m(*be, per_frame_spec(5, CnnLayerType::TemporalAvgPool), 1, 2);
  const std::vector<Shape> s = m.layer_shapes();
  ASSERT_EQ(s.size(), 8u);
  EXPECT_EQ(s[0], Shape({1, 6, 6}));  // one frame per row
  EXPECT_EQ(s[3], Shape({3, 3, 3}));
  EXPECT_EQ(s[5], Shape({5}));  // one vector per clip
  EXPECT_EQ(s[7], Shape({3}));
  const Tensor logits = m.forward(random_host({2, 5, 6, 6}, 3), CnnMode::Eval);
  EXPECT_EQ(logits.shape(), Shape({2, 3}));
}

// With a linear head right after the average pool, a clip's logits are the mean of its frames'
// logits under the same weights with T = 1 (parameter shapes, hence the seeded weights, do not
// depend on T).
TEST(CnnFrames, AveragePoolingIsTheMeanOverFramesOfAOneFrameModel) {
  auto be = make_host_backend();
  auto spec = [](int64_t t) {
    CnnSpec s;
    s.channels = t;
    s.height = s.width = 8;
    s.classes = 4;
    CnnLayerSpec c = layer(CnnLayerType::Conv, 6, Activation::Relu);
    c.padding = 1;
    c.stride = 2;
    s.layers = {layer(CnnLayerType::FramesToBatch), c, layer(CnnLayerType::GlobalAvgPool),
                layer(CnnLayerType::Flatten), layer(CnnLayerType::TemporalAvgPool)};
    return s;
  };
  const int64_t b = 3, t = 5;
  CnnModel clips(*be, spec(t), 9, b);
  CnnModel frames(*be, spec(1), 9, b * t);
  const Tensor x = random_host({b, t, 8, 8}, 4);
  const Tensor got = be->to_host(clips.forward(x, CnnMode::Eval));
  // The same pixels as b*t one-frame inputs.
  const Tensor each = be->to_host(frames.forward(x.reshape({b * t, 1, 8, 8}), CnnMode::Eval));
  for (int64_t i = 0; i < b; ++i)
    for (int64_t k = 0; k < 4; ++k) {
      double mean = 0;
      for (int64_t f = 0; f < t; ++f) mean += each.data<float>()[(i * t + f) * 4 + k];
      mean /= t;
      EXPECT_NEAR(got.data<float>()[i * 4 + k], mean, 1e-5) << "clip " << i << " class " << k;
    }
}

TEST(CnnFrames, PooledModelsIgnoreFrameOrder) {
  auto be = make_host_backend();
  for (CnnLayerType pool : {CnnLayerType::TemporalAvgPool, CnnLayerType::TemporalMaxPool}) {
    const int64_t b = 2, t = 4;
    CnnModel m(*be, per_frame_spec(t, pool), 5, b);
    const Tensor x = random_host({b, t, 6, 6}, 6);
    Tensor rev = Tensor::host({b, t, 6, 6});
    for (int64_t i = 0; i < b; ++i)
      for (int64_t f = 0; f < t; ++f)
        std::copy_n(x.data<float>() + (i * t + f) * 36, 36,
                    rev.data<float>() + (i * t + (t - 1 - f)) * 36);
    const Tensor a = be->to_host(m.forward(x, CnnMode::Eval));
    const Tensor r = be->to_host(m.forward(rev, CnnMode::Eval));
    bool any_nonzero = false;
    for (int64_t i = 0; i < a.numel(); ++i) {
      EXPECT_NEAR(a.data<float>()[i], r.data<float>()[i], 1e-5);
      any_nonzero = any_nonzero || std::fabs(a.data<float>()[i]) > 1e-4f;
    }
    EXPECT_TRUE(any_nonzero);
  }
}

#if defined(TESSERA_HAVE_CUDA_EMULATION) && TESSERA_HAVE_CUDA_EMULATION
// The same model on the CUDA backend's kernels run by the CPU emulator (compiled only into the
// build with TESSERA_CUDA_EMULATION): logits and every parameter gradient agree with the host
// backend's.
TEST(CnnFrames, EmulatedCudaBackendMatchesTheHostBackend) {
  std::unique_ptr<Backend> emu = make_backend("cuda-emu");
  auto host = make_host_backend();
  for (CnnLayerType pool : {CnnLayerType::TemporalAvgPool, CnnLayerType::TemporalMaxPool}) {
    const int64_t b = 3, t = 4;
    CnnModel a(*host, per_frame_spec(t, pool), 13, b), e(*emu, per_frame_spec(t, pool), 13, b);
    const Tensor x = random_host({b, t, 6, 6}, 8);
    const Tensor labels = Tensor::host_from<int32_t>({b}, {1, 0, 2});
    std::vector<Tensor> logits, grads;
    for (CnnModel* m : {&a, &e}) {
      Backend& be = m->backend();
      Tensor loss = be.empty({b}), dlogits = be.empty({b, 3});
      Tensor z = m->forward(x, CnnMode::Train);
      be.softmax_xent(z, be.to_device(labels), 1.f / b, loss, dlogits);
      logits.push_back(be.to_host(z));
      m->backward(dlogits);
    }
    for (int64_t i = 0; i < logits[0].numel(); ++i)
      EXPECT_NEAR(logits[0].data<float>()[i], logits[1].data<float>()[i], 1e-4);
    const std::vector<Parameter*> pa = a.parameters(), pe = e.parameters();
    ASSERT_EQ(pa.size(), pe.size());
    for (size_t k = 0; k < pa.size(); ++k) {
      const Tensor ga = host->to_host(pa[k]->grad), ge = emu->to_host(pe[k]->grad);
      for (int64_t i = 0; i < ga.numel(); ++i)
        ASSERT_NEAR(ga.data<float>()[i], ge.data<float>()[i],
                    1e-4 + 1e-3 * std::fabs(ga.data<float>()[i]))
            << pa[k]->name << " element " << i;
    }
  }
}
#endif  // TESSERA_HAVE_CUDA_EMULATION

std::string model_error(const CnnSpec& s) {
  auto be = make_host_backend();
  try {
    CnnModel m(*be, s, 1, 2);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config) << e.what();
    return e.what();
  }
  return "no error";
}

TEST(CnnFrames, LayerListErrorsNameTheLayer) {
  CnnSpec s = per_frame_spec(4, CnnLayerType::TemporalAvgPool);
  CnnSpec no_pool = s;
  no_pool.layers.erase(no_pool.layers.begin() + 5);
  EXPECT_NE(model_error(no_pool).find("never pooled"), std::string::npos) << model_error(no_pool);
  CnnSpec no_fold = s;
  no_fold.layers.erase(no_fold.layers.begin());
  EXPECT_NE(model_error(no_fold).find("layers[4] (temporal_avgpool)"), std::string::npos)
      << model_error(no_fold);
  CnnSpec late_fold = s;
  std::swap(late_fold.layers[0], late_fold.layers[1]);
  EXPECT_NE(model_error(late_fold).find("layers[1] (frames_to_batch)"), std::string::npos)
      << model_error(late_fold);
  CnnSpec twice = s;
  twice.layers.push_back(layer(CnnLayerType::TemporalMaxPool));
  EXPECT_NE(model_error(twice).find("already pooled"), std::string::npos) << model_error(twice);
}

}  // namespace
}  // namespace tessera
