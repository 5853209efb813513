// People, not names (docs/identity.md): the real `appban server` against a real OpenID Connect
// provider (oidc-provider on node, tests/oidc/), both on loopback. alice and bob sign in through
// the provider's own authorization code flow; the two-person rule compares their identities; bad
// tokens are refused with a 401 that says why.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/time.h"
#include "appban/identity/jwt.h"
#include "appban/mdm/google_auth.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::OidcProvider;
using testing::ServerProcess;
using testing::TempDir;

struct Reply {
  int status = 0;
  Json body;
  std::string retry_after;
  std::string Message() const { return body.contains("error") ? body["error"].value("message", "") : ""; }
  std::string Code() const { return body.contains("error") ? body["error"].value("code", "") : ""; }
};

class IdentityTest : public ::testing::Test {
 protected:
  void StartAll(OidcProvider::Options options = {}, int clock_skew_seconds = 60, const std::string& extra_toml = "") {
    auto provider = OidcProvider::Start(dir_.path() / "idp", options);
    ASSERT_TRUE(provider) << "the OpenID Connect provider did not start (scripts/setup.sh --test installs it)";
    provider_.emplace(std::move(*provider));
    std::filesystem::path config = dir_.path() / "server.toml";
    std::ofstream(config) << extra_toml << provider_->ServerToml(clock_skew_seconds);
    auto server = ServerProcess::Start(dir_.path() / "data", {"--config", config.string()});
    ASSERT_TRUE(server) << "server did not start";
    server_.emplace(std::move(*server));
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& token,
             const Json& body = Json::object()) {
    auto client = server_->Client();
    std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + token}};
    if (method == "POST") headers.emplace_back("Content-Type", "application/json");
    auto response = client.Request(method, path, method == "POST" ? body.dump() : "", headers);
    Reply reply;
    if (!response.ok()) return reply;
    reply.status = response->status;
    reply.body = Json::parse(response->body, nullptr, false);
    for (const auto& [name, value] : response->headers)
      if (name == "retry-after" || name == "Retry-After") reply.retry_after = value;
    return reply;
  }

  // The server fetches the provider's keys on its own thread after start: wait until it has them.
  Reply WhoAmI(const std::string& token) {
    Reply reply;
    for (int i = 0; i < 100; ++i) {
      reply = Call("GET", "/v1/admin/whoami", token);
      if (reply.status != 503 && reply.retry_after.empty()) return reply;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return reply;
  }

  Json Rule(const std::string& id) {
    return Json{{"id", id},
                {"title", "Ban " + id},
                {"targets", Json::array({Json{{"kind", "deb"}, {"value", id}}})},
                {"action", "remove"},
                {"rationale", "unacceptable risk"},
                {"authority", "CIO"}};
  }

  TempDir dir_;
  std::optional<OidcProvider> provider_;
  std::optional<ServerProcess> server_;
};

TEST_F(IdentityTest, TwoSignedInPeopleProposeAndApproveAndTheAuditChainSaysWhoAndHow) {
  StartAll();
  std::string alice = provider_->SignIn("alice");
  std::string bob = provider_->SignIn("bob");
  ASSERT_FALSE(alice.empty());
  ASSERT_FALSE(bob.empty());

  Reply who = WhoAmI(alice);
  ASSERT_EQ(who.status, 200) << who.body.dump();
  EXPECT_EQ(who.body["method"], "oidc");
  EXPECT_EQ(who.body["role"], "admin");  // from the provider's roles claim
  EXPECT_EQ(who.body["user"]["issuer"], provider_->issuer());
  EXPECT_EQ(who.body["user"]["subject"], "alice");
  EXPECT_EQ(who.body["user"]["display_name"], "Alice Martin");
  EXPECT_EQ(who.body["user"]["kind"], "human");

  ASSERT_EQ(Call("POST", "/v1/admin/rules", alice, Rule("wechat")).status, 201);
  Reply self = Call("POST", "/v1/admin/rules/wechat/approve", alice);
  EXPECT_EQ(self.status, 409);
  EXPECT_EQ(self.Code(), "two_person_rule");
  EXPECT_NE(self.Message().find("Alice Martin"), std::string::npos) << self.Message();
  Reply approved = Call("POST", "/v1/admin/rules/wechat/approve", bob, Json{{"note", "reviewed"}});
  ASSERT_EQ(approved.status, 200) << approved.body.dump();
  EXPECT_EQ(Call("POST", "/v1/admin/rules/wechat/publish", alice).status, 200);

  // The audit chain records who (issuer, subject, name), how (oidc), from where and through which channel.
  Reply audit = Call("GET", "/v1/admin/audit", bob);
  ASSERT_EQ(audit.status, 200);
  bool saw_bob_approve = false;
  for (const Json& entry : audit.body["entries"]) {
    if (entry.value("action", "") != "rule.approve") continue;
    saw_bob_approve = true;
    const Json& identity = entry["identity"];
    EXPECT_EQ(identity["issuer"], provider_->issuer());
    EXPECT_EQ(identity["subject"], "bob");
    EXPECT_EQ(identity["actor_name"], "Bob Tremblay");
    EXPECT_EQ(identity["method"], "oidc");
    EXPECT_EQ(identity["source"], "127.0.0.1");
    EXPECT_EQ(identity["channel"], "api");
  }
  EXPECT_TRUE(saw_bob_approve) << audit.body.dump();
  Reply verified = Call("GET", "/v1/admin/audit/verify", bob);
  EXPECT_EQ(verified.status, 200);
  EXPECT_EQ(verified.body.value("ok", false), true) << verified.body.dump();

  // appban audit list shows the same on the host.
  auto listed =
      testing::RunCommand({testing::AppbanBinary(), "audit", "list", "--data", (dir_.path() / "data").string()});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("Bob Tremblay"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("oidc"), std::string::npos) << listed.out;
}

TEST_F(IdentityTest, AQuorumOfThreeSignedInPeopleRevokesAPublishedRuleAndGrantsAWaiver) {
  StartAll({}, 60, "[identity]\nquorum = 3\n");
  std::string alice = provider_->SignIn("alice");
  std::string bob = provider_->SignIn("bob");
  std::string dave = provider_->SignIn("dave");
  std::string bob_again = provider_->SignIn("bob");
  ASSERT_EQ(WhoAmI(alice).status, 200);

  // A rule alice proposes needs bob and dave.
  ASSERT_EQ(Call("POST", "/v1/admin/rules", alice, Rule("zoom")).status, 201);
  Reply first = Call("POST", "/v1/admin/rules/zoom/approve", bob);
  ASSERT_EQ(first.status, 202) << first.body.dump();
  EXPECT_EQ(first.body["change"]["needs"], 1);
  Reply twice = Call("POST", "/v1/admin/rules/zoom/approve", bob_again);
  EXPECT_EQ(twice.status, 409) << "bob's second sign-in is still bob";
  EXPECT_NE(twice.Message().find("already approved"), std::string::npos) << twice.Message();
  ASSERT_EQ(Call("POST", "/v1/admin/rules/zoom/approve", dave).status, 200);
  ASSERT_EQ(Call("POST", "/v1/admin/rules/zoom/publish", alice).status, 200);

  // Revoking it: proposed by bob; a service account bob owns does not count; alice and dave do.
  Reply proposed = Call("POST", "/v1/admin/rules/zoom/revoke", bob, Json{{"reason", "contract signed"}});
  ASSERT_EQ(proposed.status, 202) << proposed.body.dump();
  std::string change = "/v1/admin/changes/" + proposed.body["change"]["id"].get<std::string>();
  Reply account = Call("POST", "/v1/admin/service-accounts", bob, Json{{"name", "bob-ci"}, {"role", "admin"}});
  ASSERT_EQ(account.status, 201) << account.body.dump();
  Reply minted = Call("POST", "/v1/admin/tokens", bob,
                      Json{{"name", "ci"}, {"role", "admin"}, {"service_account", account.body["id"]}});
  ASSERT_EQ(minted.status, 201) << minted.body.dump();
  EXPECT_EQ(Call("POST", change + "/approve", minted.body["token"].get<std::string>()).status, 409);
  ASSERT_EQ(Call("POST", change + "/approve", alice).status, 202);
  EXPECT_EQ(Call("GET", "/v1/admin/rules/zoom", alice).body["state"], "published") << "two of three revoke nothing";
  Reply revoked = Call("POST", change + "/approve", dave, Json{{"note", "agreed"}});
  ASSERT_EQ(revoked.status, 200) << revoked.body.dump();
  EXPECT_EQ(revoked.body["result"]["state"], "revoked");

  // The audit chain names each person and how they signed in.
  Reply audit = Call("GET", "/v1/admin/audit", alice);
  std::vector<std::string> approvers;
  for (const Json& entry : audit.body["entries"]) {
    if (entry.value("action", "") == "change.approve" &&
        entry.value("object", "") == "change:" + proposed.body["change"]["id"].get<std::string>()) {
      approvers.push_back(entry["identity"].value("actor_name", ""));
      EXPECT_EQ(entry["identity"].value("method", ""), "oidc");
    }
  }
  EXPECT_EQ(approvers, (std::vector<std::string>{"Alice Martin", "Dave Okafor"}));
  EXPECT_EQ(Call("GET", "/v1/admin/audit/verify", alice).body.value("ok", false), true);
}

TEST_F(IdentityTest, TheSamePersonThroughTwoTokensOrAServiceAccountIsRefused) {
  StartAll();
  std::string alice = provider_->SignIn("alice");
  std::string alice_again = provider_->SignIn("alice");
  std::string bob = provider_->SignIn("bob");
  ASSERT_EQ(WhoAmI(alice).status, 200);
  ASSERT_NE(alice, alice_again);

  ASSERT_EQ(Call("POST", "/v1/admin/rules", alice, Rule("tiktok")).status, 201);
  // A second sign-in is the same identity.
  EXPECT_EQ(Call("POST", "/v1/admin/rules/tiktok/approve", alice_again).Code(), "two_person_rule");
  // An API token alice mints is hers, whatever its name says.
  Reply minted = Call("POST", "/v1/admin/tokens", alice, Json{{"name", "bob"}, {"role", "admin"}});
  ASSERT_EQ(minted.status, 201) << minted.body.dump();
  std::string named_bob = minted.body["token"];
  EXPECT_EQ(minted.body["user_id"], WhoAmI(alice).body["actor"]);
  Reply through_token = Call("POST", "/v1/admin/rules/tiktok/approve", named_bob);
  EXPECT_EQ(through_token.status, 409);
  EXPECT_EQ(through_token.Code(), "two_person_rule");

  // A service account alice owns cannot approve anything, not even bob's proposal.
  Reply account = Call("POST", "/v1/admin/service-accounts", alice, Json{{"name", "ci-pipeline"}, {"role", "admin"}});
  ASSERT_EQ(account.status, 201) << account.body.dump();
  EXPECT_EQ(account.body["kind"], "service");
  std::string account_id = account.body["id"];
  Reply robot =
      Call("POST", "/v1/admin/tokens", alice, Json{{"name", "ci"}, {"role", "admin"}, {"service_account", account_id}});
  ASSERT_EQ(robot.status, 201) << robot.body.dump();
  std::string robot_token = robot.body["token"];
  ASSERT_EQ(Call("POST", "/v1/admin/rules", bob, Rule("deepseek")).status, 201);
  Reply by_robot = Call("POST", "/v1/admin/rules/deepseek/approve", robot_token);
  EXPECT_EQ(by_robot.status, 409);
  EXPECT_NE(by_robot.Message().find("service account"), std::string::npos) << by_robot.Message();
  // bob cannot mint a token for alice's service account.
  EXPECT_EQ(
      Call("POST", "/v1/admin/tokens", bob, Json{{"name", "x"}, {"role", "admin"}, {"service_account", account_id}})
          .status,
      403);
  // Service accounts and their owners are listed.
  Reply users = Call("GET", "/v1/admin/users", bob);
  ASSERT_EQ(users.status, 200);
  bool listed = false;
  for (const Json& user : users.body["users"]) {
    if (user["id"] == account_id) listed = user["owner_id"] == WhoAmI(alice).body["actor"];
  }
  EXPECT_TRUE(listed) << users.body.dump();
  // The other person approves.
  EXPECT_EQ(Call("POST", "/v1/admin/rules/tiktok/approve", bob).status, 200);
}

TEST_F(IdentityTest, BadTokensAreRefusedWithAClearReason) {
  StartAll();
  std::string alice = provider_->SignIn("alice");
  ASSERT_EQ(WhoAmI(alice).status, 200);

  // A token the same provider issued to another application.
  std::string other_app = provider_->SignIn("alice", "other-app");
  ASSERT_FALSE(other_app.empty());
  Reply wrong_audience = Call("GET", "/v1/admin/whoami", other_app);
  EXPECT_EQ(wrong_audience.status, 401);
  EXPECT_NE(wrong_audience.Message().find("audience other-app"), std::string::npos) << wrong_audience.Message();

  size_t first_dot = alice.find('.');
  size_t second_dot = alice.find('.', first_dot + 1);
  std::string payload = alice.substr(first_dot + 1, second_dot - first_dot - 1);
  // alg none: the real claims, unsigned.
  std::string none = mdm::Base64UrlEncode(R"({"alg":"none"})") + "." + payload + ".";
  Reply unsigned_token = Call("GET", "/v1/admin/whoami", none);
  EXPECT_EQ(unsigned_token.status, 401);
  EXPECT_NE(unsigned_token.Message().find("alg none is refused"), std::string::npos) << unsigned_token.Message();
  // HS256 "signed" with the provider's public key.
  std::string hmac = mdm::Base64UrlEncode(R"({"alg":"HS256"})") + "." + payload + "." + mdm::Base64UrlEncode("mac");
  Reply hs = Call("GET", "/v1/admin/whoami", hmac);
  EXPECT_EQ(hs.status, 401);
  EXPECT_NE(hs.Message().find("HS256 is refused"), std::string::npos) << hs.Message();
  // alice's signature over claims edited to say bob.
  auto claims = identity::Base64UrlDecode(payload);
  ASSERT_TRUE(claims.ok());
  Json edited = Json::parse(*claims);
  edited["sub"] = "bob";
  std::string forged =
      alice.substr(0, first_dot) + "." + mdm::Base64UrlEncode(edited.dump()) + alice.substr(second_dot);
  Reply tampered = Call("GET", "/v1/admin/whoami", forged);
  EXPECT_EQ(tampered.status, 401);
  EXPECT_NE(tampered.Message().find("signature does not verify"), std::string::npos) << tampered.Message();
  // Garbage never gets a 500.
  EXPECT_EQ(Call("GET", "/v1/admin/whoami", "a.b.c").status, 401);
  // A person the provider knows but who holds no appban role.
  std::string eve = provider_->SignIn("eve");
  Reply no_role = Call("GET", "/v1/admin/whoami", eve);
  EXPECT_EQ(no_role.status, 403);
  EXPECT_NE(no_role.Message().find("no appban role"), std::string::npos) << no_role.Message();
}

TEST_F(IdentityTest, AnExpiredTokenSaysWhenItExpired) {
  OidcProvider::Options options;
  options.id_token_ttl_seconds = 2;
  StartAll(options, /*clock_skew_seconds=*/0);
  std::string alice = provider_->SignIn("alice");
  ASSERT_EQ(WhoAmI(alice).status, 200);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  Reply expired = Call("GET", "/v1/admin/whoami", alice);
  EXPECT_EQ(expired.status, 401);
  EXPECT_NE(expired.Message().find("token expired at 20"), std::string::npos) << expired.Message();
}

TEST_F(IdentityTest, KeyRolloverAtTheProviderIsFollowed) {
  StartAll();
  std::string before = provider_->SignIn("alice");
  ASSERT_EQ(WhoAmI(before).status, 200);
  ASSERT_TRUE(provider_->RotateKeys());
  std::string after = provider_->SignIn("alice");
  ASSERT_FALSE(after.empty());
  auto header_of = [](const std::string& token) {
    return Json::parse(*identity::Base64UrlDecode(token.substr(0, token.find('.'))));
  };
  ASSERT_NE(header_of(before)["kid"], header_of(after)["kid"]) << "the provider did not roll its key over";
  // The first request with the new key asks the server to refresh the provider's keys; it answers
  // 401 with Retry-After, and a retry shortly after succeeds.
  Reply first = Call("GET", "/v1/admin/whoami", after);
  if (first.status == 401) {
    EXPECT_FALSE(first.retry_after.empty());
    EXPECT_NE(first.Message().find("being refreshed"), std::string::npos) << first.Message();
  }
  EXPECT_EQ(WhoAmI(after).status, 200);
  // The old key is still published, so tokens signed before the rollover stay valid until they expire.
  EXPECT_EQ(Call("GET", "/v1/admin/whoami", before).status, 200);
}

TEST_F(IdentityTest, AnUnreachableProviderLeavesDevicesAndApiTokensWorking) {
  StartAll();
  std::string alice = provider_->SignIn("alice");
  provider_->Stop();  // before the server ever reached it? It may have: either way devices must not care.
  auto client = server_->Client();
  auto health = client.Request("GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  // The bootstrap admin's API token does not depend on the provider.
  Reply enrol = Call("POST", "/v1/admin/enrollment-tokens", server_->admin_token(), Json{{"count", 1}});
  EXPECT_EQ(enrol.status, 201) << enrol.body.dump();
  // A provider token is answered quickly either way: from the cached keys, or 503 naming the provider.
  auto start = std::chrono::steady_clock::now();
  Reply answer = Call("GET", "/v1/admin/whoami", alice);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(answer.status == 200 || answer.status == 503) << answer.status << " " << answer.body.dump();
  EXPECT_NE(answer.status, 500);
}

}  // namespace
}  // namespace appban
