#include "host/data/criteo.h"

#include <string>
#include <utility>

namespace tessera {

namespace {
ColumnSpec column(std::string name, ColumnType type,
                  NumericTransform transform = NumericTransform::None) {
  ColumnSpec c;
  c.name = std::move(name);
  c.type = type;
  c.transform = transform;
  return c;
}
}  // namespace

TableSchema criteo_schema(char delimiter, bool header) {
  TableSchema s;
  s.format = TableFormat::Criteo;
  s.delimiter = delimiter;
  s.header = header;
  s.trim = false;  // hex tokens and integers carry no padding
  s.missing_tokens = {""};
  s.columns.push_back(column("label", ColumnType::Label));
  for (int i = 1; i <= kCriteoNumeric; ++i)
    s.columns.push_back(
        column("I" + std::to_string(i), ColumnType::Numeric, NumericTransform::Log1p));
  for (int i = 1; i <= kCriteoCategorical; ++i)
    s.columns.push_back(column("C" + std::to_string(i), ColumnType::Categorical));
  return s;
}

}  // namespace tessera
