// Console sessions (docs/console.md): an API token or OpenID Connect token pasted once into the web
// console is exchanged at POST /v1/session for a session cookie, which then authenticates the same
// admin API the CLI uses.
//
// A session is a server-signed value, not a database row: "s1.<hex of the JSON claims>.<hex of
// HMAC-SHA256(key, claims)>". Workers are separate processes; they share the key, a 32-byte random
// secret in data_dir/console-session.key (mode 0600, created by the first worker that needs it),
// and so accept each other's sessions with no shared state and no schema change. Nothing secret is
// in the cookie: the claims name the user and, for an API-token sign-in, the token's id, and every
// request re-reads both from the store, so a revoked token or a withdrawn role ends its sessions
// at once. What a signed value cannot do is forget: logout clears the browser's cookie, and a
// copied cookie stays valid until it expires (idle or absolute) — or until the key file is
// deleted, which ends every session. docs/console.md weighs this against a sessions table.
//
// Lifetimes: `expires_at` is absolute (ConsoleConfig::session_max_seconds after sign-in);
// `idle_until` moves forward whenever the console asks GET /v1/session (it does on every page
// view), which re-issues the cookie; a session idle for longer than session_idle_seconds is dead.
//
// CSRF: the per-session token is HMAC-SHA256(key, "csrf:" + session id), given to the page in the
// JSON of POST/GET /v1/session (never in a cookie a script could read cross-site), and required in
// the X-CSRF-Token header of every state-changing request authenticated by the cookie, together
// with an Origin header naming this server.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/net/http.h"

namespace appban::server {

inline constexpr std::string_view kSessionCookieName = "appban_session";
inline constexpr std::string_view kSessionPath = "/v1/session";
inline constexpr std::string_view kCsrfHeader = "x-csrf-token";
inline constexpr size_t kSessionKeyBytes = 32;
// Bounds on what a client sends back: a cookie longer than this is refused unread.
inline constexpr size_t kMaxSessionCookieBytes = 2048;
inline constexpr size_t kMaxCookieHeaderBytes = 8192;

struct SessionClaims {
  std::string id;           // 16 random bytes, hex: names the session (and keys its CSRF token)
  std::string user_id;      // the user it signs in
  std::string method;       // the credential it was made from: "api-token", "oidc" or "client-certificate"
  std::string token_id;     // the API token's id (method "api-token")
  std::string provider;     // the provider's configured name (method "oidc")
  std::string certificate;  // the client certificate's SHA-256 (method "client-certificate"): every
                            // request of the session must present that certificate
  UnixSeconds issued_at = 0;
  UnixSeconds idle_until = 0;
  UnixSeconds expires_at = 0;
};

// The key every worker signs with: read from data_dir/console-session.key, created (0600) when
// absent. Two workers creating it at once agree on one (the file is linked into place, never
// overwritten). A key file of the wrong size or with permissions for others is an error.
Result<std::string> LoadOrCreateSessionKey(const std::string& data_dir);

// A new session for `claims` (its id is generated here).
Result<SessionClaims> NewSession(SessionClaims claims);
std::string EncodeSession(const SessionClaims& claims, std::string_view key);
// Checks the signature and shape, then the lifetimes against `now`: kInvalidArgument for a value
// that is not a session of this server, kExpired (naming which limit) for a dead one.
Result<SessionClaims> DecodeSession(std::string_view value, std::string_view key, UnixSeconds now);
std::string CsrfTokenFor(const SessionClaims& claims, std::string_view key);

// The Set-Cookie value: HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age until the earlier of
// idle_until and expires_at. ClearedSessionCookie() deletes it (logout).
std::string SessionCookie(const std::string& value, const SessionClaims& claims, UnixSeconds now);
std::string ClearedSessionCookie();

// The session cookie's value in the request's Cookie headers; nullopt when there is none, or
// when the header or value is longer than the bounds above.
std::optional<std::string> SessionCookieValue(const net::HttpRequest& request);

// ---- Sign-in through the identity provider (console_sign_in.cc; docs/console.md)
//
// Between GET /console/sign-in and the provider's redirect back to /console/callback, the browser
// holds a second signed cookie naming the sign-in attempt: "f1.<hex claims>.<HMAC>", claims being
// a random id, the provider's name and an expiry kSignInFlowSeconds ahead. The OAuth `state`, the
// OpenID Connect `nonce` and the PKCE code verifier are HMACs of that id under the session key, so
// the cookie carries none of them, the server stores nothing, and a callback whose `state` is not
// the one derived from the cookie it arrives with is refused. It is SameSite=Lax, not Strict: the
// provider's redirect back is a cross-site top-level navigation, on which a browser sends Lax
// cookies but not Strict ones; Path=/console/callback keeps it off every other request.

inline constexpr std::string_view kSignInFlowCookieName = "appban_sign_in";
inline constexpr std::string_view kSignInStartPath = "/console/sign-in";
inline constexpr std::string_view kSignInCallbackPath = "/console/callback";
inline constexpr int64_t kSignInFlowSeconds = 600;

struct SignInFlow {
  std::string id;        // 16 random bytes, hex
  std::string provider;  // the [[identity.oidc]] name
  UnixSeconds expires_at = 0;
};

Result<SignInFlow> NewSignInFlow(std::string provider, UnixSeconds now);
std::string EncodeSignInFlow(const SignInFlow& flow, std::string_view key);
// kInvalidArgument for a value this server did not sign, kExpired past expires_at.
Result<SignInFlow> DecodeSignInFlow(std::string_view value, std::string_view key, UnixSeconds now);
// The secrets derived from the flow: what goes in `state` and `nonce`, and the PKCE verifier
// (64 hex digits: within RFC 7636's 43..128 unreserved characters).
std::string SignInFlowState(const SignInFlow& flow, std::string_view key);
std::string SignInFlowNonce(const SignInFlow& flow, std::string_view key);
std::string SignInFlowCodeVerifier(const SignInFlow& flow, std::string_view key);
// Set-Cookie values: HttpOnly; Secure; SameSite=Lax; Path=/console/callback.
std::string SignInFlowCookie(const std::string& value);
std::string ClearedSignInFlowCookie();

// The value of the cookie `name` in the request's Cookie headers; nullopt when absent or longer
// than the bounds above.
std::optional<std::string> CookieValue(const net::HttpRequest& request, std::string_view name);

// The origin a browser names when it sends a request to this server: "https://" (or "http://"
// with `tls` false) + the Host header. Empty when the request has no Host.
std::string ExpectedOrigin(const net::HttpRequest& request, bool tls);

}  // namespace appban::server
