#include "appban/common/toml.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace appban {
namespace {

constexpr TomlLimits kLimits{.max_bytes = 1024};

toml::table Parsed(std::string_view text) {
  auto table = ParseToml(text, "t.toml", kLimits);
  EXPECT_TRUE(table.ok()) << table.status().ToString();
  return table.ok() ? *table : toml::table{};
}

TEST(TomlTest, ParseErrorsAndOversizedTextsNameTheFile) {
  auto syntax = ParseToml("a = 1\nb = \n", "t.toml", kLimits);
  EXPECT_EQ(syntax.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(syntax.status().message().rfind("t.toml:2: ", 0), 0u) << syntax.status().message();

  auto big = ParseToml(std::string(1025, '#'), "t.toml", kLimits);
  EXPECT_EQ(big.status().code(), StatusCode::kLimitExceeded);
  EXPECT_EQ(big.status().message(), "t.toml: larger than 1024 bytes");
}

TEST(TomlTest, DottedKeysAreBoundedOnlyWhenAsked) {
  const std::string deep = "x = 1\na.b.c.d = 1\n";
  EXPECT_TRUE(ParseToml(deep, "t.toml", kLimits).ok());
  auto refused = ParseToml(deep, "t.toml", TomlLimits{.max_bytes = 1024, .max_key_dots = 2});
  EXPECT_EQ(refused.status().message(), "t.toml:2: key has more than 3 dotted parts");
  // Dots in strings, comments and numbers are not key parts.
  EXPECT_TRUE(
      ParseToml("# a.b.c.d\ns = \"a.b.c.d\"\nf = 1.5\n", "t.toml", TomlLimits{.max_bytes = 1024, .max_key_dots = 2})
          .ok());
}

TEST(TomlTest, ReadsFilesWithTheBound) {
  char dir_template[] = "/tmp/appban-toml-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/c.toml";
  std::ofstream(path) << "[s]\nk = \"v\"\n";
  auto table = ReadTomlFile(path, kLimits);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ((*table)["s"]["k"].value_or(std::string()), "v");
  EXPECT_FALSE(ReadTomlFile(path, TomlLimits{.max_bytes = 4}).ok());
  auto missing = ReadTomlFile(std::string(dir_template) + "/none.toml", kLimits);
  EXPECT_NE(missing.status().message().find("none.toml"), std::string::npos);
  std::remove(path.c_str());
  rmdir(dir_template);
}

TEST(TomlTest, FieldsNameTheirFullPathAndTheKeysLine) {
  toml::table root = Parsed("top = 1\n\n[section]\nb = 2\na = \"x\"\n");
  auto fields = TomlFields(root, "t.toml");
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[0].path(), "section");  // toml++ orders keys by name
  EXPECT_EQ(fields[1].where(), "t.toml:1: top");
  auto section = fields[0].Table();
  ASSERT_TRUE(section.ok());
  auto inner = TomlFields(**section, "t.toml", "section");
  ASSERT_EQ(inner.size(), 2u);
  EXPECT_EQ(inner[0].where(), "t.toml:5: section.a");
  EXPECT_EQ(inner[1].location(), "t.toml:4");
  EXPECT_EQ(inner[1].Unknown().message(), "t.toml:4: section.b: unknown key");
  EXPECT_EQ(inner[1].Error("too big", StatusCode::kLimitExceeded).code(), StatusCode::kLimitExceeded);
}

TEST(TomlTest, GettersCheckExactTypesAndRanges) {
  toml::table root =
      Parsed("b = true\ni = 7\nn = -1\nf = 1.0\nl = [\"a\", \"b\"]\nm = [\"a\", 1]\ns = \"text\"\none = 1\n[t]\n");
  std::map<std::string, TomlField> by_name;
  for (const TomlField& field : TomlFields(root, "t.toml")) by_name.emplace(field.path(), field);
  const TomlField& b = by_name.at("b");
  const TomlField& i = by_name.at("i");

  EXPECT_TRUE(*b.Bool());
  EXPECT_EQ(by_name.at("one").Bool().status().message(), "t.toml:8: one: must be true or false");
  EXPECT_EQ(*i.Integer(0, 10), 7);
  EXPECT_EQ(i.Integer(0, 5).status().message(), "t.toml:2: i: 7 is outside 0..5");
  EXPECT_EQ(by_name.at("n").Integer(0, 5).status().message(), "t.toml:3: n: -1 is outside 0..5");
  EXPECT_EQ(by_name.at("f").Integer(0, 5).status().message(), "t.toml:4: f: must be an integer");
  EXPECT_EQ(*by_name.at("s").String(), "text");
  EXPECT_EQ(i.String().status().message(), "t.toml:2: i: must be a string");
  EXPECT_EQ(*by_name.at("l").Strings(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(by_name.at("m").Strings().status().message(), "t.toml:6: m: must be an array of strings");
  EXPECT_EQ(by_name.at("s").Strings().status().message(), "t.toml:7: s: must be an array of strings");
  EXPECT_TRUE(by_name.at("t").Table().ok());
  EXPECT_EQ(b.Table().status().message(), "t.toml:1: b: must be a table ([b])");
  EXPECT_EQ(b.Table().status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace appban
