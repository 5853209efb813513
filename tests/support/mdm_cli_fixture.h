// What the `appban mdm …` CLI tests share (AMAPI, Intune, Apple MDM): running the real binary, a
// ban decided with due process in the data directory's real store (proposed by alice, approved
// and published by bob through the policy core: these tests are about the MDMs, and the CLI's own
// decision path through the admin API is tested in cli_login_test.cc), exported with the CLI, and
// the `mdm` verbs on the test's server configuration — printed when APPBAN_MDM_EXAMPLE is set,
// since docs/mdm.md's worked examples are these tests' output (and each test checks that its
// worked example still shows what it printed).
// Test-only (included by *_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "appban/decide/admin.h"
#include "appban/policy/model.h"
#include "appban/store/store.h"
#include "support/doc_sessions.h"
#include "support/test_support.h"

namespace appban::testing {

class MdmCliTest : public ::testing::Test {
 protected:
  CommandResult Appban(std::vector<std::string> args) {
    args.insert(args.begin(), AppbanBinary());
    return RunCommand(args);
  }
  CommandResult Policy(const std::string& user, std::vector<std::string> args) {
    std::vector<std::string> full = {"policy", "--data", data(), "--user", user};
    full.insert(full.end(), args.begin(), args.end());
    return Appban(full);
  }
  // `appban mdm VERB --config server.toml [--user carol] EXTRA…` (apple-profile takes no user).
  // The printed example names files by their base name, not the temporary directory.
  CommandResult Mdm(const std::string& verb, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"mdm", verb, "--config", config_};
    if (verb != "apple-profile") args.insert(args.end(), {"--user", "carol"});
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult result = Appban(args);
    std::string shown = "appban mdm " + verb + " --config server.toml";
    for (const auto& arg : extra) {
      shown += " " + (arg.find('/') == std::string::npos ? arg : std::filesystem::path(arg).filename().string());
    }
    runs_.push_back({shown, result.out + result.err});
    if (std::getenv("APPBAN_MDM_EXAMPLE") != nullptr) std::cout << "$ " << shown << "\n" << result.out << result.err;
    return result;
  }
  // docs/mdm.md's worked example under `heading` shows what this test printed: each of its
  // sessions matches a later run of the same command than the session before it did (the test
  // runs more than the example shows: refusals, errors).
  void ExpectWorkedExampleShowsThisRun(const std::string& heading) {
    auto sessions = SessionsUnder(std::filesystem::path(APPBAN_SOURCE_DIR) / "docs" / "mdm.md", heading);
    ASSERT_FALSE(sessions.empty()) << "docs/mdm.md has no sessions under \"" << heading << "\"";
    size_t next = 0;
    for (const Session& session : sessions) {
      auto matched = FindRunShowing(session, "docs/mdm.md", next);
      if (matched) next = *matched + 1;
    }
  }
  // The index of the first run from `from` on that ran `session`'s command and printed what it
  // shows; nullopt (a test failure naming `file`'s line and the nearest miss) when none did.
  std::optional<size_t> FindRunShowing(const Session& session, const std::string& file, size_t from = 0) {
    std::string first_mismatch;
    for (size_t run = from; run < runs_.size(); ++run) {
      if (runs_[run].command != session.command) continue;
      std::string mismatch = Mismatch(session.printed, runs_[run].output);
      if (mismatch.empty()) return run;
      if (first_mismatch.empty()) first_mismatch = mismatch + "\nthe command printed:\n" + runs_[run].output;
    }
    ADD_FAILURE() << file << ":" << session.line << ": $ " << session.command << "\n"
                  << (first_mismatch.empty() ? "this test does not run it at that point" : first_mismatch);
    return std::nullopt;
  }
  // Rule "wechat" banning `targets` ("android:com.tencent.mm", …): alice proposes (creating the
  // policy keys first if needed), bob approves and publishes, bob exports the bundle to `bundle`.
  void PublishBan(const std::vector<std::string>& targets, const std::string& bundle = "bundle.json") {
    if (!std::filesystem::exists(std::filesystem::path(data()) / "keys")) {
      ASSERT_EQ(Policy("alice", {"keys", "init"}).exit_code, 0);
    }
    policy::Rule rule;
    rule.id = "wechat";
    rule.title = "WeChat on government phones";
    for (const std::string& target : targets) {
      auto parsed = policy::ParseTargetSpec(target);
      ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
      rule.targets.push_back(*parsed);
    }
    Decide("alice", [&](decide::PolicyAdmin& admin) { return admin.ProposeRule(rule).status(); });
    Decide("bob", [](decide::PolicyAdmin& admin) { return admin.ApproveRule("wechat").status(); });
    Decide("bob", [](decide::PolicyAdmin& admin) { return admin.PublishRule("wechat").status(); });
    PublishBundle(bundle);
  }
  // Revokes "wechat", publishes the next bundle and exports it to `bundle`.
  void RevokeBan(const std::string& bundle) {
    Decide("bob", [](decide::PolicyAdmin& admin) { return admin.RevokeRule("wechat", "court order").status(); });
    PublishBundle(bundle);
  }
  // Publishes the next bundle on the host (no server runs in these tests) and exports it.
  void PublishBundle(const std::string& bundle) {
    auto published = Policy("bob", {"--break-glass", "bundle", "publish"});
    ASSERT_EQ(published.exit_code, 0) << published.err;
    auto exported = Policy("bob", {"bundle", "export", "--out", (dir_.path() / bundle).string()});
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
  }
  std::string data() const { return (dir_.path() / "data").string(); }
  // One decision by `who` on the data directory's store (the database `appban server` uses).
  template <typename Step>
  void Decide(const std::string& who, Step step) {
    auto store = store::OpenSqliteStore(data() + "/appban.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    decide::PolicyAdmin admin(**store, who);
    Status done = step(admin);
    ASSERT_TRUE(done.ok()) << who << ": " << done.ToString();
  }

  TempDir dir_;
  std::string config_;  // the server's TOML the `mdm` verbs read
  struct Run {
    std::string command;  // as the documentation shows it
    std::string output;   // stdout, then stderr
  };
  std::vector<Run> runs_;  // every `mdm` verb this test ran, in order
};

}  // namespace appban::testing
