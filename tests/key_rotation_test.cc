// Hardening item 10 against the real server: a fleet of simulated devices (the sim library, the
// same code as `appban simulate`) enrolled and long-polling with the first policy key; the key is
// rotated with `appban policy keys init --rotate` while the server runs; the next publish carries
// the rotation statement signed by the old key, and every device follows it, pins the new key and
// applies the new-key bundle. A device that followed then refuses a bundle signed by the old key.
// APPBAN_ROTATION_DEVICES sets the fleet size (default 1000).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "appban/net/client.h"
#include "appban/policy/bundle.h"
#include "appban/policy/keys.h"
#include "appban/policy/rotation.h"
#include "appban/protocol/messages.h"
#include "appban/sim/device.h"
#include "appban/sim/fleet.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::ServerProcess;
using testing::TempDir;
namespace fs = std::filesystem;

class KeyRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The fleet enrols from one address: lift the per-address enrolment rate limit (30/min).
    fs::path config = dir_.path() / "server.toml";
    auto provider = testing::OidcProvider::Start(dir_.path() / "idp");
    ASSERT_TRUE(provider.has_value()) << "the OpenID Connect provider did not start";
    provider_.emplace(std::move(*provider));
    std::ofstream(config) << "[enrollment]\nrate_limit_burst = 100000\nrate_limit_per_minute = 1000000\n"
                          << provider_->ServerToml();
    auto started = ServerProcess::Start(data(), {"--config", config.string()});
    ASSERT_TRUE(started.has_value()) << "server did not start";
    server_.emplace(std::move(*started));
    admin_ = server_->admin_token();
    ASSERT_FALSE(admin_.empty()) << server_->output();
    ca_file_ = (dir_.path() / "ca.pem").string();
    std::ofstream(ca_file_) << server_->ca_pem();
  }
  fs::path data() const { return dir_.path() / "data"; }
  net::HttpResponse Call(const std::string& method, const std::string& path, const Json& body = nullptr,
                         const std::string& token = "") {
    auto client = server_->Client();
    std::vector<std::pair<std::string, std::string>> headers = {
        {"authorization", "Bearer " + (token.empty() ? admin_ : token)}};
    auto response = client.Request(method, path, body.is_null() ? "" : body.dump(), headers);
    EXPECT_TRUE(response.ok()) << method << " " << path << ": " << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }
  Json Publish() {
    auto published = Call("POST", "/v1/admin/publish", Json::object());
    EXPECT_EQ(published.status, 201) << published.body;
    return Json::parse(published.body, nullptr, false);
  }
  void PublishBan() {
    policy::Rule rule;
    rule.id = "ban-wechat";
    rule.title = "Ban WeChat";
    rule.targets.push_back(*policy::MakeTarget(policy::TargetKind::kDebPackage, "wechat"));
    rule.rationale = rule.authority = "test";
    ASSERT_EQ(Call("POST", "/v1/admin/rules", policy::RuleToJson(rule, false)).status, 201);
    // The approver is another person: bob, signed in at the provider (the server may still be
    // fetching the provider's keys when he first calls).
    std::string bob_token = provider_->SignIn("bob");
    int status = 0;
    for (int i = 0; i < 100 && status != 200; ++i) {
      status = Call("POST", "/v1/admin/rules/ban-wechat/approve", Json::object(), bob_token).status;
      if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(status, 200);
    ASSERT_EQ(Call("POST", "/v1/admin/rules/ban-wechat/publish", Json::object()).status, 200);
  }
  int64_t Metric(const std::string& name) {
    auto metrics = server_->Client().Request("GET", "/metrics", "", {});
    if (!metrics.ok()) return -1;
    std::smatch match;
    if (!std::regex_search(metrics->body, match, std::regex("\n" + name + " ([0-9]+)"))) return -1;
    return std::stoll(match[1]);
  }
  std::string ActiveKeyId() {
    std::ifstream in(data() / "keys" / "active");
    std::string id;
    in >> id;
    return id;
  }

  TempDir dir_;
  std::optional<ServerProcess> server_;
  std::optional<testing::OidcProvider> provider_;
  std::string admin_;
  std::string ca_file_;
};

TEST_F(KeyRotationTest, TheFleetFollowsARotationAndRefusesTheOldKey) {
  const char* env = std::getenv("APPBAN_ROTATION_DEVICES");
  const uint64_t devices = env != nullptr ? std::strtoull(env, nullptr, 10) : 1000;
  std::string old_key_id = ActiveKeyId();
  ASSERT_EQ(old_key_id.size(), 64u);
  PublishBan();
  Json first = Publish();
  ASSERT_EQ(first.value("version", 0), 1) << first.dump();
  ASSERT_EQ(first.value("key_id", ""), old_key_id);

  sim::SimulationOptions options;
  options.server_url = server_->url();
  options.ca_file = ca_file_;
  options.devices = devices;
  options.processes = 1;
  options.admin_token = admin_;
  options.state_file = (dir_.path() / "fleet.json").string();
  options.stop_after_bundles = 2;              // version 1 at the first check-in, then the new-key version 2
  options.duration = std::chrono::minutes(5);  // a hang guard
  options.inventory.banned = *sim::ParseAppList("deb:wechat");
  options.inventory.banned_fraction = 0.2;
  options.quiet = true;
  Result<sim::ProcessSummary> summary = Status::Internal("not run");
  auto started = std::chrono::steady_clock::now();
  std::thread simulator([&] { summary = sim::RunSimulation(options); });
  // Every device enrolled, applied version 1 and waits on its long-poll.
  for (int i = 0; i < 2400 && Metric("appban_longpolls_waiting") < static_cast<int64_t>(devices); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(Metric("appban_longpolls_waiting"), static_cast<int64_t>(devices));

  // Rotate while the server runs, through the command line and the quorum: the administrator
  // proposes, bob (signed in at the provider) agrees, and his approval rotates the key.
  auto cli = [&](const std::string& token, std::vector<std::string> args) {
    fs::path token_file = dir_.path() / "cli.token";
    std::ofstream(token_file, std::ios::trunc) << token << "\n";
    std::vector<std::string> argv = {testing::AppbanBinary(),
                                     "policy",
                                     "--server",
                                     server_->url(),
                                     "--ca",
                                     ca_file_,
                                     "--token-file",
                                     token_file.string(),
                                     "--credentials",
                                     (dir_.path() / "none.json").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv);
  };
  auto proposed = cli(admin_, {"keys", "init", "--rotate"});
  ASSERT_EQ(proposed.exit_code, 0) << proposed.err;
  size_t at = proposed.out.find("proposed change c-");
  ASSERT_NE(at, std::string::npos) << proposed.out;
  std::string change = proposed.out.substr(at + 16);
  change = change.substr(0, change.find(' '));
  ASSERT_EQ(ActiveKeyId(), old_key_id) << "nothing rotates before the quorum agrees";
  auto rotated = cli(provider_->SignIn("bob"), {"changes", "approve", change});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  std::string new_key_id = ActiveKeyId();
  ASSERT_NE(new_key_id, old_key_id);
  ASSERT_TRUE(fs::exists(data() / "keys" / (old_key_id + ".rotation")));
  Json second = Publish();
  ASSERT_EQ(second.value("version", 0), 2) << second.dump();
  EXPECT_EQ(second.value("key_id", ""), new_key_id) << "the publish after rotation was not signed with the new key";

  simulator.join();
  auto took = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->devices, devices);
  EXPECT_TRUE(summary->errors.empty()) << Json(summary->errors).dump();
  ASSERT_EQ(summary->bundles.count(2), 1u) << "no device applied the new-key bundle";
  EXPECT_EQ(summary->bundles.at(2).received, devices) << "devices stranded on the old key";
  EXPECT_EQ(summary->bundles.at(2).acked_ms.size(), devices);
  std::cerr << devices << " devices enrolled, rotated and applied the new-key bundle in " << took.count() << " s\n";

  // One device as the fleet saw it: enrolled with the old key, follows the statement from the
  // poll answer, then refuses a 0-rule bundle the old key signs (a rotated-out key can neither
  // lower a version nor remove rules).
  std::ifstream state(options.state_file);
  std::string credential = Json::parse(state)["devices"][0].value("credential", "");
  std::vector<std::pair<std::string, std::string>> headers = {{"authorization", "Bearer " + credential}};
  auto poll = server_->Client().Request("GET", std::string(protocol::kPollPath) + "?version=1", "", headers);
  ASSERT_TRUE(poll.ok() && poll->status == 200) << (poll.ok() ? poll->body : poll.status().ToString());
  auto answer = protocol::ParsePollResponse(poll->body);
  ASSERT_TRUE(answer.ok());
  ASSERT_EQ(answer->key_rotations.size(), 1u);
  auto old_public = policy::LoadPublicKeyFile((data() / "keys" / (old_key_id + ".pub")).string());
  ASSERT_TRUE(old_public.ok());
  sim::BundleVerifier verifier({*old_public});
  auto catalog = sim::AppCatalog::Make(options.inventory);
  ASSERT_TRUE(catalog.ok());
  sim::SimDevice device({0, "d-0000000000000000", "", ""}, catalog->DeviceApps(0), *catalog);
  UnixSeconds now = time(nullptr);
  auto applied = device.ApplyBundle(*answer->bundle, verifier, *catalog, now, answer->key_rotations);
  EXPECT_EQ(applied.kind, sim::BundleOutcome::Kind::kApplied) << applied.refusal.ToString();
  EXPECT_EQ(device.pinned_key_ids(), std::vector<std::string>{new_key_id});

  auto old_key = policy::SigningKey::LoadPrivateKeyFile((data() / "keys" / (old_key_id + ".key")).string());
  ASSERT_TRUE(old_key.ok());
  auto empty = policy::CompileBundle(policy::BundleInputs{{}, {}, {}, 3, now - 10, now + 86400});
  ASSERT_TRUE(empty.ok());
  auto forged = device.ApplyBundle(*policy::SignBundle(*empty, *old_key), verifier, *catalog, now);
  EXPECT_EQ(forged.kind, sim::BundleOutcome::Kind::kRefused);
  EXPECT_EQ(forged.refusal.code(), StatusCode::kNotFound) << forged.refusal.ToString();
  EXPECT_EQ(device.applied_version(), 2);
}

}  // namespace
}  // namespace appban
