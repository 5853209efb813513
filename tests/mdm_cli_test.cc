// `appban mdm plan|apply|status` through the real binary against the AMAPI emulator: publish a
// WeChat ban with due process, export the bundle, then push it to the emulated enterprise, see the
// phones report WeChat gone, lift the ban and see appban's entry go.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include "appban/mdm/mdm_test_support.h"
#include "support/mdm_cli_fixture.h"

namespace appban::testing {
namespace {

namespace fs = std::filesystem;
using mdm::testing::AppReport;
using mdm::testing::Device;
using mdm::testing::PolicyName;

class MdmCli : public MdmCliTest {
 protected:
  void SetUp() override {
    fixture_ =
        std::make_unique<mdm::testing::Fixture>(std::vector<mdm::ManagedPolicy>{{PolicyName("default"), {"staff"}}});
    config_ = (dir_.path() / "server.toml").string();
    std::ofstream(config_) << "data_dir = \"" << data() << "\"\n"
                           << "[[mdm.amapi]]\nname = \"health\"\nenterprise = \"" << mdm::testing::kEnterprise
                           << "\"\nservice_account_key_file = \"" << fixture_->config.service_account_key_file
                           << "\"\nbase_url = \"" << fixture_->emulator->base_url() << "\"\n"
                           << "[[mdm.amapi.policies]]\nname = \"default\"\ngroups = [\"staff\"]\n";
  }
  void Publish() { PublishBan({"android:com.tencent.mm"}); }

  std::unique_ptr<mdm::testing::Fixture> fixture_;
};

TEST_F(MdmCli, PublishApplyDevicesReportWeChatGoneRevokeRemovesTheEntry) {
  auto& emulator = *fixture_->emulator;
  emulator.PutPolicy(
      PolicyName("default"),
      nlohmann::json{{"applications", {{{"packageName", "com.google.android.gm"}, {"installType", "FORCE_INSTALLED"}}}},
                     {"cameraDisabled", true}});
  for (int i = 1; i <= 3; ++i) {
    emulator.PutDevice(Device("phone-" + std::to_string(i), PolicyName("default"),
                              {AppReport("com.google.android.gm"), AppReport("com.tencent.mm")}));
  }
  ASSERT_EQ(Policy("alice", {"keys", "init"}).exit_code, 0);
  auto nothing = Mdm("plan");
  EXPECT_EQ(nothing.exit_code, 1) << "no bundle published yet";
  EXPECT_NE(nothing.err.find("no bundle has been published"), std::string::npos) << nothing.err;
  Publish();

  auto plan = Mdm("plan");
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("+ applications[] {packageName: com.tencent.mm, installType: BLOCKED}"), std::string::npos)
      << plan.out;
  EXPECT_EQ(emulator.patches(), 0);

  auto before = Mdm("status", {"--json"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(nlohmann::json::parse(before.out)[0]["violating_devices"], 3);

  auto apply = Mdm("apply");
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
  EXPECT_NE(apply.out.find("patched (version 2)"), std::string::npos) << apply.out;
  nlohmann::json stored = emulator.GetPolicy(PolicyName("default"));
  EXPECT_EQ(stored["applications"][1], (nlohmann::json{{"packageName", "com.tencent.mm"}, {"installType", "BLOCKED"}}));
  EXPECT_EQ(stored["cameraDisabled"], true);

  auto again = Mdm("plan", {"--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)[0]["changes"], false) << again.out;

  auto text = Mdm("status");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("3 device(s), 0 with a banned app still installed"), std::string::npos) << text.out;
  auto after = Mdm("status", {"--json"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  nlohmann::json report = nlohmann::json::parse(after.out)[0];
  EXPECT_EQ(report["violating_devices"], 0);
  for (const auto& device : report["devices"]) {
    EXPECT_EQ(device["source"], "amapi");
    EXPECT_TRUE(device["violating"].empty());
  }

  // The push is in the audit chain: what, to which MDM object, by which bundle.
  auto audit = Appban({"audit", "list", "--data", data(), "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_NE(audit.out.find("mdm.amapi.apply"), std::string::npos);
  EXPECT_NE(audit.out.find("amapi:" + PolicyName("default")), std::string::npos);

  // Revoke, publish the next bundle, apply: appban's entry goes, the administrator's stays.
  RevokeBan("bundle2.json");
  auto lifted = Mdm("apply");
  ASSERT_EQ(lifted.exit_code, 0) << lifted.out << lifted.err;
  EXPECT_NE(lifted.out.find("unblocked com.tencent.mm"), std::string::npos) << lifted.out;
  stored = emulator.GetPolicy(PolicyName("default"));
  ASSERT_EQ(stored["applications"].size(), 1u);
  EXPECT_EQ(stored["applications"][0]["packageName"], "com.google.android.gm");

  ExpectWorkedExampleShowsThisRun("## Worked example");
  // The README's tour shows the same plan, for an enterprise with a real-looking id and the
  // configuration where a package installs it.
  int shown = 0;
  for (Session session : ReadSessions(std::filesystem::path(APPBAN_SOURCE_DIR) / "README.md")) {
    if (!session.command.starts_with("appban mdm ")) continue;
    ++shown;
    session.command = std::regex_replace(session.command, std::regex("/etc/appban/server.toml"), "server.toml");
    for (auto& line : session.printed) line = std::regex_replace(line, std::regex("LC00abc123"), "LC00emu");
    FindRunShowing(session, "README.md");
  }
  EXPECT_EQ(shown, 1) << "the README lost its `appban mdm plan` session";
}

TEST_F(MdmCli, AKeyFileOthersCanReadIsRefused) {
  Publish();
  ASSERT_EQ(::chmod(fixture_->config.service_account_key_file.c_str(), 0644), 0);
  auto plan = Mdm("plan");
  EXPECT_EQ(plan.exit_code, 1);
  EXPECT_NE(plan.err.find("must be mode 0600"), std::string::npos) << plan.err;
  EXPECT_EQ(plan.err.find("PRIVATE KEY"), std::string::npos);
}

}  // namespace
}  // namespace appban::testing
