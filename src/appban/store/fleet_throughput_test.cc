#include "appban/store/fleet.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "appban/store/fleet_test_support.h"

// FleetStore measurements (DISABLED_: run with --gtest_also_run_disabled_tests), not pass/fail checks.
namespace appban::store {
namespace {

using namespace fleet_testing;  // the shared fixtures

// Measurement, not a pass/fail check (run with --gtest_also_run_disabled_tests): check-in rows per
// second at batch sizes 1, 100 and 1000, one event each, synchronous=FULL, on this disk.
TEST(FleetStoreThroughput, DISABLED_ApplyCheckinsBatches) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  constexpr int kDevices = 1000;
  std::vector<std::string> ids;
  {
    // Devices inserted directly: enrolment speed is not what is measured.
    RawDb raw(dir.db());
    ASSERT_EQ(raw.Exec("BEGIN"), SQLITE_OK);
    for (int i = 0; i < kDevices; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "d-%016x", i);
      ids.push_back(id);
      std::string token = std::string("e-") + (id + 2);
      ASSERT_EQ(raw.Exec("INSERT INTO enrollment_tokens(id, group_name, secret_hash, created_by, created_at, "
                         "expires_at, note) VALUES('" +
                         token + "', '', 'x', 'a', 0, 1, '')"),
                SQLITE_OK);
      ASSERT_EQ(raw.Exec("INSERT INTO devices(id, secret_hash, hostname, platform, agent_version, group_name, "
                         "enrolled_at, enrollment_token_id, last_seen) VALUES('" +
                         std::string(id) + "', 'x', 'h', 'linux', '1', '', 0, '" + token + "', 0)"),
                SQLITE_OK);
    }
    ASSERT_EQ(raw.Exec("COMMIT"), SQLITE_OK);
  }
  int64_t seq = 0;
  for (int batch_size : {1, 100, 1000}) {
    int64_t rows = 0;
    std::clock_t cpu_start = std::clock();
    auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    while (elapsed() < 3.0) {
      ++seq;
      std::vector<CheckinWrite> batch;
      for (int i = 0; i < batch_size; ++i)
        batch.push_back(Checkin(ids[i % kDevices], {Event(seq * 10 + i / kDevices)}, kNow + seq));
      auto outcomes = fleet->ApplyCheckins(batch);
      ASSERT_TRUE(outcomes.ok()) << outcomes.status().ToString();
      rows += batch_size;
    }
    double seconds = elapsed();
    double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    std::printf(
        "batch %4d: %8lld check-ins in %.2f s = %9.0f check-ins/s (%.2f ms per transaction); "
        "CPU %.2f s = %.0f check-ins per CPU-second\n",
        batch_size, static_cast<long long>(rows), seconds, rows / seconds, 1000.0 * seconds / (rows / batch_size),
        cpu_seconds, rows / cpu_seconds);
  }
}

// Measurement (run by hand): one transaction per token / per enrolment versus one per batch.
TEST(FleetStoreThroughput, DISABLED_EnrollmentTokensAndEnrolmentsBatched) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  constexpr size_t kTokens = 1000;
  auto seconds_since = [](std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> singles;
  for (size_t i = 0; i < kTokens; ++i) {
    auto token = fleet->CreateEnrollmentToken("", kNow + kDay, "", By("alice"));
    ASSERT_TRUE(token.ok());
    singles.push_back(token->presented);
  }
  double one_by_one = seconds_since(start);
  start = std::chrono::steady_clock::now();
  auto batch = fleet->CreateEnrollmentTokens("", kNow + kDay, "", kTokens, By("alice"));
  ASSERT_TRUE(batch.ok());
  double batched = seconds_since(start);
  std::printf("%zu tokens: one transaction each %.3f s, one batch %.3f s\n", kTokens, one_by_one, batched);

  start = std::chrono::steady_clock::now();
  for (const std::string& token : singles) ASSERT_TRUE(fleet->EnrollDevice(token, "h", "linux", "1", kNow).ok());
  one_by_one = seconds_since(start);
  std::printf("%zu enrolments one transaction each: %.3f s = %.0f/s\n", kTokens, one_by_one, kTokens / one_by_one);
  for (size_t batch_size : {size_t{10}, size_t{100}, size_t{1000}}) {
    auto tokens = fleet->CreateEnrollmentTokens("", kNow + kDay, "", kTokens, By("alice"));
    ASSERT_TRUE(tokens.ok());
    start = std::chrono::steady_clock::now();
    for (size_t begin = 0; begin < kTokens; begin += batch_size) {
      std::vector<EnrollmentRequest> requests;
      for (size_t i = begin; i < begin + batch_size; ++i) requests.push_back(Request((*tokens)[i].presented, "h"));
      auto outcomes = fleet->EnrollDevices(requests, kNow);
      ASSERT_TRUE(outcomes.ok());
    }
    batched = seconds_since(start);
    std::printf("%zu enrolments in batches of %4zu: %.3f s = %.0f/s\n", kTokens, batch_size, batched,
                kTokens / batched);
  }
}

// Measurement: the compliance summary queries over 100,000 devices.
TEST(FleetStoreThroughput, DISABLED_RuleStatesOver100kDevices) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  constexpr int kDevices = 100000;
  std::vector<std::string> ids;
  {
    RawDb raw(dir.db());
    ASSERT_EQ(raw.Exec("BEGIN"), SQLITE_OK);
    for (int i = 0; i < kDevices; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "d-%016x", i);
      ids.push_back(id);
      std::string token = std::string("e-") + (id + 2);
      ASSERT_EQ(raw.Exec("INSERT INTO enrollment_tokens(id, group_name, secret_hash, created_by, created_at, "
                         "expires_at, note) VALUES('" +
                         token + "', '', 'x', 'a', 0, 1, '')"),
                SQLITE_OK);
      ASSERT_EQ(raw.Exec("INSERT INTO devices(id, secret_hash, hostname, platform, agent_version, group_name, "
                         "enrolled_at, enrollment_token_id, last_seen) VALUES('" +
                         std::string(id) + "', 'x', 'h', 'linux', '1', '', 0, '" + token + "', 0)"),
                SQLITE_OK);
    }
    ASSERT_EQ(raw.Exec("COMMIT"), SQLITE_OK);
  }
  // Ten rules, every device evaluated against each: 1,000,000 rule states.
  auto start = std::chrono::steady_clock::now();
  for (int first = 0; first < kDevices; first += 1000) {
    std::vector<CheckinWrite> batch;
    for (int i = first; i < first + 1000; ++i) {
      CheckinWrite write = Checkin(ids[i], {});
      for (int rule = 0; rule < 10; ++rule) {
        write.rule_states.push_back({ids[i], "rule-" + std::to_string(rule),
                                     i % 3 == 0 ? ComplianceState::kViolating : ComplianceState::kCompliant, kNow,
                                     i % 3 == 0, std::nullopt, 1});
      }
      batch.push_back(std::move(write));
    }
    ASSERT_TRUE(fleet->ApplyCheckins(batch).ok());
  }
  double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  start = std::chrono::steady_clock::now();
  auto states = fleet->ListRuleStates("rule-3");
  double list_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(states.ok());
  EXPECT_EQ(states->size(), static_cast<size_t>(kDevices));
  start = std::chrono::steady_clock::now();
  auto counts = fleet->CountRuleStates("rule-3");
  double count_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->violating, (kDevices + 2) / 3);
  std::printf(
      "1,000,000 rule states written in %.2f s (%.0f/s); ListRuleStates(100k devices) %.1f ms; "
      "CountRuleStates %.1f ms\n",
      load_seconds, 1e6 / load_seconds, 1000 * list_seconds, 1000 * count_seconds);
}

}  // namespace
}  // namespace appban::store
