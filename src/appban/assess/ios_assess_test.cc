#include "appban/assess/ios_assess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "appban/ios/app.h"

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
  void SetUp() override {
    auto knowledge = LoadKnowledgeBase(APPBAN_SOURCE_DIR "/data");
    ASSERT_TRUE(knowledge.ok()) << knowledge.status().ToString();
    knowledge_ = std::move(*knowledge);
    auto ios = LoadIosKnowledge(APPBAN_SOURCE_DIR "/data");
    ASSERT_TRUE(ios.ok()) << ios.status().ToString();
    ios_ = std::move(*ios);
    auto model = LoadRiskModel(APPBAN_SOURCE_DIR "/data/risk-model.toml");
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(*model);
  }
  KnowledgeBase knowledge_;
  IosKnowledge ios_;
  RiskModel model_;
};

TEST_F(IosAssessTest, TheFixtureAppsFindingsRestOnItsEvidence) {
  auto app = ios::IosApp::Open(Fixture("Demo.ipa"));
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  Assessment a = AssessIos(*app, knowledge_, ios_, model_);
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
  ASSERT_NE(FindingById(a, "capability.advertising_id.used"), nullptr);
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
  EXPECT_GE(a.risk.score, model_.review_at);

  // Every report renders it.
  EXPECT_THAT(RenderText(a, false), HasSubstr("com.example.demo"));
  EXPECT_EQ(AssessmentJson(a)["app"]["platform"], "ios");
  EXPECT_THAT(RenderHtml({a}, "test"), HasSubstr("Facebook Analytics"));
  EXPECT_FALSE(RenderSarif({a}, "test")["runs"][0]["results"].empty());
}

TEST_F(IosAssessTest, AddingATamperedSignatureNeverLowersTheScore) {
  auto signed_app = ios::IosApp::Open(Fixture("DemoSigned"));
  auto tampered = ios::IosApp::Open(Fixture("DemoTampered"));
  ASSERT_TRUE(signed_app.ok() && tampered.ok());
  Assessment before = AssessIos(*signed_app, knowledge_, ios_, model_);
  Assessment after = AssessIos(*tampered, knowledge_, ios_, model_);
  ASSERT_NE(FindingById(after, "anomaly.codesign.page_hash_mismatch"), nullptr);
  EXPECT_GE(after.risk.score, before.risk.score);
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
