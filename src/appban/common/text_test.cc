#include "appban/common/text.h"

#include <gtest/gtest.h>

namespace appban {
namespace {

TEST(TextTest, HexFormsUsedInMessages) {
  EXPECT_EQ(HexNumber(0), "0x0");
  EXPECT_EQ(HexNumber(0x1a4), "0x1a4");
  EXPECT_EQ(HexNumber(UINT64_MAX), "0xffffffffffffffff");
  EXPECT_EQ(Hex32(0x0101021b), "0x0101021b");
  EXPECT_EQ(Hex32(UINT32_MAX), "0xffffffff");
}

TEST(TextTest, AsciiLowerLeavesOtherBytesAlone) {
  EXPECT_EQ(AsciiLower("T.AppsFlyer.COM"), "t.appsflyer.com");
  EXPECT_EQ(AsciiLower("\xc3\x89t\xc3\xa9"), "\xc3\x89t\xc3\xa9");
}

TEST(TextTest, EqualsIgnoreCaseFoldsAsciiLettersOnly) {
  EXPECT_TRUE(EqualsIgnoreCase("100-Continue", "100-continue"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_TRUE(EqualsIgnoreCase("ESSENTIAL", "essential"));
  EXPECT_FALSE(EqualsIgnoreCase("yes", "yes "));
  EXPECT_FALSE(EqualsIgnoreCase("yes", "no!"));
  // '@' and '`' sit next to 'A' and 'a'; a sloppy fold (c | 0x20) would equate '@' with '`'.
  EXPECT_FALSE(EqualsIgnoreCase("@", "`"));
  // Bytes outside ASCII compare exactly: "É" and "é" are different here whatever the locale.
  EXPECT_FALSE(EqualsIgnoreCase("\xc3\x89", "\xc3\xa9"));
  EXPECT_TRUE(EqualsIgnoreCase("\xc3\x89T\xc3\x89", "\xc3\x89t\xc3\x89"));
}

TEST(TextTest, NormalizeHexAcceptsKeytoolFormsAndChecksLength) {
  EXPECT_EQ(*NormalizeHex("AB:cd:01", 6, "signer"), "abcd01");
  EXPECT_EQ(*NormalizeHex("abcd01", 6, "signer"), "abcd01");
  auto not_hex = NormalizeHex("ab:zz", 4, "signer");
  EXPECT_EQ(not_hex.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(not_hex.status().message(), "signer \"ab:zz\" is not hexadecimal");
  auto short_hex = NormalizeHex("abcd", 6, "signer");
  EXPECT_EQ(short_hex.status().message(), "signer \"abcd\" has 4 hex digits, expected 6");
}

TEST(TextTest, Utf8ValidityAgreesWithSanitizing) {
  for (std::string_view text : {"", "plain", "\xc3\xa9t\xc3\xa9", "\xf0\x9f\x98\x80", "\x7f"}) {
    EXPECT_TRUE(IsValidUtf8(text)) << text;
    EXPECT_EQ(SanitizeUtf8(text), text);
  }
  for (std::string_view text : {"ok\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    EXPECT_FALSE(IsValidUtf8(text)) << text;
    EXPECT_NE(SanitizeUtf8(text), text);
  }
}

TEST(TextTest, HostileStringsAreMadeSafe) {
  EXPECT_EQ(SanitizeUtf8("ok\xff"), "ok\xef\xbf\xbd");
  EXPECT_EQ(HtmlEscape("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
  EXPECT_EQ(TerminalSafe("red\x1b[31m"), "red?[31m");
  EXPECT_EQ(DumpJson(nlohmann::ordered_json("\xff")), "\"\xef\xbf\xbd\"");
}

}  // namespace
}  // namespace appban
