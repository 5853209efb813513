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
#include "support/mdm_cli_fixture.h"

namespace appban::testing {
namespace {

namespace fs = std::filesystem;
using namespace mdm::testing;

class IntuneCli : public MdmCliTest {
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
  std::unique_ptr<IntuneFixture> fixture_;
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

  PublishBan({"ios:com.tencent.xin", "android:com.tencent.mm"}, "b1.json");

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

  RevokeBan("b2.json");
  auto lifted = Mdm("apply");
  ASSERT_EQ(lifted.exit_code, 0) << lifted.out << lifted.err;
  EXPECT_TRUE(emulator.Assignments(wechat).empty());
  EXPECT_TRUE(emulator.CompliancePolicy("c0mp1")["restrictedApps"].empty());
  EXPECT_EQ(emulator.Configuration("c0nf1")["cameraBlocked"], true);

  ExpectWorkedExampleShowsThisRun("### Worked example");
}

}  // namespace
}  // namespace appban::testing
