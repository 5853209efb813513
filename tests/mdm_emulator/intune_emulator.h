// An emulator of Microsoft Graph's Intune endpoints and the Microsoft identity platform token
// endpoint for the tests: a real HTTP server on 127.0.0.1 (net::HttpServer on its own thread)
// serving the paths the real services serve:
//   POST   /{tenant}/oauth2/v2.0/token                          client credentials → access token
//   GET    /v1.0/deviceManagement/managedDevices                 (paged)
//   GET    /v1.0/deviceManagement/detectedApps                   (paged)
//   GET    /v1.0/deviceManagement/detectedApps/{id}/managedDevices (paged)
//   GET    /v1.0/deviceAppManagement/mobileApps                  (paged)
//   GET|POST /v1.0/deviceAppManagement/mobileApps/{id}/assignments
//   DELETE /v1.0/deviceAppManagement/mobileApps/{id}/assignments/{aid}
//   GET|PATCH /{v1.0|beta}/deviceManagement/deviceCompliancePolicies/{id}
//   GET|PATCH /{v1.0|beta}/deviceManagement/deviceConfigurations/{id}
// Request bodies are validated against the CSDL fragments (csdl_schema.h): v1.0 types for v1.0
// paths, and for beta compliance policies the v1.0 type plus the beta property names of the type-
// mapping excerpt (restrictedApps: Collection(appListItem), as Graph's docs type it). An invalid
// body gets 400 with Graph's ODataError body. The token endpoint checks client_id, scope, and
// either the client secret or the client assertion (RS256 signature by the test certificate's
// key, x5t#S256 or x5t thumbprint, aud = the token URL, iss = sub = client_id, jti, unexpired);
// every API call needs a bearer it issued. Lists page at max_page_size with an absolute
// @odata.nextLink ($skiptoken). A throttle budget answers 429 + Retry-After every N API calls;
// FailNext injects errors; SetRawAnswer serves a malformed body.
//
// Devices obey Intune: after each write (or, with devices_sync_on_demand, at SyncDevices()), a device in a group that
// an uninstall assignment targets loses that app from its detected apps (when Intune manages the copy), and a device in
// a group a compliance policy is assigned to turns noncompliant while it has one of its restrictedApps.
//
// Thread-safety: the public methods may be called from the test thread while the server runs.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "csdl_schema.h"

namespace appban::testing {

struct IntuneEmulatorOptions {
  std::string specs_dir;  // tests/specs/intune
  std::string tenant_id;
  std::string client_id;
  std::string client_secret;    // accepted when non-empty
  std::string certificate_pem;  // its key signs accepted client assertions (when non-empty)
  int64_t token_lifetime_seconds = 3599;
  int max_page_size = 100;
  int throttle_every = 0;  // every N-th API call → 429 (0: never)
  std::string retry_after = "0";
  // Devices act on assignments and policies only when SyncDevices() is called (a phone picks a
  // change up at its next check-in), not at once after each write.
  bool devices_sync_on_demand = false;
};

struct IntuneEmulatedApp {
  std::string display_name;
  std::string app_id;  // bundle id or package
  std::string version = "1.0";
  std::string platform = "ios";  // detectedAppPlatformType
  bool managed = true;           // installed by Intune: an uninstall assignment removes it
};

class IntuneEmulator {
 public:
  static Result<std::unique_ptr<IntuneEmulator>> Start(IntuneEmulatorOptions options);
  ~IntuneEmulator();

  std::string base_url() const;  // http://127.0.0.1:PORT (graph_base_url and login_base_url)

  // `app` carries @odata.type, displayName and bundleId/packageId; its id is assigned.
  std::string AddMobileApp(Json app);
  std::vector<Json> Assignments(const std::string& app_id) const;
  void AddAssignment(const std::string& app_id, Json assignment);
  // Policies and configurations carry @odata.type; `groups` are the Entra groups assigned.
  void PutCompliancePolicy(const std::string& id, Json policy, std::set<std::string> groups);
  void PutConfiguration(const std::string& id, Json configuration, std::set<std::string> groups);
  Json CompliancePolicy(const std::string& id) const;
  Json Configuration(const std::string& id) const;
  // `device` is a managedDevice (id, operatingSystem, …); `groups` its Entra groups.
  void PutDevice(Json device, std::set<std::string> groups, std::vector<IntuneEmulatedApp> apps);
  Json Device(const std::string& id) const;
  std::vector<IntuneEmulatedApp> DeviceApps(const std::string& id) const;
  // Every device checks in and obeys the assignments and policies as they are now.
  void SyncDevices();

  void FailNext(int count, int status, const std::string& method = "", const std::string& path_prefix = "");
  void SetRawAnswer(const std::string& path, std::string body);  // served with 200 for GET path
  void RevokeTokens();

  int writes() const;
  int token_grants() const;
  int throttled() const;
  std::vector<std::string> request_log() const;
  const CsdlSchemas& schemas() const;

 private:
  struct Server;
  IntuneEmulator(IntuneEmulatorOptions options, CsdlSchemas schemas);
  IntuneEmulatorOptions options_;
  CsdlSchemas schemas_;
  std::unique_ptr<Server> server_;
};

}  // namespace appban::testing
