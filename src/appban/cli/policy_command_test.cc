// `appban policy …` in-process: argument parsing, what each subcommand prints, and the message
// and exit status of each mistake a user can make. There is no server here, so decisions are made
// with --break-glass or refused; the same decisions through the admin API as signed-in people are
// tests/cli_login_test.cc, and the end-to-end flow through the real binary (adopt, approve,
// publish, export, verify, tamper) is tests/policy_cli_test.cc.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "appban/cli/cli_test_support.h"
#include "appban/cli/policy_cli_support.h"
#include "appban/common/file.h"
#include "appban/decide/admin.h"
#include "appban/policy/model.h"
#include "appban/store/store.h"

namespace appban::cli {
namespace {

using Json = nlohmann::json;

class PolicyCommandTest : public CliTest {
 protected:
  // A draft rule proposed by alice.
  void ProposeRule(const std::string& id, const std::string& target = "android:com.example.app") {
    auto added = BreakGlass("alice", {"rules", "add", "--id", id, "--title", "Ban " + id, "--target", target});
    ASSERT_EQ(added.exit_code, 0) << added.err;
  }
  // Acting on the data directory as `user` through the library: what a second person does through
  // the server, which these in-process tests do not run.
  decide::PolicyAdmin AdminAs(const std::string& user, std::unique_ptr<store::Store>& store) const {
    auto opened = store::OpenSqliteStore(data() + "/appban.db");
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    store = std::move(*opened);
    return decide::PolicyAdmin(*store, LocalActor(DataOptions{data(), user, false}));
  }
  // A rule proposed by alice, approved by bob (through the library).
  void ApproveRule(const std::string& id, const std::string& target = "android:com.example.app") {
    ProposeRule(id, target);
    std::unique_ptr<store::Store> store;
    ASSERT_TRUE(AdminAs("bob", store).ApproveRule(id, "").ok());
  }
  // ... and published by carol: a draft proposed through break-glass needs two people after it.
  void PublishRule(const std::string& id, const std::string& target = "android:com.example.app") {
    ApproveRule(id, target);
    std::unique_ptr<store::Store> store;
    auto published = AdminAs("carol", store).PublishRule(id, "");
    ASSERT_TRUE(published.ok()) << published.status().ToString();
  }
  std::string PublicKeyPath(const std::string& dir = "") {
    auto shown = RunCli({"policy", "--data", dir.empty() ? data() : dir, "keys", "show", "--json"});
    EXPECT_EQ(shown.exit_code, 0) << shown.err;
    Json json = Json::parse(shown.out, nullptr, false);
    return json.is_discarded() ? "" : json.value("public_key_file", "");
  }
};

TEST_F(PolicyCommandTest, PolicyNeedsASubcommand) {
  auto result = RunCli({"policy", "--data", data()});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(Contains(result.err, "subcommand")) << result.err;
  auto rules = RunCli({"policy", "--data", data(), "rules"});
  EXPECT_NE(rules.exit_code, 0);
  EXPECT_TRUE(Contains(rules.err, "subcommand")) << rules.err;
}

TEST_F(PolicyCommandTest, RulesAddReportsTheDraftAndListShowsIt) {
  ASSERT_EQ(BreakGlass("alice", {"groups", "add", "finance"}).exit_code, 0);  // --scope names a group that exists
  auto added =
      BreakGlass("alice", {"rules",      "add",         "--id",          "ban-x",       "--title",
                           "Ban X",      "--target",    "android:com.x", "--target",    "deb:x-client",
                           "--action",   "block",       "--scope",       "finance",     "--effective",
                           "2030-01-02", "--rationale", "spyware",       "--reference", "https://example.org/x"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, "proposed rule ban-x (draft; another person must approve it)\n");

  auto listed = Policy("alice", {"rules", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, "ban-x  draft  block  2 target(s)  Ban X\n");

  auto shown = Policy("alice", {"rules", "show", "ban-x"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_TRUE(Contains(shown.out, "ban-x  [draft]  block\n")) << shown.out;
  EXPECT_TRUE(Contains(shown.out, "  target      android:com.x\n")) << shown.out;
  EXPECT_TRUE(Contains(shown.out, "  target      deb:x-client\n")) << shown.out;
  EXPECT_TRUE(Contains(shown.out, "  scope       finance\n")) << shown.out;
  EXPECT_TRUE(Contains(shown.out, "  effective   2030-01-02T00:00:00Z")) << shown.out;
  EXPECT_TRUE(Contains(shown.out, "  reference   https://example.org/x\n")) << shown.out;
  EXPECT_TRUE(Contains(shown.out, "draft by break-glass:alice")) << shown.out;

  auto json = Policy("alice", {"rules", "list", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  Json rules = Json::parse(json.out);
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0]["id"], "ban-x");
  EXPECT_EQ(rules[0]["state"], "draft");
  EXPECT_EQ(rules[0]["proposed_by"], "break-glass:alice") << "a typed name, recorded as such";
  EXPECT_EQ(rules[0]["action"], "block");
}

TEST_F(PolicyCommandTest, OptionsOfPolicyMayFollowTheSubcommand) {
  auto added = RunCli({"policy", "rules", "add", "--id", "ban-x", "--title", "T", "--target", "android:com.x", "--data",
                       data(), "--user", "alice", "--break-glass"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  auto listed = RunCli({"policy", "rules", "list", "--json", "--data", data()});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(Json::parse(listed.out).size(), 1u);
}

TEST_F(PolicyCommandTest, TheDataDirectoryAndUserComeFromTheEnvironmentWhenNotGiven) {
  setenv("APPBAN_DATA", data().c_str(), 1);
  setenv("APPBAN_USER", "carol", 1);
  auto added =
      RunCli({"policy", "rules", "add", "--id", "ban-x", "--title", "T", "--target", "android:com.x", "--break-glass"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  auto shown = Policy("dave", {"rules", "show", "ban-x", "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(Json::parse(shown.out)["proposed_by"], "break-glass:carol");
}

TEST_F(PolicyCommandTest, RulesAddNamesEachMissingOrWrongArgument) {
  auto no_target = Policy("alice", {"rules", "add", "--id", "ban-x", "--title", "T"});
  EXPECT_NE(no_target.exit_code, 0);
  EXPECT_TRUE(Contains(no_target.err, "--target")) << no_target.err;

  auto no_kind = Policy("alice", {"rules", "add", "--id", "ban-x", "--title", "T", "--target", "com.x"});
  EXPECT_EQ(no_kind.exit_code, 1);
  EXPECT_TRUE(Contains(no_kind.err, "appban: invalid argument: target \"com.x\" must be KIND:VALUE")) << no_kind.err;

  auto bad_kind = Policy("alice", {"rules", "add", "--id", "ban-x", "--title", "T", "--target", "windows:x.exe"});
  EXPECT_EQ(bad_kind.exit_code, 1);
  EXPECT_TRUE(Contains(bad_kind.err, "\"windows\"")) << bad_kind.err;

  auto bad_action = Policy(
      "alice", {"rules", "add", "--id", "ban-x", "--title", "T", "--target", "android:com.x", "--action", "nuke"});
  EXPECT_EQ(bad_action.exit_code, 1);
  EXPECT_TRUE(Contains(bad_action.err, "\"nuke\"")) << bad_action.err;
  EXPECT_TRUE(Contains(bad_action.err, "remove")) << "the message lists the valid actions: " << bad_action.err;

  auto bad_date = Policy("alice", {"rules", "add", "--id", "ban-x", "--title", "T", "--target", "android:com.x",
                                   "--effective", "next tuesday"});
  EXPECT_EQ(bad_date.exit_code, 1);
  EXPECT_TRUE(Contains(bad_date.err, "appban: --effective: ")) << bad_date.err;

  // Nothing was stored by any of them.
  auto listed = Policy("alice", {"rules", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(Json::parse(listed.out).empty());
}

TEST_F(PolicyCommandTest, ChangesNeedAnActingUser) {
  auto added = RunCli({"policy", "--data", data(), "--break-glass", "rules", "add", "--id", "ban-x", "--title", "T",
                       "--target", "android:com.x"});
  EXPECT_EQ(added.exit_code, 1);
  EXPECT_TRUE(Contains(added.err, "no acting user: pass --user NAME or set APPBAN_USER")) << added.err;
}

TEST_F(PolicyCommandTest, DecisionsWithoutAServerOrBreakGlassAreRefused) {
  ProposeRule("ban-x");
  for (const std::string verb : {"approve", "publish"}) {
    auto refused = Policy("bob", {"rules", verb, "ban-x"});
    EXPECT_EQ(refused.exit_code, 1) << verb;
    EXPECT_TRUE(Contains(refused.err, "appban policy rules " + verb + " is a decision")) << refused.err;
    EXPECT_TRUE(Contains(refused.err, "appban login --server URL")) << refused.err;
    EXPECT_TRUE(Contains(refused.err, "--break-glass")) << refused.err;
  }
  for (const auto& refused :
       {Policy("alice", {"rules", "add", "--id", "ban-y", "--title", "T", "--target", "deb:y"}),
        Policy("bob", {"rules", "revoke", "ban-x", "--reason", "r"}), Policy("bob", {"groups", "add", "finance"}),
        Policy("bob", {"keys", "init", "--rotate"})}) {
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_TRUE(Contains(refused.err, "--break-glass")) << refused.err;
  }
  auto shown = Policy("bob", {"rules", "show", "ban-x", "--json"});
  EXPECT_EQ(Json::parse(shown.out, nullptr, false).value("state", ""), "draft") << "read-only commands stay local";
}

// A draft proposed through break-glass names a typed name, not a person: it is recorded as such,
// and two signed-in people must follow it (one approves, another publishes), so the typed name
// never counts as the second person.
TEST_F(PolicyCommandTest, ABreakGlassDraftNeedsTwoPeopleAfterIt) {
  ProposeRule("ban-bg");
  auto shown = Policy("alice", {"rules", "show", "ban-bg", "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(Json::parse(shown.out)["proposed_by"], "break-glass:alice");
  std::unique_ptr<store::Store> store;
  ASSERT_TRUE(AdminAs("alice", store).ApproveRule("ban-bg", "").ok()) << "the typed name is not alice's identity";
  auto by_approver = AdminAs("alice", store).PublishRule("ban-bg", "");
  ASSERT_FALSE(by_approver.ok());
  EXPECT_TRUE(Contains(by_approver.status().message(), "was proposed through break-glass"))
      << by_approver.status().ToString();
  EXPECT_TRUE(Contains(by_approver.status().message(), "cannot also publish it")) << by_approver.status().ToString();
  store.reset();
  auto through_break_glass = BreakGlass("carol", {"rules", "publish", "ban-bg"});
  EXPECT_EQ(through_break_glass.exit_code, 1);
  EXPECT_TRUE(Contains(through_break_glass.err, "signed in to the admin API")) << through_break_glass.err;
  auto by_another = AdminAs("carol", store).PublishRule("ban-bg", "");
  ASSERT_TRUE(by_another.ok()) << by_another.status().ToString();
  EXPECT_EQ(by_another->state, policy::RuleState::kPublished);
}

TEST_F(PolicyCommandTest, BreakGlassPublishesAnApprovedRuleAndRevokesOneNotYetPublished) {
  {
    // A draft proposed by a person (through the server; here the library stands in for it).
    ASSERT_EQ(Policy("alice", {"rules", "list"}).exit_code, 0);  // creates the data directory
    policy::Rule rule;
    rule.id = "ban-x";
    rule.title = "Ban ban-x";
    rule.targets.push_back(*policy::ParseTargetSpec("android:com.example.app"));
    std::unique_ptr<store::Store> store;
    ASSERT_TRUE(AdminAs("alice", store).ProposeRule(rule, "").ok());
  }
  auto early = BreakGlass("bob", {"rules", "publish", "ban-x"});
  EXPECT_EQ(early.exit_code, 1) << "a draft cannot be published";
  std::unique_ptr<store::Store> store;
  ASSERT_TRUE(AdminAs("bob", store).ApproveRule("ban-x", "checked").ok());
  store.reset();
  auto published = BreakGlass("bob", {"rules", "publish", "ban-x"});
  ASSERT_EQ(published.exit_code, 0) << published.err;
  EXPECT_EQ(published.out, "rule ban-x is now published\n");

  ProposeRule("ban-y");
  auto no_reason = BreakGlass("bob", {"rules", "revoke", "ban-y"});
  EXPECT_NE(no_reason.exit_code, 0);
  EXPECT_TRUE(Contains(no_reason.err, "--reason")) << no_reason.err;
  auto revoked = BreakGlass("bob", {"rules", "revoke", "ban-y", "--reason", "withdrawn"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_EQ(revoked.out, "rule ban-y is now revoked\n");
}

TEST_F(PolicyCommandTest, AnUnknownRuleIsNotFound) {
  auto shown = Policy("alice", {"rules", "show", "no-such-rule"});
  EXPECT_EQ(shown.exit_code, 1);
  EXPECT_TRUE(Contains(shown.err, "appban: not found")) << shown.err;
  EXPECT_TRUE(shown.out.empty());
  auto approved = Policy("bob", {"rules", "approve", "no-such-rule"});
  EXPECT_EQ(approved.exit_code, 1);
}

TEST_F(PolicyCommandTest, WaiversNeedExactlyOneSubjectAndAValidExpiry) {
  PublishRule("ban-x");
  auto both = Policy("bob", {"waivers", "add", "--id", "w1", "--rule", "ban-x", "--device", "d-1", "--group", "g",
                             "--justification", "pilot", "--expires", "2099-01-01", "--requested-by", "carol"});
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_TRUE(Contains(both.err, "give exactly one of --device or --group")) << both.err;
  auto neither = Policy("bob", {"waivers", "add", "--id", "w1", "--rule", "ban-x", "--justification", "pilot",
                                "--expires", "2099-01-01", "--requested-by", "carol"});
  EXPECT_EQ(neither.exit_code, 1);
  EXPECT_TRUE(Contains(neither.err, "give exactly one of --device or --group")) << neither.err;
  auto bad_expiry = Policy("bob", {"waivers", "add", "--id", "w1", "--rule", "ban-x", "--device", "d-1",
                                   "--justification", "pilot", "--expires", "soon", "--requested-by", "carol"});
  EXPECT_EQ(bad_expiry.exit_code, 1);
  EXPECT_TRUE(Contains(bad_expiry.err, "appban: --expires: ")) << bad_expiry.err;
  auto no_justification =
      Policy("bob", {"waivers", "add", "--id", "w1", "--rule", "ban-x", "--device", "d-1", "--expires", "2099-01-01"});
  EXPECT_NE(no_justification.exit_code, 0);
  EXPECT_TRUE(Contains(no_justification.err, "--justification")) << no_justification.err;

  // Through break-glass a waiver is only proposed; here it is granted through the library.
  auto proposed = BreakGlass("bob", {"waivers", "add", "--id", "w1", "--rule", "ban-x", "--device", "d-1",
                                     "--justification", "pilot", "--expires", "2099-01-01"});
  ASSERT_EQ(proposed.exit_code, 0) << proposed.err;
  EXPECT_TRUE(Contains(proposed.out, "break-glass: proposed change c-")) << proposed.out;
  EXPECT_TRUE(Policy("bob", {"waivers", "list"}).out.empty()) << "a proposal exempts nobody";
  policy::Waiver waiver;
  waiver.id = "w1";
  waiver.rule_id = "ban-x";
  waiver.subject_kind = policy::WaiverSubject::kDevice;
  waiver.subject = "d-1";
  waiver.justification = "pilot";
  waiver.requested_by = "carol";
  waiver.expires_at = *ParseTimestamp("2099-01-01");
  std::unique_ptr<store::Store> store;
  ASSERT_TRUE(AdminAs("bob", store).AddWaiver(waiver).ok());
  store.reset();

  auto listed = Policy("bob", {"waivers", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  Json waivers = Json::parse(listed.out);
  ASSERT_EQ(waivers.size(), 1u);
  EXPECT_EQ(waivers[0]["id"], "w1");
  EXPECT_EQ(waivers[0]["active"], true);
  EXPECT_EQ(waivers[0]["approved_by"], "bob");

  auto refused = Policy("bob", {"waivers", "revoke", "w1", "--reason", "pilot over"});
  EXPECT_EQ(refused.exit_code, 1) << "a decision, refused without a server or --break-glass";
  auto revoked = BreakGlass("bob", {"waivers", "revoke", "w1", "--reason", "pilot over"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_EQ(revoked.out, "waiver w1 revoked\n");
  auto text = Policy("bob", {"waivers", "list"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(Contains(text.out, "w1  rule ban-x  device d-1  until 2099-01-01T00:00:00Z  revoked  approved by bob"))
      << text.out;
  auto again = BreakGlass("bob", {"waivers", "revoke", "w1", "--reason", "twice"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(Contains(again.err, "already revoked")) << again.err;
}

TEST_F(PolicyCommandTest, GroupsAreCreatedFilledListedAndRemoved) {
  auto added = BreakGlass("alice", {"groups", "add", "finance", "--description", "Finance team", "--device", "d-1"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, "group finance created with 1 device(s)\n");
  auto grown = BreakGlass("alice", {"groups", "add-devices", "finance", "d-2", "d-3"});
  ASSERT_EQ(grown.exit_code, 0) << grown.err;
  EXPECT_EQ(grown.out, "group finance has 3 device(s)\n");
  auto listed = Policy("alice", {"groups", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, "finance  3 device(s)  Finance team\n");

  // A group a live rule is scoped to cannot go.
  auto scoped = BreakGlass(
      "alice", {"rules", "add", "--id", "ban-x", "--title", "T", "--target", "android:com.x", "--scope", "finance"});
  ASSERT_EQ(scoped.exit_code, 0) << scoped.err;
  auto refused = BreakGlass("alice", {"groups", "remove", "finance"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(Contains(refused.err, "group finance scopes rule ban-x; revoke the rule first")) << refused.err;

  ASSERT_EQ(BreakGlass("alice", {"groups", "add", "spare"}).exit_code, 0);
  auto removed = BreakGlass("alice", {"groups", "remove", "spare"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_EQ(removed.out, "group spare deleted\n");
  auto json = Policy("alice", {"groups", "list", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  Json groups = Json::parse(json.out);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0]["name"], "finance");

  auto missing = BreakGlass("alice", {"groups", "add-devices", "finance"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(Contains(missing.err, "devices")) << missing.err;
}

TEST_F(PolicyCommandTest, VendorsCollectIdentifiers) {
  auto undecided = Policy("alice", {"vendors", "add", "Example Corp", "--target", "android:com.example.one"});
  EXPECT_EQ(undecided.exit_code, 1) << "a vendor record goes through the server, or --break-glass";
  EXPECT_TRUE(Contains(undecided.err, "--break-glass")) << undecided.err;
  auto added =
      BreakGlass("alice", {"vendors", "add", "Example Corp", "--country", "NL", "--target", "android:com.example.one"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, "vendor Example Corp has 1 identifier(s)\n");
  auto merged = BreakGlass("alice", {"vendors", "add", "Example Corp", "--target", "deb:example-two"});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  EXPECT_EQ(merged.out, "vendor Example Corp has 2 identifier(s)\n");
  auto listed = Policy("alice", {"vendors", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, "Example Corp (NL)\n  android:com.example.one\n  deb:example-two\n");
  auto bad = BreakGlass("alice", {"vendors", "add", "Other", "--target", "nonsense"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(Contains(bad.err, "KIND:VALUE")) << bad.err;

  // Once a published rule bans the vendor, a new identifier widens it: only proposed.
  PublishRule("ban-example", "vendor:Example Corp");
  auto widening = BreakGlass("alice", {"vendors", "add", "Example Corp", "--target", "deb:example-three"});
  ASSERT_EQ(widening.exit_code, 0) << widening.err;
  EXPECT_TRUE(Contains(widening.out, "break-glass: proposed change c-")) << widening.out;
  EXPECT_TRUE(Contains(widening.out, "vendor.merge vendor:Example Corp")) << widening.out;
  auto unchanged = Policy("alice", {"vendors", "list"});
  EXPECT_EQ(unchanged.out, listed.out) << "a proposal bans nothing more";
}

TEST_F(PolicyCommandTest, KeysInitOnceThenShowAndRotate) {
  auto missing = Policy("alice", {"keys", "show"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "run `appban policy keys init` first")) << missing.err;

  auto created = Policy("alice", {"keys", "init"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_TRUE(Contains(created.out, "policy key ")) << created.out;
  EXPECT_TRUE(Contains(created.out, ".key (mode 0600)")) << created.out;
  std::string pub = PublicKeyPath();
  ASSERT_FALSE(pub.empty());
  EXPECT_TRUE(Contains(Read(pub), "BEGIN PUBLIC KEY")) << pub;

  auto again = Policy("alice", {"keys", "init"});
  EXPECT_EQ(again.exit_code, 1) << "an existing key is replaced only with --rotate";
  // Rotating changes what every device trusts: on the host it is only proposed, for the quorum.
  auto refused = Policy("alice", {"keys", "init", "--rotate"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(Contains(refused.err, "--break-glass")) << refused.err;
  auto proposed = BreakGlass("alice", {"keys", "init", "--rotate"});
  ASSERT_EQ(proposed.exit_code, 0) << proposed.err;
  EXPECT_TRUE(Contains(proposed.out, "break-glass: proposed change c-")) << proposed.out;
  EXPECT_TRUE(Contains(proposed.out, "key.rotate")) << proposed.out;
  EXPECT_EQ(PublicKeyPath(), pub) << "nothing rotates before the quorum agrees";
}

// One name for one thing: the data directory is --data-dir for every command, as for
// `appban server`; the older --data still works and is not advertised.
TEST_F(PolicyCommandTest, TheDataDirectoryIsDataDirEverywhere) {
  ProposeRule("ban-d");
  for (const std::string command : {"policy", "audit"}) {
    auto help = RunCli({command, "--help"});
    EXPECT_TRUE(Contains(help.out, "--data-dir")) << command << help.out;
    EXPECT_FALSE(Contains(help.out, "--data ")) << command << help.out;
  }
  auto help = RunCli({"catalog", "--help"});
  EXPECT_TRUE(Contains(help.out, "--data-dir")) << help.out;
  auto listed = RunCli({"policy", "--data-dir", data(), "rules", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(Contains(listed.out, "ban-d  draft")) << listed.out;
  auto older = RunCli({"policy", "--data", data(), "rules", "list"});
  ASSERT_EQ(older.exit_code, 0) << older.err;
  EXPECT_EQ(older.out, listed.out);
  auto audit = RunCli({"audit", "--data-dir", data(), "verify"});
  EXPECT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(Contains(audit.out, "audit chain OK")) << audit.out;
}

TEST_F(PolicyCommandTest, BundlePublishThenExportVerifyAndEvaluate) {
  PublishRule("ban-x", "android:com.example.banned");
  ASSERT_EQ(Policy("alice", {"keys", "init"}).exit_code, 0);
  std::string pub = PublicKeyPath();
  std::string bundle = Path("bundle.json");

  // Nothing is exported before a bundle is published.
  auto nothing = Policy("bob", {"bundle", "export", "-o", bundle});
  EXPECT_EQ(nothing.exit_code, 1);
  EXPECT_TRUE(Contains(nothing.err, "no bundle has been published yet")) << nothing.err;
  EXPECT_FALSE(std::filesystem::exists(bundle));

  auto published = BreakGlass("bob", {"bundle", "publish", "--validity-days", "3"});
  ASSERT_EQ(published.exit_code, 0) << published.err;
  EXPECT_TRUE(Contains(published.out, "published bundle version 1 (1 rule(s), 0 waiver(s)), valid until "))
      << published.out;

  auto exported = Policy("bob", {"bundle", "export", "-o", bundle});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_TRUE(Contains(exported.err, "wrote " + bundle + " (bundle version 1, issued ")) << exported.err;

  auto verified = RunCli({"policy", "bundle", "verify", bundle, "--key", pub, "--json"});
  ASSERT_EQ(verified.exit_code, 0) << verified.err;
  Json summary = Json::parse(verified.out);
  EXPECT_EQ(summary["version"], 1);
  EXPECT_EQ(summary["rules"], 1);
  auto text = RunCli({"policy", "bundle", "verify", bundle, "--key", pub});
  EXPECT_TRUE(Contains(text.out, "  rule ban-x (remove)\n")) << text.out;

  // Exporting publishes nothing: a second export is the same bytes, and no version was recorded.
  std::string again = Path("again.json");
  ASSERT_EQ(Policy("bob", {"bundle", "export", "-o", again}).exit_code, 0);
  auto first_bytes = ReadFileToString(bundle, 1 << 20);
  auto second_bytes = ReadFileToString(again, 1 << 20);
  ASSERT_TRUE(first_bytes.ok() && second_bytes.ok());
  EXPECT_EQ(*first_bytes, *second_bytes);
  {
    std::unique_ptr<store::Store> store;
    (void)AdminAs("bob", store);
    auto latest = store->LatestBundleVersion();
    ASSERT_TRUE(latest.ok());
    EXPECT_EQ(*latest, 1) << "export must not record a new bundle version";
  }

  Write("inventory.json", R"({"device":"phone-1","groups":[],"apps":[
      {"platform":"android","id":"com.example.banned"},{"platform":"android","id":"org.example.fine"}]})");
  auto evaluated =
      RunCli({"policy", "evaluate", "--bundle", bundle, "--key", pub, "--inventory", Path("inventory.json")});
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  EXPECT_TRUE(Contains(evaluated.out, "android:com.example.banned  remove  rule ban-x")) << evaluated.out;
  EXPECT_TRUE(Contains(evaluated.out, "android:org.example.fine  allowed\n")) << evaluated.out;

  // A second publish is the next version; verifying with it held refuses the first as a rollback.
  ASSERT_EQ(BreakGlass("bob", {"bundle", "publish"}).exit_code, 0);
  std::string second = Path("bundle2.json");
  ASSERT_EQ(Policy("bob", {"bundle", "export", "-o", second}).exit_code, 0);
  auto second_verified = RunCli({"policy", "bundle", "verify", second, "--key", pub, "--json"});
  ASSERT_EQ(second_verified.exit_code, 0) << second_verified.err;
  Json second_summary = Json::parse(second_verified.out);
  EXPECT_EQ(second_summary["version"], 2);
  auto rollback = RunCli({"policy", "bundle", "verify", bundle, "--key", pub, "--held-version", "2", "--json"});
  EXPECT_EQ(rollback.exit_code, 1);
  Json refused = Json::parse(rollback.out);
  EXPECT_EQ(refused["ok"], false);
  EXPECT_TRUE(Contains(refused["error"].get<std::string>(), "rollback")) << rollback.out;
  EXPECT_TRUE(Contains(rollback.err, "appban: bundle rejected: ")) << rollback.err;

  // Publishing is a decision: refused on the host without the server or --break-glass, and a
  // validity past the limit is refused before anything is signed.
  auto undecided = Policy("bob", {"bundle", "publish"});
  EXPECT_EQ(undecided.exit_code, 1);
  EXPECT_TRUE(Contains(undecided.err, "--break-glass")) << undecided.err;
  auto too_long = BreakGlass("bob", {"bundle", "publish", "--validity-days", "4000"});
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_TRUE(Contains(too_long.err, "--validity-days 4000 is above the limit")) << too_long.err;
}

TEST_F(PolicyCommandTest, BundleVerifyRefusesAnUntrustedKeyAndMissingFiles) {
  PublishRule("ban-x");
  ASSERT_EQ(Policy("alice", {"keys", "init"}).exit_code, 0);
  std::string first_key = PublicKeyPath();
  std::string bundle = Path("bundle.json");
  ASSERT_EQ(BreakGlass("bob", {"bundle", "publish"}).exit_code, 0);
  ASSERT_EQ(Policy("bob", {"bundle", "export", "-o", bundle}).exit_code, 0);
  ASSERT_EQ(RunCli({"policy", "--data", Path("other"), "--user", "alice", "keys", "init"}).exit_code, 0);
  std::string other_key = PublicKeyPath(Path("other"));
  ASSERT_NE(other_key, first_key);

  auto untrusted = RunCli({"policy", "bundle", "verify", bundle, "--key", other_key});
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_TRUE(Contains(untrusted.err, "appban: bundle rejected: ")) << untrusted.err;

  auto no_key = RunCli({"policy", "bundle", "verify", bundle});
  EXPECT_NE(no_key.exit_code, 0);
  EXPECT_TRUE(Contains(no_key.err, "--key")) << no_key.err;

  auto no_file = RunCli({"policy", "bundle", "verify", Path("missing.json"), "--key", first_key});
  EXPECT_EQ(no_file.exit_code, 1);
  EXPECT_TRUE(Contains(no_file.err, "missing.json")) << no_file.err;

  auto bad_inventory =
      RunCli({"policy", "evaluate", "--bundle", bundle, "--key", first_key, "--inventory", Path("missing.json")});
  EXPECT_EQ(bad_inventory.exit_code, 1);
  EXPECT_TRUE(Contains(bad_inventory.err, "missing.json")) << bad_inventory.err;
}

TEST_F(PolicyCommandTest, BundlePublishNeedsAKey) {
  PublishRule("ban-x");
  auto published = BreakGlass("bob", {"bundle", "publish"});
  EXPECT_EQ(published.exit_code, 1);
  EXPECT_TRUE(Contains(published.err, "run `appban policy keys init` first")) << published.err;
  EXPECT_TRUE(published.out.empty());
}

TEST_F(PolicyCommandTest, BreakGlassProposesRelaxingDecisionsAndNeverApproves) {
  PublishRule("ban-y");
  ProposeRule("ban-z");
  auto approve = RunCli({"policy", "--data", data(), "--user", "bob", "--break-glass", "rules", "approve", "ban-z"});
  EXPECT_NE(approve.exit_code, 0);
  EXPECT_TRUE(Contains(approve.err, "break-glass")) << approve.err;

  auto revoke = RunCli({"policy", "--data", data(), "--user", "root", "--break-glass", "rules", "revoke", "ban-y",
                        "--reason", "server down; the ban breaks payroll"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_TRUE(Contains(revoke.out, "break-glass: proposed change c-")) << revoke.out;
  auto shown = Policy("alice", {"rules", "show", "ban-y", "--json"});
  EXPECT_EQ(Json::parse(shown.out, nullptr, false).value("state", ""), "published") << "a proposal revokes nothing";

  auto waive = RunCli({"policy", "--data", data(), "--user", "root", "--break-glass", "waivers", "add", "--id", "w-bg",
                       "--rule", "ban-y", "--group", "finance", "--justification", "j", "--expires", "2099-01-01"});
  EXPECT_NE(waive.exit_code, 0) << "the group does not exist: checked before it is proposed";
  ASSERT_EQ(BreakGlass("alice", {"groups", "add", "finance"}).exit_code, 0);
  waive = RunCli({"policy", "--data", data(), "--user", "root", "--break-glass", "waivers", "add", "--id", "w-bg",
                  "--rule", "ban-y", "--group", "finance", "--justification", "j", "--expires", "2099-01-01"});
  ASSERT_EQ(waive.exit_code, 0) << waive.err;
  EXPECT_TRUE(Policy("alice", {"waivers", "list"}).out.empty()) << "a proposal exempts nobody";

  // Both proposals are in the audit chain as break-glass, counting as nobody.
  auto store = store::OpenSqliteStore(data() + "/appban.db");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto changes = (*store)->ListChangesAfter("", 10);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 2u);
  for (const auto& change : *changes) {
    EXPECT_FALSE(change.proposer_counts);
    EXPECT_EQ(change.People(), 0);
  }
  int break_glass = 0;
  auto entries = (*store)->ReadAudit();
  ASSERT_TRUE(entries.ok());
  for (const auto& entry : *entries) {
    if (entry.action == "change.propose") {
      EXPECT_TRUE(Contains(entry.identity_json, "\"method\":\"break-glass\"")) << entry.identity_json;
      ++break_glass;
    }
  }
  EXPECT_EQ(break_glass, 2);
}

}  // namespace
}  // namespace appban::cli
