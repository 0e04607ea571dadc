#pragma once
// Band-limited sample-rate conversion: a polyphase windowed-sinc (Kaiser window) filter for the
// rational ratio out/in reduced by their gcd. The low-pass cut-off is `rolloff` x the lower
// Nyquist frequency, so downsampling does not alias; each output sample is the filter centred
// on its exact input position (t = n * in / out), so a tone keeps its frequency. Edges are
// treated as zeros beyond the signal.
#include <vector>

namespace tessera {

struct ResampleOptions {
  int zero_crossings = 16;   // filter half-length, in zero crossings of the (lower) cut-off sinc
  double rolloff = 0.94;     // cut-off as a fraction of min(in, out) / 2
  double kaiser_beta = 8.6;  // stop-band attenuation ~ 90 dB
};

// Output length: ceil(x.size() * out_rate / in_rate). Equal rates return x unchanged.
std::vector<float> resample(const std::vector<float>& x, int in_rate, int out_rate,
                            const ResampleOptions& options = {});

}  // namespace tessera
