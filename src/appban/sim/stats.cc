#include "appban/sim/stats.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace appban::sim {
namespace {
constexpr unsigned kSubBucketBits = 5;  // 32 buckets per power of two: ~3% resolution
constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
}  // namespace

size_t LatencyHistogram::BucketOf(uint64_t value) {
  if (value < kSubBuckets) return static_cast<size_t>(value);
  unsigned exponent = 63 - static_cast<unsigned>(std::countl_zero(value));  // >= kSubBucketBits
  uint64_t sub = (value >> (exponent - kSubBucketBits)) & (kSubBuckets - 1);
  return static_cast<size_t>((exponent - kSubBucketBits + 1) * kSubBuckets + sub);
}

uint64_t LatencyHistogram::UpperEdge(size_t bucket) {
  if (bucket < kSubBuckets) return bucket;
  uint64_t exponent = bucket / kSubBuckets - 1 + kSubBucketBits;
  uint64_t sub = bucket % kSubBuckets;
  uint64_t step = uint64_t{1} << (exponent - kSubBucketBits);
  return ((kSubBuckets + sub) << (exponent - kSubBucketBits)) + step - 1;
}

void LatencyHistogram::Record(uint64_t microseconds) {
  ++buckets_[BucketOf(microseconds)];
  ++count_;
  max_ = std::max(max_, microseconds);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (const auto& [bucket, n] : other.buckets_) buckets_[bucket] += n;
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (const auto& [bucket, n] : buckets_) {
    seen += n;
    if (seen >= rank) return std::min(UpperEdge(bucket), max_);
  }
  return max_;
}

Json LatencyHistogram::ToJson() const {
  Json buckets = Json::array();
  for (const auto& [bucket, n] : buckets_) buckets.push_back(Json::array({bucket, n}));
  return Json{{"buckets", buckets}, {"max", max_}};
}

Result<LatencyHistogram> LatencyHistogram::FromJson(const Json& json) {
  LatencyHistogram histogram;
  try {
    for (const auto& pair : json.at("buckets")) {
      uint64_t n = pair.at(1).get<uint64_t>();
      histogram.buckets_[pair.at(0).get<size_t>()] += n;
      histogram.count_ += n;
    }
    histogram.max_ = json.at("max").get<uint64_t>();
  } catch (const Json::exception& e) {
    return Status::Corruption(std::string("latency histogram: ") + e.what());
  }
  return histogram;
}

void ProcessSummary::MergeFrom(const ProcessSummary& other) {
  devices += other.devices;
  enrolled_now += other.enrolled_now;
  loaded_from_state += other.loaded_from_state;
  connections_opened += other.connections_opened;
  checkins += other.checkins;
  polls += other.polls;
  bundle_verifications += other.bundle_verifications;
  for (const auto& [kind, n] : other.errors) errors[kind] += n;
  requests += other.requests;
  measured_seconds = std::max(measured_seconds, other.measured_seconds);
  latency.Merge(other.latency);
  for (const auto& [version, timeline] : other.bundles) {
    BundleTimeline& mine = bundles[version];
    if (timeline.first_received_ms != 0 &&
        (mine.first_received_ms == 0 || timeline.first_received_ms < mine.first_received_ms)) {
      mine.first_received_ms = timeline.first_received_ms;
    }
    mine.received += timeline.received;
    auto merge_sorted = [](std::vector<int64_t>& into, const std::vector<int64_t>& from) {
      std::vector<int64_t> merged;
      merged.reserve(into.size() + from.size());
      std::merge(into.begin(), into.end(), from.begin(), from.end(), std::back_inserter(merged));
      into = std::move(merged);
    };
    merge_sorted(mine.received_ms, timeline.received_ms);
    merge_sorted(mine.acked_ms, timeline.acked_ms);
  }
  for (const auto& device : other.new_devices) new_devices.push_back(device);
  if (policy_keys_pem.empty()) policy_keys_pem = other.policy_keys_pem;
  longpoll_timeout = std::max(longpoll_timeout, other.longpoll_timeout);
  checkin_interval = std::max(checkin_interval, other.checkin_interval);
}

Json ProcessSummary::ToJson() const {
  Json bundle_json = Json::object();
  for (const auto& [version, timeline] : bundles) {
    bundle_json[std::to_string(version)] = {{"first_received_ms", timeline.first_received_ms},
                                            {"received", timeline.received},
                                            {"received_ms", timeline.received_ms},
                                            {"acked_ms", timeline.acked_ms}};
  }
  return Json{{"devices", devices},
              {"enrolled_now", enrolled_now},
              {"loaded_from_state", loaded_from_state},
              {"connections_opened", connections_opened},
              {"checkins", checkins},
              {"polls", polls},
              {"bundle_verifications", bundle_verifications},
              {"errors", errors},
              {"requests", requests},
              {"measured_seconds", measured_seconds},
              {"latency", latency.ToJson()},
              {"bundles", bundle_json},
              {"new_devices", new_devices},
              {"policy_keys", policy_keys_pem},
              {"longpoll_timeout", longpoll_timeout},
              {"checkin_interval", checkin_interval}};
}

Result<ProcessSummary> ProcessSummary::FromJson(const Json& json) {
  ProcessSummary s;
  try {
    s.devices = json.at("devices").get<uint64_t>();
    s.enrolled_now = json.at("enrolled_now").get<uint64_t>();
    s.loaded_from_state = json.at("loaded_from_state").get<uint64_t>();
    s.connections_opened = json.at("connections_opened").get<uint64_t>();
    s.checkins = json.at("checkins").get<uint64_t>();
    s.polls = json.at("polls").get<uint64_t>();
    s.bundle_verifications = json.at("bundle_verifications").get<uint64_t>();
    s.errors = json.at("errors").get<std::map<std::string, uint64_t>>();
    s.requests = json.at("requests").get<uint64_t>();
    s.measured_seconds = json.at("measured_seconds").get<double>();
    APPBAN_ASSIGN_OR_RETURN(s.latency, LatencyHistogram::FromJson(json.at("latency")));
    for (const auto& [version, timeline] : json.at("bundles").items()) {
      BundleTimeline t;
      t.first_received_ms = timeline.at("first_received_ms").get<int64_t>();
      t.received = timeline.at("received").get<uint64_t>();
      t.acked_ms = timeline.at("acked_ms").get<std::vector<int64_t>>();
      std::sort(t.acked_ms.begin(), t.acked_ms.end());
      if (timeline.contains("received_ms")) {
        t.received_ms = timeline.at("received_ms").get<std::vector<int64_t>>();
        std::sort(t.received_ms.begin(), t.received_ms.end());
      }
      s.bundles[std::stoll(version)] = std::move(t);
    }
    s.new_devices = json.at("new_devices");
    s.policy_keys_pem = json.at("policy_keys").get<std::vector<std::string>>();
    s.longpoll_timeout = json.at("longpoll_timeout").get<int64_t>();
    s.checkin_interval = json.at("checkin_interval").get<int64_t>();
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("process summary: ") + e.what());
  }
  return s;
}

std::optional<double> SecondsToFraction(const std::vector<int64_t>& acked_ms, uint64_t fleet_size, double fraction,
                                        int64_t reference_ms) {
  if (fleet_size == 0) return std::nullopt;
  uint64_t needed = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(fraction * static_cast<double>(fleet_size))));
  if (acked_ms.size() < needed) return std::nullopt;
  return static_cast<double>(acked_ms[needed - 1] - reference_ms) / 1000.0;
}

}  // namespace appban::sim
