#pragma once
// The Criteo Kaggle display-advertising layout: label, 13 integer features I1..I13, 26 hashed
// categorical features C1..C26 (8 hex digits), one record per line. The original files are tab
// separated without a header; derived samples (ctr-format-samples/criteo_sample.txt) use commas
// and a header line "label,I1,...,C26". Empty fields are missing values, and most rows have some.
#include "host/data/schema.h"

namespace tessera {

inline constexpr int kCriteoNumeric = 13;
inline constexpr int kCriteoCategorical = 26;

// Columns: "label" (numeric 0/1 label), "I1".."I13" (numeric, log1p of max(x, 0): the integer
// features are counts with heavy tails; the few negative values clamp to 0), "C1".."C26"
// (categorical). Missing tokens: the empty field only.
TableSchema criteo_schema(char delimiter = '\t', bool header = false);

}  // namespace tessera
