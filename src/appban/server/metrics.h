// Prometheus metrics shared by the server's worker PROCESSES. The supervisor creates one
// MetricsRegion (an anonymous MAP_SHARED mapping) before it forks; every worker then writes only
// its own slot through a MetricsSlot, so there is no cross-process contention, and whichever
// worker answers GET /metrics sums all slots with RenderPrometheus.
//
// The region is a fixed layout of std::atomic<uint64_t> (lock-free, hence address-free: the same
// object may be mapped at different addresses in different processes). Labels come from small
// fixed enums, never from request data, so the number of series is bounded by construction.
// Counters are monotonic per slot; gauges per slot are incremented and decremented by the same
// worker. A MetricsSlot may be used from one thread at a time; rendering may run concurrently with
// any writer (it reads each value atomically; a scrape may see one request's counter before its
// histogram bucket, which Prometheus tolerates).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "appban/common/status.h"

namespace appban::server {

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "shared-memory metrics need lock-free (address-free) 64-bit atomics");

enum class Route : uint8_t { kEnroll, kCheckin, kPoll, kAdmin, kHealth, kMetrics, kOther };
inline constexpr size_t kRouteCount = 7;
std::string_view RouteName(Route route);  // "enroll", … "other"

// HTTP status classes 1xx … 5xx; anything outside 100..599 counts as 5xx (a server bug).
inline constexpr size_t kStatusClassCount = 5;

enum class EventKind : uint8_t {
  kRemoved,
  kRemoveFailed,
  kInstallRefused,
  kWaiverApplied,
  kBundleApplied,
  kBundleRefused,
  kOther,
};
inline constexpr size_t kEventKindCount = 7;
std::string_view EventKindName(EventKind kind);  // "removed", "remove_failed", …
// Maps a device-reported kind string onto the fixed set; unknown strings are kOther, so a device
// cannot create new series.
EventKind EventKindFromName(std::string_view name);

enum class EnrollmentResult : uint8_t {
  kEnrolled,
  kTokenInvalid,  // unknown token or wrong secret
  kTokenExpired,
  kTokenUsed,  // already used or revoked
  kRateLimited,
  kBadRequest,
  kError,  // store or server trouble
};
inline constexpr size_t kEnrollmentResultCount = 7;
std::string_view EnrollmentResultName(EnrollmentResult result);

// Device compliance as the compliance computation counts it (appban_compliance_devices{state}).
enum class DeviceCompliance : uint8_t { kCompliant, kViolating, kPending, kStale, kMismatch, kCannotEnforce };
inline constexpr size_t kDeviceComplianceCount = 6;
std::string_view DeviceComplianceName(DeviceCompliance state);

// Upper bounds (seconds) of appban_http_request_duration_seconds; +Inf is implicit. Long-polls
// last up to the long-poll timeout, hence the 30 and 60 s buckets.
inline constexpr std::array<double, 15> kDurationBucketBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                 0.25,   0.5,   1,      2.5,   5,    30,    60};
inline constexpr size_t kDurationBucketCount = kDurationBucketBounds.size() + 1;  // + the +Inf bucket

inline constexpr uint32_t kMaxMetricsSlots = 1024;

using Counter = std::atomic<uint64_t>;

// One worker's counters and gauges. Cache-line aligned so two workers' slots never share a line.
// (std::atomic's default constructor value-initializes: every counter starts at 0.)
struct alignas(64) WorkerSlotData {
  Counter up;  // 1 while the worker serves
  Counter pid;
  Counter requests[kRouteCount][kStatusClassCount];
  // Non-cumulative: each observation increments exactly one bucket (the last one is +Inf).
  Counter duration_buckets[kRouteCount][kDurationBucketCount];
  Counter duration_sum_nanoseconds[kRouteCount];
  Counter open_connections;
  Counter connected_devices;
  Counter longpolls_waiting;
  Counter checkins;
  Counter rules_hash_mismatches;  // check-ins whose rules_hash is not their claimed version's
  Counter events[kEventKindCount];
  Counter enrollments[kEnrollmentResultCount];
};

// Values that are one number for the whole server, written by whoever computes them.
struct SharedGaugeData {
  Counter policy_version;
  Counter compliance_devices[kDeviceComplianceCount];
};

// A worker's handle on its slot. Cheap to copy; valid while the MetricsRegion (or, after fork, the
// inherited mapping) lives.
class MetricsSlot {
 public:
  MetricsSlot(WorkerSlotData* data, SharedGaugeData* shared) : data_(data), shared_(shared) {}

  void SetUp(bool up, uint64_t pid);
  void RecordRequest(Route route, int http_status, std::chrono::nanoseconds duration);
  void ConnectionOpened() { data_->open_connections.fetch_add(1, std::memory_order_relaxed); }
  void ConnectionClosed() { data_->open_connections.fetch_sub(1, std::memory_order_relaxed); }
  void DeviceConnected() { data_->connected_devices.fetch_add(1, std::memory_order_relaxed); }
  void DeviceDisconnected() { data_->connected_devices.fetch_sub(1, std::memory_order_relaxed); }
  void LongpollStarted() { data_->longpolls_waiting.fetch_add(1, std::memory_order_relaxed); }
  void LongpollEnded() { data_->longpolls_waiting.fetch_sub(1, std::memory_order_relaxed); }
  void RecordCheckin() { data_->checkins.fetch_add(1, std::memory_order_relaxed); }
  void RecordRulesHashMismatch() { data_->rules_hash_mismatches.fetch_add(1, std::memory_order_relaxed); }
  void RecordEvent(EventKind kind) { data_->events[static_cast<size_t>(kind)].fetch_add(1, std::memory_order_relaxed); }
  void RecordEnrollment(EnrollmentResult result) {
    data_->enrollments[static_cast<size_t>(result)].fetch_add(1, std::memory_order_relaxed);
  }

  // Server-wide gauges (any worker may set them; the last write wins).
  void SetPolicyVersion(uint64_t version) { shared_->policy_version.store(version, std::memory_order_relaxed); }
  void SetComplianceCounts(const std::array<uint64_t, kDeviceComplianceCount>& devices_by_state);

 private:
  WorkerSlotData* data_;
  SharedGaugeData* shared_;
};

// Owns the shared mapping (munmap on destruction in each process that holds it). Create it in the
// supervisor before fork(); a forked child inherits the mapping and its copy of this object.
class MetricsRegion {
 public:
  // kInvalidArgument for 0 or more than kMaxMetricsSlots slots.
  static Result<MetricsRegion> Create(uint32_t slot_count);

  MetricsRegion(MetricsRegion&& other) noexcept;
  MetricsRegion& operator=(MetricsRegion&& other) noexcept;
  MetricsRegion(const MetricsRegion&) = delete;
  MetricsRegion& operator=(const MetricsRegion&) = delete;
  ~MetricsRegion();

  uint32_t slot_count() const { return slot_count_; }
  // REQUIRES: index < slot_count()
  MetricsSlot Slot(uint32_t index) const;
  const WorkerSlotData& slot_data(uint32_t index) const;
  const SharedGaugeData& shared() const;

 private:
  MetricsRegion(void* base, size_t bytes, uint32_t slot_count) : base_(base), bytes_(bytes), slot_count_(slot_count) {}
  void Reset();

  void* base_ = nullptr;
  size_t bytes_ = 0;
  uint32_t slot_count_ = 0;
};

// A gauge the renderer does not hold in shared memory (computed at scrape time by the caller).
struct ExtraGauge {
  std::string name;  // [a-zA-Z_:][a-zA-Z0-9_:]*
  std::string help;
  std::vector<std::pair<std::string, std::string>> labels;  // names [a-zA-Z_][a-zA-Z0-9_]*
  double value = 0;
};

// Text exposition format 0.0.4 (Content-Type: text/plain; version=0.0.4): every family with
// # HELP and # TYPE, counters and gauges summed over the slots, histograms cumulative with
// le="+Inf", _sum and _count; appban_worker_up per worker. Extra gauges with the same name share
// one family. kInvalidArgument for an extra gauge with an invalid metric or label name.
Result<std::string> RenderPrometheus(const MetricsRegion& region, std::span<const ExtraGauge> extra_gauges = {});
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace appban::server
