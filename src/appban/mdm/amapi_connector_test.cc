#include "appban/mdm/amapi_connector.h"

#include <gtest/gtest.h>

#include "appban/mdm/mdm_test_support.h"

namespace appban::mdm {
namespace {

using namespace testing;

const std::string kWeChat = "com.tencent.mm";
const std::string kKaspersky = "com.kms.free";

Json Entry(const std::string& package, const std::string& type) {
  return Json{{"packageName", package}, {"installType", type}};
}

Json Applications(const Json& policy) { return policy.value("applications", Json::array()); }

bool HasEntry(const Json& policy, const Json& entry) {
  for (const Json& e : Applications(policy)) {
    if (e == entry) return true;
  }
  return false;
}

// A policy as an administrator left it: apps, a hand-made BLOCKED entry and unrelated settings.
Json AdminPolicy() {
  return Json{{"applications",
               {Entry("com.google.android.gm", "FORCE_INSTALLED"),
                {{"packageName", "com.android.chrome"},
                 {"installType", "AVAILABLE"},
                 {"managedConfiguration", {{"IncognitoModeAvailability", 1}}}},
                Entry("com.facebook.katana", "BLOCKED")}},
              {"cameraDisabled", true},
              {"playStoreMode", "BLACKLIST"},
              {"passwordRequirements", {{"passwordMinimumLength", 8}, {"passwordQuality", "NUMERIC"}}},
              {"statusReportingSettings", {{"softwareInfoEnabled", true}}}};
}

TEST(AmapiConnector, PlanTouchesNothingApplyBlocksAndASecondPlanIsEmpty) {
  Fixture f({{PolicyName("default"), {}}});
  f.emulator->PutPolicy(PolicyName("default"), AdminPolicy());
  auto connector = f.Connector();
  const policy::Bundle bundle = MakeBundle({MakeRule("wechat", {Android(kWeChat)})});

  auto plan = connector->Plan(bundle);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->policies.size(), 1u);
  const PolicyChange& change = plan->policies[0].change;
  EXPECT_EQ(change.block, std::vector<std::string>{kWeChat});
  EXPECT_TRUE(change.enable_application_reports);
  EXPECT_EQ(change.update_mask, "applications,statusReportingSettings");
  EXPECT_FALSE(plan->Empty());
  EXPECT_EQ(f.emulator->patches(), 0);
  EXPECT_FALSE(std::filesystem::exists(connector->state_path())) << "plan wrote state";

  auto applied = connector->Apply(bundle);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_FALSE(applied->Failed()) << applied->ToText();
  EXPECT_EQ(applied->policies[0].result, "patched");
  EXPECT_EQ(f.emulator->patches(), 1);

  Json stored = f.emulator->GetPolicy(PolicyName("default"));
  EXPECT_TRUE(HasEntry(stored, Entry(kWeChat, "BLOCKED")));
  // Everything else exactly as the administrator left it.
  Json expected = AdminPolicy();
  expected["applications"].push_back(Entry(kWeChat, "BLOCKED"));
  expected["statusReportingSettings"]["applicationReportsEnabled"] = true;
  expected["name"] = PolicyName("default");
  expected["version"] = "2";
  EXPECT_EQ(stored, expected);

  auto again = connector->Plan(bundle);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->Empty()) << again->ToText();
  auto reapplied = connector->Apply(bundle);
  ASSERT_TRUE(reapplied.ok());
  EXPECT_EQ(reapplied->policies[0].result, "unchanged");
  EXPECT_EQ(f.emulator->patches(), 1);
}

TEST(AmapiConnector, RevocationRemovesOnlyAppbansEntries) {
  Fixture f({{PolicyName("default"), {}}});
  Json policy = AdminPolicy();
  policy["applications"].push_back(Entry(kKaspersky, "BLOCKED"));  // an administrator's own block
  f.emulator->PutPolicy(PolicyName("default"), policy);
  auto connector = f.Connector();
  const policy::Bundle banned =
      MakeBundle({MakeRule("wechat", {Android(kWeChat)}), MakeRule("kaspersky", {Android(kKaspersky)})});
  auto applied = connector->Apply(banned);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->policies[0].blocked, std::vector<std::string>{kWeChat});
  auto plan = connector->Plan(banned);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->policies[0].change.already_blocked, std::vector<std::string>{kKaspersky});

  // Both rules revoked: the next bundle has none.
  const policy::Bundle revoked = MakeBundle({}, 2);
  auto lifted = connector->Apply(revoked);
  ASSERT_TRUE(lifted.ok()) << lifted.status().ToString();
  EXPECT_EQ(lifted->policies[0].unblocked, std::vector<std::string>{kWeChat});
  Json stored = f.emulator->GetPolicy(PolicyName("default"));
  EXPECT_FALSE(HasEntry(stored, Entry(kWeChat, "BLOCKED")));
  EXPECT_TRUE(HasEntry(stored, Entry(kKaspersky, "BLOCKED"))) << "an administrator's BLOCKED entry was removed";
  EXPECT_TRUE(HasEntry(stored, Entry("com.facebook.katana", "BLOCKED")));
  EXPECT_EQ(Applications(stored).size(), 4u);
  EXPECT_TRUE(connector->Plan(revoked)->Empty());
}

TEST(AmapiConnector, AnEntryAppbanReplacedIsRestoredWhenTheBanIsLifted) {
  Fixture f({{PolicyName("default"), {}}});
  Json policy = AdminPolicy();
  policy["applications"].push_back(
      Json{{"packageName", kWeChat}, {"installType", "AVAILABLE"}, {"defaultPermissionPolicy", "PROMPT"}});
  f.emulator->PutPolicy(PolicyName("default"), policy);
  auto connector = f.Connector();
  ASSERT_TRUE(connector->Apply(MakeBundle({MakeRule("wechat", {Android(kWeChat)})})).ok());
  Json blocked = f.emulator->GetPolicy(PolicyName("default"));
  EXPECT_TRUE(HasEntry(blocked, Entry(kWeChat, "BLOCKED")));
  EXPECT_EQ(Applications(blocked).size(), 4u) << "the entry is replaced, not duplicated";
  ASSERT_TRUE(connector->Apply(MakeBundle({}, 2)).ok());
  Json restored = f.emulator->GetPolicy(PolicyName("default"));
  EXPECT_EQ(Applications(restored), policy["applications"]);
}

TEST(AmapiConnector, AnEntryAnAdministratorTookOverIsReleasedNotRemoved) {
  Fixture f({{PolicyName("default"), {}}});
  f.emulator->PutPolicy(PolicyName("default"), AdminPolicy());
  auto connector = f.Connector();
  ASSERT_TRUE(connector->Apply(MakeBundle({MakeRule("wechat", {Android(kWeChat)})})).ok());
  // The administrator edits appban's entry by hand (adds a field of their own).
  Json edited = f.emulator->GetPolicy(PolicyName("default"));
  for (Json& e : edited["applications"]) {
    if (e["packageName"] == kWeChat) e["disabled"] = true;
  }
  f.emulator->PutPolicy(PolicyName("default"), edited);
  auto lifted = connector->Apply(MakeBundle({}, 2));
  ASSERT_TRUE(lifted.ok());
  EXPECT_EQ(lifted->policies[0].released, std::vector<std::string>{kWeChat});
  EXPECT_EQ(lifted->policies[0].result, "recorded");
  EXPECT_EQ(Applications(f.emulator->GetPolicy(PolicyName("default"))), edited["applications"]);
  EXPECT_TRUE(connector->Plan(MakeBundle({}, 2))->Empty());
}

TEST(AmapiConnector, AWaiverForThePolicysGroupLeavesThePolicyAlone) {
  Fixture f({{PolicyName("liaison"), {"liaison-office"}}, {PolicyName("default"), {"staff"}}});
  Json reporting = Json{{"statusReportingSettings", {{"applicationReportsEnabled", true}}}};
  f.emulator->PutPolicy(PolicyName("liaison"), reporting);
  f.emulator->PutPolicy(PolicyName("default"), reporting);
  auto connector = f.Connector();
  const policy::Bundle bundle =
      MakeBundle({MakeRule("wechat", {Android(kWeChat)})}, 1, {GroupWaiver("w1", "wechat", "liaison-office")});
  auto applied = connector->Apply(bundle);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->policies[0].result, "unchanged");
  EXPECT_EQ(applied->policies[1].result, "patched");
  EXPECT_EQ(f.emulator->GetPolicy(PolicyName("liaison")), [&] {
    Json p = reporting;
    p["name"] = PolicyName("liaison");
    p["version"] = "1";
    return p;
  }());
  EXPECT_TRUE(HasEntry(f.emulator->GetPolicy(PolicyName("default")), Entry(kWeChat, "BLOCKED")));
  auto plan = connector->Plan(bundle);
  EXPECT_EQ(plan->policies[0].change.waived, std::vector<std::string>{kWeChat});

  // A waiver granted after the ban was applied lifts appban's entry from that policy only.
  Fixture g({{PolicyName("liaison"), {"liaison-office"}}});
  g.emulator->PutPolicy(PolicyName("liaison"), reporting);
  auto second = g.Connector();
  ASSERT_TRUE(second->Apply(MakeBundle({MakeRule("wechat", {Android(kWeChat)})})).ok());
  EXPECT_TRUE(HasEntry(g.emulator->GetPolicy(PolicyName("liaison")), Entry(kWeChat, "BLOCKED")));
  ASSERT_TRUE(second->Apply(bundle).ok());
  EXPECT_FALSE(HasEntry(g.emulator->GetPolicy(PolicyName("liaison")), Entry(kWeChat, "BLOCKED")));
}

TEST(AmapiConnector, ScopedRulesReportOnlyAndSignerTargets) {
  Fixture f({{PolicyName("default"), {"staff"}}});
  f.emulator->PutPolicy(PolicyName("default"), Json::object());
  auto connector = f.Connector();
  policy::Rule scoped =
      MakeRule("tiktok", {Android("com.zhiliaoapp.musically")}, policy::Action::kRemove, {"ministers"});
  policy::Rule report = MakeRule("deepseek", {Android("com.deepseek.chat")}, policy::Action::kReport);
  policy::Rule signer =
      MakeRule("kaspersky-key", {*policy::MakeTarget(policy::TargetKind::kAndroidSigner, std::string(64, 'a'))});
  auto plan = connector->Plan(MakeBundle({scoped, report, signer}));
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->policies[0].change.block.empty()) << plan->ToText();
  ASSERT_EQ(plan->unenforceable.size(), 1u);
  EXPECT_EQ(plan->unenforceable[0].rule_id, "kaspersky-key");
  EXPECT_NE(plan->ToText().find("not enforceable by AMAPI"), std::string::npos);
}

TEST(AmapiConnector, VendorRulesBlockEveryAndroidPackageOfTheVendor) {
  Fixture f({{PolicyName("default"), {}}});
  f.emulator->PutPolicy(PolicyName("default"), Json::object());
  auto connector = f.Connector();
  policy::Vendor vendor;
  vendor.name = "AO Kaspersky Lab";
  vendor.identifiers = {Android("com.kms.free"), Android("com.kaspersky.secure.connection")};
  policy::Rule rule = MakeRule("kaspersky", {*policy::MakeTarget(policy::TargetKind::kVendor, vendor.name)});
  auto applied = connector->Apply(MakeBundle({rule}, 1, {}, {vendor}));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->policies[0].blocked,
            (std::vector<std::string>{"com.kaspersky.secure.connection", "com.kms.free"}));
}

TEST(AmapiConnector, PartialFailureIsRetriedReportedAndNotHalfRecorded) {
  Fixture f({{PolicyName("a"), {}}, {PolicyName("b"), {}}});
  f.emulator->PutPolicy(PolicyName("a"), Json::object());
  f.emulator->PutPolicy(PolicyName("b"), Json::object());
  auto connector = f.Connector();
  const policy::Bundle bundle = MakeBundle({MakeRule("wechat", {Android(kWeChat)})});

  // b answers 503 to more attempts than the connector makes: a is patched, b is reported.
  f.emulator->FailNext(4, 503, "PATCH", "/v1/" + PolicyName("b"));
  auto applied = connector->Apply(bundle);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_TRUE(applied->Failed());
  EXPECT_EQ(applied->policies[0].result, "patched");
  EXPECT_EQ(applied->policies[1].result, "failed");
  EXPECT_EQ(applied->retries, 3);
  EXPECT_EQ(f.sleeps.size(), 3u);
  EXPECT_FALSE(HasEntry(f.emulator->GetPolicy(PolicyName("b")), Entry(kWeChat, "BLOCKED")));
  auto state = LoadConnectorState(connector->state_path());
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->policies[PolicyName("a")].owned.count(kWeChat), 1u);
  EXPECT_EQ(state->policies[PolicyName("b")].owned.count(kWeChat), 0u) << "recorded as owned but never written";
  EXPECT_EQ(state->last_applied_bundle, 0) << "a failed apply is not the applied bundle";

  // A transient 503 (two, then success) is absorbed by the back-off.
  f.emulator->FailNext(2, 503, "PATCH", "/v1/" + PolicyName("b"));
  auto retried = connector->Apply(bundle);
  ASSERT_TRUE(retried.ok());
  EXPECT_FALSE(retried->Failed()) << retried->ToText();
  EXPECT_EQ(retried->policies[0].result, "unchanged");
  EXPECT_EQ(retried->policies[1].result, "patched");
  EXPECT_TRUE(HasEntry(f.emulator->GetPolicy(PolicyName("b")), Entry(kWeChat, "BLOCKED")));
  EXPECT_TRUE(connector->Plan(bundle)->Empty());
  EXPECT_EQ(LoadConnectorState(connector->state_path())->last_applied_bundle, 1);
}

TEST(AmapiConnector, APendingRecordIsResolvedAgainstTheLivePolicy) {
  // A run that patched and then died before recording: the write-ahead record names the entry.
  PolicyOwnership recorded;
  recorded.pending = OwnedEntries{{kWeChat, nullptr}, {kKaspersky, nullptr}};
  Json live = Json{{"applications", {Entry(kWeChat, "BLOCKED")}}};
  OwnedEntries owned = ResolveOwnership(recorded, live);
  EXPECT_EQ(owned.size(), 1u);
  EXPECT_EQ(owned.count(kWeChat), 1u);  // written: appban's
  // The state file round-trips pending records.
  ConnectorState state;
  state.policies["p"] = recorded;
  auto back = ConnectorStateFromJson(ConnectorStateToJson(state));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->policies["p"].pending->size(), 2u);
  EXPECT_FALSE(ConnectorStateFromJson(Json{{"format", "other"}}).ok());
}

TEST(AmapiConnector, StateFileIsOwnerOnly) {
  Fixture f({{PolicyName("default"), {}}});
  f.emulator->PutPolicy(PolicyName("default"), Json::object());
  auto connector = f.Connector();
  ASSERT_TRUE(connector->Apply(MakeBundle({MakeRule("wechat", {Android(kWeChat)})})).ok());
  struct stat info {};
  ASSERT_EQ(::stat(connector->state_path().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST(AmapiConnector, EndToEndWeChatBanReachesTheDevicesAndTheyReportItGone) {
  appban::testing::AmapiEmulatorOptions options;
  options.max_page_size = 2;   // several pages of devices
  options.throttle_every = 5;  // and throttling on the way
  Fixture f({{PolicyName("default"), {"staff"}}}, options);
  f.emulator->PutPolicy(PolicyName("default"), AdminPolicy());
  for (int i = 0; i < 5; ++i) {
    f.emulator->PutDevice(Device("phone-" + std::to_string(i), PolicyName("default"),
                                 {AppReport("com.google.android.gm"), AppReport(kWeChat)}));
  }
  f.emulator->PutDevice(Device("kiosk-1", PolicyName("kiosk"), {AppReport(kWeChat)}));
  auto connector = f.Connector();
  const policy::Bundle bundle = MakeBundle({MakeRule("wechat", {Android(kWeChat)})});

  auto before = connector->Survey(bundle);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  ASSERT_EQ(before->devices.size(), 6u);
  for (const auto& d : before->devices) EXPECT_EQ(d.violating.size(), 1u) << d.device.name;

  auto applied = connector->Apply(bundle);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_FALSE(applied->Failed()) << applied->ToText();
  EXPECT_TRUE(HasEntry(f.emulator->GetPolicy(PolicyName("default")), Entry(kWeChat, "BLOCKED")));

  auto after = connector->Survey(bundle);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  size_t compliant = 0;
  for (const auto& d : after->devices) {
    if (!d.managed) {
      EXPECT_EQ(d.device.name, std::string(kEnterprise) + "/devices/kiosk-1");
      EXPECT_EQ(d.violating.size(), 1u) << "a device on an unmanaged policy still has WeChat: it must say so";
      continue;
    }
    EXPECT_TRUE(d.violating.empty()) << d.device.name;
    EXPECT_EQ(d.device.applied_policy_version, "2");
    EXPECT_EQ(d.device.removed, std::vector<std::string>{kWeChat});
    compliant += d.violating.empty();
  }
  EXPECT_EQ(compliant, 5u);
  EXPECT_GT(f.emulator->throttled(), 0);
  Json json = after->ToJson();
  EXPECT_EQ(json["violating_devices"], 1);
  EXPECT_EQ(json["devices"][0]["source"], "amapi");
  EXPECT_EQ(json["devices"][0]["platform"], "android");
}

}  // namespace
}  // namespace appban::mdm
