#include "tools/output_format.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace runnel::tools {
namespace {

TEST(OutputFormatTest, PrintableAsciiIsTextElseHex) {
  EXPECT_TRUE(IsPrintableAscii(""));
  EXPECT_TRUE(IsPrintableAscii(" ~abc"));
  EXPECT_FALSE(IsPrintableAscii("a\n"));
  EXPECT_FALSE(IsPrintableAscii("\x7f"));
  EXPECT_FALSE(IsPrintableAscii("caf\xc3\xa9"));
  EXPECT_EQ(HexString(std::string("\x00\x01\xab\xff", 4)), "0001abff");
}

TEST(OutputFormatTest, TextFormDistinguishesNullEmptyTextAndBinary) {
  EXPECT_EQ(FormatBytesText(std::nullopt), "null");
  EXPECT_EQ(FormatBytesText(""), "\"\"");
  EXPECT_EQ(FormatBytesText("null"), "\"null\"");
  EXPECT_EQ(FormatBytesText("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(FormatBytesText(std::string("\x00\xff", 2)), "0x00ff");
}

TEST(OutputFormatTest, JsonQuoteEscapesControlCharacters) {
  EXPECT_EQ(JsonQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonQuote("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
  EXPECT_EQ(JsonQuote(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(JsonQuote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

TEST(OutputFormatTest, JsonBytesDistinguishesNullEmptyTextAndBinary) {
  EXPECT_EQ(JsonBytes(std::nullopt), "null");
  EXPECT_EQ(JsonBytes(""), "\"\"");
  EXPECT_EQ(JsonBytes("hi"), "\"hi\"");
  EXPECT_EQ(JsonBytes(std::string("\x00", 1)), "{\"hex\":\"00\"}");
}

TEST(OutputFormatTest, JsonObjectBuildsOneObject) {
  EXPECT_EQ(JsonObject().Build(), "{}");
  EXPECT_EQ(JsonObject()
                .Int("i", -5)
                .Uint("u", 18446744073709551615u)
                .Double("d", 2.5)
                .Bool("b", false)
                .String("s", "x\"y")
                .Null("n")
                .Bytes("k", std::nullopt)
                .Raw("a", "[1,2]")
                .Build(),
            "{\"i\":-5,\"u\":18446744073709551615,\"d\":2.5,\"b\":false,"
            "\"s\":\"x\\\"y\",\"n\":null,\"k\":null,\"a\":[1,2]}");
}

}  // namespace
}  // namespace runnel::tools
