#include "host/data/record_reader.h"

#include <cstring>
#include <utility>

#include "host/core/error.h"

namespace tessera {

namespace {

enum class State : uint8_t {
  FieldStart,   // before the first byte of a field (leading whitespace is skipped here)
  Unquoted,     // inside an unquoted field
  Quoted,       // inside quotes
  QuoteSeen,    // a '"' inside quotes: either "" (escaped quote) or the closing quote
  AfterQuoted,  // after the closing quote, before the delimiter
};

struct Bounds {
  size_t begin;
  size_t end;
};

}  // namespace

struct RecordReader::Impl {
  BufferedFile file;
  char delim;
  bool trim;
  std::vector<Bounds> bounds;  // fields of the current record, offsets from file.data()
  std::vector<std::string> header;
  int64_t header_line = 0;
  int64_t next_line = 1;       // physical line number of the next unread byte
  size_t pending_consume = 0;  // bytes of the record last returned
  int64_t records = 0;

  Impl(const FileSpec& spec, const TableSchema& schema, BufferedFileOptions options)
      : file(spec.path, options), delim(schema.delimiter), trim(schema.trim) {
    if (delim == '"' || delim == '\n' || delim == '\r') {
      TESSERA_THROW(Config, "delimiter " << (delim == '"' ? "'\"'" : "newline")
                                         << " is not allowed (reading " << spec.path << ")");
    }
    skip_bom();
    skip_lines(spec.skip_lines);
    if (schema.header) {
      int64_t line = 0;
      bool blank = true;
      while (read_record(line, blank) && blank) {
      }
      if (!blank) {
        header_line = line;
        for (const Bounds& b : bounds) header.emplace_back(file.data() + b.begin, b.end - b.begin);
      }
    }
  }

  bool is_space(char c) const { return (c == ' ' || c == '\t' || c == '\r') && c != delim; }

  void skip_bom() {
    while (file.available() < 3) {
      if (file.refill() != BufferedFile::Refill::Ok) break;
    }
    if (file.available() >= 3 && std::memcmp(file.data(), "\xEF\xBB\xBF", 3) == 0) file.consume(3);
  }

  void skip_lines(int n) {
    for (int i = 0; i < n; ++i) {
      size_t scanned = 0;
      for (;;) {
        const size_t avail = file.available();
        const void* nl =
            scanned < avail ? std::memchr(file.data() + scanned, '\n', avail - scanned) : nullptr;
        if (nl != nullptr) {
          file.consume(static_cast<const char*>(nl) - file.data() + 1);
          ++next_line;
          break;
        }
        scanned = avail;
        const BufferedFile::Refill r = file.refill();
        if (r == BufferedFile::Refill::Full) {
          TESSERA_THROW(Data, file.path() << ":" << next_line << ": line longer than "
                                          << file.max_window() << " bytes");
        }
        if (r == BufferedFile::Refill::Eof) {
          file.consume(file.available());
          return;
        }
      }
    }
  }

  // Reads one record into `bounds` (unescaping in place). Returns false at the end of the file.
  // `blank`: the record held nothing but whitespace.
  bool read_record(int64_t& line, bool& blank) {
    file.consume(pending_consume);
    pending_consume = 0;
    bounds.clear();
    line = next_line;
    size_t r = 0;   // read offset from file.data()
    size_t w = 0;   // write offset (<= r): unescaped bytes of the current record
    size_t fb = 0;  // begin of the current field
    State st = State::FieldStart;
    bool content = false;
    int64_t newlines = 0;
    auto emit_unquoted = [&](size_t end, char* p) {
      if (trim) {
        while (end > fb && is_space(p[end - 1])) --end;
      }
      bounds.push_back({fb, end});
    };
    for (;;) {
      if (r == file.available()) {
        const BufferedFile::Refill res = file.refill();
        if (res == BufferedFile::Refill::Full) {
          TESSERA_THROW(Data, file.path()
                                  << ":" << line << ": record longer than " << file.max_window()
                                  << " bytes (is a quoted field left open?)");
        }
        if (res == BufferedFile::Refill::Eof) break;
      }
      char* p = file.data();
      const size_t n = file.available();
      while (r < n) {
        const char c = p[r++];
        switch (st) {
          case State::FieldStart:
            if (c == delim) {
              content = true;
              bounds.push_back({w, w});
            } else if (c == '\n') {
              ++newlines;
              if (content) bounds.push_back({w, w});
              goto done;
            } else if (c == '"') {
              content = true;
              fb = w;
              st = State::Quoted;
            } else if (trim && is_space(c)) {
              // leading whitespace
            } else {
              if (!is_space(c)) content = true;
              fb = w;
              p[w++] = c;
              st = State::Unquoted;
            }
            break;
          case State::Unquoted:
            if (c == delim) {
              emit_unquoted(w, p);
              st = State::FieldStart;
            } else if (c == '\n') {
              ++newlines;
              size_t end = w;
              if (end > fb && p[end - 1] == '\r') --end;
              emit_unquoted(end, p);
              goto done;
            } else {
              if (!is_space(c)) content = true;
              p[w++] = c;
            }
            break;
          case State::Quoted:
            if (c == '"') {
              st = State::QuoteSeen;
            } else {
              if (c == '\n') ++newlines;
              p[w++] = c;
            }
            break;
          case State::QuoteSeen:
            if (c == '"') {
              p[w++] = '"';
              st = State::Quoted;
              break;
            }
            st = State::AfterQuoted;
            [[fallthrough]];
          case State::AfterQuoted:
            if (c == delim) {
              bounds.push_back({fb, w});
              st = State::FieldStart;
            } else if (c == '\n') {
              ++newlines;
              bounds.push_back({fb, w});
              goto done;
            } else if ((trim && is_space(c)) || c == '\r') {
              // whitespace after the closing quote
            } else {
              p[w++] = c;  // lenient: text after the closing quote is kept
            }
            break;
        }
      }
    }
    // End of file without a final newline.
    if (r == 0) {
      blank = true;
      return false;
    }
    switch (st) {
      case State::FieldStart:
        if (content) bounds.push_back({w, w});
        break;
      case State::Unquoted: {
        size_t end = w;
        if (end > fb && file.data()[end - 1] == '\r') --end;
        emit_unquoted(end, file.data());
        break;
      }
      case State::Quoted:
        TESSERA_THROW(Data, file.path() << ":" << line
                                        << ": quoted field not closed before the end of the file");
      case State::QuoteSeen:
      case State::AfterQuoted:
        bounds.push_back({fb, w});
        break;
    }
  done:
    pending_consume = r;
    next_line += newlines;
    blank = !content;
    return true;
  }
};

RecordReader::RecordReader(const FileSpec& file, const TableSchema& schema,
                           BufferedFileOptions options)
    : impl_(std::make_unique<Impl>(file, schema, options)) {}
RecordReader::~RecordReader() = default;
RecordReader::RecordReader(RecordReader&&) noexcept = default;
RecordReader& RecordReader::operator=(RecordReader&&) noexcept = default;

bool RecordReader::next(Record& out) {
  Impl& m = *impl_;
  int64_t line = 0;
  bool blank = true;
  for (;;) {
    if (!m.read_record(line, blank)) return false;
    if (!blank) break;
  }
  out.fields.resize(m.bounds.size());
  const char* base = m.file.data();
  for (size_t i = 0; i < m.bounds.size(); ++i) {
    out.fields[i] = std::string_view(base + m.bounds[i].begin, m.bounds[i].end - m.bounds[i].begin);
  }
  out.line = line;
  out.path = m.file.path();
  ++m.records;
  return true;
}

const std::vector<std::string>& RecordReader::header() const {
  return impl_->header;
}
int64_t RecordReader::header_line() const {
  return impl_->header_line;
}
const std::string& RecordReader::path() const {
  return impl_->file.path();
}
int64_t RecordReader::records_read() const {
  return impl_->records;
}

}  // namespace tessera
