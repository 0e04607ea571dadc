// Host convolution and pooling on oneDNN primitives over the caller's plain NCHW f32 buffers
// (convolutions reorder to the blocked layouts oneDNN runs fastest), max-pool backward and batch
// normalisation written out (see their sections). Primitives are built once per shape and
// parameter set and cached process-wide (oneDNN primitives may be executed from several threads
// at once).
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "host/backend/dnnl_context.h"
#include "host/backend/host_backend.h"

namespace tessera {

namespace {

// Work size below which a loop runs on the calling thread (as in host_backend.cpp).
constexpr int64_t kParallelElements = 1 << 18;

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

// One cached primitive and, for a convolution, the layouts it runs on (src / weights / dst, or
// their diff_ counterparts).
struct CachedPrimitive {
  dnnl::primitive prim;
  dnnl::memory::desc src, weights, dst;
};

// Keyed by a string that spells every shape and parameter the primitive depends on. Bounded: a
// workload with ever-changing shapes (variable batch sizes) must not grow without limit, so the
// cache is cleared when it reaches kMaxEntries (rebuilding costs microseconds to milliseconds).
class PrimitiveCache {
 public:
  static constexpr size_t kMaxEntries = 512;

  template <typename Make>
  std::shared_ptr<const CachedPrimitive> get(const std::string& key, Make&& make) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = map_.find(key);
      if (it != map_.end()) return it->second;
    }
    auto made = std::make_shared<const CachedPrimitive>(make());
    std::lock_guard<std::mutex> lock(mutex_);
    if (map_.size() >= kMaxEntries) map_.clear();
    return map_.emplace(key, std::move(made)).first->second;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const CachedPrimitive>> map_;
};

PrimitiveCache& cache() {
  static PrimitiveCache c;
  return c;
}

dims to_dims(const Shape& s) {
  return dims(s.begin(), s.end());
}

dnnl::memory::desc act_md(const Shape& s) {
  return dnnl::memory::desc(to_dims(s), dt::f32, s.size() == 4 ? tag::nchw : tag::nc);
}

dnnl::memory::desc vec_md(int64_t n) {
  return dnnl::memory::desc({n}, dt::f32, tag::x);
}

// w [K, C/G, R, S] is, byte for byte, goihw [G, K/G, C/G, R, S].
dnnl::memory::desc weights_md(const Shape& w, int64_t groups) {
  if (groups == 1) return dnnl::memory::desc(to_dims(w), dt::f32, tag::oihw);
  return dnnl::memory::desc({groups, w[0] / groups, w[1], w[2], w[3]}, dt::f32, tag::goihw);
}

dnnl::memory mem(const dnnl::memory::desc& md, const Tensor& t) {
  return dnnl::memory(md, dnnl_cpu_engine(), t.raw());
}

void run(const dnnl::primitive& prim, const std::unordered_map<int, dnnl::memory>& args) {
  try {
    prim.execute(dnnl_cpu_stream(), args);
    dnnl_cpu_stream().wait();
  } catch (const dnnl::error& e) {
    TESSERA_THROW(Backend, "oneDNN primitive failed: " << e.what() << " (dnnl_status_t "
                                                       << static_cast<int>(e.status) << ")");
  }
}

template <typename Make>
std::shared_ptr<const CachedPrimitive> cached(const std::string& key, Make&& make) {
  try {
    return cache().get(key, std::forward<Make>(make));
  } catch (const dnnl::error& e) {
    TESSERA_THROW(Backend, "oneDNN could not build a primitive for " << key << ": " << e.what());
  }
}

// ---- convolution ----

std::string conv_key(const char* what, const Conv2dParams& p, const Shape& x, const Shape& w,
                     bool has_bias) {
  std::ostringstream k;
  k << what << " x" << shape_str(x) << " w" << shape_str(w) << " s" << p.stride_h << ","
    << p.stride_w << " p" << p.pad_h << "," << p.pad_w << " d" << p.dilation_h << ","
    << p.dilation_w << " g" << p.groups << (has_bias ? " bias" : "");
  return k.str();
}

// Convolutions run on the layouts oneDNN picks for the shape (format_tag::any: blocked layouts
// and its JIT kernels), with reorders from and to the caller's plain NCHW buffers where they
// differ. Measured on Fashion-MNIST's CNN: the plain-layout path (oneDNN's GEMM convolution)
// spent ~390 ms per batch of 128 in the backward-weights pass alone.
struct ConvDescs {
  dnnl::memory::desc x, w, b, y;           // the caller's plain layouts
  dnnl::memory::desc x_any, w_any, y_any;  // "whatever is fastest"
  dims strides, dilates, pad;
};

ConvDescs conv_descs(const Conv2dParams& p, const Shape& x, const Shape& w) {
  const Shape y = conv2d_output_shape(p, x, w);
  const dnnl::memory::desc wd = weights_md(w, p.groups);
  // oneDNN counts dilation from 0 (0 = dense); ours counts from 1.
  return {act_md(x),
          wd,
          vec_md(w[0]),
          act_md(y),
          dnnl::memory::desc(to_dims(x), dt::f32, tag::any),
          dnnl::memory::desc(wd.dims(), dt::f32, tag::any),
          dnnl::memory::desc(to_dims(y), dt::f32, tag::any),
          {p.stride_h, p.stride_w},
          {p.dilation_h - 1, p.dilation_w - 1},
          {p.pad_h, p.pad_w}};
}

dnnl::convolution_forward::primitive_desc conv_fwd_pd(const ConvDescs& d, bool has_bias) {
  using F = dnnl::convolution_forward;
  const auto prop = dnnl::prop_kind::forward_training;
  const auto alg = dnnl::algorithm::convolution_direct;
  F::desc desc =
      has_bias
          ? F::desc(prop, alg, d.x_any, d.w_any, d.b, d.y_any, d.strides, d.dilates, d.pad, d.pad)
          : F::desc(prop, alg, d.x_any, d.w_any, d.y_any, d.strides, d.dilates, d.pad, d.pad);
  return F::primitive_desc(desc, dnnl_cpu_engine());
}

// `user` in layout `want`: the same memory when the layouts agree, else a reordered copy.
dnnl::memory in_layout(const dnnl::memory& user, const dnnl::memory::desc& want) {
  if (user.get_desc() == want) return user;
  dnnl::memory m(want, dnnl_cpu_engine());
  dnnl::reorder(user, m).execute(dnnl_cpu_stream(), const_cast<dnnl::memory&>(user), m);
  return m;
}
// Where a primitive writes an output the caller wants in `user`: `user` itself when the layouts
// agree, else scratch memory that finish_output() reorders into `user`.
dnnl::memory out_layout(const dnnl::memory& user, const dnnl::memory::desc& want) {
  return user.get_desc() == want ? user : dnnl::memory(want, dnnl_cpu_engine());
}
void finish_output(dnnl::memory& produced, dnnl::memory& user) {
  if (produced.get_data_handle() == user.get_data_handle()) return;
  dnnl::reorder(produced, user).execute(dnnl_cpu_stream(), produced, user);
}

// One tensor argument of a convolution primitive: the caller's tensor in its plain layout, and
// the layout the primitive runs it in.
struct ConvArg {
  int id;  // DNNL_ARG_*
  const dnnl::memory::desc& plain;
  const Tensor& tensor;
  const dnnl::memory::desc& want;
};
// Executes a convolution primitive on two inputs and one output, each reordered from or to the
// caller's layout where the primitive's differs, plus `bias` when given, and waits for it. A
// oneDNN failure is an Error(Backend) naming the `direction`.
void execute_conv(const char* direction, const dnnl::primitive& prim, const ConvArg& a,
                  const ConvArg& b, const ConvArg& out, const ConvArg* bias = nullptr) {
  try {
    dnnl::memory user = mem(out.plain, out.tensor);
    dnnl::memory produced = out_layout(user, out.want);
    std::unordered_map<int, dnnl::memory> args{{a.id, in_layout(mem(a.plain, a.tensor), a.want)},
                                               {b.id, in_layout(mem(b.plain, b.tensor), b.want)},
                                               {out.id, produced}};
    if (bias) args.emplace(bias->id, mem(bias->plain, bias->tensor));
    prim.execute(dnnl_cpu_stream(), args);
    finish_output(produced, user);
    dnnl_cpu_stream().wait();
  } catch (const dnnl::error& e) {
    TESSERA_THROW(Backend, "oneDNN convolution " << direction << " failed: " << e.what());
  }
}

// ---- pooling ----

std::string pool_key(const char* what, const Pool2dParams& p, const Shape& x) {
  std::ostringstream k;
  k << what << (p.kind == PoolKind::Max ? " max" : " avg") << " x" << shape_str(x) << " k"
    << p.window_h << "," << p.window_w << " s" << p.stride_h << "," << p.stride_w << " p" << p.pad_h
    << "," << p.pad_w;
  return k.str();
}

dnnl::pooling_forward::primitive_desc pool_fwd_pd(const Pool2dParams& p, const Shape& x,
                                                  dnnl::prop_kind prop) {
  using F = dnnl::pooling_forward;
  const auto alg = p.kind == PoolKind::Max ? dnnl::algorithm::pooling_max
                                           : dnnl::algorithm::pooling_avg_include_padding;
  const Shape y = pool2d_output_shape(p, x);
  F::desc desc(prop, alg, act_md(x), act_md(y), {p.stride_h, p.stride_w}, {p.window_h, p.window_w},
               {p.pad_h, p.pad_w}, {p.pad_h, p.pad_w});
  return F::primitive_desc(desc, dnnl_cpu_engine());
}

}  // namespace

// ---- convolution ----

void HostBackend::conv2d_forward_impl(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                      const Tensor& bias, Tensor& y) {
  const bool has_bias = bias.defined();
  const ConvDescs d = conv_descs(p, x.shape(), w.shape());
  auto prim = cached(conv_key("conv_fwd", p, x.shape(), w.shape(), has_bias), [&] {
    const auto pd = conv_fwd_pd(d, has_bias);
    return CachedPrimitive{dnnl::convolution_forward(pd), pd.src_desc(), pd.weights_desc(),
                           pd.dst_desc()};
  });
  const ConvArg bias_arg{DNNL_ARG_BIAS, d.b, bias, d.b};
  execute_conv("forward", prim->prim, {DNNL_ARG_SRC, d.x, x, prim->src},
               {DNNL_ARG_WEIGHTS, d.w, w, prim->weights}, {DNNL_ARG_DST, d.y, y, prim->dst},
               has_bias ? &bias_arg : nullptr);
}

void HostBackend::conv2d_backward_impl(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                       const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias) {
  const bool has_bias = dbias.defined();
  const ConvDescs d = conv_descs(p, x.shape(), w.shape());
  const auto alg = dnnl::algorithm::convolution_direct;
  if (dx.defined()) {
    auto prim = cached(conv_key("conv_bwd_data", p, x.shape(), w.shape(), false), [&] {
      using B = dnnl::convolution_backward_data;
      B::desc desc(alg, d.x_any, d.w_any, d.y_any, d.strides, d.dilates, d.pad, d.pad);
      const B::primitive_desc pd(desc, dnnl_cpu_engine(), conv_fwd_pd(d, false));
      return CachedPrimitive{B(pd), pd.diff_src_desc(), pd.weights_desc(), pd.diff_dst_desc()};
    });
    execute_conv("backward", prim->prim, {DNNL_ARG_DIFF_DST, d.y, dy, prim->dst},
                 {DNNL_ARG_WEIGHTS, d.w, w, prim->weights},
                 {DNNL_ARG_DIFF_SRC, d.x, dx, prim->src});
  }
  auto prim = cached(conv_key("conv_bwd_weights", p, x.shape(), w.shape(), has_bias), [&] {
    using B = dnnl::convolution_backward_weights;
    B::desc desc =
        has_bias ? B::desc(alg, d.x_any, d.w_any, d.b, d.y_any, d.strides, d.dilates, d.pad, d.pad)
                 : B::desc(alg, d.x_any, d.w_any, d.y_any, d.strides, d.dilates, d.pad, d.pad);
    const B::primitive_desc pd(desc, dnnl_cpu_engine(), conv_fwd_pd(d, has_bias));
    return CachedPrimitive{B(pd), pd.src_desc(), pd.diff_weights_desc(), pd.diff_dst_desc()};
  });
  const ConvArg bias_arg{DNNL_ARG_DIFF_BIAS, d.b, dbias, d.b};
  execute_conv("backward", prim->prim, {DNNL_ARG_SRC, d.x, x, prim->src},
               {DNNL_ARG_DIFF_DST, d.y, dy, prim->dst},
               {DNNL_ARG_DIFF_WEIGHTS, d.w, dw, prim->weights}, has_bias ? &bias_arg : nullptr);
}

// ---- pooling ----

void HostBackend::pool2d_forward_impl(const Pool2dParams& p, const Tensor& x, Tensor& y) {
  // Inference propagation: no workspace (the max-pool backward finds the maximum itself).
  auto prim = cached(pool_key("pool_fwd", p, x.shape()), [&] {
    return CachedPrimitive{
        dnnl::pooling_forward(pool_fwd_pd(p, x.shape(), dnnl::prop_kind::forward_inference)),
        {},
        {},
        {}};
  });
  run(prim->prim,
      {{DNNL_ARG_SRC, mem(act_md(x.shape()), x)}, {DNNL_ARG_DST, mem(act_md(y.shape()), y)}});
}

void HostBackend::pool2d_backward_impl(const Pool2dParams& p, const Tensor& x, const Tensor& y,
                                       const Tensor& dy, Tensor& dx) {
  if (p.kind == PoolKind::Max) {
    // Written out: oneDNN's max-pool backward needs the argmax workspace of a training forward,
    // which this stateless interface does not keep (rerunning the forward for it cost more than
    // this loop). Each dy goes to the first element of its window (row-major) equal to y, the
    // window's maximum; overlapping windows accumulate.
    const int64_t h = x.dim(2), w = x.dim(3), oh = y.dim(2), ow = y.dim(3);
    const int64_t planes = x.dim(0) * x.dim(1);
    const float* xp = x.data<float>();
    const float* yp = y.data<float>();
    const float* dyp = dy.data<float>();
    float* dxp = dx.data<float>();
#pragma omp parallel for schedule(static) if (x.numel() > kParallelElements)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float* xi = xp + pl * h * w;
      float* dxi = dxp + pl * h * w;
      std::fill(dxi, dxi + h * w, 0.f);
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          const float target = yp[(pl * oh + i) * ow + j];
          const int64_t r0 = i * p.stride_h - p.pad_h, c0 = j * p.stride_w - p.pad_w;
          int64_t at = -1;
          for (int64_t r = std::max<int64_t>(r0, 0); r < std::min(r0 + p.window_h, h) && at < 0;
               ++r)
            for (int64_t c = std::max<int64_t>(c0, 0); c < std::min(c0 + p.window_w, w); ++c)
              if (xi[r * w + c] == target) {
                at = r * w + c;
                break;
              }
          if (at >= 0) dxi[at] += dyp[(pl * oh + i) * ow + j];
        }
    }
    return;
  }
  const dnnl::memory::desc xmd = act_md(x.shape());
  const dnnl::memory::desc ymd = act_md(y.shape());
  auto prim = cached(pool_key("pool_bwd", p, x.shape()), [&] {
    using B = dnnl::pooling_backward;
    B::desc desc(dnnl::algorithm::pooling_avg_include_padding, xmd, ymd, {p.stride_h, p.stride_w},
                 {p.window_h, p.window_w}, {p.pad_h, p.pad_w}, {p.pad_h, p.pad_w});
    const auto fwd_pd = pool_fwd_pd(p, x.shape(), dnnl::prop_kind::forward_training);
    return CachedPrimitive{B(B::primitive_desc(desc, dnnl_cpu_engine(), fwd_pd)), {}, {}, {}};
  });
  run(prim->prim, {{DNNL_ARG_DIFF_DST, mem(ymd, dy)}, {DNNL_ARG_DIFF_SRC, mem(xmd, dx)}});
}

// ---- batch normalisation ----
// Written out rather than on oneDNN: a per-channel reduction is memory-bound and simple, and the
// spec should accumulate in double so the CUDA backend (cuDNN) is compared against exact
// statistics. Channels are independent, so they run in parallel with no reduction across threads.

namespace {
// x [N, C, H, W] or [N, C] as N blocks of C channel planes of `plane` values.
struct BnLayout {
  int64_t n, c, plane;
  int64_t at(int64_t ni, int64_t ci) const { return (ni * c + ci) * plane; }
};
BnLayout bn_layout(const Tensor& x) {
  const int64_t n = x.dim(0), c = x.dim(1);
  return {n, c, n * c != 0 ? x.numel() / (n * c) : 0};
}
}  // namespace

void HostBackend::batchnorm_forward_impl(const BatchNormParams& p, const Tensor& x,
                                         const Tensor& gamma, const Tensor& beta,
                                         Tensor& running_mean, Tensor& running_var, Tensor& y,
                                         Tensor& saved_mean, Tensor& saved_invstd) {
  const BnLayout L = bn_layout(x);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const float* g = gamma.data<float>();
  const float* b = beta.data<float>();
  float* rm = running_mean.data<float>();
  float* rv = running_var.data<float>();
  const bool train = p.mode == BatchNormMode::Training;
  float* sm = train ? saved_mean.data<float>() : nullptr;
  float* si = train ? saved_invstd.data<float>() : nullptr;
  const double count = static_cast<double>(L.n * L.plane);
#pragma omp parallel for schedule(static) if (x.numel() > kParallelElements)
  for (int64_t c = 0; c < L.c; ++c) {
    double mean, var;
    if (train) {
      double s = 0.0;
      for (int64_t n = 0; n < L.n; ++n)
        for (int64_t i = 0; i < L.plane; ++i) s += xp[L.at(n, c) + i];
      mean = s / count;
      double ss = 0.0;  // two passes: no cancellation for large means
      for (int64_t n = 0; n < L.n; ++n)
        for (int64_t i = 0; i < L.plane; ++i) {
          const double d = xp[L.at(n, c) + i] - mean;
          ss += d * d;
        }
      var = ss / count;  // biased, for normalising
      sm[c] = static_cast<float>(mean);
      si[c] = static_cast<float>(1.0 / std::sqrt(var + p.eps));
      rm[c] = static_cast<float>((1.0 - p.momentum) * rm[c] + p.momentum * mean);
      rv[c] =
          static_cast<float>((1.0 - p.momentum) * rv[c] + p.momentum * var * count / (count - 1.0));
    } else {
      mean = rm[c];
      var = rv[c];
    }
    const double scale = g[c] / std::sqrt(var + p.eps);
    const double shift = b[c] - mean * scale;
    for (int64_t n = 0; n < L.n; ++n)
      for (int64_t i = 0; i < L.plane; ++i)
        yp[L.at(n, c) + i] = static_cast<float>(xp[L.at(n, c) + i] * scale + shift);
  }
}

void HostBackend::batchnorm_backward_impl(const BatchNormParams& p, const Tensor& x,
                                          const Tensor& dy, const Tensor& gamma,
                                          const Tensor& saved_mean, const Tensor& saved_invstd,
                                          Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  // With xhat = (x - mean) invstd over the channel's M values:
  //   dbeta = sum dy, dgamma = sum dy xhat,
  //   dx = gamma invstd (dy - dbeta / M - xhat dgamma / M).
  const BnLayout L = bn_layout(x);
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  const float* g = gamma.data<float>();
  const float* sm = saved_mean.data<float>();
  const float* si = saved_invstd.data<float>();
  float* dg = dgamma.data<float>();
  float* db = dbeta.data<float>();
  const double count = static_cast<double>(L.n * L.plane);
#pragma omp parallel for schedule(static) if (x.numel() > kParallelElements)
  for (int64_t c = 0; c < L.c; ++c) {
    const double mean = sm[c], invstd = si[c];
    double sdy = 0.0, sdy_xhat = 0.0;
    for (int64_t n = 0; n < L.n; ++n)
      for (int64_t i = 0; i < L.plane; ++i) {
        const int64_t at = L.at(n, c) + i;
        sdy += dyp[at];
        sdy_xhat += dyp[at] * (xp[at] - mean) * invstd;
      }
    db[c] = static_cast<float>(sdy);
    dg[c] = static_cast<float>(sdy_xhat);
    const double k = g[c] * invstd;
    for (int64_t n = 0; n < L.n; ++n)
      for (int64_t i = 0; i < L.plane; ++i) {
        const int64_t at = L.at(n, c) + i;
        const double xhat = (xp[at] - mean) * invstd;
        dxp[at] = static_cast<float>(k * (dyp[at] - sdy / count - xhat * sdy_xhat / count));
      }
  }
}

}  // namespace tessera
