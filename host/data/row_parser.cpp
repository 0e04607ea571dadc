#include "host/data/row_parser.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>

#include "host/core/error.h"
#include "host/data/criteo.h"

namespace tessera {

void BadRowReport::add(std::string reason) {
  ++skipped;
  if (first_reasons.size() < kMaxReasons) first_reasons.push_back(std::move(reason));
}

void BadRowReport::merge(const BadRowReport& other) {
  skipped += other.skipped;
  for (const std::string& r : other.first_reasons) {
    if (first_reasons.size() >= kMaxReasons) break;
    first_reasons.push_back(r);
  }
}

std::string BadRowReport::summary() const {
  if (skipped == 0) return "no bad rows";
  std::ostringstream os;
  os << "skipped " << skipped << " bad row" << (skipped == 1 ? "" : "s") << " (first: ";
  for (size_t i = 0; i < first_reasons.size(); ++i) os << (i ? "; " : "") << first_reasons[i];
  os << ")";
  return os.str();
}

std::string quote_token(std::string_view token) {
  constexpr size_t kMax = 40;
  std::string s = "'";
  s.append(token.substr(0, kMax));
  if (token.size() > kMax) s += "...";
  s += "'";
  return s;
}

bool parse_double(std::string_view token, double& out) {
  const char* b = token.data();
  const char* e = b + token.size();
  if (b != e && *b == '+') ++b;
  if (b == e) return false;
  // Integers of up to 15 digits (Criteo's counts, most numeric CSV columns) are exact doubles:
  // read them digit by digit, which gives from_chars' value without its general path.
  const bool negative = *b == '-';
  const char* d = b + negative;
  if (d != e && e - d <= 15) {
    int64_t v = 0;
    const char* p = d;
    for (; p != e && static_cast<unsigned>(*p - '0') < 10u; ++p) v = v * 10 + (*p - '0');
    if (p == e) {
      out = negative ? -static_cast<double>(v) : static_cast<double>(v);
      return true;
    }
  }
  const std::from_chars_result r = std::from_chars(b, e, out);
  return r.ec == std::errc() && r.ptr == e;
}

TableSchema resolve_schema(const TableSchema& in) {
  TableSchema s = in;
  if (s.format == TableFormat::LibSvm) {
    TESSERA_THROW(Config, "a LibSvm table is read with read_libsvm(), not the delimited reader");
  }
  if (s.format == TableFormat::Criteo && s.columns.empty()) {
    s.columns = criteo_schema(s.delimiter, s.header).columns;
  }
  if (s.delimiter == '"' || s.delimiter == '\n' || s.delimiter == '\r' || s.delimiter == '\0') {
    TESSERA_THROW(Config, "data.delimiter must be a printable separator such as ',' or '\\t'");
  }
  if (s.columns.empty()) TESSERA_THROW(Config, "data.columns is empty: the schema names no column");
  std::set<std::string> names;
  int labels = 0;
  for (size_t i = 0; i < s.columns.size(); ++i) {
    const ColumnSpec& c = s.columns[i];
    if (c.name.empty()) TESSERA_THROW(Config, "data.columns[" << i << "] has no name");
    if (!names.insert(c.name).second) {
      TESSERA_THROW(Config,
                    "data.columns[" << i << "]: column name '" << c.name << "' is used twice");
    }
    if (c.type == ColumnType::Label) ++labels;
    if (c.type != ColumnType::Label && (!c.positive.empty() || !c.negative.empty())) {
      TESSERA_THROW(Config, "data.columns["
                                << i << "] ('" << c.name
                                << "'): positive/negative tokens on a non-label column");
    }
    if (c.type == ColumnType::Label && c.positive.empty() != c.negative.empty()) {
      TESSERA_THROW(Config, "data.columns[" << i << "] ('" << c.name
                                            << "'): give both positive and negative label tokens, "
                                               "or neither (numeric 0/1 label)");
    }
  }
  if (labels > 1) TESSERA_THROW(Config, "data.columns: " << labels << " label columns (at most 1)");
  if (s.on_error != BadRowPolicy::Error && s.on_error != BadRowPolicy::Skip) {
    TESSERA_THROW(Config, "data.on_error: unknown policy");
  }
  return s;
}

RowParser::RowParser(const TableSchema& schema, LabelMode label_mode)
    : schema_(resolve_schema(schema)), label_mode_(label_mode) {
  for (size_t i = 0; i < schema_.columns.size(); ++i) {
    switch (schema_.columns[i].type) {
      case ColumnType::Numeric:
        numeric_fields_.push_back(static_cast<int>(i));
        break;
      case ColumnType::Categorical:
        categorical_fields_.push_back(static_cast<int>(i));
        break;
      case ColumnType::Label:
        label_field_ = static_cast<int>(i);
        break;
      case ColumnType::Ignore:
        break;
    }
  }
  if (label_field_ < 0) {
    presence_ = Presence::Absent;
  } else if (label_mode_ == LabelMode::Required) {
    presence_ = Presence::Present;
  }
}

void RowParser::decide_presence(size_t n_fields) {
  if (presence_ != Presence::Unknown) return;
  const size_t n = schema_.columns.size();
  const bool label_last = label_field_ == static_cast<int>(n) - 1;
  presence_ = (label_last && n_fields + 1 == n) ? Presence::Absent : Presence::Present;
}

void RowParser::check_header(const std::vector<std::string>& header, std::string_view path,
                             int64_t line) {
  decide_presence(header.size());
  const size_t expected =
      schema_.columns.size() - (presence_ == Presence::Absent && label_field_ >= 0);
  if (header.size() != expected) {
    TESSERA_THROW(Data, path << ":" << line << ": header has " << header.size()
                             << " columns, the schema expects " << expected);
  }
  for (size_t i = 0; i < expected; ++i) {
    if (header[i] != schema_.columns[i].name) {
      TESSERA_THROW(Data, path << ":" << line << ":column " << i + 1 << ": header names '"
                               << header[i] << "' but the schema's column " << i + 1 << " is '"
                               << schema_.columns[i].name << "'");
    }
  }
}

bool RowParser::is_missing(std::string_view token) const {
  for (const std::string& m : schema_.missing_tokens) {
    if (token.size() == m.size() && token == m) return true;
  }
  return false;
}

std::string RowParser::parse_fields(const Record& rec, ParsedRow& out) const {
  const std::vector<ColumnSpec>& cols = schema_.columns;
  const bool with_label = presence_ == Presence::Present && label_field_ >= 0;
  const size_t expected = cols.size() - (label_field_ >= 0 && !with_label ? 1 : 0);
  if (rec.fields.size() != expected) {
    std::ostringstream os;
    os << "expected " << expected << " fields, got " << rec.fields.size();
    return os.str();
  }
  auto fail = [&](int field, const std::string& reason) {
    std::ostringstream os;
    os << "column " << field + 1 << " (" << cols[field].name << "): " << reason;
    return os.str();
  };
  out.numeric.resize(numeric_fields_.size());
  out.categorical.resize(categorical_fields_.size());
  for (size_t k = 0; k < numeric_fields_.size(); ++k) {
    const int f = numeric_fields_[k];
    const std::string_view tok = rec.fields[f];
    double v = std::numeric_limits<double>::quiet_NaN();
    if (!is_missing(tok)) {
      if (!parse_double(tok, v)) return fail(f, "expected a number, got " + quote_token(tok));
      if (std::isinf(v)) return fail(f, "expected a finite number, got " + quote_token(tok));
      // A literal "nan" parses to NaN and so reads as missing.
    }
    out.numeric[k] = v;
  }
  for (size_t k = 0; k < categorical_fields_.size(); ++k) {
    const std::string_view tok = rec.fields[categorical_fields_[k]];
    out.categorical[k] = is_missing(tok) ? kMissingCategory : tok;
  }
  out.has_label = with_label;
  out.label = 0.f;
  if (with_label) {
    const ColumnSpec& lc = cols[label_field_];
    const std::string_view tok = rec.fields[label_field_];
    if (!lc.positive.empty()) {
      auto listed = [&](const std::vector<std::string>& tokens) {
        for (const std::string& t : tokens) {
          if (tok == t) return true;
        }
        return false;
      };
      const bool positive = listed(lc.positive);
      const bool found = positive || listed(lc.negative);
      out.label = positive ? 1.f : 0.f;
      if (!found) {
        std::ostringstream os;
        os << "expected one of ";
        for (size_t i = 0; i < lc.positive.size(); ++i)
          os << (i ? ", " : "") << quote_token(lc.positive[i]);
        os << " (label 1) or ";
        for (size_t i = 0; i < lc.negative.size(); ++i)
          os << (i ? ", " : "") << quote_token(lc.negative[i]);
        os << " (label 0), got " << (is_missing(tok) ? "a missing value " : "") << quote_token(tok);
        return fail(label_field_, os.str());
      }
    } else {
      double v = 0;
      if (is_missing(tok)) return fail(label_field_, "missing label " + quote_token(tok));
      if (!parse_double(tok, v) || !std::isfinite(v)) {
        return fail(label_field_,
                    "expected a numeric label (0/1 or -1/+1), got " + quote_token(tok));
      }
      out.label = v > 0.5 ? 1.f : 0.f;
    }
  }
  return std::string();
}

bool RowParser::parse(const Record& rec, ParsedRow& out, BadRowReport* report) {
  decide_presence(rec.fields.size());
  out.line = rec.line;
  std::string reason = parse_fields(rec, out);
  if (reason.empty()) return true;
  std::ostringstream full;
  // Field errors read "path:line:column N (name): ...", record errors "path:line: ...".
  const bool field_error = reason.compare(0, 7, "column ") == 0;
  full << rec.path << ":" << rec.line << (field_error ? ":" : ": ") << reason;
  if (schema_.on_error == BadRowPolicy::Error)
    throw Error(ErrorKind::Data, full.str(),
                ErrorLocation{std::string(rec.path), static_cast<int64_t>(rec.line), 0, ""});
  if (report != nullptr) report->add(full.str());
  return false;
}

}  // namespace tessera
