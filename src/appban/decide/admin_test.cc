// PolicyAdmin against the real SQLite store: each change passes its due-process checks, then
// lands in the store with its audit entry, or not at all.
#include "appban/decide/admin.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

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

}  // namespace
}  // namespace appban::decide
