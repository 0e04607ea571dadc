// The language model's training step (pipelines/textgen/lm_model.h) against central
// differences of its own loss, with and without the output dropout (the mask is fixed by the
// step's dropout seed, so the loss is a smooth function of the weights): every parameter tensor
// (embedding, LSTM, output layer) is checked at sampled elements. Also: the output dropout is a
// training-only change (evaluation ignores it) and leaves every gradient finite.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "host/backend/backend.h"
#include "pipelines/textgen/lm_model.h"

namespace tessera::textgen {
namespace {

struct Segment {
  Tensor ids, targets;
};

Segment make_segment(int64_t t, int64_t b, int64_t vocab, uint32_t seed) {
  std::mt19937 gen(seed);
  Segment s{Tensor::host({t * b}, DType::I64), Tensor::host({t * b}, DType::I32)};
  for (int64_t i = 0; i < t * b; ++i) {
    s.ids.data<int64_t>()[i] = static_cast<int64_t>(gen() % vocab);
    s.targets.data<int32_t>()[i] = static_cast<int32_t>(gen() % vocab);
  }
  return s;
}

LmShape tiny(float output_dropout) {
  LmShape s;
  s.vocab = 6;
  s.embedding_dim = 3;
  s.hidden_size = 5;
  s.num_layers = 2;
  s.output_dropout = output_dropout;
  return s;
}

// Mean loss per target of one training step from the zero state (grads into .grad).
double step_loss(LanguageModel& m, const Segment& s, int64_t t, int64_t b, uint64_t seed) {
  LmState st = m.zero_state(b);
  return m.train_step(s.ids, s.targets, t, b, st, seed) / static_cast<double>(t * b);
}

TEST(TextgenLm, GradientsMatchFiniteDifferencesWithOutputDropout) {
  auto be = make_host_backend();
  for (float p : {0.f, 0.4f}) {
    LanguageModel m(*be, tiny(p));
    m.init(3);
    const int64_t t = 4, b = 3;
    const Segment seg = make_segment(t, b, 6, 11);
    const uint64_t seed = 77;
    step_loss(m, seg, t, b, seed);
    std::vector<std::vector<float>> grads;
    for (Parameter* q : m.parameters())
      grads.emplace_back(q->grad.data<float>(), q->grad.data<float>() + q->grad.numel());
    const double eps = 1e-2;
    int checked = 0;
    for (size_t k = 0; k < m.parameters().size(); ++k) {
      Parameter* q = m.parameters()[k];
      const int64_t n = q->value.numel();
      for (int64_t e = 0; e < n; e += std::max<int64_t>(1, n / 12)) {
        float* v = q->value.data<float>() + e;
        const float keep = *v;
        *v = keep + static_cast<float>(eps);
        const double lp = step_loss(m, seg, t, b, seed);
        *v = keep - static_cast<float>(eps);
        const double lm = step_loss(m, seg, t, b, seed);
        *v = keep;
        const double fd = (lp - lm) / (2 * eps);
        EXPECT_NEAR(grads[k][static_cast<size_t>(e)], fd, 2e-3 + 2e-2 * std::fabs(fd))
            << q->name << "[" << e << "], output dropout " << p;
        ++checked;
      }
    }
    EXPECT_GT(checked, 40);
  }
}

TEST(TextgenLm, OutputDropoutOnlyTrainsDifferently) {
  auto be = make_host_backend();
  LanguageModel plain(*be, tiny(0.f)), dropped(*be, tiny(0.5f));
  plain.init(5);
  dropped.init(5);
  const int64_t t = 5, b = 2;
  const Segment seg = make_segment(t, b, 6, 12);
  // Evaluation ignores the output dropout: same weights, same loss.
  LmState s1 = plain.zero_state(b), s2 = dropped.zero_state(b);
  EXPECT_EQ(plain.eval_segment(seg.ids, seg.targets, t, b, s1),
            dropped.eval_segment(seg.ids, seg.targets, t, b, s2));
  // Training applies it: a different loss, and no gradient becomes NaN or infinite.
  const double lp = step_loss(plain, seg, t, b, 9), ld = step_loss(dropped, seg, t, b, 9);
  EXPECT_NE(lp, ld);
  for (Parameter* q : dropped.parameters())
    for (int64_t i = 0; i < q->grad.numel(); ++i)
      ASSERT_TRUE(std::isfinite(q->grad.data<float>()[i])) << q->name << "[" << i << "]";
}

}  // namespace
}  // namespace tessera::textgen
