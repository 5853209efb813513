// PolicyAdmin against the real SQLite store: each change passes its due-process checks, then
// lands in the store with its audit entry, or not at all.
#include "appban/decide/admin.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "appban/policy/limits.h"
#include "appban/store/store.h"

namespace appban::decide {
namespace {

namespace fs = std::filesystem;

using store::OpenSqliteStore;

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "appban-decide-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string db() const { return (path_ / "policy.db").string(); }

 private:
  fs::path path_;
};

policy::Rule SampleRule(const std::string& id) {
  policy::Rule rule;
  rule.id = id;
  rule.title = "ban " + id;
  rule.targets = {*policy::MakeTarget(policy::TargetKind::kAndroidPackage, "com.example." + id)};
  return rule;
}

TEST(PolicyAdmin, TwoPersonRuleHoldsThroughTheStore) {
  ScratchDir dir;
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  PolicyAdmin alice(**store, "alice");
  PolicyAdmin bob(**store, "bob");
  ASSERT_TRUE(alice.ProposeRule(SampleRule("r1")).ok());
  EXPECT_EQ(alice.ApproveRule("r1").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*store)->GetRule("r1")->state, policy::RuleState::kDraft);
  ASSERT_TRUE(bob.ApproveRule("r1").ok());
  ASSERT_TRUE(alice.PublishRule("r1").ok());
  auto rule = (*store)->GetRule("r1");
  ASSERT_EQ(rule->history.size(), 3u);
  EXPECT_EQ(rule->history[1].by, "bob");
  auto entries = (*store)->ReadAudit();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[1].action, "rule.approve");
  EXPECT_EQ((*entries)[1].actor, "bob");
  EXPECT_NE((*entries)[1].before_json.find("\"state\":\"draft\""), std::string::npos);
  EXPECT_NE((*entries)[1].after_json.find("\"state\":\"approved\""), std::string::npos);
}

TEST(PolicyAdmin, RefusedStepLeavesNoAuditEntry) {
  ScratchDir dir;
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  PolicyAdmin alice(**store, "alice");
  PolicyAdmin nobody(**store, "");
  EXPECT_EQ(nobody.ProposeRule(SampleRule("r1")).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(alice.ProposeRule(SampleRule("r1")).ok());
  EXPECT_EQ(alice.PublishRule("r1").status().code(), StatusCode::kFailedPrecondition);  // not approved
  EXPECT_EQ(alice.RevokeRule("r1", "").status().code(), StatusCode::kInvalidArgument);  // no reason
  policy::Rule scoped = SampleRule("r2");
  scoped.scope_groups = {"no-such-group"};
  EXPECT_EQ(alice.ProposeRule(scoped).status().code(), StatusCode::kNotFound);
  auto entries = (*store)->ReadAudit();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);  // only the proposal
  EXPECT_EQ((*entries)[0].action, "rule.propose");
}

// ---- Quorum (store/change.h): distinct people, the proposer counted once, service accounts and
// break-glass never.

Actor Person(const std::string& id, bool human = true, bool break_glass = false) {
  return Actor{id, id, human, nullptr, break_glass, {}};
}

// A fresh store, and rule r1 proposed by alice.
class PolicyAdminQuorum : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = OpenSqliteStore(dir_.db());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(*opened);
    ASSERT_TRUE(As("alice").ProposeRule(SampleRule("r1")).ok());
  }
  PolicyAdmin As(const std::string& id, bool human = true, bool break_glass = false) {
    return PolicyAdmin(*store_, Person(id, human, break_glass));
  }
  // r1 approved by bob and published.
  void PublishR1() {
    ASSERT_TRUE(As("bob").ApproveRule("r1").ok());
    ASSERT_TRUE(As("bob").PublishRule("r1").ok());
  }

  ScratchDir dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(PolicyAdminQuorum, RuleApprovalWaitsForThreeDistinctPeople) {
  PolicyAdmin alice = As("alice"), bob = As("bob"), carol = As("carol"), robot = As("ci-bot", false);

  auto first = bob.ApproveRuleWithQuorum("r1", "looks right", 3);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->state, store::ChangeState::kPending);
  EXPECT_EQ(first->People(), 2);
  EXPECT_EQ(store_->GetRule("r1")->state, policy::RuleState::kDraft) << "two of three people approve nothing";

  // Neither the proposer, nor bob again, nor a service account is a third person.
  EXPECT_EQ(alice.ApproveRuleWithQuorum("r1", "", 3).status().code(), StatusCode::kPermissionDenied);
  auto again = bob.ApproveRuleWithQuorum("r1", "", 3);
  EXPECT_EQ(again.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(again.status().message().find("already approved"), std::string::npos) << again.status().ToString();
  EXPECT_EQ(robot.ApproveRuleWithQuorum("r1", "", 3).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->GetRule("r1")->state, policy::RuleState::kDraft);

  auto third = carol.ApproveRuleWithQuorum("r1", "agreed", 3);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  ASSERT_TRUE(third->QuorumReached());
  auto applied = carol.ApplyPolicyChange(*third);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  ASSERT_TRUE(carol.CloseChange(*third, store::ChangeState::kApplied).ok());
  auto rule = store_->GetRule("r1");
  EXPECT_EQ(rule->state, policy::RuleState::kApproved);
  EXPECT_EQ(rule->history.back().by, "carol");
  auto stored = store_->GetChange(third->id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, store::ChangeState::kApplied);
  ASSERT_EQ(stored->approvals.size(), 2u);
  EXPECT_EQ(stored->approvals[0].user_id, "bob");
  EXPECT_EQ(stored->approvals[1].user_id, "carol");
  // Every step is in the audit chain, and the chain verifies.
  std::vector<std::string> actions;
  auto entries = store_->ReadAudit();
  ASSERT_TRUE(entries.ok());
  for (const auto& entry : *entries) actions.push_back(entry.action);
  EXPECT_EQ(actions, (std::vector<std::string>{"rule.propose", "change.approve", "change.approve", "rule.approve",
                                               "change.apply"}));
  EXPECT_TRUE(store_->VerifyAudit()->ok());
}

TEST_F(PolicyAdminQuorum, AWaiverIsRequestedByOnePersonAndGrantedByAnother) {
  PolicyAdmin alice = As("alice"), bob = As("bob");
  PublishR1();
  ASSERT_TRUE(alice.CreateGroup(policy::Group{"lab", "the lab", {}, 0}).ok());

  policy::Waiver waiver;
  waiver.id = "w1";
  waiver.rule_id = "r1";
  waiver.subject_kind = policy::WaiverSubject::kGroup;
  waiver.subject = "lab";
  waiver.justification = "research";
  waiver.expires_at = SystemClockNow() + 86400;
  auto someone_else = waiver;
  someone_else.requested_by = "bob";
  EXPECT_EQ(alice.ProposeWaiver(someone_else, 2).status().code(), StatusCode::kInvalidArgument)
      << "nobody requests a waiver in another person's name";

  auto proposed = alice.ProposeWaiver(waiver, 2);
  ASSERT_TRUE(proposed.ok()) << proposed.status().ToString();
  EXPECT_FALSE(proposed->QuorumReached());
  EXPECT_EQ(store_->GetWaiver("w1").status().code(), StatusCode::kNotFound) << "a request exempts nobody";
  EXPECT_EQ(alice.ApproveChange(proposed->id, "").status().code(), StatusCode::kPermissionDenied);

  auto approved = bob.ApproveChange(proposed->id, "fine");
  ASSERT_TRUE(approved.ok()) << approved.status().ToString();
  ASSERT_TRUE(approved->QuorumReached());
  ASSERT_TRUE(bob.ApplyPolicyChange(*approved).ok());
  auto stored = store_->GetWaiver("w1");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->requested_by, "alice");
  EXPECT_EQ(stored->approved_by, "bob");
}

TEST_F(PolicyAdminQuorum, BreakGlassProposesButNeverCountsNorApproves) {
  PolicyAdmin alice = As("alice"), bob = As("bob"), glass = As("root", true, true);
  EXPECT_EQ(glass.ApproveRule("r1").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(glass.ApproveRuleWithQuorum("r1", "", 2).status().code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(bob.ApproveRule("r1").ok());
  ASSERT_TRUE(bob.PublishRule("r1").ok());

  auto revoke = glass.ProposeRuleRevocation("r1", "server down, rule breaks payroll", 2);
  ASSERT_TRUE(revoke.ok()) << revoke.status().ToString();
  EXPECT_EQ(revoke->People(), 0) << "a break-glass proposer counts as nobody";
  auto one = alice.ApproveChange(revoke->id, "");
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(one->QuorumReached()) << "break-glass plus one person is not two people";
  auto two = bob.ApproveChange(revoke->id, "");
  ASSERT_TRUE(two.ok());
  ASSERT_TRUE(two->QuorumReached());
  ASSERT_TRUE(bob.ApplyPolicyChange(*two).ok());
  EXPECT_EQ(store_->GetRule("r1")->state, policy::RuleState::kRevoked);

  // A revoked rule cannot be proposed for revocation again.
  auto other = alice.ProposeRuleRevocation("r1", "again", 2);
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition) << "already revoked";
}

// A draft stored on the host before decisions needed a signed-in person names its proposer by a
// typed name ("alice" here, r1's). Among signed-in people that name vouches for no one, so, as
// for a break-glass draft, the person who approves it cannot also publish it.
TEST_F(PolicyAdminQuorum, ADraftUnderATypedNameNeedsTwoSignedInPeopleAfterIt) {
  PolicyAdmin first = As("u-" + std::string(24, '1')), second = As("u-" + std::string(24, '2'));
  ASSERT_TRUE(first.ApproveRule("r1").ok());
  auto alone = first.PublishRule("r1");
  EXPECT_EQ(alone.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(alone.status().message().find("before decisions needed a signed-in person"), std::string::npos)
      << alone.status().ToString();
  EXPECT_EQ(store_->GetRule("r1")->state, policy::RuleState::kApproved);
  ASSERT_TRUE(second.PublishRule("r1").ok());
  EXPECT_EQ(store_->GetRule("r1")->state, policy::RuleState::kPublished);
}

// With a quorum of three, a typed-name proposer is not one of the three.
TEST_F(PolicyAdminQuorum, ATypedNameCountsForNoOneInAQuorum) {
  PolicyAdmin glass = As("root", true, true);
  ASSERT_TRUE(glass.ProposeRule(SampleRule("r-glass")).ok());
  auto opened = As("bob").ApproveRuleWithQuorum("r-glass", "", 3);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->People(), 1) << "bob alone; the break-glass proposer is nobody";
  auto second = As("carol").ApproveChange(opened->id, "");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->QuorumReached());
  auto third = As("dave").ApproveChange(opened->id, "");
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->QuorumReached());
}

// A rule that targets a vendor bans every identifier of it, so adding identifiers to a vendor a
// rule in force targets widens that rule: two people, as for approving the rule itself.
TEST_F(PolicyAdminQuorum, AVendorMergeThatWidensARuleInForceWaitsForASecondPerson) {
  PolicyAdmin alice = As("alice"), bob = As("bob"), robot = As("ci-bot", false);
  auto vendor = [](std::vector<std::string> packages) {
    policy::Vendor v{"Example Vendor", "CN", {}, 0};
    for (const auto& p : packages) v.identifiers.push_back(*policy::MakeTarget(policy::TargetKind::kAndroidPackage, p));
    return v;
  };
  auto identifiers = [&] {
    auto vendors = store_->ListVendors();
    std::vector<std::string> values;
    for (const auto& v : *vendors)
      for (const auto& t : v.identifiers) values.push_back(t.value);
    return values;
  };

  // No rule targets the vendor yet: the record is written at once, even by a service account.
  auto first = robot.MergeVendor(vendor({"com.example.chat"}), 2);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->state, store::ChangeState::kApplied);
  EXPECT_EQ(identifiers(), std::vector<std::string>{"com.example.chat"});

  // A draft rule bans nothing yet: still at once.
  policy::Rule by_vendor = SampleRule("r-vendor");
  by_vendor.targets = {*policy::MakeTarget(policy::TargetKind::kVendor, "Example Vendor")};
  ASSERT_TRUE(alice.ProposeRule(by_vendor).ok());
  ASSERT_TRUE(alice.MergeVendor(vendor({"com.example.pay"}), 2).ok());
  EXPECT_EQ(identifiers().size(), 2u);

  // Once the rule is approved, a new identifier waits for another person.
  ASSERT_TRUE(bob.ApproveRule("r-vendor").ok());
  EXPECT_EQ(robot.MergeVendor(vendor({"com.example.maps"}), 2).status().code(), StatusCode::kPermissionDenied)
      << "a service account cannot widen a rule";
  auto widening = alice.MergeVendor(vendor({"com.example.maps"}), 2, "the maps app ships the same SDK");
  ASSERT_TRUE(widening.ok()) << widening.status().ToString();
  EXPECT_EQ(widening->state, store::ChangeState::kPending);
  EXPECT_EQ(widening->kind, "vendor.merge");
  EXPECT_EQ(widening->payload["widens"], Json::array({"r-vendor"}));
  EXPECT_EQ(identifiers().size(), 2u) << "a proposal widens nothing";
  // Identifiers the vendor already has add nothing, so they need nobody.
  auto known = alice.MergeVendor(vendor({"com.example.chat"}), 2);
  ASSERT_TRUE(known.ok());
  EXPECT_EQ(known->state, store::ChangeState::kApplied);

  EXPECT_EQ(alice.ApproveChange(widening->id, "").status().code(), StatusCode::kPermissionDenied);
  auto approved = bob.ApproveChange(widening->id, "checked the signer");
  ASSERT_TRUE(approved.ok()) << approved.status().ToString();
  ASSERT_TRUE(approved->QuorumReached());
  auto applied = bob.ApplyPolicyChange(*approved);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(identifiers(), (std::vector<std::string>{"com.example.chat", "com.example.pay", "com.example.maps"}));
  auto entries = store_->ReadAudit();
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->back().action, "vendor.put");
  EXPECT_EQ(entries->back().actor, "bob");
  EXPECT_TRUE(store_->VerifyAudit()->ok());
}

TEST_F(PolicyAdminQuorum, AVendorNeverGrowsPastWhatCanBeReadBack) {
  PolicyAdmin alice = As("alice");
  policy::Vendor big{"Big Vendor", "", {}, 0};
  for (size_t i = 0; i < policy::kPolicyLimits.max_targets_per_rule; ++i) {
    big.identifiers.push_back(
        *policy::MakeTarget(policy::TargetKind::kAndroidPackage, "com.big.a" + std::to_string(i)));
  }
  ASSERT_TRUE(alice.MergeVendor(big, 2).ok());
  policy::Vendor one_more{"Big Vendor", "", {*policy::MakeTarget(policy::TargetKind::kAndroidPackage, "com.big.z")}, 0};
  auto refused = alice.MergeVendor(one_more, 2);
  EXPECT_EQ(refused.status().code(), StatusCode::kLimitExceeded) << refused.status().ToString();
  auto vendors = store_->ListVendors();
  ASSERT_TRUE(vendors.ok()) << vendors.status().ToString();
  EXPECT_EQ(vendors->at(0).identifiers.size(), policy::kPolicyLimits.max_targets_per_rule);
}

TEST(ChangeJson, RoundTripsAndRefusesMalformedDocuments) {
  store::Change change;
  change.id = "c-0123";
  change.kind = "rule.revoke";
  change.object = "rule:r1";
  change.payload = Json{{"rule_id", "r1"}};
  change.quorum = 3;
  change.proposed_by = "u-a";
  change.created_at = 1700000000;
  change.approvals.push_back({"u-b", "Bob", 1700000100, "ok"});
  auto back = store::ChangeFromJson(store::ChangeToJson(change));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->approvals.at(0).user_id, "u-b");
  EXPECT_EQ(back->People(), 2);

  Json twice = store::ChangeToJson(change);
  twice["approvals"].push_back(twice["approvals"][0]);
  EXPECT_EQ(store::ChangeFromJson(twice).status().code(), StatusCode::kInvalidArgument);
  Json self = store::ChangeToJson(change);
  self["approvals"][0]["user_id"] = "u-a";
  EXPECT_EQ(store::ChangeFromJson(self).status().code(), StatusCode::kInvalidArgument) << "the proposer counts once";
  for (int64_t quorum : {1, 10}) {
    Json bad = store::ChangeToJson(change);
    bad["quorum"] = quorum;
    EXPECT_EQ(store::ChangeFromJson(bad).status().code(), StatusCode::kInvalidArgument);
  }
  Json unknown = store::ChangeToJson(change);
  unknown["extra"] = 1;
  EXPECT_EQ(store::ChangeFromJson(unknown).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store::ChangeFromJson(Json::array()).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace appban::decide
