// Issue 13, "client certificates": staff who sign in with a certificate (a PIV/CAC smart card)
// over mutual TLS. Certificates come from a real issuing CA (`openssl ca`, with its database,
// validity dates and CRL: tests/tools/make_staff_certs.sh), the client is curl, the server is the
// real one with [identity.client_certificates]. A verified certificate is a person — the e-mail
// address in its subjectAltName — and the two-person rule compares people: alice with her card
// cannot approve her own proposal, nor through an API token she minted with it; bob can. Expired,
// revoked, foreign-CA and ambiguous certificates get a 401 naming why; a change needs a header
// another site's page cannot send; devices and tokens work as before.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "appban/common/json.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::RunCommand;
using testing::ServerProcess;
using testing::TempDir;
namespace fs = std::filesystem;

struct Answer {
  int status = 0;
  Json body;
  std::string text;
};

class ClientCertificates : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = RunCommand(
        {"bash", (fs::path(APPBAN_SOURCE_DIR) / "tests/tools/make_staff_certs.sh").string(), certs().string()});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    auto provider = testing::OidcProvider::Start(dir_.path() / "idp");
    ASSERT_TRUE(provider.has_value()) << "the OpenID Connect provider did not start";
    provider_.emplace(std::move(*provider));
    const fs::path config = dir_.path() / "server.toml";
    std::ofstream(config) << provider_->ServerToml() << "\n[identity.client_certificates]\nca_file = \""
                          << (certs() / "staff-ca.pem").string() << "\"\ncrl_file = \""
                          << (certs() / "crl.pem").string() << "\"\n";
    auto started = ServerProcess::Start(dir_.path() / "data", {"--config", config.string()});
    ASSERT_TRUE(started.has_value()) << "server did not start";
    server_.emplace(std::move(*started));
    admin_ = server_->admin_token();
    std::ofstream(ca_file()) << server_->ca_pem();
  }
  fs::path certs() const { return dir_.path() / "certs"; }
  std::string ca_file() const { return (dir_.path() / "server-ca.pem").string(); }

  // curl with `person`'s certificate ("" for none) and the extra arguments.
  Answer Curl(const std::string& person, const std::string& method, const std::string& path,
              std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {"curl", "--silent", "--show-error", "--cacert",      ca_file(),
                                     "-X",   method,     "-w",           "\n%{http_code}"};
    if (!person.empty()) {
      argv.insert(argv.end(),
                  {"--cert", (certs() / (person + ".pem")).string(), "--key", (certs() / (person + ".key")).string()});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(server_->url() + path);
    auto run = RunCommand(argv);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    Answer answer;
    size_t newline = run.out.rfind('\n');
    if (newline == std::string::npos) return answer;
    answer.status = std::atoi(run.out.c_str() + newline + 1);
    answer.text = run.out.substr(0, newline);
    answer.body = Json::parse(answer.text, nullptr, false);
    return answer;
  }
  // A change with a card: JSON body and the header that proves it is not another site's page.
  Answer Change(const std::string& person, const std::string& path, const Json& body) {
    return Curl(person, "POST", path,
                {"-H", "X-Appban-Channel: api", "-H", "Content-Type: application/json", "-d", body.dump()});
  }
  Answer WithToken(const std::string& token, const std::string& method, const std::string& path,
                   const Json& body = nullptr) {
    std::vector<std::string> extra = {"-H", "Authorization: Bearer " + token};
    if (!body.is_null()) extra.insert(extra.end(), {"-H", "Content-Type: application/json", "-d", body.dump()});
    return Curl("", method, path, extra);
  }
  static std::string Message(const Answer& answer) {
    return answer.body.is_object() ? answer.body["error"].value("message", "") : answer.text;
  }

  TempDir dir_;
  std::optional<testing::OidcProvider> provider_;
  std::optional<ServerProcess> server_;
  std::string admin_;
};

TEST_F(ClientCertificates, ACardIsAPersonAndTheTwoPersonRuleComparesPeople) {
  // First sign-in: alice is a user without a role, told how she gets one.
  Answer first = Curl("alice", "GET", "/v1/admin/whoami");
  ASSERT_EQ(first.status, 403) << first.text;
  EXPECT_NE(Message(first).find("has no appban role: an administrator grants one"), std::string::npos);
  Answer users = WithToken(admin_, "GET", "/v1/admin/users");
  std::string alice_id;
  for (const Json& user : users.body["users"]) {
    if (user.value("subject", "") == "alice@dept.example") {
      EXPECT_EQ(user.value("issuer", ""), "appban:client-certificate");
      EXPECT_EQ(user.value("display_name", ""), "Alice Example");
      alice_id = user.value("id", "");
    }
  }
  ASSERT_FALSE(alice_id.empty()) << users.text;

  // Making her an admin widens who decides: the bootstrap admin proposes, bob (signed in at the
  // identity provider) agrees.
  Answer proposed = WithToken(admin_, "POST", "/v1/admin/users/" + alice_id + "/role", {{"role", "admin"}});
  ASSERT_EQ(proposed.status, 202) << proposed.text;
  const std::string bob = provider_->SignIn("bob");
  Answer agreed;
  for (int attempt = 0; attempt < 100 && agreed.status != 200; ++attempt) {  // the JWKS may still be loading
    agreed = WithToken(bob, "POST", "/v1/admin/changes/" + proposed.body["change"].value("id", "") + "/approve",
                       Json::object());
    if (agreed.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(agreed.status, 200) << agreed.text;

  Answer whoami = Curl("alice", "GET", "/v1/admin/whoami");
  ASSERT_EQ(whoami.status, 200) << whoami.text;
  EXPECT_EQ(whoami.body.value("method", ""), "client-certificate");
  EXPECT_EQ(whoami.body.value("role", ""), "admin");
  auto fingerprint =
      RunCommand({"openssl", "x509", "-in", (certs() / "alice.pem").string(), "-noout", "-fingerprint", "-sha256"});
  std::string expected = fingerprint.out.substr(fingerprint.out.find('=') + 1);
  expected.erase(std::remove(expected.begin(), expected.end(), ':'), expected.end());
  expected.erase(std::remove(expected.begin(), expected.end(), '\n'), expected.end());
  std::transform(expected.begin(), expected.end(), expected.begin(), ::tolower);
  EXPECT_EQ(whoami.body.value("certificate", ""), expected);

  // A change without the header is refused: another site's page could have made it.
  Json rule = Json::parse(testing::ReadWholeFile(fs::path(APPBAN_SOURCE_DIR) / "examples" / "wechat-rule.json"));
  Answer forged = Curl("alice", "POST", "/v1/admin/rules", {"-H", "Content-Type: text/plain", "-d", rule.dump()});
  EXPECT_EQ(forged.status, 403) << forged.text;
  EXPECT_NE(Message(forged).find("X-Appban-Channel"), std::string::npos);

  ASSERT_EQ(Change("alice", "/v1/admin/rules", rule).status, 201);
  const std::string approve = "/v1/admin/rules/" + rule.value("id", "") + "/approve";
  Answer own = Change("alice", approve, Json::object());
  EXPECT_EQ(own.status, 409) << own.text;
  EXPECT_EQ(own.body["error"].value("code", ""), "two_person_rule") << own.text;
  // A token she mints with her card is still alice.
  Answer minted = Change("alice", "/v1/admin/tokens", {{"name", "alice-laptop"}, {"role", "admin"}});
  ASSERT_EQ(minted.status, 201) << minted.text;
  Answer through_token = WithToken(minted.body.value("token", ""), "POST", approve, Json::object());
  EXPECT_EQ(through_token.status, 409) << through_token.text;
  EXPECT_EQ(through_token.body["error"].value("code", ""), "two_person_rule") << through_token.text;
  // Another person can.
  EXPECT_EQ(WithToken(bob, "POST", approve, Json::object()).status, 200);

  // The chain records the card: who, how, which certificate.
  Answer audit = WithToken(admin_, "GET", "/v1/admin/audit?limit=1000");
  bool proposal_recorded = false;
  for (const Json& entry : audit.body["entries"]) {
    if (entry.value("action", "") != "rule.propose") continue;
    Json who = entry["identity"];
    EXPECT_EQ(who.value("method", ""), "client-certificate") << entry.dump();
    EXPECT_EQ(who.value("subject", ""), "alice@dept.example");
    EXPECT_EQ(who.value("certificate", ""), expected);
    EXPECT_EQ(who.value("channel", ""), "api");
    proposal_recorded = true;
  }
  EXPECT_TRUE(proposal_recorded) << audit.text;
}

TEST_F(ClientCertificates, CertificatesThatProveNoOneGetA401NamingWhy) {
  struct Case {
    const char* person;
    const char* says;
  };
  for (const Case& refused : {Case{"carol", "certificate has expired"}, Case{"dave", "certificate revoked"},
                              Case{"mallory", "is not accepted"}, Case{"eve", "does not name one person"}}) {
    Answer answer = Curl(refused.person, "GET", "/v1/admin/whoami");
    EXPECT_EQ(answer.status, 401) << refused.person << ": " << answer.text;
    EXPECT_NE(Message(answer).find(refused.says), std::string::npos) << refused.person << ": " << answer.text;
  }
  // mallory's certificate names alice, but no staff CA issued it: no user alice was created.
  Answer users = WithToken(admin_, "GET", "/v1/admin/users");
  for (const Json& user : users.body["users"]) EXPECT_NE(user.value("subject", ""), "alice@dept.example");

  // Without a card, nothing changed: the health check, tokens, and the refusal says what to send.
  EXPECT_EQ(Curl("", "GET", "/healthz").status, 200);
  EXPECT_EQ(WithToken(admin_, "GET", "/v1/admin/whoami").status, 200);
  Answer anonymous = Curl("", "GET", "/v1/admin/whoami");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_NE(Message(anonymous).find("or a client certificate"), std::string::npos);
  // A token wins over a card: the request is the token's.
  Answer both = Curl("bob", "GET", "/v1/admin/whoami", {"-H", "Authorization: Bearer " + admin_});
  EXPECT_EQ(both.body.value("method", ""), "api-token") << both.text;
}

TEST(ClientCertificateConfig, NeedsTlsAndUsableFiles) {
  TempDir dir;
  auto made = RunCommand({"bash", (fs::path(APPBAN_SOURCE_DIR) / "tests/tools/make_staff_certs.sh").string(),
                          (dir.path() / "certs").string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto start = [&](const std::string& toml, std::vector<std::string> flags) {
    std::ofstream(dir.path() / "server.toml", std::ios::trunc) << toml;
    std::vector<std::string> argv = {testing::AppbanBinary(),
                                     "server",
                                     "--config",
                                     (dir.path() / "server.toml").string(),
                                     "--data-dir",
                                     (dir.path() / "data").string(),
                                     "--address",
                                     "127.0.0.1",
                                     "--port",
                                     "0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return RunCommand(argv);
  };
  const std::string ca = (dir.path() / "certs" / "staff-ca.pem").string();
  auto plain = start("[identity.client_certificates]\nca_file = \"" + ca + "\"\n", {"--insecure-plain-http"});
  EXPECT_EQ(plain.exit_code, 2);
  EXPECT_NE(plain.err.find("identity.client_certificates: needs TLS"), std::string::npos) << plain.err;
  auto unknown = start("[identity.client_certificates]\nca_file = \"" + ca + "\"\nuser_from = \"subject-cn\"\n", {});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("must be one of san-email, san-upn or subject-dn"), std::string::npos) << unknown.err;
  // A leaf certificate where the CA should be stops the start and names the file.
  const std::string leaf = (dir.path() / "certs" / "alice.pem").string();
  auto not_a_ca = start("[identity.client_certificates]\nca_file = \"" + leaf + "\"\n", {});
  EXPECT_NE(not_a_ca.exit_code, 0);
  EXPECT_NE(not_a_ca.err.find("is not a CA certificate"), std::string::npos) << not_a_ca.err << not_a_ca.out;
  EXPECT_NE((not_a_ca.err + not_a_ca.out).find(leaf), std::string::npos);
}

}  // namespace
}  // namespace appban
