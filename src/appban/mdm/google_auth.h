// Google's OAuth 2.0 service-account flow (RFC 7523 JWT bearer grant), as the Android Management
// API needs it: a service-account key file (JSON, as the Cloud console downloads it) → a JWT
// signed RS256 with the key → POST to the key's token_uri → a bearer access token, cached and
// fetched again before it expires.
//
// Credentials never reach a log or an error message: errors name the key file and the token
// endpoint, never the private key, the assertion or the token. ServiceAccountKey and AccessToken
// values hold secrets; do not print them.
//
// Thread-safety: the free functions are pure and thread-safe. An AccessTokenSource is used by one
// thread at a time (it owns an HttpClient).
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/mdm/credential_file.h"  // ReadCredentialFile, for every connector
#include "appban/mdm/retry.h"
#include "appban/net/client.h"

namespace appban::mdm {

inline constexpr std::string_view kAndroidManagementScope = "https://www.googleapis.com/auth/androidmanagement";
inline constexpr std::string_view kJwtBearerGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer";
// Google accepts assertions valid for at most one hour.
inline constexpr int64_t kMaxAssertionLifetimeSeconds = 3600;

struct ServiceAccountKey {
  std::string client_email;     // the JWT's issuer
  std::string private_key_id;   // the JWT header's kid
  std::string token_uri;        // where the assertion is exchanged, e.g. https://oauth2.googleapis.com/token
  std::string private_key_pem;  // PKCS#8 RSA private key: secret
};

// Parses a key file's JSON text: type "service_account", client_email, private_key, token_uri
// (private_key_id optional). The private key must be RSA and load with OpenSSL.
Result<ServiceAccountKey> ParseServiceAccountKey(std::string_view json_text);
// Reads and parses the key file. Refuses (kPermissionDenied) a file that is not a regular file or
// that its group or others may read or write: the key is a credential to the whole enterprise.
Result<ServiceAccountKey> LoadServiceAccountKey(const std::string& path);

// base64url(header).base64url(claims).base64url(RS256 signature by the PEM private key, which must
// be RSA of at least 2048 bits).
Result<std::string> SignJwtRs256(const Json& header, const Json& claims, std::string_view private_key_pem);

// The signed assertion: base64url(header).base64url(claims).base64url(RS256 signature) with
// header {"alg":"RS256","typ":"JWT","kid":…} and claims iss, scope, aud = token_uri, iat = now,
// exp = now + lifetime (1..kMaxAssertionLifetimeSeconds).
Result<std::string> MakeJwtAssertion(const ServiceAccountKey& key, std::string_view scope, UnixSeconds now,
                                     int64_t lifetime_seconds = kMaxAssertionLifetimeSeconds);

// base64url without padding (RFC 4648 §5), as JWTs use it.
std::string Base64UrlEncode(std::string_view bytes);
// Every byte but RFC 3986's unreserved characters as %XX: form values and query parameters.
std::string PercentEncode(std::string_view text);

// An https URL split into what HttpClient needs: the origin and the path (with query).
struct SplitUrl {
  net::Url origin;
  std::string path;  // "/token"; "" when the URL has no path
};
// Accepts https://host[:port][/path] and, for tests against an emulator, http:// only to a
// loopback address (a bearer token must never cross a network in the clear).
Result<SplitUrl> ParseServiceUrl(std::string_view text);

struct TokenSourceOptions {
  std::string scope = std::string(kAndroidManagementScope);
  // A cached token is replaced when less than this is left of its life.
  std::chrono::seconds refresh_margin{300};
  net::ClientOptions http;  // TLS trust, timeouts
  RetryPolicy retry;
  std::function<UnixSeconds()> now = [] { return static_cast<UnixSeconds>(std::time(nullptr)); };
};

// The form body of one token request ("grant_type=…&…") made at `now`; it holds the credentials.
using TokenRequestBody = std::function<Result<std::string>(UnixSeconds now)>;

// Hands out the bearer token for API calls, fetching one when none is cached or the cached one is
// within refresh_margin of expiring.
class AccessTokenSource {
 public:
  // Google's JWT-bearer grant with the service account's key, at the key's token_uri.
  static Result<std::unique_ptr<AccessTokenSource>> Create(ServiceAccountKey key, TokenSourceOptions options);
  // Any OAuth 2.0 token endpoint (RFC 6749 §5.1 answers): `body` builds each request's form.
  static Result<std::unique_ptr<AccessTokenSource>> CreateForGrant(std::string token_url, TokenRequestBody body,
                                                                   TokenSourceOptions options);
  ~AccessTokenSource();

  // The current token. Errors: kPermissionDenied when the endpoint refuses the assertion (wrong
  // key, disabled account), kUnavailable when it cannot be reached, kCorruption for a malformed
  // answer.
  Result<std::string> Token();
  // Drops the cached token (an API answered 401: it was revoked early).
  void Invalidate();
  // How many tokens were fetched so far (tests check caching).
  int fetches() const { return fetches_; }

 private:
  AccessTokenSource(std::string token_url, TokenRequestBody body, TokenSourceOptions options, SplitUrl endpoint);

  std::string token_url_;
  TokenRequestBody body_;
  TokenSourceOptions options_;
  SplitUrl endpoint_;
  std::unique_ptr<net::HttpClient> http_;
  std::string token_;
  UnixSeconds expires_at_ = 0;
  int fetches_ = 0;
};

}  // namespace appban::mdm
