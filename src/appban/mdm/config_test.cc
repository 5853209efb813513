#include "appban/mdm/config_toml.h"

#include <gtest/gtest.h>

namespace appban::mdm {
namespace {

Result<MdmConfig> Parse(const std::string& text) {
  APPBAN_ASSIGN_OR_RETURN(toml::table root, ParseToml(text, "server.toml", TomlLimits{.max_bytes = 16384}));
  MdmConfig config;
  for (const TomlField& field : TomlFields(root, "server.toml")) {
    APPBAN_RETURN_IF_ERROR(ParseMdmSection(field, "server.toml", config));
  }
  return config;
}

std::string Error(const std::string& text) {
  auto parsed = Parse(text);
  return parsed.ok() ? "" : parsed.status().message();
}

constexpr char kGood[] = R"(
[[mdm.amapi]]
name = "health"
enterprise = "enterprises/LC00abc"
service_account_key_file = "/etc/appban/amapi-health.json"
  [[mdm.amapi.policies]]
  name = "default"
  groups = ["health-staff"]
  [[mdm.amapi.policies]]
  name = "enterprises/LC00abc/policies/kiosk"
)";

TEST(MdmConfig, ParsesConnectorsAndNormalisesPolicyNames) {
  auto config = Parse(kGood);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->amapi.size(), 1u);
  const AmapiConnectorConfig& c = config->amapi[0];
  EXPECT_EQ(c.name, "health");
  EXPECT_EQ(c.base_url, "https://androidmanagement.googleapis.com");
  ASSERT_EQ(c.policies.size(), 2u);
  EXPECT_EQ(c.policies[0].name, "enterprises/LC00abc/policies/default");
  EXPECT_EQ(c.policies[0].groups, std::vector<std::string>{"health-staff"});
  EXPECT_EQ(c.policies[1].name, "enterprises/LC00abc/policies/kiosk");
}

TEST(MdmConfig, MistakesAreErrorsNamingLineAndKey) {
  std::string typo = kGood;
  typo.replace(typo.find("service_account_key_file"), 24, "service_acount_key_file");
  EXPECT_EQ(Error(typo), "server.toml:5: mdm.amapi[0].service_acount_key_file: unknown key");
  std::string inline_key = kGood;
  inline_key.replace(inline_key.find("\"/etc/appban/amapi-health.json\""), 31, "\"amapi.json\"");
  EXPECT_NE(Error(inline_key).find("must be an absolute path"), std::string::npos);
  std::string other_enterprise = kGood;
  other_enterprise.replace(other_enterprise.find("enterprises/LC00abc/policies/kiosk"), 19, "enterprises/LC00xyz");
  EXPECT_NE(Error(other_enterprise).find("not in enterprises/LC00abc"), std::string::npos);
  EXPECT_NE(Error("[mdm]\nintune = 1\n").find("mdm.intune: unknown key"), std::string::npos);
  EXPECT_NE(Error("[[mdm.amapi]]\nname = \"x\"\n").find("enterprise is required"), std::string::npos);
  EXPECT_NE(Error("[[mdm.amapi]]\nname = \"x\"\nenterprise = \"enterprises/a\"\nservice_account_key_file = \"/k\"\n")
                .find("policies"),
            std::string::npos);
  std::string plain = kGood;
  plain.insert(plain.find("  [[mdm.amapi.policies]]"), "base_url = \"http://amapi.example.gov\"\n");
  EXPECT_NE(Error(plain).find("plain http"), std::string::npos);
}

}  // namespace
}  // namespace appban::mdm
