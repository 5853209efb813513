// Hardening of the real `appban server`, each case an attack that used to work:
//  - one server per port and per data directory: SO_REUSEPORT used to let a second server join the
//    first one's port (the fleet's connections split between two databases), and a second server on
//    the same data directory started as if it owned it;
//  - the enrolment rate limit holds across worker processes (with two workers, twice the burst got
//    through).
#include <gtest/gtest.h>

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
    auto answer = client.Request("POST", "/v1/enroll", protocol::ToJson(guess).dump(),
                                 {{"content-type", "application/json"}});
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

}  // namespace
}  // namespace appban
