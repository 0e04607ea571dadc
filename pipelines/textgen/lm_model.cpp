#include "pipelines/textgen/lm_model.h"

#include <cmath>

#include "host/model/parameter_ops.h"
#include "pipelines/text_models.h"

namespace tessera::textgen {

LanguageModel::LanguageModel(Backend& backend, const LmShape& shape) : be_(backend), shape_(shape) {
  TESSERA_CHECK(shape.vocab >= 2 && shape.embedding_dim >= 1 && shape.hidden_size >= 1 &&
                    shape.num_layers >= 1,
                "language model shape: vocab " << shape.vocab << ", embedding "
                                               << shape.embedding_dim << ", hidden "
                                               << shape.hidden_size);
  const std::vector<std::pair<std::string, Shape>> ps = parameter_shapes(shape);
  Parameter* params[] = {&embedding_, &lstm_w_, &out_w_, &out_b_};
  for (size_t i = 0; i < ps.size(); ++i)
    *params[i] = make_parameter(be_, ps[i].first, ps[i].second);
}

std::vector<std::pair<std::string, Shape>> LanguageModel::parameter_shapes(const LmShape& s) {
  const LstmConfig c = text_lstm(s, LstmDirections::Unidirectional, s.dropout);
  return {{"embedding", {s.vocab, s.embedding_dim}},
          {"lstm", {lstm_weight_count(c)}},
          {"out_w", {s.vocab, s.hidden_size}},
          {"out_b", {s.vocab}}};
}

LstmConfig LanguageModel::lstm_config() const {
  return text_lstm(shape_, LstmDirections::Unidirectional, shape_.dropout);
}

void LanguageModel::init(uint64_t seed) {
  std::mt19937_64 gen(seed);
  const float k = 1.f / std::sqrt(static_cast<float>(shape_.hidden_size));
  auto fill_uniform = [&](Parameter& p, float lo, float hi) {
    Tensor h = Tensor::host(p.value.shape());
    std::uniform_real_distribution<float> u(lo, hi);
    for (int64_t i = 0; i < h.numel(); ++i) h.data<float>()[i] = u(gen);
    return h;
  };
  Tensor emb = Tensor::host(embedding_.value.shape());
  std::normal_distribution<float> n(0.f, 0.1f);
  for (int64_t i = 0; i < emb.numel(); ++i) emb.data<float>()[i] = n(gen);
  be_.copy(emb, embedding_.value);
  Tensor w = fill_uniform(lstm_w_, -k, k);
  const LstmConfig c = lstm_config();
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LstmWeightOffsets o = lstm_weight_offsets(c, l, 0);
    for (int64_t j = 0; j < c.hidden_size; ++j) {
      w.data<float>()[o.b_ih + c.hidden_size + j] = 1.f;  // forget gate
      w.data<float>()[o.b_hh + c.hidden_size + j] = 0.f;
    }
  }
  be_.copy(w, lstm_w_.value);
  be_.copy(fill_uniform(out_w_, -k, k), out_w_.value);
  be_.copy(fill_uniform(out_b_, -k, k), out_b_.value);
}

LmState LanguageModel::zero_state(int64_t batch) {
  LmState s;
  s.h = be_.empty({shape_.num_layers, batch, shape_.hidden_size});
  s.c = be_.empty({shape_.num_layers, batch, shape_.hidden_size});
  return s;
}

void LanguageModel::forward(const Tensor& ids_dev, int64_t t, int64_t b, LmState& state,
                            LstmMode mode, uint64_t dropout_seed) {
  const int64_t e = shape_.embedding_dim, h = shape_.hidden_size, v = shape_.vocab;
  if (!emb_out_.defined() || emb_out_.numel() != t * b * e) {
    emb_out_ = be_.empty({t, b, e});
    io_.y = be_.empty({t, b, h});
    logits_ = be_.empty({t * b, v});
    y_drop_ = shape_.output_dropout > 0.f ? be_.empty({t * b, h}) : Tensor();
  }
  be_.embedding_forward(embedding_.value, ids_dev, emb_out_);
  io_.x = emb_out_;
  io_.w = lstm_w_.value;
  io_.h0 = state.h;
  io_.c0 = state.c;
  // The final state goes to fresh tensors: h0/c0 are still needed by the backward.
  io_.hn = be_.empty(state.h.shape());
  io_.cn = be_.empty(state.c.shape());
  LstmConfig c = lstm_config();
  c.dropout_seed = dropout_seed;
  be_.lstm_forward(c, mode, io_);
  // logits [T*B, V] = y [T*B, H] out_w^T + out_b (y after the output dropout when training)
  const Tensor y2 = output_y(mode, dropout_seed);
  be_.gemm(Transpose::No, Transpose::Yes, 1.f, y2, out_w_.value, 0.f, logits_);
  be_.bias_act_forward(Activation::None, logits_, out_b_.value, logits_);
}

double LanguageModel::train_step(const Tensor& ids, const Tensor& targets, int64_t t, int64_t b,
                                 LmState& state, uint64_t dropout_seed) {
  const int64_t h = shape_.hidden_size, n = t * b;
  const Tensor ids_dev = be_.to_device(ids);
  const Tensor tgt_dev = be_.to_device(targets);
  forward(ids_dev, t, b, state, LstmMode::Training, dropout_seed);
  Tensor loss = be_.empty({n});
  Tensor dlogits = be_.empty(logits_.shape());
  be_.softmax_xent(logits_, tgt_dev, 1.f / static_cast<float>(n), loss, dlogits);
  // Output layer: out_w.grad [V, H] = dlogits^T y; out_b.grad = column sums; dy = dlogits out_w
  // (then through the output dropout's mask).
  const Tensor y2 = shape_.output_dropout > 0.f ? y_drop_ : io_.y.reshape({n, h});
  be_.gemm(Transpose::Yes, Transpose::No, 1.f, dlogits, y2, 0.f, out_w_.grad);
  be_.bias_act_backward(Activation::None, logits_, dlogits, dlogits, out_b_.grad);
  LstmGrads g;
  g.dy = be_.empty(io_.y.shape());
  Tensor dy2 = g.dy.reshape({n, h});
  be_.gemm(Transpose::No, Transpose::No, 1.f, dlogits, out_w_.value, 0.f, dy2);
  if (shape_.output_dropout > 0.f)
    be_.dropout_backward({shape_.output_dropout, output_dropout_seed(dropout_seed)}, dy2, dy2);
  g.dx = be_.empty(io_.x.shape());
  g.dw = lstm_w_.grad;
  LstmConfig c = lstm_config();
  c.dropout_seed = dropout_seed;
  be_.lstm_backward(c, io_, g);
  be_.fill(embedding_.grad, 0.f);
  be_.embedding_backward(ids_dev, g.dx.reshape({n, shape_.embedding_dim}), embedding_.grad);
  state.h = io_.hn;
  state.c = io_.cn;
  return sum_on_host(be_, loss, n);
}

Tensor LanguageModel::output_y(LstmMode mode, uint64_t dropout_seed) {
  const Tensor y2 = io_.y.reshape({io_.y.dim(0) * io_.y.dim(1), shape_.hidden_size});
  if (mode != LstmMode::Training || shape_.output_dropout <= 0.f) return y2;
  be_.dropout_forward({shape_.output_dropout, output_dropout_seed(dropout_seed)}, y2, y_drop_);
  return y_drop_;
}

double LanguageModel::eval_segment(const Tensor& ids, const Tensor& targets, int64_t t, int64_t b,
                                   LmState& state) {
  const int64_t n = t * b;
  forward(be_.to_device(ids), t, b, state, LstmMode::Inference, 0);
  Tensor loss = be_.empty({n});
  Tensor dlogits = be_.empty(logits_.shape());
  be_.softmax_xent(logits_, be_.to_device(targets), 0.f, loss, dlogits);
  state.h = io_.hn;
  state.c = io_.cn;
  return sum_on_host(be_, loss, n);
}

Tensor LanguageModel::next_logits(const Tensor& ids, int64_t t, int64_t b, LmState& state) {
  forward(be_.to_device(ids), t, b, state, LstmMode::Inference, 0);
  state.h = io_.hn;
  state.c = io_.cn;
  const Tensor all = be_.to_host(logits_);
  Tensor last = Tensor::host({b, shape_.vocab});
  const float* src = all.data<float>() + (t - 1) * b * shape_.vocab;
  for (int64_t i = 0; i < b * shape_.vocab; ++i) last.data<float>()[i] = src[i];
  return last;
}

std::vector<std::pair<std::string, Tensor>> LanguageModel::snapshot() {
  return snapshot_parameters(be_, parameters());
}

void LanguageModel::restore(const std::vector<std::pair<std::string, Tensor>>& values) {
  restore_parameters(be_, parameters(), values);
}

}  // namespace tessera::textgen
