// Admin reads do not stall a worker: while four clients list enrolment tokens and the audit log as
// fast as the one worker of a real `appban server` answers them (50k of each in the database),
// /healthz sent on another connection to that worker keeps answering within 50 ms (p99). Before
// paging and the admin reader, a list was read, serialized and answered whole on the worker's only
// request thread: four parallel GET /v1/admin/enrollment-tokens (21 MB each) delayed a /healthz
// by 7.2 s.
//
// The clients follow next_cursor when the server gives one and start over otherwise, so the same
// test measures a server from before paging (APPBAN_BINARY=<its appban> ./appban_serial_test
// --gtest_filter='AdminLoad.*'; docs/benchmarks.md has the numbers).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "appban/net/client.h"
#include "appban/store/fleet.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using Clock = std::chrono::steady_clock;
using testing::ServerProcess;
using testing::TempDir;

constexpr size_t kTokenBatches = 5;  // of FleetLimits::max_enrollment_tokens_per_call
constexpr size_t kTokensPerBatch = 10'000;
constexpr size_t kClients = 4;
constexpr auto kHammerFor = std::chrono::seconds(6);
constexpr double kHealthBudgetMs = 50;  // for the p99 of the probes
constexpr double kWorstBoundMs = 250;   // for the slowest probe (see the assertions)
constexpr int kAttempts = 2;            // rounds measured before the bounds must hold

// The listing clients stand in for administrators' machines; on the test machine they share the
// CPU with the server, and here they yield it, so what is measured is the server, not the clients.
void LowerThisThreadPriority() { (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10); }

struct Round {
  std::vector<double> latencies_ms;  // sorted
  int failed_probes = 0;
  std::atomic<size_t> admin_answers{0};
  std::atomic<size_t> admin_failures{0};
  std::atomic<size_t> admin_bytes{0};

  double At(double quantile) const {
    if (latencies_ms.empty()) return 0;
    return latencies_ms[std::min(latencies_ms.size() - 1, static_cast<size_t>(quantile * latencies_ms.size()))];
  }
  double Worst() const { return latencies_ms.empty() ? 0 : latencies_ms.back(); }
};

void MeasureRound(const std::filesystem::path& dir, Round* round) {
  // One worker, so /healthz shares the worker (and its one request thread) with the admin calls;
  // the request thread keeps its normal priority for the reason assessment_load_test.cc gives.
  std::filesystem::create_directories(dir);
  std::string config = (dir / "server.toml").string();
  std::ofstream(config) << "request_thread_nice = 0\n";
  auto started = ServerProcess::Start(dir / "data", {"--config", config, "--workers", "1"});
  ASSERT_TRUE(started.has_value()) << "server did not start";
  ServerProcess& server = *started;
  ASSERT_FALSE(server.admin_token().empty()) << server.output();
  {
    // 50k enrolment tokens and as many audit entries, through the store on the server's database.
    auto fleet = store::OpenSqliteFleetStore((dir / "data" / "appban.db").string());
    ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
    store::AuditRecord audit;
    audit.actor = "admin";
    audit.at = std::time(nullptr);
    for (size_t i = 0; i < kTokenBatches; ++i) {
      auto made = (*fleet)->CreateEnrollmentTokens("", audit.at + 86400, "load", kTokensPerBatch, audit);
      ASSERT_TRUE(made.ok()) << made.status().ToString();
    }
  }

  net::ClientOptions options;
  options.pinned_ca_pem = server.ca_pem();
  options.read_timeout = std::chrono::seconds(600);
  auto url = net::ParseUrl(server.url());
  ASSERT_TRUE(url.ok());
  net::HttpClient health(*url, options);
  ASSERT_TRUE(health.Request("GET", "/healthz").ok());

  std::atomic<bool> done{false};
  std::vector<std::thread> clients;
  for (size_t i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      LowerThisThreadPriority();
      net::HttpClient client(*url, options);
      const std::string list = i % 2 == 0 ? "/v1/admin/enrollment-tokens?limit=1000" : "/v1/admin/audit?limit=1000";
      std::string cursor;
      while (!done.load()) {
        std::string path = list + (cursor.empty() ? "" : "&cursor=" + cursor);
        auto response = client.Request("GET", path, "", {{"authorization", "Bearer " + server.admin_token()}});
        if (!response.ok() || response->status != 200) {
          ++round->admin_failures;
          cursor.clear();
          continue;
        }
        ++round->admin_answers;
        round->admin_bytes += response->body.size();
        Json body = Json::parse(response->body, nullptr, false);
        cursor = body.is_object() && body.value("next_cursor", Json()).is_string()
                     ? body["next_cursor"].get<std::string>()
                     : "";
      }
    });
  }

  auto start = Clock::now();
  while (Clock::now() - start < kHammerFor) {
    auto sent = Clock::now();
    auto response = health.Request("GET", "/healthz");
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
    if (!response.ok() || response->status != 200) ++round->failed_probes;
    round->latencies_ms.push_back(ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  done = true;
  for (auto& client : clients) client.join();
  std::sort(round->latencies_ms.begin(), round->latencies_ms.end());
}

TEST(AdminLoad, HealthzAnswersWithin50msWhileFourClientsListTokensAndAudit) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "latency bounds are not meaningful under AddressSanitizer";
#endif
  TempDir dir;
  // As in assessment_load_test.cc: a round that misses the bounds is measured once more on a fresh
  // server; a stalled worker misses them every time, a busy machine rarely twice.
  std::unique_ptr<Round> round;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    round = std::make_unique<Round>();
    MeasureRound(dir.path() / ("round-" + std::to_string(attempt)), round.get());
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    std::printf(
        "[ load ] round %d: %zu clients, %zu admin answers (%.1f MB, %zu failed) in %lld s; %zu /healthz probes: "
        "median %.2f ms, p90 %.2f ms, p99 %.2f ms, worst %.2f ms\n",
        attempt, kClients, round->admin_answers.load(), round->admin_bytes.load() / 1e6, round->admin_failures.load(),
        static_cast<long long>(kHammerFor.count()), round->latencies_ms.size(), round->At(0.5), round->At(0.9),
        round->At(0.99), round->Worst());
    if (round->At(0.99) < kHealthBudgetMs && round->Worst() < kWorstBoundMs) break;
  }
  EXPECT_EQ(round->failed_probes, 0);
  EXPECT_EQ(round->admin_failures.load(), 0u);
  EXPECT_GE(round->admin_answers.load(), kClients) << "the admin clients were not served at all";
  ASSERT_GE(round->latencies_ms.size(), 20u) << "too few probes ran to say anything";
  // Two bounds, for the reason assessment_load_test.cc gives: the p99 keeps to the budget, the
  // worst sample catches a stall the p99 hides.
  EXPECT_LT(round->At(0.99), kHealthBudgetMs);
  EXPECT_LT(round->Worst(), kWorstBoundMs);
}

}  // namespace
}  // namespace appban
