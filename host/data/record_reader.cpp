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

// The current record's fields: a vector that only grows, so that adding one is a compare and a
// store inlined into the per-byte scan (std::vector::emplace_back stayed a call: ~5% of prep).
class FieldList {
 public:
  void clear() { n_ = 0; }
  size_t size() const { return n_; }
  const Bounds& operator[](size_t i) const { return v_[i]; }
  const Bounds* begin() const { return v_.data(); }
  const Bounds* end() const { return v_.data() + n_; }
  void push_back(Bounds b) {
    if (n_ == v_.size()) v_.resize(2 * n_ + 16);
    v_[n_++] = b;
  }

 private:
  std::vector<Bounds> v_;
  size_t n_ = 0;
};

// Where the scan of one record stands: offsets from the window's start and the parser's state.
struct Scan {
  size_t w = 0;   // write offset (<= the read offset): unescaped bytes of the current record
  size_t fb = 0;  // begin of the current field
  State st = State::FieldStart;
  bool content = false;  // anything but whitespace seen (a delimiter or quote counts)
  int64_t newlines = 0;  // physical lines the record spans so far
};

}  // namespace

struct RecordReader::Impl {
  BufferedFile file;
  char delim;
  bool trim;
  FieldList bounds;  // fields of the current record, offsets from file.data()
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
    if (!spec.range.whole()) {  // FileSpec::range: that part's records, numbered from its line
      file.consume(pending_consume);
      pending_consume = 0;
      file.restrict_to(spec.range);
      if (spec.range.begin > 0) next_line = spec.range.first_line;
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

  // An unquoted field ends at `end` (before trailing whitespace when trimming).
  void emit_unquoted(size_t fb, size_t end, const char* p) {
    if (trim) {
      while (end > fb && is_space(p[end - 1])) --end;
    }
    bounds.push_back({fb, end});
  }

  // Feeds byte `c` of the window `p` to the parser, writing the unescaped field bytes back into
  // `p` at sc.w. Returns true at the newline that ends the record. Called per byte of every
  // record: kept in this translation unit, inline, with nothing allocated but `bounds`.
  __attribute__((always_inline)) inline bool scan_byte(char c, char* p, Scan& sc) {
    switch (sc.st) {
      case State::FieldStart:
        if (c == delim) {
          sc.content = true;
          bounds.push_back({sc.w, sc.w});
        } else if (c == '\n') {
          ++sc.newlines;
          if (sc.content) bounds.push_back({sc.w, sc.w});
          return true;
        } else if (c == '"') {
          sc.content = true;
          sc.fb = sc.w;
          sc.st = State::Quoted;
        } else if (trim && is_space(c)) {
          // leading whitespace
        } else {
          if (!is_space(c)) sc.content = true;
          sc.fb = sc.w;
          p[sc.w++] = c;
          sc.st = State::Unquoted;
        }
        return false;
      case State::Unquoted:
        if (c == delim) {
          emit_unquoted(sc.fb, sc.w, p);
          sc.st = State::FieldStart;
        } else if (c == '\n') {
          ++sc.newlines;
          size_t end = sc.w;
          if (end > sc.fb && p[end - 1] == '\r') --end;
          emit_unquoted(sc.fb, end, p);
          return true;
        } else {
          if (!is_space(c)) sc.content = true;
          p[sc.w++] = c;
        }
        return false;
      case State::Quoted:
        if (c == '"') {
          sc.st = State::QuoteSeen;
        } else {
          if (c == '\n') ++sc.newlines;
          p[sc.w++] = c;
        }
        return false;
      case State::QuoteSeen:
        if (c == '"') {
          p[sc.w++] = '"';
          sc.st = State::Quoted;
          return false;
        }
        sc.st = State::AfterQuoted;
        [[fallthrough]];
      case State::AfterQuoted:
        if (c == delim) {
          bounds.push_back({sc.fb, sc.w});
          sc.st = State::FieldStart;
        } else if (c == '\n') {
          ++sc.newlines;
          bounds.push_back({sc.fb, sc.w});
          return true;
        } else if ((trim && is_space(c)) || c == '\r') {
          // whitespace after the closing quote
        } else {
          p[sc.w++] = c;  // lenient: text after the closing quote is kept
        }
        return false;
    }
    return false;
  }

  // Inside an unquoted field, the bytes before the next delimiter or newline (from `r`, below
  // `n`) are the field's whatever they are: moved as one block (not at all while nothing has
  // been unescaped before them) rather than fed to scan_byte one by one. Returns where it stopped.
  size_t scan_unquoted_run(char* p, size_t r, size_t n, Scan& sc) const {
    const size_t start = r;
    while (r < n && p[r] != delim && p[r] != '\n') ++r;
    const size_t len = r - start;
    if (len == 0) return r;
    if (!sc.content)
      for (size_t i = start; i < r && !sc.content; ++i) sc.content = !is_space(p[i]);
    if (sc.w != start) std::memmove(p + sc.w, p + start, len);
    sc.w += len;
    return r;
  }

  // The file ended inside a record that no newline closes: its last field ends here.
  void end_at_eof(const Scan& sc, int64_t line) {
    switch (sc.st) {
      case State::FieldStart:
        if (sc.content) bounds.push_back({sc.w, sc.w});
        break;
      case State::Unquoted: {
        size_t end = sc.w;
        if (end > sc.fb && file.data()[end - 1] == '\r') --end;
        emit_unquoted(sc.fb, end, file.data());
        break;
      }
      case State::Quoted:
        TESSERA_THROW(Data, file.path() << ":" << line
                                        << ": quoted field not closed before the end of the file");
      case State::QuoteSeen:
      case State::AfterQuoted:
        bounds.push_back({sc.fb, sc.w});
        break;
    }
  }

  // Reads one record into `bounds` (unescaping in place). Returns false at the end of the file.
  // `blank`: the record held nothing but whitespace.
  bool read_record(int64_t& line, bool& blank) {
    file.consume(pending_consume);
    pending_consume = 0;
    bounds.clear();
    line = next_line;
    size_t r = 0;  // read offset from file.data()
    Scan sc;
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
        if (sc.st == State::Unquoted) r = scan_unquoted_run(p, r, n, sc);
        if (r < n && scan_byte(p[r++], p, sc)) goto done;
      }
    }
    // End of file without a final newline.
    if (r == 0) {
      blank = true;
      return false;
    }
    end_at_eof(sc, line);
  done:
    pending_consume = r;
    next_line += sc.newlines;
    blank = !sc.content;
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
