#include "appban/verify/compliance.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <tuple>

#include "appban/store/fleet_test_support.h"

namespace appban::verify {
namespace {

store::Device MakeDevice(std::string id, UnixSeconds last_seen, std::string group = "", bool revoked = false) {
  store::Device device;
  device.id = std::move(id);
  device.last_seen = last_seen;
  device.group = std::move(group);
  if (revoked) device.revoked_at = 5000;
  return device;
}

store::DeviceRuleState Row(std::string device, store::ComplianceState state, bool had_app,
                           std::optional<UnixSeconds> compliant_at) {
  store::DeviceRuleState row;
  row.device_id = std::move(device);
  row.state = state;
  row.had_app = had_app;
  row.compliant_at = compliant_at;
  row.since = compliant_at.value_or(0);
  row.version = 1;
  return row;
}

policy::Waiver MakeWaiver(std::string id, std::string rule, policy::WaiverSubject kind, std::string subject,
                          UnixSeconds expires_at, bool revoked = false) {
  policy::Waiver waiver;
  waiver.id = std::move(id);
  waiver.rule_id = std::move(rule);
  waiver.subject_kind = kind;
  waiver.subject = std::move(subject);
  waiver.justification = "test";
  waiver.approved_by = "alice";
  waiver.created_at = 100;
  waiver.expires_at = expires_at;
  if (revoked) waiver.revoked_at = 200;
  return waiver;
}

// The hand-built fleet. now = 10000, stale_after = 900.
//   d1 no group, seen 9900        rule A: compliant, had the app (remediated), compliant_at 1100
//   d2 no group, seen 9000 (old)  rule A: no row -> stale
//   d3 in policy group ops        rule A: compliant at 1400; rule B: compliant at 2500
//   d4 in ops, never seen         no rows -> stale on A and B
//   d5 ops via enrolment token    rule A: violating; rule B: no row, seen 9990 -> pending
//   d6 revoked                    row on A ignored: not targeted
//   d7 no group, seen 9999        row compliant on A, but an active device waiver -> waived
// Rule A (remove, every device) first published at 1000; rule B (scope ops) at 2000.
// Waivers that must NOT count: d1's on A expired at 5000, ops's on B revoked.
class HandBuiltFleet : public ::testing::Test {
 protected:
  void SetUp() override {
    devices_ = {MakeDevice("d1", 9900), MakeDevice("d2", 9000),        MakeDevice("d3", 9950),
                MakeDevice("d4", 0),    MakeDevice("d5", 9990, "ops"), MakeDevice("d6", 9990, "", true),
                MakeDevice("d7", 9999)};
    policy::Group ops;
    ops.name = "ops";
    ops.devices = {"d3", "d4", "d-not-enrolled"};
    groups_ = {ops};
    waivers_ = {MakeWaiver("w1", "rule-a", policy::WaiverSubject::kDevice, "d7", 20000),
                MakeWaiver("w2", "rule-a", policy::WaiverSubject::kDevice, "d1", 5000),
                MakeWaiver("w3", "rule-b", policy::WaiverSubject::kGroup, "ops", 20000, /*revoked=*/true)};
    rule_a_ = {"rule-a", policy::Action::kRemove, {}, 1, 1000};
    rule_b_ = {"rule-b", policy::Action::kBlock, {"ops"}, 2, 2000};
    states_a_ = {Row("d1", store::ComplianceState::kCompliant, true, 1100),
                 Row("d3", store::ComplianceState::kCompliant, false, 1400),
                 Row("d5", store::ComplianceState::kViolating, true, std::nullopt),
                 Row("d6", store::ComplianceState::kCompliant, false, 1200),
                 Row("d7", store::ComplianceState::kCompliant, false, 1300),
                 Row("d9-unknown", store::ComplianceState::kViolating, true, std::nullopt)};
    states_b_ = {Row("d3", store::ComplianceState::kCompliant, false, 2500)};
    params_ = {10000, 900};
  }

  std::vector<store::Device> devices_;
  std::vector<policy::Group> groups_;
  std::vector<policy::Waiver> waivers_;
  ComplianceRule rule_a_, rule_b_;
  std::vector<store::DeviceRuleState> states_a_, states_b_;
  ComplianceParams params_;
};

TEST_F(HandBuiltFleet, MembershipJoinsTokenGroupAndPolicyGroups) {
  FleetMembership fleet = FleetMembership::Build(devices_, groups_);
  EXPECT_EQ(fleet.active_devices(), 6);
  auto d5 = fleet.Find("d5");
  ASSERT_TRUE(d5);
  EXPECT_EQ(fleet.devices()[*d5].groups, std::vector<std::string>{"ops"});
  EXPECT_EQ(fleet.devices()[*fleet.Find("d3")].groups, std::vector<std::string>{"ops"});
  EXPECT_TRUE(fleet.devices()[*fleet.Find("d1")].groups.empty());
  EXPECT_FALSE(fleet.Find("d-not-enrolled"));
}

TEST_F(HandBuiltFleet, UnscopedRuleCountsEveryState) {
  FleetMembership fleet = FleetMembership::Build(devices_, groups_);
  WaiverLookup waivers(waivers_);
  RuleCompliance a = SummarizeRule(fleet, rule_a_, states_a_, waivers, params_, 100);
  EXPECT_EQ(a.targeted, 6);    // d1 d2 d3 d4 d5 d7 (d6 revoked)
  EXPECT_EQ(a.compliant, 2);   // d1 d3
  EXPECT_EQ(a.remediated, 1);  // d1
  EXPECT_EQ(a.violating, 1);   // d5
  EXPECT_EQ(a.waived, 1);      // d7; d1's waiver expired
  EXPECT_EQ(a.pending, 0);
  EXPECT_EQ(a.stale, 2);  // d2 (1000 s silent > 900), d4 (never seen)
  EXPECT_EQ(a.compliant + a.violating + a.waived + a.pending + a.stale, a.targeted);
  // Durations from first publication (1000): d1 100 s, d3 400 s. Nearest rank over 2 samples:
  // median = rank ceil(1.0) = 1 -> 100; p95 = rank ceil(1.9) = 2 -> 400.
  EXPECT_EQ(a.time_to_compliance.samples, 2);
  EXPECT_EQ(a.time_to_compliance.median_seconds, 100);
  EXPECT_EQ(a.time_to_compliance.p95_seconds, 400);
  EXPECT_EQ(a.time_to_compliance.max_seconds, 400);
  EXPECT_EQ(a.violating_devices, std::vector<std::string>{"d5"});
  EXPECT_EQ(a.pending_devices, (std::vector<std::string>{"d2", "d4"}));
  EXPECT_FALSE(a.lists_truncated);
}

TEST_F(HandBuiltFleet, ScopedRuleTargetsOnlyGroupMembers) {
  FleetMembership fleet = FleetMembership::Build(devices_, groups_);
  WaiverLookup waivers(waivers_);
  RuleCompliance b = SummarizeRule(fleet, rule_b_, states_b_, waivers, params_, 100);
  EXPECT_EQ(b.targeted, 3);  // d3 d4 (policy group), d5 (token group)
  EXPECT_EQ(b.compliant, 1);
  EXPECT_EQ(b.waived, 0);   // the group waiver is revoked
  EXPECT_EQ(b.pending, 1);  // d5, seen 10 s ago
  EXPECT_EQ(b.stale, 1);    // d4
  EXPECT_EQ(b.time_to_compliance.samples, 1);
  EXPECT_EQ(b.time_to_compliance.median_seconds, 500);
  EXPECT_EQ(b.time_to_compliance.p95_seconds, 500);
  EXPECT_EQ(b.time_to_compliance.max_seconds, 500);
}

TEST_F(HandBuiltFleet, FleetTotalsPartitionTheActiveDevices) {
  FleetMembership fleet = FleetMembership::Build(devices_, groups_);
  WaiverLookup waivers(waivers_);
  FleetCompliance summary = SummarizeFleet(fleet, {rule_a_, rule_b_}, {states_a_, states_b_}, waivers, params_);
  ASSERT_EQ(summary.rules.size(), 2u);
  EXPECT_EQ(summary.totals.devices, 6);
  EXPECT_EQ(summary.totals.fully_compliant, 3);  // d1 d3 d7
  EXPECT_EQ(summary.totals.violating_any, 1);    // d5
  EXPECT_EQ(summary.totals.pending_any, 2);      // d2 d4
  EXPECT_EQ(summary.totals.stale_any, 2);
  EXPECT_EQ(summary.totals.untargeted, 0);
  EXPECT_TRUE(summary.rules[0].violating_devices.empty()) << "the fleet summary carries no id lists";
}

TEST_F(HandBuiltFleet, ListsAreBoundedAndSayTheyWereCut) {
  FleetMembership fleet = FleetMembership::Build(devices_, groups_);
  WaiverLookup waivers(waivers_);
  RuleCompliance a = SummarizeRule(fleet, rule_a_, states_a_, waivers, params_, 1);
  EXPECT_EQ(a.pending_devices, std::vector<std::string>{"d2"});
  EXPECT_TRUE(a.lists_truncated);
  EXPECT_EQ(a.stale, 2) << "counts stay exact when lists are cut";
}

TEST_F(HandBuiltFleet, PerDeviceClassification) {
  FleetMembership fleet = FleetMembership::Build(devices_, groups_);
  WaiverLookup waivers(waivers_);
  auto at = [&](const char* id) { return fleet.devices()[*fleet.Find(id)]; };
  EXPECT_EQ(ClassifyDeviceRule(at("d1"), rule_a_, &states_a_[0], waivers, params_), DeviceRuleStatus::kRemediated);
  EXPECT_EQ(ClassifyDeviceRule(at("d1"), rule_b_, nullptr, waivers, params_), DeviceRuleStatus::kNotTargeted);
  EXPECT_EQ(ClassifyDeviceRule(at("d6"), rule_a_, &states_a_[3], waivers, params_), DeviceRuleStatus::kNotTargeted);
  EXPECT_EQ(ClassifyDeviceRule(at("d7"), rule_a_, nullptr, waivers, params_), DeviceRuleStatus::kWaived);
  // A group waiver exempts members through either kind of membership.
  std::vector<policy::Waiver> group_waiver = {MakeWaiver("w4", "rule-b", policy::WaiverSubject::kGroup, "ops", 20000)};
  WaiverLookup by_group(group_waiver);
  EXPECT_EQ(ClassifyDeviceRule(at("d5"), rule_b_, nullptr, by_group, params_), DeviceRuleStatus::kWaived);
  EXPECT_EQ(ClassifyDeviceRule(at("d3"), rule_b_, &states_b_[0], by_group, params_), DeviceRuleStatus::kWaived);
}

// A device whose reported rules_hash is not its claimed version's: d1 (remediated on A) and d7
// (waived on A) turn out to run something else. d1 is counted mismatch, never compliant, and gives
// no time-to-compliance sample; d7 stays waived on A but is not fully compliant in the totals.
TEST_F(HandBuiltFleet, RulesHashMismatchIsItsOwnStateAndNeverCompliant) {
  for (auto& device : devices_) {
    if (device.id == "d1" || device.id == "d7") device.rules_hash_mismatch = store::RulesHashMismatch{"ab", 9000};
  }
  FleetMembership fleet = FleetMembership::Build(devices_, groups_);
  WaiverLookup waivers(waivers_);
  auto at = [&](const char* id) { return fleet.devices()[*fleet.Find(id)]; };
  EXPECT_EQ(ClassifyDeviceRule(at("d1"), rule_a_, &states_a_[0], waivers, params_), DeviceRuleStatus::kMismatch);
  EXPECT_EQ(ClassifyDeviceRule(at("d1"), rule_a_, nullptr, waivers, params_), DeviceRuleStatus::kMismatch)
      << "mismatch, not pending, without a row";
  EXPECT_EQ(ClassifyDeviceRule(at("d1"), rule_b_, nullptr, waivers, params_), DeviceRuleStatus::kNotTargeted);
  EXPECT_EQ(ClassifyDeviceRule(at("d7"), rule_a_, &states_a_[4], waivers, params_), DeviceRuleStatus::kWaived);
  EXPECT_EQ(DeviceRuleStatusName(DeviceRuleStatus::kMismatch), "mismatch");

  RuleCompliance a = SummarizeRule(fleet, rule_a_, states_a_, waivers, params_, 100);
  EXPECT_EQ(a.targeted, 6);
  EXPECT_EQ(a.mismatch, 1);    // d1
  EXPECT_EQ(a.compliant, 1);   // d3 only
  EXPECT_EQ(a.remediated, 0);  // d1 no longer
  EXPECT_EQ(a.waived, 1);      // d7
  EXPECT_EQ(a.compliant + a.mismatch + a.violating + a.waived + a.pending + a.stale, a.targeted);
  EXPECT_EQ(a.mismatch_devices, std::vector<std::string>{"d1"});
  EXPECT_EQ(a.time_to_compliance.samples, 1) << "d1's compliant_at is not believed";

  FleetCompliance summary = SummarizeFleet(fleet, {rule_a_, rule_b_}, {states_a_, states_b_}, waivers, params_);
  EXPECT_EQ(summary.totals.mismatch_any, 2);     // d1, and d7 although its only rule is waived
  EXPECT_EQ(summary.totals.fully_compliant, 1);  // d3
  EXPECT_EQ(summary.totals.violating_any, 1);    // d5
  EXPECT_EQ(summary.totals.pending_any, 2);      // d2 d4
  EXPECT_EQ(summary.totals.fully_compliant + summary.totals.mismatch_any + summary.totals.violating_any +
                summary.totals.pending_any + summary.totals.untargeted,
            summary.totals.devices);
}

TEST(ComplianceStaleness, BoundaryIsInclusive) {
  ComplianceRule rule{"r", policy::Action::kRemove, {}, 1, 0};
  WaiverLookup none({});
  ComplianceParams params{10000, 900};
  ComplianceDevice at_limit{"a", {}, 10000 - 900, false};
  ComplianceDevice past_limit{"b", {}, 10000 - 901, false};
  EXPECT_EQ(ClassifyDeviceRule(at_limit, rule, nullptr, none, params), DeviceRuleStatus::kPending);
  EXPECT_EQ(ClassifyDeviceRule(past_limit, rule, nullptr, none, params), DeviceRuleStatus::kStale);
}

TEST(ComplianceDurations, NearestRankOrderStatistics) {
  // n = 5, sorted 10 20 30 40 50: median rank ceil(2.5) = 3 -> 30; p95 rank ceil(4.75) = 5 -> 50.
  std::vector<int64_t> five = {50, 10, 40, 20, 30};
  TimeToCompliance t = SummarizeDurations(five);
  EXPECT_EQ(t.median_seconds, 30);
  EXPECT_EQ(t.p95_seconds, 50);
  EXPECT_EQ(t.max_seconds, 50);
  // n = 20, values 1..20: median rank 10 -> 10; p95 rank ceil(19.0) = 19 -> 19.
  std::vector<int64_t> twenty;
  for (int64_t v = 20; v >= 1; --v) twenty.push_back(v);
  t = SummarizeDurations(twenty);
  EXPECT_EQ(t.median_seconds, 10);
  EXPECT_EQ(t.p95_seconds, 19);
  EXPECT_EQ(t.max_seconds, 20);
  // n = 100, values 1..100: ranks 50 and 95.
  std::vector<int64_t> hundred;
  for (int64_t v = 1; v <= 100; ++v) hundred.push_back(v);
  t = SummarizeDurations(hundred);
  EXPECT_EQ(t.median_seconds, 50);
  EXPECT_EQ(t.p95_seconds, 95);
  std::vector<int64_t> empty;
  t = SummarizeDurations(empty);
  EXPECT_EQ(t.samples, 0);
  EXPECT_FALSE(t.median_seconds);
}

// The curve counts, at each mark, the devices that complied within it, and stops at the first
// mark past the slowest device so the chart's last point holds every device.
TEST(ComplianceDurations, TheCurveCountsDevicesCompliantWithinEachMark) {
  std::vector<int64_t> seconds = {0, 1, 3, 5, 9, 10, 11, 45};
  TimeToCompliance t = SummarizeDurations(seconds);
  std::vector<std::pair<int64_t, int64_t>> curve;
  for (const auto& point : t.curve) curve.emplace_back(point.seconds, point.devices);
  std::vector<std::pair<int64_t, int64_t>> expected = {{1, 2}, {2, 2}, {5, 4}, {10, 6}, {20, 7}, {30, 7}, {60, 8}};
  EXPECT_EQ(curve, expected);
  // A device that took 40 days is past the last mark (30 days): the curve ends there, short of it.
  std::vector<int64_t> slow = {2, 40 * 86400};
  t = SummarizeDurations(slow);
  ASSERT_EQ(t.curve.size(), std::size(kCurveMarksSeconds));
  EXPECT_EQ(t.curve.back().seconds, 30 * 86400);
  EXPECT_EQ(t.curve.back().devices, 1);
  std::vector<int64_t> none;
  EXPECT_TRUE(SummarizeDurations(none).curve.empty());
}

TEST(ComplianceDurations, CompliantBeforePublicationCountsAsZero) {
  ComplianceRule rule{"r", policy::Action::kRemove, {}, 1, 1000};
  std::vector<store::Device> devices = {MakeDevice("d1", 9999)};
  FleetMembership fleet = FleetMembership::Build(devices, {});
  std::vector<store::DeviceRuleState> rows = {Row("d1", store::ComplianceState::kCompliant, false, 900)};
  RuleCompliance r = SummarizeRule(fleet, rule, rows, WaiverLookup({}), {10000, 900}, 0);
  EXPECT_EQ(r.time_to_compliance.max_seconds, 0);
}

// A device that enrolled 26 s after the publish and complied 15 s later took 15 s, not 41 s: it
// could not have received the rule before it enrolled. One enrolled before the publish counts from
// the publish.
TEST(ComplianceDurations, ALateEnrolmentCountsFromTheEnrolment) {
  ComplianceRule rule{"r", policy::Action::kRemove, {}, 1, 1000};
  std::vector<store::Device> devices = {MakeDevice("late", 9999), MakeDevice("early", 9999)};
  devices[0].enrolled_at = 1026;
  devices[1].enrolled_at = 500;
  FleetMembership fleet = FleetMembership::Build(devices, {});
  std::vector<store::DeviceRuleState> rows = {Row("late", store::ComplianceState::kCompliant, false, 1041),
                                              Row("early", store::ComplianceState::kCompliant, false, 1030)};
  RuleCompliance r = SummarizeRule(fleet, rule, rows, WaiverLookup({}), {10000, 900}, 0);
  ASSERT_EQ(r.time_to_compliance.samples, 2);
  EXPECT_EQ(r.time_to_compliance.max_seconds, 30) << "early: 1030 - publish 1000";
  EXPECT_EQ(r.time_to_compliance.median_seconds, 15) << "late: 1041 - enrolment 1026, not 41";
  EXPECT_EQ(SecondsToCompliance(fleet.devices()[0], rule, 1041), 15);
}

// The catalog's Canadian decision names only Android and iOS apps: a Linux workstation the rule's
// scope reaches is not applicable — not targeted and never counted compliant — while the phones
// are judged as usual; a vendor record with a Debian package makes the same rule apply to Linux.
TEST(CompliancePlatforms, ARuleWithoutTargetsForADevicesPlatformIsNotApplicableThere) {
  auto target = [](policy::TargetKind kind, const char* value) { return *policy::MakeTarget(kind, value); };
  auto bundle = std::make_shared<policy::Bundle>();
  policy::Rule phones;
  phones.id = "ca-wechat";
  phones.action = policy::Action::kRemove;
  phones.targets = {target(policy::TargetKind::kAndroidPackage, "com.tencent.mm"),
                    target(policy::TargetKind::kIosBundle, "com.tencent.xin")};
  policy::Rule vendor_rule;
  vendor_rule.id = "ca-kaspersky";
  vendor_rule.action = policy::Action::kRemove;
  vendor_rule.targets = {target(policy::TargetKind::kVendor, "Kaspersky")};
  policy::Vendor kaspersky;
  kaspersky.name = "Kaspersky";
  kaspersky.identifiers = {target(policy::TargetKind::kAndroidPackage, "com.kms.free"),
                           target(policy::TargetKind::kDebPackage, "kesl")};
  bundle->rules = {phones, vendor_rule};
  bundle->vendors = {kaspersky};
  PublishedBundle latest;
  latest.version = 1;
  latest.issued_at = 1000;
  latest.bundle = bundle;
  std::vector<ComplianceRule> rules = ComplianceRulesOf(latest);
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].families, kFamilyAndroid | kFamilyApple);
  EXPECT_EQ(rules[1].families, kFamilyAndroid | kFamilyLinux);

  std::vector<store::Device> devices = {MakeDevice("linux-ws", 9990), MakeDevice("pixel", 9990),
                                        MakeDevice("ipad", 9990), MakeDevice("windows-pc", 9990),
                                        MakeDevice("legacy", 9990)};
  devices[0].platform = "linux";
  devices[1].platform = "android";
  devices[2].platform = "ipados";
  devices[3].platform = "windows";  // nothing appban can name runs there
  // devices[4] has no platform recorded: judged applicable, as before platforms were compared.
  FleetMembership fleet = FleetMembership::Build(devices, {});
  std::vector<store::DeviceRuleState> compliant = {Row("linux-ws", store::ComplianceState::kCompliant, false, 1100),
                                                   Row("pixel", store::ComplianceState::kCompliant, false, 1100)};
  ComplianceParams params{10000, 900};
  auto status = [&](size_t device, size_t rule) {
    return ClassifyDeviceRule(fleet.devices()[device], rules[rule], nullptr, WaiverLookup({}), params);
  };
  EXPECT_EQ(status(0, 0), DeviceRuleStatus::kNotApplicable);
  EXPECT_EQ(status(1, 0), DeviceRuleStatus::kPending);
  EXPECT_EQ(status(2, 0), DeviceRuleStatus::kPending);
  EXPECT_EQ(status(3, 0), DeviceRuleStatus::kNotApplicable);
  EXPECT_EQ(status(4, 0), DeviceRuleStatus::kPending);
  EXPECT_EQ(status(0, 1), DeviceRuleStatus::kPending) << "the vendor's Debian package reaches Linux";
  EXPECT_EQ(status(2, 1), DeviceRuleStatus::kNotApplicable);
  EXPECT_EQ(DeviceRuleStatusName(DeviceRuleStatus::kNotApplicable), "not_applicable");

  // Even a stored "compliant" row does not make the workstation count for the phone-only rule.
  RuleCompliance summary = SummarizeRule(fleet, rules[0], compliant, WaiverLookup({}), params, 10);
  EXPECT_EQ(summary.not_applicable, 2);
  EXPECT_EQ(summary.targeted, 3);
  EXPECT_EQ(summary.compliant, 1) << "only the Android phone";
  FleetCompliance totals = SummarizeFleet(fleet, rules, {compliant, {}}, WaiverLookup({}), params);
  EXPECT_EQ(totals.totals.untargeted, 1) << "the Windows PC: no rule applies to it";
}

// What GET /v1/admin/compliance runs: the stored states scanned device by device from a real
// SQLite store (SummarizeStoredFleet) give every number that summarizing each rule's listed states
// gives, whatever the size of the scan's device ranges (1 splits every device apart, 3 cuts
// ranges mid-fleet, 2000 reads it at once). The fleet mixes every case: remediated, compliant
// at different times, violating, waived (stored and by a waiver of the bundle), pending, stale,
// a revoked device with rows, a scoped rule, a row of a rule no longer in the bundle, and a
// device with no rows at all.
TEST(ComplianceFromStore, ScanningTheStoreGivesTheNumbersOfTheListedStates) {
  using namespace store::fleet_testing;
  using store::ComplianceState;
  ScratchDir dir;
  auto fleet_store = OpenFleet(dir.db());
  ASSERT_NE(fleet_store, nullptr);
  std::vector<std::string> ids;
  for (int i = 0; i < 9; ++i) {
    ids.push_back(EnrollOne(*fleet_store, "host-" + std::to_string(i)).device.id);
  }
  const UnixSeconds published = kNow - 1000;
  std::vector<store::CheckinWrite> writes;
  for (int i = 0; i < 9; ++i) {
    // Devices 7 and 8 check in late (pending, then stale under a short stale_after) with no rows.
    store::CheckinWrite write = Checkin(ids[i], {}, i == 8 ? kNow - 5000 : kNow);
    auto row = [&](const char* rule, ComplianceState state, bool had_app, std::optional<UnixSeconds> at) {
      write.rule_states.push_back({ids[i], rule, state, at.value_or(kNow), had_app, at, 1});
    };
    switch (i) {
      case 0:
        row("ban-a", ComplianceState::kCompliant, true, published + 5);
        break;
      case 1:
        row("ban-a", ComplianceState::kCompliant, false, published + 70);
        row("ban-b", ComplianceState::kCompliant, false, published + 4000);
        break;
      case 2:
        row("ban-a", ComplianceState::kViolating, true, std::nullopt);
        row("gone-rule", ComplianceState::kViolating, true, std::nullopt);
        break;
      case 3:
        row("ban-a", ComplianceState::kWaived, true, std::nullopt);
        row("ban-b", ComplianceState::kViolating, true, std::nullopt);
        break;
      case 4:
        row("ban-a", ComplianceState::kCompliant, true, published + 30);
        row("ban-b", ComplianceState::kCompliant, true, published + 31);
        break;
      case 5:
        row("ban-b", ComplianceState::kCompliant, false, published + 2);
        break;
      case 6:
        row("ban-a", ComplianceState::kCompliant, false, published + 600);
        break;
      default:
        break;
    }
    writes.push_back(write);
  }
  ASSERT_TRUE(fleet_store->ApplyCheckins(writes).ok());
  ASSERT_TRUE(fleet_store->RevokeDevice(ids[6], By("alice")).ok());

  auto bundle = std::make_shared<policy::Bundle>();
  for (const char* id : {"ban-a", "ban-b"}) {
    policy::Rule rule;
    rule.id = id;
    rule.targets = {*policy::MakeTarget(policy::TargetKind::kDebPackage, std::string(id) + "-app")};
    if (rule.id == "ban-b") rule.scope_groups = {"ops"};
    bundle->rules.push_back(rule);
  }
  bundle->waivers = {MakeWaiver("w1", "ban-a", policy::WaiverSubject::kDevice, ids[4], kNow + kDay)};
  PublishedBundle latest;
  latest.version = 1;
  latest.issued_at = published;
  latest.bundle = bundle;
  const std::vector<ComplianceRule> rules = ComplianceRulesOf(latest);
  WaiverLookup waivers(bundle->waivers);

  FleetMembership membership;
  auto devices = fleet_store->ListDevicesAfter("", 100);
  ASSERT_TRUE(devices.ok());
  membership.Add(*devices);
  policy::Group ops;
  ops.name = "ops";
  ops.devices = {ids[0], ids[3], ids[6]};
  membership.Finish({ops});
  for (int64_t stale_after : {int64_t{3600}, int64_t{60}}) {
    const ComplianceParams params{kNow + 10, stale_after};
    std::vector<std::vector<store::DeviceRuleState>> listed;
    for (const auto& rule : rules) listed.push_back(*fleet_store->ListRuleStates(rule.id));
    const FleetCompliance expected = SummarizeFleet(membership, rules, listed, waivers, params);
    ASSERT_EQ(expected.totals.devices, 8);
    EXPECT_EQ(expected.totals.violating_any, 2) << "devices 2 and 3";
    EXPECT_EQ(expected.rules[0].waived, 2) << "device 3's stored row and device 4's waiver";
    EXPECT_EQ(expected.rules[0].remediated, 1);
    EXPECT_EQ(expected.rules[1].targeted, 2) << "ops: devices 0 and 3 (6 is revoked)";
    for (size_t per_scan : {size_t{1}, size_t{3}, size_t{2000}}) {
      SCOPED_TRACE("stale_after " + std::to_string(stale_after) + ", " + std::to_string(per_scan) + " per scan");
      auto scanned = SummarizeStoredFleet(*fleet_store, membership, rules, waivers, params, per_scan);
      ASSERT_TRUE(scanned.ok()) << scanned.status().ToString();
      const FleetTotals& a = expected.totals;
      const FleetTotals& b = scanned->totals;
      EXPECT_EQ(std::tie(a.devices, a.fully_compliant, a.mismatch_any, a.violating_any, a.cannot_enforce_any,
                         a.pending_any, a.stale_any, a.untargeted),
                std::tie(b.devices, b.fully_compliant, b.mismatch_any, b.violating_any, b.cannot_enforce_any,
                         b.pending_any, b.stale_any, b.untargeted));
      ASSERT_EQ(scanned->rules.size(), expected.rules.size());
      for (size_t r = 0; r < rules.size(); ++r) {
        const RuleCompliance& x = expected.rules[r];
        const RuleCompliance& y = scanned->rules[r];
        EXPECT_EQ(std::tie(x.targeted, x.compliant, x.remediated, x.violating, x.waived, x.mismatch, x.cannot_enforce,
                           x.pending, x.stale, x.not_applicable),
                  std::tie(y.targeted, y.compliant, y.remediated, y.violating, y.waived, y.mismatch, y.cannot_enforce,
                           y.pending, y.stale, y.not_applicable))
            << rules[r].id;
        EXPECT_EQ(x.time_to_compliance.samples, y.time_to_compliance.samples);
        EXPECT_EQ(x.time_to_compliance.median_seconds, y.time_to_compliance.median_seconds);
        EXPECT_EQ(x.time_to_compliance.p95_seconds, y.time_to_compliance.p95_seconds);
        EXPECT_EQ(x.time_to_compliance.max_seconds, y.time_to_compliance.max_seconds);
        ASSERT_EQ(x.time_to_compliance.curve.size(), y.time_to_compliance.curve.size());
        for (size_t m = 0; m < x.time_to_compliance.curve.size(); ++m)
          EXPECT_EQ(x.time_to_compliance.curve[m].devices, y.time_to_compliance.curve[m].devices);
      }
    }
  }
}

// 100,000 devices x 5 rules: the summary behind GET /v1/admin/compliance. A hang guard, not a
// performance target; the measured time is printed for docs/benchmarks.md.
TEST(ComplianceScale, HundredThousandDevicesFiveRules) {
  constexpr int kDevices = 100000;
  constexpr int kGroups = 10;
  std::vector<store::Device> devices;
  devices.reserve(kDevices);
  std::vector<policy::Group> groups(kGroups);
  for (int g = 0; g < kGroups; ++g) groups[g].name = "group-" + std::to_string(g);
  char id[32];
  for (int i = 0; i < kDevices; ++i) {
    std::snprintf(id, sizeof id, "d-%016x", i);
    devices.push_back(MakeDevice(id, i % 50 == 0 ? 1000 : 99000));  // 2% stale
    groups[i % kGroups].devices.push_back(id);
  }
  std::vector<ComplianceRule> rules = {
      {"r0", policy::Action::kRemove, {}, 1, 50000},
      {"r1", policy::Action::kRemove, {}, 2, 60000},
      {"r2", policy::Action::kBlock, {"group-0", "group-1"}, 2, 60000},
      {"r3", policy::Action::kReport, {"group-2"}, 3, 70000},
      {"r4", policy::Action::kRemove, {"group-3", "group-4", "group-5"}, 3, 70000},
  };
  std::vector<std::vector<store::DeviceRuleState>> states(rules.size());
  uint64_t lcg = 12345;
  for (size_t r = 0; r < rules.size(); ++r) {
    for (int i = 0; i < kDevices; ++i) {
      lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
      int roll = static_cast<int>((lcg >> 33) % 100);
      if (roll < 5) continue;  // pending
      std::snprintf(id, sizeof id, "d-%016x", i);
      bool violating = roll < 8;
      states[r].push_back(
          Row(id, violating ? store::ComplianceState::kViolating : store::ComplianceState::kCompliant, roll < 30,
              violating ? std::nullopt : std::optional<UnixSeconds>(rules[r].first_published_at + roll * 7)));
    }
  }
  std::vector<policy::Waiver> waivers = {MakeWaiver("w", "r0", policy::WaiverSubject::kGroup, "group-9", 200000)};

  auto start = std::chrono::steady_clock::now();
  FleetMembership fleet = FleetMembership::Build(devices, groups);
  auto built = std::chrono::steady_clock::now();
  FleetCompliance summary = SummarizeFleet(fleet, rules, states, WaiverLookup(waivers), {100000, 900});
  auto done = std::chrono::steady_clock::now();
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::cout << "[ compliance ] 100000 devices x 5 rules: membership " << ms(built - start) << " ms, summary "
            << ms(done - built) << " ms\n";

  ASSERT_EQ(summary.rules.size(), 5u);
  EXPECT_EQ(summary.rules[0].targeted, kDevices);
  EXPECT_EQ(summary.rules[0].waived, kDevices / kGroups);
  EXPECT_EQ(summary.rules[2].targeted, 2 * kDevices / kGroups);
  EXPECT_EQ(summary.rules[4].targeted, 3 * kDevices / kGroups);
  for (const auto& rule : summary.rules) {
    EXPECT_EQ(rule.compliant + rule.violating + rule.waived + rule.pending + rule.stale, rule.targeted) << rule.rule.id;
    EXPECT_GT(rule.time_to_compliance.samples, 0);
    EXPECT_LE(*rule.time_to_compliance.median_seconds, *rule.time_to_compliance.p95_seconds);
    EXPECT_LE(*rule.time_to_compliance.p95_seconds, *rule.time_to_compliance.max_seconds);
  }
  EXPECT_EQ(summary.totals.devices, kDevices);
  EXPECT_EQ(summary.totals.fully_compliant + summary.totals.violating_any + summary.totals.pending_any +
                summary.totals.untargeted,
            kDevices);
  EXPECT_LT(ms(done - start), 30000.0) << "hang guard";
}

}  // namespace
}  // namespace appban::verify
