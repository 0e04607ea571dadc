#include "pipelines/textclass/classifier.h"

#include <cmath>
#include <random>

#include "host/core/math.h"
#include "host/model/parameter_ops.h"
#include "pipelines/text_models.h"

namespace tessera::textclass {

namespace {
// Independent dropout streams for the embedding and the pooled vector.
uint64_t embedding_seed(uint64_t s) {
  return math::mix64(s ^ 0x9e3779b97f4a7c15ull);
}
uint64_t pooled_seed(uint64_t s) {
  return math::mix64(s + 0x632be59bd9b4e019ull);
}

LstmConfig lstm_of(const ClassifierShape& s) {
  return text_lstm(s,
                   s.bidirectional ? LstmDirections::Bidirectional : LstmDirections::Unidirectional,
                   s.lstm_dropout);
}
}  // namespace

TextClassifier::TextClassifier(Backend& backend, const ClassifierShape& shape)
    : be_(backend), shape_(shape) {
  TESSERA_CHECK(shape.vocab >= 3 && shape.classes >= 2 && shape.embedding_dim >= 1 &&
                    shape.hidden_size >= 1 && shape.num_layers >= 1,
                "text classifier shape: vocab " << shape.vocab << ", classes " << shape.classes
                                                << ", embedding " << shape.embedding_dim
                                                << ", hidden " << shape.hidden_size);
  const std::vector<std::pair<std::string, Shape>> ps = parameter_shapes(shape);
  Parameter* params[] = {&embedding_, &lstm_w_, &out_w_, &out_b_};
  for (size_t i = 0; i < ps.size(); ++i)
    *params[i] = make_parameter(be_, ps[i].first, ps[i].second);
}

std::vector<std::pair<std::string, Shape>> TextClassifier::parameter_shapes(
    const ClassifierShape& s) {
  const LstmConfig c = lstm_of(s);
  return {{"embedding", {s.vocab, s.embedding_dim}},
          {"lstm", {lstm_weight_count(c)}},
          {"out_w", {s.classes, c.dirs() * s.hidden_size}},
          {"out_b", {s.classes}}};
}

LstmConfig TextClassifier::lstm_config() const {
  return lstm_of(shape_);
}

void TextClassifier::init(uint64_t seed) {
  std::mt19937_64 gen(seed);
  auto uniform = [&](const Shape& s, float k) {
    Tensor h = Tensor::host(s);
    std::uniform_real_distribution<float> u(-k, k);
    for (int64_t i = 0; i < h.numel(); ++i) h.data<float>()[i] = u(gen);
    return h;
  };
  Tensor emb = Tensor::host(embedding_.value.shape());
  std::normal_distribution<float> n(0.f, 0.1f);
  for (int64_t i = 0; i < emb.numel(); ++i) emb.data<float>()[i] = n(gen);
  for (int64_t j = 0; j < shape_.embedding_dim; ++j) emb.data<float>()[j] = 0.f;  // <pad>
  be_.copy(emb, embedding_.value);
  const LstmConfig c = lstm_config();
  Tensor w = uniform(lstm_w_.value.shape(), 1.f / std::sqrt(static_cast<float>(c.hidden_size)));
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (int d = 0; d < c.dirs(); ++d) {
      const LstmWeightOffsets o = lstm_weight_offsets(c, l, d);
      for (int64_t j = 0; j < c.hidden_size; ++j) {
        w.data<float>()[o.b_ih + c.hidden_size + j] = 1.f;  // forget gate
        w.data<float>()[o.b_hh + c.hidden_size + j] = 0.f;
      }
    }
  be_.copy(w, lstm_w_.value);
  const float k = 1.f / std::sqrt(static_cast<float>(out_w_.value.dim(1)));
  be_.copy(uniform(out_w_.value.shape(), k), out_w_.value);
  be_.copy(uniform(out_b_.value.shape(), k), out_b_.value);
}

void TextClassifier::forward(const Tensor& ids_dev, int64_t t, int64_t b, LstmMode mode,
                             uint64_t seed) {
  const int64_t e = shape_.embedding_dim;
  const LstmConfig base = lstm_config();
  const int64_t dh = base.dirs() * shape_.hidden_size;
  const bool train = mode == LstmMode::Training;
  emb_ = be_.empty({t, b, e});
  be_.embedding_forward(embedding_.value, ids_dev, emb_);
  emb_drop_ = emb_;
  if (train && shape_.embedding_dropout > 0) {
    emb_drop_ = be_.empty({t, b, e});
    be_.dropout_forward({shape_.embedding_dropout, embedding_seed(seed)}, emb_, emb_drop_);
  }
  io_.x = emb_drop_;
  io_.w = lstm_w_.value;
  io_.y = be_.empty({t, b, dh});
  LstmConfig c = base;
  c.dropout_seed = seed;
  be_.lstm_forward(c, mode, io_);
  pool(t, b);
  pooled_drop_ = pooled_;
  if (train && shape_.dropout > 0) {
    pooled_drop_ = be_.empty({b, dh});
    be_.dropout_forward({shape_.dropout, pooled_seed(seed)}, pooled_, pooled_drop_);
  }
  logits_ = be_.empty({b, shape_.classes});
  be_.gemm(Transpose::No, Transpose::Yes, 1.f, pooled_drop_, out_w_.value, 0.f, logits_);
  be_.bias_act_forward(Activation::None, logits_, out_b_.value, logits_);
}

void TextClassifier::pool(int64_t t, int64_t b) {
  const int64_t h = shape_.hidden_size;
  const int64_t dh = lstm_config().dirs() * h;
  y_host_ = io_.y.is_host() ? io_.y : be_.to_host(io_.y);
  const float* y = y_host_.data<float>();
  Tensor p = Tensor::host({b, dh});
  float* out = p.data<float>();
  switch (shape_.pooling) {
    case Pooling::Mean: {
      const float inv = 1.f / static_cast<float>(t);
      for (int64_t i = 0; i < b * dh; ++i) out[i] = 0.f;
      for (int64_t s = 0; s < t; ++s)
        for (int64_t i = 0; i < b * dh; ++i) out[i] += y[s * b * dh + i];
      for (int64_t i = 0; i < b * dh; ++i) out[i] *= inv;
      break;
    }
    case Pooling::Max: {
      argmax_.assign(static_cast<size_t>(b * dh), 0);
      for (int64_t i = 0; i < b * dh; ++i) out[i] = y[i];
      for (int64_t s = 1; s < t; ++s)
        for (int64_t i = 0; i < b * dh; ++i)
          if (y[s * b * dh + i] > out[i]) {
            out[i] = y[s * b * dh + i];
            argmax_[static_cast<size_t>(i)] = static_cast<int32_t>(s);
          }
      break;
    }
    case Pooling::Last: {
      for (int64_t j = 0; j < b; ++j)
        for (int64_t k = 0; k < dh; ++k) {
          const int64_t s = k < h ? t - 1 : 0;  // forward half: last step; reverse half: first
          out[j * dh + k] = y[(s * b + j) * dh + k];
        }
      break;
    }
  }
  pooled_ = be_.to_device(p);
}

Tensor TextClassifier::unpool(const Tensor& dpooled, int64_t t, int64_t b) {
  const int64_t h = shape_.hidden_size;
  const int64_t dh = lstm_config().dirs() * h;
  const Tensor dp_host = dpooled.is_host() ? dpooled : be_.to_host(dpooled);
  const float* dp = dp_host.data<float>();
  Tensor dy = Tensor::host({t, b, dh});  // zero-filled
  float* out = dy.data<float>();
  for (int64_t i = 0; i < t * b * dh; ++i) out[i] = 0.f;
  switch (shape_.pooling) {
    case Pooling::Mean: {
      const float inv = 1.f / static_cast<float>(t);
      for (int64_t s = 0; s < t; ++s)
        for (int64_t i = 0; i < b * dh; ++i) out[s * b * dh + i] = dp[i] * inv;
      break;
    }
    case Pooling::Max:
      for (int64_t i = 0; i < b * dh; ++i)
        out[argmax_[static_cast<size_t>(i)] * b * dh + i] = dp[i];
      break;
    case Pooling::Last:
      for (int64_t j = 0; j < b; ++j)
        for (int64_t k = 0; k < dh; ++k) {
          const int64_t s = k < h ? t - 1 : 0;
          out[(s * b + j) * dh + k] = dp[j * dh + k];
        }
      break;
  }
  return be_.to_device(dy);
}

double TextClassifier::train_step(const Tensor& ids, const Tensor& labels, int64_t t, int64_t b,
                                  float grad_scale, uint64_t dropout_seed, Tensor* logits) {
  const int64_t e = shape_.embedding_dim;
  const int64_t dh = lstm_config().dirs() * shape_.hidden_size;
  const Tensor ids_dev = be_.to_device(ids);
  forward(ids_dev, t, b, LstmMode::Training, dropout_seed);
  Tensor loss = be_.empty({b});
  Tensor dlogits = be_.empty(logits_.shape());
  be_.softmax_xent(logits_, be_.to_device(labels), grad_scale, loss, dlogits);
  if (logits) *logits = be_.to_host(logits_);
  // Dense: out_w.grad [C, DH] = dlogits^T pooled; out_b.grad = column sums; dpooled = dlogits W.
  be_.gemm(Transpose::Yes, Transpose::No, 1.f, dlogits, pooled_drop_, 0.f, out_w_.grad);
  be_.bias_act_backward(Activation::None, logits_, dlogits, dlogits, out_b_.grad);
  Tensor dpooled = be_.empty({b, dh});
  be_.gemm(Transpose::No, Transpose::No, 1.f, dlogits, out_w_.value, 0.f, dpooled);
  if (shape_.dropout > 0)
    be_.dropout_backward({shape_.dropout, pooled_seed(dropout_seed)}, dpooled, dpooled);
  LstmGrads g;
  g.dy = unpool(dpooled, t, b);
  g.dx = be_.empty({t, b, e});
  g.dw = lstm_w_.grad;
  LstmConfig c = lstm_config();
  c.dropout_seed = dropout_seed;
  be_.lstm_backward(c, io_, g);
  if (shape_.embedding_dropout > 0)
    be_.dropout_backward({shape_.embedding_dropout, embedding_seed(dropout_seed)}, g.dx, g.dx);
  be_.fill(embedding_.grad, 0.f);
  be_.embedding_backward(ids_dev, g.dx.reshape({t * b, e}), embedding_.grad);
  return sum_on_host(be_, loss, b);
}

Tensor TextClassifier::logits(const Tensor& ids, int64_t t, int64_t b) {
  forward(be_.to_device(ids), t, b, LstmMode::Inference, 0);
  return be_.to_host(logits_);
}

std::vector<std::pair<std::string, Tensor>> TextClassifier::snapshot() {
  return snapshot_parameters(be_, parameters());
}

void TextClassifier::restore(const std::vector<std::pair<std::string, Tensor>>& values) {
  restore_parameters(be_, parameters(), values);
}

}  // namespace tessera::textclass
