// `appban mdm plan|apply|status` through the real binary against the Intune emulator: publish a
// WeChat ban (iOS and Android) with due process, push it to the emulated tenant as uninstall
// assignments, restricted-app compliance and a hidden-apps list, see the staff phones report
// WeChat gone, lift the ban and see appban's entries go while the administrator's stay.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "appban/mdm/intune_test_support.h"
#include "support/test_support.h"

namespace appban::testing {
namespace {

namespace fs = std::filesystem;
using namespace mdm::testing;

class IntuneCli : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = std::make_unique<IntuneFixture>();
    config_ = (dir_.path() / "server.toml").string();
    const auto& c = fixture_->config;
    std::ofstream(config_) << "data_dir = \"" << data() << "\"\n"
                           << "[[mdm.intune]]\nname = \"ministry\"\ntenant_id = \"" << c.tenant_id
                           << "\"\nclient_id = \"" << c.client_id << "\"\nclient_secret_file = \""
                           << c.client_secret_file << "\"\ngraph_base_url = \"" << c.graph_base_url
                           << "\"\nlogin_base_url = \"" << c.login_base_url << "\"\ndevice_groups = [\"staff\"]\n"
                           << "[[mdm.intune.targets]]\nentra_group_id = \"" << kStaffGroup
                           << "\"\ngroups = [\"staff\"]\nios_compliance_policy_id = \"c0mp1\"\n"
                           << "ios_device_configuration_id = \"c0nf1\"\n";
  }
  CommandResult Appban(std::vector<std::string> args) {
    args.insert(args.begin(), AppbanBinary());
    return RunCommand(args);
  }
  CommandResult Policy(const std::string& user, std::vector<std::string> args) {
    std::vector<std::string> full = {"policy", "--data", data(), "--user", user};
    full.insert(full.end(), args.begin(), args.end());
    return Appban(full);
  }
  // With APPBAN_MDM_EXAMPLE set, every command and its output is printed: docs/mdm.md's Intune
  // worked example is this test's output.
  CommandResult Mdm(const std::string& verb, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"mdm", verb, "--config", config_, "--user", "carol"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult result = Appban(args);
    if (std::getenv("APPBAN_MDM_EXAMPLE") != nullptr) {
      std::cout << "$ appban mdm " << verb << " --config server.toml";
      for (const auto& arg : extra) std::cout << " " << arg;
      std::cout << "\n" << result.out << result.err;
    }
    return result;
  }
  std::string data() const { return (dir_.path() / "data").string(); }

  TempDir dir_;
  std::unique_ptr<IntuneFixture> fixture_;
  std::string config_;
};

TEST_F(IntuneCli, PublishApplyPhonesReportWeChatGoneRevokeRemovesAppbansEntries) {
  auto& emulator = *fixture_->emulator;
  const std::string wechat = emulator.AddMobileApp(IosStoreApp("WeChat", "com.tencent.xin"));
  emulator.AddMobileApp(AndroidStoreApp("WeChat", "com.tencent.mm"));
  emulator.PutCompliancePolicy("c0mp1",
                               nlohmann::json{{"@odata.type", "#microsoft.graph.iosCompliancePolicy"},
                                              {"displayName", "iOS baseline"},
                                              {"passcodeRequired", true},
                                              {"restrictedApps", nlohmann::json::array()}},
                               {kStaffGroup});
  emulator.PutConfiguration("c0nf1",
                            nlohmann::json{{"@odata.type", "#microsoft.graph.iosGeneralDeviceConfiguration"},
                                           {"displayName", "iOS restrictions"},
                                           {"cameraBlocked", true},
                                           {"appsVisibilityListType", "none"}},
                            {kStaffGroup});
  emulator.PutDevice(ManagedDevice("4c1d0001-0000-4000-8000-000000000001", "iOS", true), {kStaffGroup},
                     {{"WeChat", "com.tencent.xin", "8.0.40", "ios", true}});
  emulator.PutDevice(ManagedDevice("4c1d0002-0000-4000-8000-000000000002", "Android", false), {kStaffGroup},
                     {{"WeChat", "com.tencent.mm", "8.0.40", "androidWorkProfile", true}});
  emulator.PutDevice(ManagedDevice("4c1d0003-0000-4000-8000-000000000003", "iOS", false), {kOtherGroup},
                     {{"WeChat", "com.tencent.xin", "8.0.40", "ios", false}});

  ASSERT_EQ(Policy("alice", {"keys", "init"}).exit_code, 0);
  auto proposed = Policy("alice", {"rules", "add", "--id", "wechat", "--title", "WeChat on government phones",
                                   "--target", "ios:com.tencent.xin", "--target", "android:com.tencent.mm"});
  ASSERT_EQ(proposed.exit_code, 0) << proposed.err;
  ASSERT_EQ(Policy("bob", {"rules", "approve", "wechat"}).exit_code, 0);
  ASSERT_EQ(Policy("bob", {"rules", "publish", "wechat"}).exit_code, 0);
  ASSERT_EQ(Policy("bob", {"bundle", "export", "--out", (dir_.path() / "b1.json").string()}).exit_code, 0);

  auto before = Mdm("status");
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_NE(before.out.find("3 device(s), 3 with a banned app still installed"), std::string::npos) << before.out;

  auto plan = Mdm("plan");
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("intent: uninstall"), std::string::npos) << plan.out;
  EXPECT_EQ(emulator.writes(), 0);

  auto apply = Mdm("apply");
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
  EXPECT_NE(apply.out.find("apply: done"), std::string::npos) << apply.out;

  auto again = Mdm("plan", {"--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)[0]["changes"], false) << again.out;

  auto after = Mdm("status");
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_NE(after.out.find("3 device(s), 1 with a banned app still installed"), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("CANNOT ENFORCE"), std::string::npos) << after.out;

  auto audit = Appban({"audit", "list", "--data", data(), "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_NE(audit.out.find("mdm.intune.apply"), std::string::npos);
  EXPECT_NE(audit.out.find("intune:/v1.0/deviceAppManagement/mobileApps/" + wechat + "/assignments"),
            std::string::npos);

  ASSERT_EQ(Policy("bob", {"rules", "revoke", "wechat", "--reason", "court order"}).exit_code, 0);
  ASSERT_EQ(Policy("bob", {"bundle", "export", "--out", (dir_.path() / "b2.json").string()}).exit_code, 0);
  auto lifted = Mdm("apply");
  ASSERT_EQ(lifted.exit_code, 0) << lifted.out << lifted.err;
  EXPECT_TRUE(emulator.Assignments(wechat).empty());
  EXPECT_TRUE(emulator.CompliancePolicy("c0mp1")["restrictedApps"].empty());
  EXPECT_EQ(emulator.Configuration("c0nf1")["cameraBlocked"], true);
}

}  // namespace
}  // namespace appban::testing
