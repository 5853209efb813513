// The admin API's front door: the routing table, authentication and dispatch. The handlers live one
// file per resource (admin_handlers.h); what they share is in admin_call.h.
#include "appban/server/admin_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "appban/common/text.h"
#include "appban/identity/jwt.h"
#include "appban/identity/oidc.h"
#include "appban/net/client_certificate.h"
#include "appban/protocol/messages.h"
#include "appban/server/admin_call.h"
#include "appban/server/admin_handlers.h"
#include "appban/server/admin_reader.h"
#include "appban/server/config.h"
#include "appban/server/console_session.h"
#include "appban/server/reader_context.h"

namespace appban::server {
namespace {

// The handlers named in kRoutes, and the helpers every admin file shares.
using namespace admin;

// Where a route's handler runs. Read-only routes whose handler reads nothing but the database,
// the configuration and the clock run on the worker's AdminReader (admin_reader.h says why); the
// rest stay on the request thread: changes (they wake long-polls, drop revoked devices, publish
// through the worker's bundle hub). The compliance views run on the reader too, with the latest
// bundle as the request thread saw it when it handed the call over (an immutable copy: its rules
// and waivers are shared, not copied) and the worker's metrics (atomic counters): at 100,000
// devices one compliance read takes seconds, and on the request thread every device of the
// worker waited for it.
enum class Runs { kRequestThread, kReader, kReaderWithBundle };
constexpr Runs kReader = Runs::kReader;
constexpr Runs kReaderWithBundle = Runs::kReaderWithBundle;

struct AdminRoute {
  std::string_view method;
  std::string_view pattern;  // below /v1/admin/; "{}" matches one path segment
  Need need;
  HandlerFn handler;
  DeferredHandlerFn deferred = nullptr;  // instead of `handler`, for a route answered later
  Runs runs = Runs::kRequestThread;
};

constexpr AdminRoute kRoutes[] = {
    {"GET", "whoami", Need::kRead, WhoAmI},
    {"GET", "rules", Need::kRead, ListRules, nullptr, kReader},
    {"POST", "rules", Need::kAnalyst, ProposeRule},
    {"GET", "rules/{}", Need::kRead, GetRule, nullptr, kReader},
    {"POST", "rules/{}/approve", Need::kAdmin, ApproveRule},
    {"POST", "rules/{}/publish", Need::kAdmin, PublishRule},
    {"POST", "rules/{}/revoke", Need::kAdmin, RevokeRule},
    {"GET", "waivers", Need::kRead, ListWaivers, nullptr, kReader},
    {"POST", "waivers", Need::kAdmin, AddWaiver},
    {"POST", "waivers/{}/revoke", Need::kAdmin, RevokeWaiver},
    // The catalog file is read on the reader too: blocking file I/O, kept off the request thread.
    {"GET", "catalog", Need::kRead, ListCatalog, nullptr, kReader},
    {"GET", "vendors", Need::kRead, ListVendors, nullptr, kReader},
    {"POST", "vendors", Need::kAnalyst, MergeVendor},
    {"GET", "groups", Need::kRead, ListGroups, nullptr, kReader},
    {"POST", "groups", Need::kAdmin, CreateGroup},
    {"GET", "groups/{}", Need::kRead, GetGroup, nullptr, kReader},
    {"DELETE", "groups/{}", Need::kAdmin, DeleteGroup},
    {"POST", "groups/{}/devices", Need::kAdmin, AddGroupDevices},
    {"POST", "publish", Need::kAdmin, Publish},
    {"GET", "bundles/latest", Need::kRead, LatestBundle},
    {"GET", "devices", Need::kRead, ListDevices, nullptr, kReader},
    {"GET", "devices/{}", Need::kRead, GetDevice},
    {"POST", "devices/{}/revoke", Need::kAdmin, RevokeDevice},
    {"GET", "enrollment-tokens", Need::kRead, ListEnrollmentTokens, nullptr, kReader},
    {"POST", "enrollment-tokens", Need::kAdmin, CreateEnrollmentTokens},
    {"POST", "enrollment-tokens/{}/revoke", Need::kAdmin, RevokeEnrollmentToken},
    {"GET", "tokens", Need::kRead, ListApiTokens, nullptr, kReader},
    {"POST", "tokens", Need::kAnalyst, CreateApiToken},
    {"POST", "tokens/{}/revoke", Need::kAdmin, RevokeApiToken},
    {"GET", "users", Need::kRead, ListUsers, nullptr, kReader},
    {"POST", "service-accounts", Need::kAdmin, CreateServiceAccount},
    {"POST", "users/{}/role", Need::kAdmin, GrantUserRole},
    {"POST", "users/{}/link", Need::kAdmin, LinkUser},
    // Anyone may end their own sessions; the handler asks for an administrator for anyone else's.
    {"POST", "users/{}/sessions/end", Need::kRead, EndUserSessions},
    {"GET", "changes", Need::kRead, ListChanges, nullptr, kReader},
    {"GET", "changes/{}", Need::kRead, GetChange},
    {"POST", "changes/{}/approve", Need::kAdmin, ApproveChange},
    {"POST", "changes/{}/withdraw", Need::kAdmin, WithdrawChange},
    {"POST", "keys/rotate", Need::kAdmin, ProposeKeyRotation},
    {"GET", "assessments", Need::kRead, ListAssessments, nullptr, kReader},
    {"POST", "assessments", Need::kAnalyst, nullptr, UploadAssessment},
    {"GET", "assessments/{}", Need::kRead, GetAssessment, nullptr, kReader},
    {"GET", "compliance", Need::kRead, FleetComplianceView, nullptr, kReaderWithBundle},
    {"GET", "mdm", Need::kRead, MdmStatusView, nullptr, kReader},
    {"GET", "compliance/rules/{}", Need::kRead, RuleComplianceView, nullptr, kReaderWithBundle},
    {"GET", "compliance/devices/{}", Need::kRead, DeviceComplianceView, nullptr, kReaderWithBundle},
    {"GET", "audit", Need::kRead, ReadAuditLog, nullptr, kReader},
    {"GET", "audit/verify", Need::kRead, VerifyAuditLog, nullptr, kReader},
    {"GET", "exports/devices.csv", Need::kRead, ExportDevicesCsv, nullptr, kReader},
    {"GET", "exports/compliance.csv", Need::kRead, ExportComplianceCsv, nullptr, kReaderWithBundle},
    {"GET", "exports/audit.csv", Need::kRead, ExportAuditCsv, nullptr, kReader},
};

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    segments.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return segments;
}

// Matches `segments` against a route pattern, collecting the placeholders.
bool Matches(std::string_view pattern, const std::vector<std::string>& segments, std::vector<std::string>* params) {
  std::vector<std::string> parts = SplitPath(pattern);
  if (parts.size() != segments.size()) return false;
  std::vector<std::string> captured;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "{}") {
      captured.push_back(segments[i]);
    } else if (parts[i] != segments[i]) {
      return false;
    }
  }
  *params = std::move(captured);
  return true;
}

}  // namespace

HttpResponse admin::Unauthenticated(const std::string& message) {
  HttpResponse response = ErrorResponse(401, "unauthenticated", message);
  response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"appban-admin\"");
  return response;
}

// What a failed authentication answers: 503 when the database (or the provider's key set) cannot be
// reached, 500 for the server's own faults, 401 naming the reason for everything else (malformed,
// unknown, wrong secret, expired, revoked, bad signature, wrong audience...) — never 500 for a bad
// token.
HttpResponse admin::AuthenticationFailure(const Status& status) {
  if (status.code() == StatusCode::kUnavailable) return ErrorResponse(503, "unavailable", status.message());
  if (status.code() == StatusCode::kInternal || status.code() == StatusCode::kCorruption) {
    return ErrorResponse(500, "internal", "authentication failed: " + status.message());
  }
  return Unauthenticated(status.message());
}

namespace {

// Records the sign-in of the identity `sign_in` names (creating the user on the first one,
// audited with who it is and how they authenticated) and returns `principal` as that user.
std::variant<HttpResponse, Principal> SignInAs(WorkerContext& context, const store::SignIn& sign_in,
                                               Principal principal) {
  principal.user.id = store::UserIdFor(sign_in.issuer, sign_in.subject);
  principal.user.issuer = sign_in.issuer;
  principal.user.subject = sign_in.subject;
  principal.user.display_name = sign_in.display_name;
  store::AuditRecord audit;
  audit.actor = principal.user.id;
  audit.at = sign_in.at;
  audit.identity = store::AuditIdentityJson(principal.Identity());
  auto user = context.fleet->RecordSignIn(sign_in, audit);
  if (!user.ok()) return AuthenticationFailure(user.status());
  principal.user = std::move(*user);
  return principal;
}

// A bearer token from the configured OpenID Connect provider: validated against its cached keys
// (identity/oidc.h), then the (issuer, subject) it names is signed in as a user.
std::variant<HttpResponse, Principal> AuthenticateOidc(WorkerContext& context, std::string_view credential,
                                                       Principal principal, UnixSeconds now) {
  if (context.oidc == nullptr) {
    return Unauthenticated(
        "the bearer token is a JWT, but this server has no OpenID Connect provider configured ([[identity.oidc]] "
        "in the server configuration); use an appban API token");
  }
  auto verified = context.oidc->Verify(credential, now);
  if (!verified.ok()) {
    HttpResponse response = AuthenticationFailure(verified.status());
    // The key set is being refreshed (key rollover at the provider): the client may retry shortly.
    if (verified.status().code() == StatusCode::kNotFound) response.headers.emplace_back("Retry-After", "2");
    return response;
  }
  store::SignIn sign_in;
  sign_in.issuer = verified->issuer;
  sign_in.subject = verified->subject;
  sign_in.display_name = verified->display_name;
  sign_in.at = now;
  if (verified->role) {
    auto role = store::ParseRole(*verified->role);
    if (role.ok()) sign_in.claim_role = *role;
  }
  principal.method = "oidc";
  principal.provider = verified->issuer_name;
  return SignInAs(context, sign_in, std::move(principal));
}

// The person a verified client certificate names (identity.client_certificates): the name
// `user_from` picks, as subject at the issuer kClientCertificateIssuer. Such a user has no claimed
// role; an administrator grants one, as for any identity.
std::variant<HttpResponse, Principal> AuthenticateClientCertificate(WorkerContext& context,
                                                                    const net::ClientCertificate& certificate,
                                                                    Principal principal, UnixSeconds now) {
  const ClientCertificateConfig& settings = ConfigOf(context).identity.client_certificates;
  const std::string described = certificate.subject.empty() ? "without a subject" : certificate.subject;
  if (!certificate.verified) {
    return Unauthenticated("the client certificate " + described + " is not accepted: " + certificate.problem);
  }
  using UserFrom = ClientCertificateConfig::UserFrom;
  std::string name;
  std::string_view which;
  switch (settings.user_from) {
    case UserFrom::kSanEmail:
      which = "an e-mail address in its subjectAltName";
      if (certificate.emails.size() == 1) name = AsciiLower(certificate.emails[0]);
      break;
    case UserFrom::kSanUpn:
      which = "a user principal name (UPN) in its subjectAltName";
      if (certificate.upns.size() == 1) name = AsciiLower(certificate.upns[0]);
      break;
    case UserFrom::kSubjectDn:
      which = "a subject";
      name = certificate.subject;
      break;
  }
  // Two names would make the person ambiguous; none leaves no one to be.
  if (name.empty()) {
    return Unauthenticated("the client certificate " + described + " does not name one person: it needs exactly " +
                           std::string(which) + " (identity.client_certificates.user_from)");
  }
  store::SignIn sign_in;
  sign_in.issuer = std::string(kClientCertificateIssuer);
  sign_in.subject = name;
  sign_in.display_name = certificate.common_name.empty() ? name : certificate.common_name;
  sign_in.at = now;
  principal.method = "client-certificate";
  principal.certificate = certificate.sha256;
  return SignInAs(context, sign_in, std::move(principal));
}

std::variant<HttpResponse, Principal> Authenticate(WorkerContext& context, const HttpRequest& request,
                                                   UnixSeconds now) {
  std::string_view header = request.Header("authorization");
  if (header.empty()) {
    if (std::optional<std::string> cookie = SessionCookieValue(request)) {
      return AuthenticateSession(context, request, *cookie, now);
    }
    if (request.client_certificate && ConfigOf(context).identity.client_certificates.enabled()) {
      // A browser presents its certificate to every request for this origin, whichever site made
      // it: a change must carry a header that another site's page cannot add without a CORS
      // preflight, which this server never approves (cross-site request forgery).
      if (request.method != "GET" && request.method != "HEAD" && request.Header("x-appban-channel").empty()) {
        return ErrorResponse(403, "forbidden",
                             "a change authenticated by a client certificate needs the header "
                             "\"X-Appban-Channel: api\" (or \"cli\"), which a page on another site cannot send");
      }
      Principal principal;
      principal.source = request.remote_address;
      principal.cli = request.Header("x-appban-channel") == "cli";
      return AuthenticateClientCertificate(context, *request.client_certificate, std::move(principal), now);
    }
    return Unauthenticated(
        "no Authorization header; send \"Authorization: Bearer <API token or OpenID Connect token>\"" +
        std::string(ConfigOf(context).identity.client_certificates.enabled() ? ", or a client certificate" : ""));
  }
  std::string_view credential = protocol::BearerCredential(header);
  if (credential.empty()) return Unauthenticated("the Authorization header is not \"Bearer <token>\"");
  Principal principal;
  principal.source = request.remote_address;
  principal.cli = request.Header("x-appban-channel") == "cli";
  if (identity::LooksLikeJwt(credential)) return AuthenticateOidc(context, credential, std::move(principal), now);

  auto token = context.fleet->AuthenticateApiToken(credential, now);
  if (!token.ok()) return AuthenticationFailure(token.status());
  auto user = context.fleet->GetUser(token->user_id);
  if (!user.ok()) {
    return ErrorResponse(500, "internal", "API token " + token->id + " belongs to no user: " + user.status().message());
  }
  principal.user = std::move(*user);
  principal.method = "api-token";
  principal.token_id = token->id;
  principal.role = token->role;
  return principal;
}

}  // namespace

std::variant<HttpResponse, Principal> admin::AuthenticateCaller(WorkerContext& context, const HttpRequest& request,
                                                                UnixSeconds now) {
  auto authenticated = Authenticate(context, request, now);
  if (auto* refusal = std::get_if<HttpResponse>(&authenticated)) return std::move(*refusal);
  Principal& principal = std::get<Principal>(authenticated);
  // A token never carries more than its user may do now: a role withdrawn from the user (or from
  // the provider's claim) takes effect on their existing tokens too.
  std::optional<store::Role> user_role = principal.user.EffectiveRole();
  if (!user_role) {
    const bool certificate = principal.method == "client-certificate";
    return ErrorResponse(403, "forbidden",
                         "user " + principal.user.display_name + " (" + principal.user.id + ") has no appban role: " +
                             (certificate ? std::string("an administrator grants one with POST /v1/admin/users/") +
                                                principal.user.id + "/role"
                                          : std::string("the provider's role claim names none, and none was granted")));
  }
  // A token carries its own role (capped by the user's); a sign-in is the user, with the user's role.
  principal.role = principal.method == "api-token" ? std::max(principal.role, *user_role) : *user_role;
  // Decisions compare people: the other accounts linked with this one count as the caller.
  if (request.method != "GET" && request.method != "HEAD") {
    auto accounts = context.fleet->AccountsOfPerson(principal.user.Person());
    if (!accounts.ok()) return AuthenticationFailure(accounts.status());
    for (auto& account : *accounts) {
      if (account != principal.user.id) principal.same_person.push_back(std::move(account));
    }
  }
  return principal;
}

namespace {

// What the headers alone decide: who is calling, which route, whether their role allows it.
struct Admission {
  Principal principal;
  const AdminRoute* route = nullptr;
  std::vector<std::string> params;
};

// Everything that can be decided before the body is read (the server's request gate runs this,
// so an unauthenticated or under-privileged upload is refused without reading it): database
// availability, authentication, path shape, route, method and role. An error response or the
// admission.
std::variant<HttpResponse, Admission> Admit(WorkerContext& context, const HttpRequest& request) {
  if (context.store == nullptr || context.fleet == nullptr) {
    return ErrorResponse(503, "unavailable", "the worker has no database connection");
  }
  std::string_view path = request.path;
  if (path.substr(0, kAdminPathPrefix.size()) != kAdminPathPrefix) {
    return ErrorResponse(404, "not_found", "not an admin path");
  }
  UnixSeconds now = context.clock ? context.clock() : decide::SystemClockNow();
  auto authenticated = AuthenticateCaller(context, request, now);
  if (auto* refusal = std::get_if<HttpResponse>(&authenticated)) return std::move(*refusal);
  Principal& principal = std::get<Principal>(authenticated);

  std::vector<std::string> segments = SplitPath(path.substr(kAdminPathPrefix.size()));
  // Ids never contain '/', so "." and ".." segments are attempts to walk the tree (possibly after
  // percent-decoding %2F): refuse them by name rather than let them reach a lookup.
  for (const auto& segment : segments) {
    if (segment.empty() || segment == "." || segment == "..") {
      return BadRequest("path: empty, \".\" and \"..\" segments are not allowed in " + Quoted(path));
    }
  }

  std::vector<std::string> allowed_methods;
  for (const AdminRoute& route : kRoutes) {
    std::vector<std::string> params;
    if (!Matches(route.pattern, segments, &params)) continue;
    if (route.method != request.method) {
      allowed_methods.emplace_back(route.method);
      continue;
    }
    if (!Allows(principal.role, route.need)) {
      return ErrorResponse(403, "forbidden",
                           std::string(request.method) + " " + std::string(path) + " needs the " +
                               std::string(NeedName(route.need)) + " role; " + principal.user.display_name + " (" +
                               principal.user.id + ") has role " + std::string(store::RoleName(principal.role)) +
                               " here");
    }
    return Admission{std::move(principal), &route, std::move(params)};
  }
  if (!allowed_methods.empty()) {
    std::string allow;
    for (const auto& method : allowed_methods) allow += (allow.empty() ? "" : ", ") + method;
    HttpResponse response =
        ErrorResponse(405, "method_not_allowed", request.method + " is not allowed here; use " + allow);
    response.headers.emplace_back("Allow", allow);
    return response;
  }
  return ErrorResponse(404, "not_found", "no admin endpoint " + Quoted(path));
}

// A reader thread's context for a compliance view: the latest bundle as the request thread sees it
// now (an immutable copy sharing its rules and waivers) and the worker's metrics (atomic counters).
WorkerContext ReaderContextWithBundle(WorkerContext& context) {
  WorkerContext reader_context = ReaderThreadContext(context);
  if (context.latest_bundle) {
    auto latest = std::make_shared<const verify::PublishedBundle>(context.latest_bundle());
    reader_context.latest_bundle = [latest]() -> const verify::PublishedBundle& { return *latest; };
  }
  reader_context.metrics = context.metrics;
  return reader_context;
}

// Hands an admitted call to the worker's AdminReader, which answers `respond` later.
void RunOnReader(WorkerContext& context, HttpRequest& request, Admission& admission, net::Responder respond) {
  WorkerContext reader_context = admission.route->runs == Runs::kReaderWithBundle ? ReaderContextWithBundle(context)
                                                                                  : ReaderThreadContext(context);
  auto job = [reader_context, request = std::move(request), principal = std::move(admission.principal),
              params = std::move(admission.params),
              handler = admission.route->handler](store::Store& store, store::FleetStore& fleet) mutable {
    reader_context.store = &store;
    reader_context.fleet = &fleet;
    Call call{reader_context, request, std::move(principal), std::move(params)};
    return handler(call);
  };
  std::optional<net::Responder> refused = context.admin_reader->Submit(std::move(job), std::move(respond));
  if (refused) {
    HttpResponse busy = ErrorResponse(
        503, "unavailable",
        "this worker's admin read queue is full; retry in " + std::to_string(AdminReader::kRetryAfterSeconds) + " s");
    busy.headers.emplace_back("Retry-After", std::to_string(AdminReader::kRetryAfterSeconds));
    (*refused)(std::move(busy));
  }
}

// The response to send now, or nullopt when a deferred route took `respond` to answer later.
std::optional<HttpResponse> Dispatch(WorkerContext& context, HttpRequest& request, net::Responder& respond) {
  // Admitted again with the body in hand: the token may have been revoked in between, and the
  // gate does not run for requests handed to HandleAdminRequest directly (tests).
  auto admitted = Admit(context, request);
  if (auto* refusal = std::get_if<HttpResponse>(&admitted)) return std::move(*refusal);
  Admission& admission = std::get<Admission>(admitted);
  if (admission.route->runs != Runs::kRequestThread && context.admin_reader != nullptr) {
    RunOnReader(context, request, admission, std::move(respond));
    return std::nullopt;
  }
  Call call{context, request, std::move(admission.principal), std::move(admission.params)};
  if (admission.route->deferred != nullptr) {
    admission.route->deferred(call, std::move(respond));
    return std::nullopt;
  }
  return admission.route->handler(call);
}

}  // namespace

HttpError HttpErrorFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return {200, "ok"};
    case StatusCode::kInvalidArgument:
    case StatusCode::kLimitExceeded:
    case StatusCode::kNotRecognized:
    case StatusCode::kTruncated:
    case StatusCode::kUnsupported:
    case StatusCode::kBadSignature:
      return {400, "bad_request"};
    case StatusCode::kNotFound:
      return {404, "not_found"};
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kExpired:
      return {409, "conflict"};
    // The policy core's only refusal of an authenticated actor is the two-person rule (approving
    // one's own proposal or waiver request); roles are checked before the core is reached.
    case StatusCode::kPermissionDenied:
      return {409, "two_person_rule"};
    case StatusCode::kUnavailable:
      return {503, "unavailable"};
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
      return {500, "internal"};
  }
  return {500, "internal"};
}

std::vector<AdminRouteInfo> AdminRoutes() {
  std::vector<AdminRouteInfo> routes;
  for (const AdminRoute& route : kRoutes) routes.push_back({route.method, route.pattern, NeedName(route.need)});
  return routes;
}

size_t AdminBodyLimit(const ServerConfig& config, std::string_view method, std::string_view path) {
  if (method != "POST") return 0;
  if (path == std::string(kAdminPathPrefix) + "assessments") return static_cast<size_t>(config.limits.apk_max_bytes);
  return static_cast<size_t>(config.limits.json_max_bytes);
}

std::optional<HttpResponse> AdminRequestGate(WorkerContext& context, const HttpRequest& head) {
  try {
    auto admitted = Admit(context, head);
    if (auto* refusal = std::get_if<HttpResponse>(&admitted)) return std::move(*refusal);
    return std::nullopt;
  } catch (const std::exception& error) {
    return ErrorResponse(500, "internal", std::string("internal error: ") + error.what());
  }
}

void HandleAdminRequest(WorkerContext& context, HttpRequest request, net::Responder respond) {
  std::optional<HttpResponse> response;
  try {
    response = Dispatch(context, request, respond);
  } catch (const std::exception& error) {
    // Third-party code (JSON, filesystem) may throw; no request may take the worker down. (Once a
    // deferred handler took `respond`, answering here is a no-op; the pool answers instead.)
    response = ErrorResponse(500, "internal", std::string("internal error: ") + error.what());
  }
  if (response) respond(std::move(*response));
}

void RefreshComplianceSummary(WorkerContext& context, uint32_t refresh_seconds) {
  if (context.admin_reader == nullptr || refresh_seconds == 0) return;
  WorkerContext reader_context = ReaderContextWithBundle(context);
  auto job = [reader_context, refresh_seconds](store::Store& store, store::FleetStore& fleet) mutable {
    reader_context.store = &store;
    reader_context.fleet = &fleet;
    if (Status refreshed = admin::RefreshStoredCompliance(reader_context, refresh_seconds); !refreshed.ok()) {
      spdlog::warn("worker {}: the compliance summary was not computed again: {}", reader_context.worker_index,
                   refreshed.ToString());
    }
    return net::HttpResponse{};  // nobody waits for it: the empty responder below drops it
  };
  (void)context.admin_reader->Submit(std::move(job), net::Responder());
}

}  // namespace appban::server
