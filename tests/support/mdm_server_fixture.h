// What the MDM sync tests share: the real `appban server` started with one MDM connector's TOML
// (and a real OpenID Connect provider, so bob can be the second person of the two-person rule),
// admin API calls, a WeChat ban with due process, and waits for the sync loop's runs.
// Test-only (included by *_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "appban/common/json.h"
#include "appban/policy/model.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban::testing {

// Polls `done` every 100 ms until it holds or `limit` passed; the last answer.
inline bool PollUntil(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

class MdmServerTest : public ::testing::Test {
 protected:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  static Headers Bearer(const std::string& token) { return {{"authorization", "Bearer " + token}}; }
  static Json Body(const net::HttpResponse& response) { return Json::parse(response.body, nullptr, false); }

  std::filesystem::path data_dir() const { return dir_.path() / "data"; }

  // Starts the server with `connector_toml` (one [[mdm.KIND]] table and its sub-tables) and a
  // short sync interval.
  void StartServerWith(const std::string& connector_toml) {
    auto provider = OidcProvider::Start(dir_.path() / "idp");
    ASSERT_TRUE(provider.has_value()) << "the OpenID Connect provider did not start";
    provider_.emplace(std::move(*provider));
    const std::string config = (dir_.path() / "server.toml").string();
    std::ofstream(config) << provider_->ServerToml()
                          << "[mdm.sync]\ninterval_seconds = 10\nrequest_attempts = 1\nmax_backoff_seconds = 2\n"
                          << connector_toml;
    auto started = ServerProcess::Start(data_dir(), {"--config", config});
    ASSERT_TRUE(started.has_value()) << "server did not start";
    server_.emplace(std::move(*started));
    admin_ = server_->admin_token();
    ASSERT_FALSE(admin_.empty()) << server_->output();
  }

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
  // bob's ID token from the provider.
  std::string Bob() {
    if (bob_.empty()) bob_ = provider_->SignIn("bob");
    EXPECT_FALSE(bob_.empty()) << "bob could not sign in";
    return bob_;
  }
  // As Admin, retried while the server has not yet fetched the provider's keys (401).
  net::HttpResponse AsBob(const std::string& method, const std::string& path, const Json& body) {
    net::HttpResponse response;
    for (int i = 0; i < 100; ++i) {
      response = Admin(method, path, body, Bob());
      if (response.status != 401) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return response;
  }
  int64_t Publish() {
    auto bundle = Admin("POST", "/v1/admin/publish", Json::object());
    EXPECT_TRUE(bundle.status == 200 || bundle.status == 201) << bundle.body;
    return Body(bundle).value("version", int64_t{0});
  }
  // A rule banning `targets` with due process: the admin proposes, bob approves, the admin
  // publishes the rule and then the bundle. Returns the bundle's version.
  int64_t Ban(const std::string& id, const std::vector<policy::Target>& targets) {
    policy::Rule rule;
    rule.id = id;
    rule.title = id + " on government phones";
    rule.targets = targets;
    rule.action = policy::Action::kRemove;
    rule.rationale = "unacceptable level of risk to privacy and security";
    rule.authority = "Chief Information Officer";
    EXPECT_EQ(Admin("POST", "/v1/admin/rules", policy::RuleToJson(rule, false)).status, 201);
    EXPECT_EQ(AsBob("POST", "/v1/admin/rules/" + id + "/approve", Json::object()).status, 200);
    EXPECT_EQ(Admin("POST", "/v1/admin/rules/" + id + "/publish", Json::object()).status, 200);
    return Publish();
  }
  // The first connector's status from GET /v1/admin/mdm.
  Json Connector() {
    Json body = Body(Admin("GET", "/v1/admin/mdm"));
    if (!body.is_object() || body["connectors"].empty()) return Json::object();
    return body["connectors"][0];
  }
  int64_t Runs() { return Connector().value("runs", int64_t{0}); }
  // Waits until the sync loop finished a run (more than `min_runs` in all) from bundle `version`.
  bool SyncedTo(int64_t version, int64_t min_runs = 0) {
    return PollUntil(
        [&] {
          Json c = Connector();
          return c.value("state", "") == "ok" && c.value("bundle_version", int64_t{0}) == version &&
                 c.value("runs", int64_t{0}) > min_runs;
        },
        std::chrono::seconds(30));
  }
  Json RuleCompliance(const std::string& rule) {
    return Body(Admin("GET", "/v1/admin/compliance/rules/" + rule + "?limit=100"));
  }
  // The audit entries with `action`.
  std::vector<Json> AuditEntries(const std::string& action) {
    std::vector<Json> found;
    Json audit = Body(Admin("GET", "/v1/admin/audit?limit=200"));
    for (const Json& entry : audit.value("entries", Json::array())) {
      if (entry.value("action", "") == action) found.push_back(entry);
    }
    return found;
  }

  TempDir dir_;
  std::optional<ServerProcess> server_;
  std::string admin_;
  std::string bob_;
  std::optional<OidcProvider> provider_;
};

}  // namespace appban::testing
