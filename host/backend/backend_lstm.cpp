// The LSTM op's edge checks (Backend::lstm_forward / lstm_backward) and the canonical weight
// layout (host/backend/lstm_types.h).
#include <initializer_list>
#include <utility>

#include "host/backend/backend.h"
#include "host/core/math.h"

namespace tessera {

LstmWeightOffsets lstm_weight_offsets(const LstmConfig& c, int64_t layer, int dir) {
  const int64_t g = 4 * c.hidden_size;
  int64_t at = 0;
  for (int64_t l = 0; l <= layer; ++l) {
    for (int d = 0; d < c.dirs(); ++d) {
      LstmWeightOffsets o;
      o.w_ih = at;
      o.w_hh = o.w_ih + g * c.layer_input_size(l);
      o.b_ih = o.w_hh + g * c.hidden_size;
      o.b_hh = o.b_ih + g;
      o.end = o.b_hh + g;
      if (l == layer && d == dir) return o;
      at = o.end;
    }
  }
  TESSERA_THROW(Internal, "lstm_weight_offsets: layer " << layer << " direction " << dir
                                                        << " outside the config");
}

int64_t lstm_weight_count(const LstmConfig& c) {
  if (c.num_layers <= 0) return 0;
  return lstm_weight_offsets(c, c.num_layers - 1, c.dirs() - 1).end;
}

uint64_t lstm_dropout_seed(uint64_t seed, int64_t layer) {
  return math::mix64(seed ^ (0x4C53544Dull + static_cast<uint64_t>(layer)));  // "LSTM"
}

namespace {

void check_config(const LstmConfig& c) {
  TESSERA_CHECK(c.input_size >= 1 && c.hidden_size >= 1 && c.num_layers >= 1,
                "LSTM needs input_size, hidden_size and num_layers >= 1, got "
                    << c.input_size << ", " << c.hidden_size << ", " << c.num_layers);
  TESSERA_CHECK(c.dropout >= 0.f && c.dropout < 1.f,
                "LSTM dropout " << c.dropout << " not in [0, 1)");
}

void check_shape(const Tensor& t, const Shape& want, const char* what) {
  TESSERA_CHECK(t.dtype() == DType::F32, "LSTM " << what << " must be f32, got " << t.describe());
  TESSERA_CHECK(t.shape() == want,
                "LSTM " << what << " must be " << shape_str(want) << ", got " << t.describe());
}

using NamedTensors = std::initializer_list<std::pair<const Tensor*, const char*>>;

}  // namespace

// The checks both directions make (a friend of Backend, for check_here).
struct LstmEdge {
  // The config and x [T, B, I]; returns x's T and B.
  static std::pair<int64_t, int64_t> check_input(const Backend& be, const LstmConfig& c,
                                                 const LstmIo& io) {
    check_config(c);
    be.check_here(io.x, "LSTM x");
    TESSERA_CHECK(io.x.rank() == 3 && io.x.dim(2) == c.input_size,
                  "LSTM x must be [T, B, " << c.input_size << "], got " << io.x.describe());
    return {io.x.dim(0), io.x.dim(1)};
  }
  // w [P] and y [T, B, D*H].
  static void check_weights_output(const Backend& be, const LstmConfig& c, const LstmIo& io,
                                   int64_t t, int64_t b) {
    be.check_here(io.w, "LSTM w");
    check_shape(io.w, {lstm_weight_count(c)}, "w");
    be.check_here(io.y, "LSTM y");
    check_shape(io.y, {t, b, c.dirs() * c.hidden_size}, "y");
  }
  // Each defined one of `tensors` is a state [L*D, B, H].
  static void check_states(const Backend& be, const LstmConfig& c, int64_t b,
                           NamedTensors tensors) {
    const Shape state{c.num_layers * c.dirs(), b, c.hidden_size};
    for (const auto& [tensor, what] : tensors) {
      if (!tensor->defined()) continue;
      be.check_here(*tensor, what);
      check_shape(*tensor, state, what);
    }
  }
};

void Backend::lstm_forward(const LstmConfig& c, LstmMode mode, LstmIo& io) {
  const auto [t, b] = LstmEdge::check_input(*this, c, io);
  check_shape(io.x, io.x.shape(), "x");
  LstmEdge::check_weights_output(*this, c, io, t, b);
  LstmEdge::check_states(*this, c, b,
                         {{&io.h0, "h0"}, {&io.c0, "c0"}, {&io.hn, "hn"}, {&io.cn, "cn"}});
  if (io.reserve.defined()) check_here(io.reserve, "LSTM reserve");
  if (t == 0 || b == 0) return;
  lstm_forward_impl(c, mode, io);
}

void Backend::lstm_backward(const LstmConfig& c, const LstmIo& io, LstmGrads& g) {
  const auto [t, b] = LstmEdge::check_input(*this, c, io);
  TESSERA_CHECK(io.reserve.defined(),
                "LSTM backward needs the reserve of a Training-mode forward (it is undefined)");
  check_here(io.reserve, "LSTM reserve");
  LstmEdge::check_weights_output(*this, c, io, t, b);
  check_here(g.dy, "LSTM dy");
  check_shape(g.dy, io.y.shape(), "dy");
  check_here(g.dx, "LSTM dx");
  check_shape(g.dx, io.x.shape(), "dx");
  check_here(g.dw, "LSTM dw");
  check_shape(g.dw, io.w.shape(), "dw");
  LstmEdge::check_states(*this, c, b,
                         {{&io.h0, "h0"},
                          {&io.c0, "c0"},
                          {&g.dhn, "dhn"},
                          {&g.dcn, "dcn"},
                          {&g.dh0, "dh0"},
                          {&g.dc0, "dc0"}});
  if (t == 0 || b == 0) {
    // No steps: the initial state is the final state.
    fill(g.dw, 0.f);
    if (g.dh0.defined()) g.dhn.defined() ? copy(g.dhn, g.dh0) : fill(g.dh0, 0.f);
    if (g.dc0.defined()) g.dcn.defined() ? copy(g.dcn, g.dc0) : fill(g.dc0, 0.f);
    return;
  }
  lstm_backward_impl(c, io, g);
}

}  // namespace tessera
