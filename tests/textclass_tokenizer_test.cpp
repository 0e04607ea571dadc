// Text classification: tokeniser, vocabulary (min-count, <pad>/<oov>), labelled-file reading
// (header, errors with file:line), the stratified split and length bucketing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "pipelines/textclass/text_data.h"
#include "pipelines/textclass/text_tokenizer.h"

namespace {

using namespace tessera::textclass;
using Strings = std::vector<std::string>;

TEST(TextclassTokenizer, LowercasesAndSplitsPunctuation) {
  TokenizerOptions o;
  EXPECT_EQ(tokenize("Hello, World!! It's 2 GOOD...", o),
            (Strings{"hello", ",", "world", "!", "!", "it", "'", "s", "2", "good", ".", ".", "."}));
  o.lowercase = false;
  EXPECT_EQ(tokenize("Ab\tCD\r\n", o), (Strings{"Ab", "CD"}));
  EXPECT_TRUE(tokenize("  \t ", o).empty());
}

TEST(TextclassTokenizer, FoldsDigitsKeepsUtf8AndTruncates) {
  TokenizerOptions o;
  o.fold_digits = true;
  EXPECT_EQ(tokenize("Call 08712 now", o), (Strings{"call", "00000", "now"}));
  EXPECT_EQ(tokenize("cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e", o),
            (Strings{"cr\xc3\xa8me", "br\xc3\xbbl\xc3\xa9e"}));
  o.max_tokens = 3;
  EXPECT_EQ(tokenize("a b , c d e", o), (Strings{"a", "b", ","}));
}

TEST(TextclassVocab, MinCountOrderPadAndOov) {
  const std::vector<Strings> train = {{"b", "a", "a"}, {"c", "a", "b"}, {"d"}};
  const Vocab v = Vocab::build(train, /*min_count=*/2, /*max_size=*/0);
  // <pad>, <oov>, then by frequency (a: 3, b: 2); c and d are below min-count.
  EXPECT_EQ(v.tokens(), (Strings{"<pad>", "<oov>", "a", "b"}));
  EXPECT_EQ(v.id_of("a"), 2);
  EXPECT_EQ(v.id_of("c"), Vocab::kOov);
  EXPECT_EQ(v.id_of("never-seen"), Vocab::kOov);
  EXPECT_EQ(v.id_of("<pad>"), Vocab::kOov);  // a text cannot produce the padding id
  EXPECT_EQ(v.encode({"b", "zzz", "a"}), (std::vector<int32_t>{3, Vocab::kOov, 2}));
  EXPECT_EQ(v.encode({}), (std::vector<int32_t>{Vocab::kPad}));
  // max_size counts the two special entries; ties break in byte order.
  const Vocab small = Vocab::build({{"y", "x", "z"}}, 1, 4);
  EXPECT_EQ(small.tokens(), (Strings{"<pad>", "<oov>", "x", "y"}));
  EXPECT_THROW(Vocab::from_tokens({"a", "b"}), tessera::Error);
  EXPECT_THROW(Vocab::from_tokens({"<pad>", "<oov>", "a", "a"}), tessera::Error);
}

class TextclassFiles : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    const std::string dir = ::testing::TempDir() + "/textclass_tok." + std::to_string(::getpid());
    tessera::make_directories(dir);
    const std::string path = dir + "/" + name;
    tessera::write_file_atomic(path, text);
    return path;
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const tessera::Error& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(TextclassFiles, HeaderAutoDetectionAndCrlf) {
  const std::string p = write("h.tsv", "label\tsentence\r\n1\tgood film\r\n\n0\tbad\tfilm\n");
  ReadStats st;
  const auto rows = read_labelled_file(p, kAutoHeader, 0, &st);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(st.header_skipped);
  EXPECT_EQ(st.empty_lines, 1);
  EXPECT_EQ(rows[0].label, "1");
  EXPECT_EQ(rows[0].text, "good film");
  EXPECT_EQ(rows[0].line, 2);
  EXPECT_EQ(rows[1].text, "bad\tfilm");  // later tabs belong to the text
  EXPECT_EQ(rows[1].line, 4);
  // Without a header nothing is skipped; max_rows limits.
  const std::string q = write("n.tsv", "ham\thi\nspam\twin\nham\tok\n");
  EXPECT_EQ(read_labelled_file(q, kAutoHeader, 0).size(), 3u);
  EXPECT_EQ(read_labelled_file(q, 1, 0).size(), 2u);
  EXPECT_EQ(read_labelled_file(q, 0, 2).size(), 2u);
}

TEST_F(TextclassFiles, BadRowsNameFileAndLine) {
  const std::string p = write("bad.tsv", "ham\thi\nspam no tab here\n");
  const std::string e = error_of([&] { read_labelled_file(p, 0, 0); });
  EXPECT_NE(e.find(p + ":2:"), std::string::npos) << e;
  EXPECT_NE(e.find("no tab"), std::string::npos) << e;
  const std::string q = write("nolabel.tsv", "ham\thi\n\ttext without label\n");
  const std::string e2 = error_of([&] { read_labelled_file(q, 0, 0); });
  EXPECT_NE(e2.find(q + ":2:"), std::string::npos) << e2;
  const std::string r = write("empty.tsv", "label\ttext\n");
  EXPECT_NE(error_of([&] { read_labelled_file(r, kAutoHeader, 0); }).find("no labelled rows"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_labelled_file(r + ".missing", 0, 0); }).find("cannot open"),
            std::string::npos);
}

TEST(TextclassSplit, StratifiedSeededAndDisjoint) {
  std::vector<LabelledText> rows;
  for (int i = 0; i < 1000; ++i)
    rows.push_back({i % 10 == 0 ? "spam" : "ham", std::to_string(i), i + 1});
  const Split a = stratified_split(rows, 0.1, 0.2, 7);
  const Split b = stratified_split(rows, 0.1, 0.2, 7);
  const Split c = stratified_split(rows, 0.1, 0.2, 8);
  auto count = [](const std::vector<LabelledText>& v, const std::string& l) {
    int n = 0;
    for (const auto& r : v) n += r.label == l;
    return n;
  };
  EXPECT_EQ(count(a.test, "spam"), 20);
  EXPECT_EQ(count(a.test, "ham"), 180);
  EXPECT_EQ(count(a.validation, "spam"), 10);
  EXPECT_EQ(count(a.validation, "ham"), 90);
  EXPECT_EQ(a.train.size(), 700u);
  std::set<std::string> seen;
  for (const auto* part : {&a.train, &a.validation, &a.test})
    for (const auto& r : *part) EXPECT_TRUE(seen.insert(r.text).second) << r.text;
  EXPECT_EQ(seen.size(), 1000u);
  ASSERT_EQ(a.test.size(), b.test.size());
  for (size_t i = 0; i < a.test.size(); ++i) EXPECT_EQ(a.test[i].text, b.test[i].text);
  bool differs = false;
  for (size_t i = 0; i < a.test.size(); ++i) differs |= a.test[i].text != c.test[i].text;
  EXPECT_TRUE(differs);
}

TEST(TextclassBuckets, OneLengthPerBatchEveryRowOnce) {
  std::vector<Example> ex;
  for (int i = 0; i < 300; ++i) ex.push_back({std::vector<int32_t>(1 + (i * 7) % 13, i), i % 2});
  for (uint64_t seed : {0ull, 5ull}) {
    const auto batches = make_batches(ex, 16, seed);
    std::multiset<int64_t> rows;
    for (const Batch& b : batches) {
      EXPECT_LE(b.rows.size(), 16u);
      for (int64_t r : b.rows) {
        EXPECT_EQ(static_cast<int64_t>(ex[static_cast<size_t>(r)].ids.size()), b.t);
        rows.insert(r);
      }
    }
    EXPECT_EQ(rows.size(), 300u);
    EXPECT_EQ(std::set<int64_t>(rows.begin(), rows.end()).size(), 300u);
  }
  // Time-major ids: element t * B + j is row j's token t.
  Batch b{3, {4, 30}};
  ex[4].ids = {1, 2, 3};
  ex[30].ids = {7, 8, 9};
  const auto ids = batch_ids(ex, b);
  EXPECT_EQ(std::vector<int64_t>(ids.data<int64_t>(), ids.data<int64_t>() + 6),
            (std::vector<int64_t>{1, 7, 2, 8, 3, 9}));
}

}  // namespace
