// Issue 17, "backup and restore": a real server with a fleet of simulated devices (the sim
// library, as `appban simulate`) and a published ban is backed up with `appban server backup`
// while administrators keep writing; the data directory is then lost; `appban server restore`
// brings it back, and the server started on it is the same server to its devices: the same CA
// (their pinned TLS trust), the same device credentials, the same policy key, the same rules and
// audit chain — every device receives and applies the next publish.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "appban/net/client.h"
#include "appban/policy/model.h"
#include "appban/sim/fleet.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::ServerProcess;
using testing::TempDir;
namespace fs = std::filesystem;

constexpr uint64_t kDevices = 200;

class BackupRestore : public ::testing::Test {
 protected:
  void SetUp() override {
    auto provider = testing::OidcProvider::Start(dir_.path() / "idp");
    ASSERT_TRUE(provider.has_value()) << "the OpenID Connect provider did not start";
    provider_.emplace(std::move(*provider));
    std::ofstream(config()) << "[enrollment]\nrate_limit_burst = 100000\nrate_limit_per_minute = 1000000\n"
                            << provider_->ServerToml();
    StartServer();
    admin_ = server_->admin_token();
    ASSERT_FALSE(admin_.empty()) << server_->output();
    std::ofstream(ca_file()) << server_->ca_pem();
  }
  fs::path data() const { return dir_.path() / "data"; }
  fs::path config() const { return dir_.path() / "server.toml"; }
  std::string ca_file() const { return (dir_.path() / "ca.pem").string(); }
  void StartServer() {
    server_.reset();
    auto started = ServerProcess::Start(data(), {"--config", config().string()});
    ASSERT_TRUE(started.has_value()) << "server did not start";
    server_.emplace(std::move(*started));
  }
  net::HttpResponse Call(const std::string& method, const std::string& path, const Json& body = nullptr,
                         const std::string& token = "") {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"authorization", "Bearer " + (token.empty() ? admin_ : token)}};
    auto response = server_->Client().Request(method, path, body.is_null() ? "" : body.dump(), headers);
    EXPECT_TRUE(response.ok()) << method << " " << path << ": " << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }
  Json CallJson(const std::string& method, const std::string& path, const Json& body = nullptr) {
    return Json::parse(Call(method, path, body).body, nullptr, false);
  }
  // A ban proposed by the administrator and approved by bob, signed in at the provider.
  void ProposeAndApprove(const std::string& id, const std::string& package) {
    policy::Rule rule;
    rule.id = id;
    rule.title = "Ban " + package;
    rule.targets.push_back(*policy::MakeTarget(policy::TargetKind::kDebPackage, package));
    rule.rationale = rule.authority = "backup test";
    ASSERT_EQ(Call("POST", "/v1/admin/rules", policy::RuleToJson(rule, false)).status, 201);
    const std::string bob = provider_->SignIn("bob");
    int status = 0;
    for (int attempt = 0; attempt < 100 && status != 200; ++attempt) {  // the server may still fetch the JWKS
      status = Call("POST", "/v1/admin/rules/" + id + "/approve", Json::object(), bob).status;
      if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(status, 200);
    ASSERT_EQ(Call("POST", "/v1/admin/rules/" + id + "/publish", Json::object()).status, 200);
  }
  // The fleet runs until every device applied one more bundle.
  sim::ProcessSummary RunFleet() {
    sim::SimulationOptions options;
    options.server_url = server_->url();
    options.ca_file = ca_file();
    options.devices = kDevices;
    options.processes = 1;
    options.admin_token = admin_;
    options.state_file = (dir_.path() / "fleet.json").string();
    options.stop_after_bundles = 1;
    options.duration = std::chrono::minutes(3);  // a hang guard
    options.inventory.banned = *sim::ParseAppList("deb:wechat");
    options.inventory.banned_fraction = 0.2;
    options.quiet = true;
    auto summary = sim::RunSimulation(options);
    EXPECT_TRUE(summary.ok()) << summary.status().ToString();
    return summary.ok() ? *summary : sim::ProcessSummary{};
  }
  testing::CommandResult Host(std::vector<std::string> args) {
    args.insert(args.begin(), {testing::AppbanBinary(), "server"});
    args.insert(args.end(), {"--config", config().string(), "--data-dir", data().string()});
    return testing::RunCommand(args);
  }

  TempDir dir_;
  std::optional<testing::OidcProvider> provider_;
  std::optional<ServerProcess> server_;
  std::string admin_;
};

TEST_F(BackupRestore, ALostDataDirectoryComesBackAndItsDevicesCarryOn) {
  ProposeAndApprove("ban-wechat", "wechat");
  Json first = CallJson("POST", "/v1/admin/publish", Json::object());
  ASSERT_EQ(first.value("version", 0), 1) << first.dump();
  sim::ProcessSummary enrolled = RunFleet();
  ASSERT_TRUE(enrolled.errors.empty()) << Json(enrolled.errors).dump();
  ASSERT_EQ(enrolled.bundles[1].received, kDevices);

  // Administrators keep writing while the backup runs: it is one consistent snapshot anyway.
  std::atomic<bool> stop{false};
  std::atomic<int> groups_created{0};
  std::thread writer([&] {
    for (int i = 0; !stop && i < 500; ++i) {
      Json group = {{"name", "during-backup-" + std::to_string(i)}, {"description", ""}, {"devices", Json::array()}};
      if (Call("POST", "/v1/admin/groups", group).status == 201) ++groups_created;
    }
  });
  while (groups_created < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const fs::path backup = dir_.path() / "backups" / "nightly";
  auto backed_up = Host({"backup", "--to", backup.string()});
  stop = true;
  writer.join();
  ASSERT_EQ(backed_up.exit_code, 0) << backed_up.err;
  EXPECT_NE(backed_up.out.find("Backed up "), std::string::npos) << backed_up.out;
  EXPECT_NE(backed_up.out.find(" 200 devices"), std::string::npos) << backed_up.out;
  EXPECT_NE(backed_up.out.find("(verified, checkpoint at entry"), std::string::npos) << backed_up.out;
  Json manifest = Json::parse(testing::ReadWholeFile(backup / "MANIFEST.json"));
  const int64_t backed_up_entries = manifest["database"]["audit_entries"];
  const std::string backed_up_head = manifest["database"]["audit_head"];
  const std::string key_id = manifest["policy_key_id"];
  Json audit = CallJson("GET", "/v1/admin/audit?limit=1000&after=" + std::to_string(backed_up_entries));
  ASSERT_TRUE(audit.contains("entries")) << audit.dump();
  bool recorded = false;
  for (const Json& entry : audit["entries"]) recorded |= entry.value("action", "") == "server.backup";
  EXPECT_TRUE(recorded) << "the live chain does not record the backup";

  // The disk is lost.
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  fs::rename(data(), dir_.path() / "lost");
  auto checked = Host({"restore", "--from", backup.string(), "--check"});
  ASSERT_EQ(checked.exit_code, 0) << checked.err;
  EXPECT_NE(checked.out.find("complete and verifies; nothing was written"), std::string::npos) << checked.out;
  EXPECT_FALSE(fs::exists(data()));
  auto restored = Host({"restore", "--from", backup.string()});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_NE(restored.out.find("(server.restore)"), std::string::npos) << restored.out;
  auto again = Host({"restore", "--from", backup.string()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("never overwrites"), std::string::npos) << again.err;

  StartServer();
  EXPECT_TRUE(server_->admin_token().empty()) << "a restored server must not bootstrap a new admin";
  EXPECT_EQ(server_->ca_pem(), testing::ReadWholeFile(ca_file())) << "devices would no longer trust the server";
  // The administrator's token, the devices, the rules and the chain are the backup's.
  Json devices = CallJson("GET", "/v1/admin/devices?limit=1");
  EXPECT_EQ(devices.value("total", 0), static_cast<int>(kDevices)) << devices.dump();
  Json rule = CallJson("GET", "/v1/admin/rules/ban-wechat");
  EXPECT_EQ(rule.value("state", ""), "published") << rule.dump();
  Json verified = CallJson("GET", "/v1/admin/audit/verify");
  EXPECT_TRUE(verified.value("ok", false)) << verified.dump();
  EXPECT_EQ(verified.value("entries", 0), backed_up_entries + 1) << "the backup's chain plus the restore's entry";
  EXPECT_EQ(verified.value("checkpoint_seq", 0), backed_up_entries + 1);
  Json restore_entry = CallJson("GET", "/v1/admin/audit?after=" + std::to_string(backed_up_entries));
  ASSERT_EQ(restore_entry["entries"].size(), 1u) << restore_entry.dump();
  EXPECT_EQ(restore_entry["entries"][0].value("action", ""), "server.restore");
  EXPECT_EQ(restore_entry["entries"][0].value("prev_hash", ""), backed_up_head);

  // The next publish reaches every device, signed with the same key their state pins.
  ProposeAndApprove("ban-tiktok", "tiktok");
  Json second = CallJson("POST", "/v1/admin/publish", Json::object());
  ASSERT_EQ(second.value("version", 0), 2) << second.dump();
  EXPECT_EQ(second.value("key_id", ""), key_id);
  sim::ProcessSummary after = RunFleet();
  EXPECT_EQ(after.loaded_from_state, kDevices) << "devices had to enrol again";
  EXPECT_EQ(after.enrolled_now, 0u);
  EXPECT_TRUE(after.errors.empty()) << Json(after.errors).dump();
  ASSERT_EQ(after.bundles.count(2), 1u) << "no device applied the publish after the restore";
  EXPECT_EQ(after.bundles.at(2).received, kDevices);
  EXPECT_EQ(after.bundles.at(2).acked_ms.size(), kDevices);
}

}  // namespace
}  // namespace appban
