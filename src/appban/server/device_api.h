// The device protocol's endpoints (docs/protocol.md): POST /v1/enroll, POST /v1/checkin and
// GET /v1/poll. Runs on a worker's io_context thread; the only blocking work is a primary-key
// read of a device the worker's DeviceCache does not hold (or holds stale), and the stored match
// records and rule states when a device must be re-evaluated. Durable writes of check-ins and enrolments go through the
// CheckinWriter (group commit) and the device is answered after commit. (An enrolment whose token
// names a group still lists the device in that group on this thread after the commit.)
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "appban/net/http.h"
#include "appban/server/bundle_hub.h"
#include "appban/server/checkin_writer.h"
#include "appban/server/context.h"
#include "appban/server/device_cache.h"
#include "appban/server/metrics.h"

namespace appban::server {

// Device-side settings the API needs (from ServerConfig).
struct DeviceApiSettings {
  int64_t checkin_interval = 300;
  int64_t longpoll_timeout = 60;
  uint32_t enrollment_burst = 10;
  uint32_t enrollment_per_minute = 30;
  // last_seen of a device whose check-in changed nothing else is written at most this often, so
  // a steady fleet costs the database nothing per check-in (compliance staleness is counted in
  // minutes).
  int64_t last_seen_resolution = 60;
};

class DeviceApi {
 public:
  // `catch_up` loads a bundle another worker published since this worker last looked.
  DeviceApi(WorkerContext& context, BundleHub& hub, CheckinWriter& writer, DeviceApiSettings settings,
            std::function<void()> catch_up);

  void Enroll(const net::HttpRequest& request, net::Responder respond);
  void Checkin(const net::HttpRequest& request, net::Responder respond);
  void Poll(const net::HttpRequest& request, net::Responder respond);

  // Group membership changes rarely: re-read at most this often.
  void InvalidateGroups() { groups_loaded_at_ = {}; }

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled;
  };
  bool AllowEnrollment(const std::string& address);
  void FinishEnrollment(const Result<store::Enrollment>& enrolled, net::Responder& respond);
  void CountEnrollment(EnrollmentResult result);
  struct AuthenticatedDevice {
    std::string id;
    CachedDevice* state = nullptr;  // valid until the handler returns or yields
  };
  // From the worker's device cache when it is current, else from the database (which refills it).
  Result<AuthenticatedDevice> Authenticate(const net::HttpRequest& request, net::HttpResponse* refusal);
  std::vector<std::string> GroupsOf(const std::string& device_id, const std::string& token_group);
  std::string CheckinBody(int64_t applied_version, bool send_inventory, int64_t events_acked) const;

  WorkerContext& context_;
  BundleHub& hub_;
  CheckinWriter& writer_;
  DeviceApiSettings settings_;
  std::function<void()> catch_up_;
  std::unordered_map<std::string, Bucket> enrollment_buckets_;
  std::unordered_map<std::string, std::vector<std::string>> groups_by_device_;
  std::chrono::steady_clock::time_point groups_loaded_at_{};
  DeviceCache cache_;
  uint64_t poll_jitter_state_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace appban::server
