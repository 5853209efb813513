#include "appban/verify/rule_states.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace appban::verify {
namespace {

using store::ComplianceState;
using store::DeviceRuleState;

constexpr UnixSeconds kNow = 1'800'000'000;

policy::Rule MakeRule(std::string id, std::string package, policy::Action action = policy::Action::kRemove) {
  policy::Rule rule;
  rule.id = std::move(id);
  rule.title = "ban " + rule.id;
  rule.action = action;
  rule.state = policy::RuleState::kPublished;
  rule.targets = {*policy::MakeTarget(policy::TargetKind::kAndroidPackage, package)};
  return rule;
}

policy::Waiver MakeWaiver(std::string rule_id, policy::WaiverSubject kind, std::string subject,
                          UnixSeconds expires_at) {
  policy::Waiver waiver;
  waiver.id = "w-" + rule_id;
  waiver.rule_id = std::move(rule_id);
  waiver.subject_kind = kind;
  waiver.subject = std::move(subject);
  waiver.justification = "needed for the job";
  waiver.approved_by = "alice";
  waiver.expires_at = expires_at;
  return waiver;
}

// A bundle as BundleHub holds it: version 3, with `first_published` versions for its rules.
PublishedBundle Publish(std::vector<policy::Rule> rules, std::vector<policy::Waiver> waivers = {},
                        std::map<std::string, int64_t> first_published = {}) {
  policy::Bundle bundle;
  bundle.version = 3;
  bundle.issued_at = kNow - 100;
  bundle.not_after = kNow + 1000;
  bundle.rules = std::move(rules);
  bundle.waivers = std::move(waivers);
  PublishedBundle published;
  published.version = bundle.version;
  published.issued_at = bundle.issued_at;
  auto index = policy::PolicyIndex::Build(bundle);
  EXPECT_TRUE(index.ok()) << index.status().ToString();
  published.index = std::make_shared<const policy::PolicyIndex>(std::move(*index));
  published.bundle = std::make_shared<const policy::Bundle>(std::move(bundle));
  for (const auto& [rule_id, version] : first_published) {
    published.rule_first_published[rule_id] = {version, kNow - 1000};
  }
  return published;
}

policy::InstalledApp App(std::string id) {
  return policy::InstalledApp{policy::Platform::kAndroid, std::move(id), "", "", ""};
}

const DeviceRuleStanding* Find(const std::vector<DeviceRuleStanding>& standings, const std::string& rule_id) {
  for (const auto& standing : standings) {
    if (standing.rule_id == rule_id) return &standing;
  }
  return nullptr;
}

// ---- EvaluateRuleStandings ----

TEST(RuleStandings, NothingPublishedMeansNoStandings) {
  PublishedBundle none;
  policy::DeviceContext device{"d-1", {}};
  EXPECT_TRUE(EvaluateRuleStandings(none, device, {}, 0, kNow).empty());
}

TEST(RuleStandings, EachStandingFollowsFromAppliedVersionAppsAndWaivers) {
  policy::Rule report = MakeRule("report-x", "com.example.x", policy::Action::kReport);
  PublishedBundle latest = Publish({MakeRule("held", "com.example.held"), MakeRule("absent", "com.example.absent"),
                                    MakeRule("waived", "com.example.waived"), report});
  policy::Waiver waiver = MakeWaiver("waived", policy::WaiverSubject::kDevice, "d-1", kNow + 10);
  latest = Publish(latest.bundle->rules, {waiver});
  policy::DeviceContext device{"d-1", {}};
  std::vector<policy::InstalledApp> apps = {App("com.example.held"), App("com.example.waived"), App("com.example.x")};

  auto standings = EvaluateRuleStandings(latest, device, apps, /*applied_version=*/3, kNow);
  ASSERT_EQ(standings.size(), 4u);
  EXPECT_EQ(Find(standings, "held")->standing, RuleStanding::kViolating);
  EXPECT_TRUE(Find(standings, "held")->holds_matching_app);
  EXPECT_EQ(Find(standings, "absent")->standing, RuleStanding::kCompliant);
  EXPECT_FALSE(Find(standings, "absent")->holds_matching_app);
  EXPECT_EQ(Find(standings, "waived")->standing, RuleStanding::kWaived);
  EXPECT_TRUE(Find(standings, "waived")->holds_matching_app);
  // A report-only rule is complied with while the app stays; the match is still recorded.
  EXPECT_EQ(Find(standings, "report-x")->standing, RuleStanding::kCompliant);
  EXPECT_TRUE(Find(standings, "report-x")->holds_matching_app);

  // Before the device applied the bundle, every unwaived rule is pending.
  auto earlier = EvaluateRuleStandings(latest, device, apps, /*applied_version=*/2, kNow);
  EXPECT_EQ(Find(earlier, "held")->standing, RuleStanding::kPending);
  EXPECT_EQ(Find(earlier, "absent")->standing, RuleStanding::kPending);
  EXPECT_EQ(Find(earlier, "waived")->standing, RuleStanding::kWaived);

  // An expired waiver no longer waives.
  auto later = EvaluateRuleStandings(latest, device, apps, 3, kNow + 10);
  EXPECT_EQ(Find(later, "waived")->standing, RuleStanding::kViolating);
}

TEST(RuleStandings, FirstPublishedVersionDecidesPending) {
  // The rule first shipped in version 2: a device that applied version 2 is judged on it.
  PublishedBundle latest =
      Publish({MakeRule("old", "com.example.old"), MakeRule("new", "com.example.new")}, {}, {{"old", 2}, {"new", 3}});
  policy::DeviceContext device{"d-1", {}};
  auto standings = EvaluateRuleStandings(latest, device, {}, /*applied_version=*/2, kNow);
  EXPECT_EQ(Find(standings, "old")->standing, RuleStanding::kCompliant);
  EXPECT_EQ(Find(standings, "new")->standing, RuleStanding::kPending);
}

TEST(RuleStandings, OutOfScopeAndNotYetEffectiveRulesAreLeftOut) {
  policy::Rule scoped = MakeRule("scoped", "com.example.scoped");
  scoped.scope_groups = {"ministers"};
  policy::Rule future = MakeRule("future", "com.example.future");
  future.effective_at = kNow + 60;
  PublishedBundle latest = Publish({scoped, future, MakeRule("all", "com.example.all")},
                                   {MakeWaiver("all", policy::WaiverSubject::kGroup, "ministers", kNow + 10)});
  policy::DeviceContext staff{"d-1", {"staff"}};
  auto standings = EvaluateRuleStandings(latest, staff, {}, 3, kNow);
  ASSERT_EQ(standings.size(), 1u);
  EXPECT_EQ(standings[0].rule_id, "all");
  EXPECT_EQ(standings[0].standing, RuleStanding::kCompliant);

  policy::DeviceContext minister{"d-2", {"ministers"}};
  standings = EvaluateRuleStandings(latest, minister, {}, 3, kNow);
  ASSERT_EQ(standings.size(), 2u);
  EXPECT_EQ(Find(standings, "scoped")->standing, RuleStanding::kCompliant);
  EXPECT_EQ(Find(standings, "all")->standing, RuleStanding::kWaived);  // waived through the group
}

// ---- DiffRuleStates ----

DeviceRuleStanding Standing(std::string rule_id, RuleStanding standing, bool holds = false) {
  return DeviceRuleStanding{std::move(rule_id), standing, holds};
}

DeviceRuleState Stored(std::string rule_id, ComplianceState state, UnixSeconds since, bool had_app = false,
                       std::optional<UnixSeconds> compliant_at = std::nullopt) {
  DeviceRuleState row;
  row.device_id = "d-1";
  row.rule_id = std::move(rule_id);
  row.state = state;
  row.since = since;
  row.had_app = had_app;
  row.compliant_at = compliant_at;
  row.version = 2;
  return row;
}

TEST(RuleStateDiff, FirstEvaluationWritesEveryDecidedStandingAndNoPendingOne) {
  std::vector<DeviceRuleStanding> standings = {
      Standing("a", RuleStanding::kViolating, true), Standing("b", RuleStanding::kCompliant),
      Standing("c", RuleStanding::kWaived, true), Standing("d", RuleStanding::kPending, true)};
  RuleStateDiff diff = DiffRuleStates("d-1", standings, {}, {}, 3, kNow);
  ASSERT_EQ(diff.upserts.size(), 3u);
  EXPECT_TRUE(diff.cleared_rule_ids.empty());
  const DeviceRuleState& a = diff.upserts[0];
  EXPECT_EQ(a.device_id, "d-1");
  EXPECT_EQ(a.rule_id, "a");
  EXPECT_EQ(a.state, ComplianceState::kViolating);
  EXPECT_TRUE(a.had_app);
  EXPECT_FALSE(a.compliant_at);
  EXPECT_EQ(a.since, kNow);
  EXPECT_EQ(a.version, 3);
  EXPECT_EQ(diff.upserts[1].state, ComplianceState::kCompliant);
  EXPECT_EQ(diff.upserts[1].compliant_at, kNow);
  EXPECT_FALSE(diff.upserts[1].had_app);
  EXPECT_EQ(diff.upserts[2].state, ComplianceState::kWaived);
}

TEST(RuleStateDiff, UnchangedRowsAreNotWrittenAgain) {
  std::vector<DeviceRuleState> stored = {Stored("a", ComplianceState::kViolating, kNow - 50, true),
                                         Stored("b", ComplianceState::kCompliant, kNow - 50, false, kNow - 50)};
  std::vector<DeviceRuleStanding> standings = {Standing("a", RuleStanding::kViolating, true),
                                               Standing("b", RuleStanding::kCompliant)};
  RuleStateDiff diff = DiffRuleStates("d-1", standings, stored, {}, 3, kNow);
  EXPECT_TRUE(diff.upserts.empty());
  EXPECT_TRUE(diff.cleared_rule_ids.empty());
}

TEST(RuleStateDiff, RemediationKeepsHadAppAndStampsCompliantAtOnce) {
  // The device held the app (violating since kNow - 50) and has removed it.
  std::vector<DeviceRuleState> stored = {Stored("a", ComplianceState::kViolating, kNow - 50, true)};
  RuleStateDiff diff = DiffRuleStates("d-1", std::vector{Standing("a", RuleStanding::kCompliant)}, stored, {}, 3, kNow);
  ASSERT_EQ(diff.upserts.size(), 1u);
  EXPECT_EQ(diff.upserts[0].state, ComplianceState::kCompliant);
  EXPECT_TRUE(diff.upserts[0].had_app);  // remembered: this is a remediation
  EXPECT_EQ(diff.upserts[0].compliant_at, kNow);
  EXPECT_EQ(diff.upserts[0].since, kNow);  // the state changed

  // Violating again later: compliant_at keeps the first time, `since` restarts.
  std::vector<DeviceRuleState> compliant = {diff.upserts[0]};
  diff = DiffRuleStates("d-1", std::vector{Standing("a", RuleStanding::kViolating, true)}, compliant, {}, 3, kNow + 9);
  ASSERT_EQ(diff.upserts.size(), 1u);
  EXPECT_EQ(diff.upserts[0].state, ComplianceState::kViolating);
  EXPECT_EQ(diff.upserts[0].compliant_at, kNow);
  EXPECT_EQ(diff.upserts[0].since, kNow + 9);
}

TEST(RuleStateDiff, ReportedRemovalCountsAsHavingHadTheApp) {
  // Removed between two check-ins: the inventory no longer holds it, the removal event says it did.
  std::set<std::string, std::less<>> removed = {"a"};
  RuleStateDiff diff =
      DiffRuleStates("d-1", std::vector{Standing("a", RuleStanding::kCompliant)}, {}, removed, 3, kNow);
  ASSERT_EQ(diff.upserts.size(), 1u);
  EXPECT_TRUE(diff.upserts[0].had_app);
  EXPECT_EQ(diff.upserts[0].compliant_at, kNow);
}

TEST(RuleStateDiff, SameStateKeepsSinceWhenOnlyHadAppChanges) {
  std::vector<DeviceRuleState> stored = {Stored("a", ComplianceState::kCompliant, kNow - 50, false, kNow - 50)};
  std::set<std::string, std::less<>> removed = {"a"};
  RuleStateDiff diff =
      DiffRuleStates("d-1", std::vector{Standing("a", RuleStanding::kCompliant)}, stored, removed, 3, kNow);
  ASSERT_EQ(diff.upserts.size(), 1u);
  EXPECT_TRUE(diff.upserts[0].had_app);
  EXPECT_EQ(diff.upserts[0].since, kNow - 50);
  EXPECT_EQ(diff.upserts[0].compliant_at, kNow - 50);
}

TEST(RuleStateDiff, RowsWithoutADecidedStandingAreClearedInRuleIdOrder) {
  std::vector<DeviceRuleState> stored = {Stored("zeta", ComplianceState::kViolating, kNow - 50, true),
                                         Stored("alpha", ComplianceState::kCompliant, kNow - 50, false, kNow - 50),
                                         Stored("kept", ComplianceState::kCompliant, kNow - 50, false, kNow - 50),
                                         Stored("pending", ComplianceState::kCompliant, kNow - 50, false, kNow - 50)};
  std::vector<DeviceRuleStanding> standings = {Standing("kept", RuleStanding::kCompliant),
                                               Standing("pending", RuleStanding::kPending)};
  RuleStateDiff diff = DiffRuleStates("d-1", standings, stored, {}, 3, kNow);
  EXPECT_TRUE(diff.upserts.empty());
  EXPECT_EQ(diff.cleared_rule_ids, (std::vector<std::string>{"alpha", "pending", "zeta"}));
}

}  // namespace
}  // namespace appban::verify
