// A client for the four Android Management API methods the connector uses
// (https://developers.google.com/android/management/reference/rest):
//   enterprises.policies.get    GET   v1/{name=enterprises/*/policies/*}
//   enterprises.policies.list   GET   v1/{parent=enterprises/*}/policies   (paged)
//   enterprises.policies.patch  PATCH v1/{name=enterprises/*/policies/*}?updateMask=…
//   enterprises.devices.list    GET   v1/{parent=enterprises/*}/devices    (paged)
//
// Policies and devices are handed out as JSON values, not structs: the connector changes two
// fields of a policy and must write every other field back exactly as it read it, including
// fields newer than anything this code knows about.
//
// Every call carries the bearer from an AccessTokenSource (fetched again once on a 401), is
// retried on 429/5xx with back-off (retry.h), and every answer is parsed with ParseJsonBounded
// under MdmLimits. Names are checked before they go into a URL path ([A-Za-z0-9._-] ids only).
//
// Thread-safety: one thread at a time (it owns an HttpClient).
#pragma once

#include <functional>
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

// "enterprises/LC0abc" — the form AMAPI names an enterprise.
Status ValidateEnterpriseName(std::string_view name);
// "enterprises/LC0abc/policies/default".
Status ValidatePolicyName(std::string_view name);

struct AmapiClientOptions {
  std::string base_url = std::string(kAmapiBaseUrl);  // tests: the emulator's http://127.0.0.1:port
  net::ClientOptions http;
  RetryPolicy retry;
  MdmLimits limits = kMdmLimits;
};

// An API error with Google's error body summarised: "HTTP 400 INVALID_ARGUMENT: <message>".
// Statuses map to kinds: 400 kInvalidArgument, 401/403 kPermissionDenied, 404 kNotFound,
// 429/5xx (after retries) kUnavailable, anything else kFailedPrecondition.
Status ApiError(std::string_view what, int http_status, std::string_view body);

class AmapiClient {
 public:
  // `tokens` must outlive the client.
  static Result<std::unique_ptr<AmapiClient>> Create(AmapiClientOptions options, AccessTokenSource* tokens);
  ~AmapiClient();

  Result<Json> GetPolicy(std::string_view policy_name);
  Result<std::vector<Json>> ListPolicies(std::string_view enterprise_name);
  // `policy` carries the fields named in `update_mask` (comma-separated field paths); the answer is
  // the policy as stored, with its new version.
  Result<Json> PatchPolicy(std::string_view policy_name, const Json& policy, std::string_view update_mask);
  // Every device of the enterprise, following nextPageToken until it is absent.
  Result<std::vector<Json>> ListDevices(std::string_view enterprise_name, int page_size = kDevicePageSize);
  // The same a page at a time: `visit` gets each page's devices as it arrives, so an enterprise
  // of 100,000 phones is never held at once. An error from `visit` stops the listing.
  Status ForEachDevicePage(std::string_view enterprise_name, int page_size,
                           const std::function<Status(std::vector<Json>)>& visit);

  // Requests retried so far because of 429/5xx or a failed connection (reports and tests).
  int retries() const { return retries_; }

 private:
  AmapiClient(AmapiClientOptions options, AccessTokenSource* tokens, std::string path_prefix);
  Result<Json> Call(std::string_view method, const std::string& path, std::string_view body, std::string_view what);
  Result<std::vector<Json>> ListAll(const std::string& path, std::string_view items_key, size_t max_items,
                                    std::string_view what);
  Status ForEachPage(const std::string& path, std::string_view items_key, size_t max_items, std::string_view what,
                     const std::function<Status(std::vector<Json>)>& visit);

  AmapiClientOptions options_;
  AccessTokenSource* tokens_;
  std::string path_prefix_;  // a base URL's path, if it has one ("" for Google's)
  std::unique_ptr<net::HttpClient> http_;
  int retries_ = 0;
};

}  // namespace appban::mdm
