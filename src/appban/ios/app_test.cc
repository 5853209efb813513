#include "appban/ios/app.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "appban/ios/ios_test_support.h"
#include "appban/ios/report_json.h"

namespace appban::ios {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using namespace ::appban::ios::testing;

const apk::Anomaly* FindAnomaly(const apk::Anomalies& anomalies, const std::string& code) {
  auto it = std::find_if(anomalies.begin(), anomalies.end(), [&](const auto& a) { return a.code == code; });
  return it == anomalies.end() ? nullptr : &*it;
}

// The IPA and the unpacked .app built by tests/fixtures/ios/build.sh read the same.
class FixtureAppTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureAppTest, ReadsTheAppItsSignatureProfileFrameworksAndPrivacyManifest) {
  auto app = IosApp::Open(FixturePath(GetParam()));
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  EXPECT_EQ(app->input_kind(), GetParam().ends_with(".ipa") ? "ipa" : "app");
  const Bundle& main = app->main();
  EXPECT_EQ(main.kind, "app");
  ASSERT_TRUE(main.info.has_value());
  const InfoPlist& info = *main.info;
  EXPECT_EQ(info.format, "binary");
  EXPECT_EQ(info.bundle_id, "com.example.demo");
  EXPECT_EQ(info.short_version, "2.4.1");
  EXPECT_EQ(info.version, "241");
  EXPECT_EQ(info.minimum_os, "15.0");
  EXPECT_THAT(info.device_families, ElementsAre("iphone", "ipad"));
  EXPECT_THAT(info.url_schemes, ElementsAre("demo", "fb123456789"));
  EXPECT_THAT(info.queried_schemes, ElementsAre("weixin", "alipay"));
  EXPECT_THAT(info.background_modes, ElementsAre("location", "fetch"));
  EXPECT_THAT(info.usage_descriptions, Contains(Pair("NSCameraUsageDescription", "Scan QR codes")));
  EXPECT_EQ(info.usage_descriptions.size(), 3u);
  ASSERT_TRUE(info.ats.has_value());
  EXPECT_TRUE(info.ats->arbitrary_loads);
  ASSERT_EQ(info.ats->exception_domains.size(), 1u);
  EXPECT_TRUE(info.ats->exception_domains[0].allows_insecure_http);

  ASSERT_TRUE(main.signature.has_value()) << main.signature_error;
  const CodeSignature& sig = *main.signature;
  EXPECT_TRUE(sig.has_cms);
  EXPECT_TRUE(sig.cms_verifies) << sig.cms_error;
  EXPECT_EQ(sig.team_id, "ABCDE12345");
  EXPECT_EQ(sig.organization, "Example Corp");
  EXPECT_EQ(sig.certificate_kind, "Apple Distribution");
  ASSERT_EQ(sig.code_directories.size(), 2u);
  EXPECT_EQ(sig.code_directories[0].hash_type, "sha1");
  EXPECT_EQ(sig.code_directories[1].hash_type, "sha256");
  for (const CodeDirectory& cd : sig.code_directories) {
    EXPECT_EQ(cd.identifier, "com.example.demo");
    EXPECT_EQ(cd.team_id, "ABCDE12345");
    EXPECT_TRUE(cd.pages_match());
    EXPECT_GT(cd.pages_checked, 10u);
    EXPECT_EQ(cd.cdhash.size(), 40u);
    EXPECT_THAT(cd.flag_names, Contains("runtime"));
  }
  ASSERT_TRUE(sig.entitlements.has_value());
  EXPECT_EQ(sig.entitlements_source, "xml");
  EXPECT_EQ(sig.entitlements->FindBoolean("get-task-allow"), true);
  EXPECT_TRUE(sig.has_der_entitlements);

  ASSERT_TRUE(main.profile.has_value());
  EXPECT_EQ(main.profile->type, "enterprise");
  EXPECT_TRUE(main.profile->provisions_all_devices);
  EXPECT_EQ(main.profile->team_id, "ABCDE12345");
  EXPECT_EQ(main.profile->application_identifier, "ABCDE12345.com.example.demo");
  EXPECT_FALSE(main.profile->expired);
  EXPECT_TRUE(main.profile->signature_verifies);
  ASSERT_EQ(main.profile->developer_certificates.size(), 1u);
  EXPECT_EQ(main.profile->developer_certificates[0], sig.certificates.front().sha256);
  EXPECT_EQ(main.profile->signer_name, "Apple Distribution: Example Corp (ABCDE12345)");
  EXPECT_FALSE(main.profile->chain.checked);  // no anchors given
  EXPECT_THAT(main.profile->chain.note, HasSubstr("no trust anchor"));
  EXPECT_FALSE(main.profile->signed_by_apple);

  ASSERT_TRUE(main.privacy_manifest.has_value());
  EXPECT_EQ(main.privacy_manifest->tracking, true);
  EXPECT_THAT(main.privacy_manifest->tracking_domains, ElementsAre("ads.demo-analytics.example.com"));
  ASSERT_EQ(main.privacy_manifest->collected_data.size(), 1u);
  EXPECT_EQ(main.privacy_manifest->collected_data[0].type, "NSPrivacyCollectedDataTypePreciseLocation");

  ASSERT_EQ(app->bundles().size(), 3u);
  const Bundle& framework = app->bundles()[1];
  EXPECT_EQ(framework.kind, "framework");
  EXPECT_THAT(framework.path, HasSubstr("Frameworks/FBSDKCoreKit.framework"));
  EXPECT_EQ(framework.info->bundle_id, "com.facebook.sdk.FBSDKCoreKit");
  EXPECT_EQ(framework.info->format, "xml");
  ASSERT_TRUE(framework.macho.has_value());
  EXPECT_EQ(framework.macho->slices[0].file_type, "dylib");
  EXPECT_EQ(framework.macho->slices[0].install_name, "@rpath/FBSDKCoreKit.framework/FBSDKCoreKit");
  ASSERT_TRUE(framework.signature.has_value());
  EXPECT_FALSE(framework.signature->has_cms);
  EXPECT_THAT(framework.signature->code_directories[0].flag_names, Contains("linker-signed"));
  ASSERT_TRUE(framework.privacy_manifest.has_value());
  EXPECT_THAT(framework.privacy_manifest->tracking_domains, ElementsAre("ep1.facebook.com"));
  const Bundle& extension = app->bundles()[2];
  EXPECT_EQ(extension.kind, "appex");
  EXPECT_EQ(extension.info->extension_point, "com.apple.share-services");

  for (const auto& anomaly : app->anomalies())
    ADD_FAILURE() << anomaly.code << " " << anomaly.where << " " << anomaly.detail;

  auto json = InspectDocument(*app);
  EXPECT_EQ(json["schema"], "appban.inspect.ios/1");
  EXPECT_EQ(json["platform"], "ios");
  EXPECT_EQ(json["app"]["bundle_id"], "com.example.demo");
  EXPECT_EQ(json["app"]["team_id"], "ABCDE12345");
  EXPECT_EQ(json["app"]["bundles"][0]["signature"]["cms"]["verifies_over_code_directory"], true);
}

INSTANTIATE_TEST_SUITE_P(IpaAndDirectory, FixtureAppTest, ::testing::Values("Demo.ipa", "Demo.app"));

std::string PemToDer(const std::string& pem_path) {
  const std::string der_path = pem_path + ".der";
  if (std::system(("openssl x509 -in '" + pem_path + "' -outform DER -out '" + der_path + "'").c_str()) != 0) return "";
  return ReadAll(der_path);
}

// Against Apple's roots, a profile signed by anyone else (here the test CA's distribution
// certificate) is checked, refused, and said to be an anomaly; the executable still matches it.
TEST(IosAppTest, AProfileAppleDidNotSignIsRefusedAgainstAppleRoots) {
  auto anchors = TrustAnchors::LoadPem(APPBAN_SOURCE_DIR "/data/apple-roots.pem");
  ASSERT_TRUE(anchors.ok()) << anchors.status().ToString();
  auto app = IosApp::Open(FixturePath("Demo.app"), Limits{}, &*anchors);
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  const ProvisioningProfile& profile = *app->main().profile;
  EXPECT_TRUE(profile.signature_verifies);
  EXPECT_TRUE(profile.chain.checked);
  EXPECT_FALSE(profile.chain.verified);
  // The profile carries its own root (the test CA), which is not one of Apple's.
  EXPECT_THAT(profile.chain.note, HasSubstr("not verified: self-signed certificate in certificate chain"));
  EXPECT_FALSE(profile.signed_by_apple);
  const apk::Anomaly* anomaly = FindAnomaly(app->anomalies(), "ios.profile_not_signed_by_apple");
  ASSERT_NE(anomaly, nullptr);
  EXPECT_THAT(anomaly->detail, HasSubstr("Apple Distribution: Example Corp"));
  EXPECT_THAT(anomaly->where, HasSubstr("embedded.mobileprovision"));
  for (const char* code :
       {"ios.profile_certificate_mismatch", "ios.profile_team_mismatch", "ios.profile_app_id_mismatch"}) {
    EXPECT_EQ(FindAnomaly(app->anomalies(), code), nullptr) << code;
  }
  auto json = InspectDocument(*app);
  const auto& profile_json = json["app"]["bundles"][0]["provisioning_profile"];
  EXPECT_EQ(profile_json["signed_by_apple"], false);
  EXPECT_EQ(profile_json["chain_verified"], false);
  EXPECT_EQ(profile_json["signer"], "Apple Distribution: Example Corp (ABCDE12345)");
  EXPECT_TRUE(profile_json["chain_checked_at"].is_string());
}

// The chain check itself, with the test CA standing in as the anchor: verified at the profile's
// signing time, refused at a time before the certificates were issued.
TEST(IosAppTest, AProfileSignerChainsToTheAnchorItWasIssuedUnder) {
  auto app = IosApp::Open(FixturePath("Demo.app"));
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  const ProvisioningProfile& profile = *app->main().profile;
  const std::string ca = PemToDer(FixturePath("test-ca.pem"));
  ASSERT_FALSE(ca.empty());
  const SignerCertificate* signer = nullptr;
  for (const auto& c : profile.signers) {
    if (c.common_name == profile.signer_name) signer = &c;
  }
  ASSERT_NE(signer, nullptr);
  ChainCheck now = CheckCertificateChain({ca}, signer->der, profile.signers, std::time(nullptr), "the current time");
  EXPECT_TRUE(now.verified) << now.note;
  EXPECT_EQ(now.anchor, "Test Worldwide Developer Relations CA");
  EXPECT_EQ(now.note, "verified to Test Worldwide Developer Relations CA at the current time");
  ChainCheck before = CheckCertificateChain({ca}, signer->der, profile.signers, 946684800, "2000-01-01");
  EXPECT_TRUE(before.checked);
  EXPECT_FALSE(before.verified);
  EXPECT_THAT(before.note, HasSubstr("not yet valid"));
  ChainCheck no_anchor = CheckCertificateChain({}, signer->der, profile.signers, std::time(nullptr), "now");
  EXPECT_FALSE(no_anchor.verified);
  ChainCheck garbage = CheckCertificateChain({ca}, "not a certificate", profile.signers, std::time(nullptr), "now");
  EXPECT_FALSE(garbage.checked);
  EXPECT_THAT(garbage.note, HasSubstr("cannot be read"));
}

// A copy of the app carrying another team's profile, for another app id and another certificate:
// what a re-signed or repackaged app looks like. Each mismatch iOS would refuse is named.
TEST(IosAppTest, AProfileThatDoesNotMatchTheExecutableIsNamedThreeWays) {
  auto app = IosApp::Open(FixturePath("DemoResigned.app"));
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  ASSERT_TRUE(app->main().profile.has_value());
  EXPECT_EQ(app->main().profile->team_id, "ZZZZZ99999");
  const apk::Anomaly* certificate = FindAnomaly(app->anomalies(), "ios.profile_certificate_mismatch");
  ASSERT_NE(certificate, nullptr);
  EXPECT_THAT(certificate->detail, HasSubstr(app->main().signature->certificates.front().sha256));
  EXPECT_THAT(certificate->detail, HasSubstr("re-signed"));
  const apk::Anomaly* team = FindAnomaly(app->anomalies(), "ios.profile_team_mismatch");
  ASSERT_NE(team, nullptr);
  EXPECT_THAT(team->detail, HasSubstr("team ZZZZZ99999 but the executable is signed by team ABCDE12345"));
  const apk::Anomaly* app_id = FindAnomaly(app->anomalies(), "ios.profile_app_id_mismatch");
  ASSERT_NE(app_id, nullptr);
  EXPECT_THAT(app_id->detail, HasSubstr("ZZZZZ99999.com.other.*, which does not cover the bundle id com.example.demo"));
}

TEST(IosAppTest, ATamperedExecutableIsAPageHashMismatch) {
  auto app = IosApp::Open(FixturePath("DemoTampered"));
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  EXPECT_EQ(app->input_kind(), "macho");
  const CodeSignature& sig = *app->main().signature;
  EXPECT_FALSE(sig.code_directories[0].pages_match());
  EXPECT_EQ(sig.code_directories[0].mismatched_pages, std::vector<uint32_t>{4});
  EXPECT_TRUE(sig.cms_verifies);  // the directory itself is intact; the code is not
  const apk::Anomaly* anomaly = FindAnomaly(app->anomalies(), "codesign.page_hash_mismatch");
  ASSERT_NE(anomaly, nullptr);
  EXPECT_THAT(anomaly->detail, HasSubstr("modified after signing"));
}

TEST(IosAppTest, AnAdHocExecutableHasNoTeam) {
  auto app = IosApp::Open(FixturePath("DemoAdhoc"));
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  const CodeSignature& sig = *app->main().signature;
  EXPECT_FALSE(sig.has_cms);
  EXPECT_TRUE(sig.adhoc);
  EXPECT_EQ(sig.team_id, "");
  EXPECT_THAT(sig.code_directories[0].flag_names, Contains("adhoc"));
  EXPECT_TRUE(sig.code_directories[0].pages_match());
  EXPECT_EQ(sig.code_directories[0].identifier, "DemoAdhoc");
}

TEST(IosAppTest, CorruptIpasAreErrorsOrAnomaliesNeverCrashes) {
  std::string bytes = ReadAll(FixturePath("Demo.ipa"));
  ASSERT_FALSE(bytes.empty());
  for (size_t size = 0; size < bytes.size(); size += 211) {
    (void)IosApp::FromBytes(AsBytes(std::string_view(bytes).substr(0, size)), "cut.ipa");
  }
  for (size_t i = 0; i < bytes.size(); i += 97) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0xa5);
    (void)IosApp::FromBytes(AsBytes(flipped), "flipped.ipa");
  }
  auto not_ipa = IosApp::FromBytes(AsBytes(std::string("plain text")), "x");
  ASSERT_FALSE(not_ipa.ok());
  EXPECT_EQ(not_ipa.status().code(), StatusCode::kNotRecognized);
}

TEST(IosAppTest, DerEntitlementsReadAsTheXmlOnes) {
  // [APPLICATION 16] { INTEGER 1, [16] { SEQ { "get-task-allow", TRUE }, SEQ { "groups", SEQ { "a" } } } }
  const std::string der(
      "\x70\x2a\x02\x01\x01\xb0\x25"
      "\x30\x13\x0c\x0eget-task-allow\x01\x01\xff"
      "\x30\x0e\x0c\x06groups\x30\x04\x0c\x02"
      "ab",
      44);
  auto value = ParseDerEntitlements(AsBytes(der), Limits{});
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(value->FindBoolean("get-task-allow"), true);
  EXPECT_EQ(value->FindStrings("groups"), std::vector<std::string>{"ab"});
  for (size_t size = 0; size < der.size(); ++size) {
    EXPECT_FALSE(ParseDerEntitlements(AsBytes(std::string_view(der).substr(0, size)), Limits{}).ok()) << size;
  }
}

}  // namespace
}  // namespace appban::ios
