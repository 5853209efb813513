// The web console's sign-in at the identity provider (docs/console.md): the real `appban server`
// and a real OpenID Connect provider (oidc-provider, tests/oidc/) on loopback. The server starts
// the authorization code flow with PKCE, the provider's own login page signs the person in
// (tests/oidc/console-sign-in.mjs fills it in as a browser would), and the server exchanges the
// code authenticating as appban's client with private_key_jwt (a key made here by OpenSSL, RS256
// or ES256) or client_secret_basic, then sets the console session cookie. A cancelled sign-in, a
// forged state and a replayed code are each refused with a page that says why.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "appban/common/json.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::OidcProvider;
using testing::ServerProcess;
using testing::TempDir;

constexpr const char* kSecret = "console-basic-secret-8f2c";

bool HasCookie(const Json& set_cookies, const std::string& prefix, const std::vector<std::string>& attributes) {
  for (const Json& line : set_cookies) {
    std::string text = line.get<std::string>();
    if (text.rfind(prefix, 0) != 0) continue;
    bool all = true;
    for (const auto& attribute : attributes) all = all && text.find(attribute) != std::string::npos;
    if (all) return true;
  }
  return false;
}

class ConsoleSignInTest : public ::testing::Test {
 protected:
  // `key_algorithm`: "RSA" or "EC" for a private_key_jwt client, "" for client_secret_basic.
  void StartAll(const std::string& key_algorithm) {
    std::filesystem::path key = dir_.path() / "client-key.pem";
    std::vector<std::string> genpkey = {"openssl", "genpkey", "-out", key.string()};
    if (key_algorithm == "RSA")
      genpkey.insert(genpkey.end(), {"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"});
    if (key_algorithm == "EC")
      genpkey.insert(genpkey.end(), {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"});
    if (!key_algorithm.empty()) {
      auto made = testing::RunCommand(genpkey);
      ASSERT_EQ(made.exit_code, 0) << made.err;
      std::filesystem::permissions(key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    OidcProvider::Options options;
    if (!key_algorithm.empty()) options.console_client_key_file = key.string();
    options.console_client_secret = kSecret;
    auto provider = OidcProvider::Start(dir_.path() / "idp", options);
    ASSERT_TRUE(provider) << "the OpenID Connect provider did not start (scripts/setup.sh --test installs it)";
    provider_.emplace(std::move(*provider));

    std::string toml;
    if (key_algorithm.empty()) {
      std::filesystem::path secret = dir_.path() / "client-secret";
      std::ofstream(secret) << kSecret << "\n";
      std::filesystem::permissions(secret, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
      toml = provider_->ConsoleServerToml("appban-console-basic", "client_secret_file = \"" + secret.string() + "\"");
    } else {
      toml = provider_->ConsoleServerToml("appban-console", "private_key_jwt_file = \"" + key.string() + "\"");
    }
    std::filesystem::path config = dir_.path() / "server.toml";
    std::ofstream(config) << toml;
    auto server = ServerProcess::Start(dir_.path() / "data", {"--config", config.string(), "--insecure-plain-http"});
    ASSERT_TRUE(server) << "server did not start";
    server_.emplace(std::move(*server));
  }

  // One run of tests/oidc/console-sign-in.mjs; tried again while the server answers 502 (the
  // provider not reachable yet).
  Json Drive(const std::string& login, const std::string& mode) {
    std::filesystem::path script = std::filesystem::path(APPBAN_SOURCE_DIR) / "tests" / "oidc" / "console-sign-in.mjs";
    Json report;
    for (int attempt = 0; attempt < 50; ++attempt) {
      auto run = testing::RunCommand(
          {"timeout", "60", "/usr/bin/node", script.string(), server_->url(), "test-idp", login, mode});
      EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
      report = Json::parse(run.out, nullptr, false);
      if (report.is_discarded() || report.value("start_status", 0) != 502) return report;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return report;
  }

  void ExpectSignedIn(const Json& report, const std::string& name) {
    ASSERT_TRUE(report.is_object()) << report.dump();
    EXPECT_EQ(report["start_status"], 302) << report.dump();
    std::string authorization = report.value("authorization_url", "");
    EXPECT_EQ(authorization.rfind(provider_->issuer(), 0), 0u) << authorization;
    EXPECT_NE(authorization.find("code_challenge_method=S256"), std::string::npos) << authorization;
    EXPECT_NE(authorization.find("nonce="), std::string::npos) << authorization;
    EXPECT_TRUE(HasCookie(report["start_set_cookie"], "appban_sign_in=f1.",
                          {"HttpOnly", "Secure", "SameSite=Lax", "Path=/console/callback", "Max-Age=600"}))
        << report["start_set_cookie"].dump();
    EXPECT_EQ(report["callback_status"], 303) << report.value("callback_body", "");
    EXPECT_EQ(report["callback_location"], "/");
    EXPECT_TRUE(HasCookie(report["callback_set_cookie"], "appban_session=s1.",
                          {"HttpOnly", "Secure", "SameSite=Strict", "Path=/"}))
        << report["callback_set_cookie"].dump();
    EXPECT_TRUE(HasCookie(report["callback_set_cookie"], "appban_sign_in=;", {"Max-Age=0"}))
        << "the sign-in cookie is cleared: " << report["callback_set_cookie"].dump();
    ASSERT_EQ(report["session_status"], 200) << report.dump();
    EXPECT_EQ(report["session"]["user"]["display_name"], name);
    EXPECT_EQ(report["session"]["user"]["issuer"], provider_->issuer());
    EXPECT_EQ(report["session"]["method"], "oidc");
    EXPECT_EQ(report["session"]["role"], "admin");
  }

  TempDir dir_;
  std::optional<OidcProvider> provider_;
  std::optional<ServerProcess> server_;
};

TEST_F(ConsoleSignInTest, PrivateKeyJwtRs256SignsAliceInAndAReplayedCodeIsRefused) {
  StartAll("RSA");
  Json report = Drive("alice", "replay");
  ExpectSignedIn(report, "Alice Martin");
  // The same code and state again, with the sign-in cookie they came with: the provider refuses
  // a code it has already exchanged, and the page says so; no session cookie is set.
  EXPECT_EQ(report["replay_status"], 401) << report.value("replay_body", "");
  EXPECT_NE(report.value("replay_body", "").find("invalid_grant"), std::string::npos)
      << report.value("replay_body", "");
  EXPECT_FALSE(HasCookie(report["replay_set_cookie"], "appban_session=s1.", {}));

  // The console lists the provider it offers.
  auto client = server_->Client();
  auto providers = client.Request("GET", "/console/providers");
  ASSERT_TRUE(providers.ok());
  EXPECT_EQ(Json::parse(providers->body)["providers"][0]["sign_in_url"], "/console/sign-in?provider=test-idp");
}

// In Debian's chromium too (tests/console/oidc-browser.mjs, puppeteer-core): "Sign in with
// test-idp", the provider's login and consent pages, the overview with alice's name; a sign-in
// cancelled at the provider ends on a page naming access_denied.
TEST_F(ConsoleSignInTest, PrivateKeyJwtEs256SignsBobInAndChromiumSignsAliceIn) {
  StartAll("EC");
  ExpectSignedIn(Drive("bob", "ok"), "Bob Tremblay");

  const std::filesystem::path tools = std::filesystem::path(APPBAN_SOURCE_DIR) / "tests" / "console";
  ASSERT_TRUE(std::filesystem::exists(tools / "node_modules" / "puppeteer-core"))
      << "puppeteer-core is not installed in " << tools << ": run scripts/setup.sh --test";
  const std::filesystem::path shots = dir_.path() / "screenshots";
  std::filesystem::create_directories(shots);
  auto run = testing::RunCommand({"timeout", "180", "node", (tools / "oidc-browser.mjs").string(), server_->url(),
                                  "test-idp", "alice", "Alice Martin", shots.string()});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("ok: the console shows who signed in: Alice Martin (admin)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("ok: a cancelled sign-in is refused with a clear message"), std::string::npos) << run.out;
  if (const char* keep = std::getenv("APPBAN_KEEP_SCREENSHOTS")) {
    for (const auto& entry : std::filesystem::directory_iterator(shots)) {
      std::filesystem::copy_file(entry.path(), std::filesystem::path(keep) / entry.path().filename(),
                                 std::filesystem::copy_options::overwrite_existing);
    }
  }
}

TEST_F(ConsoleSignInTest, ClientSecretBasicSignsInAndRefusesACancelledSignInAndAForgedState) {
  StartAll("");
  ExpectSignedIn(Drive("alice", "ok"), "Alice Martin");

  Json denied = Drive("alice", "deny");
  EXPECT_EQ(denied["callback_query"]["error"], "access_denied") << denied.dump();
  EXPECT_EQ(denied["callback_status"], 403) << denied.dump();
  std::string page = denied.value("callback_body", "");
  EXPECT_NE(page.find("did not sign you in: access_denied"), std::string::npos) << page;
  EXPECT_NE(denied.value("callback_csp", "").find("script-src 'self'"), std::string::npos);
  EXPECT_FALSE(HasCookie(denied["callback_set_cookie"], "appban_session=s1.", {}));

  Json forged = Drive("alice", "bad-state");
  EXPECT_EQ(forged["callback_status"], 400) << forged.dump();
  EXPECT_NE(forged.value("callback_body", "").find("state does not match"), std::string::npos)
      << forged.value("callback_body", "");
  EXPECT_FALSE(HasCookie(forged["callback_set_cookie"], "appban_session=s1.", {}));

  // A callback with no sign-in cookie at all, and an unknown provider: pages, never a 500.
  auto client = server_->Client();
  auto bare = client.Request("GET", "/console/callback?code=abc&state=def");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->status, 400);
  EXPECT_NE(bare->body.find("did not start this sign-in"), std::string::npos) << bare->body;
  auto unknown = client.Request("GET", "/console/sign-in?provider=nobody");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->status, 404);
  EXPECT_NE(unknown->body.find("No identity provider is named nobody"), std::string::npos) << unknown->body;
}

}  // namespace
}  // namespace appban
