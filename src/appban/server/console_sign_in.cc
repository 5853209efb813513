// The console's sign-in through an OpenID Connect provider: authorization code flow with PKCE,
// done by the server (docs/console.md, "Signing in at the identity provider"). The browser only
// carries the signed sign-in cookie (console_session.h) between the two steps; the code is
// exchanged by the server, authenticated as appban's client (client_secret_basic or
// private_key_jwt, identity/client_auth.h), and the ID token is validated like any bearer token,
// plus its nonce, before the session cookie that POST /v1/session would give is set.
#include <optional>
#include <string>
#include <variant>

#include "appban/common/crypto.h"
#include "appban/common/encoding.h"
#include "appban/common/text.h"
#include "appban/identity/client_auth.h"
#include "appban/identity/oidc.h"
#include "appban/server/admin_api.h"
#include "appban/server/admin_call.h"
#include "appban/server/admin_reader.h"
#include "appban/server/config.h"
#include "appban/server/console.h"
#include "appban/server/console_session.h"
#include "appban/server/console_sign_in.h"
#include "appban/server/reader_context.h"

namespace appban::server {
namespace admin {
namespace {

constexpr std::string_view kProvidersPath = "/console/providers";
constexpr std::string_view kScope = "openid profile";
// What a redirect back from the provider may carry; longer values are refused unread.
constexpr size_t kMaxStateBytes = 128;
constexpr size_t kMaxProviderErrorBytes = 64;
constexpr size_t kMaxProviderDescriptionBytes = 300;
constexpr size_t kMaxProviderNameBytes = 64;

UnixSeconds NowOf(const WorkerContext& context) { return context.clock ? context.clock() : decide::SystemClockNow(); }

// A small page in the console's style (no script): a refusal says why and links back.
HttpResponse Page(int status, std::string_view title, std::string_view message) {
  HttpResponse response;
  response.status = status;
  response.content_type = "text/html; charset=utf-8";
  response.body = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>appban — " +
                  HtmlEscape(title) +
                  "</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\n<body><main class=\"sign-in-result\">"
                  "<h1>" +
                  HtmlEscape(title) + "</h1>\n<p id=\"sign-in-message\">" + HtmlEscape(message) +
                  "</p>\n<p><a href=\"/\">Back to the console</a></p></main></body></html>\n";
  response.headers.emplace_back("Cache-Control", "no-store");
  AddConsoleSecurityHeaders(response);
  return response;
}

HttpResponse Refused(int status, std::string_view message) { return Page(status, "Sign-in refused", message); }

// The status and page for an error of the sign-in's back half.
HttpResponse RefusedFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kUnavailable:
      return Refused(502, status.message());
    case StatusCode::kInvalidArgument:
    case StatusCode::kExpired:
      return Refused(400, status.message());
    default:
      return Refused(401, status.message());
  }
}

const identity::OidcIssuerConfig* IssuerNamed(const WorkerContext& context, std::string_view name) {
  for (const auto& issuer : ConfigOf(context).identity.oidc)
    if (issuer.name == name) return &issuer;
  return nullptr;
}

HttpResponse NoSuchProvider(std::string_view name) {
  return Refused(404, "No identity provider is named " + std::string(name) + " in this server's configuration.");
}

// Runs `work` — which fetches from the provider — on the AdminReader's thread (the caller's,
// without one), with what it may reach from there: the configuration (immutable), the clock, the
// verifier (thread-safe), the session key and the reader's own connections.
template <typename Work>
void RunOffRequestThread(WorkerContext& context, net::Responder respond, Work work) {
  if (context.admin_reader == nullptr) return respond(work(context));
  WorkerContext reader_context = ReaderThreadContext(context);
  auto job = [reader_context, work = std::move(work)](store::Store& store, store::FleetStore& fleet) mutable {
    reader_context.store = &store;
    reader_context.fleet = &fleet;
    try {
      return work(reader_context);
    } catch (const std::exception& error) {
      return Refused(502, std::string("The sign-in could not be completed: ") + error.what());
    }
  };
  std::optional<net::Responder> refused = context.admin_reader->Submit(std::move(job), std::move(respond));
  if (refused) {
    HttpResponse busy = Refused(503, "The server is busy; try again in a moment.");
    busy.headers.emplace_back("Retry-After", std::to_string(AdminReader::kRetryAfterSeconds));
    (*refused)(std::move(busy));
  }
}

std::string RedirectUri(const WorkerContext& context, const HttpRequest& request) {
  std::string origin = ExpectedOrigin(request, ConfigOf(context).listen.tls);
  return origin.empty() ? origin : origin + std::string(kSignInCallbackPath);
}

HttpResponse Providers(const WorkerContext& context) {
  Json providers = Json::array();
  for (const auto& issuer : ConfigOf(context).identity.oidc) {
    providers.push_back(
        Json{{"name", issuer.name},
             {"sign_in_url", std::string(kSignInStartPath) + "?provider=" + PercentEncode(issuer.name)}});
  }
  // Whether a card can sign in (POST /v1/session {"client_certificate": true}).
  HttpResponse response =
      JsonResponse(200, Json{{"providers", std::move(providers)},
                             {"client_certificates", ConfigOf(context).identity.client_certificates.enabled()}});
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

void Start(WorkerContext& context, const HttpRequest& request, UnixSeconds now, net::Responder respond) {
  std::optional<std::string> name = request.QueryParam("provider");
  if (!name || name->empty() || name->size() > kMaxProviderNameBytes) {
    return respond(Refused(400, "Choose an identity provider: " + std::string(kSignInStartPath) + "?provider=NAME"));
  }
  const identity::OidcIssuerConfig* issuer = IssuerNamed(context, *name);
  if (issuer == nullptr) return respond(NoSuchProvider(*name));
  std::string redirect_uri = RedirectUri(context, request);
  if (redirect_uri.empty()) return respond(Refused(400, "The request names no Host."));
  auto flow = NewSignInFlow(*name, now);
  if (!flow.ok()) return respond(Refused(503, flow.status().message()));
  RunOffRequestThread(
      context, std::move(respond), [issuer = *issuer, flow = std::move(*flow), redirect_uri](WorkerContext& on) {
        auto endpoints = identity::DiscoverEndpoints(issuer, identity::HttpFetcher());
        if (!endpoints.ok()) return Refused(502, endpoints.status().message());
        const std::string& key = on.console_session_key;
        std::string location = endpoints->authorization_endpoint;
        location += location.find('?') == std::string::npos ? '?' : '&';
        location += "response_type=code&client_id=" + PercentEncode(issuer.client_id) +
                    "&redirect_uri=" + PercentEncode(redirect_uri) + "&scope=" + PercentEncode(kScope) +
                    "&state=" + SignInFlowState(flow, key) + "&nonce=" + SignInFlowNonce(flow, key) +
                    "&code_challenge=" + identity::CodeChallengeS256(SignInFlowCodeVerifier(flow, key)) +
                    "&code_challenge_method=S256";
        HttpResponse response = Page(302, "Signing in", "Continuing at identity provider " + issuer.name + ".");
        response.headers.emplace_back("Location", location);
        response.headers.emplace_back("Set-Cookie", SignInFlowCookie(EncodeSignInFlow(flow, key)));
        return response;
      });
}

// Everything the back half needs, checked on the request thread before any I/O.
struct Callback {
  identity::OidcIssuerConfig issuer;
  identity::CodeExchange exchange;  // all but the token endpoint, which discovery gives
  std::string nonce;
  std::string remote_address;
};

std::variant<HttpResponse, Callback> CheckCallback(WorkerContext& context, const HttpRequest& request,
                                                   UnixSeconds now) {
  const std::string& key = context.console_session_key;
  std::optional<std::string> cookie = CookieValue(request, kSignInFlowCookieName);
  if (!cookie) {
    return Refused(400, "This browser did not start this sign-in (or started it more than " +
                            std::to_string(kSignInFlowSeconds / 60) + " minutes ago): start again from the console.");
  }
  auto flow = DecodeSignInFlow(*cookie, key, now);
  if (!flow.ok()) return Refused(400, flow.status().message());
  std::optional<std::string> state = request.QueryParam("state");
  // Checked before anything else the redirect says, errors included: a link made by someone else
  // must not be able to put its words on this page.
  if (!state || state->size() > kMaxStateBytes || !ConstantTimeEquals(*state, SignInFlowState(*flow, key))) {
    return Refused(400,
                   "The sign-in's state does not match the one this browser started with: the link was not made "
                   "for this sign-in (forged, replayed or from another tab). Start again from the console.");
  }
  if (std::optional<std::string> error = request.QueryParam("error")) {
    std::string description = request.QueryParam("error_description").value_or("");
    std::string shown = SanitizeUtf8(error->substr(0, kMaxProviderErrorBytes));
    if (!description.empty()) shown += " (" + SanitizeUtf8(description.substr(0, kMaxProviderDescriptionBytes)) + ")";
    return Refused(403, "Identity provider " + flow->provider + " did not sign you in: " + shown + ".");
  }
  std::optional<std::string> code = request.QueryParam("code");
  if (!code || code->empty() || code->size() > identity::ClientAuthLimits::kMaxCodeBytes) {
    return Refused(400, "The identity provider's answer carries no usable authorization code.");
  }
  const identity::OidcIssuerConfig* issuer = IssuerNamed(context, flow->provider);
  if (issuer == nullptr || context.oidc == nullptr) return NoSuchProvider(flow->provider);
  Callback callback;
  callback.issuer = *issuer;
  callback.remote_address = request.remote_address;
  callback.exchange.code = std::move(*code);
  callback.exchange.code_verifier = SignInFlowCodeVerifier(*flow, key);
  callback.exchange.redirect_uri = RedirectUri(context, request);
  callback.nonce = SignInFlowNonce(*flow, key);
  return callback;
}

// The back half, on the AdminReader's thread (or the caller's, without one): the token request,
// the ID token's checks, the user's sign-in record, the session.
HttpResponse Complete(WorkerContext& context, Callback callback) {
  UnixSeconds now = NowOf(context);
  auto credentials = identity::LoadClientCredentials(callback.issuer);
  if (!credentials.ok()) return Refused(503, "appban's client credentials: " + credentials.status().message());
  auto endpoints = identity::DiscoverEndpoints(callback.issuer, identity::HttpFetcher());
  if (!endpoints.ok()) return Refused(502, endpoints.status().message());
  callback.exchange.token_endpoint = endpoints->token_endpoint;
  auto id_token = identity::ExchangeAuthorizationCode(callback.issuer, *credentials, callback.exchange, now);
  if (!id_token.ok()) return RefusedFor(id_token.status());
  auto verified = context.oidc->Verify(*id_token, now);
  if (!verified.ok()) return RefusedFor(verified.status());
  if (verified->issuer_name != callback.issuer.name) {
    return Refused(401, "The ID token was issued by " + verified->issuer_name + ", not by " + callback.issuer.name +
                            " where this sign-in started.");
  }
  // Its signature and claims were checked just above; the nonce is read from the same bytes.
  auto parsed = identity::ParseJwt(*id_token);
  std::string nonce = parsed.ok() ? StringOr(parsed->claims, "nonce") : std::string();
  if (!ConstantTimeEquals(nonce, callback.nonce)) {
    return Refused(401, "The ID token's nonce is not this sign-in's: the token was issued for another sign-in.");
  }
  HttpRequest bearer;
  bearer.method = "GET";
  bearer.path = std::string(kSignInCallbackPath);
  bearer.remote_address = callback.remote_address;
  bearer.headers.emplace_back("authorization", "Bearer " + *id_token);
  auto caller = AuthenticateCaller(context, bearer, now);
  if (auto* refusal = std::get_if<HttpResponse>(&caller)) {
    Json body = Json::parse(refusal->body, nullptr, false);
    std::string why = body.is_object() && body.contains("error") ? body["error"].value("message", "") : "";
    return Refused(refusal->status == 403 ? 403 : 401, why.empty() ? "The ID token was refused." : why);
  }
  const Principal& principal = std::get<Principal>(caller);
  auto session = NewSessionFor(context, principal, now);
  if (!session.ok()) return Refused(503, session.status().message());
  // 303 to the console: the Strict session cookie set here is not sent with this redirect's GET
  // (the navigation began at the provider, another site), but the page's own calls to the API are
  // same-site and carry it.
  HttpResponse response =
      Page(303, "Signed in", "Signed in as " + principal.user.display_name + ". Continuing to the console.");
  response.headers.emplace_back("Location", "/");
  response.headers.emplace_back("Set-Cookie",
                                SessionCookie(EncodeSession(*session, context.console_session_key), *session, now));
  response.headers.emplace_back("Set-Cookie", ClearedSignInFlowCookie());
  return response;
}

void HandleCallback(WorkerContext& context, HttpRequest& request, UnixSeconds now, net::Responder respond) {
  auto checked = CheckCallback(context, request, now);
  if (auto* refusal = std::get_if<HttpResponse>(&checked)) return respond(std::move(*refusal));
  RunOffRequestThread(
      context, std::move(respond),
      [callback = std::move(std::get<Callback>(checked))](WorkerContext& on) { return Complete(on, callback); });
}

}  // namespace
}  // namespace admin

void HandleConsoleSignIn(WorkerContext& context, net::HttpRequest request, net::Responder respond) {
  using namespace admin;
  try {
    if (request.method != "GET") {
      HttpResponse response = ErrorResponse(405, "method_not_allowed", request.path + " accepts GET");
      response.headers.emplace_back("Allow", "GET");
      return respond(std::move(response));
    }
    UnixSeconds now = NowOf(context);
    if (request.path == kProvidersPath) return respond(Providers(context));
    if (request.path != kSignInStartPath && request.path != kSignInCallbackPath) {
      return respond(ErrorResponse(404, "not_found", "no such endpoint: " + request.path));
    }
    if (context.store == nullptr || context.fleet == nullptr || context.console_session_key.empty()) {
      return respond(Refused(503, "Console sessions are unavailable on this worker."));
    }
    if (request.path == kSignInStartPath) return Start(context, request, now, std::move(respond));
    HandleCallback(context, request, now, std::move(respond));
  } catch (const std::exception& error) {
    respond(Refused(502, std::string("The sign-in could not be completed: ") + error.what()));
  }
}

}  // namespace appban::server
