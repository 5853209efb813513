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
  old.flags.network_security_config = true;  // the config decides; we do not read it
  EXPECT_TRUE(Ids(old).empty());
  old.flags.network_security_config = false;
  old.flags.uses_cleartext_traffic = false;
  EXPECT_TRUE(Ids(old).empty());

  apk::Manifest no_sdk = Clean();
  no_sdk.target_sdk.reset();
  no_sdk.min_sdk = 21;  // target defaults to min
  EXPECT_EQ(Ids(no_sdk), std::vector<std::string>{"hygiene.cleartext_traffic"});
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
  launcher.intent_filters.push_back({{"android.intent.action.MAIN"}, {"android.intent.category.LAUNCHER"}, {}, {}, false});
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
