// One server worker process: a single-threaded io_context serving the device protocol, the admin
// API, /healthz and /metrics on a listening socket the supervisor bound and shared. Each worker
// has its own database connections (one for requests, one for the group-commit writer thread, one
// for the assessment pool's threads).
// docs/architecture.md, "The server", explains the split.
#pragma once

#include <string>

#include "appban/server/config.h"
#include "appban/server/device_cache.h"
#include "appban/server/metrics.h"
#include "appban/server/shared_rate_limiter.h"

namespace appban::server {

struct WorkerInputs {
  int listening_fd = -1;
  int worker_index = 0;
  const MetricsRegion* metrics = nullptr;           // shared with the other workers
  DeviceGenerations* generations = nullptr;         // shared with the other workers
  SharedRateLimiter* enrollment_limiter = nullptr;  // shared with the other workers
  SharedRateLimiter* sign_in_limiter = nullptr;     // POST /v1/session, shared likewise
  std::string metrics_token;                        // bearer token GET /metrics requires; empty: loopback clients only
  std::string certificate_pem;                      // leaf (+ chain); empty for plain HTTP
  std::string private_key_pem;
  std::string client_ca_pem;  // identity.client_certificates: mutual TLS when not empty
  std::string client_crl_pem;
};

// Serves until SIGTERM/SIGINT, then shuts down gracefully (in-flight requests finish, waiting
// polls get 503, queued check-ins are committed). Returns the process exit status.
int RunWorker(const ServerConfig& config, const WorkerInputs& inputs);

// Maps a request path to its metrics route label.
Route RouteOf(std::string_view path);

}  // namespace appban::server
