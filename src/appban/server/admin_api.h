// The administrators' HTTP API: every path under /v1/admin/ (docs/openapi.yaml is its contract).
// Every call is authenticated and routed on the worker's io_context thread. Changes, and the views
// that read the worker's latest bundle or metrics, are handled there with the worker's
// WorkerContext and answered before the handler returns: they wait on nothing but the database.
// The read-only routes (lists, single objects, the audit log and its verification) run on the
// worker's AdminReader (admin_reader.h) with its own connections, so no number of administrators'
// reads holds up the device requests of the io_context thread; they are answered on the
// io_context thread when done. The assessment upload (POST /v1/admin/assessments), seconds of CPU
// for a large APK, is checked on the io_context thread, then assessed and stored by the worker's
// AssessmentPool (assessment_pool.h). Nothing else here is locked. The handlers are in
// admin_<resource>.cc, the routing table in admin_api.cc.
//
// Lists page with keyset cursors (admin_call.h, "Paging"): `limit` rows, default
// AdminLimits::default_page, at most AdminLimits::max_page, and `next_cursor` for the next page.
//
// Authentication is "Authorization: Bearer <api token>" (FleetStore::AuthenticateApiToken). Roles:
//   auditor  read everything (rules, waivers, groups, devices, assessments, compliance, audit log
//            and its verification, token lists without secrets);
//   analyst  auditor + propose rules + upload assessments;
//   admin    everything: approve, publish, revoke, waivers, groups, enrolment and API tokens,
//            device revocation.
// The token's name is the actor of every change (one decide::PolicyAdmin per request), so the audit
// chain says who did what.
//
// Errors: {"error":{"code","message"}} (protocol::ErrorBody) with
//   400 bad_request          malformed JSON, unknown/missing/mistyped member, bad path id, bad query
//   401 unauthenticated      no, malformed, unknown, expired or revoked API token
//   403 forbidden            the token's role is too weak (the message names the role needed)
//   404 not_found            no such endpoint or object
//   405 method_not_allowed   wrong method (Allow header lists the right ones)
//   409 conflict             id taken, wrong lifecycle state, concurrent change, already revoked
//   409 two_person_rule      the actor proposed the rule (or requested the waiver) it tries to approve
//   415 unsupported_media_type  assessment upload with another Content-Type
//   422 apk_invalid          the uploaded APK cannot be parsed (the message names the problem)
//   500 internal / 503 unavailable  store trouble (busy database: retry); 503 with Retry-After
//                                   also when the worker's assessment queue is full
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/net/http.h"
#include "appban/server/context.h"

namespace appban::server {

inline constexpr std::string_view kAdminPathPrefix = "/v1/admin/";

// Named bounds on what one admin request may ask for.
struct AdminLimits {
  // Rows of every list endpoint's page (`limit`): the default, and the most one request may ask
  // for (more is a 400). 1000 rows are at most ~1 MB of JSON (audit entries are the largest).
  int64_t default_page = 100;
  int64_t max_page = 1000;
  int64_t max_compliance_ids = 10000;  // violating/pending device ids in one answer
  // GET /v1/admin/compliance?max_age_seconds: the oldest stored summary a caller may accept.
  int64_t max_summary_age_seconds = 86400;
  int64_t default_compliance_ids = 1000;
  int64_t max_enrollment_tokens = 1000;  // per request ("count")
  int64_t default_enrollment_ttl_seconds = 7 * 24 * 3600;
  int64_t min_ttl_seconds = 60;
  int64_t max_enrollment_ttl_seconds = 90 * 24 * 3600;
  int64_t max_api_token_ttl_seconds = 2 * 365 * 24 * 3600;
  int64_t max_group_devices_per_request = 10000;
  int64_t recent_events = 50;  // shown with a device
  int max_json_depth = 16;     // admin documents nest a few levels
};
inline constexpr AdminLimits kAdminLimits{};

// Answers one admin request (path starts with kAdminPathPrefix) through `respond`, before returning
// or — for an assessment upload, or a read-only route when the context has an AdminReader —
// later, on this same io_context thread. Never throws.
void HandleAdminRequest(WorkerContext& context, net::HttpRequest request, net::Responder respond);

// Keeps the compliance summary GET /v1/admin/compliance?max_age_seconds reads (docs/console.md):
// queues on the worker's AdminReader a job that computes it again when the stored one is of an
// older bundle or at least `refresh_seconds` old. Called by the worker's timer on the request
// thread; does nothing without an AdminReader, or when its queue is full (the next tick tries again).
void RefreshComplianceSummary(WorkerContext& context, uint32_t refresh_seconds);

// Answers /v1/session (console_session.h): POST signs in with {"token": "<API token or OpenID
// Connect token>"} and sets the session cookie; GET says who is signed in, gives the CSRF token and
// restarts the idle limit; DELETE signs out. Never throws.
void HandleSessionRequest(WorkerContext& context, net::HttpRequest request, net::Responder respond);

// The server's request gate for admin paths (net::HttpServer::SetRequestGate): authenticates the
// bearer token and checks the route and role from the headers alone, so that a request that would
// get 401/403/404/405 is answered before its body is read. nullopt: let it through (its body is
// then read and HandleAdminRequest checks everything again).
std::optional<net::HttpResponse> AdminRequestGate(WorkerContext& context, const net::HttpRequest& head);

// The largest body an admin route accepts, for the server's BodyLimit hook: the APK limit for
// POST /v1/admin/assessments, the JSON limit for other POSTs, 0 for GET/DELETE.
size_t AdminBodyLimit(const ServerConfig& config, std::string_view method, std::string_view path);

// The routes HandleAdminRequest serves: method, path below kAdminPathPrefix ("{}" stands for one
// path segment) and the weakest role allowed. For docs and the test that keeps docs/openapi.yaml
// complete.
struct AdminRouteInfo {
  std::string_view method;
  std::string_view pattern;
  std::string_view role;  // "auditor" (any token), "analyst", "admin"
};
std::vector<AdminRouteInfo> AdminRoutes();

// HTTP status and error code for a Status from the policy core or the stores (see the table above).
struct HttpError {
  int status = 500;
  std::string_view code = "internal";
};
HttpError HttpErrorFor(const Status& status);

}  // namespace appban::server
