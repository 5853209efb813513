#include <gtest/gtest.h>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

std::vector<std::string> Ids(const apk::Manifest& manifest) {
  std::vector<std::string> ids;
  for (const Finding& f : HygieneFindings(manifest)) ids.push_back(f.id);
  return ids;
}

apk::Manifest Clean() {
  apk::Manifest manifest;
  manifest.package = "com.example";
  manifest.target_sdk = 34;
  manifest.flags.allow_backup = false;
  manifest.flags.allow_backup_explicit = true;
  return manifest;
}

TEST(Hygiene, CleanManifestHasNoFindings) { EXPECT_TRUE(Ids(Clean()).empty()); }

TEST(Hygiene, CleartextExplicitOrByDefaultBelowSdk28) {
  apk::Manifest explicit_true = Clean();
  explicit_true.flags.uses_cleartext_traffic = true;
  EXPECT_EQ(Ids(explicit_true), std::vector<std::string>{"hygiene.cleartext_traffic"});

  apk::Manifest old = Clean();
  old.target_sdk = 27;
  EXPECT_EQ(Ids(old), std::vector<std::string>{"hygiene.cleartext_traffic"});
  old.flags.network_security_config = true;  // named but unreadable: Android's config then decides
  EXPECT_TRUE(Ids(old).empty());
  old.flags.network_security_config = false;
  old.flags.uses_cleartext_traffic = false;
  EXPECT_TRUE(Ids(old).empty());

  apk::Manifest no_sdk = Clean();
  no_sdk.target_sdk.reset();
  no_sdk.min_sdk = 21;  // target defaults to min
  // Below SDK 24 user-installed CAs are trusted by default, too.
  EXPECT_EQ(Ids(no_sdk), (std::vector<std::string>{"hygiene.cleartext_traffic", "hygiene.user_certificates_trusted"}));
}

apk::NetworkSecurityConfig Config(bool base_cleartext, bool base_user_cas) {
  apk::NetworkSecurityConfig config;
  config.path = "res/xml/nsc.xml";
  config.base_cleartext_permitted = base_cleartext;
  config.base_trusts_user_certificates = base_user_cas;
  return config;
}

TEST(Hygiene, NetworkSecurityConfigDecidesOverTheManifestFlag) {
  apk::Manifest manifest = Clean();
  manifest.flags.uses_cleartext_traffic = true;  // ignored on Android 7.0+ when a config exists
  manifest.flags.network_security_config = true;
  apk::NetworkSecurityConfig strict = Config(false, false);
  EXPECT_TRUE(HygieneFindings(manifest, &strict).empty());

  apk::NetworkSecurityConfig open = Config(true, false);
  auto findings = HygieneFindings(manifest, &open);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].id, "hygiene.cleartext_traffic");
  EXPECT_EQ(findings[0].severity, Severity::kMedium);
  EXPECT_EQ(findings[0].evidence.at(0).location, "res/xml/nsc.xml");
}

TEST(Hygiene, DomainLevelCleartextAndUserCasAreNamed) {
  apk::Manifest manifest = Clean();
  apk::NetworkSecurityConfig config = Config(false, false);
  apk::DomainSecurityConfig legacy;
  legacy.domains = {"*.legacy.example.org"};
  legacy.cleartext_permitted = true;
  apk::DomainSecurityConfig intercepted;
  intercepted.domains = {"api.example.org"};
  intercepted.trusts_user_certificates = true;
  config.domains = {legacy, intercepted};
  auto findings = HygieneFindings(manifest, &config);
  ASSERT_EQ(findings.size(), 2u);
  EXPECT_EQ(findings[0].id, "hygiene.cleartext_traffic");
  EXPECT_EQ(findings[0].severity, Severity::kLow);  // only some domains
  EXPECT_EQ(findings[0].evidence.at(0).value, "*.legacy.example.org");
  EXPECT_EQ(findings[1].id, "hygiene.user_certificates_trusted");
  EXPECT_EQ(findings[1].evidence.at(0).value, "api.example.org");
}

TEST(Hygiene, DebuggableBackupTestOnlyAndExportedComponents) {
  apk::Manifest manifest = Clean();
  manifest.flags.debuggable = true;
  manifest.flags.test_only = true;
  manifest.flags.allow_backup = true;
  manifest.flags.allow_backup_explicit = false;
  apk::Component launcher;
  launcher.name = "com.example.Main";
  launcher.exported = true;
  launcher.intent_filters.push_back(
      {{"android.intent.action.MAIN"}, {"android.intent.category.LAUNCHER"}, {}, {}, false});
  apk::Component open_receiver;
  open_receiver.kind = apk::ComponentKind::kReceiver;
  open_receiver.name = "com.example.Open";
  open_receiver.exported = true;
  open_receiver.exported_reason = "intent-filter";
  apk::Component guarded = open_receiver;
  guarded.name = "com.example.Guarded";
  guarded.permission = "com.example.PRIVATE";
  apk::Component internal = open_receiver;
  internal.name = "com.example.Internal";
  internal.exported = false;
  manifest.components = {launcher, open_receiver, guarded, internal};

  const auto findings = HygieneFindings(manifest);
  std::vector<std::string> ids;
  for (const Finding& f : findings) ids.push_back(f.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"hygiene.debuggable", "hygiene.test_only", "hygiene.allow_backup",
                                           "hygiene.exported_components"}));
  ASSERT_EQ(findings[3].evidence.size(), 1u);
  EXPECT_NE(findings[3].evidence[0].value.find("com.example.Open"), std::string::npos);
  EXPECT_EQ(findings[3].evidence[0].note, "exported (intent-filter), no permission");
}

}  // namespace
}  // namespace appban::assess
