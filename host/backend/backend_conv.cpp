// Edge checks for the convolution, pooling and batch-normalisation ops (declared in backend.h).
// The *_impl overrides trust what passes here.
#include "host/backend/backend.h"

namespace tessera {

namespace {

void check_f32_here(const Backend& be, const Tensor& t, const char* op, const char* what) {
  TESSERA_CHECK(t.defined(), op << ": " << what << " is undefined");
  TESSERA_CHECK(t.dtype() == DType::F32,
                op << ": " << what << " must be f32, got " << t.describe());
  TESSERA_CHECK(t.device() == be.device(), op << ": " << what << " lives on " << t.device().str()
                                              << " but the backend is " << be.name());
}

// check_f32_here, then that t is `want`.
void check_f32_shape(const Backend& be, const Tensor& t, const Shape& want, const char* op,
                     const char* what) {
  check_f32_here(be, t, op, what);
  TESSERA_CHECK(t.shape() == want, op << ": " << what << " is " << shape_str(t.shape())
                                      << ", expected " << shape_str(want));
}

void check_conv_params(const Conv2dParams& p, const Shape& x, const Shape& w) {
  TESSERA_CHECK(x.size() == 4, "conv2d: x must be [N, C, H, W], got " << shape_str(x));
  TESSERA_CHECK(w.size() == 4, "conv2d: w must be [K, C/groups, R, S], got " << shape_str(w));
  TESSERA_CHECK(p.stride_h >= 1 && p.stride_w >= 1,
                "conv2d: strides must be >= 1, got " << p.stride_h << "x" << p.stride_w);
  TESSERA_CHECK(p.dilation_h >= 1 && p.dilation_w >= 1,
                "conv2d: dilations must be >= 1, got " << p.dilation_h << "x" << p.dilation_w);
  TESSERA_CHECK(p.pad_h >= 0 && p.pad_w >= 0,
                "conv2d: padding must be >= 0, got " << p.pad_h << "x" << p.pad_w);
  TESSERA_CHECK(p.groups >= 1, "conv2d: groups must be >= 1, got " << p.groups);
  TESSERA_CHECK(x[1] % p.groups == 0 && w[0] % p.groups == 0,
                "conv2d: " << p.groups << " groups must divide the input channels " << x[1]
                           << " and the output channels " << w[0]);
  TESSERA_CHECK(w[1] * p.groups == x[1],
                "conv2d: w " << shape_str(w) << " expects " << w[1] * p.groups
                             << " input channels (C/groups = " << w[1] << ", groups " << p.groups
                             << ") but x " << shape_str(x) << " has " << x[1]);
  TESSERA_CHECK(w[2] >= 1 && w[3] >= 1, "conv2d: empty kernel " << shape_str(w));
}

void check_pool_params(const Pool2dParams& p, const Shape& x) {
  TESSERA_CHECK(x.size() == 4, "pool2d: x must be [N, C, H, W], got " << shape_str(x));
  TESSERA_CHECK(p.window_h >= 1 && p.window_w >= 1,
                "pool2d: window must be >= 1, got " << p.window_h << "x" << p.window_w);
  TESSERA_CHECK(p.stride_h >= 1 && p.stride_w >= 1,
                "pool2d: strides must be >= 1, got " << p.stride_h << "x" << p.stride_w);
  TESSERA_CHECK(p.pad_h >= 0 && p.pad_w >= 0 && p.pad_h < p.window_h && p.pad_w < p.window_w,
                "pool2d: padding " << p.pad_h << "x" << p.pad_w << " must be in [0, window "
                                   << p.window_h << "x" << p.window_w << ")");
}

// Channels of a batch-norm input: x [N, C, H, W] or [N, C].
int64_t bn_channels(const Tensor& x) {
  TESSERA_CHECK(x.rank() == 4 || x.rank() == 2,
                "batchnorm: x must be [N, C, H, W] or [N, C], got " << x.describe());
  return x.dim(1);
}

}  // namespace

Shape conv2d_output_shape(const Conv2dParams& p, const Shape& x, const Shape& w) {
  check_conv_params(p, x, w);
  const int64_t ph = conv_out_extent(x[2], w[2], p.stride_h, p.pad_h, p.dilation_h);
  const int64_t qw = conv_out_extent(x[3], w[3], p.stride_w, p.pad_w, p.dilation_w);
  TESSERA_CHECK(ph >= 1 && qw >= 1, "conv2d: kernel "
                                        << w[2] << "x" << w[3] << " (dilation " << p.dilation_h
                                        << "x" << p.dilation_w << ", padding " << p.pad_h << "x"
                                        << p.pad_w << ") does not fit the input " << shape_str(x));
  return {x[0], w[0], ph, qw};
}

Shape pool2d_output_shape(const Pool2dParams& p, const Shape& x) {
  check_pool_params(p, x);
  const int64_t ph = conv_out_extent(x[2], p.window_h, p.stride_h, p.pad_h);
  const int64_t qw = conv_out_extent(x[3], p.window_w, p.stride_w, p.pad_w);
  TESSERA_CHECK(ph >= 1 && qw >= 1, "pool2d: window " << p.window_h << "x" << p.window_w
                                                      << " does not fit the input "
                                                      << shape_str(x));
  return {x[0], x[1], ph, qw};
}

void Backend::conv2d_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                             const Tensor& bias, Tensor& y) {
  const char* op = "conv2d_forward";
  check_f32_here(*this, x, op, "x");
  check_f32_here(*this, w, op, "w");
  check_f32_shape(*this, y, conv2d_output_shape(p, x.shape(), w.shape()), op, "y");
  if (bias.defined()) check_f32_shape(*this, bias, {w.dim(0)}, op, "bias");
  if (x.dim(0) == 0) return;
  conv2d_forward_impl(p, x, w, bias, y);
}

void Backend::conv2d_backward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                              const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias) {
  const char* op = "conv2d_backward";
  check_f32_here(*this, x, op, "x");
  check_f32_here(*this, w, op, "w");
  check_f32_shape(*this, dy, conv2d_output_shape(p, x.shape(), w.shape()), op, "dy");
  check_f32_shape(*this, dw, w.shape(), op, "dw");
  if (dx.defined()) check_f32_shape(*this, dx, x.shape(), op, "dx");
  if (dbias.defined()) check_f32_shape(*this, dbias, {w.dim(0)}, op, "dbias");
  if (x.dim(0) == 0) {  // no samples: zero weight gradients
    fill_impl(dw, 0.f);
    if (dbias.defined()) fill_impl(dbias, 0.f);
    return;
  }
  conv2d_backward_impl(p, x, w, dy, dx, dw, dbias);
}

void Backend::pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y) {
  const char* op = "pool2d_forward";
  check_f32_here(*this, x, op, "x");
  check_f32_shape(*this, y, pool2d_output_shape(p, x.shape()), op, "y");
  if (x.numel() == 0) return;
  pool2d_forward_impl(p, x, y);
}

void Backend::pool2d_backward(const Pool2dParams& p, const Tensor& x, const Tensor& y,
                              const Tensor& dy, Tensor& dx) {
  const char* op = "pool2d_backward";
  check_f32_here(*this, x, op, "x");
  const Shape ys = pool2d_output_shape(p, x.shape());
  check_f32_shape(*this, y, ys, op, "y");
  check_f32_shape(*this, dy, ys, op, "dy");
  check_f32_shape(*this, dx, x.shape(), op, "dx");
  if (x.numel() == 0) return;
  pool2d_backward_impl(p, x, y, dy, dx);
}

void Backend::batchnorm_forward(const BatchNormParams& p, const Tensor& x, const Tensor& gamma,
                                const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                                Tensor& y, Tensor& saved_mean, Tensor& saved_invstd) {
  const char* op = "batchnorm_forward";
  check_f32_here(*this, x, op, "x");
  const int64_t c = bn_channels(x);
  check_f32_shape(*this, y, x.shape(), op, "y");
  for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&gamma, "gamma"},
                                {&beta, "beta"},
                                {&running_mean, "running_mean"},
                                {&running_var, "running_var"}}) {
    check_f32_shape(*this, *t, {c}, op, name);
  }
  TESSERA_CHECK(p.eps > 0.f, op << ": eps must be > 0, got " << p.eps);
  if (p.mode == BatchNormMode::Training) {
    TESSERA_CHECK(p.momentum >= 0.f && p.momentum <= 1.f,
                  op << ": momentum must be in [0, 1], got " << p.momentum);
    check_f32_shape(*this, saved_mean, {c}, op, "saved_mean");
    check_f32_shape(*this, saved_invstd, {c}, op, "saved_invstd");
    const int64_t per_channel = c ? x.numel() / c : 0;
    TESSERA_CHECK(per_channel >= 2, op << ": training needs at least 2 values per channel to "
                                          "estimate a variance, x is "
                                       << x.describe());
  }
  if (x.numel() == 0) return;
  batchnorm_forward_impl(p, x, gamma, beta, running_mean, running_var, y, saved_mean, saved_invstd);
}

void Backend::batchnorm_backward(const BatchNormParams& p, const Tensor& x, const Tensor& dy,
                                 const Tensor& gamma, const Tensor& saved_mean,
                                 const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                                 Tensor& dbeta) {
  const char* op = "batchnorm_backward";
  check_f32_here(*this, x, op, "x");
  const int64_t c = bn_channels(x);
  check_f32_shape(*this, dy, x.shape(), op, "dy");
  check_f32_shape(*this, dx, x.shape(), op, "dx");
  for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&gamma, "gamma"},
                                {&saved_mean, "saved_mean"},
                                {&saved_invstd, "saved_invstd"},
                                {&dgamma, "dgamma"},
                                {&dbeta, "dbeta"}}) {
    check_f32_shape(*this, *t, {c}, op, name);
  }
  if (x.numel() == 0) return;
  batchnorm_backward_impl(p, x, dy, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
}

}  // namespace tessera
