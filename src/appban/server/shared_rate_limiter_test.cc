#include "appban/server/shared_rate_limiter.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

namespace appban::server {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

TEST(SharedRateLimiter, BurstThenRefillPerAddress) {
  auto limiter = SharedRateLimiter::Create(/*burst=*/10, /*per_minute=*/30);
  ASSERT_TRUE(limiter.ok()) << limiter.status().ToString();
  auto t = SteadyClock::now();
  int allowed = 0;
  for (int i = 0; i < 40; ++i) allowed += limiter->Allow("192.0.2.1", t);
  EXPECT_EQ(allowed, 10);
  // Another address has its own budget.
  EXPECT_TRUE(limiter->Allow("192.0.2.2", t));
  // 30 a minute: one more token every 2 s.
  EXPECT_FALSE(limiter->Allow("192.0.2.1", t + 1500ms));
  EXPECT_TRUE(limiter->Allow("192.0.2.1", t + 2100ms));
  EXPECT_FALSE(limiter->Allow("192.0.2.1", t + 2200ms));
  // Never more than the burst, however long the address stayed away.
  int after_a_day = 0;
  for (int i = 0; i < 40; ++i) after_a_day += limiter->Allow("192.0.2.1", t + 24h);
  EXPECT_EQ(after_a_day, 10);
  EXPECT_EQ(limiter->RetryAfterSeconds(), 2);
}

// The hardening case: with two workers each attempt budget was counted twice. Here two processes
// (as two forked workers are) draw from one limiter; together they get the burst, not twice it.
TEST(SharedRateLimiter, HoldsAcrossForkedProcesses) {
  auto limiter = SharedRateLimiter::Create(10, 30);
  ASSERT_TRUE(limiter.ok());
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  auto t = SteadyClock::now();
  std::vector<pid_t> children;
  for (int child = 0; child < 2; ++child) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      unsigned char allowed = 0;
      for (int i = 0; i < 20; ++i) allowed += limiter->Allow("198.51.100.7", t);
      _exit(write(pipe_fds[1], &allowed, 1) == 1 ? 0 : 1);
    }
    children.push_back(pid);
  }
  int total = 0;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unsigned char allowed = 0;
    ASSERT_EQ(read(pipe_fds[0], &allowed, 1), 1);
    total += allowed;
  }
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  EXPECT_EQ(total, 10);
  EXPECT_FALSE(limiter->Allow("198.51.100.7", t));  // the parent sees the same empty bucket
}

TEST(SharedRateLimiter, RefusesNonsenseSettings) {
  EXPECT_FALSE(SharedRateLimiter::Create(0, 30).ok());
  EXPECT_FALSE(SharedRateLimiter::Create(SharedRateLimiter::kMaxBurst + 1, 30).ok());
  EXPECT_FALSE(SharedRateLimiter::Create(10, 30, 0).ok());
}

}  // namespace
}  // namespace appban::server
