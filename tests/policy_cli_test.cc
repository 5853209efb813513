// End to end through the real binary: adopt Canada's WeChat/Kaspersky decision from the built-in
// catalog, approve it as a second person signed in at the identity provider (through the running
// server's admin API), publish, export the signed bundle, verify it, tamper with it and watch
// verification fail; then check the audit chain recorded who did what.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "appban/common/time.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban::testing {
namespace {

namespace fs = std::filesystem;

class PolicyCli : public ::testing::Test {
 protected:
  CommandResult Appban(std::vector<std::string> args) {
    args.insert(args.begin(), AppbanBinary());
    return RunCommand(args);
  }
  // `appban policy --data DIR --user USER ARGS...`
  CommandResult Policy(const std::string& user, std::vector<std::string> args) {
    std::vector<std::string> full = {"policy", "--data", data(), "--user", user};
    full.insert(full.end(), args.begin(), args.end());
    return Appban(full);
  }
  // `appban policy --server URL --ca CA --token-file FILE ARGS...`: a signed-in person's decision
  // through the server (the token file holds the ID token the provider issued to them).
  CommandResult AsSignedIn(const std::string& token_file, std::vector<std::string> args) {
    std::vector<std::string> full = {"policy",   "--server",      server_->url(),
                                     "--ca",     ca_file_,        "--token-file",
                                     token_file, "--credentials", (dir_.path() / "none.json").string()};
    full.insert(full.end(), args.begin(), args.end());
    return Appban(full);
  }
  // The server on the data directory, trusting a real provider; bob signs in there.
  void StartServer() {
    auto provider = OidcProvider::Start(dir_.path() / "idp");
    ASSERT_TRUE(provider) << "the OpenID Connect provider did not start (scripts/setup.sh --test installs it)";
    provider_.emplace(std::move(*provider));
    fs::path config = dir_.path() / "server.toml";
    std::ofstream(config) << provider_->ServerToml();
    auto server = ServerProcess::Start(data(), {"--config", config.string()});
    ASSERT_TRUE(server) << "server did not start";
    server_.emplace(std::move(*server));
    ca_file_ = (dir_.path() / "ca.pem").string();
    std::ofstream(ca_file_) << server_->ca_pem();
  }
  std::string TokenFile(const std::string& login) {
    std::string path = (dir_.path() / (login + ".token")).string();
    std::ofstream(path) << provider_->SignIn(login) << "\n";
    return path;
  }
  std::string data() const { return (dir_.path() / "data").string(); }
  std::string Read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
  }
  std::string PublicKeyPath() {
    for (const auto& entry : fs::directory_iterator(fs::path(data()) / "keys")) {
      if (entry.path().extension() == ".pub") return entry.path().string();
    }
    return "";
  }
  TempDir dir_;
  std::optional<OidcProvider> provider_;
  std::optional<ServerProcess> server_;
  std::string ca_file_;
};

TEST_F(PolicyCli, AdoptApprovePublishExportVerifyTamper) {
  const std::string id = "ca-wechat-kaspersky-2023";
  StartServer();
  // alice, signed in at the provider, adopts the decision through the server.
  std::string alice = TokenFile("alice");
  CommandResult adopt;
  for (int i = 0; i < 100; ++i) {  // the server may still be fetching the provider's keys
    adopt = Appban({"catalog", "adopt", id, "--server", server_->url(), "--ca", ca_file_, "--token-file", alice,
                    "--credentials", (dir_.path() / "none.json").string()});
    if (adopt.exit_code == 0 || adopt.err.find("keys") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(adopt.exit_code, 0) << adopt.err;
  EXPECT_NE(adopt.out.find("com.kaspersky.security.cloud (unverified)"), std::string::npos) << adopt.out;

  auto shown = Policy("alice", {"rules", "show", id, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  auto rule = nlohmann::json::parse(shown.out);
  EXPECT_EQ(rule["state"], "draft");
  EXPECT_EQ(rule["proposed_by"].get<std::string>().substr(0, 2), "u-") << "an identity, not a typed name";
  EXPECT_NE(rule["authority"].get<std::string>().find("Treasury Board"), std::string::npos);
  EXPECT_NE(rule["rationale"].get<std::string>().find("unacceptable level of risk"), std::string::npos);
  EXPECT_FALSE(rule["instrument"].get<std::string>().empty());
  EXPECT_EQ(rule["effective_at"], "2023-10-30T00:00:00Z");

  // Two-person rule: the proposer cannot approve, nobody can by a typed name on the host, and
  // nothing is published before approval.
  auto self_approve = AsSignedIn(alice, {"rules", "approve", id});
  EXPECT_EQ(self_approve.exit_code, 1);
  EXPECT_NE(self_approve.err.find("two-person"), std::string::npos) << self_approve.err;
  auto typed = Policy("bob", {"rules", "approve", id});
  EXPECT_EQ(typed.exit_code, 1);
  EXPECT_NE(typed.err.find("appban login"), std::string::npos) << typed.err;
  std::string bob = TokenFile("bob");
  auto early = AsSignedIn(bob, {"rules", "publish", id});
  EXPECT_EQ(early.exit_code, 1) << "nothing is published before approval";
  auto approved = AsSignedIn(bob, {"rules", "approve", id, "--note", "evidence reviewed"});
  ASSERT_EQ(approved.exit_code, 0) << approved.err;
  auto published = AsSignedIn(bob, {"rules", "publish", id});
  ASSERT_EQ(published.exit_code, 0) << published.err;
  EXPECT_NE(published.out.find("is now published"), std::string::npos) << published.out;
  // Publishing the bundle is its own decision, through the server with the server's validity.
  auto bundle_published = AsSignedIn(bob, {"bundle", "publish"});
  ASSERT_EQ(bundle_published.exit_code, 0) << bundle_published.err;
  EXPECT_NE(bundle_published.out.find("published bundle version 1 (1 rule(s), 0 waiver(s)), valid until "),
            std::string::npos)
      << bundle_published.out;

  // On the host, with the server stopped: the server made the policy key on its first start.
  server_->Stop(SIGTERM);
  std::string pub = PublicKeyPath();
  ASSERT_FALSE(pub.empty());
  fs::path bundle = dir_.path() / "bundle.json";
  // Exporting writes what devices are served; it decides nothing, so it needs no sign-in.
  auto exported = Appban({"policy", "--data", data(), "bundle", "export", "--out", bundle.string()});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;

  auto verified = Appban({"policy", "bundle", "verify", bundle.string(), "--key", pub, "--json"});
  ASSERT_EQ(verified.exit_code, 0) << verified.err;
  auto summary = nlohmann::json::parse(verified.out);
  EXPECT_EQ(summary["ok"], true);
  EXPECT_EQ(summary["version"], 1);
  EXPECT_EQ(summary["rules"], 1);
  // The server's validity (policy.bundle_validity_days, 30 by default), not a CLI default.
  ASSERT_TRUE(summary.contains("issued_at") && summary.contains("not_after")) << verified.out;
  auto issued = ParseTimestamp(summary["issued_at"].get<std::string>());
  auto not_after = ParseTimestamp(summary["not_after"].get<std::string>());
  ASSERT_TRUE(issued.ok() && not_after.ok()) << verified.out;
  EXPECT_EQ(*not_after - *issued, 30 * 86400);

  // The verified bundle decides: WeChat and a repackaged Kaspersky app are removed, others allowed.
  fs::path inventory = dir_.path() / "inventory.json";
  std::ofstream(inventory) << R"({"device":"phone-1","groups":[],"apps":[
      {"platform":"android","id":"com.tencent.mm","version":"8.0"},
      {"platform":"android","id":"com.kms.free","signer_sha256":")"
                           << std::string(64, 'e') << R"("},
      {"platform":"android","id":"org.mozilla.firefox"}]})";
  auto evaluated = Appban({"policy", "evaluate", "--bundle", bundle.string(), "--key", pub, "--inventory",
                           inventory.string(), "--now", "2024-01-01", "--json"});
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  auto decisions = nlohmann::json::parse(evaluated.out)["decisions"];
  ASSERT_EQ(decisions.size(), 3u);
  EXPECT_EQ(decisions[0]["decision"], "remove");
  EXPECT_EQ(decisions[0]["rule"], id);
  EXPECT_EQ(decisions[1]["decision"], "remove");
  EXPECT_EQ(decisions[2]["decision"], "allowed");

  // Tamper: change one byte of a banned package name inside the signed payload.
  std::string text = Read(bundle);
  size_t at = text.find("com.tencent.mm");
  ASSERT_NE(at, std::string::npos);
  text[at + 4] = 'X';
  fs::path tampered = dir_.path() / "tampered.json";
  std::ofstream(tampered, std::ios::binary) << text;
  auto refused = Appban({"policy", "bundle", "verify", tampered.string(), "--key", pub});
  EXPECT_EQ(refused.exit_code, 1);
  // What the operator reads: the bundle was refused because its signature failed, not a
  // "permission denied" that sends them looking at file modes.
  EXPECT_NE(refused.err.find("bundle rejected: signature check failed: the bundle's signature does not verify"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(refused.err.find("permission denied"), std::string::npos) << refused.err;

  // Rollback and expiry are refused with their own messages.
  auto rollback = Appban({"policy", "bundle", "verify", bundle.string(), "--key", pub, "--held-version", "2"});
  EXPECT_EQ(rollback.exit_code, 1);
  EXPECT_NE(rollback.err.find("rollback"), std::string::npos) << rollback.err;
  auto expired = Appban({"policy", "bundle", "verify", bundle.string(), "--key", pub, "--now", "2999-01-01"});
  EXPECT_EQ(expired.exit_code, 1);
  EXPECT_NE(expired.err.find("expired"), std::string::npos) << expired.err;

  // The audit chain holds every step, by the right person, and verifies.
  auto audit = Appban({"audit", "list", "--data", data(), "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  std::vector<std::pair<std::string, std::string>> steps;
  for (const auto& entry : nlohmann::json::parse(audit.out)) {
    if (entry["object"] == "rule:" + id || entry["action"] == "bundle.publish") {
      std::string who = entry["actor"];
      if (entry.contains("identity") && entry["identity"].is_object()) {
        who = entry["identity"].value("actor_name", who) + " via " + entry["identity"].value("method", "") + ", " +
              entry["identity"].value("channel", "");
      }
      steps.emplace_back(entry["action"], who);
    }
  }
  std::vector<std::pair<std::string, std::string>> expected = {{"rule.propose", "Alice Martin via oidc, cli"},
                                                               {"rule.approve", "Bob Tremblay via oidc, cli"},
                                                               {"rule.publish", "Bob Tremblay via oidc, cli"},
                                                               {"bundle.publish", "Bob Tremblay via oidc, cli"}};
  EXPECT_EQ(steps, expected);
  auto chain = Appban({"audit", "verify", "--data", data()});
  EXPECT_EQ(chain.exit_code, 0) << chain.out << chain.err;
  EXPECT_NE(chain.out.find("audit chain OK"), std::string::npos);
}

TEST_F(PolicyCli, ActingUserIsRequired) {
  auto result = Appban({"policy", "--data", data(), "--break-glass", "rules", "add", "--id", "x", "--title", "t",
                        "--target", "android:com.example"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("--user"), std::string::npos) << result.err;
}

TEST_F(PolicyCli, CatalogDiffCanadaAustralia) {
  auto diff = Appban({"catalog", "diff", "--ours", "CA", "--theirs", "AU", "--json"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  auto json = nlohmann::json::parse(diff.out);
  EXPECT_TRUE(json["theirs_only"].empty());
  ASSERT_EQ(json["ours_only"].size(), 1u);
  EXPECT_EQ(json["ours_only"][0]["app"], "WeChat");
}

}  // namespace
}  // namespace appban::testing
