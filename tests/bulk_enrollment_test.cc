// Bulk enrolment (issue 18) against the real server: one multi-use enrolment token, as a fleet
// image or a configuration tool carries it, enrols a thousand simulated machines (the sim
// library, the same code as `appban simulate --enrollment-token`) into its group, each use
// audited, and refuses the thousand-and-first; the real `appban agent enroll` takes the token
// from a file that it deletes once enrolled, and waits out a busy server with --retry-for.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "appban/sim/fleet.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::ServerProcess;
using testing::TempDir;
namespace fs = std::filesystem;

class BulkEnrollmentTest : public ::testing::Test {
 protected:
  // `enrollment_toml`: the server's [enrollment] section (its per-address rate limit).
  void StartServer(const std::string& enrollment_toml) {
    fs::path config = dir_.path() / "server.toml";
    std::ofstream(config) << "[enrollment]\n" << enrollment_toml;
    auto started = ServerProcess::Start(dir_.path() / "data", {"--config", config.string()});
    ASSERT_TRUE(started.has_value()) << "server did not start";
    server_.emplace(std::move(*started));
    admin_ = server_->admin_token();
    ASSERT_FALSE(admin_.empty()) << server_->output();
    ca_file_ = (dir_.path() / "ca.pem").string();
    std::ofstream(ca_file_) << server_->ca_pem();
  }
  net::HttpResponse Call(const std::string& method, const std::string& path, const Json& body = nullptr) {
    auto response = server_->Client().Request(method, path, body.is_null() ? "" : body.dump(),
                                              {{"authorization", "Bearer " + admin_}});
    EXPECT_TRUE(response.ok()) << method << " " << path << ": " << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }
  // Issues one token allowing `max_uses` enrolments into `group`; returns the answer's token.
  Json IssueToken(int64_t max_uses, const std::string& group) {
    Json body{{"max_uses", max_uses}, {"ttl_seconds", 3600}, {"note", "image 2026-12"}};
    if (!group.empty()) body["group"] = group;
    auto issued = Call("POST", "/v1/admin/enrollment-tokens", body);
    EXPECT_EQ(issued.status, 201) << issued.body;
    Json answer = Json::parse(issued.body, nullptr, false);
    return answer.is_object() && answer.contains("tokens") ? answer["tokens"][0] : Json();
  }
  Json GetToken(const std::string& id) {
    auto listed = Call("GET", "/v1/admin/enrollment-tokens?limit=1000");
    Json answer = Json::parse(listed.body, nullptr, false);
    for (const Json& token : answer.value("tokens", Json::array())) {
      if (token.value("id", "") == id) return token;
    }
    return Json();
  }

  TempDir dir_;
  std::optional<ServerProcess> server_;
  std::string admin_;
  std::string ca_file_;
};

TEST_F(BulkEnrollmentTest, AThousandMachinesEnrolWithOneTokenIntoItsGroupAndTheNextIsRefused) {
  // A thousand machines behind one address (a NAT, or this test): the per-address limit is lifted.
  StartServer("rate_limit_burst = 100000\nrate_limit_per_minute = 1000000\n");
  ASSERT_EQ(Call("POST", "/v1/admin/groups", Json{{"name", "image-2026-12"}, {"description", "new laptops"}}).status,
            201);
  ASSERT_EQ(Call("POST", "/v1/admin/publish", Json::object()).status, 201);
  constexpr uint64_t kMachines = 1000;
  Json token = IssueToken(kMachines, "image-2026-12");
  ASSERT_TRUE(token.is_object());
  EXPECT_EQ(token.value("max_uses", 0), static_cast<int64_t>(kMachines));
  EXPECT_EQ(token.value("uses", -1), 0);
  EXPECT_EQ(token.value("state", ""), "active");
  const std::string token_id = token.value("id", "");

  sim::SimulationOptions options;
  options.server_url = server_->url();
  options.ca_file = ca_file_;
  options.devices = kMachines + 1;  // one machine more than the token allows
  options.shared_enrollment_token = token.value("token", "");
  options.state_file = (dir_.path() / "fleet.json").string();
  options.stop_after_bundles = 1;              // each enrolled machine applied the published bundle
  options.duration = std::chrono::minutes(5);  // a hang guard
  options.quiet = true;
  auto summary = sim::RunSimulation(options);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->enrolled_now, kMachines);
  EXPECT_EQ(summary->errors.count("device_gave_up") ? summary->errors.at("device_gave_up") : 0, 1u)
      << Json(summary->errors).dump();
  ASSERT_EQ(summary->bundles.count(1), 1u);
  EXPECT_EQ(summary->bundles.at(1).acked_ms.size(), kMachines);

  Json after = GetToken(token_id);
  EXPECT_EQ(after.value("uses", 0), static_cast<int64_t>(kMachines));
  EXPECT_EQ(after.value("state", ""), "used");

  // Every device is its own, in the token's group, and names the token.
  std::set<std::string> device_ids;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    auto listed = Call("GET", "/v1/admin/devices?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(listed.status, 200) << listed.body;
    Json answer = Json::parse(listed.body);
    for (const Json& device : answer["devices"]) {
      EXPECT_EQ(device.value("group", ""), "image-2026-12");
      EXPECT_EQ(device.value("enrollment_token_id", ""), token_id);
      device_ids.insert(device.value("id", ""));
    }
    if (answer["next_cursor"].is_null()) break;
    cursor = answer["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(device_ids.size(), kMachines);

  // Each use is in the audit chain, by the token, and the chain verifies.
  auto audit = Call("GET", "/v1/admin/exports/audit.csv");
  ASSERT_EQ(audit.status, 200);
  std::istringstream lines(audit.body);
  size_t enrolments = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("device.enroll") != std::string::npos && line.find("enrollment:" + token_id) != std::string::npos) {
      ++enrolments;
    }
  }
  EXPECT_EQ(enrolments, kMachines);
  auto verified = Call("GET", "/v1/admin/audit/verify");
  EXPECT_EQ(verified.status, 200) << verified.body;
  EXPECT_TRUE(Json::parse(verified.body, nullptr, false).value("ok", false)) << verified.body;
}

TEST_F(BulkEnrollmentTest, TheAgentTakesTheTokenFromAFileDeletesItAndWaitsOutABusyServer) {
  // One enrolment per address at once, then one every 2 s: the second machine is told 429.
  StartServer("rate_limit_burst = 1\nrate_limit_per_minute = 30\n");
  Json token = IssueToken(3, "");
  ASSERT_TRUE(token.is_object());
  const std::string presented = token.value("token", "");
  auto enroll = [&](const std::string& name, const fs::path& token_file, std::vector<std::string> extra) {
    std::vector<std::string> argv = {testing::AppbanBinary(),
                                     "agent",
                                     "enroll",
                                     "--server",
                                     server_->url(),
                                     "--ca",
                                     ca_file_,
                                     "--token-file",
                                     token_file.string(),
                                     "--state-dir",
                                     (dir_.path() / ("state-" + name)).string(),
                                     "--hostname",
                                     name};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testing::RunCommand(argv);
  };
  auto token_file = [&](const std::string& name) {
    fs::path path = dir_.path() / (name + ".token");
    std::ofstream(path) << presented << "\n";
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    return path;
  };

  fs::path first_file = token_file("ws-1");
  auto first = enroll("ws-1", first_file, {});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("enrolled as d-"), std::string::npos) << first.out;
  EXPECT_FALSE(fs::exists(first_file)) << "the token file outlived the enrolment";

  // At once again, without --retry-for: refused, and the file stays for the next attempt.
  fs::path second_file = token_file("ws-2");
  auto refused = enroll("ws-2", second_file, {});
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.err.find("429"), std::string::npos) << refused.err;
  EXPECT_TRUE(fs::exists(second_file));

  // With --retry-for the machine waits for the server's Retry-After and enrols.
  auto started = std::chrono::steady_clock::now();
  auto waited = enroll("ws-2", second_file, {"--retry-for", "60"});
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_FALSE(fs::exists(second_file));
  EXPECT_GE(took, std::chrono::milliseconds(900)) << "it did not wait for the server";
  EXPECT_EQ(GetToken(token.value("id", "")).value("uses", 0), 2);

  // A token file that is a symbolic link is refused before anything is sent (deleting it after
  // enrolling would delete what it points to), as is one with more than the token in it.
  fs::path target = token_file("target");
  fs::path link = dir_.path() / "link.token";
  fs::create_symlink(target, link);
  auto linked = enroll("ws-3", link, {});
  EXPECT_EQ(linked.exit_code, 2);
  EXPECT_NE(linked.err.find("not a regular file"), std::string::npos) << linked.err;
  EXPECT_TRUE(fs::exists(target));
  fs::path two_lines = dir_.path() / "two.token";
  std::ofstream(two_lines) << presented << "\nsecond line\n";
  auto doubled = enroll("ws-3", two_lines, {});
  EXPECT_EQ(doubled.exit_code, 2);
  EXPECT_NE(doubled.err.find("more than one line"), std::string::npos) << doubled.err;
  EXPECT_EQ(GetToken(token.value("id", "")).value("uses", 0), 2);
}

}  // namespace
}  // namespace appban
