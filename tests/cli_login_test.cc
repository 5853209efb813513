// `appban login` (the OAuth 2.0 device authorization grant, RFC 8628) and the CLI's decisions
// through the admin API (docs/identity.md, "The command line"): the real `appban` binary, the real
// `appban server` and a real OpenID Connect provider (oidc-provider, tests/oidc/) on loopback. The
// person's half of the grant is done on the provider's own pages by tests/oidc/device-sign-in.mjs.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "appban/common/json.h"
#include "support/login_process.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::CommandResult;
using testing::LoginProcess;
using testing::OidcProvider;
using testing::RunCommand;
using testing::ServerProcess;
using testing::TempDir;

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class CliLoginTest : public ::testing::Test {
 protected:
  void StartAll(OidcProvider::Options options = {}) {
    auto provider = OidcProvider::Start(dir_.path() / "idp", options);
    ASSERT_TRUE(provider) << "the OpenID Connect provider did not start (scripts/setup.sh --test installs it)";
    provider_.emplace(std::move(*provider));
    std::filesystem::path config = dir_.path() / "server.toml";
    std::ofstream(config) << provider_->ServerToml();
    auto server = ServerProcess::Start(dir_.path() / "data", {"--config", config.string()});
    ASSERT_TRUE(server) << "server did not start";
    server_.emplace(std::move(*server));
    std::ofstream(CaFile()) << server_->ca_pem();
    WaitForProviderKeys();
  }

  std::string CaFile() const { return (dir_.path() / "ca.pem").string(); }
  std::string Credentials(const std::string& who) const { return (dir_.path() / who / "credentials.json").string(); }
  std::string Data() const { return (dir_.path() / "data").string(); }

  // The server fetches the provider's keys on its own thread after start.
  void WaitForProviderKeys() {
    std::string token = provider_->SignIn("alice");
    for (int i = 0; i < 100; ++i) {
      auto client = server_->Client();
      auto answer = client.Request("GET", "/v1/admin/whoami", "", {{"Authorization", "Bearer " + token}});
      if (answer.ok() && answer->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "the server never accepted the provider's tokens";
  }

  // `appban login` as `who`, with the person's half done at the provider (or refused, with deny).
  CommandResult Login(const std::string& who, bool deny = false, bool sign_in = true) {
    LoginProcess login({testing::AppbanBinary(), "login", "--server", server_->url(), "--ca", CaFile(), "--credentials",
                        Credentials(who)},
                       dir_.path());
    if (sign_in) {
      std::string uri = login.VerificationUri();
      EXPECT_FALSE(uri.empty()) << "appban login printed no verification URI";
      CommandResult browser = provider_->DeviceSignIn(uri, who, deny);
      EXPECT_EQ(browser.exit_code, 0) << browser.err;
    }
    return login.Wait();
  }

  // `appban policy ARGS…` as the person whose credentials file is `who`'s (no --server: the saved login's).
  CommandResult Policy(const std::string& who, std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::AppbanBinary(), "policy", "--credentials", Credentials(who)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  Json Audit() {
    auto client = server_->Client();
    auto answer = client.Request("GET", "/v1/admin/audit", "", {{"Authorization", "Bearer " + server_->admin_token()}});
    if (!answer.ok() || answer->status != 200) return Json::object();
    return Json::parse(answer->body, nullptr, false);
  }

  TempDir dir_;
  std::optional<OidcProvider> provider_;
  std::optional<ServerProcess> server_;
};

TEST_F(CliLoginTest, AliceProposesAndBobApprovesFromTheCommandLineAsSignedInPeople) {
  StartAll();
  // The server names the providers it trusts, without any secret.
  auto client = server_->Client();
  auto providers = client.Request("GET", "/v1/auth/providers");
  ASSERT_TRUE(providers.ok());
  ASSERT_EQ(providers->status, 200);
  Json listed = Json::parse(providers->body);
  EXPECT_EQ(
      listed,
      (Json{{"providers",
             Json::array({Json{{"name", "test-idp"}, {"issuer", provider_->issuer()}, {"client_id", "appban"}}})}}));

  CommandResult alice = Login("alice");
  ASSERT_EQ(alice.exit_code, 0) << alice.out << alice.err;
  EXPECT_TRUE(Has(alice.out, "signed in as Alice Martin")) << alice.out;
  EXPECT_TRUE(Has(alice.out, "role admin")) << alice.out;
  struct stat info {};
  ASSERT_EQ(stat(Credentials("alice").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u) << "the credentials file holds a bearer token";

  CommandResult proposed = Policy("alice", {"rules", "add", "--id", "ban-wechat", "--title", "WeChat", "--target",
                                            "android:com.tencent.mm", "--rationale", "risk", "--authority", "CIO"});
  ASSERT_EQ(proposed.exit_code, 0) << proposed.err;
  EXPECT_TRUE(Has(proposed.out, "proposed rule ban-wechat")) << proposed.out;

  CommandResult self = Policy("alice", {"rules", "approve", "ban-wechat"});
  EXPECT_EQ(self.exit_code, 1);
  EXPECT_TRUE(Has(self.err, "Alice Martin")) << self.err;

  CommandResult bob = Login("bob");
  ASSERT_EQ(bob.exit_code, 0) << bob.out << bob.err;
  CommandResult approved = Policy("bob", {"rules", "approve", "ban-wechat", "--note", "reviewed"});
  ASSERT_EQ(approved.exit_code, 0) << approved.err;
  EXPECT_TRUE(Has(approved.out, "rule ban-wechat is now approved")) << approved.out;
  CommandResult published = Policy("alice", {"rules", "publish", "ban-wechat"});
  ASSERT_EQ(published.exit_code, 0) << published.err;

  // A waiver alice asks for waits for bob, who agrees through the command line.
  ASSERT_EQ(Policy("alice", {"groups", "add", "lab"}).exit_code, 0);
  CommandResult waiver = Policy("alice", {"waivers", "add", "--id", "w-lab", "--rule", "ban-wechat", "--group", "lab",
                                          "--justification", "testing", "--expires", "2030-01-01"});
  ASSERT_EQ(waiver.exit_code, 0) << waiver.err;
  ASSERT_TRUE(Has(waiver.out, "proposed change c-")) << waiver.out;
  std::string change = waiver.out.substr(waiver.out.find("c-"));
  change = change.substr(0, change.find(' '));
  CommandResult agreed = Policy("bob", {"changes", "approve", change});
  ASSERT_EQ(agreed.exit_code, 0) << agreed.err;
  EXPECT_TRUE(Has(agreed.out, "applied")) << agreed.out;

  // The audit chain names both as OpenID Connect identities, acting through the command line.
  bool saw_propose = false, saw_approve = false;
  Json audit = Audit();
  for (const Json& entry : audit["entries"]) {
    const std::string action = entry.value("action", "");
    if (action != "rule.propose" && action != "rule.approve") continue;
    const Json& identity = entry["identity"];
    EXPECT_EQ(identity.value("method", ""), "oidc") << entry.dump();
    EXPECT_EQ(identity.value("channel", ""), "cli") << entry.dump();
    EXPECT_EQ(identity.value("issuer", ""), provider_->issuer());
    if (action == "rule.propose") saw_propose = identity.value("subject", "") == "alice";
    if (action == "rule.approve") saw_approve = identity.value("subject", "") == "bob";
  }
  EXPECT_TRUE(saw_propose);
  EXPECT_TRUE(saw_approve);

  // An API token from a file (automation) is recorded as such, channel cli.
  std::string token_file = (dir_.path() / "token").string();
  std::ofstream(token_file) << server_->admin_token() << "\n";
  CommandResult grouped =
      RunCommand({testing::AppbanBinary(), "policy", "--server", server_->url(), "--ca", CaFile(), "--token-file",
                  token_file, "--credentials", Credentials("nobody"), "groups", "add", "lab-2"});
  ASSERT_EQ(grouped.exit_code, 0) << grouped.err;
  bool saw_token = false;
  audit = Audit();
  for (const Json& entry : audit["entries"]) {
    if (entry.value("object", "") != "group:lab-2") continue;
    saw_token = entry["identity"].value("method", "") == "api-token" && entry["identity"].value("channel", "") == "cli";
  }
  EXPECT_TRUE(saw_token) << audit.dump();

  // Signing out forgets the token: bob's next decision names both ways out.
  CommandResult logout = RunCommand({testing::AppbanBinary(), "logout", "--credentials", Credentials("bob")});
  EXPECT_EQ(logout.exit_code, 0) << logout.err;
  CommandResult after = Policy("bob", {"rules", "revoke", "ban-wechat", "--reason", "x", "--data", Data()});
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_TRUE(Has(after.err, "appban login")) << after.err;
  EXPECT_TRUE(Has(after.err, "--break-glass")) << after.err;
}

TEST_F(CliLoginTest, DecisionsOnTheHostWithoutAServerOrBreakGlassAreRefused) {
  TempDir dir;
  std::string credentials = (dir.path() / "none.json").string();
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"rules", "approve", "ban-x"},
                                             {"waivers", "add", "--id", "w", "--rule", "r", "--group", "g",
                                              "--justification", "j", "--expires", "2030-01-01"},
                                             {"keys", "init", "--rotate"}}) {
    std::vector<std::string> argv = {
        testing::AppbanBinary(), "policy",   "--data", (dir.path() / "data").string(), "--user", "root",
        "--credentials",         credentials};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult refused = RunCommand(argv);
    EXPECT_EQ(refused.exit_code, 1) << args[0];
    EXPECT_TRUE(Has(refused.err, "appban login")) << refused.err;
    EXPECT_TRUE(Has(refused.err, "--break-glass")) << refused.err;
  }
}

TEST_F(CliLoginTest, AnExpiredCodeOrARefusalAtTheProviderIsSaidPlainly) {
  OidcProvider::Options options;
  options.device_code_ttl_seconds = 2;
  StartAll(options);
  CommandResult expired = Login("alice", false, /*sign_in=*/false);
  EXPECT_EQ(expired.exit_code, 1);
  EXPECT_TRUE(Has(expired.err, "expired before anyone signed in")) << expired.err;
  EXPECT_TRUE(Has(expired.err, "run appban login again")) << expired.err;
  EXPECT_FALSE(std::filesystem::exists(Credentials("alice")));
}

TEST_F(CliLoginTest, APersonWhoRefusesAtTheProviderIsNotSignedIn) {
  StartAll();
  CommandResult denied = Login("alice", /*deny=*/true);
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_TRUE(Has(denied.err, "the sign-in was refused at test-idp (access_denied")) << denied.err;
  EXPECT_FALSE(std::filesystem::exists(Credentials("alice")));
}

}  // namespace
}  // namespace appban
