// Measurements of one simulator process, in a form several processes' results can be merged
// from: a log-bucketed latency histogram (about 3% resolution), error counts by kind, and for
// each bundle version the wall-clock times at which devices received and acknowledged it.
// Plain values; not thread-safe to mutate concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"

namespace appban::sim {

class LatencyHistogram {
 public:
  void Record(uint64_t microseconds);
  void Merge(const LatencyHistogram& other);
  uint64_t count() const { return count_; }
  // The value at quantile q in [0, 1] (the upper edge of its bucket), 0 when empty.
  uint64_t Quantile(double q) const;
  uint64_t max() const { return max_; }

  Json ToJson() const;  // [[bucket, count], ...] plus max
  static Result<LatencyHistogram> FromJson(const Json& json);

 private:
  static size_t BucketOf(uint64_t value);
  static uint64_t UpperEdge(size_t bucket);
  std::map<size_t, uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

struct BundleTimeline {
  int64_t first_received_ms = 0;     // Unix ms; 0 = not received by this process
  uint64_t received = 0;             // devices that applied it
  std::vector<int64_t> received_ms;  // Unix ms at which each device had it (sorted once merged)
  std::vector<int64_t> acked_ms;     // Unix ms of each device's compliant check-in answer
};

// One process's results (and, after MergeFrom, a whole run's).
struct ProcessSummary {
  uint64_t devices = 0;
  uint64_t enrolled_now = 0;
  uint64_t loaded_from_state = 0;
  uint64_t connections_opened = 0;
  uint64_t checkins = 0;
  uint64_t polls = 0;
  uint64_t bundle_verifications = 0;  // full signature checks (one per distinct envelope)
  std::map<std::string, uint64_t> errors;
  // steady mode
  uint64_t requests = 0;
  double measured_seconds = 0;  // the longest measuring window of the merged processes
  LatencyHistogram latency;
  // fleet mode
  std::map<int64_t, BundleTimeline> bundles;
  // devices enrolled during this run: index, device_id, credential, group (for --state)
  Json new_devices = Json::array();
  std::vector<std::string> policy_keys_pem;
  int64_t longpoll_timeout = 0;
  int64_t checkin_interval = 0;

  void MergeFrom(const ProcessSummary& other);
  Json ToJson() const;
  static Result<ProcessSummary> FromJson(const Json& json);
};

// Time from `reference_ms` until `fraction` of `fleet_size` devices had acknowledged, in seconds;
// nullopt when fewer did. `acked_ms` must be sorted.
std::optional<double> SecondsToFraction(const std::vector<int64_t>& acked_ms, uint64_t fleet_size, double fraction,
                                        int64_t reference_ms);

}  // namespace appban::sim
