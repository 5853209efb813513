// What every request handler of a server worker can reach. One WorkerContext per worker process;
// a worker is single-threaded (one io_context), so nothing here is locked. docs/architecture.md
// ("The server") explains the supervisor/worker split.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "appban/policy/evaluate.h"
#include "appban/policy/keys.h"
#include "appban/store/admin.h"
#include "appban/store/fleet.h"
#include "appban/store/store.h"

namespace appban::server {

struct ServerConfig;
class MetricsSlot;
class DeviceGenerations;

// The newest published bundle as this worker knows it.
struct PublishedBundle {
  int64_t version = 0;  // 0: nothing published yet
  policy::UnixSeconds issued_at = 0;
  std::string rules_hash;
  std::shared_ptr<const std::string> envelope;  // signed envelope text, shared by every response
  std::shared_ptr<const policy::Bundle> bundle;
  std::shared_ptr<const policy::PolicyIndex> index;
  // For each rule in the bundle: the version and time of the first bundle that carried it (when
  // the ban "was published", which compliance timing counts from).
  std::map<std::string, std::pair<int64_t, policy::UnixSeconds>, std::less<>> rule_first_published;
};

// Implemented by the worker: tells every worker (this one at once, the others through the
// generation file) that the fleet's shared state changed.
class FleetNotifier {
 public:
  virtual ~FleetNotifier() = default;
  // A bundle was recorded in the store: reload it and wake the long-polls.
  virtual void BundlePublished() = 0;
  // A device was revoked: drop its open long-polls.
  virtual void DeviceRevoked(const std::string& device_id) = 0;
};

struct WorkerContext {
  const ServerConfig* config = nullptr;
  store::Store* store = nullptr;
  store::FleetStore* fleet = nullptr;
  const policy::SigningKey* signing_key = nullptr;
  // Picks up a key rotated in the data directory (`appban policy keys init --rotate`) before
  // signing; may change signing_key. Unset in tests that hold one key.
  std::function<void()> refresh_keys;
  MetricsSlot* metrics = nullptr;
  FleetNotifier* notifier = nullptr;
  DeviceGenerations* generations = nullptr;  // shared by all workers (device_cache.h); required
  std::function<policy::UnixSeconds()> clock;
  // The latest bundle (kept current by the worker).
  std::function<const PublishedBundle&()> latest_bundle;
  std::string data_dir;
  int worker_index = 0;
};

}  // namespace appban::server
