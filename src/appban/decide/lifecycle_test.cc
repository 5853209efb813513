#include "appban/decide/lifecycle.h"

#include <gtest/gtest.h>

namespace appban::decide {
namespace {

using policy::MakeTarget;
using policy::Rule;
using policy::RuleFromJson;
using policy::RuleState;
using policy::RuleToJson;
using policy::TargetKind;

Rule Draftable() {
  Rule rule;
  rule.id = "ca-wechat";
  rule.title = "WeChat";
  rule.targets = {*MakeTarget(TargetKind::kAndroidPackage, "com.tencent.mm")};
  return rule;
}

TEST(PolicyLifecycle, DraftApprovedPublishedRevokedRecordsWhoAndWhen) {
  Rule rule = Draftable();
  ASSERT_TRUE(ProposeRule(rule, "alice", 100).ok());
  ASSERT_TRUE(ApproveRule(rule, "bob", 200, "reviewed evidence").ok());
  ASSERT_TRUE(PublishRule(rule, "bob", 300).ok());
  ASSERT_TRUE(RevokeRule(rule, "carol", 400, "superseded").ok());
  EXPECT_EQ(rule.state, RuleState::kRevoked);
  ASSERT_EQ(rule.history.size(), 4u);
  EXPECT_EQ(rule.history[0].by, "alice");
  EXPECT_EQ(rule.history[1].to, RuleState::kApproved);
  EXPECT_EQ(rule.history[1].by, "bob");
  EXPECT_EQ(rule.history[1].at, 200);
  EXPECT_EQ(rule.history[1].note, "reviewed evidence");
  EXPECT_EQ(rule.history[3].note, "superseded");
}

TEST(PolicyLifecycle, RulesOnPackagesDebianCannotLoseAreRefusedAtProposalAndPublication) {
  Rule rule = Draftable();
  rule.targets.push_back(*MakeTarget(TargetKind::kDebPackage, "base-files"));
  Status status = ProposeRule(rule, "alice", 100);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("deb:base-files cannot be banned: it is Essential: yes"), std::string::npos)
      << status.ToString();
  EXPECT_TRUE(rule.history.empty());

  EXPECT_EQ(*policy::ProtectedDebianPackage("apt"), "it is Priority: required in Debian 12");
  auto libc = policy::ProtectedDebianPackage("libc6");
  ASSERT_TRUE(libc.has_value());
  EXPECT_NE(libc->find("needed by"), std::string::npos) << *libc;
  EXPECT_FALSE(policy::ProtectedDebianPackage("wechat").has_value());
  EXPECT_FALSE(policy::ProtectedDebianPackage("").has_value());

  // A draft stored before the list existed cannot be published either.
  Rule old = Draftable();
  ASSERT_TRUE(ProposeRule(old, "alice", 100).ok());
  ASSERT_TRUE(ApproveRule(old, "bob", 200).ok());
  old.targets = {*MakeTarget(TargetKind::kDebPackage, "libc6")};
  EXPECT_EQ(PublishRule(old, "bob", 300).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(old.state, RuleState::kApproved);
}

TEST(PolicyLifecycle, ProposerCannotApproveOwnRule) {
  Rule rule = Draftable();
  ASSERT_TRUE(ProposeRule(rule, "alice", 100).ok());
  Status status = ApproveRule(rule, "alice", 200);
  EXPECT_EQ(status.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(status.message().find("two-person"), std::string::npos);
  EXPECT_EQ(rule.state, RuleState::kDraft);
  EXPECT_EQ(rule.history.size(), 1u);
}

TEST(PolicyLifecycle, StepsCannotBeSkippedOrRepeated) {
  Rule rule = Draftable();
  ASSERT_TRUE(ProposeRule(rule, "alice", 100).ok());
  EXPECT_EQ(PublishRule(rule, "bob", 200).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(ApproveRule(rule, "bob", 200).ok());
  EXPECT_EQ(ApproveRule(rule, "carol", 250).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(RevokeRule(rule, "carol", 260, "").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(RevokeRule(rule, "carol", 300, "withdrawn").ok());
  EXPECT_EQ(PublishRule(rule, "bob", 400).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(RevokeRule(rule, "carol", 500, "again").code(), StatusCode::kFailedPrecondition);
}

TEST(PolicyLifecycle, ActorMustBeNamed) {
  Rule rule = Draftable();
  EXPECT_EQ(ProposeRule(rule, "", 100).code(), StatusCode::kInvalidArgument);
}

TEST(PolicyLifecycle, RuleRoundTripsThroughJson) {
  Rule rule = Draftable();
  rule.effective_at = 1698624000;
  rule.targets.push_back(*MakeTarget(TargetKind::kAndroidPackage, "com.kaspersky.security.cloud", true));
  rule.assessments.push_back({std::string(64, 'c'), "reports/wechat.html"});
  ASSERT_TRUE(ProposeRule(rule, "alice", 100).ok());
  auto back = RuleFromJson(RuleToJson(rule, true));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(RuleToJson(*back, true), RuleToJson(rule, true));
  EXPECT_TRUE(back->targets[1].unverified);
}

}  // namespace
}  // namespace appban::decide
