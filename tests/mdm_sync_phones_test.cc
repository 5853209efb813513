// The MDM sync loop end to end for Intune and Apple MDM, as tests/mdm_sync_test.cc is for AMAPI:
// the real `appban server` with an [[mdm.intune]] or [[mdm.apple]] connector against its emulator
// (a real HTTP server on loopback validating every request against Microsoft's CSDL or Apple's
// YAML schema). What an administrator checks: publishing a WeChat ban makes the sync loop push it
// (uninstall assignments and restricted-app/hidden-app lists; the restrictions profile and
// RemoveApplication on the command queue), every push is in the audit chain, and once the phones
// have acted on it the next inventory shows them remediated in /v1/admin/compliance, listed with
// source intune / apple-mdm; a phone the MDM cannot enforce on is never counted compliant.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "appban/mdm/apple_test_support.h"
#include "appban/mdm/intune_test_support.h"
#include "support/mdm_server_fixture.h"

namespace appban {
namespace {

namespace fs = std::filesystem;
using mdm::testing::Android;
using mdm::testing::Ios;
using testing::PollUntil;

constexpr char kSupervisedIphone[] = "4c1d0001-0000-4000-8000-000000000001";
constexpr char kWorkProfile[] = "4c1d0002-0000-4000-8000-000000000002";
constexpr char kByodIphone[] = "4c1d0003-0000-4000-8000-000000000003";

// The devices GET /v1/admin/devices lists for `source`.
class PhonesSyncTest : public testing::MdmServerTest {
 protected:
  Json Devices(const std::string& source) {
    return Body(Admin("GET", "/v1/admin/devices?source=" + source))["devices"];
  }
  // Waits for the sync loop's next complete run from bundle `version`.
  bool NextRun(int64_t version) { return SyncedTo(version, Runs()); }
};

TEST_F(PhonesSyncTest, IntunePublishAssignsUninstallAndThePhonesCountRemediated) {
  appban::testing::IntuneEmulatorOptions options;
  options.devices_sync_on_demand = true;  // phones act on a change at their next check-in
  mdm::testing::IntuneFixture fixture(options);
  auto& emulator = *fixture.emulator;
  const std::string ios_wechat = emulator.AddMobileApp(mdm::testing::IosStoreApp("WeChat", "com.tencent.xin"));
  const std::string android_wechat = emulator.AddMobileApp(mdm::testing::AndroidStoreApp("WeChat", "com.tencent.mm"));
  emulator.PutCompliancePolicy("c0mp1",
                               Json{{"@odata.type", "#microsoft.graph.iosCompliancePolicy"},
                                    {"displayName", "iOS baseline"},
                                    {"passcodeRequired", true},
                                    {"restrictedApps", Json::array()}},
                               {mdm::testing::kStaffGroup});
  emulator.PutConfiguration("c0nf1",
                            Json{{"@odata.type", "#microsoft.graph.iosGeneralDeviceConfiguration"},
                                 {"displayName", "iOS restrictions"},
                                 {"cameraBlocked", true},
                                 {"appsVisibilityListType", "none"}},
                            {mdm::testing::kStaffGroup});
  // Two staff phones with WeChat deployed by Intune; an unsupervised iPhone with WeChat from the
  // App Store, outside the target group.
  emulator.PutDevice(mdm::testing::ManagedDevice(kSupervisedIphone, "iOS", true), {mdm::testing::kStaffGroup},
                     {{"WeChat", "com.tencent.xin", "8.0.40", "ios", true}});
  emulator.PutDevice(mdm::testing::ManagedDevice(kWorkProfile, "Android", false), {mdm::testing::kStaffGroup},
                     {{"WeChat", "com.tencent.mm", "8.0.40", "androidWorkProfile", true}});
  emulator.PutDevice(mdm::testing::ManagedDevice(kByodIphone, "iOS", false), {mdm::testing::kOtherGroup},
                     {{"WeChat", "com.tencent.xin", "8.0.40", "ios", false}});

  const auto& c = fixture.config;
  std::ostringstream toml;
  toml << "[[mdm.intune]]\nname = \"ministry\"\ntenant_id = \"" << c.tenant_id << "\"\nclient_id = \"" << c.client_id
       << "\"\nclient_secret_file = \"" << c.client_secret_file << "\"\ngraph_base_url = \"" << c.graph_base_url
       << "\"\nlogin_base_url = \"" << c.login_base_url << "\"\ndevice_groups = [\"staff\"]\n"
       << "[[mdm.intune.targets]]\nentra_group_id = \"" << mdm::testing::kStaffGroup
       << "\"\ngroups = [\"staff\"]\nios_compliance_policy_id = \"c0mp1\"\nios_device_configuration_id = \"c0nf1\"\n";
  StartServerWith(toml.str());
  ASSERT_EQ(Ban("wechat", {Ios("com.tencent.xin"), Android("com.tencent.mm")}), 1);
  ASSERT_TRUE(SyncedTo(1)) << Connector().dump() << server_->output();

  // The push: an uninstall assignment per banned app to the staff group, WeChat in the compliance
  // policy's restrictedApps and the configuration's hidden apps, the administrator's settings kept.
  for (const std::string& app : {ios_wechat, android_wechat}) {
    std::vector<Json> assignments = emulator.Assignments(app);
    ASSERT_EQ(assignments.size(), 1u) << app;
    EXPECT_EQ(assignments[0].value("intent", ""), "uninstall");
    EXPECT_EQ(assignments[0]["target"].value("groupId", ""), mdm::testing::kStaffGroup);
  }
  Json policy = emulator.CompliancePolicy("c0mp1");
  ASSERT_EQ(policy["restrictedApps"].size(), 1u) << policy.dump(1);
  EXPECT_EQ(policy["restrictedApps"][0].value("appId", ""), "com.tencent.xin");
  EXPECT_TRUE(policy.value("passcodeRequired", false));
  Json configuration = emulator.Configuration("c0nf1");
  EXPECT_EQ(configuration.value("appsVisibilityListType", ""), "appsNotInListCompliant");
  EXPECT_TRUE(configuration.value("cameraBlocked", false));

  // Every push is audited by the sync loop, with the Graph object and the bundle.
  std::vector<Json> pushes = AuditEntries("mdm.intune.apply");
  EXPECT_EQ(pushes.size(), 4u);
  for (const Json& entry : pushes) {
    EXPECT_EQ(entry.value("actor", ""), "mdm-sync") << entry.dump(1);
    EXPECT_EQ(entry["after"].value("bundle_version", 0), 1) << entry.dump(1);
    EXPECT_EQ(entry.value("object", "").rfind("intune:/", 0), 0u) << entry.dump(1);
  }

  // The phones have not checked in yet: all three still have WeChat.
  Json compliance = RuleCompliance("wechat");
  EXPECT_EQ(compliance["rule"].value("violating", -1), 3) << compliance.dump(1);

  // They check in and act on the assignments; the next inventory shows the staff phones
  // remediated. The BYOD iPhone keeps its App Store copy: violating, and flagged cannot-enforce.
  emulator.SyncDevices();
  ASSERT_TRUE(NextRun(1)) << Connector().dump();
  compliance = RuleCompliance("wechat");
  EXPECT_EQ(compliance["rule"].value("remediated", -1), 2) << compliance.dump(1);
  EXPECT_EQ(compliance["rule"].value("violating", -1), 1) << compliance.dump(1);
  ASSERT_EQ(compliance["violating_devices"].size(), 1u);

  Json phones = Devices("intune");
  ASSERT_EQ(phones.size(), 3u) << phones.dump(1);
  int ios = 0, android = 0;
  for (const Json& phone : phones) {
    EXPECT_EQ(phone.value("source", ""), "intune");
    ios += phone.value("platform", "") == "ios";
    android += phone.value("platform", "") == "android";
  }
  EXPECT_EQ(ios, 2);
  EXPECT_EQ(android, 1);
  Json byod = Body(Admin("GET", "/v1/admin/devices/" + compliance["violating_devices"][0].get<std::string>()));
  ASSERT_TRUE(byod["cannot_enforce"].is_string()) << byod.dump(1);
  EXPECT_NE(byod["cannot_enforce"].get<std::string>().find("unsupervised"), std::string::npos);
  Json totals = Body(Admin("GET", "/v1/admin/compliance"))["totals"];
  EXPECT_EQ(totals.value("fully_compliant", -1), 2) << totals.dump(1);

  // Nothing changed since: the loop's later runs push nothing more.
  EXPECT_EQ(AuditEntries("mdm.intune.apply").size(), 4u);
}

// `appban mdm apple-webhook` as a child process on a loopback port, stopped on destruction.
class WebhookProcess {
 public:
  WebhookProcess(const std::string& config, const fs::path& data_dir, const fs::path& log) : log_(log) {
    // Everything the child needs is made before fork: after it, only async-signal-safe calls.
    const std::string binary = testing::AppbanBinary();
    const std::string data = data_dir.string();
    const std::string log_path = log.string();
    pid_ = fork();
    if (pid_ == 0) {
      int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(127);
      execl(binary.c_str(), binary.c_str(), "mdm", "apple-webhook", "--config", config.c_str(), "--data-dir",
            data.c_str(), "--listen", "127.0.0.1:0", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~WebhookProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  // "http://127.0.0.1:PORT/webhook" once the receiver listens ("" if it did not start).
  std::string Url() {
    std::string url;
    PollUntil(
        [&] {
          std::ifstream in(log_);
          std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
          size_t at = text.find("webhook on ");
          if (at == std::string::npos) return false;
          size_t end = text.find(',', at);
          url = text.substr(at + 11, end - at - 11);
          return true;
        },
        std::chrono::seconds(10));
    return url;
  }
  std::string Output() const {
    std::ifstream in(log_);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

 private:
  pid_t pid_ = -1;
  fs::path log_;
};

TEST_F(PhonesSyncTest, ApplePublishQueuesRemovalAndThePhonesCountRemediated) {
  constexpr char kSupervised[] = "00008110-000A1C2E3F40801E";
  constexpr char kUnsupervised[] = "00008030-001D45A83E62002E";
  using mdm::testing::App;
  appban::testing::EmulatedAppleDevice supervised = mdm::testing::Phone(
      kSupervised, "17.5", true, {App("com.tencent.xin", true, "WeChat"), App("com.apple.Pages", false)});
  appban::testing::EmulatedAppleDevice unsupervised =
      mdm::testing::Phone(kUnsupervised, "17.5", false, {App("com.tencent.xin", false, "WeChat")});
  mdm::testing::AppleFixture fixture({supervised, unsupervised},
                                     std::string(kSupervised) + " staff\n" + kUnsupervised + " staff\n");
  const mdm::AppleConnectorConfig& c = fixture.config;
  std::ostringstream toml;
  toml << "[[mdm.apple]]\nname = \"ios\"\nserver_url = \"" << c.server_url << "\"\napi_key_file = \"" << c.api_key_file
       << "\"\ndevices_file = \"" << c.devices_file << "\"\nsigning_certificate_file = \"" << c.signing_certificate_file
       << "\"\nsigning_key_file = \"" << c.signing_key_file
       << "\"\nprofile_identifier = \"gov.example.appban.restrictions\"\norganization = \"Example CIO Office\"\n";
  StartServerWith(toml.str());

  // The MDM posts the devices' answers to `appban mdm apple-webhook`, run beside the server on
  // its data directory.
  WebhookProcess webhook((dir_.path() / "server.toml").string(), data_dir(), dir_.path() / "webhook.log");
  const std::string url = webhook.Url();
  ASSERT_FALSE(url.empty()) << webhook.Output();
  fixture.emulator->set_webhook_url(url);

  ASSERT_EQ(Ban("wechat", {Ios("com.tencent.xin")}), 1);
  ASSERT_TRUE(SyncedTo(1)) << Connector().dump() << server_->output();

  // The push: the restrictions profile, RemoveApplication and the inventory queries are queued for
  // both phones, each device's push audited by the sync loop.
  for (const char* udid : {kSupervised, kUnsupervised}) {
    std::vector<std::string> queued = fixture.emulator->queued_request_types(udid);
    EXPECT_NE(std::find(queued.begin(), queued.end(), "InstallProfile"), queued.end()) << udid;
    EXPECT_NE(std::find(queued.begin(), queued.end(), "RemoveApplication"), queued.end()) << udid;
    EXPECT_NE(std::find(queued.begin(), queued.end(), "InstalledApplicationList"), queued.end()) << udid;
  }
  EXPECT_EQ(fixture.emulator->refused(), 0);
  std::vector<Json> pushes = AuditEntries("mdm.apple.apply");
  ASSERT_EQ(pushes.size(), 2u);
  for (const Json& entry : pushes) {
    EXPECT_EQ(entry.value("actor", ""), "mdm-sync") << entry.dump(1);
    EXPECT_EQ(entry["after"].value("bundle_version", 0), 1) << entry.dump(1);
    EXPECT_EQ(entry.value("object", "").rfind("apple:ios/", 0), 0u) << entry.dump(1);
  }

  // Until the phones answer, appban knows nothing of them: never counted compliant.
  Json totals = Body(Admin("GET", "/v1/admin/compliance"))["totals"];
  EXPECT_EQ(totals.value("fully_compliant", -1), 0) << totals.dump(1);

  // The phones check in: the supervised one removes WeChat (the MDM installed it); the
  // unsupervised one refuses to remove an App Store copy. The next inventory shows it.
  auto ran = fixture.emulator->CheckInAll();
  ASSERT_TRUE(ran.ok()) << ran.status().ToString() << webhook.Output();
  ASSERT_TRUE(NextRun(1)) << Connector().dump();
  Json compliance = RuleCompliance("wechat");
  EXPECT_EQ(compliance["rule"].value("remediated", -1), 1) << compliance.dump(1);
  EXPECT_EQ(compliance["rule"].value("violating", -1), 1) << compliance.dump(1);
  ASSERT_EQ(compliance["violating_devices"].size(), 1u);
  Json byod = Body(Admin("GET", "/v1/admin/devices/" + compliance["violating_devices"][0].get<std::string>()));
  ASSERT_TRUE(byod["cannot_enforce"].is_string()) << byod.dump(1);
  EXPECT_NE(byod["cannot_enforce"].get<std::string>().find("unsupervised"), std::string::npos);

  Json phones = Devices("apple-mdm");
  ASSERT_EQ(phones.size(), 2u) << phones.dump(1);
  for (const Json& phone : phones) {
    EXPECT_EQ(phone.value("source", ""), "apple-mdm");
    EXPECT_EQ(phone.value("platform", ""), "ios");
  }
  totals = Body(Admin("GET", "/v1/admin/compliance"))["totals"];
  EXPECT_EQ(totals.value("fully_compliant", -1), 1) << totals.dump(1);
  EXPECT_TRUE(fixture.emulator->GetDevice(kSupervised).blocked.count("com.tencent.xin"));
}

}  // namespace
}  // namespace appban
