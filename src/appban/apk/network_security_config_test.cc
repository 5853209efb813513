#include "appban/apk/network_security_config.h"

#include <gtest/gtest.h>

namespace appban::apk {
namespace {

XmlElement Element(std::string name, std::vector<XmlAttribute> attributes = {}, std::vector<XmlElement> children = {},
                   std::string text = "") {
  XmlElement element;
  element.name = std::move(name);
  element.attributes = std::move(attributes);
  element.children = std::move(children);
  element.text = std::move(text);
  return element;
}

XmlAttribute Bool(std::string name, bool value) {
  XmlAttribute attribute;
  attribute.name = std::move(name);
  attribute.type = ValueType::kIntBoolean;
  attribute.data = value ? 0xffffffff : 0;
  return attribute;
}

XmlAttribute Text(std::string name, std::string value) {
  XmlAttribute attribute;
  attribute.name = std::move(name);
  attribute.type = ValueType::kString;
  attribute.string_value = std::move(value);
  return attribute;
}

XmlElement UserAnchors() {
  return Element("trust-anchors", {},
                 {Element("certificates", {Text("src", "system")}), Element("certificates", {Text("src", "user")})});
}

TEST(NetworkSecurityConfigTest, DefaultsFollowTheTargetSdk) {
  XmlDocument empty{Element("network-security-config")};
  NetworkSecurityConfig old = ReadNetworkSecurityConfig(empty, "res/xml/n.xml", 23, nullptr);
  EXPECT_TRUE(old.base_cleartext_permitted);
  EXPECT_TRUE(old.base_trusts_user_certificates);
  NetworkSecurityConfig modern = ReadNetworkSecurityConfig(empty, "res/xml/n.xml", 34, nullptr);
  EXPECT_FALSE(modern.base_cleartext_permitted);
  EXPECT_FALSE(modern.base_trusts_user_certificates);
  EXPECT_FALSE(modern.any_cleartext());
}

TEST(NetworkSecurityConfigTest, DomainConfigsInheritAndOverride) {
  XmlDocument document{Element(
      "network-security-config", {},
      {Element("base-config", {Bool("cleartextTrafficPermitted", true)}),
       Element("domain-config", {Bool("cleartextTrafficPermitted", false)},
               {Element("domain", {Bool("includeSubdomains", true)}, {}, " secure.example.org\n"), Element("pin-set"),
                Element("domain-config", {}, {Element("domain", {}, {}, "inner.example.org"), UserAnchors()})}),
       Element("debug-overrides", {}, {UserAnchors()})})};
  NetworkSecurityConfig config = ReadNetworkSecurityConfig(document, "res/xml/n.xml", 34, nullptr);
  EXPECT_TRUE(config.base_cleartext_permitted);
  EXPECT_FALSE(config.base_trusts_user_certificates);
  EXPECT_TRUE(config.debug_overrides_user_certificates);
  ASSERT_EQ(config.domains.size(), 2u);
  // The nested config is read first, inheriting cleartext=false from its parent.
  EXPECT_EQ(config.domains[0].domains, std::vector<std::string>{"inner.example.org"});
  EXPECT_FALSE(config.domains[0].cleartext_permitted);
  EXPECT_TRUE(config.domains[0].trusts_user_certificates);
  EXPECT_EQ(config.domains[1].domains, std::vector<std::string>{"*.secure.example.org"});
  EXPECT_FALSE(config.domains[1].cleartext_permitted);
  EXPECT_TRUE(config.domains[1].pins);
  EXPECT_TRUE(config.any_user_certificates());
}

TEST(NetworkSecurityConfigTest, WrongRootIsAnAnomalyWithDefaults) {
  Anomalies anomalies;
  XmlDocument document{Element("manifest")};
  NetworkSecurityConfig config = ReadNetworkSecurityConfig(document, "res/xml/n.xml", 27, &anomalies);
  EXPECT_TRUE(config.base_cleartext_permitted);
  ASSERT_EQ(anomalies.size(), 1u);
  EXPECT_EQ(anomalies[0].code, "nsc.unexpected_root");
}

}  // namespace
}  // namespace appban::apk
