#include "appban/assess/ios_assess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "appban/assess/assess_test_support.h"
#include "appban/ios/app.h"
#include "appban/ios/trust_anchors.h"

namespace appban::assess {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

std::string Fixture(const std::string& name) {
  const char* dir = std::getenv("APPBAN_FIXTURES");
  return std::string(dir ? dir : APPBAN_BINARY_DIR "/fixtures") + "/ios/" + name;
}

const Finding* FindingById(const Assessment& a, const std::string& id) {
  auto it = std::find_if(a.analysis.findings.begin(), a.analysis.findings.end(),
                         [&](const Finding& f) { return f.id == id; });
  return it == a.analysis.findings.end() ? nullptr : &*it;
}

class IosAssessTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(testing::LoadShippedData(&data_)); }
  testing::ShippedData data_;
};

TEST_F(IosAssessTest, TheFixtureAppsFindingsRestOnItsEvidence) {
  auto app = ios::IosApp::Open(Fixture("Demo.ipa"));
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  Assessment a = AssessIos(*app, data_.knowledge, data_.ios, data_.model);
  EXPECT_EQ(a.package(), "com.example.demo");

  // The embedded FBSDKCoreKit.framework and the facebook.com host it declares.
  const Finding* facebook = FindingById(a, "tracker.66");
  ASSERT_NE(facebook, nullptr);
  EXPECT_EQ(facebook->title, "Tracker SDK: Facebook Analytics");
  EXPECT_TRUE(std::any_of(facebook->evidence.begin(), facebook->evidence.end(),
                          [](const Evidence& e) { return e.kind == "framework" && e.value == "FBSDKCoreKit"; }));
  // Requested (usage description) and used (imported class) capabilities.
  const Finding* location = FindingById(a, "capability.location.used");
  ASSERT_NE(location, nullptr);
  EXPECT_EQ(location->severity, Severity::kHigh);
  // The selector the code sends is evidence too, beside the class it imports.
  auto has_evidence = [](const Finding* f, const std::string& kind, const std::string& value) {
    return std::any_of(f->evidence.begin(), f->evidence.end(),
                       [&](const Evidence& e) { return e.kind == kind && e.value == value; });
  };
  EXPECT_TRUE(has_evidence(location, "class", "CLLocationManager"));
  EXPECT_TRUE(has_evidence(location, "selector", "startUpdatingLocation"));
  const Finding* advertising = FindingById(a, "capability.advertising_id.used");
  ASSERT_NE(advertising, nullptr);
  EXPECT_TRUE(has_evidence(advertising, "selector", "advertisingIdentifier"));
  ASSERT_NE(FindingById(a, "capability.camera.requested"), nullptr);
  ASSERT_NE(FindingById(a, "capability.vpn.requested"), nullptr);  // entitlement only
  // Hygiene.
  ASSERT_NE(FindingById(a, "hygiene.ats_arbitrary_loads"), nullptr);
  ASSERT_NE(FindingById(a, "hygiene.get_task_allow"), nullptr);
  ASSERT_NE(FindingById(a, "hygiene.enterprise_provisioning"), nullptr);
  const Finding* signer = FindingById(a, "publisher.signer");
  ASSERT_NE(signer, nullptr);
  EXPECT_THAT(signer->title, HasSubstr("ABCDE12345"));
  EXPECT_THAT(a.analysis.endpoints.hosts, Contains("api.demo-analytics.example.com"));
  EXPECT_GE(a.risk.score, data_.model.review_at);

  // Every report renders it.
  EXPECT_THAT(RenderText(a, false), HasSubstr("com.example.demo"));
  EXPECT_EQ(AssessmentJson(a)["app"]["platform"], "ios");
  EXPECT_THAT(RenderHtml({a}, "test", 1764979200), HasSubstr("Facebook Analytics"));
  EXPECT_FALSE(RenderSarif({a}, "test")["runs"][0]["results"].empty());
}

TEST_F(IosAssessTest, AddingATamperedSignatureNeverLowersTheScore) {
  auto signed_app = ios::IosApp::Open(Fixture("DemoSigned"));
  auto tampered = ios::IosApp::Open(Fixture("DemoTampered"));
  ASSERT_TRUE(signed_app.ok() && tampered.ok());
  Assessment before = AssessIos(*signed_app, data_.knowledge, data_.ios, data_.model);
  Assessment after = AssessIos(*tampered, data_.knowledge, data_.ios, data_.model);
  ASSERT_NE(FindingById(after, "anomaly.codesign.page_hash_mismatch"), nullptr);
  EXPECT_GE(after.risk.score, before.risk.score);
}

// sentry-cli from npm (tests/fixtures/ios/npm, scripts/setup.sh --test): a real Developer ID
// signature of GetSentry LLC, Team ID 97JCY7859U. A registry vendor listing that Team ID is
// recognised only when the chain to Apple's root verifies.
TEST_F(IosAssessTest, AVendorIsRecognisedByTeamIdOnlyThroughAVerifiedChain) {
  const std::string path = APPBAN_SOURCE_DIR "/tests/fixtures/ios/npm/node_modules/@sentry/cli-darwin/bin/sentry-cli";
  auto roots = ios::TrustAnchors::LoadPem(APPBAN_SOURCE_DIR "/data/apple-roots.pem");
  ASSERT_TRUE(roots.ok()) << roots.status().ToString();
  auto verified = ios::IosApp::Open(path, {}, &*roots);
  auto unchecked = ios::IosApp::Open(path);
  ASSERT_TRUE(verified.ok() && unchecked.ok()) << "run scripts/setup.sh --test (npm ci in tests/fixtures/ios/npm)";
  Vendor sentry;
  sentry.id = "sentry";
  sentry.name = "Functional Software, Inc. (Sentry)";
  sentry.country = "US";
  sentry.apple_team_ids = {"97JCY7859U"};
  data_.knowledge.vendors.push_back(sentry);

  Assessment a = AssessIos(*verified, data_.knowledge, data_.ios, data_.model);
  const Finding* vendor = FindingById(a, "publisher.vendor.sentry");
  ASSERT_NE(vendor, nullptr);
  ASSERT_FALSE(vendor->evidence.empty());
  EXPECT_EQ(vendor->evidence.front().kind, "team_id");
  EXPECT_EQ(vendor->evidence.front().value, "97JCY7859U");
  EXPECT_EQ(a.analysis.publisher.matched_by, "apple_team_id");
  EXPECT_THAT(FindingById(a, "publisher.signer")->description, HasSubstr("verified to Apple Root CA"));

  Assessment b = AssessIos(*unchecked, data_.knowledge, data_.ios, data_.model);
  EXPECT_EQ(FindingById(b, "publisher.vendor.sentry"), nullptr);
  EXPECT_THAT(FindingById(b, "publisher.signer")->description, HasSubstr("no trust anchor"));
}

TEST(IosKnowledgeTest, ShippedTeamIdsAreWellFormedAndSourced) {
  auto knowledge = LoadKnowledgeBase(APPBAN_SOURCE_DIR "/data");
  ASSERT_TRUE(knowledge.ok()) << knowledge.status().ToString();
  std::map<std::string, std::vector<std::string>> teams;
  for (const Vendor& v : knowledge->vendors) {
    if (!v.apple_team_ids.empty()) teams[v.id] = v.apple_team_ids;
  }
  EXPECT_EQ(teams["tencent"], std::vector<std::string>{"88L2Q4487U"});
  EXPECT_EQ(teams["kaspersky"], std::vector<std::string>{"2Y8XE5CQ94"});
  EXPECT_EQ(teams["telegram"], std::vector<std::string>{"6N38VWS5BX"});
  EXPECT_EQ(teams["bytedance"], std::vector<std::string>{"22MMUN2RN5"});  // CapCut's team
}

TEST(IosKnowledgeTest, BadEntriesAreNamed) {
  auto bad = ParseIosKnowledge(R"({"trackers": [{"name": "X", "exodus_id": 1, "class_prefixes": ["AB"]}],
                                   "capabilities": []})",
                               "t.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("t.json: trackers[0]: class prefix \"AB\" is too short"));
  auto no_id = ParseIosKnowledge(R"({"trackers": [{"name": "X"}], "capabilities": []})", "t.json");
  ASSERT_FALSE(no_id.ok());
  EXPECT_THAT(no_id.status().message(), HasSubstr("slug"));
}

}  // namespace
}  // namespace appban::assess
