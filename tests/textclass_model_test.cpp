// Text classifier: length bucketing gives every text exactly the logits it gets alone (no
// padding, so nothing depends on batch company), and the classifier's gradients (embedding,
// LSTM, pooling, dense) match central finite differences for each pooling.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "host/backend/backend.h"
#include "pipelines/textclass/classifier.h"
#include "pipelines/textclass/text_data.h"

namespace {

using namespace tessera;
using namespace tessera::textclass;

std::vector<Example> random_examples(int n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<Example> ex;
  for (int i = 0; i < n; ++i) {
    Example e;
    e.ids.resize(1 + gen() % 9);
    for (auto& id : e.ids) id = static_cast<int32_t>(1 + gen() % (vocab - 1));
    e.label = static_cast<int32_t>(gen() % 3);
    ex.push_back(e);
  }
  return ex;
}

class TextclassPooling : public ::testing::TestWithParam<Pooling> {};

TEST_P(TextclassPooling, BucketedBatchesEqualOneTextAtATime) {
  auto be = make_host_backend();
  ClassifierShape s;
  s.vocab = 40;
  s.classes = 3;
  s.embedding_dim = 8;
  s.hidden_size = 6;
  s.num_layers = 2;
  s.bidirectional = true;
  s.pooling = GetParam();
  TextClassifier model(*be, s);
  model.init(3);
  const std::vector<Example> ex = random_examples(60, s.vocab, 11);
  std::vector<float> batched(ex.size() * 3, NAN);
  const auto batches = make_batches(ex, 16, 0);
  EXPECT_LT(batches.size(), ex.size() / 2);  // real batching happened
  for (const Batch& b : batches) {
    const Tensor l = model.logits(batch_ids(ex, b), b.t, static_cast<int64_t>(b.rows.size()));
    for (size_t j = 0; j < b.rows.size(); ++j)
      for (int k = 0; k < 3; ++k) batched[b.rows[j] * 3 + k] = l.data<float>()[j * 3 + k];
  }
  for (size_t i = 0; i < ex.size(); ++i) {
    Batch one{static_cast<int64_t>(ex[i].ids.size()), {static_cast<int64_t>(i)}};
    const Tensor l = model.logits(batch_ids(ex, one), one.t, 1);
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(batched[i * 3 + k], l.data<float>()[k], 1e-5f) << "text " << i << " class " << k;
  }
}

TEST_P(TextclassPooling, GradientsMatchFiniteDifferences) {
  auto be = make_host_backend();
  ClassifierShape s;
  s.vocab = 12;
  s.classes = 3;
  s.embedding_dim = 4;
  s.hidden_size = 3;
  s.num_layers = 1;
  s.bidirectional = true;
  s.pooling = GetParam();
  TextClassifier model(*be, s);
  model.init(5);
  std::vector<Example> ex = random_examples(3, s.vocab, 2);
  for (auto& e : ex) e.ids.resize(5, 3);  // one bucket: T = 5, B = 3
  const Batch b{5, {0, 1, 2}};
  const Tensor ids = batch_ids(ex, b), labels = batch_labels(ex, b);
  auto loss = [&] { return model.train_step(ids, labels, 5, 3, 1.f, 0); };
  loss();
  std::vector<Tensor> grads;
  for (Parameter* p : model.parameters()) grads.push_back(be->to_host(p->grad));
  std::mt19937_64 gen(9);
  int checked = 0;
  const std::vector<Parameter*> params = model.parameters();
  for (size_t pi = 0; pi < params.size(); ++pi) {
    float* w = params[pi]->value.data<float>();
    for (int trial = 0; trial < 12; ++trial) {
      int64_t i = static_cast<int64_t>(gen() % static_cast<uint64_t>(params[pi]->value.numel()));
      if (pi == 0) i = 3 * s.embedding_dim + static_cast<int64_t>(gen() % 4);  // a used row
      const float keep = w[i], eps = 1e-2f;
      w[i] = keep + eps;
      const double up = loss();
      w[i] = keep - eps;
      const double down = loss();
      w[i] = keep;
      const double fd = (up - down) / (2.0 * eps);
      const double an = grads[pi].data<float>()[i];
      EXPECT_NEAR(an, fd, 2e-3 + 2e-2 * std::fabs(fd)) << params[pi]->name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 48);
}

INSTANTIATE_TEST_SUITE_P(AllPoolings, TextclassPooling,
                         ::testing::Values(Pooling::Mean, Pooling::Max, Pooling::Last),
                         [](const auto& info) {
                           return std::string(info.param == Pooling::Mean  ? "Mean"
                                              : info.param == Pooling::Max ? "Max"
                                                                           : "Last");
                         });

}  // namespace
