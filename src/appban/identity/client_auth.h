// The console's sign-in at an OpenID Connect provider, the part done by the server: exchanging an
// authorization code (with its PKCE verifier) for tokens at the provider's token endpoint, with
// appban's client authenticated by `client_secret_basic` (RFC 6749 §2.3.1) or `private_key_jwt`
// (RFC 7523 §2.2, OpenID Connect Core §9): a short JWT signed with the configured private key.
//
// The key and secret files are read when the credentials are loaded (LoadClientCredentials), and
// loading checks them, so the server refuses to start on a key it could not sign with. Everything
// here is thread-safe; ClientCredentials is immutable once loaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/identity/jwt.h"
#include "appban/identity/oidc.h"
#include "appban/net/client.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace appban::identity {

// An issuer, discovery or endpoint URL: https, or http to a loopback address (a provider on the
// same host, as in the tests). kInvalidArgument saying which rule `url` breaks.
Status CheckProviderUrl(std::string_view url);

// An HTTP(S) client for one URL of `issuer` (its CA file or the system's CA store, its timeout,
// responses bounded by `max_response_bytes`) and the URL's path with query.
struct ProviderRequest {
  net::HttpClient client;
  std::string path;
};
Result<ProviderRequest> ProviderClient(const OidcIssuerConfig& issuer, const std::string& url,
                                       size_t max_response_bytes);

// The endpoints of a provider's discovery document that the console's sign-in uses.
struct ProviderEndpoints {
  std::string authorization_endpoint;
  std::string token_endpoint;
};
// Fetches the issuer's discovery document with `fetcher` (I/O: never on the thread serving
// devices) and returns its endpoints. kUnavailable when it cannot be fetched, names another
// issuer, or names no authorization or token endpoint that CheckProviderUrl accepts.
Result<ProviderEndpoints> DiscoverEndpoints(const OidcIssuerConfig& issuer, const Fetcher& fetcher);

struct ClientAuthLimits {
  static constexpr uint64_t kMaxKeyFileBytes = 64 * 1024;
  static constexpr uint64_t kMaxCaFileBytes = 1024 * 1024;
  static constexpr size_t kMaxDiscoveryBytes = 64 * 1024;
  static constexpr size_t kMaxProviderUrlBytes = 2048;
  static constexpr uint64_t kMaxSecretFileBytes = 4 * 1024;
  static constexpr size_t kMaxTokenResponseBytes = 64 * 1024;  // the provider's token endpoint answer
  static constexpr size_t kMaxCodeBytes = 4096;                // an authorization code from a redirect
  // A client assertion lives this long: enough for clock skew, too short to be worth stealing.
  static constexpr int64_t kAssertionLifetimeSeconds = 60;
};

struct CodeExchange {
  std::string token_endpoint;
  std::string code;
  std::string code_verifier;
  std::string redirect_uri;
};

// How appban's client proves itself at the token endpoint.
class ClientCredentials {
 public:
  enum class Method { kNone, kClientSecretBasic, kPrivateKeyJwt };

  Method method() const { return method_; }
  std::string_view MethodName() const;  // "none", "client_secret_basic", "private_key_jwt"
  // For private_key_jwt: the JWS algorithm the key signs with (RSA: RS256, EC P-256: ES256).
  JwtAlgorithm algorithm() const { return algorithm_; }

  // The client assertion for `audience` (the token endpoint): iss = sub = client_id, aud, a random
  // jti, iat = now, exp = now + kAssertionLifetimeSeconds. kFailedPrecondition unless private_key_jwt.
  Result<std::string> MakeAssertion(std::string_view client_id, std::string_view audience, UnixSeconds now) const;

 private:
  friend Result<ClientCredentials> LoadClientCredentials(const OidcIssuerConfig& issuer);
  friend Result<std::string> ExchangeAuthorizationCode(const OidcIssuerConfig& issuer,
                                                       const ClientCredentials& credentials,
                                                       const CodeExchange& exchange, UnixSeconds now);
  Method method_ = Method::kNone;
  std::string secret_;
  JwtAlgorithm algorithm_ = JwtAlgorithm::kRs256;
  std::shared_ptr<EVP_PKEY> key_;
  // When the key file also holds the key's certificate: its SHA-1 and SHA-256 thumbprints
  // (base64url), sent as the assertion's x5t and x5t#S256 headers (Entra ID finds the
  // credential by them).
  std::string x5t_;
  std::string x5t_s256_;
};

// Reads client_secret_file (the secret, a trailing newline dropped) or private_key_jwt_file (a PEM
// private key: RSA of at least kJwtLimits.min_rsa_bits, or EC P-256, optionally followed by the
// certificate registered for it at the provider, which must hold the same key). Neither
// configured: kNone (a public client). Errors name the file and what is wrong with it.
Result<ClientCredentials> LoadClientCredentials(const OidcIssuerConfig& issuer);

// POSTs grant_type=authorization_code to the token endpoint (the issuer's CA file and timeout
// apply) and returns the ID token it answers. kPermissionDenied naming the provider's `error` and
// `error_description` when it refuses (a replayed or expired code: "invalid_grant"), kUnavailable
// when it cannot be reached or answers something that is not a token response.
Result<std::string> ExchangeAuthorizationCode(const OidcIssuerConfig& issuer, const ClientCredentials& credentials,
                                              const CodeExchange& exchange, UnixSeconds now);

// The PKCE S256 code challenge of `verifier` (RFC 7636 §4.2): base64url(SHA-256(verifier)).
std::string CodeChallengeS256(std::string_view verifier);

}  // namespace appban::identity
