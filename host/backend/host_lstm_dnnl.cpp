// The host LSTM on oneDNN's LSTM primitive (the issue asks for the faster of this and the
// GEMM + fused-gate path in host_lstm.cpp; bench/lstm_vs_torch.sh measures both, see
// host_lstm_impl()). Same semantics as the GEMM path, which stays the specification:
//   - one primitive per layer (oneDNN stacks layers only when every layer's input width equals H),
//     so the inverted dropout between layers is exactly the GEMM path's mask;
//   - bidirectional layers use bidirectional_concat: y [T, B, 2H] = forward half, reverse half;
//   - oneDNN has one bias per gate: b_ih + b_hh goes in, its gradient goes to both;
//   - weights: the canonical W_ih [4H, I] (gate-major rows i, f, g, o) is oneDNN's ldgoi layout of
//     dims {1, D, I, 4, H} (same gate order), reordered into whatever layout the primitive wants.
//
// Reserve layout (f32, every block rounded up to 16 floats so oneDNN gets 64-byte alignment):
//   per layer l:  [l >= 1 and dropout > 0] x_l [T, B, I_l]  the dropped-out input
//                 [l <  L-1]               y_l [T, B, D*H]  the layer's output
//                 hn_l, cn_l [D, B, H]                       final states (backward reads them)
//                 ws_l                                       the primitive's workspace
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "host/backend/dnnl_context.h"
#include "host/backend/host_backend.h"
#include "host/backend/host_lstm_impl.h"
#include "host/backend/lstm_reserve_layout.h"
#include "host/core/error.h"

namespace tessera {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using md_t = dnnl::memory::desc;

int64_t round16(int64_t n) {
  return (n + 15) / 16 * 16;
}

// One layer's shape: everything a primitive depends on.
struct LayerShape {
  int64_t t, b, in, h;
  int dirs;
  std::string key() const {
    return std::to_string(t) + "," + std::to_string(b) + "," + std::to_string(in) + "," +
           std::to_string(h) + "," + std::to_string(dirs);
  }
  dnnl::rnn_direction direction() const {
    return dirs == 2 ? dnnl::rnn_direction::bidirectional_concat
                     : dnnl::rnn_direction::unidirectional_left2right;
  }
  md_t src_layer() const { return md_t({t, b, in}, dt::f32, tag::tnc); }
  md_t dst_layer() const { return md_t({t, b, dirs * h}, dt::f32, tag::tnc); }
  md_t state() const { return md_t({1, dirs, b, h}, dt::f32, tag::ldnc); }
  md_t bias() const { return md_t({1, dirs, 4, h}, dt::f32, tag::ldgo); }
  md_t weights_layer(tag tg) const { return md_t({1, dirs, in, 4, h}, dt::f32, tg); }
  md_t weights_iter(tag tg) const { return md_t({1, dirs, h, 4, h}, dt::f32, tg); }
};

struct Primitives {
  dnnl::lstm_forward::primitive_desc fwd_pd;
  dnnl::lstm_forward fwd;
  // Training only:
  dnnl::lstm_backward::primitive_desc bwd_pd;
  dnnl::lstm_backward bwd;
  int64_t workspace_floats = 0;
};

std::shared_ptr<const Primitives> primitives(const LayerShape& s, bool training) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<const Primitives>> cache;
  const std::string key = s.key() + (training ? ",train" : ",infer");
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  auto p = std::make_shared<Primitives>();
  try {
    const auto prop =
        training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    dnnl::lstm_forward::desc fd(prop, s.direction(), s.src_layer(), s.state(), s.state(),
                                s.weights_layer(tag::any), s.weights_iter(tag::any), s.bias(),
                                s.dst_layer(), s.state(), s.state());
    p->fwd_pd = dnnl::lstm_forward::primitive_desc(fd, dnnl_cpu_engine());
    p->fwd = dnnl::lstm_forward(p->fwd_pd);
    if (training) {
      p->workspace_floats =
          round16(static_cast<int64_t>(p->fwd_pd.workspace_desc().get_size() + 3) / 4);
      dnnl::lstm_backward::desc bd(
          dnnl::prop_kind::backward, s.direction(), s.src_layer(), s.state(), s.state(),
          s.weights_layer(tag::any), s.weights_iter(tag::any), s.bias(), s.dst_layer(), s.state(),
          s.state(), s.src_layer(), s.state(), s.state(), s.weights_layer(tag::any),
          s.weights_iter(tag::any), s.bias(), s.dst_layer(), s.state(), s.state());
      p->bwd_pd = dnnl::lstm_backward::primitive_desc(bd, dnnl_cpu_engine(), p->fwd_pd);
      p->bwd = dnnl::lstm_backward(p->bwd_pd);
    }
  } catch (const dnnl::error& e) {
    TESSERA_THROW(Backend, "oneDNN LSTM primitive for T " << s.t << ", B " << s.b << ", I " << s.in
                                                          << ", H " << s.h << ", D " << s.dirs
                                                          << " could not be created: " << e.what());
  }
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() >= 256) cache.clear();  // bounded: shapes that keep changing
  return cache.emplace(key, std::move(p)).first->second;
}

struct LayerReserve {
  float* x = nullptr;  // dropped input (null: the layer below's output as is)
  float* y = nullptr;  // output (null for the top layer: io.y)
  float* hn = nullptr;
  float* cn = nullptr;
  float* ws = nullptr;
};

// Floats of the reserve; with `base`, also the per-layer pointers.
int64_t reserve_layout(const LstmConfig& c, bool dropout, int64_t t, int64_t b, float* base,
                       std::vector<LayerReserve>* layers) {
  const int64_t h = c.hidden_size;
  // Each region starts at a multiple of 16 floats (64 bytes).
  return lstm_reserve_layout(c, dropout, t, b, base, 16, layers,
                             [&](int64_t l, ReserveCursor& cursor, LayerReserve& r) {
                               r.hn = cursor.take(c.dirs() * b * h);
                               r.cn = cursor.take(c.dirs() * b * h);
                               const LayerShape s{t, b, c.layer_input_size(l), h, c.dirs()};
                               r.ws = cursor.take(primitives(s, true)->workspace_floats);
                             });
}

dnnl::memory mem(const md_t& md, const void* p) {
  return dnnl::memory(md, dnnl_cpu_engine(), const_cast<void*>(p));
}

void execute(const dnnl::primitive& prim, const std::unordered_map<int, dnnl::memory>& args) {
  try {
    prim.execute(dnnl_cpu_stream(), args);
    dnnl_cpu_stream().wait();
  } catch (const dnnl::error& e) {
    TESSERA_THROW(Backend, "oneDNN LSTM failed: " << e.what());
  }
}

// `user` reordered into `want` (no copy when the layouts are the same); keeps its buffer alive.
struct Laid {
  std::vector<float> buffer;
  dnnl::memory memory;
};
Laid lay_out(dnnl::memory user, const md_t& want) {
  Laid r;
  if (user.get_desc() == want) {
    r.memory = user;
    return r;
  }
  r.buffer.resize((want.get_size() + 3) / 4);
  r.memory = mem(want, r.buffer.data());
  dnnl::reorder(user, r.memory).execute(dnnl_cpu_stream(), user, r.memory);
  dnnl_cpu_stream().wait();
  return r;
}

// One layer's weights in oneDNN's user layouts: W_ih as ldgoi [D][4H][I], W_hh as ldgoi
// [D][4H][H], bias ldgo [D][4H] = b_ih + b_hh.
struct LayerWeights {
  std::vector<float> wl, wi, bias;
};
LayerWeights gather_weights(const LstmConfig& c, const float* w, int64_t l) {
  const int64_t h = c.hidden_size, g4 = 4 * h, il = c.layer_input_size(l);
  LayerWeights lw;
  lw.wl.resize(static_cast<size_t>(c.dirs() * g4 * il));
  lw.wi.resize(static_cast<size_t>(c.dirs() * g4 * h));
  lw.bias.resize(static_cast<size_t>(c.dirs() * g4));
  for (int d = 0; d < c.dirs(); ++d) {
    const LstmWeightOffsets o = lstm_weight_offsets(c, l, d);
    std::memcpy(lw.wl.data() + d * g4 * il, w + o.w_ih, g4 * il * sizeof(float));
    std::memcpy(lw.wi.data() + d * g4 * h, w + o.w_hh, g4 * h * sizeof(float));
    for (int64_t j = 0; j < g4; ++j) lw.bias[d * g4 + j] = w[o.b_ih + j] + w[o.b_hh + j];
  }
  return lw;
}

// What layer l's forward and backward primitives both read: its input, initial states (zeros
// where io has none), weights (gathered, then laid out as the primitive `pd` wants them) and
// bias, its output and final states. Owns the buffers the arguments point into.
struct LayerArgs {
  LayerWeights weights;
  Laid wl, wi;
  std::unordered_map<int, dnnl::memory> args;
};
template <typename PrimitiveDesc>
LayerArgs layer_args(const LstmConfig& c, const LstmIo& io, int64_t l, const LayerShape& s,
                     const PrimitiveDesc& pd, const float* zeros, const float* in, const float* out,
                     const LayerReserve& r) {
  const int64_t state = s.dirs * s.b * s.h;
  const float* h0 = io.h0.defined() ? io.h0.data<float>() + l * state : zeros;
  const float* c0 = io.c0.defined() ? io.c0.data<float>() + l * state : zeros;
  LayerArgs a;
  a.weights = gather_weights(c, io.w.data<float>(), l);
  a.wl = lay_out(mem(s.weights_layer(tag::ldgoi), a.weights.wl.data()), pd.weights_layer_desc());
  a.wi = lay_out(mem(s.weights_iter(tag::ldgoi), a.weights.wi.data()), pd.weights_iter_desc());
  a.args = {
      {DNNL_ARG_SRC_LAYER, mem(s.src_layer(), in)},
      {DNNL_ARG_SRC_ITER, mem(s.state(), h0)},
      {DNNL_ARG_SRC_ITER_C, mem(s.state(), c0)},
      {DNNL_ARG_WEIGHTS_LAYER, a.wl.memory},
      {DNNL_ARG_WEIGHTS_ITER, a.wi.memory},
      {DNNL_ARG_BIAS, mem(s.bias(), a.weights.bias.data())},
      {DNNL_ARG_DST_LAYER, mem(s.dst_layer(), out)},
      {DNNL_ARG_DST_ITER, mem(s.state(), r.hn)},
      {DNNL_ARG_DST_ITER_C, mem(s.state(), r.cn)},
  };
  return a;
}

}  // namespace

namespace {
// -1: not read yet; otherwise a HostLstmImpl.
std::atomic<int> g_impl{-1};
}  // namespace

HostLstmImpl host_lstm_impl() {
  int v = g_impl.load(std::memory_order_relaxed);
  if (v < 0) {
    HostLstmImpl impl = HostLstmImpl::Auto;
    const char* e = std::getenv("TESSERA_HOST_LSTM");
    if (e && *e) {
      const std::string s = e;
      if (s == "gemm")
        impl = HostLstmImpl::Gemm;
      else if (s == "onednn")
        impl = HostLstmImpl::OneDnn;
      else if (s != "auto")
        TESSERA_THROW(Usage,
                      "TESSERA_HOST_LSTM must be 'auto', 'onednn' or 'gemm', got '" << s << "'");
    }
    int expected = -1;
    g_impl.compare_exchange_strong(expected, static_cast<int>(impl));
    v = g_impl.load();
  }
  return static_cast<HostLstmImpl>(v);
}

void set_host_lstm_impl(HostLstmImpl impl) {
  g_impl.store(static_cast<int>(impl));
}

const char* host_lstm_impl_name(HostLstmImpl impl) {
  return impl == HostLstmImpl::OneDnn ? "onednn" : impl == HostLstmImpl::Gemm ? "gemm" : "auto";
}

bool host_lstm_uses_onednn(const LstmConfig& c, int64_t steps, int64_t batch) {
  if (steps <= 0 || batch <= 0) return false;
  switch (host_lstm_impl()) {
    case HostLstmImpl::Gemm:
      return false;
    case HostLstmImpl::OneDnn:
      return true;
    case HostLstmImpl::Auto:
      break;
  }
  // Multiply-adds of the top layer's recurrent GEMMs over the segment: 64 M and up pays oneDNN's
  // per-call costs (the tinyshakespeare and SST-2 shapes are 10-100x above it).
  const double work =
      static_cast<double>(steps) * batch * 4.0 * c.hidden_size * (c.hidden_size + c.input_size);
  return work >= 64e6;
}

int64_t dnnl_lstm_reserve_floats(const LstmConfig& c, int64_t steps, int64_t batch) {
  return reserve_layout(c, lstm_uses_dropout(c, LstmMode::Training), steps, batch, nullptr,
                        nullptr);
}

void dnnl_lstm_forward(const LstmConfig& c, LstmMode mode, LstmIo& io) {
  const int64_t t_len = io.x.dim(0), b = io.x.dim(1), h = c.hidden_size;
  const int64_t state = c.dirs() * b * h;
  const bool training = mode == LstmMode::Training;
  const bool dropout = lstm_uses_dropout(c, mode);
  const int64_t need = reserve_layout(c, dropout, t_len, b, nullptr, nullptr);
  // Inference: only the layer outputs and the states are needed; the layout has room for them
  // (and for workspaces that stay unused).
  Tensor scratch;
  std::vector<LayerReserve> layers;
  reserve_layout(c, dropout, t_len, b, lstm_forward_reserve(mode, need, io, scratch), &layers);
  const std::vector<float> zeros(static_cast<size_t>(state), 0.f);

  const float* in = io.x.data<float>();
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t il = c.layer_input_size(l);
    const LayerShape s{t_len, b, il, h, c.dirs()};
    auto p = primitives(s, training);
    LayerReserve& r = layers[l];
    if (r.x) {
      lstm_layer_dropout(c, l, in, r.x, t_len * b * il);
      in = r.x;
    }
    float* out = r.y ? r.y : io.y.data<float>();
    LayerArgs a = layer_args(c, io, l, s, p->fwd_pd, zeros.data(), in, out, r);
    if (training) a.args.emplace(DNNL_ARG_WORKSPACE, mem(p->fwd_pd.workspace_desc(), r.ws));
    execute(p->fwd, a.args);
    if (io.hn.defined()) std::memcpy(io.hn.data<float>() + l * state, r.hn, state * sizeof(float));
    if (io.cn.defined()) std::memcpy(io.cn.data<float>() + l * state, r.cn, state * sizeof(float));
    in = out;
  }
}

void dnnl_lstm_backward(const LstmConfig& c, const LstmIo& io, LstmGrads& g) {
  const int64_t t_len = io.x.dim(0), b = io.x.dim(1), h = c.hidden_size, g4 = 4 * h;
  const int64_t dh = c.dirs() * h, state = c.dirs() * b * h;
  const bool dropout = lstm_uses_dropout(c, LstmMode::Training);
  const int64_t need = reserve_layout(c, dropout, t_len, b, nullptr, nullptr);
  check_backward_reserve(io, need);
  std::vector<LayerReserve> layers;
  reserve_layout(c, dropout, t_len, b, io.reserve.data<float>(), &layers);
  const std::vector<float> zeros(static_cast<size_t>(state), 0.f);
  std::vector<float> scratch_dh0(static_cast<size_t>(state)),
      scratch_dc0(static_cast<size_t>(state));

  float* dw = g.dw.data<float>();
  std::vector<float> dout(g.dy.data<float>(), g.dy.data<float>() + t_len * b * dh);
  std::vector<float> din;
  for (int64_t l = c.num_layers - 1; l >= 0; --l) {
    const int64_t il = c.layer_input_size(l);
    const LayerShape s{t_len, b, il, h, c.dirs()};
    auto p = primitives(s, true);
    const LayerReserve& r = layers[l];
    const float* out = r.y ? r.y : io.y.data<float>();
    const float* in = l == 0 ? io.x.data<float>() : (r.x ? r.x : layers[l - 1].y);
    float* dinp;
    if (l == 0) {
      dinp = g.dx.data<float>();
    } else {
      din.assign(static_cast<size_t>(t_len * b * il), 0.f);
      dinp = din.data();
    }
    // oneDNN accumulates into the weight gradients: start them at zero.
    const md_t dwl_md = p->bwd_pd.diff_weights_layer_desc(),
               dwi_md = p->bwd_pd.diff_weights_iter_desc();
    std::vector<float> dwl((dwl_md.get_size() + 3) / 4, 0.f), dwi((dwi_md.get_size() + 3) / 4, 0.f);
    std::vector<float> dbias(static_cast<size_t>(c.dirs() * g4), 0.f);
    const float* dhn = g.dhn.defined() ? g.dhn.data<float>() + l * state : zeros.data();
    const float* dcn = g.dcn.defined() ? g.dcn.data<float>() + l * state : zeros.data();
    float* dh0 = g.dh0.defined() ? g.dh0.data<float>() + l * state : scratch_dh0.data();
    float* dc0 = g.dc0.defined() ? g.dc0.data<float>() + l * state : scratch_dc0.data();
    LayerArgs a = layer_args(c, io, l, s, p->bwd_pd, zeros.data(), in, out, r);
    a.args.insert({
        {DNNL_ARG_WORKSPACE, mem(p->fwd_pd.workspace_desc(), r.ws)},
        {DNNL_ARG_DIFF_DST_LAYER, mem(s.dst_layer(), dout.data())},
        {DNNL_ARG_DIFF_DST_ITER, mem(s.state(), dhn)},
        {DNNL_ARG_DIFF_DST_ITER_C, mem(s.state(), dcn)},
        {DNNL_ARG_DIFF_SRC_LAYER, mem(s.src_layer(), dinp)},
        {DNNL_ARG_DIFF_SRC_ITER, mem(s.state(), dh0)},
        {DNNL_ARG_DIFF_SRC_ITER_C, mem(s.state(), dc0)},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, mem(dwl_md, dwl.data())},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, mem(dwi_md, dwi.data())},
        {DNNL_ARG_DIFF_BIAS, mem(s.bias(), dbias.data())},
    });
    execute(p->bwd, a.args);
    // Gradients back into the canonical layout.
    const Laid dwl_user = lay_out(mem(dwl_md, dwl.data()), s.weights_layer(tag::ldgoi));
    const Laid dwi_user = lay_out(mem(dwi_md, dwi.data()), s.weights_iter(tag::ldgoi));
    const float* gl = static_cast<const float*>(dwl_user.memory.get_data_handle());
    const float* gi = static_cast<const float*>(dwi_user.memory.get_data_handle());
    for (int d = 0; d < c.dirs(); ++d) {
      const LstmWeightOffsets o = lstm_weight_offsets(c, l, d);
      std::memcpy(dw + o.w_ih, gl + d * g4 * il, g4 * il * sizeof(float));
      std::memcpy(dw + o.w_hh, gi + d * g4 * h, g4 * h * sizeof(float));
      std::memcpy(dw + o.b_ih, dbias.data() + d * g4, g4 * sizeof(float));
      std::memcpy(dw + o.b_hh, dbias.data() + d * g4, g4 * sizeof(float));
    }
    if (l > 0) {
      dout.assign(din.begin(), din.end());
      if (r.x)  // back through the dropout between layer l-1 and l: the same mask and scale
        lstm_layer_dropout(c, l, dout.data(), dout.data(), static_cast<int64_t>(dout.size()));
    }
  }
}

}  // namespace tessera
