// What every admin API handler shares (internal to the admin API; admin_api.h is the public face):
// the Call a handler receives, the response and error helpers, strict readers of request members
// and query parameters, and the JSON views of objects more than one resource shows. Handlers live
// one file per resource (admin_rules.cc, admin_waivers.cc, ...) and are declared in
// admin_handlers.h; admin_api.cc routes to them.
//
// Everything here runs on the worker's io_context thread, except what the assessment pool is handed
// (admin_assessments.cc says what crosses threads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/text.h"
#include "appban/common/time.h"
#include "appban/decide/admin.h"
#include "appban/net/http.h"
#include "appban/server/admin_api.h"
#include "appban/server/context.h"
#include "appban/store/fleet.h"

namespace appban::server::admin {

using net::HttpRequest;
using net::HttpResponse;

// ---- Responses

HttpResponse JsonResponse(int status, const Json& body);
HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message);
// The status and code HttpErrorFor gives, with the Status's message.
HttpResponse ErrorFrom(const Status& status);
HttpResponse BadRequest(std::string_view message);
// A Status about an object the request BODY names (a rule's scope group, a waiver's rule): that the
// object is missing is a fault of the body (400), not of the URL (404).
HttpResponse ErrorFromBodyReference(const Status& status);

Json OptionalTime(const std::optional<UnixSeconds>& at);
// 0 means "never" for the device fields that use it.
Json TimeOrNull(UnixSeconds at);
// null, or what the device claims against what was issued: {"applied_version", "reported_rules_hash",
// "expected_rules_hash" (null: no such version was issued), "since"}.
Json RulesHashMismatchJson(const store::Device& device);

// ---- Strict input

// Client input quoted for an error message: short and printable.
std::string Quoted(std::string_view text);
// InvalidArgument naming the first member of `object` that is not in `allowed`.
Status CheckMembers(const Json& object, std::initializer_list<std::string_view> allowed, std::string_view what);
// A string member of at most `max_bytes`; "" when absent and not `required`.
Result<std::string> StringMember(const Json& object, std::string_view name, bool required, size_t max_bytes);
Result<std::optional<int64_t>> IntegerMember(const Json& object, std::string_view name, int64_t min, int64_t max);
// An array of identifiers (policy::ValidateIdentifier with `what`), at most `max_items`.
Result<std::vector<std::string>> IdentifierArrayMember(const Json& object, std::string_view name, bool required,
                                                       size_t max_items, std::string_view what);
// Strict non-negative decimal integer from the query string.
Result<std::optional<int64_t>> QueryInteger(const HttpRequest& request, std::string_view name, int64_t min,
                                            int64_t max);
// Validates a path segment that names an object.
Status CheckPathIdentifier(const std::string& value, std::string_view what);

// Limits on a device search (GET /v1/admin/devices, the devices CSV export).
struct DeviceSearchLimits {
  size_t max_hostname_bytes = store::kFleetLimits.max_hostname_bytes;
  size_t max_id_bytes = 64;
  size_t max_app_bytes = 256;  // app ids are at most 256 bytes on the device protocol
};
inline constexpr DeviceSearchLimits kDeviceSearchLimits{};
// The device filter of the query string: source, platform, hostname (prefix), id (prefix), app
// (installed). InvalidArgument naming the parameter for a value out of bounds, and for `user`,
// which devices do not record.
Result<store::DeviceFilter> ReadDeviceFilter(const HttpRequest& request);

// ---- Paging
//
// Every list endpoint answers one page: `limit` rows (kAdminLimits.default_page when absent; more
// than kAdminLimits.max_page is refused with 400 rather than silently cut, so a client never
// mistakes a short page for the whole list) in a stable order by a unique key, and `next_cursor`,
// an opaque string to pass back as `cursor` for the page after it (null on the last page). The
// store reads only the page ("WHERE key > ? ORDER BY key LIMIT limit + 1": the extra row only says
// whether another page follows), so the last page of 100k rows costs what the first does.
//
// A cursor names the list that issued it and the key of the last row it covered. It is not
// signed: a hand-made cursor can only start a list at another key the caller may read anyway.
// A cursor that does not decode, comes from another list or holds a malformed key is a 400.

// How a list's key is written into its cursor.
enum class CursorKey {
  kIdentifier,  // rule, waiver, group, device and token ids (policy::ValidateIdentifier)
  kSequence,    // a positive integer (audit seq)
  kAssessment,  // "<uploaded_at>:<sha256>" (newest-first order)
  kName,        // a vendor's name: 1 to 256 bytes of any text
};

struct PageRequest {
  size_t limit = 0;   // rows to answer; read limit + 1 to learn whether a next page exists
  std::string after;  // the key the page starts after; "" for the first page
};
// Reads `limit` and `cursor` from the query of a request to the list named `list`.
Result<PageRequest> ReadPageRequest(const HttpRequest& request, std::string_view list, CursorKey key);
std::string EncodeCursor(std::string_view list, std::string_view key);

// Cuts `rows` (read with page.limit + 1) to the page and returns its next_cursor member: a cursor
// after the page's last row, or null when no row follows.
template <typename Row, typename KeyOf>
Json FinishPage(std::string_view list, const PageRequest& page, std::vector<Row>& rows, KeyOf key_of) {
  if (rows.size() <= page.limit) return nullptr;
  rows.resize(page.limit);
  return EncodeCursor(list, key_of(rows.back()));
}

// ---- The call: who is asking, and what they may do

enum class Need { kRead, kAnalyst, kAdmin };
bool Allows(store::Role role, Need need);
std::string_view NeedName(Need need);

// The worker's configuration, or the documented defaults for a context without one.
const ServerConfig& ConfigOf(const WorkerContext& context);

// Who is calling and how they proved it (docs/identity.md): the user, the role this call carries
// and the credential.
struct Principal {
  store::User user;
  store::Role role = store::Role::kAuditor;  // the token's role, or the user's effective role (OIDC)
  std::string method;                        // "oidc", "api-token" or "client-certificate"
  std::string token_id;                      // the API token's id (method "api-token")
  std::string certificate;                   // the client certificate's SHA-256 (method "client-certificate")
  std::string provider;                      // the configured provider's name (method "oidc")
  std::string source;                        // the client's address
  // The other accounts of the caller's person (store::User::person_id), for the two-person rule;
  // read for requests that may change something (not GET).
  std::vector<std::string> same_person;
  // Authenticated by a console session cookie (console_session.h) made from the credential that
  // `method` names: audited as method "session", channel "console".
  bool session = false;
  // The client said it is the appban command line (header "X-Appban-Channel: cli"): a label for
  // the audit chain's channel, never a credential — it changes nothing the caller may do.
  bool cli = false;

  decide::Actor Actor() const;
  store::AuditIdentity Identity() const;
};

struct Call {
  WorkerContext& context;
  // Owned by the dispatcher for the whole call. Only a deferred handler (UploadAssessment) changes
  // it: it moves the body out, so a 256 MiB upload is never copied.
  HttpRequest& request;
  Principal principal;
  std::vector<std::string> params;  // the {placeholders} of the matched route, in order

  UnixSeconds Now() const;
  decide::PolicyAdmin Admin() const;
  store::AuditRecord Audit() const;
  const ServerConfig& config() const { return ConfigOf(context); }
  // The body as a JSON object; an empty body is {} when `empty_ok`.
  Result<Json> Body(bool empty_ok) const;
};

// A list endpoint keyed by identifier: reads the page request, fetches `limit + 1` rows with
// `fetch(after, limit)`, and answers {"<list>": [view(row), ...], "next_cursor": ...}.
template <typename Fetch, typename KeyOf, typename View>
HttpResponse ListPage(Call& call, std::string_view list, Fetch fetch, KeyOf key_of, View view,
                      CursorKey key = CursorKey::kIdentifier) {
  auto page = ReadPageRequest(call.request, list, key);
  if (!page.ok()) return ErrorFrom(page.status());
  auto rows = fetch(page->after, page->limit + 1);
  if (!rows.ok()) return ErrorFrom(rows.status());
  Json next = FinishPage(list, *page, *rows, key_of);
  Json items = Json::array();
  for (const auto& row : *rows) items.push_back(view(row));
  return JsonResponse(200, Json{{std::string(list), std::move(items)}, {"next_cursor", std::move(next)}});
}

// The `name` (an identifier label) and `role` members of a request that creates a credential or
// an account, and the check that the caller — a person — confers no more than their own role:
// 400 for a malformed member, 403 for a service account caller or a stronger role.
struct NamedRole {
  std::string name;
  store::Role role = store::Role::kAuditor;
};
Result<NamedRole> ReadNamedRole(const Json& body);
// nullopt when the caller may confer `role` on `what` ("a token", "a service account").
std::optional<HttpResponse> RefuseToConfer(const Call& call, store::Role role, std::string_view what);

// A handler that answers before it returns.
using HandlerFn = HttpResponse (*)(Call&);
// A handler that may answer later: it owns `respond` and must see that it is called (or destroyed,
// which answers 500) on the io_context thread.
using DeferredHandlerFn = void (*)(Call&, net::Responder respond);

// ---- Authentication (admin_api.cc, admin_session.cc)

// Who sends `request`: its bearer token (API token or OpenID Connect token) or, without an
// Authorization header, its console session cookie; with the role the call carries. An error
// response (401, 403, 503...) when there is none.
std::variant<HttpResponse, Principal> AuthenticateCaller(WorkerContext& context, const HttpRequest& request,
                                                         UnixSeconds now);
// The console session cookie `cookie` of `request`: its signature, lifetime, user and (for an
// API-token sign-in) token, and for a state-changing method the CSRF token and Origin. The
// principal's role is the underlying credential's, before AuthenticateCaller applies the user's.
std::variant<HttpResponse, Principal> AuthenticateSession(WorkerContext& context, const HttpRequest& request,
                                                          const std::string& cookie, UnixSeconds now);
HttpResponse Unauthenticated(const std::string& message);
HttpResponse AuthenticationFailure(const Status& status);

// ---- JSON views shared by several resources

Json ApiTokenJson(const store::ApiToken& token);
Json UserJson(const store::User& user);
// "/v1/admin/assessments/<sha256>": where a stored report is read (rules cite it).
std::string AssessmentPath(const std::string& sha256);
Json AssessmentSummaryJson(const store::Assessment& assessment);

}  // namespace appban::server::admin
