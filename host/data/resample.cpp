// Polyphase windowed-sinc resampling (see resample.h for the maths' contract).
#include "host/data/resample.h"

#include <cmath>
#include <cstdint>
#include <numeric>
#include <optional>

#include "host/core/checked_size.h"
#include "host/core/error.h"

namespace tessera {

namespace {

// Modified Bessel function of the first kind, order 0 (power series; converges fast for the
// beta values a Kaiser window uses).
double bessel_i0(double x) {
  double sum = 1, term = 1;
  const double q = x * x / 4;
  for (int k = 1; k < 64; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

struct Kernel {
  double cutoff;  // fraction of the input Nyquist frequency
  int half;       // half-length in input samples
  double beta, i0_beta;
  // The filter at offset u (input samples) from the output position.
  double operator()(double u) const {
    const double r = u / half;
    if (r <= -1 || r >= 1) return 0;
    const double x = cutoff * u;
    const double sinc = std::abs(x) < 1e-12 ? 1.0 : std::sin(M_PI * x) / (M_PI * x);
    return cutoff * sinc * bessel_i0(beta * std::sqrt(1 - r * r)) / i0_beta;
  }
};

}  // namespace

bool resample_rates_supported(int in_rate, int out_rate) {
  return in_rate > 0 && out_rate > 0 && in_rate <= kMaxResampleRatio * out_rate &&
         out_rate <= kMaxResampleRatio * in_rate;
}

std::vector<float> resample(const std::vector<float>& x, int in_rate, int out_rate,
                            const ResampleOptions& o) {
  if (!resample_rates_supported(in_rate, out_rate))
    TESSERA_THROW(Usage, "resample: rates must be positive and within "
                             << kMaxResampleRatio << ":1 of each other (got " << in_rate << " -> "
                             << out_rate << ")");
  if (in_rate == out_rate || x.empty()) return x;
  const int64_t g = std::gcd(in_rate, out_rate);
  const int64_t up = out_rate / g, down = in_rate / g;
  Kernel k;
  k.cutoff = o.rolloff * std::min(1.0, static_cast<double>(out_rate) / in_rate);
  k.half = static_cast<int>(std::ceil(o.zero_crossings / k.cutoff));
  k.beta = o.kaiser_beta;
  k.i0_beta = bessel_i0(o.kaiser_beta);
  const int taps = 2 * k.half;
  const int64_t n_in = static_cast<int64_t>(x.size());
  const std::optional<uint64_t> scaled = checked_mul(x.size(), static_cast<uint64_t>(out_rate));
  TESSERA_CHECK(scaled, "resample: " << x.size() << " samples x " << out_rate << " Hz overflows");
  const int64_t n_out = static_cast<int64_t>((*scaled + in_rate - 1) / in_rate);
  // One row of `taps` weights per phase (the fractional input position phase/up); built only
  // when the table stays small, else each output evaluates its own weights.
  const bool table = up * taps <= (1 << 22);
  std::vector<float> weights;
  if (table) {
    weights.resize(static_cast<size_t>(up * taps));
    for (int64_t p = 0; p < up; ++p) {
      const double frac = static_cast<double>(p) / up;
      for (int j = 0; j < taps; ++j)
        weights[p * taps + j] = static_cast<float>(k(frac + k.half - 1 - j));
    }
  }
  std::vector<float> y(static_cast<size_t>(n_out));
  std::vector<float> row(static_cast<size_t>(taps));
  for (int64_t n = 0; n < n_out; ++n) {
    const int64_t pos = n * down;  // input position x up
    const int64_t k0 = pos / up, phase = pos % up;
    const float* w = nullptr;
    if (table) {
      w = &weights[phase * taps];
    } else {
      const double frac = static_cast<double>(phase) / up;
      for (int j = 0; j < taps; ++j) row[j] = static_cast<float>(k(frac + k.half - 1 - j));
      w = row.data();
    }
    double acc = 0;
    const int64_t first = k0 - k.half + 1;
    for (int j = 0; j < taps; ++j) {
      const int64_t i = first + j;
      if (i >= 0 && i < n_in) acc += static_cast<double>(w[j]) * x[static_cast<size_t>(i)];
    }
    y[static_cast<size_t>(n)] = static_cast<float>(acc);
  }
  return y;
}

}  // namespace tessera
