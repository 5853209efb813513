// A client for the Microsoft Graph calls the Intune connector makes (v1.0 unless noted):
//   GET    /v1.0/deviceManagement/managedDevices                         (paged)
//   GET    /v1.0/deviceManagement/detectedApps                           (paged)
//   GET    /v1.0/deviceManagement/detectedApps/{id}/managedDevices       (paged)
//   GET    /v1.0/deviceAppManagement/mobileApps                          (paged)
//   GET    /v1.0/deviceAppManagement/mobileApps/{id}/assignments         (paged)
//   POST   /v1.0/deviceAppManagement/mobileApps/{id}/assignments
//   DELETE /v1.0/deviceAppManagement/mobileApps/{id}/assignments/{assignment-id}
//   GET    /beta/deviceManagement/deviceCompliancePolicies/{id}          (restrictedApps is beta-only)
//   PATCH  /beta/deviceManagement/deviceCompliancePolicies/{id}
//   GET    /v1.0/deviceManagement/deviceConfigurations/{id}
//   PATCH  /v1.0/deviceManagement/deviceConfigurations/{id}
//
// Objects are handed out as JSON values: a PATCH carries only the properties appban changes, and
// Graph keeps every other property as it is. Lists follow the whole @odata.nextLink URL until it is
// absent (Graph's paging rule), refusing a link to another origin, a repeated link, or more than
// MdmLimits allow. Every call carries the bearer from an AccessTokenSource (fetched again once on
// a 401) and is retried on 429 (honouring Retry-After) and 5xx (retry.h). Ids are checked before
// they go into a path.
//
// Thread-safety: one thread at a time (it owns an HttpClient).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/mdm/config.h"
#include "appban/mdm/google_auth.h"
#include "appban/mdm/limits.h"
#include "appban/mdm/retry.h"
#include "appban/net/client.h"

namespace appban::mdm {

// A Graph error with its ODataError body summarised: "what: HTTP 400 BadRequest: <message>".
// Statuses map to kinds as ApiError does (amapi_client.h).
Status GraphError(std::string_view what, int http_status, std::string_view body);

// Checks an id that goes into a Graph URL path.
Status ValidateGraphId(std::string_view id);

// One page of a Graph collection: {"value": [...], "@odata.nextLink": "…"}. Pure; the fuzz target
// drives it. Fails (kCorruption) when value is not an array of objects or the link not a string.
struct GraphPage {
  std::vector<Json> items;
  std::string next_link;  // "" on the last page
};
Result<GraphPage> ParseGraphPage(std::string_view body, const MdmLimits& limits = kMdmLimits);
Result<GraphPage> GraphPageFromJson(Json answer);

struct GraphClientOptions {
  std::string base_url = std::string(kGraphBaseUrl);  // tests: the emulator's http://127.0.0.1:port
  net::ClientOptions http;
  RetryPolicy retry;
  MdmLimits limits = kMdmLimits;
  int page_size = 100;  // $top asked of lists (the service may return fewer)
};

class GraphClient {
 public:
  // `tokens` must outlive the client.
  static Result<std::unique_ptr<GraphClient>> Create(GraphClientOptions options, AccessTokenSource* tokens);
  ~GraphClient();

  // Every item of a collection, `path` relative to the base URL ("/v1.0/deviceManagement/…").
  Result<std::vector<Json>> List(std::string_view path, size_t max_items, std::string_view what);
  Result<Json> Get(std::string_view path, std::string_view what);
  Result<Json> Post(std::string_view path, const Json& body, std::string_view what);
  // PATCH answers 204 No Content (or 200 with the object); either way the result is an object.
  Result<Json> Patch(std::string_view path, const Json& body, std::string_view what);
  Status Delete(std::string_view path, std::string_view what);

  int retries() const { return retries_; }

 private:
  GraphClient(GraphClientOptions options, AccessTokenSource* tokens, SplitUrl base);
  Result<Json> Call(std::string_view method, const std::string& path, std::string_view body, std::string_view what);

  GraphClientOptions options_;
  AccessTokenSource* tokens_;
  SplitUrl base_;
  std::unique_ptr<net::HttpClient> http_;
  int retries_ = 0;
};

}  // namespace appban::mdm
