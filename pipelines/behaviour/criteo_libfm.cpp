#include "pipelines/behaviour/criteo_libfm.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <unordered_map>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/buffered_file.h"
#include "host/data/criteo.h"

namespace tessera::behaviour {

namespace {

constexpr int kFields = 1 + kCriteoNumeric + kCriteoCategorical;

// The line's tab-separated fields; an Error(Data) naming file and line when there are not 40.
void split(std::string_view line, const std::string& path, int64_t line_no,
           std::string_view (&out)[kFields]) {
  size_t at = 0;
  for (int f = 0; f < kFields; ++f) {
    const size_t tab = f + 1 < kFields ? line.find('\t', at) : line.size();
    if (tab == std::string_view::npos)
      TESSERA_THROW(Data, path << ":" << line_no << ": " << f + 1
                               << " fields, the Criteo layout has " << kFields);
    out[f] = line.substr(at, tab - at);
    at = tab + 1;
  }
  if (!out[kFields - 1].empty() && out[kFields - 1].back() == '\r')
    out[kFields - 1].remove_suffix(1);
}

using Vocab = std::unordered_map<std::string, int64_t>;

// A count's bucket: 0, 1, 2 as themselves, larger ones by floor(ln(x)^2) (from 4 up), as the
// libFFM Criteo solutions bucket them; negative counts clamp to 0.
int64_t count_bucket(double x) {
  const double v = std::min(std::max(x, 0.0), 1e15);
  if (v <= 2.0) return static_cast<int64_t>(v);
  const double l = std::log(v);
  return 3 + static_cast<int64_t>(l * l);
}

// One row as libFM text.
void write_row(std::string_view (&f)[kFields], std::vector<Vocab>& vocab, bool train,
               int64_t min_count, std::vector<std::unordered_map<std::string, int64_t>>& counts,
               std::vector<int64_t>& max_bucket, std::string& out) {
  out.assign(f[0].empty() ? "0" : std::string(f[0]));
  char buf[64];
  for (int i = 0; i < kCriteoNumeric; ++i) {
    const std::string_view s = f[1 + i];
    if (s.empty()) continue;
    double x = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), x);
    if (r.ec != std::errc() || !std::isfinite(x)) continue;
    const int64_t k = count_bucket(x);
    max_bucket[static_cast<size_t>(i)] = std::max(max_bucket[static_cast<size_t>(i)], k);
    const int n = std::snprintf(buf, sizeof(buf), " %d:%lld:1", i, static_cast<long long>(k));
    out.append(buf, static_cast<size_t>(n));
  }
  for (int j = 0; j < kCriteoCategorical; ++j) {
    const std::string_view s = f[1 + kCriteoNumeric + j];
    if (s.empty()) continue;
    const std::string key(s);
    Vocab& v = vocab[static_cast<size_t>(j)];
    int64_t id = 0;
    auto it = v.find(key);
    if (it != v.end()) {
      id = it->second;
    } else if (train && counts[static_cast<size_t>(j)][key] >= min_count) {
      id = static_cast<int64_t>(v.size()) + 1;
      v.emplace(key, id);
    }
    const int n = std::snprintf(buf, sizeof(buf), " %d:%lld:1", kCriteoNumeric + j,
                                static_cast<long long>(id));
    out.append(buf, static_cast<size_t>(n));
  }
  out.push_back('\n');
}

int64_t convert(const std::string& in, const std::string& out_path, std::vector<Vocab>& vocab,
                bool train, int64_t min_count,
                std::vector<std::unordered_map<std::string, int64_t>>& counts,
                std::vector<int64_t>& max_bucket) {
  LineReader reader(in);
  AtomicFileWriter out(out_path);
  std::string_view line, fields[kFields];
  int64_t line_no = 0, rows = 0;
  std::string text, buffer;
  while (reader.next(line, line_no)) {
    if (line.empty()) continue;
    split(line, in, line_no, fields);
    write_row(fields, vocab, train, min_count, counts, max_bucket, text);
    buffer += text;
    ++rows;
    if (buffer.size() > (1u << 20)) {
      out.write(buffer);
      buffer.clear();
    }
  }
  out.write(buffer);
  out.commit();
  return rows;
}

}  // namespace

LibFmConversion criteo_to_libfm(const std::string& train_in, const std::string& test_in,
                                const std::string& train_out, const std::string& test_out,
                                int64_t min_count) {
  std::vector<std::unordered_map<std::string, int64_t>> counts(kCriteoCategorical);
  {
    LineReader reader(train_in);
    std::string_view line, fields[kFields];
    int64_t line_no = 0;
    while (reader.next(line, line_no)) {
      if (line.empty()) continue;
      split(line, train_in, line_no, fields);
      for (int j = 0; j < kCriteoCategorical; ++j) {
        const std::string_view s = fields[1 + kCriteoNumeric + j];
        if (!s.empty()) ++counts[static_cast<size_t>(j)][std::string(s)];
      }
    }
  }
  std::vector<Vocab> vocab(kCriteoCategorical);
  LibFmConversion r;
  std::vector<int64_t> max_bucket(kCriteoNumeric, 0);
  r.train_rows = convert(train_in, train_out, vocab, true, min_count, counts, max_bucket);
  r.test_rows = convert(test_in, test_out, vocab, false, min_count, counts, max_bucket);
  for (int64_t m : max_bucket) r.field_features.push_back(m + 1);
  for (const Vocab& v : vocab) r.field_features.push_back(static_cast<int64_t>(v.size()) + 1);
  return r;
}

}  // namespace tessera::behaviour
