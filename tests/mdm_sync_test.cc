// The MDM sync loop end to end: the real `appban server` with an [[mdm.amapi]] connector, the AMAPI
// emulator (a real HTTP server on loopback validating every request against Google's discovery
// document) as the enterprise. What an administrator checks: publishing a WeChat ban patches the
// managed policy within seconds, the phones (which then report WeChat removed) show in
// /v1/admin/compliance as remediated next to agent devices, a phone still reporting it is
// violating, a phone on a policy appban does not manage is cannot-enforce, a waiver for a policy's
// group leaves that policy alone, a revoke removes the entry; and an MDM that is down shows in
// GET /v1/admin/mdm and /metrics without slowing the device protocol.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

#include "appban/common/json.h"
#include "appban/mdm/mdm_test_support.h"
#include "appban/policy/model.h"
#include "appban/protocol/messages.h"
#include "support/mdm_server_fixture.h"

namespace appban {
namespace {

using Clock = std::chrono::steady_clock;
using mdm::testing::AppReport;
using mdm::testing::PolicyName;

Json Phone(const std::string& id, const std::string& policy, std::vector<Json> reports) {
  Json device = mdm::testing::Device(id, policy, std::move(reports));
  device["lastPolicySyncTime"] = FormatTimestamp(mdm::testing::Now() - 60);
  return device;
}

class MdmSyncTest : public testing::MdmServerTest {
 protected:
  // `base_url` empty: the emulator's.
  // `tls`: the emulator serves HTTPS from its own CA, which the connector pins with ca_file.
  void StartServer(const std::string& base_url = "", bool tls = false) {
    testing::AmapiEmulatorOptions options;
    options.tls = tls;
    fixture_ = std::make_unique<mdm::testing::Fixture>(std::vector<mdm::ManagedPolicy>{}, options);
    auto& emulator = *fixture_->emulator;
    std::string ca_line;
    if (tls) {
      const std::string ca_file = (dir_.path() / "emulator-ca.pem").string();
      std::ofstream(ca_file) << emulator.ca_pem();
      ca_line = "ca_file = \"" + ca_file + "\"\n";
    }
    emulator.PutPolicy(
        PolicyName("default"),
        Json{{"applications",
              Json::array({Json{{"packageName", "com.google.android.gm"}, {"installType", "FORCE_INSTALLED"}}})},
             {"cameraDisabled", true}});
    emulator.PutPolicy(PolicyName("liaison"), Json::object());
    emulator.PutPolicy(PolicyName("kiosk"), Json::object());
    for (const char* id : {"phone-1", "phone-2", "phone-3"}) {
      emulator.PutDevice(
          Phone(id, PolicyName("default"), {AppReport("com.tencent.mm"), AppReport("com.google.android.gm")}));
    }
    emulator.PutDevice(Phone("liaison-1", PolicyName("liaison"), {AppReport("com.tencent.mm")}));
    emulator.PutDevice(Phone("kiosk-1", PolicyName("kiosk"), {AppReport("com.google.android.gm")}));

    std::ostringstream toml;
    toml << "[[mdm.amapi]]\nname = \"health\"\nenterprise = \"" << mdm::testing::kEnterprise
         << "\"\nservice_account_key_file = \"" << fixture_->config.service_account_key_file << "\"\nbase_url = \""
         << (base_url.empty() ? emulator.base_url() : base_url) << "\"\n"
         << ca_line << "[[mdm.amapi.policies]]\nname = \"default\"\ngroups = [\"staff\"]\n"
         << "[[mdm.amapi.policies]]\nname = \"liaison\"\ngroups = [\"liaison\"]\n";
    StartServerWith(toml.str());
  }

  // WeChat banned with due process: alice proposes, bob approves, alice publishes.
  int64_t BanWeChat() {
    return Ban("wechat", {*policy::MakeTarget(policy::TargetKind::kAndroidPackage, "com.tencent.mm")});
  }
  Json BlockedEntries(const std::string& policy) {
    Json blocked = Json::array();
    Json stored = fixture_->emulator->GetPolicy(PolicyName(policy));
    for (const Json& entry : stored.value("applications", Json::array())) {
      if (entry.value("installType", "") == "BLOCKED") blocked.push_back(entry.value("packageName", ""));
    }
    return blocked;
  }

  std::unique_ptr<mdm::testing::Fixture> fixture_;
};

TEST_F(MdmSyncTest, PublishPatchesThePolicyAndThePhonesCountInCompliance) {
  StartServer("", /*tls=*/true);
  ASSERT_EQ(fixture_->emulator->base_url().rfind("https://", 0), 0u);
  ASSERT_EQ(Admin("POST", "/v1/admin/groups", {{"name", "liaison"}}).status, 201);
  int64_t version = BanWeChat();
  ASSERT_EQ(version, 1);
  ASSERT_TRUE(SyncedTo(1)) << Connector().dump() << server_->output();

  // The managed policy blocks WeChat, keeping what its administrator set.
  EXPECT_EQ(BlockedEntries("default"), Json::array({"com.tencent.mm"}));
  Json stored = fixture_->emulator->GetPolicy(PolicyName("default"));
  EXPECT_TRUE(stored.value("cameraDisabled", false));
  EXPECT_EQ(stored["applications"][0].value("installType", ""), "FORCE_INSTALLED");

  // The phones of both managed policies reported WeChat removed: remediated. kiosk-1's policy is
  // not appban's: cannot-enforce, never compliant.
  Json compliance = RuleCompliance("wechat");
  Json rule = compliance["rule"];
  EXPECT_EQ(rule.value("remediated", -1), 4) << compliance.dump(1);
  EXPECT_EQ(rule.value("compliant", -1), 4) << compliance.dump(1);
  EXPECT_EQ(rule.value("cannot_enforce", -1), 1) << compliance.dump(1);
  EXPECT_EQ(compliance["cannot_enforce_devices"].size(), 1u);

  // Devices carry their source, platform, push and MDM times; the list filters by source.
  Json phones = Body(Admin("GET", "/v1/admin/devices?source=amapi&platform=android"));
  ASSERT_EQ(phones["devices"].size(), 5u) << phones.dump(1);
  Json phone = phones["devices"][0];
  EXPECT_EQ(phone.value("source", ""), "amapi");
  EXPECT_EQ(phone.value("platform", ""), "android");
  EXPECT_TRUE(phone["mdm"]["synced_at"].is_string()) << phone.dump(1);
  EXPECT_EQ(Body(Admin("GET", "/v1/admin/devices?source=agent"))["devices"].size(), 0u);
  Json detail = Body(Admin("GET", "/v1/admin/devices/" + compliance["cannot_enforce_devices"][0].get<std::string>()));
  EXPECT_TRUE(detail["cannot_enforce"].is_string()) << detail.dump(1);
  EXPECT_NE(detail["cannot_enforce"].get<std::string>().find("does not manage"), std::string::npos);

  // Fleet totals: the unmanaged phone is never fully compliant.
  Json totals = Body(Admin("GET", "/v1/admin/compliance"))["totals"];
  EXPECT_EQ(totals.value("cannot_enforce_any", -1), 1) << totals.dump(1);
  EXPECT_EQ(totals.value("fully_compliant", -1), 4) << totals.dump(1);

  // Every push is in the audit chain, with the MDM object and the bundle.
  std::vector<Json> pushes = AuditEntries("mdm.amapi.apply");
  for (const Json& entry : pushes) EXPECT_EQ(entry["after"].value("bundle_version", 0), 1) << entry.dump(1);
  EXPECT_EQ(pushes.size(), 2u);

  // /metrics shows the phones by source and the connector's sync.
  auto metrics = Call("GET", "/metrics", "", {});
  EXPECT_NE(metrics.body.find("appban_devices{source=\"amapi\"} 5"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("appban_mdm_sync_up{connector=\"health\",source=\"amapi\"} 1"), std::string::npos);

  // A phone that still reports WeChat installed after the push is violating.
  fixture_->emulator->PutDevice(Phone("phone-3", PolicyName("default"), {AppReport("com.tencent.mm")}));
  int64_t runs = Connector().value("runs", int64_t{0});
  ASSERT_TRUE(SyncedTo(1, runs)) << Connector().dump();
  compliance = RuleCompliance("wechat");
  EXPECT_EQ(compliance["rule"].value("violating", -1), 1) << compliance.dump(1);
  ASSERT_EQ(compliance["violating_devices"].size(), 1u);
}

TEST_F(MdmSyncTest, WaiverLeavesThatPolicyAloneAndRevokeRemovesTheEntries) {
  StartServer();
  ASSERT_EQ(Admin("POST", "/v1/admin/groups", {{"name", "liaison"}}).status, 201);
  ASSERT_EQ(BanWeChat(), 1);
  ASSERT_TRUE(SyncedTo(1)) << Connector().dump() << server_->output();
  EXPECT_EQ(BlockedEntries("liaison"), Json::array({"com.tencent.mm"}));

  auto waiver = Admin("POST", "/v1/admin/waivers",
                      {{"id", "w-liaison"},
                       {"rule_id", "wechat"},
                       {"subject_kind", "group"},
                       {"subject", "liaison"},
                       {"justification", "liaison office must keep contact with the vendor"},
                       {"expires_at", FormatTimestamp(mdm::testing::Now() + 86400)}},
                      Bob());
  // bob requests the waiver; the administrator, a second person, grants it.
  ASSERT_EQ(waiver.status, 202) << waiver.body;
  auto granted =
      Admin("POST", "/v1/admin/changes/" + Json::parse(waiver.body)["change"]["id"].get<std::string>() + "/approve",
            Json::object());
  ASSERT_EQ(granted.status, 200) << granted.body;
  ASSERT_EQ(Publish(), 2);
  ASSERT_TRUE(SyncedTo(2)) << Connector().dump();
  EXPECT_EQ(BlockedEntries("liaison"), Json::array());
  EXPECT_EQ(BlockedEntries("default"), Json::array({"com.tencent.mm"}));
  EXPECT_EQ(RuleCompliance("wechat")["rule"].value("waived", -1), 1);

  // Revoking a published rule relaxes enforcement: proposed by one person, agreed by bob.
  auto proposed = Admin("POST", "/v1/admin/rules/wechat/revoke", {{"reason", "superseded"}});
  ASSERT_EQ(proposed.status, 202) << proposed.body;
  auto revoked =
      Admin("POST", "/v1/admin/changes/" + Json::parse(proposed.body)["change"]["id"].get<std::string>() + "/approve",
            Json::object(), Bob());
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  ASSERT_EQ(Publish(), 3);
  ASSERT_TRUE(SyncedTo(3)) << Connector().dump();
  EXPECT_EQ(BlockedEntries("default"), Json::array());
  Json stored = fixture_->emulator->GetPolicy(PolicyName("default"));
  EXPECT_EQ(stored["applications"].size(), 1u) << stored.dump(1);  // Gmail's entry, as it was
  EXPECT_EQ(Admin("GET", "/v1/admin/compliance/rules/wechat").status, 404);
}

TEST_F(MdmSyncTest, AConnectorThatIsDownShowsTheErrorAndDoesNotSlowDevices) {
  // A closed loopback port: every MDM request fails at once.
  StartServer("http://127.0.0.1:9");
  ASSERT_EQ(BanWeChat(), 1);
  ASSERT_TRUE(testing::PollUntil([&] { return Connector().value("state", "") == "error"; }, std::chrono::seconds(30)))
      << Connector().dump();
  Json connector = Connector();
  EXPECT_GE(connector.value("consecutive_failures", 0), 1);
  EXPECT_TRUE(connector["error"].is_string());
  EXPECT_EQ(connector.value("pushed_version", -1), 0);

  // The device protocol answers as usual while the connector retries.
  auto token = Admin("POST", "/v1/admin/enrollment-tokens", {{"count", 1}, {"ttl_seconds", 3600}});
  ASSERT_EQ(token.status, 201) << token.body;
  protocol::EnrollRequest request{Body(token)["tokens"][0].value("token", ""), "ws-1", "linux", "test"};
  const auto started = Clock::now();
  auto enrolled = Call("POST", "/v1/enroll", protocol::ToJson(request).dump(), {});
  ASSERT_EQ(enrolled.status, 201) << enrolled.body;
  auto credential = protocol::ParseEnrollResponse(enrolled.body)->credential;
  protocol::CheckinRequest checkin;
  checkin.inventory_hash = protocol::InventoryHash({});
  auto answered = Call("POST", "/v1/checkin", protocol::ToJson(checkin).dump(), Bearer(credential));
  EXPECT_EQ(answered.status, 200) << answered.body;
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(2));

  auto metrics = Call("GET", "/metrics", "", {});
  EXPECT_NE(metrics.body.find("appban_mdm_sync_up{connector=\"health\",source=\"amapi\"} 0"), std::string::npos)
      << metrics.body;
}

}  // namespace
}  // namespace appban
