// An emulator of Google's Android Management API and OAuth token endpoint for the tests: a real
// HTTP server on 127.0.0.1 (net::HttpServer on a thread of its own) serving the paths the real
// service serves:
//   POST  /token                                   JWT-bearer grant → access token
//   GET   /v1/enterprises/{e}/policies/{p}         policies.get
//   PATCH /v1/enterprises/{e}/policies/{p}?updateMask=a,b   policies.patch
//   GET   /v1/enterprises/{e}/policies?pageSize&pageToken   policies.list
//   GET   /v1/enterprises/{e}/devices?pageSize&pageToken    devices.list
// Every PATCH body is validated against the discovery document's Policy schema (unknown field,
// wrong type, wrong enum value → 400 INVALID_ARGUMENT with Google's error body). The token
// endpoint verifies the assertion's RS256 signature with the service account's public key and
// its claims (iss, scope, aud, iat, exp ≤ 1 h, not expired); every API call must carry a bearer
// the endpoint issued and that has not expired. Lists page at max_page_size. A throttle budget
// answers 429 once every N API calls; FailNext injects 503s. Devices obey their policy: when a
// policy is stored, every device on it reports each app the policy BLOCKs as REMOVED and applies
// the new version, as a real device does at its next sync.
//
// Thread-safety: the public methods may be called from the test thread while the server runs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/mutex.h"
#include "appban/common/status.h"
#include "discovery_schema.h"

namespace appban::testing {

struct AmapiEmulatorOptions {
  std::string spec_path;  // the discovery document (tests/specs/amapi/androidmanagement-v1.json)
  std::string service_account_public_key_pem;
  std::string client_email;
  int64_t token_lifetime_seconds = 3600;
  int max_page_size = 100;
  // Every `throttle_every`-th API call is answered 429 with Retry-After `retry_after` (0: never).
  int throttle_every = 0;
  std::string retry_after = "0";
  // Benchmarks: devices.list serves this many generated phones (on policy "default", each with
  // synthetic_apps_per_device reports, the last com.tencent.mm: INSTALLED on every
  // synthetic_violating_every-th phone, REMOVED on the others) instead of the PutDevice ones.
  int64_t synthetic_devices = 0;
  // HTTPS with a certificate for 127.0.0.1 from a CA of the emulator's own (ca_pem()).
  bool tls = false;
  int synthetic_apps_per_device = 50;
  int64_t synthetic_violating_every = 100;
};

class AmapiEmulator {
 public:
  static Result<std::unique_ptr<AmapiEmulator>> Start(AmapiEmulatorOptions options);
  ~AmapiEmulator();

  std::string base_url() const;                   // http://127.0.0.1:PORT (https with options.tls)
  std::string ca_pem() const { return ca_pem_; }  // the CA to trust with options.tls
  std::string token_uri() const;                  // http://127.0.0.1:PORT/token

  void PutPolicy(const std::string& name, Json policy);
  Json GetPolicy(const std::string& name) const;  // null when absent
  // `device` must carry name and policyName.
  void PutDevice(Json device);
  Json GetDevice(const std::string& name) const;
  // The next `count` API calls matching `method` and `path` ("" matches any) get `status`.
  void FailNext(int count, int status, const std::string& method = "", const std::string& path = "");
  void RevokeTokens();

  int patches() const;
  int token_grants() const;
  int throttled() const;
  int api_calls() const;
  std::vector<std::string> request_log() const;  // "PATCH /v1/…?updateMask=…" per API call

  const DiscoverySchemas& schemas() const { return schemas_; }

 private:
  struct Server;
  AmapiEmulator(AmapiEmulatorOptions options, DiscoverySchemas schemas);

  AmapiEmulatorOptions options_;
  DiscoverySchemas schemas_;
  std::string ca_pem_;
  std::unique_ptr<Server> server_;
};

}  // namespace appban::testing
