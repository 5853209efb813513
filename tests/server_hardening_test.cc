// Hardening of the real `appban server`, each case an attack that used to work:
//  - one server per port and per data directory: SO_REUSEPORT used to let a second server join the
//    first one's port (the fleet's connections split between two databases), and a second server on
//    the same data directory started as if it owned it;
//  - the enrolment rate limit holds across worker processes (with two workers, twice the burst got
//    through);
//  - GET /metrics needs the configured scrape token (it used to show compliance and enrolment counts
//    to anyone who reached the port);
//  - an admin upload is authenticated from its headers: without a token (or with too weak a role)
//    a 200 MB assessment upload used to be read whole before the 401.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <csignal>
#include <string>

#include "appban/protocol/messages.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::CommandResult;
using testing::RunCommand;
using testing::ServerProcess;
using testing::TempDir;

std::string PortOf(const std::string& url) { return url.substr(url.rfind(':') + 1); }

// Runs a second server; `timeout` ends it if it wrongly starts serving.
CommandResult SecondServer(const std::string& data_dir, const std::string& port) {
  return RunCommand({"timeout", "60", testing::AppbanBinary(), "server", "--data-dir", data_dir, "--address",
                     "127.0.0.1", "--port", port, "--workers", "1"});
}

TEST(ServerInstance, ASecondServerOnTheSamePortIsRefused) {
  TempDir dir;
  auto first = ServerProcess::Start(dir.path() / "first");
  ASSERT_TRUE(first.has_value());
  CommandResult second = SecondServer((dir.path() / "second").string(), PortOf(first->url()));
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.exit_code, 124) << "the second server started and had to be killed:\n" << (second.out + second.err);
  EXPECT_NE((second.out + second.err).find("already in use"), std::string::npos) << (second.out + second.err);
  // The first one still answers.
  auto health = first->Client().Request("GET", "/healthz");
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(health->status, 200);
}

TEST(ServerInstance, ASecondServerOnTheSameDataDirectoryIsRefused) {
  TempDir dir;
  auto first = ServerProcess::Start(dir.path() / "data");
  ASSERT_TRUE(first.has_value());
  CommandResult second = SecondServer((dir.path() / "data").string(), "0");
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.exit_code, 124) << "the second server started and had to be killed:\n" << (second.out + second.err);
  EXPECT_NE((second.out + second.err).find("another appban server (pid " + std::to_string(first->pid()) + ")"),
            std::string::npos)
      << (second.out + second.err);
}

TEST(ServerInstance, ARestartRightAfterKillDashNineTakesTheDirectoryAndPortBack) {
  TempDir dir;
  auto first = ServerProcess::Start(dir.path() / "data");
  ASSERT_TRUE(first.has_value());
  first->Stop(SIGKILL);
  auto again = ServerProcess::Start(dir.path() / "data");
  ASSERT_TRUE(again.has_value()) << "the data directory stayed locked after the server was killed";
  auto health = again->Client().Request("GET", "/healthz");
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(health->status, 200);
}

TEST(ServerHardening, EnrolmentRateLimitHoldsAcrossWorkers) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() / "data", {"--workers", "2"});
  ASSERT_TRUE(server.has_value());
  int admitted = 0, limited = 0;
  for (int i = 0; i < 40; ++i) {
    // A new connection each time, so the kernel spreads the attempts over both workers.
    net::HttpClient client = server->Client();
    protocol::EnrollRequest guess{"e-0000000000000000." + std::string(64, 'c'), "x", "linux", ""};
    auto answer =
        client.Request("POST", "/v1/enroll", protocol::ToJson(guess).dump(), {{"content-type", "application/json"}});
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    if (answer->status == 429) {
      ++limited;
    } else {
      EXPECT_EQ(answer->status, 401) << answer->body;
      ++admitted;
    }
  }
  EXPECT_EQ(admitted, 10) << "the documented burst is 10 for the whole server";
  EXPECT_EQ(limited, 30);
}

TEST(ServerHardening, MetricsNeedTheConfiguredScrapeToken) {
  TempDir dir;
  const auto token_file = dir.path() / "metrics.token";
  const std::string token = "scrape-0123456789abcdef";
  { std::ofstream(token_file) << token << "\n"; }
  std::filesystem::permissions(token_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  const auto config = dir.path() / "server.toml";
  { std::ofstream(config) << "[metrics]\ntoken_file = \"" << token_file.string() << "\"\n"; }
  auto server = ServerProcess::Start(dir.path() / "data", {"--config", config.string()});
  ASSERT_TRUE(server.has_value());
  auto client = server->Client();
  auto anonymous = client.Request("GET", "/metrics");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401) << anonymous->body;
  EXPECT_EQ(anonymous->body.find("appban_"), std::string::npos) << "metrics leaked: " << anonymous->body;
  auto wrong = client.Request("GET", "/metrics", {}, {{"authorization", "Bearer scrape-0123456789abcdeX"}});
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 401);
  auto right = client.Request("GET", "/metrics", {}, {{"authorization", "Bearer " + token}});
  ASSERT_TRUE(right.ok());
  EXPECT_EQ(right->status, 200);
  EXPECT_NE(right->body.find("appban_checkins_total"), std::string::npos) << right->body;

  // A token file others can read is refused at start, like a private key.
  std::filesystem::permissions(token_file, std::filesystem::perms::others_read, std::filesystem::perm_options::add);
  CommandResult refused =
      RunCommand({"timeout", "60", testing::AppbanBinary(), "server", "--config", config.string(), "--data-dir",
                  (dir.path() / "other").string(), "--address", "127.0.0.1", "--port", "0"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE((refused.out + refused.err).find("metrics.token"), std::string::npos) << refused.out << refused.err;
}

// Sends `head` on a plain TCP connection and reads until the server closes or `timeout` passes.
std::string SendHeadOnly(uint16_t port, const std::string& head, std::chrono::milliseconds timeout) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size())) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd ready{fd, POLLIN, 0};
      if (poll(&ready, 1, 100) <= 0) continue;
      ssize_t n = recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      answer.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  return answer;
}

TEST(ServerHardening, AnUploadWithoutTheRightTokenIsRefusedBeforeItsBodyIsRead) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() / "data", {"--insecure-plain-http"});
  ASSERT_TRUE(server.has_value());
  const uint16_t port = static_cast<uint16_t>(std::stoi(PortOf(server->url())));
  auto client = server->Client();
  auto auditor =
      client.Request("POST", "/v1/admin/tokens", R"({"name":"auditor-1","role":"auditor"})",
                     {{"authorization", "Bearer " + server->admin_token()}, {"content-type", "application/json"}});
  ASSERT_TRUE(auditor.ok() && auditor->status == 201) << (auditor.ok() ? auditor->body : "");
  const std::string auditor_token = nlohmann::json::parse(auditor->body).value("token", "");

  const std::string upload =
      "POST /v1/admin/assessments HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/vnd.android.package-archive\r\n"
      "Content-Length: 200000000\r\n";
  struct Case {
    std::string headers;
    std::string status;
  };
  for (const Case& c : {Case{"", "401"}, Case{"Authorization: Bearer not-a-token\r\n", "401"},
                        Case{"Authorization: Bearer " + auditor_token + "\r\n", "403"}}) {
    // Only the headers are sent: the answer must come without the server waiting for 200 MB.
    auto start = std::chrono::steady_clock::now();
    std::string answer = SendHeadOnly(port, upload + c.headers + "\r\n", std::chrono::seconds(10));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << "the server waited for the body";
    EXPECT_EQ(answer.rfind("HTTP/1.1 " + c.status + " ", 0), 0u) << c.headers << " -> " << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  }
}

}  // namespace
}  // namespace appban
