// What every request handler of a server worker can reach. One WorkerContext per worker process;
// requests are handled on one thread (the worker's io_context), so nothing here is locked. The
// members other threads use, the AssessmentPool and the AdminReader, lock what their threads
// share. docs/architecture.md ("The server") explains the supervisor/worker split.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "appban/policy/evaluate.h"
#include "appban/policy/keys.h"
#include "appban/store/fleet.h"
#include "appban/store/store.h"
#include "appban/verify/published_bundle.h"

namespace appban::server {

struct ServerConfig;
class MetricsSlot;
class DeviceGenerations;
class AssessmentPool;
class AdminReader;
class SharedRateLimiter;
}  // namespace appban::server
namespace appban::identity {
class OidcVerifier;
}  // namespace appban::identity
namespace appban::server {

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
  // Assesses uploaded APKs off this thread; without one, uploads are refused with 503.
  AssessmentPool* assessments = nullptr;
  // Runs the admin API's read-only routes off this thread (admin_reader.h); without one they run
  // here (tests that call the admin API directly).
  AdminReader* admin_reader = nullptr;
  // Validates OpenID Connect bearer tokens from its cache (identity/oidc.h); null when no provider
  // is configured (then only API tokens authenticate).
  identity::OidcVerifier* oidc = nullptr;
  // Signs console session cookies (console_session.h); empty: sessions are refused with 503.
  std::string console_session_key;
  // Buckets for POST /v1/session per source address, shared by the workers; null: no limit
  // (tests that build a context by hand).
  SharedRateLimiter* sign_in_limiter = nullptr;
  std::function<UnixSeconds()> clock;
  // The latest bundle (kept current by the worker).
  std::function<const verify::PublishedBundle&()> latest_bundle;
  std::string data_dir;
  int worker_index = 0;
};

}  // namespace appban::server
