// Prep's parallel pass 1 and its counting tables: the token counters merge exactly, the fit on
// N threads is fit_preprocessor's (one thread, what training fits) byte for byte, and a prepared
// directory is the same, file for file, at 1 and 3 threads (Criteo layout with missing values,
// a hashed column, binned numerics and bad rows); the number parser's integer path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/criteo.h"
#include "host/data/encoded_table.h"
#include "host/data/prepared_writer.h"
#include "host/data/row_parser.h"
#include "host/data/token_index.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

// Criteo-layout rows (tab separated, no header): label, 13 counts (some empty), 26 hex ids drawn
// from skewed vocabularies (some empty), and every `bad_every`-th row with a word for I1.
std::string make_criteo(int rows, uint64_t seed, int bad_every) {
  uint64_t x = seed;
  auto next = [&] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x >> 33;
  };
  std::ostringstream s;
  for (int r = 0; r < rows; ++r) {
    s << next() % 2;
    for (int i = 0; i < kCriteoNumeric; ++i) {
      s << '\t';
      if (i == 0 && bad_every > 0 && r % bad_every == bad_every - 1)
        s << "many";
      else if (next() % 7 != 0)
        s << next() % (i == 3 ? 100000 : 50);
    }
    for (int c = 0; c < kCriteoCategorical; ++c) {
      s << '\t';
      if (next() % 9 == 0) continue;                                // missing
      const uint64_t v = next() % (1 + (next() % (40 + 300 * c)));  // skewed: small ids common
      char hex[9];
      std::snprintf(hex, sizeof hex, "%08llx", static_cast<unsigned long long>(v * 2654435761u));
      s << hex;
    }
    s << '\n';
  }
  return s.str();
}

PreprocessOptions criteo_options() {
  PreprocessOptions o;
  o.categorical.min_count = 2;
  o.categorical_overrides["C3"].hash_buckets = 97;  // a hashed column counts nothing
  o.numeric_overrides["I4"].bins = 8;               // quantile reservoir: order-dependent state
  return o;
}

std::map<std::string, std::string> files_of(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    out[e.path().filename().string()] = read_file(e.path().string());
  return out;
}

TEST(TokenCounter, CountsAddAndMergeExactly) {
  TokenCounter a, b;
  const std::string ab0("ab\0", 3);
  for (const std::string& t : {std::string("x"), std::string("ab"), ab0, std::string(20, 'y')})
    a.add(t, table_hash(t));
  a.add("x", table_hash("x"), 4);
  b.add(std::string(20, 'y'), table_hash(std::string(20, 'y')), 2);
  b.add("new", table_hash("new"));
  a.merge(b);
  ASSERT_EQ(a.size(), 5);
  std::map<std::string, int64_t> got;
  const std::vector<int64_t> n = a.counts();
  for (int64_t id = 0; id < a.size(); ++id) got[std::string(a.token(id))] = n[id];
  const std::map<std::string, int64_t> want = {
      {"x", 5}, {"ab", 1}, {ab0, 1}, {std::string(20, 'y'), 3}, {"new", 1}};
  EXPECT_EQ(got, want);
  // Many tokens: growth keeps every count.
  TokenCounter big;
  for (int rep = 0; rep < 3; ++rep)
    for (int i = 0; i < 5000; ++i) {
      const std::string t = "t" + std::to_string(i);
      big.add(t, table_hash(t));
    }
  ASSERT_EQ(big.size(), 5000);
  for (int64_t c : big.counts()) EXPECT_EQ(c, 3);
}

// The vocabulary's tie order is std::string's (byte-wise) order, also for tokens that differ only
// past 8 bytes, in zero bytes, or in bytes >= 0x80 (the sort compares 8-byte heads first).
TEST(PrepParallel, TiesAreOrderedByTokenBytes) {
  TableSchema schema;
  ColumnSpec cat;
  cat.name = "c";
  cat.type = ColumnType::Categorical;
  schema.columns = {cat};
  PreprocessorFitter fitter(schema, PreprocessOptions{});
  std::vector<std::string> tokens = {"ab",
                                     std::string("ab\0", 3),
                                     "ab\x01",
                                     "a",
                                     "abcdefgh1",
                                     "abcdefgh",
                                     "abcdefgh0",
                                     "\xff",
                                     "b",
                                     "",
                                     "\x80"
                                     "a",
                                     "zz"};
  ParsedRow row;
  for (const std::string& t : tokens) {
    row.categorical = {t};
    fitter.add(row);
  }
  row.categorical = {"zz"};  // one token more frequent than the rest
  fitter.add(row);
  const Preprocessor p = fitter.finish();
  std::sort(tokens.begin(), tokens.end());
  tokens.erase(std::find(tokens.begin(), tokens.end(), "zz"));
  tokens.insert(tokens.begin(), "zz");
  const TokenIndex& vocabulary = p.categorical_columns()[0].vocabulary;
  ASSERT_EQ(vocabulary.size(), static_cast<int64_t>(tokens.size()));
  for (size_t i = 0; i < tokens.size(); ++i)
    EXPECT_EQ(std::string(vocabulary.token(static_cast<int64_t>(i))), tokens[i]) << i;
}

// parse_double's integer path gives strtod's value bit for bit (sign of zero included), and
// everything else still goes through from_chars.
TEST(ParseDouble, IntegersAreStrtodsValues) {
  uint64_t x = 17;
  std::vector<std::string> cases = {"0",
                                    "-0",
                                    "+0",
                                    "007",
                                    "-007",
                                    "+12",
                                    "999999999999999",
                                    "-999999999999999",
                                    "1234567890123456",
                                    "12345678901234567"};
  for (int i = 0; i < 2000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const int digits = 1 + static_cast<int>((x >> 20) % 17);
    std::string t = (x >> 50) % 3 == 0 ? "-" : "";
    for (int d = 0; d < digits; ++d) t += static_cast<char>('0' + (x >> (d * 3 % 40)) % 10);
    cases.push_back(t);
  }
  for (const std::string& t : cases) {
    double got = 1.0;
    ASSERT_TRUE(parse_double(t, got)) << t;
    const double want = std::strtod(t.c_str(), nullptr);
    EXPECT_EQ(std::memcmp(&got, &want, sizeof got), 0) << t << ": " << got << " vs " << want;
  }
  for (const char* bad : {"", "+", "-", "--5", "12a", "1 2", "0x10", "+-", " 1"}) {
    double v = 0;
    EXPECT_FALSE(parse_double(bad, v)) << "'" << bad << "'";
  }
  double v = 0;
  ASSERT_TRUE(parse_double("-1.5e3", v));  // not an integer: from_chars
  EXPECT_EQ(v, -1500.0);
}

TEST(PrepParallel, FitOnAnyThreadCountIsTheSerialFit) {
  TempDir tmp;
  // 40,000 rows: three blocks of records, bad rows in each.
  const FileSpec train{write_file(tmp.file("train.txt"), make_criteo(40000, 3, 997)), 0};
  TableSchema schema = criteo_schema('\t', false);
  schema.on_error = BadRowPolicy::Skip;
  const PreprocessOptions o = criteo_options();
  const std::pair<RowSelection, std::vector<int>> cases[] = {
      {RowSelection{}, {1, 3}}, {RowSelection{SplitPart::Train, 0.25, 11}, {2, 7}}};
  for (const auto& [rows, thread_counts] : cases) {
    BadRowReport serial_bad;
    const std::string want = fit_preprocessor(train, schema, o, rows, &serial_bad).to_json_string();
    EXPECT_GT(serial_bad.skipped, 20);
    for (int threads : thread_counts) {
      BadRowReport bad;
      EXPECT_EQ(fit_preprocessor_threads(train, schema, o, rows, threads, &bad).to_json_string(),
                want)
          << threads << " threads";
      EXPECT_EQ(bad.skipped, serial_bad.skipped);
      EXPECT_EQ(bad.first_reasons, serial_bad.first_reasons);
    }
  }
  // Under on_error "error" the first bad row in file order is raised, as the serial fit does.
  schema.on_error = BadRowPolicy::Error;
  auto error_of = [&](int threads) -> std::string {
    try {
      if (threads == 0)
        fit_preprocessor(train, schema, o);
      else
        fit_preprocessor_threads(train, schema, o, {}, threads);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string serial = error_of(0);
  EXPECT_NE(serial.find(":997:column 2 (I1): expected a number, got 'many'"), std::string::npos)
      << serial;
  EXPECT_EQ(error_of(3), serial);
}

TEST(PrepParallel, ADirectoryIsTheSameFileForFileAtOneAndThreeThreads) {
  TempDir tmp;
  PrepareInputs in;
  in.schema = criteo_schema('\t', false);
  in.schema.on_error = BadRowPolicy::Skip;
  in.options = criteo_options();
  in.train.path = write_file(tmp.file("train.txt"), make_criteo(30000, 5, 1499));
  in.test = FileSpec{write_file(tmp.file("test.txt"), make_criteo(3000, 6, 0)), 0};
  in.validation_fraction = 0.1;
  in.seed = 3;
  PrepareOptions one, three;
  one.threads = 1;
  three.threads = 3;
  one.shard_rows = three.shard_rows = 7000;
  const PrepareResult r1 = prepare_dataset(in, tmp.file("one"), one);
  const PrepareResult r3 = prepare_dataset(in, tmp.file("three"), three);
  EXPECT_EQ(r1.bad_rows, 20);
  EXPECT_EQ(r3.bad_rows, r1.bad_rows);
  EXPECT_EQ(r3.rows, r1.rows);
  const auto a = files_of(tmp.file("one")), b = files_of(tmp.file("three"));
  ASSERT_EQ(a.size(), b.size());
  EXPECT_GE(a.size(), 7u);  // manifest, preprocessor, >= 5 shards
  for (const auto& [name, bytes] : a) {
    ASSERT_EQ(b.count(name), 1u) << name;
    EXPECT_TRUE(b.at(name) == bytes) << name << " differs";
  }
}

}  // namespace
}  // namespace tessera
