// Console sessions over the admin API (console_session.h has the design): POST /v1/session signs in
// with a pasted token, GET /v1/session says who is signed in (and keeps the session alive), DELETE
// /v1/session signs out; AuthenticateSession lets the session cookie stand in for the bearer token
// on every admin route.
#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <variant>

#include "appban/common/crypto.h"
#include "appban/net/client_certificate.h"
#include "appban/server/admin_api.h"
#include "appban/server/admin_call.h"
#include "appban/server/config.h"
#include "appban/server/console_session.h"
#include "appban/server/console_sign_in.h"
#include "appban/server/shared_rate_limiter.h"

namespace appban::server {
namespace admin {
namespace {

constexpr size_t kMaxPastedTokenBytes = 16 * 1024;  // an OpenID Connect token with many claims

HttpResponse Forbidden(std::string_view code, const std::string& message) { return ErrorResponse(403, code, message); }

UnixSeconds NowOf(const WorkerContext& context) { return context.clock ? context.clock() : decide::SystemClockNow(); }

// The API token named `id`, read without its secret: the first token id after the one just below
// it. Token ids have one length ("t-" + 16 hex), so no other id sorts between the two.
Result<store::ApiToken> ApiTokenById(store::FleetStore& fleet, const std::string& id) {
  if (id.size() < 3) return Status::NotFound("no API token " + id);
  std::string below = id;
  below.back() = static_cast<char>(below.back() - 1);
  APPBAN_ASSIGN_OR_RETURN(auto tokens, fleet.ListApiTokensAfter(below, 1));
  if (tokens.empty() || tokens.front().id != id) return Status::NotFound("no API token " + id);
  return tokens.front();
}

// A browser sends Origin on every POST and DELETE; when it names another site, the request was
// made by that site's page (cross-site request forgery), whatever cookie it carries.
std::optional<HttpResponse> CheckOrigin(const WorkerContext& context, const HttpRequest& request, bool required) {
  std::string_view origin = request.Header("origin");
  if (origin.empty() && !required) return std::nullopt;
  std::string expected = ExpectedOrigin(request, ConfigOf(context).listen.tls);
  if (origin.empty() || origin != expected) {
    return Forbidden("csrf", "Origin " + Quoted(origin) + " is not this server (" + Quoted(expected) +
                                 "): state changes with a console session are accepted from the console only");
  }
  return std::nullopt;
}

Json SessionJson(const Principal& principal, const SessionClaims& claims, std::string_view key) {
  return Json{{"user", UserJson(principal.user)},
              {"role", std::string(store::RoleName(principal.role))},
              {"method", claims.method},
              {"token_id", claims.token_id.empty() ? Json(nullptr) : Json(claims.token_id)},
              {"csrf_token", CsrfTokenFor(claims, key)},
              {"issued_at", FormatTimestamp(claims.issued_at)},
              {"idle_until", FormatTimestamp(std::min(claims.idle_until, claims.expires_at))},
              {"expires_at", FormatTimestamp(claims.expires_at)}};
}

HttpResponse NoStore(HttpResponse response) {
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

// The node's own limit (every worker of this machine), then the one every node shares (several
// nodes on PostgreSQL: a bucket in the database; on SQLite the first is the whole limit). Counted
// before the token is looked at. A database that cannot answer leaves the node's limit in force:
// the sign-in itself then needs the database and says what is wrong.
bool AllowSignInAttempt(WorkerContext& context, const std::string& address) {
  SharedRateLimiter& limiter = *context.sign_in_limiter;
  if (!limiter.Allow(address, std::chrono::steady_clock::now())) return false;
  auto granted = context.fleet->TakeSharedRateTokens("sign-in:" + address, 1, limiter.burst(), limiter.per_minute());
  return !granted.ok() || *granted == 1;
}

HttpResponse SignIn(WorkerContext& context, const HttpRequest& request, const std::string& key, UnixSeconds now) {
  auto body = ParseJsonBounded(request.body, ConfigOf(context).limits.json_max_bytes, 2, "request body");
  if (!body.ok()) return BadRequest(body.status().message());
  if (!body->is_object()) {
    return BadRequest("request body: must be a JSON object {\"token\": \"...\"} or {\"client_certificate\": true}");
  }
  if (Status members = CheckMembers(*body, {"token", "client_certificate"}, "request body"); !members.ok()) {
    return BadRequest(members.message());
  }
  // Authenticated exactly as the same credential would be on an API call: a pasted token as a
  // bearer token, or the client certificate this connection presented.
  HttpRequest credential;
  credential.method = "GET";
  credential.path = request.path;
  credential.remote_address = request.remote_address;
  if (body->contains("client_certificate")) {
    if (body->contains("token")) return BadRequest("request body: give a token or client_certificate, not both");
    if ((*body)["client_certificate"] != true) return BadRequest("request body: client_certificate must be true");
    // A browser presents its card to any site's request: only the console's own page may turn it
    // into a session.
    if (auto refusal = CheckOrigin(context, request, true)) return *refusal;
    if (!ConfigOf(context).identity.client_certificates.enabled()) {
      return BadRequest("this server does not accept client certificates ([identity.client_certificates])");
    }
    if (!request.client_certificate) {
      return Unauthenticated(
          "no client certificate was presented: insert the card, or choose its certificate when "
          "the browser asks");
    }
    credential.client_certificate = request.client_certificate;
  } else {
    if (auto refusal = CheckOrigin(context, request, false)) return *refusal;
    auto token = StringMember(*body, "token", true, kMaxPastedTokenBytes);
    if (!token.ok()) return BadRequest(token.status().message());
    credential.headers.emplace_back("authorization", "Bearer " + *token);
  }
  auto caller = AuthenticateCaller(context, credential, now);
  if (auto* refusal = std::get_if<HttpResponse>(&caller)) return std::move(*refusal);
  const Principal& principal = std::get<Principal>(caller);
  auto session = NewSessionFor(context, principal, now);
  if (!session.ok()) return ErrorFrom(session.status());
  HttpResponse response = JsonResponse(201, SessionJson(principal, *session, key));
  response.headers.emplace_back("Set-Cookie", SessionCookie(EncodeSession(*session, key), *session, now));
  return response;
}

HttpResponse Current(WorkerContext& context, const HttpRequest& request, const std::string& key, UnixSeconds now) {
  std::optional<std::string> cookie = SessionCookieValue(request);
  if (!cookie) return Unauthenticated("no console session; sign in with POST " + std::string(kSessionPath));
  auto caller = AuthenticateCaller(context, request, now);
  if (auto* refusal = std::get_if<HttpResponse>(&caller)) return std::move(*refusal);
  auto claims = DecodeSession(*cookie, key, now);
  if (!claims.ok()) return Unauthenticated(claims.status().message());
  // Activity: the idle limit starts again (never past the absolute one).
  claims->idle_until = std::min(claims->expires_at, now + ConfigOf(context).console.session_idle_seconds);
  HttpResponse response = JsonResponse(200, SessionJson(std::get<Principal>(caller), *claims, key));
  response.headers.emplace_back("Set-Cookie", SessionCookie(EncodeSession(*claims, key), *claims, now));
  return response;
}

HttpResponse SignOut(WorkerContext& context, const HttpRequest& request, UnixSeconds now) {
  if (auto refusal = CheckOrigin(context, request, true)) return *refusal;
  // A live session needs its CSRF token (no other site may sign the user out); a dead or foreign
  // cookie is cleared whatever it holds.
  if (std::optional<std::string> cookie = SessionCookieValue(request)) {
    auto caller = AuthenticateCaller(context, request, now);
    if (auto* refusal = std::get_if<HttpResponse>(&caller); refusal != nullptr && refusal->status == 403) {
      return std::move(*refusal);
    }
    // Forgotten on the server too: a copy of the cookie taken before is refused from now on.
    if (std::holds_alternative<Principal>(caller)) {
      auto claims = DecodeSession(*cookie, context.console_session_key, now);
      if (claims.ok()) {
        Status ended = context.fleet->EndSession(claims->id, claims->user_id, now, claims->expires_at);
        if (!ended.ok()) return ErrorFrom(ended);  // the person must know the sign-out did not take
      }
    }
  }
  HttpResponse response;
  response.status = 204;
  response.headers.emplace_back("Set-Cookie", ClearedSessionCookie());
  return response;
}

}  // namespace

Result<SessionClaims> NewSessionFor(const WorkerContext& context, const Principal& principal, UnixSeconds now) {
  const ConsoleConfig& console = ConfigOf(context).console;
  SessionClaims claims;
  claims.user_id = principal.user.id;
  claims.method = principal.method;
  claims.token_id = principal.token_id;
  claims.provider = principal.provider;
  claims.certificate = principal.certificate;
  claims.issued_at = now;
  claims.idle_until = now + console.session_idle_seconds;
  claims.expires_at = now + console.session_max_seconds;
  return NewSession(std::move(claims));
}

std::variant<HttpResponse, Principal> AuthenticateSession(WorkerContext& context, const HttpRequest& request,
                                                          const std::string& cookie, UnixSeconds now) {
  if (context.console_session_key.empty()) {
    return ErrorResponse(503, "unavailable", "console sessions are unavailable on this worker (no session key)");
  }
  auto claims = DecodeSession(cookie, context.console_session_key, now);
  if (!claims.ok()) return Unauthenticated(claims.status().message());
  auto ended = context.fleet->SessionEnded(claims->id, claims->user_id, claims->issued_at);
  if (!ended.ok()) return AuthenticationFailure(ended.status());
  if (*ended) {
    return Unauthenticated(
        "this console session was ended on the server (signed out, or all of the user's sessions were "
        "ended); sign in again");
  }
  if (request.method != "GET" && request.method != "HEAD") {
    if (auto refusal = CheckOrigin(context, request, true)) return std::move(*refusal);
    std::string_view presented = request.Header(kCsrfHeader);
    if (presented.empty()) {
      return Forbidden("csrf", request.method + " with a console session needs the session's CSRF token in the " +
                                   "X-CSRF-Token header (GET " + std::string(kSessionPath) + " gives it)");
    }
    if (!ConstantTimeEquals(presented, CsrfTokenFor(*claims, context.console_session_key))) {
      return Forbidden("csrf", "the X-CSRF-Token header is not this session's CSRF token");
    }
  }
  Principal principal;
  principal.source = request.remote_address;
  principal.session = true;
  principal.method = claims->method;
  principal.provider = claims->provider;
  if (claims->method == "client-certificate") {
    // The session lasts while the card does: every request presents the certificate it was made
    // with (a request without it — the card pulled, another person's browser — is not the session).
    const auto& presented = request.client_certificate;
    if (!presented || !presented->verified || presented->sha256 != claims->certificate) {
      return Unauthenticated(
          "this console session was made with the client certificate sha256:" + claims->certificate.substr(0, 16) +
          "…, which this request does not present; sign in again");
    }
    principal.certificate = claims->certificate;
  }
  auto user = context.fleet->GetUser(claims->user_id);
  if (!user.ok()) {
    if (user.status().code() == StatusCode::kNotFound) return Unauthenticated("the session's user no longer exists");
    return AuthenticationFailure(user.status());
  }
  principal.user = std::move(*user);
  if (claims->method == "api-token") {
    // The token the session was made from, read again: revoking it (or its expiry) ends the session.
    auto token = ApiTokenById(*context.fleet, claims->token_id);
    if (!token.ok()) {
      if (token.status().code() == StatusCode::kNotFound) {
        return Unauthenticated("the API token this session was made from no longer exists");
      }
      return AuthenticationFailure(token.status());
    }
    if (token->revoked_at) return Unauthenticated("API token " + token->id + " (this session's) was revoked");
    if (token->expires_at && *token->expires_at <= now) {
      return Unauthenticated("API token " + token->id + " (this session's) expired");
    }
    if (token->user_id != principal.user.id) return Unauthenticated("the session does not match its API token");
    principal.token_id = token->id;
    principal.role = token->role;
  }
  return principal;
}

}  // namespace admin

void HandleSessionRequest(WorkerContext& context, net::HttpRequest request, net::Responder respond) {
  using namespace admin;
  HttpResponse response;
  try {
    const std::string& key = context.console_session_key;
    UnixSeconds now = NowOf(context);
    if (context.store == nullptr || context.fleet == nullptr) {
      response = ErrorResponse(503, "unavailable", "the worker has no database connection");
    } else if (key.empty()) {
      response = ErrorResponse(503, "unavailable", "console sessions are unavailable on this worker (no session key)");
    } else if (request.method == "POST" && context.sign_in_limiter != nullptr &&
               !AllowSignInAttempt(context, request.remote_address)) {
      // Counted before the token is looked at, so a guesser learns nothing from the answer.
      response = ErrorResponse(429, "rate_limited",
                               "too many sign-in attempts from this address; wait and try again "
                               "(console.sign_in_rate_limit_burst / _per_minute)");
      response.headers.emplace_back("Retry-After", std::to_string(context.sign_in_limiter->RetryAfterSeconds()));
    } else if (request.method == "POST") {
      response = SignIn(context, request, key, now);
    } else if (request.method == "GET") {
      response = Current(context, request, key, now);
    } else if (request.method == "DELETE") {
      response = SignOut(context, request, now);
    } else {
      response =
          ErrorResponse(405, "method_not_allowed", request.method + " is not allowed here; use GET, POST, DELETE");
      response.headers.emplace_back("Allow", "GET, POST, DELETE");
    }
  } catch (const std::exception& error) {
    response = ErrorResponse(500, "internal", std::string("internal error: ") + error.what());
  }
  respond(NoStore(std::move(response)));
}

}  // namespace appban::server
