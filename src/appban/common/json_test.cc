#include "appban/common/json.h"

#include <gtest/gtest.h>

#include <string>

namespace appban {
namespace {

TEST(CanonicalJsonTest, SortedKeysNoWhitespaceIntegersOnly) {
  Json value = Json::parse(R"({"b": [1, {"z": true, "a": null}], "a": "x\ny", "é": -5})");
  auto text = CanonicalJson(value);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "{\"a\":\"x\\ny\",\"b\":[1,{\"a\":null,\"z\":true}],\"\xc3\xa9\":-5}");
  EXPECT_FALSE(CanonicalJson(Json::parse("{\"a\": 1.5}")).ok());
  EXPECT_FALSE(CanonicalJson(Json(std::string("\xff"))).ok());
}

TEST(ParseJsonBoundedTest, RefusesOversizedAndDeepTextBeforeParsing) {
  auto parsed = ParseJsonBounded(R"({"a":[1,{"b":"[[[["}]})", 100, 3, "body");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ((*parsed)["a"][1]["b"], "[[[[");  // brackets inside strings do not count as nesting

  auto big = ParseJsonBounded("[1, 2, 3]", 8, 3, "body");
  EXPECT_EQ(big.status().code(), StatusCode::kLimitExceeded);
  EXPECT_EQ(big.status().message(), "body: 9 bytes exceeds the limit of 8");

  auto deep = ParseJsonBounded("[[[[1]]]]", 100, 3, "body");
  EXPECT_EQ(deep.status().code(), StatusCode::kLimitExceeded);
  EXPECT_EQ(deep.status().message(), "body: JSON nests deeper than 3 levels");

  auto bad = ParseJsonBounded("{\"a\":", 100, 3, "body");
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(bad.status().message().rfind("body: not valid JSON: ", 0), 0u) << bad.status().message();
}

}  // namespace
}  // namespace appban
