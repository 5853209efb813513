#include "appban/server/shared_rate_limiter.h"

#include <openssl/rand.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

namespace appban::server {
namespace {

// A bucket word: the time of its last refill in milliseconds since the limiter was created (high
// 40 bits: 34 years) and its tokens in 1/64ths (low 24 bits: up to 262,143 tokens). Zero means
// "never used", which reads as a full bucket.
constexpr int kTokenBits = 24;
constexpr uint64_t kTokenMask = (uint64_t{1} << kTokenBits) - 1;
constexpr uint64_t kTokenUnit = 64;
static_assert(SharedRateLimiter::kMaxBurst * kTokenUnit <= kTokenMask);

}  // namespace

struct SharedRateLimiter::Shared {
  uint64_t burst_units = 0;  // burst * kTokenUnit
  double units_per_ms = 0;   // refill rate
  uint32_t per_minute = 0;
  int64_t created_ns = 0;         // steady_clock epoch of the millisecond counter
  uint64_t hash_key[2] = {0, 0};  // secret: addresses cannot be chosen to collide
  size_t slot_count = 0;
  // The slot_count bucket words follow this header in the same mapping.
  std::atomic<uint64_t>* slots() { return reinterpret_cast<std::atomic<uint64_t>*>(this + 1); }
};

Result<SharedRateLimiter> SharedRateLimiter::Create(uint32_t burst, uint32_t per_minute, size_t slots) {
  if (burst == 0 || burst > kMaxBurst) return Status::InvalidArgument("rate limiter burst out of range");
  if (slots == 0) return Status::InvalidArgument("rate limiter needs at least one slot");
  const size_t bytes = sizeof(Shared) + sizeof(std::atomic<uint64_t>) * slots;
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return Status::Unavailable(std::string("rate limiter: mmap: ") + std::strerror(errno));
  // The fresh mapping is zeroed; begin the objects' lifetimes (their destructors are trivial).
  auto* shared = std::construct_at(static_cast<Shared*>(base));
  shared->burst_units = uint64_t{burst} * kTokenUnit;
  shared->units_per_ms = static_cast<double>(per_minute) * kTokenUnit / 60'000.0;
  shared->per_minute = per_minute;
  shared->created_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  shared->slot_count = slots;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(shared->hash_key), sizeof(shared->hash_key)) != 1) {
    munmap(base, bytes);
    return Status::Unavailable("rate limiter: no randomness for its hash key");
  }
  for (size_t i = 0; i < slots; ++i) std::construct_at(shared->slots() + i, 0);
  return SharedRateLimiter(shared, bytes);
}

SharedRateLimiter::SharedRateLimiter(SharedRateLimiter&& other) noexcept
    : shared_(std::exchange(other.shared_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

SharedRateLimiter& SharedRateLimiter::operator=(SharedRateLimiter&& other) noexcept {
  if (this != &other) {
    Unmap();
    shared_ = std::exchange(other.shared_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

SharedRateLimiter::~SharedRateLimiter() { Unmap(); }

void SharedRateLimiter::Unmap() {
  if (shared_ != nullptr) munmap(shared_, bytes_);
  shared_ = nullptr;
}

bool SharedRateLimiter::Allow(std::string_view key, std::chrono::steady_clock::time_point now) {
  // Keyed FNV-1a: cheap, the same in every process, and unpredictable without the key.
  uint64_t hash = 1469598103934665603ull ^ shared_->hash_key[0];
  for (unsigned char c : key) hash = (hash ^ c) * 1099511628211ull;
  hash ^= shared_->hash_key[1];
  hash *= 0x9e3779b97f4a7c15ull;
  std::atomic<uint64_t>& slot = shared_->slots()[(hash >> 16) % shared_->slot_count];

  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const uint64_t now_ms = static_cast<uint64_t>(std::max<int64_t>(1, (now_ns - shared_->created_ns) / 1'000'000));
  uint64_t word = slot.load(std::memory_order_relaxed);
  for (;;) {
    uint64_t tokens = shared_->burst_units;
    if (word != 0) {
      const uint64_t last_ms = word >> kTokenBits;
      const uint64_t elapsed = now_ms > last_ms ? now_ms - last_ms : 0;
      const double refilled = static_cast<double>(word & kTokenMask) + elapsed * shared_->units_per_ms;
      tokens = static_cast<uint64_t>(std::min(refilled, static_cast<double>(shared_->burst_units)));
    }
    if (tokens < kTokenUnit) return false;
    const uint64_t next = (now_ms << kTokenBits) | (tokens - kTokenUnit);
    if (slot.compare_exchange_weak(word, next, std::memory_order_acq_rel, std::memory_order_relaxed)) return true;
  }
}

uint32_t SharedRateLimiter::burst() const { return static_cast<uint32_t>(shared_->burst_units / kTokenUnit); }
uint32_t SharedRateLimiter::per_minute() const { return shared_->per_minute; }

int SharedRateLimiter::RetryAfterSeconds() const {
  if (shared_->per_minute == 0) return 60;
  return std::max(1, static_cast<int>((60 + shared_->per_minute - 1) / shared_->per_minute));
}

}  // namespace appban::server
