// The real `appban server` on a loopback port, driven like a device and like administrators:
// enrolment, check-in, a published ban reaching a long-poll, the device verifying the bundle and
// reporting the removal, compliance moving; plus the hostile-input and durability cases.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "appban/net/client.h"
#include "appban/policy/bundle.h"
#include "appban/policy/keys.h"
#include "appban/policy/model.h"
#include "appban/protocol/messages.h"
#include "appban/store/postgres.h"
#include "appban/store/postgres_test_cluster.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::ServerProcess;
using testing::TempDir;

using Headers = std::vector<std::pair<std::string, std::string>>;

Headers Bearer(const std::string& token) { return {{"authorization", "Bearer " + token}}; }

Json Body(const net::HttpResponse& response) { return Json::parse(response.body, nullptr, false); }

std::string ErrorMessage(const net::HttpResponse& response) {
  Json body = Body(response);
  if (!body.is_object() || !body.contains("error")) return "";
  return body["error"].value("message", "");
}

// A device as the tests drive it: its credential and the policy keys it pinned at enrolment.
struct TestDevice {
  std::string id;
  std::string credential;
  std::vector<policy::PublicKey> keys;
};

class ServerTest : public ::testing::Test {
 protected:
  // "sqlite" (the embedded default) or "postgres" (a database of the run's test cluster).
  virtual std::string Backend() const { return "sqlite"; }

  void SetUp() override {
    std::string database_toml;
    if (Backend() == "postgres") {
      auto cluster = store::PostgresTestCluster::Shared();
      ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
      auto url = (*cluster)->CreateDatabase();
      ASSERT_TRUE(url.ok()) << url.status().ToString();
      database_url_ = *url;
      database_toml = "database = \"" + database_url_ + "\"\n";
    }
    // Administrators are people signed in at an OpenID Connect provider: the bootstrap admin
    // proposes, bob (signed in at the test provider) approves.
    auto provider = testing::OidcProvider::Start(dir_.path() / "idp");
    ASSERT_TRUE(provider.has_value()) << "the OpenID Connect provider did not start";
    provider_.emplace(std::move(*provider));
    std::filesystem::path config = dir_.path() / "server.toml";
    std::ofstream(config) << database_toml << ExtraTopLevelToml() << provider_->ServerToml();
    start_flags_ = {"--config", config.string()};
    for (const auto& flag : ExtraFlags()) start_flags_.push_back(flag);
    auto started = ServerProcess::Start(dir_.path() / "data", start_flags_);
    ASSERT_TRUE(started.has_value()) << "server did not start";
    server_.emplace(std::move(*started));
    ASSERT_FALSE(server_->admin_token().empty()) << server_->output();
    admin_ = server_->admin_token();
  }

  void TearDown() override {
    server_.reset();  // its connections end with it
    if (database_url_.empty()) return;
    if (auto cluster = store::PostgresTestCluster::Shared(); cluster.ok()) {
      (void)(*cluster)->DropDatabase(store::PostgresTestCluster::DatabaseOf(database_url_));
    }
  }

  virtual std::vector<std::string> ExtraFlags() const { return {}; }
  // Top-level keys added to the server's configuration file.
  virtual std::string ExtraTopLevelToml() const { return ""; }

  net::HttpResponse Call(const std::string& method, const std::string& path, const std::string& body,
                         const Headers& headers) {
    auto client = server_->Client();
    auto response = client.Request(method, path, body, headers);
    EXPECT_TRUE(response.ok()) << method << " " << path << ": " << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }
  net::HttpResponse Admin(const std::string& method, const std::string& path, const Json& body = nullptr,
                          const std::string& token = "") {
    return Call(method, path, body.is_null() ? "" : body.dump(), Bearer(token.empty() ? admin_ : token));
  }

  // A second administrator: the two-person rule needs one person to propose and another to
  // approve. bob signs in at the provider; the server may still be fetching its keys.
  std::string SecondAdmin() {
    std::string bob = provider_->SignIn("bob");
    for (int i = 0; i < 100; ++i) {
      auto who = Admin("GET", "/v1/admin/whoami", nullptr, bob);
      if (who.status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return bob;
  }

  std::string EnrollmentToken(const std::string& group = "") {
    Json request = {{"count", 1}, {"ttl_seconds", 3600}};
    if (!group.empty()) request["group"] = group;
    auto created = Admin("POST", "/v1/admin/enrollment-tokens", request);
    EXPECT_EQ(created.status, 201) << created.body;
    Json body = Body(created);
    if (!body.contains("tokens") || body["tokens"].empty()) return "";
    return body["tokens"][0].value("token", "");
  }

  TestDevice Enroll(const std::string& hostname) {
    protocol::EnrollRequest request{EnrollmentToken(), hostname, "linux", "test"};
    auto enrolled = Call("POST", "/v1/enroll", protocol::ToJson(request).dump(), {});
    EXPECT_EQ(enrolled.status, 201) << enrolled.body;
    auto parsed = protocol::ParseEnrollResponse(enrolled.body);
    EXPECT_TRUE(parsed.ok()) << enrolled.body;
    TestDevice device;
    if (!parsed.ok()) return device;
    device.id = parsed->device_id;
    device.credential = parsed->credential;
    for (const auto& pem : parsed->policy_keys_pem) {
      auto key = policy::ParsePublicKeyPem(pem);
      EXPECT_TRUE(key.ok());
      if (key.ok()) device.keys.push_back(*key);
    }
    return device;
  }

  net::HttpResponse Checkin(const TestDevice& device, const protocol::CheckinRequest& request) {
    return Call("POST", "/v1/checkin", protocol::ToJson(request).dump(), Bearer(device.credential));
  }

  // A rule removing the Debian package `package`, as an administrator would propose it.
  static policy::Rule BanRule(const std::string& rule_id, const std::string& package) {
    policy::Rule rule;
    rule.id = rule_id;
    rule.title = "Ban " + package + " on government devices";
    rule.targets.push_back(*policy::MakeTarget(policy::TargetKind::kDebPackage, package));
    rule.action = policy::Action::kRemove;
    rule.rationale = "privacy and security risk";
    rule.authority = "Chief Information Officer";
    return rule;
  }

  // Proposes (alice), approves (bob), publishes the rule and issues a bundle.
  Json PublishBan(const std::string& rule_id, const std::string& package) {
    auto proposed = Admin("POST", "/v1/admin/rules", policy::RuleToJson(BanRule(rule_id, package), false));
    EXPECT_EQ(proposed.status, 201) << proposed.body;
    std::string bob = SecondAdmin();
    auto approved = Admin("POST", "/v1/admin/rules/" + rule_id + "/approve", Json::object(), bob);
    EXPECT_EQ(approved.status, 200) << approved.body;
    auto published = Admin("POST", "/v1/admin/rules/" + rule_id + "/publish", Json::object());
    EXPECT_EQ(published.status, 200) << published.body;
    auto bundle = Admin("POST", "/v1/admin/publish", Json::object());
    EXPECT_EQ(bundle.status, 201) << bundle.body;
    return Body(bundle);
  }

  // The bundle a device polling from `since` is handed now, verified with the keys it pinned.
  std::optional<policy::Bundle> FetchBundle(const TestDevice& device, int64_t since) {
    auto polled = Call("GET", "/v1/poll?version=" + std::to_string(since), "", Bearer(device.credential));
    EXPECT_EQ(polled.status, 200) << polled.body;
    auto pushed = protocol::ParsePollResponse(polled.body);
    if (!pushed.ok() || !pushed->bundle.has_value()) {
      ADD_FAILURE() << "no bundle in the poll answer: " << polled.body;
      return std::nullopt;
    }
    policy::VerifyOptions options;
    options.trusted_keys = device.keys;
    options.now = std::time(nullptr);
    auto verified = policy::VerifyBundle(*pushed->bundle, options);
    if (!verified.ok()) {
      ADD_FAILURE() << "the bundle does not verify with the device's keys: " << verified.status().ToString();
      return std::nullopt;
    }
    return std::move(verified->bundle);
  }

  TempDir dir_;
  std::vector<std::string> start_flags_;  // what a restart passes again
  std::string database_url_;              // PostgreSQL: the test's database
  std::optional<ServerProcess> server_;
  std::optional<testing::OidcProvider> provider_;
  std::string admin_;
};

// The tests that hold whatever the database: the server on SQLite and on PostgreSQL.
class ServerOnEveryBackend : public ServerTest, public ::testing::WithParamInterface<std::string> {
 protected:
  std::string Backend() const override { return GetParam(); }
};
INSTANTIATE_TEST_SUITE_P(Backends, ServerOnEveryBackend, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// Several nodes on one PostgreSQL database (docs/postgresql.md "Several nodes"): node B is started
// from a copy of node A's data directory (the policy keys and the TLS CA every node must share).
//
// The nodes look for bundles themselves only every 600 s here: what wakes node B within the test's
// time is the notification node A's publish sends (LISTEN/NOTIFY), or a listener's look after it
// connects again.
class TwoNodesOnPostgres : public ServerTest {
 protected:
  std::string Backend() const override { return "postgres"; }
  std::string ExtraTopLevelToml() const override { return "database_catch_up_seconds = 600\n"; }

  // What a database restart or failover does to a node: every session of the test's database is
  // ended by the server, which is back when this returns (the ended sessions are gone). Returns how
  // many were ended.
  int64_t EndEveryDatabaseSession() {
    auto admin = store::postgres::Connection::Open(database_url_);
    EXPECT_TRUE(admin.ok()) << admin.status().ToString();
    if (!admin.ok()) return 0;
    auto ended = admin->Query(
        "WITH victims AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()) SELECT array_agg(pid) FROM victims WHERE pg_terminate_backend(pid)");
    EXPECT_TRUE(ended.ok()) << ended.status().ToString();
    if (!ended.ok() || ended->IsNull(0, 0)) return 0;
    std::string pids = ended->Text(0, 0);  // "{123,456}"
    for (int wait = 0; wait < 500; ++wait) {
      auto left = admin->Query("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", {pids});
      if (!left.ok() || (left->Int(0, 0).ok() && *left->Int(0, 0) == 0)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return static_cast<int64_t>(std::count(pids.begin(), pids.end(), ',') + 1);
  }

  // Node B: started from a copy of node A's data directory (the keys and CA every node shares).
  std::optional<ServerProcess> StartNodeB() {
    std::filesystem::path data_b = dir_.path() / "data-b";
    std::filesystem::copy(dir_.path() / "data", data_b, std::filesystem::copy_options::recursive);
    return ServerProcess::Start(data_b, start_flags_);
  }
  static net::HttpResponse On(ServerProcess& node, const std::string& method, const std::string& path,
                              const std::string& body, const Headers& headers) {
    auto response = node.Client().Request(method, path, body, headers);
    EXPECT_TRUE(response.ok()) << method << " " << path << ": " << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }
};

std::vector<policy::InstalledApp> Apps(std::initializer_list<const char*> names) {
  std::vector<policy::InstalledApp> apps;
  for (const char* name : names) apps.push_back({policy::Platform::kDeb, name, "1.0", "", ""});
  return apps;
}

protocol::CheckinRequest CheckinWith(const std::vector<policy::InstalledApp>& apps, bool send_inventory,
                                     int64_t applied_version = 0, const std::string& rules_hash = "") {
  protocol::CheckinRequest request;
  request.applied_version = applied_version;
  request.rules_hash = rules_hash;
  request.inventory_hash = protocol::InventoryHash(apps);
  if (send_inventory) request.inventory = apps;
  return request;
}

TEST_P(ServerOnEveryBackend, PublishedBanReachesTheDeviceAndComplianceFollowsItsRemoval) {
  TestDevice device = Enroll("ws-0001");
  ASSERT_FALSE(device.credential.empty());
  ASSERT_EQ(device.keys.size(), 1u);
  auto apps = Apps({"bash", "wechat", "firefox-esr"});

  // First check-in without the inventory: the server asks for it.
  auto first = Checkin(device, CheckinWith(apps, false));
  ASSERT_EQ(first.status, 200) << first.body;
  auto first_answer = protocol::ParseCheckinResponse(first.body);
  ASSERT_TRUE(first_answer.ok()) << first.body;
  EXPECT_TRUE(first_answer->send_inventory);
  EXPECT_EQ(first_answer->latest_version, 0);
  auto second = Checkin(device, CheckinWith(apps, true));
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_FALSE(protocol::ParseCheckinResponse(second.body)->send_inventory);

  // The device waits on the long-poll; a publish must wake it.
  auto poll = std::async(std::launch::async, [&] {
    auto client = server_->Client();
    return client.Request("GET", "/v1/poll?version=0", "", Bearer(device.credential));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Json published = PublishBan("gc-ban-wechat", "wechat");
  ASSERT_EQ(published.value("version", 0), 1) << published.dump();
  ASSERT_EQ(poll.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "the publish did not wake the poll";
  auto woke = poll.get();
  ASSERT_TRUE(woke.ok()) << woke.status().ToString();
  ASSERT_EQ(woke->status, 200);
  auto pushed = protocol::ParsePollResponse(woke->body);
  ASSERT_TRUE(pushed.ok() && pushed->bundle.has_value()) << woke->body;
  EXPECT_EQ(pushed->latest_version, 1);

  // The device verifies the bundle with the key it pinned, and finds the ban.
  policy::VerifyOptions options;
  options.trusted_keys = device.keys;
  options.now = std::time(nullptr);
  auto verified = policy::VerifyBundle(*pushed->bundle, options);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  ASSERT_EQ(verified->bundle.rules.size(), 1u);
  EXPECT_EQ(verified->bundle.rules[0].id, "gc-ban-wechat");

  // Before the device reports, it is pending.
  auto pending = Admin("GET", "/v1/admin/compliance/rules/gc-ban-wechat");
  ASSERT_EQ(pending.status, 200) << pending.body;
  Json pending_body = Body(pending)["rule"];
  EXPECT_EQ(pending_body.value("targeted", -1), 1) << pending.body;
  EXPECT_EQ(pending_body.value("pending", -1), 1) << pending.body;
  EXPECT_EQ(pending_body.value("compliant", -1), 0) << pending.body;

  // It removes wechat and reports it.
  auto after = Apps({"bash", "firefox-esr"});
  auto report = CheckinWith(after, true, 1, verified->bundle.rules_hash);
  report.events.push_back({1, static_cast<int64_t>(std::time(nullptr)), protocol::EventKind::kRemoved, "deb", "wechat",
                           "gc-ban-wechat", ""});
  auto reported = Checkin(device, report);
  ASSERT_EQ(reported.status, 200) << reported.body;
  auto reported_answer = protocol::ParseCheckinResponse(reported.body);
  ASSERT_TRUE(reported_answer.ok());
  EXPECT_EQ(reported_answer->events_acked, 1);
  EXPECT_FALSE(reported_answer->bundle.has_value()) << "the device already holds the latest bundle";

  auto compliance = Admin("GET", "/v1/admin/compliance/rules/gc-ban-wechat");
  ASSERT_EQ(compliance.status, 200);
  Json rule = Body(compliance)["rule"];
  EXPECT_EQ(rule.value("targeted", -1), 1) << compliance.body;
  EXPECT_EQ(rule.value("compliant", -1), 1) << compliance.body;
  EXPECT_EQ(rule.value("remediated", -1), 1) << compliance.body;
  EXPECT_EQ(rule.value("pending", -1), 0) << compliance.body;
  EXPECT_EQ(rule.value("violating", -1), 0) << compliance.body;

  // The administrator sees the device with its inventory and the removal event.
  auto shown = Admin("GET", "/v1/admin/devices/" + device.id);
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_NE(shown.body.find("firefox-esr"), std::string::npos);
  EXPECT_NE(shown.body.find("\"removed\""), std::string::npos);

  // Every administrative step is in the audit chain, which verifies.
  auto audit = Admin("GET", "/v1/admin/audit/verify");
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_EQ(Body(audit).value("ok", false), true) << audit.body;

  // /metrics counts what happened.
  auto metrics = Call("GET", "/metrics", "", {});
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("appban_checkins_total"), std::string::npos);
  EXPECT_NE(metrics.body.find("appban_policy_version 1"), std::string::npos) << metrics.body.substr(0, 4000);
}

TEST_P(ServerOnEveryBackend, AViolatingDeviceIsReportedAsSuch) {
  TestDevice device = Enroll("ws-0002");
  auto apps = Apps({"wechat"});
  ASSERT_EQ(Checkin(device, CheckinWith(apps, true)).status, 200);
  Json published = PublishBan("gc-ban-wechat", "wechat");
  // The device applies the bundle but its removal fails.
  auto get = Checkin(device, CheckinWith(apps, false));
  auto bundle = protocol::ParseCheckinResponse(get.body);
  ASSERT_TRUE(bundle.ok() && bundle->bundle.has_value()) << get.body;
  auto failed = CheckinWith(apps, false, 1, published.value("rules_hash", ""));
  failed.events.push_back({1, static_cast<int64_t>(std::time(nullptr)), protocol::EventKind::kRemoveFailed, "deb",
                           "wechat", "gc-ban-wechat", "dpkg: error processing package wechat"});
  ASSERT_EQ(Checkin(device, failed).status, 200);
  auto compliance = Admin("GET", "/v1/admin/compliance/rules/gc-ban-wechat");
  Json rule = Body(compliance)["rule"];
  EXPECT_EQ(rule.value("violating", -1), 1) << compliance.body;
  EXPECT_EQ(rule.value("compliant", -1), 0) << compliance.body;
}

// The value of an unlabelled sample in a Prometheus exposition ("" when absent).
std::string MetricSample(const std::string& exposition, const std::string& series) {
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(series + " ")) return line.substr(series.size() + 1);
  }
  return "";
}

// Hardening item 5: a device that claims the latest version but reports another rules_hash used
// to count as compliant. It is "mismatch" until it reports the hash the version was issued with.
TEST_P(ServerOnEveryBackend, AWrongRulesHashIsAMismatchNotComplianceUntilTheRightOneIsReported) {
  TestDevice device = Enroll("ws-0009");
  auto apps = Apps({"bash"});
  ASSERT_EQ(Checkin(device, CheckinWith(apps, true)).status, 200);
  Json published = PublishBan("gc-ban-wechat", "wechat");
  const std::string issued = published.value("rules_hash", "");
  ASSERT_EQ(issued.size(), 64u) << published.dump();
  const std::string forged(64, 'f');

  auto lied = Checkin(device, CheckinWith(apps, false, 1, forged));
  ASSERT_EQ(lied.status, 200) << lied.body;
  auto lied_answer = protocol::ParseCheckinResponse(lied.body);
  ASSERT_TRUE(lied_answer.ok()) << lied.body;
  EXPECT_TRUE(lied_answer->rules_hash_mismatch) << lied.body;
  EXPECT_TRUE(lied_answer->bundle.has_value()) << "the device is sent the signed bundle to apply again";

  Json fleet = Body(Admin("GET", "/v1/admin/compliance"));
  EXPECT_EQ(fleet["rules"][0].value("mismatch", -1), 1) << fleet.dump();
  EXPECT_EQ(fleet["rules"][0].value("compliant", -1), 0) << fleet.dump();
  EXPECT_EQ(fleet["totals"].value("mismatch_any", -1), 1) << fleet.dump();
  EXPECT_EQ(fleet["totals"].value("fully_compliant", -1), 0) << fleet.dump();
  Json rule = Body(Admin("GET", "/v1/admin/compliance/rules/gc-ban-wechat"));
  EXPECT_EQ(rule["mismatch_devices"], Json::array({device.id})) << rule.dump();
  Json per_device = Body(Admin("GET", "/v1/admin/compliance/devices/" + device.id));
  EXPECT_EQ(per_device["rules"][0].value("status", ""), "mismatch") << per_device.dump();
  Json shown = Body(Admin("GET", "/v1/admin/devices/" + device.id));
  Json mismatch = shown["rules_hash_mismatch"];
  ASSERT_TRUE(mismatch.is_object()) << shown.dump();
  EXPECT_EQ(mismatch.value("applied_version", -1), 1);
  EXPECT_EQ(mismatch.value("reported_rules_hash", ""), forged);
  EXPECT_EQ(mismatch.value("expected_rules_hash", ""), issued);
  EXPECT_FALSE(mismatch.value("since", "").empty());
  auto metrics = Call("GET", "/metrics", "", {});
  EXPECT_EQ(MetricSample(metrics.body, "appban_devices_rules_hash_mismatch"), "1") << metrics.body;
  EXPECT_EQ(MetricSample(metrics.body, "appban_checkins_rules_hash_mismatch_total"), "1");
  EXPECT_EQ(MetricSample(metrics.body, "appban_compliance_devices{state=\"mismatch\"}"), "1");

  // The same lie again changes nothing; the right hash makes the device compliant.
  ASSERT_EQ(Checkin(device, CheckinWith(apps, false, 1, forged)).status, 200);
  auto honest = Checkin(device, CheckinWith(apps, false, 1, issued));
  ASSERT_EQ(honest.status, 200) << honest.body;
  auto honest_answer = protocol::ParseCheckinResponse(honest.body);
  ASSERT_TRUE(honest_answer.ok()) << honest.body;
  EXPECT_FALSE(honest_answer->rules_hash_mismatch);
  EXPECT_FALSE(honest_answer->bundle.has_value());
  fleet = Body(Admin("GET", "/v1/admin/compliance"));
  EXPECT_EQ(fleet["rules"][0].value("mismatch", -1), 0) << fleet.dump();
  EXPECT_EQ(fleet["rules"][0].value("compliant", -1), 1) << fleet.dump();
  EXPECT_EQ(fleet["totals"].value("fully_compliant", -1), 1) << fleet.dump();
  EXPECT_TRUE(Body(Admin("GET", "/v1/admin/devices/" + device.id))["rules_hash_mismatch"].is_null());
  metrics = Call("GET", "/metrics", "", {});
  EXPECT_EQ(MetricSample(metrics.body, "appban_devices_rules_hash_mismatch"), "0") << metrics.body;
  EXPECT_EQ(MetricSample(metrics.body, "appban_checkins_rules_hash_mismatch_total"), "2");
}

TEST_P(ServerOnEveryBackend, CredentialsAreCheckedAndRevokedDevicesRefused) {
  TestDevice device = Enroll("ws-0003");
  auto body = protocol::ToJson(CheckinWith(Apps({"bash"}), true)).dump();
  auto missing = Call("POST", "/v1/checkin", body, {});
  EXPECT_EQ(missing.status, 401);
  std::string forged = device.credential.substr(0, device.credential.size() - 4) + "0000";
  if (forged == device.credential) forged = device.credential.substr(0, device.credential.size() - 4) + "1111";
  EXPECT_EQ(Call("POST", "/v1/checkin", body, Bearer(forged)).status, 401);
  EXPECT_EQ(Call("POST", "/v1/checkin", body, Bearer("d-0000000000000000." + std::string(64, 'a'))).status, 401);
  EXPECT_EQ(Call("POST", "/v1/checkin", body, Bearer(device.credential)).status, 200);

  // Admin API: no token, a wrong token, a weaker role.
  EXPECT_EQ(Call("GET", "/v1/admin/devices", "", {}).status, 401);
  EXPECT_EQ(Call("GET", "/v1/admin/devices", "", Bearer("t-0000000000000000." + std::string(64, 'b'))).status, 401);
  auto auditor = Admin("POST", "/v1/admin/tokens", {{"name", "carol"}, {"role", "auditor"}});
  ASSERT_EQ(auditor.status, 201) << auditor.body;
  std::string carol = Body(auditor).value("token", "");
  EXPECT_EQ(Admin("GET", "/v1/admin/devices", nullptr, carol).status, 200);
  EXPECT_EQ(Admin("POST", "/v1/admin/devices/" + device.id + "/revoke", {{"reason", "lost"}}, carol).status, 403);

  auto revoked = Admin("POST", "/v1/admin/devices/" + device.id + "/revoke", {{"reason", "reported stolen"}});
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  auto refused = Call("POST", "/v1/checkin", body, Bearer(device.credential));
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(Body(refused)["error"].value("code", ""), "device_revoked");
}

TEST_P(ServerOnEveryBackend, EnrolmentTokensAreSingleUseAndEnrolmentIsRateLimited) {
  std::string token = EnrollmentToken();
  protocol::EnrollRequest request{token, "ws-a", "linux", "test"};
  ASSERT_EQ(Call("POST", "/v1/enroll", protocol::ToJson(request).dump(), {}).status, 201);
  auto again = Call("POST", "/v1/enroll", protocol::ToJson(request).dump(), {});
  EXPECT_EQ(again.status, 401);
  EXPECT_EQ(Body(again)["error"].value("code", ""), "token_invalid");
  EXPECT_NE(ErrorMessage(again).find("used"), std::string::npos) << again.body;

  // A burst of guesses from one address runs into the rate limit (default burst 10).
  int limited = 0;
  for (int i = 0; i < 40 && limited == 0; ++i) {
    protocol::EnrollRequest guess{"e-0000000000000000." + std::string(64, 'c'), "x", "linux", ""};
    auto answer = Call("POST", "/v1/enroll", protocol::ToJson(guess).dump(), {});
    if (answer.status == 429) {
      ++limited;
      bool has_retry_after = false;
      for (const auto& [name, value] : answer.headers)
        has_retry_after |= (name == "Retry-After" || name == "retry-after");
      EXPECT_TRUE(has_retry_after);
    } else {
      EXPECT_EQ(answer.status, 401);
    }
  }
  EXPECT_EQ(limited, 1) << "no 429 after 40 attempts";
}

TEST_F(ServerTest, HostileRequestsGetClearErrorsAndTheServerKeepsServing) {
  TestDevice device = Enroll("ws-0004");
  auto bad_json = Call("POST", "/v1/checkin", "{\"applied_version\":", Bearer(device.credential));
  EXPECT_EQ(bad_json.status, 400);
  auto unknown = Call("POST", "/v1/checkin",
                      "{\"applied_version\":0,\"inventory_hash\":\"" + std::string(64, 'a') + "\",\"colour\":\"red\"}",
                      Bearer(device.credential));
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(ErrorMessage(unknown).find("colour"), std::string::npos) << unknown.body;
  auto future_version = Call("POST", "/v1/checkin", protocol::ToJson(CheckinWith(Apps({"bash"}), true, 99)).dump(),
                             Bearer(device.credential));
  EXPECT_EQ(future_version.status, 400);
  auto wrong_method = Call("GET", "/v1/checkin", "", Bearer(device.credential));
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(Call("GET", "/v1/nothing-here", "", {}).status, 404);
  auto bad_poll = Call("GET", "/v1/poll?version=-3", "", Bearer(device.credential));
  EXPECT_EQ(bad_poll.status, 400);

  // Deep nesting, invalid UTF-8, numbers out of range: refused, never a crash.
  EXPECT_EQ(Call("POST", "/v1/enroll", std::string(5000, '[') + std::string(5000, ']'), {}).status, 400);
  EXPECT_EQ(Call("POST", "/v1/enroll", "{\"token\":\"\xff\xfe\",\"hostname\":\"h\",\"platform\":\"l\"}", {}).status,
            400);
  EXPECT_EQ(
      Call("POST", "/v1/checkin", "{\"applied_version\":1e400,\"inventory_hash\":\"\"}", Bearer(device.credential))
          .status,
      400);

  // The server still serves.
  EXPECT_EQ(Call("GET", "/healthz", "", {}).status, 200);
}

TEST_F(ServerTest, SlowClientsAreCutOff) {
  // A client that sends half a request line and stalls: the server must close the connection
  // after its header timeout (10 s by default) instead of holding it forever.
  auto url = net::ParseUrl(server_->url());
  ASSERT_TRUE(url.ok());
  // TLS: the handshake itself times out when the client sends nothing at all.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(url->port);
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  timeval wait{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  auto started = std::chrono::steady_clock::now();
  char byte = 0;
  ssize_t got = recv(fd, &byte, 1, 0);
  auto waited = std::chrono::steady_clock::now() - started;
  close(fd);
  EXPECT_EQ(got, 0) << "the server should close a silent connection";
  EXPECT_LT(waited, std::chrono::seconds(25));
}

TEST_P(ServerOnEveryBackend, AcknowledgedEventsSurviveKillDashNine) {
  TestDevice device = Enroll("ws-0005");
  auto apps = Apps({"bash"});
  auto request = CheckinWith(apps, true);
  for (int seq = 1; seq <= 20; ++seq) {
    request.events.push_back(
        {seq, 1700000000 + seq, protocol::EventKind::kInstallRefused, "deb", "wechat", "", "apt hook"});
  }
  auto acknowledged = Checkin(device, request);
  ASSERT_EQ(acknowledged.status, 200);
  ASSERT_EQ(protocol::ParseCheckinResponse(acknowledged.body)->events_acked, 20);

  EXPECT_EQ(server_->Stop(SIGKILL), 128 + SIGKILL);
  auto restarted = ServerProcess::Start(dir_.path() / "data", start_flags_);
  ASSERT_TRUE(restarted.has_value());
  server_.emplace(std::move(*restarted));
  EXPECT_TRUE(server_->admin_token().empty()) << "a second start must not print a new admin token";

  auto shown = Admin("GET", "/v1/admin/devices/" + device.id);
  ASSERT_EQ(shown.status, 200) << shown.body;
  Json body = Body(shown);
  ASSERT_TRUE(body.contains("events")) << shown.body;
  EXPECT_EQ(body["events"].size(), 20u) << shown.body;
  // The device resends its queue (it never saw an answer): nothing is stored twice.
  auto resent = Checkin(device, request);
  ASSERT_EQ(resent.status, 200);
  EXPECT_EQ(protocol::ParseCheckinResponse(resent.body)->events_acked, 20);
  EXPECT_EQ(Body(Admin("GET", "/v1/admin/devices/" + device.id))["events"].size(), 20u);
}

// Each worker's request thread runs request_thread_nice (default 12) levels below its check-in
// writer thread, so a writer holding the database lock is not preempted by request handling.
TEST_F(ServerTest, WorkerRequestThreadsYieldToTheirCheckinWriters) {
  auto nice_of = [](const std::string& stat_path) -> std::optional<int> {
    std::ifstream in(stat_path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close = text.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 19 && fields >> field; ++i) {
      if (i == 19) return std::stoi(field);  // proc(5): field 19 is nice
    }
    return std::nullopt;
  };
  std::ifstream children("/proc/" + std::to_string(server_->pid()) + "/task/" + std::to_string(server_->pid()) +
                         "/children");
  std::vector<pid_t> workers;
  for (pid_t pid; children >> pid;) workers.push_back(pid);
  ASSERT_EQ(workers.size(), 2u) << "the test server runs two workers";
  for (pid_t worker : workers) {
    std::string task_dir = "/proc/" + std::to_string(worker) + "/task";
    auto base = nice_of("/proc/" + std::to_string(server_->pid()) + "/stat");
    ASSERT_TRUE(base.has_value());
    // A worker lowers its request thread once its connections and threads are set up, which may
    // be after the supervisor reported the address (a loaded machine): wait for it to get there.
    std::optional<int> request_nice;
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(std::chrono::milliseconds(20))) {
      request_nice = nice_of(task_dir + "/" + std::to_string(worker) + "/stat");
      if (!request_nice || *request_nice != *base) break;
    }
    ASSERT_TRUE(request_nice.has_value());
    int lowest_other = 99;
    for (const auto& task : std::filesystem::directory_iterator(task_dir)) {
      if (task.path().filename() == std::to_string(worker)) continue;
      if (auto nice = nice_of(task.path().string() + "/stat")) lowest_other = std::min(lowest_other, *nice);
    }
    EXPECT_EQ(*request_nice, std::min(19, *base + 12)) << "worker " << worker;
    EXPECT_EQ(lowest_other, *base) << "worker " << worker << ": its writer thread keeps the supervisor's priority";
  }
}

TEST_P(ServerOnEveryBackend, SigtermAnswersWaitingPollsAndExitsCleanly) {
  TestDevice device = Enroll("ws-0006");
  auto poll = std::async(std::launch::async, [&] {
    auto client = server_->Client();
    return client.Request("GET", "/v1/poll?version=0", "", Bearer(device.credential));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(server_->Stop(SIGTERM), 0) << server_->output();
  ASSERT_EQ(poll.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto answer = poll.get();
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->status, 503);
}

TEST(ServerConfigTest, PlainHttpIsRefusedUnlessOnLoopback) {
  TempDir dir;
  auto refused = testing::RunCommand({testing::AppbanBinary(), "server", "--data-dir", (dir.path() / "d").string(),
                                      "--address", "0.0.0.0", "--port", "0", "--insecure-plain-http"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("loopback"), std::string::npos) << refused.err;
}

// An administrator reaching the server by its department name (or by "localhost", the OpenAPI
// document's servers URL) needs a certificate that holds that name; the banner says which it holds.
TEST(ServerCertificateNames, ServerNameFlagsAreInTheCertificateAndTheBanner) {
  TempDir dir;
  auto server = testing::ServerProcess::Start(dir.path() / "data",
                                              {"--server-name", "appban.dept.example", "--server-name", "10.20.30.40"});
  ASSERT_TRUE(server.has_value());
  const std::string banner = server->output();
  EXPECT_NE(banner.find("Certificate for: "), std::string::npos) << banner;
  for (const char* name : {"localhost", "127.0.0.1", "::1", "appban.dept.example", "10.20.30.40"}) {
    EXPECT_NE(banner.find(name), std::string::npos) << name << " missing from the banner:\n" << banner;
  }
  auto sans = testing::RunCommand({"openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                                   (dir.path() / "data" / "tls" / "server.pem").string()});
  ASSERT_EQ(sans.exit_code, 0) << sans.err;
  EXPECT_NE(sans.out.find("DNS:localhost"), std::string::npos) << sans.out;
  EXPECT_NE(sans.out.find("DNS:appban.dept.example"), std::string::npos) << sans.out;
  EXPECT_NE(sans.out.find("IP Address:10.20.30.40"), std::string::npos) << sans.out;

  // The server answers a client that checks the host name "localhost".
  net::ClientOptions options;
  options.pinned_ca_pem = server->ca_pem();
  auto url = net::ParseUrl("https://localhost:" + server->url().substr(server->url().rfind(':') + 1));
  ASSERT_TRUE(url.ok());
  net::HttpClient client(*url, options);
  auto answer = client.Request("GET", "/healthz", "", {});
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(server->Stop(SIGTERM), 0);
}

// SIGTERM while the server is still starting (systemd stopping a unit it just started, an
// operator's Ctrl-C): a worker the supervisor passed the signal to before the worker had set up its
// own handling died of it, and the supervisor called that a failure (exit 1). The server is sent
// SIGTERM at 0 to 60 ms after its start, on a data directory a first start prepared: every run must
// end with 0 (the supervisor handled it) or by the signal itself, before the supervisor set up its
// handling (what systemd counts as a clean stop) — never with 1.
TEST(ServerStartup, ASigtermWhileStartingIsACleanStop) {
  TempDir dir;
  const std::string data_dir = (dir.path() / "data").string();
  {
    auto first = testing::ServerProcess::Start(data_dir, {"--workers", "2"});
    ASSERT_TRUE(first.has_value()) << "the first start did not serve";
    ASSERT_EQ(first->Stop(SIGTERM), 0) << first->output();
  }
  const std::string binary = testing::AppbanBinary();
  const std::string log = (dir.path() / "server.log").string();
  for (int delay_ms = 0; delay_ms <= 60; delay_ms += 3) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
      }
      execl(binary.c_str(), binary.c_str(), "server", "--data-dir", data_dir.c_str(), "--address", "127.0.0.1",
            "--port", "0", "--workers", "2", static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    const bool handled = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const bool by_the_signal = WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM;
    std::ifstream output(log);
    EXPECT_TRUE(handled || by_the_signal) << "SIGTERM " << delay_ms << " ms after the start ended it with "
                                          << (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                                : "signal " + std::to_string(WTERMSIG(status)))
                                          << ":\n"
                                          << std::string(std::istreambuf_iterator<char>(output), {});
  }
}

TEST(ServerCertificateNames, AServerNameThatIsNeitherADnsNameNorAnAddressIsRefused) {
  TempDir dir;
  auto refused = testing::RunCommand({testing::AppbanBinary(), "server", "--data-dir", (dir.path() / "d").string(),
                                      "--address", "127.0.0.1", "--port", "0", "--server-name", "bad name!"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("bad name!"), std::string::npos) << refused.err;
}

class PlainHttpServerTest : public ServerTest {
 protected:
  std::vector<std::string> ExtraFlags() const override { return {"--insecure-plain-http"}; }
};

TEST_F(PlainHttpServerTest, ServesPlainHttpOnLoopbackWhenAskedTo) {
  EXPECT_EQ(server_->url().rfind("http://127.0.0.1:", 0), 0u) << server_->url();
  TestDevice device = Enroll("ws-plain");
  EXPECT_FALSE(device.credential.empty());
}

TEST_F(PlainHttpServerTest, OversizedBodiesAreRefusedBeforeTheyAreRead) {
  // Announce 2 GiB to /v1/enroll (limit 1 MiB) and send none of it: the answer must come at once.
  auto url = net::ParseUrl(server_->url());
  ASSERT_TRUE(url.ok());
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(url->port);
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  timeval wait{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  std::string head =
      "POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2147483648\r\n\r\n";
  ASSERT_EQ(send(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
  char buffer[512] = {};
  ssize_t got = recv(fd, buffer, sizeof buffer - 1, 0);
  close(fd);
  ASSERT_GT(got, 0);
  EXPECT_EQ(std::string(buffer).rfind("HTTP/1.1 413", 0), 0u) << buffer;
  EXPECT_NE(std::string(buffer).find("payload_too_large"), std::string::npos) << buffer;
}

TEST_F(TwoNodesOnPostgres, APublishOnOneNodeReachesDevicesOnTheOtherAndDevicesMoveWhenANodeIsKilled) {
  auto started_b = StartNodeB();
  ASSERT_TRUE(started_b.has_value()) << "node B did not start";
  ServerProcess node_b = std::move(*started_b);
  EXPECT_TRUE(node_b.admin_token().empty()) << "the database already has an admin: node B prints none";
  auto on_b = [&](const std::string& method, const std::string& path, const std::string& body, const Headers& headers) {
    return On(node_b, method, path, body, headers);
  };

  // One device enrolled through each node, with tokens node A issued.
  TestDevice at_a = Enroll("node-a-device");
  protocol::EnrollRequest request{EnrollmentToken(), "node-b-device", "linux", "test"};
  auto enrolled = on_b("POST", "/v1/enroll", protocol::ToJson(request).dump(), {});
  ASSERT_EQ(enrolled.status, 201) << enrolled.body;
  auto parsed = protocol::ParseEnrollResponse(enrolled.body);
  ASSERT_TRUE(parsed.ok()) << enrolled.body;
  TestDevice at_b{parsed->device_id, parsed->credential, {}};

  // The device on node B waits on node B; the ban is published on node A.
  auto poll = std::async(std::launch::async, [&] {
    return node_b.Client().Request("GET", "/v1/poll?version=0", "", Bearer(at_b.credential));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Json published = PublishBan("gc-ban-wechat", "wechat");
  ASSERT_EQ(published.value("version", 0), 1) << published.dump();
  auto published_at = std::chrono::steady_clock::now();
  ASSERT_EQ(poll.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "a publish on node A did not wake the poll waiting on node B";
  auto woke = poll.get();
  ASSERT_TRUE(woke.ok()) << woke.status().ToString();
  ASSERT_EQ(woke->status, 200) << woke->body;
  auto pushed = protocol::ParsePollResponse(woke->body);
  ASSERT_TRUE(pushed.ok() && pushed->bundle.has_value()) << woke->body;
  EXPECT_EQ(pushed->latest_version, 1);
  policy::VerifyOptions options;  // signed with the key the node A device pinned: one key for all nodes
  options.trusted_keys = at_a.keys;
  options.now = std::time(nullptr);
  EXPECT_TRUE(policy::VerifyBundle(*pushed->bundle, options).ok());
  std::cout
      << "node B's poll answered "
      << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - published_at).count()
      << " ms after node A's publish returned\n";

  // The device on node A reports a removal; node A acknowledges it and is killed.
  auto report = CheckinWith(Apps({"bash"}), true);
  report.events.push_back({1, static_cast<int64_t>(std::time(nullptr)), protocol::EventKind::kRemoved, "deb", "wechat",
                           "gc-ban-wechat", ""});
  auto acknowledged = Checkin(at_a, report);
  ASSERT_EQ(acknowledged.status, 200) << acknowledged.body;
  ASSERT_EQ(protocol::ParseCheckinResponse(acknowledged.body)->events_acked, 1);
  EXPECT_EQ(server_->Stop(SIGKILL), 128 + SIGKILL);

  // Its device moves to node B with the same credential; what node A acknowledged is there, once.
  auto moved = on_b("POST", "/v1/checkin", protocol::ToJson(report).dump(), Bearer(at_a.credential));
  ASSERT_EQ(moved.status, 200) << moved.body;
  auto moved_answer = protocol::ParseCheckinResponse(moved.body);
  ASSERT_TRUE(moved_answer.ok()) << moved.body;
  EXPECT_EQ(moved_answer->events_acked, 1);
  EXPECT_EQ(moved_answer->latest_version, 1);
  auto shown = on_b("GET", "/v1/admin/devices/" + at_a.id, "", Bearer(admin_));
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_EQ(Body(shown)["events"].size(), 1u) << shown.body;
  auto audit = on_b("GET", "/v1/admin/audit/verify", "", Bearer(admin_));
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_TRUE(Body(audit).value("ok", false)) << audit.body;
}

// Each node keeps a signed checkpoint of the audit chain in its data directory (docs/postgresql.md,
// "Audit chain"). Whoever owns the database can drop its append-only guards and cut the chain's
// tail together with its head row, leaving a chain that is consistent in itself; the node that
// committed past the cut names it.
TEST_F(TwoNodesOnPostgres, EveryNodeAnchorsTheAuditChainAndACutTailIsNamed) {
  const std::filesystem::path checkpoint_a = dir_.path() / "data" / "audit-checkpoint";
  ASSERT_TRUE(std::filesystem::exists(checkpoint_a / "checkpoint.key"));
  auto created_entries = [&](ServerProcess& node) {
    auto listed = On(node, "GET", "/v1/admin/audit?limit=1000", "", Bearer(admin_));
    EXPECT_EQ(listed.status, 200) << listed.body;
    std::vector<std::string> keys;
    const Json body = Body(listed);
    for (const Json& entry : body["entries"]) {
      if (entry.value("action", "") == "server.audit_checkpoint_created")
        keys.push_back(entry["after"].value("key_id", ""));
    }
    return keys;
  };
  // Node A's first start made its key and recorded that in the chain, once.
  std::vector<std::string> created = created_entries(*server_);
  ASSERT_EQ(created.size(), 1u);
  Json verified = Body(Admin("GET", "/v1/admin/audit/verify"));
  EXPECT_TRUE(verified.value("ok", false)) << verified.dump();
  EXPECT_EQ(verified.value("checkpoint_key_id", ""), created[0]) << verified.dump();
  EXPECT_EQ(verified.value("checkpoint_seq", -1), verified.value("entries", -2)) << verified.dump();

  // Node B starts from a copy of node A's data directory (the key comes with it: nothing new is
  // recorded) and commits on: its checkpoint goes past node A's.
  auto started_b = StartNodeB();
  ASSERT_TRUE(started_b.has_value()) << "node B did not start";
  ServerProcess node_b = std::move(*started_b);
  EXPECT_EQ(created_entries(node_b).size(), 1u);
  const int64_t a_anchored = verified.value("entries", int64_t{0});
  auto proposed = On(node_b, "POST", "/v1/admin/rules",
                     policy::RuleToJson(BanRule("gc-ban-tiktok", "tiktok"), false).dump(), Bearer(admin_));
  ASSERT_EQ(proposed.status, 201) << proposed.body;
  Json on_b = Body(On(node_b, "GET", "/v1/admin/audit/verify", "", Bearer(admin_)));
  EXPECT_TRUE(on_b.value("ok", false)) << on_b.dump();
  const int64_t b_anchored = on_b.value("checkpoint_seq", int64_t{0});
  EXPECT_GT(b_anchored, a_anchored) << on_b.dump();
  EXPECT_EQ(on_b.value("checkpoint_key_id", ""), created[0]);

  // The database's owner cuts the chain back to what node A anchored, head row and all.
  auto owner = store::postgres::Connection::Open(database_url_);
  ASSERT_TRUE(owner.ok()) << owner.status().ToString();
  ASSERT_TRUE(
      owner
          ->ExecScript("DROP TRIGGER audit_no_delete ON audit; DROP TRIGGER audit_head_no_update ON audit_head; "
                       "DELETE FROM audit WHERE seq > " +
                       std::to_string(a_anchored) + "; UPDATE audit_head SET seq = " + std::to_string(a_anchored) +
                       ", hash = (SELECT hash FROM audit WHERE seq = " + std::to_string(a_anchored) + ")")
          .ok());
  Json cut = Body(On(node_b, "GET", "/v1/admin/audit/verify", "", Bearer(admin_)));
  EXPECT_FALSE(cut.value("ok", true)) << cut.dump();
  EXPECT_NE(
      cut.dump().find("the log was truncated (the signed checkpoint records entry " + std::to_string(b_anchored) + ")"),
      std::string::npos)
      << cut.dump();
  // Node A committed nothing past the cut: by its own checkpoint the shorter chain is whole.
  EXPECT_TRUE(Body(Admin("GET", "/v1/admin/audit/verify")).value("ok", false));

  // A node whose checkpoint directory is lost makes a new key at its next start, and the chain
  // says so: a second creation, by another key.
  ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->output();
  server_.reset();
  std::filesystem::remove_all(checkpoint_a);
  auto restarted = ServerProcess::Start(dir_.path() / "data", start_flags_);
  ASSERT_TRUE(restarted.has_value()) << "node A did not start again";
  server_.emplace(std::move(*restarted));
  created = created_entries(*server_);
  ASSERT_EQ(created.size(), 2u);
  EXPECT_NE(created[0], created[1]);
  EXPECT_TRUE(std::filesystem::exists(checkpoint_a / "checkpoint.key"));
}

// The enrolment and sign-in rate limits hold for the cluster, not once per node: attempts from one
// address spread over both nodes run into one limit (a bucket in the database), where each node
// alone used to allow its own burst (default 10 each: 20 of 20 got through).
TEST_F(TwoNodesOnPostgres, RateLimitsHoldAcrossNodes) {
  auto started_b = StartNodeB();
  ASSERT_TRUE(started_b.has_value()) << "node B did not start";
  ServerProcess node_b = std::move(*started_b);
  auto attempts = [&](const std::string& path, const std::string& body) {
    int answered = 0, limited_on_b_by_the_cluster = 0;
    for (int i = 0; i < 20; ++i) {
      ServerProcess& node = i % 2 == 0 ? *server_ : node_b;
      auto answer = On(node, "POST", path, body, {});
      if (answer.status != 429) {
        ++answered;
        continue;
      }
      bool has_retry_after = false;
      for (const auto& [name, value] : answer.headers)
        has_retry_after |= (name == "Retry-After" || name == "retry-after");
      EXPECT_TRUE(has_retry_after) << path;
      // Node B alone has seen at most 10 of these: what refuses it is the bucket both nodes share.
      if (&node == &node_b) ++limited_on_b_by_the_cluster;
    }
    return std::pair{answered, limited_on_b_by_the_cluster};
  };
  // Enrolment guesses (burst 10, 30 a minute): 10 in all get an answer, and one more at most if
  // the bucket refilled while the 20 were sent (one token per 2 s).
  protocol::EnrollRequest guess{"e-0000000000000000." + std::string(64, 'c'), "x", "linux", ""};
  auto [enrol_answered, enrol_refused_on_b] = attempts("/v1/enroll", protocol::ToJson(guess).dump());
  EXPECT_GE(enrol_answered, 10);
  EXPECT_LE(enrol_answered, 11);
  EXPECT_GE(enrol_refused_on_b, 4);
  // Sign-in attempts with a wrong token (burst 10, 10 a minute).
  auto [sign_in_answered, sign_in_refused_on_b] = attempts("/v1/session", Json{{"token", "not-a-token"}}.dump());
  EXPECT_GE(sign_in_answered, 10);
  EXPECT_LE(sign_in_answered, 11);
  EXPECT_GE(sign_in_refused_on_b, 4);
  // The buckets are rows of the shared database, keyed by purpose and address.
  auto owner = store::postgres::Connection::Open(database_url_);
  ASSERT_TRUE(owner.ok());
  auto buckets = owner->Query("SELECT bucket FROM rate_buckets ORDER BY bucket");
  ASSERT_TRUE(buckets.ok()) << buckets.status().ToString();
  ASSERT_EQ(buckets->size(), 2);
  EXPECT_EQ(buckets->Text(0, 0), "enroll:127.0.0.1");
  EXPECT_EQ(buckets->Text(1, 0), "sign-in:127.0.0.1");
}

// A rolling upgrade (docs/postgresql.md, "Upgrades"): each node in turn is stopped (SIGTERM) and
// started again while devices keep checking in and long-polling through a load balancer that sends
// each request to a live node, and a ban is published half-way. A device may see only what the
// agent retries (agent/agent_client.h, StatusFromHttpError: 5xx, 429, a refused or cut
// connection) and must end holding the new bundle. Both sides run the same build: no older
// release of appban exists to upgrade from; the schema step an upgrade adds is covered by the
// restore test, whose start migrates a database one version behind.
class RollingRestartOnPostgres : public TwoNodesOnPostgres {
 protected:
  std::string ExtraTopLevelToml() const override {
    return TwoNodesOnPostgres::ExtraTopLevelToml() + "devices.longpoll_timeout_seconds = 2\n";
  }
};

TEST_F(RollingRestartOnPostgres, DevicesSeeOnlyWhatTheyRetryWhileEachNodeIsRestartedInTurn) {
  auto started_b = StartNodeB();
  ASSERT_TRUE(started_b.has_value()) << "node B did not start";
  std::optional<ServerProcess> node_b(std::move(*started_b));
  const std::string ca = server_->ca_pem();
  // The load balancer's view: where each node listens now (a node started again gets a new port).
  std::mutex balancer;
  std::string node_urls[2] = {server_->url(), node_b->url()};
  auto send = [&](int node, const std::string& method, const std::string& target, const std::string& body,
                  const Headers& headers) -> Result<net::HttpResponse> {
    std::string url;
    {
      std::lock_guard lock(balancer);
      url = node_urls[node];
    }
    net::ClientOptions options;
    options.pinned_ca_pem = ca;
    options.read_timeout = std::chrono::seconds(30);
    net::HttpClient client(*net::ParseUrl(url), options);
    return client.Request(method, target, body, headers);
  };

  // Six devices, three enrolled through each node.
  constexpr int kDevices = 6;
  std::vector<TestDevice> devices;
  for (int i = 0; i < kDevices; ++i) {
    protocol::EnrollRequest request{EnrollmentToken(), "rolling-" + std::to_string(i), "linux", "test"};
    auto enrolled = send(i % 2, "POST", "/v1/enroll", protocol::ToJson(request).dump(), {});
    ASSERT_TRUE(enrolled.ok() && enrolled->status == 201) << (enrolled.ok() ? enrolled->body : "no answer");
    auto parsed = protocol::ParseEnrollResponse(enrolled->body);
    ASSERT_TRUE(parsed.ok());
    TestDevice device{parsed->device_id, parsed->credential, {}};
    for (const auto& pem : parsed->policy_keys_pem) device.keys.push_back(*policy::ParsePublicKeyPem(pem));
    devices.push_back(std::move(device));
  }

  struct Seen {
    std::map<int, int> statuses;  // HTTP status -> count
    int transport_errors = 0;     // refused or cut connections
    int node_switches = 0;
    std::vector<std::string> problems;
  };
  std::vector<Seen> seen(kDevices);
  std::vector<std::atomic<int64_t>> held(kDevices);
  std::atomic<bool> stop{false};
  std::vector<std::thread> loops;
  for (int d = 0; d < kDevices; ++d) {
    loops.emplace_back([&, d] {
      Seen& mine = seen[d];
      const TestDevice& device = devices[d];
      int node = d % 2;
      bool sent_inventory = false;
      // What the agent does with an answer it retries: try again, here through the other node.
      auto retry_elsewhere = [&] {
        node = 1 - node;
        ++mine.node_switches;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      };
      while (!stop) {
        auto request = CheckinWith(Apps({"bash"}), !sent_inventory, held[d]);
        auto checkin = send(node, "POST", "/v1/checkin", protocol::ToJson(request).dump(), Bearer(device.credential));
        if (!checkin.ok()) {
          ++mine.transport_errors;
          retry_elsewhere();
          continue;
        }
        ++mine.statuses[checkin->status];
        if (checkin->status != 200) {
          retry_elsewhere();
          continue;
        }
        sent_inventory = true;
        auto poll = send(node, "GET", "/v1/poll?version=" + std::to_string(held[d]), "", Bearer(device.credential));
        if (!poll.ok()) {
          ++mine.transport_errors;
          retry_elsewhere();
          continue;
        }
        ++mine.statuses[poll->status];
        if (poll->status == 204) continue;
        if (poll->status != 200) {
          retry_elsewhere();
          continue;
        }
        auto pushed = protocol::ParsePollResponse(poll->body);
        if (!pushed.ok() || !pushed->bundle.has_value()) {
          mine.problems.push_back("a poll answered 200 without a bundle: " + poll->body.substr(0, 200));
          continue;
        }
        policy::VerifyOptions options;
        options.trusted_keys = device.keys;
        options.now = std::time(nullptr);
        auto verified = policy::VerifyBundle(*pushed->bundle, options);
        if (!verified.ok()) {
          mine.problems.push_back("a bundle that does not verify: " + verified.status().ToString());
          continue;
        }
        held[d] = verified->bundle.version;
      }
    });
  }
  auto restart = [&](int node) {
    std::optional<ServerProcess>& process = node == 0 ? server_ : node_b;
    const std::filesystem::path data = dir_.path() / (node == 0 ? "data" : "data-b");
    EXPECT_EQ(process->Stop(SIGTERM), 0) << process->output();
    process.reset();
    auto again = ServerProcess::Start(data, start_flags_);
    ASSERT_TRUE(again.has_value()) << "node " << node << " did not start again";
    process.emplace(std::move(*again));
    std::lock_guard lock(balancer);
    node_urls[node] = process->url();
  };

  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  restart(0);  // node A, "upgraded"
  std::this_thread::sleep_for(std::chrono::seconds(1));
  Json published = PublishBan("gc-ban-wechat", "wechat");  // on the new node A, while B still runs
  const int64_t version = published.value("version", int64_t{0});
  ASSERT_EQ(version, 1) << published.dump();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  restart(1);  // then node B
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto everyone_holds_it = [&] {
    return std::all_of(held.begin(), held.end(), [&](const std::atomic<int64_t>& h) { return h == version; });
  };
  while (!everyone_holds_it() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // a few more rounds on the restarted nodes
  stop = true;
  for (auto& loop : loops) loop.join();

  int transport_errors = 0, unavailable = 0, switches = 0, answered = 0;
  for (int d = 0; d < kDevices; ++d) {
    EXPECT_EQ(held[d], version) << "device " << d << " did not converge";
    EXPECT_TRUE(seen[d].problems.empty()) << seen[d].problems.front();
    for (const auto& [status, count] : seen[d].statuses) {
      const bool retried = status == 429 || status >= 500;
      const bool fine = status == 200 || status == 204;
      EXPECT_TRUE(fine || retried) << "device " << d << " was answered " << status << " " << count
                                   << " times: an answer the agent does not retry";
      if (retried) unavailable += count;
      answered += count;
    }
    transport_errors += seen[d].transport_errors;
    switches += seen[d].node_switches;
  }
  std::cout << "rolling restart: " << answered << " answers, " << unavailable << " retried answers (5xx/429), "
            << transport_errors << " refused or cut connections, " << switches << " switches to the other node\n";
  auto audit = Admin("GET", "/v1/admin/audit/verify");
  EXPECT_TRUE(Body(audit).value("ok", false)) << audit.body;
}

// A check-in that changes a device (its inventory) tells every node to drop its cached copy; only a
// revocation ends the device's waiting long-polls. Found by the two-node propagation benchmark:
// treating every such notification as a revocation answered 403 "device_revoked" to the long-poll
// a device had just started on another worker or node, and the agent stops on a 403.
TEST_F(TwoNodesOnPostgres, ADeviceCheckingInOnOneNodeKeepsItsLongPollOnTheOther) {
  auto started_b = StartNodeB();
  ASSERT_TRUE(started_b.has_value()) << "node B did not start";
  ServerProcess node_b = std::move(*started_b);
  TestDevice device = Enroll("moving-laptop");
  auto poll = std::async(std::launch::async, [&] {
    return node_b.Client().Request("GET", "/v1/poll?version=0", "", Bearer(device.credential));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Its check-in with a new inventory, at node A: a change behind node B's cache.
  for (const char* app : {"firefox-esr", "wechat"}) {
    auto checked_in = Checkin(device, CheckinWith(Apps({"bash", app}), true));
    ASSERT_EQ(checked_in.status, 200) << checked_in.body;
  }
  EXPECT_EQ(poll.wait_for(std::chrono::seconds(2)), std::future_status::timeout)
      << "the long-poll on node B was answered because of the device's own check-in: "
      << (poll.valid() ? poll.get()->body : "");
  // It is still waiting, and a publish answers it.
  Json published = PublishBan("gc-ban-wechat", "wechat");
  ASSERT_EQ(poll.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto woke = poll.get();
  ASSERT_TRUE(woke.ok()) << woke.status().ToString();
  EXPECT_EQ(woke->status, 200) << woke->body;
  auto pushed = protocol::ParsePollResponse(woke->body);
  ASSERT_TRUE(pushed.ok() && pushed->bundle.has_value()) << woke->body;
  EXPECT_EQ(pushed->latest_version, published.value("version", int64_t{-1}));
}

// Each node keeps the devices it serves in memory (server/device_cache.h). A device revoked by an
// administrator on node A must be refused by node B at its next request, although node B served it
// a moment before: the revocation's notification drops node B's copy.
TEST_F(TwoNodesOnPostgres, ADeviceRevokedOnOneNodeIsRefusedByTheOther) {
  auto started_b = StartNodeB();
  ASSERT_TRUE(started_b.has_value()) << "node B did not start";
  ServerProcess node_b = std::move(*started_b);
  TestDevice device = Enroll("ws-lost-laptop");
  auto checkin = CheckinWith(Apps({"bash"}), true);
  // Served by node B twice: the second check-in comes from node B's cache.
  for (int i = 0; i < 2; ++i) {
    auto served = On(node_b, "POST", "/v1/checkin", protocol::ToJson(checkin).dump(), Bearer(device.credential));
    ASSERT_EQ(served.status, 200) << served.body;
  }
  // It waits on node B's long-poll when node A revokes it.
  auto poll = std::async(std::launch::async, [&] {
    return node_b.Client().Request("GET", "/v1/poll?version=0", "", Bearer(device.credential));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto revoked = Admin("POST", "/v1/admin/devices/" + device.id + "/revoke", Json{{"reason", "reported stolen"}});
  ASSERT_EQ(revoked.status, 200) << revoked.body;

  ASSERT_EQ(poll.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "node B kept the revoked device's poll open";
  auto dropped = poll.get();
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(dropped->status, 403) << dropped->body;
  // Node B refuses its next check-in at once (within the time a notification takes to arrive).
  int status = 0;
  for (int attempt = 0; attempt < 50 && status != 403; ++attempt) {
    status = On(node_b, "POST", "/v1/checkin", protocol::ToJson(checkin).dump(), Bearer(device.credential)).status;
    if (status != 403) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(status, 403) << "node B still serves a device revoked on node A";
  auto refused = On(node_b, "POST", "/v1/checkin", protocol::ToJson(checkin).dump(), Bearer(device.credential));
  EXPECT_EQ(refused.status, 403) << refused.body;
}

// A device whose check-ins alternate between nodes (a load balancer without affinity) must be
// judged on what it reports last, whichever node heard it. Node A remembers the device as it last
// saw it; the check-in node B stores in between must drop that memory, or node A takes the
// device's next report for one it has already judged.
TEST_F(TwoNodesOnPostgres, ComplianceFollowsADeviceThatAlternatesBetweenNodes) {
  auto started_b = StartNodeB();
  ASSERT_TRUE(started_b.has_value()) << "node B did not start";
  ServerProcess node_b = std::move(*started_b);
  TestDevice device = Enroll("ws-roaming");
  Json published = PublishBan("gc-ban-wechat", "wechat");
  ASSERT_EQ(published.value("version", 0), 1) << published.dump();
  auto bundle = FetchBundle(device, 0);
  ASSERT_TRUE(bundle.has_value());
  const std::string rules_hash = bundle->rules_hash;
  auto state = [&]() -> Json {
    auto shown = Admin("GET", "/v1/admin/compliance/rules/gc-ban-wechat");
    EXPECT_EQ(shown.status, 200) << shown.body;
    return Body(shown)["rule"];
  };

  // At node A, with wechat installed: violating.
  auto with_wechat = CheckinWith(Apps({"bash", "wechat"}), true, 1, rules_hash);
  ASSERT_EQ(Checkin(device, with_wechat).status, 200);
  EXPECT_EQ(state().value("violating", -1), 1) << state().dump();
  // At node B, wechat removed: compliant.
  auto removed = CheckinWith(Apps({"bash"}), true, 1, rules_hash);
  removed.events.push_back({1, static_cast<int64_t>(std::time(nullptr)), protocol::EventKind::kRemoved, "deb", "wechat",
                            "gc-ban-wechat", ""});
  auto at_b = On(node_b, "POST", "/v1/checkin", protocol::ToJson(removed).dump(), Bearer(device.credential));
  ASSERT_EQ(at_b.status, 200) << at_b.body;
  EXPECT_EQ(state().value("compliant", -1), 1) << state().dump();
  // Back at node A, wechat installed again: violating again, not the compliant state node A would
  // infer from remembering this very inventory.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the notification's travel
  auto again = Checkin(device, with_wechat);
  ASSERT_EQ(again.status, 200) << again.body;
  auto answer = protocol::ParseCheckinResponse(again.body);
  ASSERT_TRUE(answer.ok()) << again.body;
  if (answer->send_inventory) {  // node A asks for the inventory it no longer trusts: send it
    ASSERT_EQ(Checkin(device, with_wechat).status, 200);
  }
  Json final_state = state();
  EXPECT_EQ(final_state.value("violating", -1), 1) << final_state.dump();
  EXPECT_EQ(final_state.value("compliant", -1), 0) << final_state.dump();
}

// A database restart (or failover, or an administrator ending sessions) ends every session the
// node holds while devices wait on it. The node must carry on by itself: the next request opens
// its connections again, the listener reconnects and catches up on what it missed, and no device or
// administrator sees an error.
TEST_F(TwoNodesOnPostgres, ANodeCarriesOnWhenTheDatabaseEndsEverySession) {
  TestDevice device = Enroll("ws-restart");
  auto apps = Apps({"bash", "wechat"});
  ASSERT_EQ(Checkin(device, CheckinWith(apps, true)).status, 200);
  auto poll = std::async(std::launch::async, [&] {
    return server_->Client().Request("GET", "/v1/poll?version=0", "", Bearer(device.credential));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // Every worker's connections (stores, writers, readers, listeners) are ended at once.
  EXPECT_GE(EndEveryDatabaseSession(), 4);

  // The administrators' next requests succeed: the publish goes through on fresh sessions.
  Json published = PublishBan("gc-ban-wechat", "wechat");
  ASSERT_EQ(published.value("version", 0), 1) << published.dump();
  // The device's poll is answered with the bundle: by the notification if its listener was back in
  // time, else by the listener's look when it connects again (the periodic look is 600 s away).
  ASSERT_EQ(poll.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the publish after the sessions ended did not wake the poll";
  auto woke = poll.get();
  ASSERT_TRUE(woke.ok()) << woke.status().ToString();
  ASSERT_EQ(woke->status, 200) << woke->body;
  auto pushed = protocol::ParsePollResponse(woke->body);
  ASSERT_TRUE(pushed.ok() && pushed->bundle.has_value()) << woke->body;
  EXPECT_EQ(pushed->latest_version, 1);
  policy::VerifyOptions options;
  options.trusted_keys = device.keys;
  options.now = std::time(nullptr);
  auto verified = policy::VerifyBundle(*pushed->bundle, options);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();

  // Once more, with the device checking in and reporting straight after the sessions end.
  EXPECT_GE(EndEveryDatabaseSession(), 4);
  auto report = CheckinWith(Apps({"bash"}), true, 1, verified->bundle.rules_hash);
  report.events.push_back({1, static_cast<int64_t>(std::time(nullptr)), protocol::EventKind::kRemoved, "deb", "wechat",
                           "gc-ban-wechat", ""});
  auto reported = Checkin(device, report);
  ASSERT_EQ(reported.status, 200) << reported.body;
  EXPECT_EQ(protocol::ParseCheckinResponse(reported.body)->events_acked, 1);
  auto compliance = Admin("GET", "/v1/admin/compliance/rules/gc-ban-wechat");
  ASSERT_EQ(compliance.status, 200) << compliance.body;
  EXPECT_EQ(Body(compliance)["rule"].value("compliant", -1), 1) << compliance.body;

  // The sessions ended were reopened, not lost for good: the node holds sessions on the database
  // again, the publish is in the chain, and the chain verifies.
  auto audit = Admin("GET", "/v1/admin/audit/verify");
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_TRUE(Body(audit).value("ok", false)) << audit.body;
  EXPECT_EQ(server_->output().find("checking for a new bundle"), std::string::npos)
      << "a worker's periodic look failed:\n"
      << server_->output();
}

// `appban server migrate` (docs/postgresql.md, "Moving from SQLite"): a SQLite installation with a
// device, a published ban and its events moves to PostgreSQL; the server started on the database
// knows the same device (its credential works), the same rule and the same chain, one entry longer.
TEST_F(ServerTest, MigrateMovesAStoppedSqliteInstallationToPostgresql) {
  TestDevice device = Enroll("ws-migrated");
  Json published = PublishBan("gc-ban-wechat", "wechat");
  ASSERT_EQ(published.value("version", 0), 1) << published.dump();
  auto report = CheckinWith(Apps({"bash"}), true);
  report.events.push_back({1, static_cast<int64_t>(std::time(nullptr)), protocol::EventKind::kRemoved, "deb", "wechat",
                           "gc-ban-wechat", ""});
  ASSERT_EQ(Checkin(device, report).status, 200);
  Json before = Body(Admin("GET", "/v1/admin/audit/verify"));
  ASSERT_TRUE(before.value("ok", false)) << before.dump();

  auto cluster = store::PostgresTestCluster::Shared();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto url = (*cluster)->CreateDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  database_url_ = *url;  // dropped by TearDown
  std::string data = (dir_.path() / "data").string();
  auto migrate = [&] {
    return testing::RunCommand(
        {testing::AppbanBinary(), "server", "migrate", "--from", "sqlite:" + data, "--to", *url});
  };

  auto refused = migrate();  // the server still runs on the file
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("Stop the server first"), std::string::npos) << refused.err;

  ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->output();
  auto moved = migrate();
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  std::cout << moved.out;
  EXPECT_NE(moved.out.find("devices             1"), std::string::npos) << moved.out;
  EXPECT_NE(moved.out.find("device_events       1"), std::string::npos) << moved.out;
  EXPECT_NE(moved.out.find("Audit chain: " + std::to_string(before.value("entries", 0)) + " entries, head " +
                           before.value("head_hash", "")),
            std::string::npos)
      << moved.out;

  auto again = migrate();  // into a database that now holds data: refused, nothing written
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already holds appban data"), std::string::npos) << again.err;

  // The server on PostgreSQL, from the same data directory (keys, CA).
  std::filesystem::path config = dir_.path() / "server-pg.toml";
  std::ofstream(config) << "database = \"" << *url << "\"\n" << provider_->ServerToml();
  auto restarted = ServerProcess::Start(dir_.path() / "data", {"--config", config.string()});
  ASSERT_TRUE(restarted.has_value());
  server_.emplace(std::move(*restarted));
  EXPECT_TRUE(server_->admin_token().empty()) << "the moved database has its admin";
  auto again_checkin = Checkin(device, report);
  ASSERT_EQ(again_checkin.status, 200) << again_checkin.body;
  auto answer = protocol::ParseCheckinResponse(again_checkin.body);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->latest_version, 1);
  EXPECT_EQ(answer->events_acked, 1);
  auto shown = Admin("GET", "/v1/admin/devices/" + device.id);
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_EQ(Body(shown)["events"].size(), 1u) << "stored once, before and after the move";
  EXPECT_EQ(Admin("GET", "/v1/admin/rules/gc-ban-wechat").status, 200);
  Json after = Body(Admin("GET", "/v1/admin/audit/verify"));
  EXPECT_TRUE(after.value("ok", false)) << after.dump();
  EXPECT_GT(after.value("entries", 0), before.value("entries", 0)) << "the move is recorded in the chain";
  Json log = Body(Admin("GET", "/v1/admin/audit"));
  EXPECT_NE(log.dump().find("server.migrate"), std::string::npos);
}

// `appban server backup` and `restore` on PostgreSQL (docs/postgresql.md, "Backup and restore"):
// the backup holds the data directory's files and the database's audit head; the database goes
// through pg_dump and pg_restore, as an operator does it. A server with devices and a published ban
// is backed up and dumped; its data directory is lost; the dump is restored into a new database
// and the backup into a new data directory, and the server started there is the same server to
// its devices. Restoring beside a dump older than the backup, or an empty database, is refused.
class BackupRestoreOnPostgres : public ServerTest {
 protected:
  std::string Backend() const override { return "postgres"; }

  void TearDown() override {
    ServerTest::TearDown();
    if (auto cluster = store::PostgresTestCluster::Shared(); cluster.ok()) {
      for (const std::string& url : other_databases_) {
        (void)(*cluster)->DropDatabase(store::PostgresTestCluster::DatabaseOf(url));
      }
    }
  }

  // A new empty database of the run's cluster, dropped with the test.
  std::string NewDatabase() {
    auto cluster = store::PostgresTestCluster::Shared();
    EXPECT_TRUE(cluster.ok()) << cluster.status().ToString();
    if (!cluster.ok()) return "";
    auto url = (*cluster)->CreateDatabase();
    EXPECT_TRUE(url.ok()) << url.status().ToString();
    if (!url.ok()) return "";
    other_databases_.push_back(*url);
    return *url;
  }

  // A configuration like the test's, on another database.
  std::string ConfigFor(const std::string& name, const std::string& database_url) {
    std::filesystem::path config = dir_.path() / (name + ".toml");
    std::ofstream(config) << "database = \"" << database_url << "\"\n" << provider_->ServerToml();
    return config.string();
  }

  // A shell command line with the cluster's client tools (pg_dump, pg_restore) first on PATH.
  testing::CommandResult Shell(const std::string& line) {
    auto cluster = store::PostgresTestCluster::Shared();
    EXPECT_TRUE(cluster.ok());
    return testing::RunCommand({"sh", "-c", "PATH='" + (*cluster)->bin() + "':\"$PATH\"; " + line});
  }

  testing::CommandResult PgRestore(const std::string& database_url, const std::filesystem::path& dump) {
    return Shell("pg_restore --no-owner --exit-on-error --dbname='" + database_url + "' '" + dump.string() + "'");
  }

  testing::CommandResult Host(const std::string& config, const std::filesystem::path& data_dir,
                              std::vector<std::string> args) {
    args.insert(args.begin(), {testing::AppbanBinary(), "server"});
    args.insert(args.end(), {"--config", config, "--data-dir", data_dir.string()});
    return testing::RunCommand(args);
  }

  std::vector<std::string> other_databases_;
};

TEST_F(BackupRestoreOnPostgres, ADumpAndABackupBringTheServerBackWithItsDevicesRulesChainAndKeys) {
  const std::filesystem::path data = dir_.path() / "data";
  const std::string config = (dir_.path() / "server.toml").string();
  TestDevice device = Enroll("ws-kept");
  ASSERT_EQ(device.keys.size(), 1u);
  Json published = PublishBan("gc-ban-wechat", "wechat");
  ASSERT_EQ(published.value("version", 0), 1) << published.dump();
  ASSERT_EQ(Checkin(device, CheckinWith(Apps({"bash", "wechat"}), true)).status, 200);

  // A dump taken now is older than the backup below: the chain grows before the backup.
  const std::filesystem::path old_dump = dir_.path() / "before-the-backup.pgdump";
  auto dumped_early =
      Shell("pg_dump --format=custom --file='" + old_dump.string() + "' --dbname='" + database_url_ + "'");
  ASSERT_EQ(dumped_early.exit_code, 0) << dumped_early.err;
  TestDevice late = Enroll("ws-late");
  Json group = {{"name", "after-the-early-dump"}, {"description", ""}, {"devices", Json::array()}};
  ASSERT_EQ(Admin("POST", "/v1/admin/groups", group).status, 201);

  // The backup, while the server runs: the files, the database's head, and the pg_dump to pair with it.
  const std::filesystem::path backup = dir_.path() / "backups" / "nightly";
  auto backed_up = Host(config, data, {"backup", "--to", backup.string()});
  ASSERT_EQ(backed_up.exit_code, 0) << backed_up.out << backed_up.err;
  std::cout << backed_up.out;
  EXPECT_NE(backed_up.out.find("The database itself is NOT in this backup"), std::string::npos) << backed_up.out;
  EXPECT_NE(backed_up.out.find(" 2 devices"), std::string::npos) << backed_up.out;
  Json manifest = Json::parse(testing::ReadWholeFile(backup / "MANIFEST.json"));
  EXPECT_EQ(manifest.value("format", ""), "appban.backup/2");
  EXPECT_EQ(manifest["database"].value("backend", ""), "postgresql");
  const int64_t head_seq = manifest["database"]["audit_entries"];
  const std::string head_hash = manifest["database"]["audit_head"];
  const std::string key_id = manifest["policy_key_id"];
  ASSERT_GT(head_seq, 0);
  EXPECT_FALSE(key_id.empty());
  for (const Json& file : manifest["files"]) {
    EXPECT_TRUE(file.value("path", "").starts_with("data/")) << file.dump() << ": the database is pg_dump's";
  }
  EXPECT_TRUE(std::filesystem::exists(backup / "data" / "keys" / "active"));
  EXPECT_TRUE(std::filesystem::exists(backup / "data" / "tls" / "ca.pem"));
  Json recorded = Body(Admin("GET", "/v1/admin/audit?after=" + std::to_string(head_seq)));
  ASSERT_FALSE(recorded["entries"].empty()) << recorded.dump();
  EXPECT_EQ(recorded["entries"][0].value("action", ""), "server.backup");
  EXPECT_EQ(recorded["entries"][0].value("prev_hash", ""), head_hash);

  // The dump, by the very command the backup printed.
  const std::string marker = "  pg_dump ";
  size_t printed = backed_up.out.find(marker);
  ASSERT_NE(printed, std::string::npos) << backed_up.out;
  std::string dump_command = backed_up.out.substr(printed + 2, backed_up.out.find('\n', printed) - printed - 2);
  EXPECT_NE(dump_command.find(backup.string() + ".pgdump"), std::string::npos) << dump_command;
  auto dumped = Shell(dump_command);
  ASSERT_EQ(dumped.exit_code, 0) << dump_command << ": " << dumped.err;

  // The data directory is lost; the old database is left alone (the restore goes to new ones).
  const std::string ca_pem = server_->ca_pem();
  ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->output();
  server_.reset();
  std::filesystem::rename(data, dir_.path() / "lost");
  const std::filesystem::path restored_data = dir_.path() / "restored";

  // Refused: an empty database, and one restored from the dump older than the backup.
  const std::string empty_config = ConfigFor("empty", NewDatabase());
  auto into_empty = Host(empty_config, restored_data, {"restore", "--from", backup.string()});
  EXPECT_EQ(into_empty.exit_code, 1) << into_empty.out;
  EXPECT_NE(into_empty.err.find("holds no appban data"), std::string::npos) << into_empty.err;
  EXPECT_NE(into_empty.err.find("pg_restore"), std::string::npos) << into_empty.err;
  const std::string old_url = NewDatabase();
  auto restored_old = PgRestore(old_url, old_dump);
  ASSERT_EQ(restored_old.exit_code, 0) << restored_old.err;
  auto beside_old = Host(ConfigFor("old", old_url), restored_data, {"restore", "--from", backup.string()});
  EXPECT_EQ(beside_old.exit_code, 1) << beside_old.out;
  EXPECT_NE(beside_old.err.find("does not contain the head recorded in the backup"), std::string::npos)
      << beside_old.err;
  EXPECT_NE(beside_old.err.find("older than the keys"), std::string::npos) << beside_old.err;
  EXPECT_FALSE(std::filesystem::exists(restored_data)) << "a refused restore writes nothing";
  // Another installation's database: a server started once on it began a chain of its own.
  const std::string other_config = ConfigFor("other", NewDatabase());
  {
    auto other = ServerProcess::Start(dir_.path() / "other-data", {"--config", other_config});
    ASSERT_TRUE(other.has_value()) << "the other installation did not start";
    // Only its chain matters here, not its exit status: stopped this soon after its start, while a
    // worker may still be starting, the server sometimes exits 1 (seen in 1 run of 4).
    (void)other->Stop(SIGTERM);
  }
  auto beside_other = Host(other_config, restored_data, {"restore", "--from", backup.string(), "--check"});
  EXPECT_EQ(beside_other.exit_code, 1) << beside_other.out;
  EXPECT_NE(beside_other.err.find("the database is another installation's"), std::string::npos) << beside_other.err;

  // The operator's order: pg_restore into a new empty database, then appban server restore.
  const std::string new_url = NewDatabase();
  auto restored_dump = PgRestore(new_url, backup.string() + ".pgdump");
  ASSERT_EQ(restored_dump.exit_code, 0) << restored_dump.err;
  const std::string new_config = ConfigFor("restored", new_url);
  // As a dump an older appban took would be: its schema one version behind, the last migration
  // (6: the rate buckets every node shares) undone, so that the restore and the start run it.
  auto schema_version = [&] {
    return Shell("psql -tA '" + new_url + "' -c 'SELECT MAX(version) FROM appban_schema_migrations'").out;
  };
  const std::string current = schema_version();
  ASSERT_EQ(Shell("psql -q -v ON_ERROR_STOP=1 '" + new_url +
                  "' -c 'DELETE FROM appban_schema_migrations WHERE version = (SELECT MAX(version) FROM "
                  "appban_schema_migrations)' -c 'DROP FUNCTION appban_take_rate_tokens' -c 'DROP TABLE rate_buckets'")
                .exit_code,
            0);
  const std::string older = schema_version();
  ASSERT_NE(older, current);
  auto checked = Host(new_config, restored_data, {"restore", "--from", backup.string(), "--check"});
  ASSERT_EQ(checked.exit_code, 0) << checked.out << checked.err;
  EXPECT_NE(checked.out.find("holds its audit head; nothing was written"), std::string::npos) << checked.out;
  EXPECT_FALSE(std::filesystem::exists(restored_data));
  EXPECT_EQ(schema_version(), older) << "a check must not migrate the database";
  auto restored = Host(new_config, restored_data, {"restore", "--from", backup.string()});
  ASSERT_EQ(restored.exit_code, 0) << restored.out << restored.err;
  std::cout << restored.out;
  EXPECT_NE(restored.out.find("(server.restore)"), std::string::npos) << restored.out;
  auto again = Host(new_config, restored_data, {"restore", "--from", backup.string()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("never overwrites"), std::string::npos) << again.err;

  auto started = ServerProcess::Start(restored_data, {"--config", new_config});
  ASSERT_TRUE(started.has_value()) << "the server did not start on the restored installation";
  server_.emplace(std::move(*started));
  EXPECT_EQ(schema_version(), current) << "the restore or the server's start migrates it";
  EXPECT_TRUE(server_->admin_token().empty()) << "a restored server must not bootstrap a new admin";
  EXPECT_EQ(server_->ca_pem(), ca_pem) << "devices would no longer trust the server";
  Json devices = Body(Admin("GET", "/v1/admin/devices?limit=10"));
  EXPECT_EQ(devices.value("total", 0), 2) << devices.dump();
  EXPECT_EQ(Body(Admin("GET", "/v1/admin/rules/gc-ban-wechat")).value("state", ""), "published");
  Json verified = Body(Admin("GET", "/v1/admin/audit/verify"));
  EXPECT_TRUE(verified.value("ok", false)) << verified.dump();
  const int64_t entries = verified.value("entries", 0);
  Json at_head = Body(Admin("GET", "/v1/admin/audit?limit=1&after=" + std::to_string(head_seq - 1)));
  ASSERT_EQ(at_head["entries"].size(), 1u) << at_head.dump();
  EXPECT_EQ(at_head["entries"][0].value("hash", ""), head_hash) << "the backup's head is in the restored chain";
  Json last = Body(Admin("GET", "/v1/admin/audit?limit=1&after=" + std::to_string(entries - 1)));
  ASSERT_EQ(last["entries"].size(), 1u) << last.dump();
  EXPECT_EQ(last["entries"][0].value("action", ""), "server.restore") << "the restore ends the chain";

  // Both devices carry on with their credentials; the next ban is signed with the key they pinned.
  for (const TestDevice* kept : {&device, &late}) {
    auto answered = Checkin(*kept, CheckinWith(Apps({"bash"}), true, 1, ""));
    EXPECT_EQ(answered.status, 200) << kept->id << ": " << answered.body;
  }
  Json second = PublishBan("gc-ban-tiktok", "tiktok");
  ASSERT_EQ(second.value("version", 0), 2) << second.dump();
  EXPECT_EQ(second.value("key_id", ""), key_id);
  auto bundle = FetchBundle(device, 1);
  ASSERT_TRUE(bundle.has_value());
  EXPECT_EQ(bundle->rules.size(), 2u);
}

}  // namespace
}  // namespace appban
