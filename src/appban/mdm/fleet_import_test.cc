// The fleet import against a real SQLite fleet store: MDM devices land as devices with their source
// and platform, their reported apps are evaluated exactly like an agent's inventory, and
// compliance counts them (violating, remediated, cannot-enforce, gone) as an administrator reads it.
#include "appban/mdm/fleet_import.h"

#include <gtest/gtest.h>

#include <memory>

#include "appban/mdm/mdm_test_support.h"
#include "appban/store/fleet.h"
#include "appban/store/store.h"
#include "appban/verify/compliance.h"

namespace appban::mdm {
namespace {

using testing::Android;
using testing::MakeBundle;
using testing::MakeRule;

constexpr UnixSeconds kNow = 1'900'000'000;

verify::PublishedBundle Published(policy::Bundle bundle) {
  verify::PublishedBundle published;
  published.version = bundle.version;
  published.issued_at = kNow - 3600;
  auto index = policy::PolicyIndex::Build(bundle);
  EXPECT_TRUE(index.ok());
  published.index = std::make_shared<const policy::PolicyIndex>(std::move(*index));
  published.bundle = std::make_shared<const policy::Bundle>(std::move(bundle));
  for (const auto& rule : published.bundle->rules) published.rule_first_published[rule.id] = {1, kNow - 3600};
  return published;
}

MdmDevice Phone(const std::string& id, std::vector<std::string> installed, std::vector<std::string> removed = {}) {
  MdmDevice device;
  device.connector = "health";
  device.mdm_id = std::string(testing::kEnterprise) + "/devices/" + id;
  device.display_name = id;
  device.platform = "android";
  device.groups = {"staff"};
  device.reports_apps = true;
  for (const auto& package : installed) {
    device.installed.push_back(policy::InstalledApp{policy::Platform::kAndroid, package, "1.0", "", ""});
  }
  device.removed = std::move(removed);
  device.last_mdm_sync = kNow - 60;
  device.mdm_compliant = true;
  device.pushed_at = kNow - 120;
  return device;
}

class FleetImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fleet = store::OpenSqliteFleetStore(dir_.path() + "/appban.db");
    ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
    fleet_ = std::move(*fleet);
  }

  ImportStats Import(const verify::PublishedBundle& latest, std::vector<MdmDevice> devices, UnixSeconds now = kNow,
                     int64_t pushed = 1) {
    ImportContext context{&latest, pushed, now, 2};
    FleetImport import(*fleet_, "health", context);
    EXPECT_TRUE(import.Add(std::move(devices)).ok());
    auto stats = import.Finish(true);
    EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    return stats.ok() ? *stats : ImportStats{};
  }

  verify::RuleCompliance Compliance(const verify::PublishedBundle& latest, const std::string& rule_id,
                                    UnixSeconds now = kNow) {
    auto devices = fleet_->ListDevices(0, 1000);
    EXPECT_TRUE(devices.ok());
    verify::FleetMembership fleet = verify::FleetMembership::Build(*devices, {});
    auto rules = verify::ComplianceRulesOf(latest);
    auto rule = std::find_if(rules.begin(), rules.end(), [&](const auto& r) { return r.id == rule_id; });
    EXPECT_NE(rule, rules.end());
    auto states = fleet_->ListRuleStates(rule_id);
    EXPECT_TRUE(states.ok());
    verify::WaiverLookup waivers(latest.bundle->waivers);
    return verify::SummarizeRule(fleet, *rule, *states, waivers, {now, 86400}, 100);
  }

  testing::TempDir dir_;
  std::unique_ptr<store::FleetStore> fleet_;
};

TEST_F(FleetImportTest, PhonesCountLikeAgentDevices) {
  auto latest = Published(MakeBundle({MakeRule("wechat", {Android("com.tencent.mm")})}));
  MdmDevice unmanaged = Phone("kiosk", {});
  unmanaged.cannot_enforce_reason = "on policy enterprises/LC00emu/policies/kiosk, which appban does not manage";
  MdmDevice silent = Phone("silent", {});
  silent.reports_apps = false;
  ImportStats stats = Import(latest, {Phone("still-has-it", {"com.tencent.mm", "com.google.android.gm"}),
                                      Phone("removed-it", {"com.google.android.gm"}, {"com.tencent.mm"}),
                                      Phone("never-had-it", {"com.google.android.gm"}), unmanaged, silent});
  EXPECT_EQ(stats.devices, 5);
  EXPECT_EQ(stats.violating, 1);
  EXPECT_EQ(stats.cannot_enforce, 2);

  verify::RuleCompliance wechat = Compliance(latest, "wechat");
  EXPECT_EQ(wechat.targeted, 5);
  EXPECT_EQ(wechat.violating, 1);
  EXPECT_EQ(wechat.remediated, 1);
  EXPECT_EQ(wechat.compliant, 2);
  EXPECT_EQ(wechat.cannot_enforce, 2);
  ASSERT_EQ(wechat.violating_devices.size(), 1u);
  EXPECT_EQ(wechat.violating_devices[0], MdmDeviceId(MdmSource::kAmapi, "health", Phone("still-has-it", {}).mdm_id));

  auto device = fleet_->GetDevice(wechat.violating_devices[0]);
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(device->source, "amapi");
  EXPECT_EQ(device->platform, "android");
  EXPECT_EQ(device->hostname, "still-has-it");
  EXPECT_EQ(device->mdm_synced_at, kNow - 60);
  EXPECT_EQ(device->mdm_pushed_at, kNow - 120);
  EXPECT_EQ(device->mdm_compliant, true);
  EXPECT_EQ(device->mdm_compliant_at, kNow);
  EXPECT_EQ(device->last_seen, kNow - 60);
  EXPECT_NE(device->inventory_json.find("com.tencent.mm"), std::string::npos);

  auto by_source = fleet_->ListDevicesWhere({.source = "amapi", .platform = "android"}, "", 100);
  ASSERT_TRUE(by_source.ok());
  EXPECT_EQ(by_source->size(), 5u);
  EXPECT_EQ(fleet_->ListDevicesWhere({.source = "agent"}, "", 100)->size(), 0u);
}

TEST_F(FleetImportTest, IdsAreStableAndAPhoneGoneFromTheMdmIsNotKeptCompliant) {
  auto latest = Published(MakeBundle({MakeRule("wechat", {Android("com.tencent.mm")})}));
  Import(latest, {Phone("a", {}), Phone("b", {})});
  auto first = fleet_->ListDevices(0, 10);
  ASSERT_EQ(first->size(), 2u);
  // The next sync lists only "a": same id, and "b" is marked gone (cannot-enforce), not compliant.
  ImportStats stats = Import(latest, {Phone("a", {})}, kNow + 300);
  EXPECT_EQ(stats.gone, 1);
  auto second = fleet_->ListDevices(0, 10);
  ASSERT_EQ(second->size(), 2u);
  EXPECT_EQ((*second)[0].id, (*first)[0].id);
  verify::RuleCompliance wechat = Compliance(latest, "wechat", kNow + 300);
  EXPECT_EQ(wechat.compliant, 1);
  EXPECT_EQ(wechat.cannot_enforce, 1);
  // Back in the MDM: no longer gone.
  EXPECT_EQ(Import(latest, {Phone("a", {}), Phone("b", {})}, kNow + 600).gone, 0);
  EXPECT_EQ(Compliance(latest, "wechat", kNow + 600).compliant, 2);
}

TEST_F(FleetImportTest, PendingUntilPushedAndPublisherRulesCannotBeVerified) {
  policy::Rule signer =
      MakeRule("signer", {*policy::MakeTarget(policy::TargetKind::kAndroidSigner, std::string(64, 'a'))});
  auto latest = Published(MakeBundle({MakeRule("wechat", {Android("com.tencent.mm")}), signer}));
  Import(latest, {Phone("a", {})}, kNow, /*pushed=*/0);
  verify::RuleCompliance wechat = Compliance(latest, "wechat");
  EXPECT_EQ(wechat.pending, 1);
  EXPECT_EQ(wechat.compliant, 0);
  Import(latest, {Phone("a", {})}, kNow + 60, /*pushed=*/1);
  EXPECT_EQ(Compliance(latest, "wechat", kNow + 60).compliant, 1);
  verify::RuleCompliance publisher = Compliance(latest, "signer", kNow + 60);
  EXPECT_EQ(publisher.cannot_enforce, 1);
  EXPECT_EQ(publisher.compliant, 0);
}

TEST_F(FleetImportTest, ASyncWithNothingChangedRewritesNoInventoryAndNoRuleStates) {
  auto latest = Published(MakeBundle({MakeRule("wechat", {Android("com.tencent.mm")})}));
  auto fleet = [] {
    return std::vector<MdmDevice>{Phone("has-it", {"com.tencent.mm", "com.google.android.gm"}),
                                  Phone("removed-it", {"com.google.android.gm"}, {"com.tencent.mm"}),
                                  Phone("clean", {"com.google.android.gm"})};
  };
  ImportStats first = Import(latest, fleet());
  EXPECT_EQ(first.unchanged, 0);
  const std::string clean_id = MdmDeviceId(MdmSource::kAmapi, "health", Phone("clean", {}).mdm_id);

  // The next sync reports the same apps: nothing but the MDM fields is written, and the verdicts
  // are the same.
  ImportStats second = Import(latest, fleet(), kNow + 300);
  EXPECT_EQ(second.devices, 3);
  EXPECT_EQ(second.unchanged, 3);
  EXPECT_EQ(second.violating, 1);
  auto clean = fleet_->GetDevice(clean_id);
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->inventory_at, kNow);  // the inventory was not rewritten
  EXPECT_EQ(second.gone, 0);             // but every device was seen
  verify::RuleCompliance wechat = Compliance(latest, "wechat", kNow + 300);
  EXPECT_EQ(wechat.violating, 1);
  EXPECT_EQ(wechat.remediated, 1);
  EXPECT_EQ(wechat.compliant, 2);

  // A phone that installs WeChat is re-evaluated at once; the others stay untouched.
  std::vector<MdmDevice> changed = fleet();
  changed[2] = Phone("clean", {"com.google.android.gm", "com.tencent.mm"});
  ImportStats third = Import(latest, changed, kNow + 600);
  EXPECT_EQ(third.unchanged, 2);
  EXPECT_EQ(third.violating, 2);
  EXPECT_EQ(fleet_->GetDevice(clean_id)->inventory_at, kNow + 600);
  EXPECT_EQ(Compliance(latest, "wechat", kNow + 600).violating, 2);

  // Other inputs of the evaluation count too: its groups, the bundle pushed, a new bundle.
  changed[0].groups = {"staff", "liaison"};
  EXPECT_EQ(Import(latest, changed, kNow + 900).unchanged, 2);
  EXPECT_EQ(Import(latest, changed, kNow + 1200, /*pushed=*/2).unchanged, 0);
  auto next = Published(MakeBundle({MakeRule("wechat", {Android("com.tencent.mm")})}, 2));
  EXPECT_EQ(Import(next, changed, kNow + 1500, /*pushed=*/2).unchanged, 0);
  EXPECT_EQ(Import(next, changed, kNow + 1800, /*pushed=*/2).unchanged, 3);
}

TEST_F(FleetImportTest, AnotherConnectorsDeviceIsRefused) {
  auto latest = Published(MakeBundle({MakeRule("wechat", {Android("com.tencent.mm")})}));
  MdmDevice stranger = Phone("a", {});
  stranger.connector = "finance";
  FleetImport import(*fleet_, "health", ImportContext{&latest, 1, kNow, 10});
  EXPECT_EQ(import.Add({stranger}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace appban::mdm
