#include "appban/assess/pattern.h"

#include <gtest/gtest.h>

namespace appban::assess {
namespace {

bool Matches(std::string_view pattern, std::string_view text) {
  auto compiled = SignaturePattern::Compile(pattern);
  EXPECT_TRUE(compiled.ok()) << pattern << ": " << compiled.status().ToString();
  return compiled.ok() && compiled->Search(text);
}

TEST(SignaturePattern, SearchesLikeARegexAnywhereInTheText) {
  EXPECT_TRUE(Matches("krxd.net", "cdn.krxd.net"));
  EXPECT_TRUE(Matches("krxd.net", "krxdXnet"));  // '.' is any character in a regex
  EXPECT_FALSE(Matches("krxd.net", "krxd.ne"));
}

TEST(SignaturePattern, QuantifiersClassesAndAnchors) {
  EXPECT_TRUE(Matches("mst[0-9]*.is.autonavi.com", "mst12.is.autonavi.com"));
  EXPECT_TRUE(Matches("mst[0-9]*.is.autonavi.com", "mst.is.autonavi.com"));
  EXPECT_FALSE(Matches("^mst[0-9]+x", "mstx"));
  EXPECT_TRUE(Matches("^mst[0-9]+x", "mst7x"));
  EXPECT_FALSE(Matches("^ads", "xads"));
  EXPECT_TRUE(Matches("ads$", "xads"));
  EXPECT_FALSE(Matches("ads$", "adsx"));
  EXPECT_TRUE(Matches("colou?r", "color"));
  EXPECT_TRUE(Matches("[^a-z]9", "A9"));
  EXPECT_FALSE(Matches("[^a-z]9", "a9"));
  EXPECT_TRUE(Matches("\\d\\d\\.x", "a42.x"));
  EXPECT_FALSE(Matches("\\d\\d\\.x", "a42zx"));  // an escaped dot is literal
  EXPECT_TRUE(Matches(".*.estimote.com", "cloud.estimote.com"));
}

TEST(SignaturePattern, RejectsMalformedPatternsAsInvalid) {
  for (const char* bad : {"*abc", "abc[", "abc\\", "a**", ""}) {
    auto compiled = SignaturePattern::Compile(bad);
    ASSERT_FALSE(compiled.ok()) << bad;
    EXPECT_EQ(compiled.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(SignaturePattern, ValidRegexOutsideTheSubsetIsUnsupported) {
  for (const char* pattern : {"(ab)+", "a{2}", "a|b", "a^b", "a$b", "a*?", "\\1"}) {
    auto compiled = SignaturePattern::Compile(pattern);
    ASSERT_FALSE(compiled.ok()) << pattern;
    EXPECT_EQ(compiled.status().code(), StatusCode::kUnsupported) << pattern;
  }
}

TEST(SignaturePattern, UnknownLetterEscapeIsTheLetterWithAWarning) {
  std::vector<std::string> warnings;
  auto compiled = SignaturePattern::Compile("data.\\altbeacon.org", &warnings);
  ASSERT_TRUE(compiled.ok());
  EXPECT_TRUE(compiled->Search("data.altbeacon.org"));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("\\a"), std::string::npos);
}

TEST(SignaturePattern, PathologicalPatternOnLongInputIsLinearAndBounded) {
  // Catastrophic for a backtracking engine: (a*)*-style blow-up written with our atoms.
  std::string pattern;
  for (int i = 0; i < 30; ++i) pattern += "a*";
  pattern += "b";
  auto compiled = SignaturePattern::Compile(pattern);
  ASSERT_TRUE(compiled.ok());
  const std::string text(1'000'000, 'a');
  EXPECT_FALSE(compiled->Search(text));  // returns quickly: text is cut at kMaxTextLength
  EXPECT_TRUE(compiled->Search(std::string(100, 'a') + "b"));
  EXPECT_FALSE(SignaturePattern::Compile(std::string(SignaturePattern::kMaxPatternLength + 1, 'a')).ok());
}

}  // namespace
}  // namespace appban::assess
