// append_json_escaped (host/core/json_escape.h): what quoted text in messages and the scheduler's
// hand-written JSON turn each character into.
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <string>

#include "host/core/json_escape.h"

namespace tessera {
namespace {

std::string escaped(const std::string& s, JsonCarriageReturn cr) {
  std::string out;
  for (char c : s) append_json_escaped(out, c, cr);
  return out;
}

TEST(JsonEscape, QuoteBackslashAndShortForms) {
  for (JsonCarriageReturn cr : {JsonCarriageReturn::Short, JsonCarriageReturn::Unicode}) {
    EXPECT_EQ(escaped("a\"b", cr), "a\\\"b");
    EXPECT_EQ(escaped("a\\b", cr), "a\\\\b");
    EXPECT_EQ(escaped("a\nb\tc", cr), "a\\nb\\tc");
  }
}

TEST(JsonEscape, CarriageReturnInEitherForm) {
  EXPECT_EQ(escaped("a\rb", JsonCarriageReturn::Short), "a\\rb");
  EXPECT_EQ(escaped("a\rb", JsonCarriageReturn::Unicode), "a\\u000db");
}

TEST(JsonEscape, OtherControlCharactersAsUnicode) {
  EXPECT_EQ(escaped(std::string(1, '\0'), JsonCarriageReturn::Short), "\\u0000");
  EXPECT_EQ(escaped("\x01\x1f\b\f", JsonCarriageReturn::Short), "\\u0001\\u001f\\u0008\\u000c");
}

TEST(JsonEscape, EverythingElsePassesThrough) {
  // Printable ASCII, DEL and the bytes of UTF-8 sequences are valid inside a JSON string.
  const std::string s = "plain text 123 {}[]:/\x7f\xc3\xa9\xe2\x82\xac";
  EXPECT_EQ(escaped(s, JsonCarriageReturn::Short), s);
  EXPECT_EQ(escaped(s, JsonCarriageReturn::Unicode), s);
}

TEST(JsonEscape, EveryByteReadsBackAsItself) {
  std::string all;
  for (int c = 1; c < 0x80; ++c) all += static_cast<char>(c);
  for (JsonCarriageReturn cr : {JsonCarriageReturn::Short, JsonCarriageReturn::Unicode}) {
    const std::string text = "\"" + escaped(all, cr) + "\"";
    rapidjson::Document d;
    d.Parse(text.c_str(), text.size());
    ASSERT_FALSE(d.HasParseError()) << text;
    ASSERT_TRUE(d.IsString());
    EXPECT_EQ(std::string(d.GetString(), d.GetStringLength()), all);
  }
}

}  // namespace
}  // namespace tessera
