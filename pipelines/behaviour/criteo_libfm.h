#pragma once
// Criteo-layout text (host/data/criteo.h: label, 13 integer features, 26 categorical, tab
// separated, no header) rewritten as libFM rows with fields (host/data/libsvm.h), so the same
// click data can be trained from either format (bench/sparse_input_bench.cpp compares them):
//   field i (0..12)   integer feature I(i+1): one entry "i:k:1", k its bucket (0, 1, 2 as
//                     themselves, larger counts 3 + floor(ln(x)^2), as the libFFM Criteo
//                     solutions bucket them; negative counts clamp to 0); none when missing;
//   field 13 + j      categorical C(j+1): "13+j:k:1", k >= 1 the value's index among those seen
//                     at least min_count times on train (in order of first sight), 0 for a rarer
//                     or unseen one; none when missing.
// The vocabulary is fitted on train only (held in memory: one entry per distinct value), and
// both files are streamed.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::behaviour {

struct LibFmConversion {
  int64_t train_rows = 0, test_rows = 0;
  std::vector<int64_t> field_features;  // [39] rows of each field's table
};

LibFmConversion criteo_to_libfm(const std::string& train_in, const std::string& test_in,
                                const std::string& train_out, const std::string& test_out,
                                int64_t min_count = 2);

}  // namespace tessera::behaviour
