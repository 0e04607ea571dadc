#include "pipelines/textclass/text_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>

#include "host/core/error.h"

namespace tessera::textclass {

namespace {

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> split_fields(const std::string& line, char delimiter) {
  std::vector<std::string> out;
  size_t at = 0;
  for (;;) {
    const size_t next = line.find(delimiter, at);
    out.push_back(line.substr(at, next == std::string::npos ? std::string::npos : next - at));
    if (next == std::string::npos) return out;
    at = next + 1;
  }
}

std::string delimiter_name(char d) {
  return d == '\t' ? "tab" : std::string("'") + d + "'";
}

// A layout's columns as indices (names looked up in the header's fields).
struct Columns {
  size_t label = 0, text = 1;
};

size_t column_index(const std::optional<ColumnRef>& ref, size_t fallback,
                    const std::vector<std::string>* header, const char* key,
                    const std::string& path, int64_t line) {
  if (!ref) return fallback;
  if (ref->name.empty()) return static_cast<size_t>(ref->index);
  if (!header) return fallback;  // a name: resolved when the header line is read
  for (size_t i = 0; i < header->size(); ++i)
    if ((*header)[i] == ref->name) return i;
  std::string names;
  for (const std::string& h : *header) names += (names.empty() ? "'" : ", '") + h + "'";
  TESSERA_THROW(Data, path << ":" << line << ": " << key << " '" << ref->name
                           << "' is not a column of the header (" << names << ")");
}

// One row's label and text, or the reason it is bad.
bool parse_row(const std::string& line, const TextLayout& layout, const Columns& cols,
               LabelledText& row, std::string& why) {
  const char d = layout.delimiter;
  if (layout.rest_is_text()) {
    const size_t at = line.find(d);
    if (at == std::string::npos) {
      why = d == '\t'
                ? "expected 'label<TAB>text', found no tab"
                : "expected 'label" + std::string(1, d) + "text', found no " + delimiter_name(d);
      return false;
    }
    if (at == 0) {
      why = "empty label before the " + delimiter_name(d);
      return false;
    }
    row.label = line.substr(0, at);
    row.text = line.substr(at + 1);
    return true;
  }
  const std::vector<std::string> f = split_fields(line, d);
  const size_t need = std::max(cols.label, cols.text) + 1;
  if (f.size() < need) {
    const bool label_missing = cols.label >= f.size();
    why = "field " + std::to_string((label_missing ? cols.label : cols.text) + 1) + " (" +
          (label_missing ? "label_column" : "text_column") + ") missing: the row has " +
          std::to_string(f.size()) + " field" + (f.size() == 1 ? "" : "s") + " split at " +
          delimiter_name(d);
    return false;
  }
  if (f[cols.label].empty()) {
    why = "field " + std::to_string(cols.label + 1) + " (label_column) is empty";
    return false;
  }
  row.label = f[cols.label];
  row.text = f[cols.text];
  return true;
}

}  // namespace

std::vector<LabelledText> read_labelled_file(const std::string& path, int64_t skip_lines,
                                             int64_t max_rows, ReadStats* stats) {
  return read_labelled_file(path, TextLayout{}, skip_lines, max_rows, stats);
}

std::vector<LabelledText> read_labelled_file(const std::string& path, const TextLayout& layout,
                                             int64_t skip_lines, int64_t max_rows,
                                             ReadStats* stats) {
  std::ifstream in(path, std::ios::binary);
  if (!in) TESSERA_THROW(Io, path << ": cannot open for reading");
  std::vector<LabelledText> rows;
  ReadStats st;
  std::string line;
  int64_t n = 0;
  const int64_t skip = std::max<int64_t>(skip_lines, 0);
  // Auto header: only without a `header` setting, and only when skip_lines is auto.
  const bool auto_header = !layout.header && skip_lines == kAutoHeader;
  bool header_pending = layout.header.value_or(false);
  Columns cols{column_index(layout.label_column, 0, nullptr, "label_column", path, 0),
               column_index(layout.text_column, 1, nullptr, "text_column", path, 0)};
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (n <= skip) {
      st.header_skipped = true;
      continue;
    }
    if (header_pending) {
      header_pending = false;
      st.header_skipped = true;
      const std::vector<std::string> names = split_fields(line, layout.delimiter);
      cols = {column_index(layout.label_column, 0, &names, "label_column", path, n),
              column_index(layout.text_column, 1, &names, "text_column", path, n)};
      continue;
    }
    if (n == 1 && auto_header) {
      LabelledText first;
      std::string why;
      if (parse_row(line, layout, cols, first, why) && lowercase(first.label) == "label") {
        st.header_skipped = true;
        continue;
      }
    }
    if (line.find_first_not_of(" \t") == std::string::npos) {
      ++st.empty_lines;
      continue;
    }
    LabelledText row;
    row.line = n;
    std::string why;
    if (!parse_row(line, layout, cols, row, why)) {
      if (layout.on_error == BadRowPolicy::Error)
        TESSERA_THROW(Data, path << ":" << n << ": " << why);
      st.bad_rows.add(path + ":" + std::to_string(n) + ": " + why);
      continue;
    }
    rows.push_back(std::move(row));
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
