#include "host/data/stream_encoder.h"

#include <sstream>
#include <string>

#include "host/core/error.h"

namespace tessera {

StreamEncoder::StreamEncoder(const FileSpec& file, const Preprocessor& preprocessor,
                             const StreamOptions& options)
    : pre_(preprocessor),
      options_(options),
      reader_(file, preprocessor.schema()),
      parser_(preprocessor.schema(), options.label),
      stats_(preprocessor.make_stats()) {
  TESSERA_CHECK(options_.chunk_rows > 0,
                "StreamEncoder: chunk_rows must be > 0, got " << options_.chunk_rows);
  if (preprocessor.schema().header) {
    parser_.check_header(reader_.header(), reader_.path(), reader_.header_line());
  }
}

bool StreamEncoder::has_labels() const {
  return parser_.file_has_labels();
}

int64_t StreamEncoder::append_to(EncodedTable& t, int64_t max_rows) {
  TESSERA_CHECK(t.n_dense == pre_.n_dense() && t.n_cat == pre_.n_cat(),
                "StreamEncoder: table widths (" << t.n_dense << ", " << t.n_cat
                                                << ") differ from the preprocessor's ("
                                                << pre_.n_dense() << ", " << pre_.n_cat() << ")");
  int64_t added = 0;
  const size_t nd = static_cast<size_t>(t.n_dense);
  const size_t nc = static_cast<size_t>(t.n_cat);
  while (added < max_rows && !done_) {
    if (!reader_.next(record_)) {
      done_ = true;
      break;
    }
    const int64_t ordinal = records_++;
    if (!options_.rows.selected(ordinal)) continue;
    if (!parser_.parse(record_, row_, &bad_rows_)) continue;
    if (t.rows == 0) t.has_labels = parser_.file_has_labels();
    const size_t r = static_cast<size_t>(t.rows);
    t.dense.resize((r + 1) * nd);
    t.cat.resize((r + 1) * nc);
    const std::string bad =
        pre_.encode(row_, t.dense.data() + r * nd, t.cat.data() + r * nc, &stats_);
    if (!bad.empty()) {  // a value with no float32 encoding: a bad row like a parse error
      t.dense.resize(r * nd);
      t.cat.resize(r * nc);
      std::ostringstream full;
      full << record_.path << ":" << row_.line << ":" << bad;
      if (pre_.schema().on_error == BadRowPolicy::Error)
        throw Error(ErrorKind::Data, full.str(),
                    ErrorLocation{std::string(record_.path), static_cast<int64_t>(row_.line), 0, ""});
      bad_rows_.add(full.str());
      continue;
    }
    if (t.has_labels) t.labels.push_back(row_.label);
    t.lines.push_back(row_.line);
    ++t.rows;
    ++added;
  }
  return added;
}

bool StreamEncoder::next(EncodedTable& chunk) {
  chunk.n_dense = pre_.n_dense();
  chunk.n_cat = pre_.n_cat();
  chunk.clear();
  chunk.has_labels = parser_.file_has_labels();
  append_to(chunk, options_.chunk_rows);
  return chunk.rows > 0;
}

}  // namespace tessera
