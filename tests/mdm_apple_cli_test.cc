// `appban mdm plan|apply|status` and `appban mdm apple-profile` through the real binary against
// the Apple MDM emulator: publish a WeChat ban with due process, export the bundle, queue the
// restrictions profile and RemoveApplication on the emulated NanoMDM, let the emulated phones
// check in and answer through the webhook, and see them compliant — or marked as phones the MDM
// cannot enforce on.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "appban/mdm/apple_test_support.h"
#include "support/mdm_cli_fixture.h"

namespace appban::testing {
namespace {

namespace fs = std::filesystem;
using mdm::testing::App;
using mdm::testing::Phone;

constexpr char kSupervised[] = "00008110-000A1C2E3F40801E";
constexpr char kUnsupervised[] = "00008030-001D45A83E62002E";

class MdmAppleCli : public MdmCliTest {
 protected:
  void SetUp() override {
    EmulatedAppleDevice supervised =
        Phone(kSupervised, "17.5", true, {App("com.tencent.xin", true, "WeChat"), App("com.apple.Pages", false)});
    supervised.device_name = "Health iPhone 1";
    EmulatedAppleDevice unsupervised = Phone(kUnsupervised, "17.5", false, {App("com.tencent.xin", false, "WeChat")});
    unsupervised.device_name = "BYOD iPhone";
    fixture_ = std::make_unique<mdm::testing::AppleFixture>(
        std::vector<EmulatedAppleDevice>{supervised, unsupervised},
        std::string(kSupervised) + " health-staff\n" + kUnsupervised + " health-staff\n");
    fs::create_directories(fs::path(data()) / "mdm");
    mdm::AppleWebhookOptions webhook;
    webhook.results_path = data() + "/mdm/apple-ios-results.json";
    auto receiver = mdm::AppleWebhookReceiver::Start("127.0.0.1", 0, webhook);
    ASSERT_TRUE(receiver.ok()) << receiver.status().ToString();
    receiver_ = std::move(*receiver);
    fixture_->emulator->set_webhook_url("http://127.0.0.1:" + std::to_string(receiver_->port()) + "/webhook");
    const mdm::AppleConnectorConfig& c = fixture_->config;
    config_ = (dir_.path() / "server.toml").string();
    std::ofstream(config_) << "data_dir = \"" << data() << "\"\n"
                           << "[[mdm.apple]]\nname = \"ios\"\nserver_url = \"" << c.server_url << "\"\n"
                           << "api_key_file = \"" << c.api_key_file << "\"\ndevices_file = \"" << c.devices_file
                           << "\"\nsigning_certificate_file = \"" << c.signing_certificate_file
                           << "\"\nsigning_key_file = \"" << c.signing_key_file << "\"\n"
                           << "profile_identifier = \"gov.example.appban.restrictions\"\n"
                           << "organization = \"Example CIO Office\"\n";
  }
  void Publish() { PublishBan({"ios:com.tencent.xin"}); }

  std::unique_ptr<mdm::testing::AppleFixture> fixture_;
  std::unique_ptr<mdm::AppleWebhookReceiver> receiver_;
};

TEST_F(MdmAppleCli, PublishApplyPhonesReportWeChatGoneUnsupervisedCannotBeEnforced) {
  Publish();
  auto plan = Mdm("plan");
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("+ InstallProfile gov.example.appban.restrictions blockedAppBundleIDs [com.tencent.xin]"),
            std::string::npos)
      << plan.out;
  EXPECT_TRUE(fixture_->emulator->request_log().empty());

  auto apply = Mdm("apply");
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
  EXPECT_NE(apply.out.find("queued RemoveApplication com.tencent.xin"), std::string::npos) << apply.out;
  EXPECT_EQ(fixture_->emulator->refused(), 0);

  auto again = Mdm("plan", {"--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)[0]["changes"], false) << again.out;

  // The phones check in; their answers reach appban through the webhook.
  ASSERT_TRUE(fixture_->emulator->CheckInAll().ok());
  auto status = Mdm("status");
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("2 device(s), 1 with a banned app still installed, 1 the MDM cannot enforce on"),
            std::string::npos)
      << status.out;
  auto report = Mdm("status", {"--json"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  nlohmann::json devices = nlohmann::json::parse(report.out)[0]["devices"];
  ASSERT_EQ(devices.size(), 2u);
  for (const auto& device : devices) {
    EXPECT_EQ(device["source"], "apple-mdm");
    EXPECT_EQ(device["platform"], "ios");
    if (device["device"] == kSupervised) {
      EXPECT_TRUE(device["violating"].empty()) << device;
      EXPECT_EQ(device["removed"], nlohmann::json::array({"com.tencent.xin"}));
      EXPECT_EQ(device["cannot_enforce_reason"], "");
    } else {
      EXPECT_EQ(device["violating"][0]["bundle_id"], "com.tencent.xin");
      EXPECT_NE(device["cannot_enforce_reason"].get<std::string>().find("unsupervised"), std::string::npos);
    }
  }

  // The signed profile for any MDM, verified by Debian's openssl.
  const std::string profile = (dir_.path() / "restrictions.mobileconfig").string();
  auto written = Mdm("apple-profile", {"--group", "health-staff", "-o", profile});
  ASSERT_EQ(written.exit_code, 0) << written.err;
  EXPECT_NE(written.out.find("blockedAppBundleIDs: com.tencent.xin"), std::string::npos) << written.out;
  const std::string verify = "openssl cms -verify -binary -inform DER -in " + profile + " -CAfile " +
                             fixture_->config.signing_certificate_file + " -purpose any -out " +
                             (dir_.path() / "content.xml").string() + " 2>/dev/null";
  EXPECT_EQ(std::system(verify.c_str()), 0);

  auto audit = Appban({"audit", "list", "--data", data(), "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_NE(audit.out.find("mdm.apple.apply"), std::string::npos);
  EXPECT_NE(audit.out.find(std::string("apple:ios/") + kSupervised), std::string::npos);

  // Revoke: the profile goes from every phone.
  RevokeBan("bundle2.json");
  auto lifted = Mdm("apply");
  ASSERT_EQ(lifted.exit_code, 0) << lifted.out << lifted.err;
  EXPECT_NE(lifted.out.find("queued RemoveProfile gov.example.appban.restrictions"), std::string::npos) << lifted.out;
  ASSERT_TRUE(fixture_->emulator->CheckInAll().ok());
  EXPECT_TRUE(fixture_->emulator->GetDevice(kSupervised).blocked.empty());

  ExpectWorkedExampleShowsThisRun("### Worked example (Apple)");
}

}  // namespace
}  // namespace appban::testing
