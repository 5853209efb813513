#include "appban/server/metrics.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>

namespace appban::server {
namespace {

static_assert(std::is_trivially_destructible_v<WorkerSlotData> && std::is_trivially_destructible_v<SharedGaugeData>,
              "the region is unmapped without running destructors");
static_assert(sizeof(WorkerSlotData) % 64 == 0);

// The shared gauges sit first, padded to a cache line; slots follow back to back.
constexpr size_t kSlotsOffset = (sizeof(SharedGaugeData) + 63) / 64 * 64;

constexpr std::array<std::string_view, kRouteCount> kRouteNames = {"enroll", "checkin", "poll", "admin",
                                                                   "health", "metrics", "other"};
constexpr std::array<std::string_view, kEventKindCount> kEventKindNames = {
    "removed", "remove_failed", "install_refused", "waiver_applied", "bundle_applied", "bundle_refused", "other"};
constexpr std::array<std::string_view, kEnrollmentResultCount> kEnrollmentResultNames = {
    "enrolled", "token_invalid", "token_expired", "token_used", "rate_limited", "bad_request", "error"};
constexpr std::array<std::string_view, kDeviceComplianceCount> kDeviceComplianceNames = {
    "compliant", "violating", "pending", "stale", "mismatch", "cannot_enforce"};
// Families rendered from the region; an extra gauge may not reuse one of these names.
constexpr std::array<std::string_view, 12> kBuiltInFamilies = {"appban_http_requests_total",
                                                               "appban_http_request_duration_seconds",
                                                               "appban_open_connections",
                                                               "appban_connected_devices",
                                                               "appban_longpolls_waiting",
                                                               "appban_checkins_total",
                                                               "appban_checkins_rules_hash_mismatch_total",
                                                               "appban_events_total",
                                                               "appban_enrollments_total",
                                                               "appban_policy_version",
                                                               "appban_compliance_devices",
                                                               "appban_worker_up"};

constexpr std::array<std::string_view, kStatusClassCount> kStatusClassNames = {"1xx", "2xx", "3xx", "4xx", "5xx"};

uint64_t Load(const Counter& counter) { return counter.load(std::memory_order_relaxed); }

std::string FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Plain decimals ("0.0005", not "5e-04") for the usual magnitudes, so bucket labels read the way
  // people write them in queries (le="0.0005"); exponents only at the extremes.
  const double magnitude = std::fabs(value);
  const bool plain = value == 0 || (magnitude >= 1e-4 && magnitude < 1e15);
  std::array<char, 128> buffer{};
  auto [end, error] = plain
                          ? std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::fixed)
                          : std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (error != std::errc()) return "NaN";
  return std::string(buffer.data(), end);
}

bool IsMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsLabelName(std::string_view name) {
  return IsMetricName(name) && name.find(':') == std::string_view::npos && !name.starts_with("__");
}

// Label values may hold any UTF-8; the format escapes backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// HELP text escapes backslash and newline only.
std::string EscapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

class Writer {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += EscapeHelp(help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void Sample(std::string_view name, std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              std::string_view value) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [label, label_value] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += label;
        out_ += "=\"";
        out_ += EscapeLabelValue(label_value);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void Raw(std::string_view text) { out_ += text; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string_view RouteName(Route route) { return kRouteNames[static_cast<size_t>(route)]; }
std::string_view EventKindName(EventKind kind) { return kEventKindNames[static_cast<size_t>(kind)]; }
std::string_view EnrollmentResultName(EnrollmentResult result) {
  return kEnrollmentResultNames[static_cast<size_t>(result)];
}
std::string_view DeviceComplianceName(DeviceCompliance state) {
  return kDeviceComplianceNames[static_cast<size_t>(state)];
}

EventKind EventKindFromName(std::string_view name) {
  for (size_t i = 0; i < kEventKindNames.size(); ++i) {
    if (kEventKindNames[i] == name) return static_cast<EventKind>(i);
  }
  return EventKind::kOther;
}

void MetricsSlot::SetUp(bool up, uint64_t pid) {
  data_->pid.store(pid, std::memory_order_relaxed);
  data_->up.store(up ? 1 : 0, std::memory_order_relaxed);
}

void MetricsSlot::RecordRequest(Route route, int http_status, std::chrono::nanoseconds duration) {
  const size_t route_index = static_cast<size_t>(route);
  const size_t status_class =
      (http_status >= 100 && http_status <= 599) ? static_cast<size_t>(http_status / 100 - 1) : kStatusClassCount - 1;
  data_->requests[route_index][status_class].fetch_add(1, std::memory_order_relaxed);

  const int64_t nanoseconds = std::max<int64_t>(duration.count(), 0);
  const double seconds = static_cast<double>(nanoseconds) / 1e9;
  // Prometheus buckets are "less than or equal": the first bound >= the value.
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(kDurationBucketBounds.begin(), kDurationBucketBounds.end(), seconds) -
                          kDurationBucketBounds.begin());
  data_->duration_buckets[route_index][bucket].fetch_add(1, std::memory_order_relaxed);
  data_->duration_sum_nanoseconds[route_index].fetch_add(static_cast<uint64_t>(nanoseconds), std::memory_order_relaxed);
}

void MetricsSlot::SetComplianceCounts(const std::array<uint64_t, kDeviceComplianceCount>& devices_by_state) {
  for (size_t i = 0; i < kDeviceComplianceCount; ++i) {
    shared_->compliance_devices[i].store(devices_by_state[i], std::memory_order_relaxed);
  }
}

Result<MetricsRegion> MetricsRegion::Create(uint32_t slot_count) {
  if (slot_count == 0 || slot_count > kMaxMetricsSlots) {
    return Status::InvalidArgument("metrics: slot count " + std::to_string(slot_count) + " is outside 1.." +
                                   std::to_string(kMaxMetricsSlots));
  }
  const size_t bytes = kSlotsOffset + sizeof(WorkerSlotData) * slot_count;
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return Status::Unavailable(std::string("metrics: mmap: ") + std::strerror(errno));
  // Begin the objects' lifetimes in the fresh (zeroed) mapping; their destructors are trivial.
  std::construct_at(static_cast<SharedGaugeData*>(base));
  auto* slots = reinterpret_cast<WorkerSlotData*>(static_cast<char*>(base) + kSlotsOffset);
  for (uint32_t i = 0; i < slot_count; ++i) std::construct_at(slots + i);
  return MetricsRegion(base, bytes, slot_count);
}

MetricsRegion::MetricsRegion(MetricsRegion&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      slot_count_(std::exchange(other.slot_count_, 0)) {}

MetricsRegion& MetricsRegion::operator=(MetricsRegion&& other) noexcept {
  if (this != &other) {
    Reset();
    base_ = std::exchange(other.base_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    slot_count_ = std::exchange(other.slot_count_, 0);
  }
  return *this;
}

MetricsRegion::~MetricsRegion() { Reset(); }

void MetricsRegion::Reset() {
  if (base_ != nullptr) munmap(base_, bytes_);
  base_ = nullptr;
}

const WorkerSlotData& MetricsRegion::slot_data(uint32_t index) const {
  return reinterpret_cast<const WorkerSlotData*>(static_cast<const char*>(base_) + kSlotsOffset)[index];
}

const SharedGaugeData& MetricsRegion::shared() const { return *static_cast<const SharedGaugeData*>(base_); }

MetricsSlot MetricsRegion::Slot(uint32_t index) const {
  // The slot is written through this handle; the region's own constness only guards the mapping.
  return MetricsSlot(const_cast<WorkerSlotData*>(&slot_data(index)), const_cast<SharedGaugeData*>(&shared()));
}

Result<std::string> RenderPrometheus(const MetricsRegion& region, std::span<const ExtraGauge> extra_gauges) {
  for (const auto& gauge : extra_gauges) {
    if (!IsMetricName(gauge.name))
      return Status::InvalidArgument("metrics: invalid metric name \"" + gauge.name + "\"");
    for (std::string_view built_in : kBuiltInFamilies) {
      if (gauge.name.starts_with(built_in)) {
        return Status::InvalidArgument("metrics: \"" + gauge.name + "\" collides with the built-in " +
                                       std::string(built_in));
      }
    }
    for (const auto& label : gauge.labels) {
      if (!IsLabelName(label.first)) {
        return Status::InvalidArgument("metrics: " + gauge.name + ": invalid label name \"" + label.first + "\"");
      }
    }
  }

  // Sum every slot once, so each family is rendered from one consistent pass.
  uint64_t requests[kRouteCount][kStatusClassCount] = {};
  uint64_t buckets[kRouteCount][kDurationBucketCount] = {};
  uint64_t duration_sum[kRouteCount] = {};
  uint64_t checkins = 0;
  uint64_t rules_hash_mismatches = 0;
  uint64_t events[kEventKindCount] = {};
  uint64_t enrollments[kEnrollmentResultCount] = {};
  // Per-slot gauges go up and down by the same worker; summed with wrap-around and read signed.
  uint64_t open_connections = 0, connected_devices = 0, longpolls_waiting = 0;
  for (uint32_t s = 0; s < region.slot_count(); ++s) {
    const WorkerSlotData& slot = region.slot_data(s);
    for (size_t r = 0; r < kRouteCount; ++r) {
      for (size_t c = 0; c < kStatusClassCount; ++c) requests[r][c] += Load(slot.requests[r][c]);
      for (size_t b = 0; b < kDurationBucketCount; ++b) buckets[r][b] += Load(slot.duration_buckets[r][b]);
      duration_sum[r] += Load(slot.duration_sum_nanoseconds[r]);
    }
    checkins += Load(slot.checkins);
    rules_hash_mismatches += Load(slot.rules_hash_mismatches);
    for (size_t k = 0; k < kEventKindCount; ++k) events[k] += Load(slot.events[k]);
    for (size_t k = 0; k < kEnrollmentResultCount; ++k) enrollments[k] += Load(slot.enrollments[k]);
    open_connections += Load(slot.open_connections);
    connected_devices += Load(slot.connected_devices);
    longpolls_waiting += Load(slot.longpolls_waiting);
  }
  auto gauge_text = [](uint64_t sum) { return std::to_string(static_cast<int64_t>(sum)); };

  Writer out;
  out.Family("appban_http_requests_total", "counter", "HTTP requests answered, by route and status class.");
  for (size_t r = 0; r < kRouteCount; ++r) {
    for (size_t c = 0; c < kStatusClassCount; ++c) {
      out.Sample("appban_http_requests_total", {{"route", kRouteNames[r]}, {"code", kStatusClassNames[c]}},
                 std::to_string(requests[r][c]));
    }
  }

  out.Family("appban_http_request_duration_seconds", "histogram",
             "Time from a complete request header to the response written, by route (long-polls included).");
  for (size_t r = 0; r < kRouteCount; ++r) {
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kDurationBucketCount; ++b) {
      cumulative += buckets[r][b];
      const std::string bound = b < kDurationBucketBounds.size() ? FormatDouble(kDurationBucketBounds[b]) : "+Inf";
      out.Sample("appban_http_request_duration_seconds_bucket", {{"route", kRouteNames[r]}, {"le", bound}},
                 std::to_string(cumulative));
    }
    out.Sample("appban_http_request_duration_seconds_sum", {{"route", kRouteNames[r]}},
               FormatDouble(static_cast<double>(duration_sum[r]) / 1e9));
    out.Sample("appban_http_request_duration_seconds_count", {{"route", kRouteNames[r]}}, std::to_string(cumulative));
  }

  out.Family("appban_open_connections", "gauge", "Client connections open now, over all workers.");
  out.Sample("appban_open_connections", {}, gauge_text(open_connections));
  out.Family("appban_connected_devices", "gauge", "Enrolled devices with a request in progress (long-polls included).");
  out.Sample("appban_connected_devices", {}, gauge_text(connected_devices));
  out.Family("appban_longpolls_waiting", "gauge", "Long-poll requests waiting for a new bundle.");
  out.Sample("appban_longpolls_waiting", {}, gauge_text(longpolls_waiting));

  out.Family("appban_checkins_total", "counter", "Device check-ins accepted.");
  out.Sample("appban_checkins_total", {}, std::to_string(checkins));
  out.Family("appban_checkins_rules_hash_mismatch_total", "counter",
             "Check-ins whose rules_hash is not the hash of the bundle version they claim to enforce.");
  out.Sample("appban_checkins_rules_hash_mismatch_total", {}, std::to_string(rules_hash_mismatches));
  out.Family("appban_events_total", "counter", "Device events received, by kind.");
  for (size_t k = 0; k < kEventKindCount; ++k) {
    out.Sample("appban_events_total", {{"kind", kEventKindNames[k]}}, std::to_string(events[k]));
  }
  out.Family("appban_enrollments_total", "counter", "Enrolment attempts, by result.");
  for (size_t k = 0; k < kEnrollmentResultCount; ++k) {
    out.Sample("appban_enrollments_total", {{"result", kEnrollmentResultNames[k]}}, std::to_string(enrollments[k]));
  }

  const SharedGaugeData& shared = region.shared();
  out.Family("appban_policy_version", "gauge", "Version of the newest published policy bundle (0: none).");
  out.Sample("appban_policy_version", {}, std::to_string(Load(shared.policy_version)));
  out.Family("appban_compliance_devices", "gauge", "Enrolled devices by compliance state, as last computed.");
  for (size_t k = 0; k < kDeviceComplianceCount; ++k) {
    out.Sample("appban_compliance_devices", {{"state", kDeviceComplianceNames[k]}},
               std::to_string(Load(shared.compliance_devices[k])));
  }
  out.Family("appban_worker_up", "gauge", "1 for each worker process that is serving.");
  for (uint32_t s = 0; s < region.slot_count(); ++s) {
    out.Sample("appban_worker_up", {{"worker", std::to_string(s)}}, std::to_string(Load(region.slot_data(s).up)));
  }

  // Extra gauges: grouped by name in first-seen order so each family's samples are contiguous,
  // as the format requires.
  std::vector<std::string_view> names;
  for (const auto& gauge : extra_gauges) {
    if (std::find(names.begin(), names.end(), gauge.name) == names.end()) names.push_back(gauge.name);
  }
  for (std::string_view name : names) {
    const auto first =
        std::find_if(extra_gauges.begin(), extra_gauges.end(), [&](const auto& g) { return g.name == name; });
    out.Family(name, "gauge", first->help);
    for (const auto& gauge : extra_gauges) {
      if (gauge.name != name) continue;
      std::string line(gauge.name);
      if (!gauge.labels.empty()) {
        line += '{';
        for (size_t i = 0; i < gauge.labels.size(); ++i) {
          if (i > 0) line += ',';
          line += gauge.labels[i].first + "=\"" + EscapeLabelValue(gauge.labels[i].second) + "\"";
        }
        line += '}';
      }
      line += ' ' + FormatDouble(gauge.value) + '\n';
      out.Raw(line);
    }
  }
  return out.Take();
}

}  // namespace appban::server
