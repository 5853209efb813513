// Token buckets keyed by client address, shared by every worker process of one server: the
// supervisor creates the limiter (one anonymous shared mapping) before it forks, so a limit such
// as "10 enrolment attempts from one address, then 30 a minute" holds for the server as a whole,
// not once per worker (with two workers, 20 of 40 attempts used to get through).
//
// Each address hashes (keyed with a random per-start secret, so no one can aim at another
// address's slot) to one of `slots` buckets; two addresses that share a bucket share its budget,
// which with 2^16 buckets and a handful of addresses enrolling at once almost never happens and
// can only make the limit stricter. A bucket is one 64-bit word updated with compare-and-swap, so
// no lock is held across processes (a worker that dies mid-update leaves nothing locked).
//
// Thread-safe and process-safe; Allow() never blocks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "appban/common/status.h"

namespace appban::server {

class SharedRateLimiter {
 public:
  // `burst` requests at once, refilled at `per_minute`; burst at most kMaxBurst.
  static constexpr uint32_t kMaxBurst = 200'000;
  static constexpr size_t kDefaultSlots = 1 << 16;
  static Result<SharedRateLimiter> Create(uint32_t burst, uint32_t per_minute, size_t slots = kDefaultSlots);

  SharedRateLimiter(SharedRateLimiter&& other) noexcept;
  SharedRateLimiter& operator=(SharedRateLimiter&& other) noexcept;
  SharedRateLimiter(const SharedRateLimiter&) = delete;
  SharedRateLimiter& operator=(const SharedRateLimiter&) = delete;
  ~SharedRateLimiter();

  // Takes one token from `key`'s bucket; false when it is empty. `now` must come from
  // std::chrono::steady_clock (CLOCK_MONOTONIC: the same clock in every process).
  bool Allow(std::string_view key, std::chrono::steady_clock::time_point now);
  // Seconds until the bucket of a refused caller holds a token again (for Retry-After).
  int RetryAfterSeconds() const;
  // The limit, for the bucket every node shares in the database (FleetStore::TakeSharedRateTokens).
  uint32_t burst() const;
  uint32_t per_minute() const;

 private:
  struct Shared;
  explicit SharedRateLimiter(Shared* shared, size_t bytes) : shared_(shared), bytes_(bytes) {}
  void Unmap();

  Shared* shared_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace appban::server
