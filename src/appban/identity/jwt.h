// JSON Web Tokens as OpenID Connect providers issue them (RFC 7519, JWS compact serialization
// RFC 7515), and the JSON Web Key sets they publish (RFC 7517). Pure parsing and checking of
// untrusted bytes: no I/O, no clock (the caller passes `now`). Signatures are checked with
// OpenSSL 3; only RS256 and ES256 are accepted — `alg: none`, the HMAC algorithms (which would let
// whoever knows the provider's PUBLIC key forge tokens) and everything else are refused by name.
//
// Every function is thread-safe; a JsonWebKey is immutable after parsing and may be shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace appban::identity {

struct JwtLimits {
  size_t max_token_bytes = 16 * 1024;   // a bearer token; Entra ID tokens with many groups stay below
  size_t max_header_bytes = 2 * 1024;   // decoded JOSE header
  size_t max_claims_bytes = 12 * 1024;  // decoded claims
  int max_json_depth = 16;
  size_t max_jwks_bytes = 256 * 1024;  // a provider's key set document
  size_t max_jwks_keys = 32;           // keys kept from one set (Entra ID publishes about 6)
  size_t max_kid_bytes = 256;
  int min_rsa_bits = 2048;
  int max_rsa_bits = 8192;
};
inline constexpr JwtLimits kJwtLimits;

enum class JwtAlgorithm { kRs256, kEs256 };
std::string_view JwtAlgorithmName(JwtAlgorithm alg);

// A token split and decoded, not yet verified.
struct Jwt {
  JwtAlgorithm alg = JwtAlgorithm::kRs256;
  std::string kid;  // empty when the header names none
  Json header;
  Json claims;
  std::string signing_input;  // "<header>.<payload>" as received
  std::string signature;      // raw bytes
};

// kInvalidArgument naming what is malformed (never echoing the token); kUnsupported for an
// algorithm other than RS256/ES256 ("alg none is refused", "alg HS256 is refused: ...").
Result<Jwt> ParseJwt(std::string_view compact);
// True when `text` has the shape of a JWS compact token (three base64url parts): lets the server
// tell a JWT from an appban API token ("t-….<hex>") without trying both.
bool LooksLikeJwt(std::string_view text);

// One public key from a JWKS.
class JsonWebKey {
 public:
  JsonWebKey(std::string kid, JwtAlgorithm alg, std::shared_ptr<EVP_PKEY> key);
  const std::string& kid() const { return kid_; }
  JwtAlgorithm alg() const { return alg_; }
  // kPermissionDenied when the signature does not verify.
  Status Verify(const Jwt& jwt) const;

 private:
  std::string kid_;
  JwtAlgorithm alg_;
  std::shared_ptr<EVP_PKEY> key_;
};

struct JwksParse {
  std::vector<JsonWebKey> keys;
  std::vector<std::string> skipped;  // why each unusable key was left out ("key 3: kty oct is not a public key")
};
// Keys usable for signatures: kty RSA (n, e; at least min_rsa_bits) or EC P-256 (x, y), `use`
// absent or "sig", `alg` absent or matching the key type. Keys past max_jwks_keys are skipped.
// kInvalidArgument when the document is not a JWKS at all.
Result<JwksParse> ParseJwks(std::string_view text);

// What a token must say to be accepted.
struct ClaimsPolicy {
  std::string issuer;    // exact match with `iss`
  std::string audience;  // must be `aud` or one of its members (the client id)
  UnixSeconds now = 0;
  int64_t clock_skew_seconds = 60;
  // When `aud` has several members, `azp` must be the audience (OpenID Connect Core 1.0 §3.1.3.7).
};
// Checks iss, aud/azp, exp (required), nbf and iat against `policy`. Errors name the reason:
// kExpired "token expired at 2026-12-05T04:50:00Z", kPermissionDenied "token is for audience
// other-app, not appban", "token not valid before ...", "token issued by ... not ...".
Status CheckClaims(const Jwt& jwt, const ClaimsPolicy& policy);

// base64url without padding (RFC 7515 §2); kInvalidArgument on anything else.
Result<std::string> Base64UrlDecode(std::string_view text);

}  // namespace appban::identity
