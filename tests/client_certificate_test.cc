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
  // Makes the holder of `person`'s card an administrator: their first sign-in creates the user,
  // the bootstrap admin proposes the role and bob (signed in at the identity provider) agrees.
  // Returns the user's id.
  std::string GrantAdmin(const std::string& person, const std::string& subject) {
    Curl(person, "GET", "/v1/admin/whoami");
    Answer users = WithToken(admin_, "GET", "/v1/admin/users");
    std::string id;
    for (const Json& user : users.body["users"]) {
      if (user.value("subject", "") == subject) id = user.value("id", "");
    }
    EXPECT_FALSE(id.empty()) << users.text;
    Answer proposed = WithToken(admin_, "POST", "/v1/admin/users/" + id + "/role", {{"role", "admin"}});
    EXPECT_EQ(proposed.status, 202) << proposed.text;
    Answer agreed;
    for (int attempt = 0; attempt < 100 && agreed.status != 200; ++attempt) {  // the JWKS may still be loading
      agreed = WithToken(bob(), "POST", "/v1/admin/changes/" + proposed.body["change"].value("id", "") + "/approve",
                         Json::object());
      if (agreed.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(agreed.status, 200) << agreed.text;
    return id;
  }
  const std::string& bob() {
    if (bob_.empty()) bob_ = provider_->SignIn("bob");
    return bob_;
  }
  static std::string Message(const Answer& answer) {
    return answer.body.is_object() ? answer.body["error"].value("message", "") : answer.text;
  }

  TempDir dir_;
  std::optional<testing::OidcProvider> provider_;
  std::optional<ServerProcess> server_;
  std::string admin_;
  std::string bob_;
};

TEST_F(ClientCertificates, ACardIsAPersonAndTheTwoPersonRuleComparesPeople) {
  // First sign-in: alice is a user without a role, told how she gets one.
  Answer first = Curl("alice", "GET", "/v1/admin/whoami");
  ASSERT_EQ(first.status, 403) << first.text;
  EXPECT_NE(Message(first).find("has no appban role: an administrator grants one"), std::string::npos);
  Answer users = WithToken(admin_, "GET", "/v1/admin/users");
  bool created = false;
  for (const Json& user : users.body["users"]) {
    if (user.value("subject", "") == "alice@dept.example") {
      EXPECT_EQ(user.value("issuer", ""), "appban:client-certificate");
      EXPECT_EQ(user.value("display_name", ""), "Alice Example");
      created = true;
    }
  }
  ASSERT_TRUE(created) << users.text;
  GrantAdmin("alice", "alice@dept.example");

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
  EXPECT_EQ(WithToken(bob(), "POST", approve, Json::object()).status, 200);

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

// One person, two accounts: alice's card and her account at the identity provider are two users
// until an administrator links them; from then on the two-person rule counts them once, for what
// either proposed before the link too.
TEST_F(ClientCertificates, TwoAccountsOfOnePersonCountOnceOnceLinked) {
  const std::string card_id = GrantAdmin("alice", "alice@dept.example");
  const std::string alice_oidc = provider_->SignIn("alice");
  Answer oidc_whoami;
  for (int attempt = 0; attempt < 100 && oidc_whoami.status != 200; ++attempt) {  // the JWKS may still be loading
    oidc_whoami = WithToken(alice_oidc, "GET", "/v1/admin/whoami");
    if (oidc_whoami.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(oidc_whoami.status, 200) << oidc_whoami.text;
  ASSERT_EQ(oidc_whoami.body.value("role", ""), "admin") << oidc_whoami.text;
  const std::string oidc_id = oidc_whoami.body.value("actor", "");
  ASSERT_NE(oidc_id, card_id);

  Json rule = Json::parse(testing::ReadWholeFile(fs::path(APPBAN_SOURCE_DIR) / "examples" / "wechat-rule.json"));
  ASSERT_EQ(Change("alice", "/v1/admin/rules", rule).status, 201);
  const std::string approve = "/v1/admin/rules/" + rule.value("id", "") + "/approve";

  // An account that does not exist is not linked.
  EXPECT_EQ(
      WithToken(bob(), "POST", "/v1/admin/users/" + card_id + "/link", {{"same_as", "u-000000000000000000000000"}})
          .status,
      404);
  Answer linked = WithToken(admin_, "POST", "/v1/admin/users/" + card_id + "/link", {{"same_as", oidc_id}});
  ASSERT_EQ(linked.status, 200) << linked.text;
  EXPECT_EQ(linked.body.value("person_id", ""), oidc_id);

  // The card's proposal, from before the link, is alice's: her provider account cannot approve it.
  Answer own = WithToken(alice_oidc, "POST", approve, Json::object());
  EXPECT_EQ(own.status, 409) << own.text;
  EXPECT_EQ(own.body["error"].value("code", ""), "two_person_rule") << own.text;
  // Nor can either account change the other's role.
  Answer role = Change("alice", "/v1/admin/users/" + oidc_id + "/role", {{"role", "analyst"}});
  EXPECT_EQ(role.status, 409) << role.text;
  // And what her provider account proposes, her card cannot approve.
  Json second = rule;
  second["id"] = "ban-second";
  ASSERT_EQ(WithToken(alice_oidc, "POST", "/v1/admin/rules", second).status, 201);
  Answer by_card = Change("alice", "/v1/admin/rules/ban-second/approve", Json::object());
  EXPECT_EQ(by_card.status, 409) << by_card.text;
  // Another person can.
  EXPECT_EQ(WithToken(bob(), "POST", approve, Json::object()).status, 200);
  EXPECT_EQ(WithToken(bob(), "POST", "/v1/admin/rules/ban-second/approve", Json::object()).status, 200);
}

// The command line presents the card too: `appban login --client-cert` checks it with the server
// and saves where it is, and every later command signs in with it — the chain records the card,
// and the two-person rule still compares people.
TEST_F(ClientCertificates, TheCommandLineSignsInWithTheCard) {
  GrantAdmin("alice", "alice@dept.example");
  const std::string credentials = (dir_.path() / "alice-credentials.json").string();
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), testing::AppbanBinary());
    return RunCommand(args);
  };
  auto login =
      cli({"login", "--server", server_->url(), "--ca", ca_file(), "--credentials", credentials, "--client-cert",
           (certs() / "alice.pem").string(), "--client-key", (certs() / "alice.key").string()});
  ASSERT_EQ(login.exit_code, 0) << login.err;
  EXPECT_NE(login.out.find("signed in as Alice Example"), std::string::npos) << login.out;
  EXPECT_NE(login.out.find("role admin"), std::string::npos) << login.out;
  EXPECT_NE(login.out.find("client certificate"), std::string::npos) << login.out;
  std::string saved = testing::ReadWholeFile(credentials);
  EXPECT_EQ(saved.find("PRIVATE KEY"), std::string::npos) << "the key stays where it is";

  auto proposed = cli({"policy", "--credentials", credentials, "rules", "add", "--id", "ban-card", "--title",
                       "Ban by card", "--target", "android:com.example.card"});
  ASSERT_EQ(proposed.exit_code, 0) << proposed.err;
  auto own = cli({"policy", "--credentials", credentials, "rules", "approve", "ban-card"});
  EXPECT_EQ(own.exit_code, 1);
  EXPECT_NE(own.err.find("two-person rule"), std::string::npos) << own.err;
  EXPECT_EQ(WithToken(bob(), "POST", "/v1/admin/rules/ban-card/approve", Json::object()).status, 200);

  Answer audit = WithToken(admin_, "GET", "/v1/admin/audit?limit=1000");
  bool recorded = false;
  for (const Json& entry : audit.body["entries"]) {
    if (entry.value("action", "") != "rule.propose" || entry.value("object", "") != "rule:ban-card") continue;
    EXPECT_EQ(entry["identity"].value("method", ""), "client-certificate") << entry.dump();
    EXPECT_EQ(entry["identity"].value("channel", ""), "cli") << entry.dump();
    EXPECT_EQ(entry["identity"].value("subject", ""), "alice@dept.example") << entry.dump();
    recorded = true;
  }
  EXPECT_TRUE(recorded) << audit.text;

  // A revoked card is refused at the next command, with the reason.
  auto revoked = cli({"policy", "--credentials", credentials, "--client-cert", (certs() / "dave.pem").string(),
                      "--client-key", (certs() / "dave.key").string(), "rules", "add", "--id", "ban-dave", "--title",
                      "T", "--target", "android:com.example.dave"});
  EXPECT_EQ(revoked.exit_code, 1);
  EXPECT_NE(revoked.err.find("certificate revoked"), std::string::npos) << revoked.err;
  // Half a certificate is a usage error, not a silent sign-in with the saved one.
  auto half = cli({"policy", "--credentials", credentials, "--client-cert", (certs() / "bob.pem").string(), "rules",
                   "add", "--id", "x", "--title", "T", "--target", "android:x.y"});
  EXPECT_EQ(half.exit_code, 1);
  EXPECT_NE(half.err.find("--client-key"), std::string::npos) << half.err;
}

// The console: a card signs in for a session (POST /v1/session {"client_certificate": true} from
// the console's own page), and the session lasts only while the same card is presented.
TEST_F(ClientCertificates, AConsoleSessionFromACardNeedsThatCardOnEveryRequest) {
  GrantAdmin("alice", "alice@dept.example");
  Answer offered = Curl("", "GET", "/console/providers");
  ASSERT_EQ(offered.status, 200) << offered.text;
  EXPECT_EQ(offered.body.value("client_certificates", false), true) << offered.text;

  const std::string jar = (dir_.path() / "cookies.txt").string();
  const std::vector<std::string> from_console = {"-H", "Origin: " + server_->url(), "-H",
                                                 "Content-Type: application/json"};
  auto sign_in = [&](const std::string& person, std::vector<std::string> headers, const std::string& body) {
    headers.insert(headers.end(), {"-c", jar, "-d", body});
    return Curl(person, "POST", "/v1/session", headers);
  };
  Answer no_origin = sign_in("alice", {"-H", "Content-Type: application/json"}, R"({"client_certificate":true})");
  EXPECT_EQ(no_origin.status, 403) << "another site's page could send the card: " << no_origin.text;
  Answer no_card = sign_in("", from_console, R"({"client_certificate":true})");
  EXPECT_EQ(no_card.status, 401) << no_card.text;
  EXPECT_NE(Message(no_card).find("no client certificate"), std::string::npos) << no_card.text;
  Answer revoked = sign_in("dave", from_console, R"({"client_certificate":true})");
  EXPECT_EQ(revoked.status, 401) << revoked.text;
  EXPECT_NE(Message(revoked).find("certificate revoked"), std::string::npos) << revoked.text;

  Answer session = sign_in("alice", from_console, R"({"client_certificate":true})");
  ASSERT_EQ(session.status, 201) << session.text;
  EXPECT_EQ(session.body.value("method", ""), "client-certificate");
  EXPECT_EQ(session.body["user"].value("subject", ""), "alice@dept.example");
  EXPECT_EQ(session.body.value("role", ""), "admin");

  Answer with_card = Curl("alice", "GET", "/v1/admin/whoami", {"-b", jar});
  ASSERT_EQ(with_card.status, 200) << with_card.text;
  EXPECT_EQ(with_card.body.value("method", ""), "client-certificate") << with_card.text;
  EXPECT_EQ(with_card.body["user"].value("subject", ""), "alice@dept.example") << with_card.text;
  EXPECT_EQ(with_card.body.value("certificate", "").size(), 64u) << "the session's calls are audited with the card";
  Answer card_pulled = Curl("", "GET", "/v1/admin/whoami", {"-b", jar});
  EXPECT_EQ(card_pulled.status, 401) << card_pulled.text;
  EXPECT_NE(Message(card_pulled).find("does not present"), std::string::npos) << card_pulled.text;
  Answer other_card = Curl("bob", "GET", "/v1/admin/whoami", {"-b", jar});
  EXPECT_EQ(other_card.status, 401) << "bob's card does not carry alice's session: " << other_card.text;
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

// A CA revokes a card: the server picks up the new CRL it is given without a restart, and the
// card is refused from the next connection on.
TEST(ClientCertificateRevocation, ANewCrlIsLoadedWithoutARestart) {
  TempDir dir;
  const fs::path certs = dir.path() / "certs";
  auto made =
      RunCommand({"bash", (fs::path(APPBAN_SOURCE_DIR) / "tests/tools/make_staff_certs.sh").string(), certs.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const fs::path crl = dir.path() / "staff-crl.pem";
  fs::copy_file(certs / "crl-before-dave.pem", crl);
  const fs::path config = dir.path() / "server.toml";
  std::ofstream(config) << "[identity.client_certificates]\nca_file = \"" << (certs / "staff-ca.pem").string()
                        << "\"\ncrl_file = \"" << crl.string() << "\"\ncrl_reload_seconds = 1\n";
  // One worker, so a TLS session made with it can be offered back to it.
  auto server = ServerProcess::Start(dir.path() / "data", {"--config", config.string(), "--workers", "1"});
  ASSERT_TRUE(server.has_value()) << "server did not start";
  const fs::path ca = dir.path() / "server-ca.pem";
  std::ofstream(ca) << server->ca_pem();
  // openssl s_client with dave's card, saving its TLS session or offering the saved one back.
  const fs::path session = dir.path() / "dave-session.pem";
  auto s_client = [&](const char* session_flag) {
    std::string host_port = server->url().substr(std::string("https://").size());
    std::string script =
        "(printf 'GET /v1/admin/whoami HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'; "
        "sleep 1) | openssl s_client -connect " +
        host_port + " -CAfile " + ca.string() + " -cert " + (certs / "dave.pem").string() + " -key " +
        (certs / "dave.key").string() + " " + session_flag + " " + session.string() + " -ign_eof 2>/dev/null";
    return RunCommand({"bash", "-c", script}).out;
  };
  // One request with dave's card, on a new connection.
  auto dave = [&] {
    std::vector<std::string> argv = {"curl",     "--silent",
                                     "--cacert", ca.string(),
                                     "--cert",   (certs / "dave.pem").string(),
                                     "--key",    (certs / "dave.key").string(),
                                     "-w",       "\n%{http_code}\n"};
    argv.push_back(server->url() + "/v1/admin/whoami");
    return RunCommand(argv).out;
  };
  // Not yet revoked: dave is a person (without a role).
  std::string before = dave();
  EXPECT_NE(before.find("has no appban role"), std::string::npos) << before;
  std::string saved = s_client("-sess_out");
  ASSERT_NE(saved.find("has no appban role"), std::string::npos) << saved;
  std::string resumed = s_client("-sess_in");
  ASSERT_NE(resumed.find("Reused, TLS"), std::string::npos) << "the server resumes sessions: " << resumed;

  fs::copy_file(certs / "crl.pem", crl, fs::copy_options::overwrite_existing);
  std::string after;
  for (int attempt = 0; attempt < 100; ++attempt) {  // every worker looks within a second
    after = dave();
    if (after.find("certificate revoked") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(after.find("certificate revoked"), std::string::npos) << after;
  // A TLS session made before the new CRL is not resumed: the card is checked again, and refused.
  std::string offered_back = s_client("-sess_in");
  EXPECT_NE(offered_back.find("New, TLS"), std::string::npos) << offered_back;
  EXPECT_NE(offered_back.find("certificate revoked"), std::string::npos) << offered_back;

  // A broken CRL file leaves the lists in force.
  std::ofstream(crl, std::ios::trunc) << "not a CRL\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_NE(dave().find("certificate revoked"), std::string::npos) << "a bad file must not unrevoke a card";
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
