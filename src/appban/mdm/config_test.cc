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
  EXPECT_NE(Error("[mdm]\nblackberry = 1\n").find("mdm.blackberry: unknown key"), std::string::npos);
  EXPECT_NE(Error("[[mdm.amapi]]\nname = \"x\"\n").find("enterprise is required"), std::string::npos);
  EXPECT_NE(Error("[[mdm.amapi]]\nname = \"x\"\nenterprise = \"enterprises/a\"\nservice_account_key_file = \"/k\"\n")
                .find("policies"),
            std::string::npos);
  std::string plain = kGood;
  plain.insert(plain.find("  [[mdm.amapi.policies]]"), "base_url = \"http://amapi.example.gov\"\n");
  EXPECT_NE(Error(plain).find("plain http"), std::string::npos);
}

constexpr char kApple[] = R"(
[[mdm.apple]]
name = "ios"
server_url = "https://nanomdm.example.gov"
api_key_file = "/etc/appban/nanomdm-api-key"
devices_file = "/etc/appban/ios-devices.txt"
signing_certificate_file = "/etc/appban/profile-signing.pem"
signing_key_file = "/etc/appban/profile-signing.key"
organization = "Example CIO Office"
)";

TEST(MdmConfig, AppleConnectorsAreReadStrictly) {
  auto config = Parse(kApple);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->apple.size(), 1u);
  const AppleConnectorConfig& c = config->apple[0];
  EXPECT_EQ(c.name, "ios");
  EXPECT_EQ(c.server_url, "https://nanomdm.example.gov");
  EXPECT_EQ(c.api_key_file, "/etc/appban/nanomdm-api-key");
  EXPECT_EQ(c.profile_identifier, "gov.appban.restrictions");
  EXPECT_EQ(c.organization, "Example CIO Office");
  EXPECT_TRUE(c.ca_file.empty());

  std::string typo = kApple;
  typo.replace(typo.find("devices_file"), 12, "device_file");
  EXPECT_EQ(Error(typo), "server.toml:6: mdm.apple[0].device_file: unknown key");
  std::string relative = kApple;
  relative.replace(relative.find("\"/etc/appban/nanomdm-api-key\""), 29, "\"key\"");
  EXPECT_NE(Error(relative).find("must be an absolute path"), std::string::npos);
  std::string no_signing = kApple;
  no_signing.erase(no_signing.find("signing_key_file"),
                   no_signing.find("organization") - no_signing.find("signing_key_file"));
  EXPECT_NE(Error(no_signing).find("signing_key_file are required"), std::string::npos);
  std::string plain = kApple;
  plain.replace(plain.find("https://nanomdm"), 8, "http://");
  EXPECT_NE(Error(plain).find("plain http"), std::string::npos) << Error(plain);
  EXPECT_NE(Error(std::string(kApple) + "profile_identifier = \"not dns!\"\n").find("reverse-DNS"), std::string::npos);
  EXPECT_NE(Error(std::string(kApple) + kApple).find("two connectors are named ios"), std::string::npos);
}

constexpr char kIntune[] = R"(
[[mdm.intune]]
name = "ministry"
tenant_id = "0b5e3c1a-1111-4222-8333-444455556666"
client_id = "7d1c0f2e-aaaa-4bbb-8ccc-ddddeeeeffff"
client_secret_file = "/etc/appban/intune.secret"
device_groups = ["phones"]
  [[mdm.intune.targets]]
  entra_group_id = "5f0c1d2e-0000-4000-8000-00000000000a"
  groups = ["health-staff"]
  ios_compliance_policy_id = "9a1b2c3d-0000-4000-8000-000000000001"
  ios_device_configuration_id = "9a1b2c3d-0000-4000-8000-000000000002"
)";

TEST(MdmConfig, ParsesIntuneConnectors) {
  auto config = Parse(kIntune);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->intune.size(), 1u);
  const IntuneConnectorConfig& c = config->intune[0];
  EXPECT_EQ(c.name, "ministry");
  EXPECT_EQ(c.graph_base_url, "https://graph.microsoft.com");
  EXPECT_EQ(c.login_base_url, "https://login.microsoftonline.com");
  EXPECT_EQ(c.client_secret_file, "/etc/appban/intune.secret");
  EXPECT_EQ(c.device_groups, std::vector<std::string>{"phones"});
  ASSERT_EQ(c.targets.size(), 1u);
  EXPECT_EQ(c.targets[0].groups, std::vector<std::string>{"health-staff"});
  EXPECT_EQ(c.targets[0].ios_compliance_policy_id, "9a1b2c3d-0000-4000-8000-000000000001");
}

TEST(MdmConfig, IntuneMistakesAreErrors) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string text = kIntune;
    text.replace(text.find(from), from.size(), to);
    return Error(text);
  };
  EXPECT_NE(with("client_secret_file = \"/etc/appban/intune.secret\"", "client_secret = \"hunter2\"")
                .find("client_secret: unknown key"),
            std::string::npos);
  EXPECT_NE(with("client_secret_file = \"/etc/appban/intune.secret\"", "").find("either client_secret_file"),
            std::string::npos);
  EXPECT_NE(with("client_secret_file = \"/etc/appban/intune.secret\"",
                 "client_secret_file = \"/s\"\ncertificate_file = \"/c\"\nprivate_key_file = \"/k\"")
                .find("either client_secret_file"),
            std::string::npos);
  EXPECT_NE(with("client_secret_file = \"/etc/appban/intune.secret\"", "certificate_file = \"/c\"").find("go together"),
            std::string::npos);
  EXPECT_NE(with("\"/etc/appban/intune.secret\"", "\"intune.secret\"").find("absolute path"), std::string::npos);
  EXPECT_NE(with("7d1c0f2e-aaaa-4bbb-8ccc-ddddeeeeffff", "my-app").find("GUID"), std::string::npos);
  EXPECT_NE(with("5f0c1d2e-0000-4000-8000-00000000000a", "staff").find("GUID"), std::string::npos);
  EXPECT_NE(with("9a1b2c3d-0000-4000-8000-000000000001", "../x").find("ios_compliance_policy_id"), std::string::npos);
  EXPECT_NE(with("tenant_id", "tenant").find("tenant: unknown key"), std::string::npos);
  EXPECT_NE(
      with("name = \"ministry\"", "name = \"ministry\"\ngraph_base_url = \"http://graph.example\"").find("loopback"),
      std::string::npos);
  EXPECT_NE(with("  [[mdm.intune.targets]]\n  entra_group_id = \"5f0c1d2e-0000-4000-8000-00000000000a\"\n", "")
                .find("unknown key"),
            std::string::npos);
}

}  // namespace
}  // namespace appban::mdm
