// Microsoft identity platform client-credentials grant (OAuth 2.0 RFC 6749 §4.4) for an app-only
// Microsoft Graph token, as the Intune connector needs it:
//   POST {login_base_url}/{tenant}/oauth2/v2.0/token
//   grant_type=client_credentials&client_id=…&scope=https://graph.microsoft.com/.default
//   and either client_secret=… or client_assertion_type=urn:ietf:params:oauth:client-assertion-
//   type:jwt-bearer&client_assertion=<JWT> (certificate credentials: a JWT signed RS256 with the
//   private key of a certificate uploaded to the app registration; header alg, typ, x5t#S256 and
//   x5t — the certificate's SHA-256 and SHA-1 thumbprints, base64url; claims aud = the token
//   endpoint, iss = sub = client_id, jti, nbf, iat, exp).
// The token is cached and fetched again before it expires (AccessTokenSource, google_auth.h).
//
// Secrets (the client secret, the private key, the assertion, the token) never reach a log or an
// error message. Thread-safety: the free functions are thread-safe; an EntraCredentials value
// holds secrets and must not be printed.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/mdm/config.h"
#include "appban/mdm/google_auth.h"

namespace appban::mdm {

inline constexpr std::string_view kGraphDefaultScope = "https://graph.microsoft.com/.default";
inline constexpr std::string_view kClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
// Microsoft recommends short-lived client assertions; ten minutes.
inline constexpr int64_t kClientAssertionLifetimeSeconds = 600;

struct EntraCredentials {
  std::string tenant_id;
  std::string client_id;
  std::string client_secret;    // set for a secret credential …
  std::string certificate_der;  // … or these two for a certificate credential
  std::string private_key_pem;
};

// Reads the secret file (trailing newline dropped) or the certificate (PEM) and its RSA key. Files
// holding secrets must be mode 0600 (kPermissionDenied otherwise); the key must match the
// certificate.
Result<EntraCredentials> LoadEntraCredentials(const IntuneConnectorConfig& config);

// {login_base_url}/{tenant}/oauth2/v2.0/token
std::string EntraTokenUrl(std::string_view login_base_url, std::string_view tenant_id);

// The signed client assertion for a certificate credential.
Result<std::string> MakeClientAssertion(const EntraCredentials& credentials, std::string_view token_url,
                                        UnixSeconds now, std::string_view jti);

// The form body of one token request at `now`.
Result<std::string> ClientCredentialsBody(const EntraCredentials& credentials, std::string_view token_url,
                                          UnixSeconds now);

// A token source for Graph (options.scope is replaced by kGraphDefaultScope).
Result<std::unique_ptr<AccessTokenSource>> MakeGraphTokenSource(EntraCredentials credentials,
                                                                std::string_view login_base_url,
                                                                TokenSourceOptions options);

}  // namespace appban::mdm
