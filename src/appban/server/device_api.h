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
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "appban/net/http.h"
#include "appban/protocol/messages.h"
#include "appban/server/bundle_hub.h"
#include "appban/server/checkin_writer.h"
#include "appban/server/context.h"
#include "appban/server/device_cache.h"
#include "appban/server/metrics.h"
#include "appban/server/shared_rate_limiter.h"
#include "appban/store/fleet.h"
#include "appban/verify/published_bundle.h"

namespace appban::server {

// Device-side settings the API needs (from ServerConfig).
struct DeviceApiSettings {
  int64_t checkin_interval = 300;
  int64_t longpoll_timeout = 60;
  uint32_t enrollment_burst = 10;
  uint32_t enrollment_per_minute = 30;
  // The server's buckets, shared by all its workers (the supervisor creates them before forking);
  // when null the API makes its own from the two numbers above (tests, a single process).
  SharedRateLimiter* enrollment_limiter = nullptr;
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
  // POST /v1/unenroll: the device leaves the fleet (`appban agent unenrol`); its credential is
  // revoked at once and compliance no longer counts it.
  void Unenroll(const net::HttpRequest& request, net::Responder respond);

  // Group membership changes rarely: re-read at most this often.
  void InvalidateGroups() { groups_loaded_at_ = {}; }

 private:
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
  // `rules_hash_mismatch`: the answer says so and carries the signed bundle whatever the version.
  std::string CheckinBody(int64_t applied_version, bool send_inventory, int64_t events_acked,
                          bool rules_hash_mismatch) const;
  // The rules_hash this server issued `version` with; nullopt when it issued no such version.
  Result<std::optional<std::string>> IssuedRulesHash(int64_t version, const verify::PublishedBundle& latest);

  // A check-in in steps: PlanCheckin reads what the device reported, EvaluateCompliance (when
  // something compliance depends on changed) adds the rule states it changes, and a durable write
  // is answered by AnswerAfterCommit once the CheckinWriter committed it.
  struct CheckinPlan {
    store::CheckinWrite write;
    bool durable = false;                                 // the device relies on the write: answer only after commit
    bool send_inventory = false;                          // ask the device for its inventory in the answer
    std::set<std::string, std::less<>> removed_rule_ids;  // rules the device reported removing an app for
    std::optional<std::string> refusal;                   // the check-in is refused (400) with this message
    int64_t stored_seq_before = 0;                        // events above it are new (the metrics count only those)
    bool rules_hash_mismatch = false;                     // the reported rules_hash is not the claimed version's
  };
  // Moves the canonical inventory out of `checkin`. `rules_hash_mismatch`: the verdict on the
  // check-in's claim (verify::CheckRulesHash).
  static CheckinPlan PlanCheckin(const std::string& id, const CachedDevice& known, protocol::CheckinRequest& checkin,
                                 std::optional<store::RulesHashMismatch> rules_hash_mismatch, UnixSeconds now);
  // Moves the apps some rule mentions out of `checkin.inventory`. Fails only when the store does.
  Status EvaluateCompliance(const std::string& id, const CachedDevice& known, protocol::CheckinRequest& checkin,
                            const verify::PublishedBundle& latest, UnixSeconds now, CheckinPlan& plan);
  void AnswerAfterCommit(store::CheckinWrite write, int64_t applied_version, bool send_inventory,
                         bool rules_hash_mismatch, int64_t stored_seq_before, net::Responder respond);

  WorkerContext& context_;
  BundleHub& hub_;
  CheckinWriter& writer_;
  DeviceApiSettings settings_;
  std::function<void()> catch_up_;
  std::optional<SharedRateLimiter> own_enrollment_limiter_;  // when settings_ brought none
  SharedRateLimiter* enrollment_limiter_ = nullptr;
  std::unordered_map<std::string, std::vector<std::string>> groups_by_device_;
  std::chrono::steady_clock::time_point groups_loaded_at_{};
  DeviceCache cache_;
  // Version -> rules_hash as issued (nullopt: never issued), read from the store once: a version
  // at or below the latest never changes (versions only go up).
  std::map<int64_t, std::optional<std::string>> issued_rules_hashes_;
  uint64_t poll_jitter_state_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace appban::server
