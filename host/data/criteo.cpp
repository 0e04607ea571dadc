#include "host/data/criteo.h"

#include <string>

namespace tessera {

TableSchema criteo_schema(char delimiter, bool header) {
  TableSchema s;
  s.format = TableFormat::Criteo;
  s.delimiter = delimiter;
  s.header = header;
  s.trim = false;  // hex tokens and integers carry no padding
  s.missing_tokens = {""};
  ColumnSpec label;
  label.name = "label";
  label.type = ColumnType::Label;
  s.columns.push_back(label);
  for (int i = 1; i <= kCriteoNumeric; ++i) {
    ColumnSpec c;
    c.name = "I" + std::to_string(i);
    c.type = ColumnType::Numeric;
    c.transform = NumericTransform::Log1p;
    s.columns.push_back(c);
  }
  for (int i = 1; i <= kCriteoCategorical; ++i) {
    ColumnSpec c;
    c.name = "C" + std::to_string(i);
    c.type = ColumnType::Categorical;
    s.columns.push_back(c);
  }
  return s;
}

}  // namespace tessera
