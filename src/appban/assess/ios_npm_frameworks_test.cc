// The assessment of a real SDK xcframework: SmartlookAnalytics.xcframework from the npm package
// react-native-smartlook-analytics (tests/fixtures/ios/npm, installed by scripts/setup.sh --test;
// read and cross-checked with independent tools in src/appban/ios/npm_frameworks_test.cc). The
// tracker is named from data/ios-trackers.json by the framework name, by the Swift module its
// static library's classes carry, and by the endpoints among its strings.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "appban/assess/assess_test_support.h"
#include "appban/assess/ios_assess.h"
#include "appban/ios/app.h"

namespace appban::assess {
namespace {

constexpr char kNpm[] = APPBAN_SOURCE_DIR "/tests/fixtures/ios/npm/node_modules/react-native-smartlook-analytics/ios/";

bool HasEvidence(const Finding& f, const std::string& kind, const std::string& value) {
  return std::any_of(f.evidence.begin(), f.evidence.end(),
                     [&](const Evidence& e) { return e.kind == kind && e.value == value; });
}

class IosNpmFrameworksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(std::string(kNpm) + "SmartlookAnalytics.xcframework/Info.plist"))
        << "the React Native SDK packages are not installed: run scripts/setup.sh --test (npm ci in "
           "tests/fixtures/ios/npm)";
    ASSERT_NO_FATAL_FAILURE(testing::LoadShippedData(&data_));
  }
  const Finding* Smartlook(const Assessment& a) {
    auto it = std::find_if(a.analysis.findings.begin(), a.analysis.findings.end(),
                           [](const Finding& f) { return f.id == "tracker.277"; });
    return it == a.analysis.findings.end() ? nullptr : &*it;
  }
  testing::ShippedData data_;
};

TEST_F(IosNpmFrameworksTest, SmartlookIsNamedAsATrackerByFrameworkSwiftModuleAndEndpoint) {
  auto app = ios::IosApp::Open(std::string(kNpm) + "SmartlookAnalytics.xcframework");
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  Assessment a = AssessIos(*app, data_.knowledge, data_.ios, data_.model);
  const Finding* tracker = Smartlook(a);
  ASSERT_NE(tracker, nullptr);
  EXPECT_EQ(tracker->title, "Tracker SDK: SmartLook");
  EXPECT_TRUE(HasEvidence(*tracker, "framework", "SmartlookAnalytics"));
  // Both read from the static library's objects: only there since the reader reads ar archives.
  EXPECT_TRUE(HasEvidence(*tracker, "swift_module", "SmartlookAnalytics"));
  EXPECT_TRUE(HasEvidence(*tracker, "host", "manager.eu.smartlook.cloud"));
}

TEST_F(IosNpmFrameworksTest, TheObjcProxyAloneIsNamedByItsFrameworkAndClasses) {
  auto app = ios::IosApp::Open(std::string(kNpm) + "SmartlookObjCProxy.xcframework");
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  Assessment a = AssessIos(*app, data_.knowledge, data_.ios, data_.model);
  const Finding* tracker = Smartlook(a);
  ASSERT_NE(tracker, nullptr);
  EXPECT_TRUE(HasEvidence(*tracker, "framework", "SmartlookObjCProxy"));
  EXPECT_TRUE(HasEvidence(*tracker, "class", "SmartlookObjc"));
}

}  // namespace
}  // namespace appban::assess
