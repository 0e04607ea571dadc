#pragma once
// Small helpers every benchmark in bench/ reports with: the median of its repeats and the
// machine's 1-minute load average beside its figures (a busy machine's figures are not a
// quiet one's).
#include <algorithm>
#include <fstream>
#include <vector>

namespace tessera::bench {

// The median of `v` (the mean of the middle two for an even count); `v` must not be empty.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// /proc/loadavg's first field, or -1 where it cannot be read.
inline double loadavg() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  f >> l;
  return l;
}

}  // namespace tessera::bench
