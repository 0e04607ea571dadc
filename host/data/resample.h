#pragma once
// Band-limited sample-rate conversion: a polyphase windowed-sinc (Kaiser window) filter for the
// rational ratio out/in reduced by their gcd. The low-pass cut-off is `rolloff` x the lower
// Nyquist frequency, so downsampling does not alias; each output sample is the filter centred
// on its exact input position (t = n * in / out), so a tone keeps its frequency. Edges are
// treated as zeros beyond the signal.
//
// The two rates may differ by at most kMaxResampleRatio either way: the filter's length grows
// with the down-sampling ratio and the output with the up-sampling ratio, so the limit bounds
// both the work per sample and the memory (a rate of 1 Hz or 4 GHz read from a file is refused,
// not turned into gigabytes of output or millions of taps per sample).
#include <cstdint>
#include <vector>

namespace tessera {

struct ResampleOptions {
  int zero_crossings = 16;   // filter half-length, in zero crossings of the (lower) cut-off sinc
  double rolloff = 0.94;     // cut-off as a fraction of min(in, out) / 2
  double kaiser_beta = 8.6;  // stop-band attenuation ~ 90 dB
};

constexpr int64_t kMaxResampleRatio = 256;

// Whether resample() accepts these rates: both positive, neither more than kMaxResampleRatio
// times the other.
bool resample_rates_supported(int in_rate, int out_rate);

// Output length: ceil(x.size() * out_rate / in_rate). Equal rates return x unchanged; rates that
// resample_rates_supported refuses are an Error(Usage).
std::vector<float> resample(const std::vector<float>& x, int in_rate, int out_rate,
                            const ResampleOptions& options = {});

}  // namespace tessera
