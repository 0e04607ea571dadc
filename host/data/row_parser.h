#pragma once
// RowParser: turns a Record into typed values per TableSchema, and applies the bad-row policy.
//
//   numeric      missing token -> NaN (imputed later by the Preprocessor); non-numeric text or
//                +-inf -> bad row "path:line:column N (name): expected a number, got 'xyz'".
//                Values are kept raw here (no transform).
//   categorical  the token itself; a missing token -> kMissingCategory (its own category).
//   label        token lists (ColumnSpec::positive / negative, exact match) or, when both are
//                empty, a number (> 0.5 is positive, so 0/1 and -1/+1 both work); a missing or
//                unknown label is a bad row naming the accepted tokens.
//   ignore       skipped.
// A record with the wrong number of fields is a bad row "path:line: expected 15 fields, got 14".
// BadRowPolicy::Error throws tessera::Error(Data, "path:line:column N (name): reason");
// BadRowPolicy::Skip counts the row in a BadRowReport and keeps the first reasons.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/data/record_reader.h"
#include "host/data/schema.h"

namespace tessera {

// The token a missing categorical value becomes. Starts with the ASCII unit separator (0x1F),
// which does not occur in real text tokens, so it cannot collide with a real category.
inline constexpr std::string_view kMissingCategory = "\x1f<missing>";

struct BadRowReport {
  static constexpr size_t kMaxReasons = 5;
  int64_t skipped = 0;
  std::vector<std::string> first_reasons;  // the first kMaxReasons, "path:line:...: reason"

  void add(std::string reason);
  void merge(const BadRowReport& other);
  // "skipped 3 bad rows (first: ...; ...)" or "no bad rows".
  std::string summary() const;
};

// Checks a schema (names unique and non-empty, at most one label, a usable delimiter, ...) and
// returns it with implied parts filled in (the Criteo column list when `format` is Criteo and no
// columns are given). Throws ErrorKind::Config naming the problem.
TableSchema resolve_schema(const TableSchema& schema);

struct ParsedRow {
  std::vector<double> numeric;                // [n_numeric] raw values; NaN = missing
  std::vector<std::string_view> categorical;  // [n_categorical]; valid while the Record is
  float label = 0.f;
  bool has_label = false;
  int64_t line = 0;
};

class RowParser {
 public:
  // `schema` is resolved (resolve_schema) by the constructor.
  explicit RowParser(const TableSchema& schema, LabelMode label_mode = LabelMode::Required);

  // Checks header names against the schema's column names (and, in LabelMode::Optional, decides
  // from the header's width whether the file carries the label). Throws ErrorKind::Data.
  void check_header(const std::vector<std::string>& header, std::string_view path, int64_t line);

  // Parses one record. Returns false when the row is bad and the policy is Skip (the reason is
  // added to `report`, which may be null); throws under BadRowPolicy::Error.
  bool parse(const Record& record, ParsedRow& out, BadRowReport* report);

  const TableSchema& schema() const { return schema_; }
  const std::vector<int>& numeric_fields() const { return numeric_fields_; }
  const std::vector<int>& categorical_fields() const { return categorical_fields_; }
  int label_field() const { return label_field_; }
  int n_numeric() const { return static_cast<int>(numeric_fields_.size()); }
  int n_categorical() const { return static_cast<int>(categorical_fields_.size()); }
  // False until a record has been seen in LabelMode::Optional, then whether the file has labels.
  bool file_has_labels() const { return presence_ == Presence::Present; }

 private:
  enum class Presence : uint8_t { Unknown, Present, Absent };
  bool is_missing(std::string_view token) const;
  // Returns an empty string on success, else the reason (without the "path:line:" prefix).
  std::string parse_fields(const Record& record, ParsedRow& out) const;
  void decide_presence(size_t n_fields);

  TableSchema schema_;
  LabelMode label_mode_;
  Presence presence_ = Presence::Unknown;
  std::vector<int> numeric_fields_;
  std::vector<int> categorical_fields_;
  int label_field_ = -1;
};

// A token quoted for a message, cut to 40 characters.
std::string quote_token(std::string_view token);
// Parses a whole token as a double (optional leading '+'); false when it is not one number.
bool parse_double(std::string_view token, double& out);

}  // namespace tessera
