// Text classification on files that are not label<TAB>text: the data layout options (delimiter,
// header, label_column / text_column by index or header name, strip_markup, on_error), read by
// pipelines/textclass/text_data.h, and through the tessera binary: training on a 3-column file
// with the columns named by its header and markup stripped, evaluate reading a file with the
// model's layout, a bad row named by file:line and field, and on_error "skip" counting it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "pipelines/textclass/text_data.h"
#include "pipelines/textclass/text_tokenizer.h"
#include "tests/support/run_program.h"

namespace tessera::textclass {
namespace {

const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

test::ProgramResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), kBinary);
  return test::run_program(args);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

class TextclassLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/textclass_layout." + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    write_file_atomic(path, text);
    return path;
  }
  std::string dir_;
};

TEST(TextclassMarkup, TagsBecomeSpacesAndEntitiesTheirCharacters) {
  EXPECT_EQ(strip_markup("<p>Fish &amp; chips</p>"), " Fish & chips ");
  EXPECT_EQ(strip_markup("a<br/>b &lt;b&gt; &quot;q&quot; it&#39;s"), "a b <b> \"q\" it's");
  EXPECT_EQ(strip_markup("1 < 2 and no close"), "1 < 2 and no close");
  TokenizerOptions o;
  o.strip_markup = true;
  EXPECT_EQ(tokenize("<b>Good</b>film", o), (std::vector<std::string>{"good", "film"}));
}

TEST_F(TextclassLayout, DefaultLayoutKeepsFurtherTabsInTheText) {
  const std::string p = write("d.tsv", "label\ttext\tmore\npos\tgood\tfilm\n");
  const auto rows = read_labelled_file(p, TextLayout{}, kAutoHeader, 0);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].text, "good\tfilm");
  // With the columns given, the others are ignored.
  TextLayout l;
  l.label_column = ColumnRef{0, ""};
  l.text_column = ColumnRef{1, ""};
  EXPECT_EQ(read_labelled_file(p, l, kAutoHeader, 0)[0].text, "good");
}

TEST_F(TextclassLayout, ColumnsByHeaderNameAndDelimiter) {
  const std::string p = write("c.csv", "id,text,sentiment\n1,great,pos\n2,awful,neg\n");
  TextLayout l;
  l.delimiter = ',';
  l.header = true;
  l.label_column = ColumnRef{0, "sentiment"};
  l.text_column = ColumnRef{0, "text"};
  ReadStats st;
  const auto rows = read_labelled_file(p, l, kAutoHeader, 0, &st);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(st.header_skipped);
  EXPECT_EQ(rows[1].label, "neg");
  EXPECT_EQ(rows[1].text, "awful");
  EXPECT_EQ(rows[1].line, 3);
  l.text_column = ColumnRef{0, "body"};
  const std::string e = error_of([&] { read_labelled_file(p, l, kAutoHeader, 0); });
  EXPECT_NE(e.find(p + ":1: text_column 'body' is not a column of the header"), std::string::npos)
      << e;
}

TEST_F(TextclassLayout, BadRowsNameFileLineAndFieldOrAreSkippedAndCounted) {
  const std::string p = write("b.csv", "pos,1,good\nneg,2\n,3,empty label\npos,4,fine\n");
  TextLayout l;
  l.delimiter = ',';
  l.header = false;
  l.text_column = ColumnRef{2, ""};
  const std::string e = error_of([&] { read_labelled_file(p, l, kAutoHeader, 0); });
  EXPECT_NE(e.find(p + ":2: field 3 (text_column) missing: the row has 2 fields"),
            std::string::npos)
      << e;
  l.on_error = BadRowPolicy::Skip;
  ReadStats st;
  const auto rows = read_labelled_file(p, l, kAutoHeader, 0, &st);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].line, 4);
  EXPECT_EQ(st.bad_rows.skipped, 2);
  ASSERT_EQ(st.bad_rows.first_reasons.size(), 2u);
  EXPECT_NE(st.bad_rows.first_reasons[1].find(":3: field 1 (label_column) is empty"),
            std::string::npos);
}

// A 3-column CSV (id, review with HTML, label) whose words tell the class.
std::string reviews(int n, bool with_bad_row) {
  std::string s = "id,review,label\n";
  for (int i = 0; i < n; ++i) {
    const bool pos = i % 2 == 0;
    s += std::to_string(i) + ",<p>" +
         (pos ? "a <b>great</b> film &amp; fun" : "dull &amp; bad film") + "</p>," +
         (pos ? "pos" : "neg") + "\n";
    if (with_bad_row && i == 5) s += "99,no label column\n";
  }
  return s;
}

TEST_F(TextclassLayout, TrainsThroughTheBinaryOnNamedColumnsWithMarkupStripped) {
  const std::string train = write("train.csv", reviews(60, false));
  const std::string val = write("val.csv", reviews(10, false));
  const std::string config = write("c.json", R"({"task": "textclass", "name": "layout",
    "device": "cpu", "seed": 2,
    "data": {"train": ")" + train + R"(", "validation": ")" +
                                                 val + R"(",
             "delimiter": ",", "header": true, "label_column": "label", "text_column": "review",
             "strip_markup": true},
    "model": {"embedding_dim": 8, "hidden_size": 8},
    "train": {"epochs": 3, "batch_size": 8, "optimizer": {"type": "adam", "lr": 0.05}}})");
  const auto r = cli({"train", config, "--quiet", "--json", "--run-dir", dir_ + "/run"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  // The vocabulary holds words, not tags or entities: <pad>, <oov> and the 7 words of the texts
  // ('a', 'great', 'film', '&', 'fun', 'dull', 'bad').
  EXPECT_NE(r.out.find("\"vocabulary\":9"), std::string::npos) << r.out;
  // evaluate reads a file in the model's layout (header names, delimiter).
  const std::string eval = write("eval.csv", reviews(8, false));
  const auto e = cli({"evaluate", dir_ + "/run/model.tsm", eval, "--json"});
  ASSERT_EQ(e.status, 0) << e.out << e.err;
  EXPECT_NE(e.out.find("\"rows\":8"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("\"accuracy\":1"), std::string::npos) << e.out;

  // A bad row: file:line and the field in the message, exit status 1 ...
  const std::string bad = write("bad.csv", reviews(60, true));
  std::string text = read_file(config);
  text.replace(text.find(train), train.size(), bad);
  const std::string bad_config = write("bad.json", text);
  const auto b = cli({"train", bad_config, "--quiet", "--run-dir", dir_ + "/run-bad"});
  EXPECT_EQ(b.status, 1) << b.out << b.err;
  EXPECT_NE(b.err.find(bad + ":8: field 3 (label_column) missing: the row has 2 fields"),
            std::string::npos)
      << b.err;
  // ... or, under on_error "skip", counted and reported.
  text.replace(text.find("\"strip_markup\": true"), 20,
               "\"strip_markup\": true, \"on_error\": \"skip\"");
  const std::string skip_config = write("skip.json", text);
  const auto s = cli({"train", skip_config, "--quiet", "--json", "--run-dir", dir_ + "/run-skip"});
  ASSERT_EQ(s.status, 0) << s.out << s.err;
  EXPECT_NE(s.out.find("\"bad_rows_skipped\":1"), std::string::npos) << s.out;
}

}  // namespace
}  // namespace tessera::textclass
