#include "pipelines/textclass/text_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>

#include "host/core/error.h"

namespace tessera::textclass {

std::vector<LabelledText> read_labelled_file(const std::string& path, int64_t skip_lines,
                                             int64_t max_rows, ReadStats* stats) {
  std::ifstream in(path, std::ios::binary);
  if (!in) TESSERA_THROW(Io, path << ": cannot open for reading");
  std::vector<LabelledText> rows;
  ReadStats st;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (skip_lines > 0 && n <= skip_lines) {
      st.header_skipped = true;
      continue;
    }
    const size_t tab = line.find('\t');
    if (n == 1 && skip_lines == kAutoHeader && tab != std::string::npos) {
      std::string first = line.substr(0, tab);
      for (char& c : first) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (first == "label") {
        st.header_skipped = true;
        continue;
      }
    }
    if (line.find_first_not_of(" \t") == std::string::npos) {
      ++st.empty_lines;
      continue;
    }
    if (tab == std::string::npos)
      TESSERA_THROW(Data, path << ":" << n << ": expected 'label<TAB>text', found no tab");
    if (tab == 0) TESSERA_THROW(Data, path << ":" << n << ": empty label before the tab");
    rows.push_back({line.substr(0, tab), line.substr(tab + 1), n});
    if (max_rows > 0 && static_cast<int64_t>(rows.size()) >= max_rows) break;
  }
  if (in.bad()) TESSERA_THROW(Io, path << ": read error after line " << n);
  if (rows.empty()) TESSERA_THROW(Data, path << ": no labelled rows (" << n << " lines)");
  if (stats) *stats = st;
  return rows;
}

Split stratified_split(std::vector<LabelledText> rows, double validation_fraction,
                       double test_fraction, uint64_t seed) {
  std::map<std::string, std::vector<size_t>> by_label;
  for (size_t i = 0; i < rows.size(); ++i) by_label[rows[i].label].push_back(i);
  std::vector<int> part(rows.size(), 0);  // 0 train, 1 validation, 2 test
  std::mt19937_64 gen(seed);
  for (auto& [label, idx] : by_label) {
    std::shuffle(idx.begin(), idx.end(), gen);
    const auto n = static_cast<double>(idx.size());
    const auto n_test = static_cast<size_t>(std::llround(n * test_fraction));
    const auto n_val = static_cast<size_t>(std::llround(n * validation_fraction));
    for (size_t k = 0; k < idx.size(); ++k)
      part[idx[k]] = k < n_test ? 2 : k < n_test + n_val ? 1 : 0;
  }
  Split s;
  for (size_t i = 0; i < rows.size(); ++i)
    (part[i] == 0 ? s.train : part[i] == 1 ? s.validation : s.test).push_back(std::move(rows[i]));
  return s;
}

std::vector<Batch> make_batches(const std::vector<Example>& examples, int64_t batch_size,
                                uint64_t shuffle_seed) {
  TESSERA_CHECK(batch_size >= 1, "batch size " << batch_size);
  std::map<size_t, std::vector<int64_t>> by_len;
  for (size_t i = 0; i < examples.size(); ++i)
    by_len[examples[i].ids.size()].push_back(static_cast<int64_t>(i));
  std::mt19937_64 gen(shuffle_seed);
  std::vector<Batch> out;
  for (auto& [len, idx] : by_len) {
    if (shuffle_seed != 0) std::shuffle(idx.begin(), idx.end(), gen);
    for (size_t at = 0; at < idx.size(); at += static_cast<size_t>(batch_size)) {
      Batch b;
      b.t = static_cast<int64_t>(len);
      b.rows.assign(idx.begin() + static_cast<std::ptrdiff_t>(at),
                    idx.begin() + static_cast<std::ptrdiff_t>(
                                      std::min(idx.size(), at + static_cast<size_t>(batch_size))));
      out.push_back(std::move(b));
    }
  }
  if (shuffle_seed != 0) std::shuffle(out.begin(), out.end(), gen);
  return out;
}

Tensor batch_ids(const std::vector<Example>& examples, const Batch& batch) {
  const auto b = static_cast<int64_t>(batch.rows.size());
  Tensor ids = Tensor::host({batch.t * b}, DType::I64);
  int64_t* p = ids.data<int64_t>();
  for (int64_t j = 0; j < b; ++j) {
    const auto& e = examples[static_cast<size_t>(batch.rows[static_cast<size_t>(j)])];
    TESSERA_CHECK(static_cast<int64_t>(e.ids.size()) == batch.t, "bucket length mismatch");
    for (int64_t t = 0; t < batch.t; ++t) p[t * b + j] = e.ids[static_cast<size_t>(t)];
  }
  return ids;
}

Tensor batch_labels(const std::vector<Example>& examples, const Batch& batch) {
  const auto b = static_cast<int64_t>(batch.rows.size());
  Tensor labels = Tensor::host({b}, DType::I32);
  for (int64_t j = 0; j < b; ++j)
    labels.data<int32_t>()[j] =
        examples[static_cast<size_t>(batch.rows[static_cast<size_t>(j)])].label;
  return labels;
}

}  // namespace tessera::textclass
