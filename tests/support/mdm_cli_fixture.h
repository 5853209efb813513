// What the `appban mdm …` CLI tests share (AMAPI, Intune, Apple MDM): running the real binary, the
// policy commands of the two-person rule on a data directory, a ban published and exported with
// due process, and the `mdm` verbs on the test's server configuration — printed when
// APPBAN_MDM_EXAMPLE is set, since docs/mdm.md's worked examples are these tests' output.
// Test-only (included by *_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

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
    if (std::getenv("APPBAN_MDM_EXAMPLE") != nullptr) {
      std::cout << "$ appban mdm " << verb << " --config server.toml";
      for (const auto& arg : extra) {
        std::cout << " " << (arg.find('/') == std::string::npos ? arg : std::filesystem::path(arg).filename().string());
      }
      std::cout << "\n" << result.out << result.err;
    }
    return result;
  }
  // Rule "wechat" banning `targets` ("android:com.tencent.mm", …): alice proposes (creating the
  // policy keys first if needed), bob approves and publishes, bob exports the bundle to `bundle`.
  void PublishBan(const std::vector<std::string>& targets, const std::string& bundle = "bundle.json") {
    if (!std::filesystem::exists(std::filesystem::path(data()) / "keys")) {
      ASSERT_EQ(Policy("alice", {"keys", "init"}).exit_code, 0);
    }
    std::vector<std::string> add = {"rules", "add", "--id", "wechat", "--title", "WeChat on government phones"};
    for (const std::string& target : targets) add.insert(add.end(), {"--target", target});
    auto proposed = Policy("alice", add);
    ASSERT_EQ(proposed.exit_code, 0) << proposed.err;
    ASSERT_EQ(Policy("bob", {"rules", "approve", "wechat"}).exit_code, 0);
    ASSERT_EQ(Policy("bob", {"rules", "publish", "wechat"}).exit_code, 0);
    auto exported = Policy("bob", {"bundle", "export", "--out", (dir_.path() / bundle).string()});
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
  }
  // Revokes "wechat" and exports the next bundle to `bundle`.
  void RevokeBan(const std::string& bundle) {
    ASSERT_EQ(Policy("bob", {"rules", "revoke", "wechat", "--reason", "court order"}).exit_code, 0);
    ASSERT_EQ(Policy("bob", {"bundle", "export", "--out", (dir_.path() / bundle).string()}).exit_code, 0);
  }
  std::string data() const { return (dir_.path() / "data").string(); }

  TempDir dir_;
  std::string config_;  // the server's TOML the `mdm` verbs read
};

}  // namespace appban::testing
