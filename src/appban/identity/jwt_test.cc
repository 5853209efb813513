#include "appban/identity/jwt.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "appban/identity/oidc.h"

namespace appban::identity {
namespace {

// A real ID token issued by oidc-provider (tests/oidc/provider.mjs) and that provider's public key
// set, kept as fuzz seeds: iss http://127.0.0.1:44101, aud appban, iat 1796448003, exp +600.
std::string Seed(const std::string& name) {
  std::ifstream in(std::string(APPBAN_SOURCE_DIR) + "/fuzz/seeds/jwt/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
constexpr UnixSeconds kIssuedAt = 1796448003;

ClaimsPolicy Policy(UnixSeconds now = kIssuedAt) {
  ClaimsPolicy policy;
  policy.issuer = "http://127.0.0.1:44101";
  policy.audience = "appban";
  policy.now = now;
  policy.clock_skew_seconds = 60;
  return policy;
}

std::string Encode(const std::string& text) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : text) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(buffer >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 63];
  return out;
}

TEST(Jwt, AProviderTokenVerifiesWithItsKeyAndItsClaimsPass) {
  auto jwt = ParseJwt(Seed("id_token.txt"));
  ASSERT_TRUE(jwt.ok()) << jwt.status().ToString();
  EXPECT_EQ(jwt->alg, JwtAlgorithm::kRs256);
  auto jwks = ParseJwks(Seed("jwks.json"));
  ASSERT_TRUE(jwks.ok()) << jwks.status().ToString();
  ASSERT_EQ(jwks->keys.size(), 2u);  // the RSA key and an EC P-256 key; the oct key is skipped
  ASSERT_EQ(jwks->skipped.size(), 1u);
  EXPECT_NE(jwks->skipped[0].find("kty oct"), std::string::npos);
  const JsonWebKey& rsa = jwks->keys[0];
  EXPECT_EQ(rsa.kid(), jwt->kid);
  EXPECT_TRUE(rsa.Verify(*jwt).ok());
  // The EC key never checks an RS256 token.
  EXPECT_EQ(jwks->keys[1].Verify(*jwt).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(CheckClaims(*jwt, Policy()).ok());
}

TEST(Jwt, EditedClaimsDoNotVerify) {
  std::string token = Seed("id_token.txt");
  size_t first = token.find('.');
  size_t second = token.find('.', first + 1);
  auto claims = Base64UrlDecode(token.substr(first + 1, second - first - 1));
  ASSERT_TRUE(claims.ok());
  std::string edited = *claims;
  edited.replace(edited.find("alice"), 5, "bobby");
  std::string forged = token.substr(0, first) + "." + Encode(edited) + token.substr(second);
  auto jwt = ParseJwt(forged);
  ASSERT_TRUE(jwt.ok());
  auto jwks = ParseJwks(Seed("jwks.json"));
  Status verified = jwks->keys[0].Verify(*jwt);
  EXPECT_EQ(verified.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(verified.message().find("does not verify"), std::string::npos);
}

TEST(Jwt, UnsignedAndHmacTokensAreRefusedByName) {
  std::string payload = Encode(R"({"iss":"x","sub":"a","aud":"appban","exp":9999999999})");
  auto none = ParseJwt(Encode(R"({"alg":"none"})") + "." + payload + ".c2ln");
  EXPECT_EQ(none.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(none.status().message().find("alg none is refused"), std::string::npos);
  auto hs = ParseJwt(Encode(R"({"alg":"HS256"})") + "." + payload + ".c2ln");
  EXPECT_NE(hs.status().message().find("HS256 is refused"), std::string::npos);
  EXPECT_EQ(ParseJwt(Encode(R"({"alg":"RS256","crit":["b64"]})") + "." + payload + ".c2ln").status().code(),
            StatusCode::kUnsupported);
  for (const std::string& bad : {std::string(""), std::string("a.b"), std::string("a.b.c.d"), std::string("!!.!!.!!"),
                                 std::string(20000, 'a') + ".b.c"}) {
    EXPECT_FALSE(ParseJwt(bad).ok()) << bad.substr(0, 20);
  }
  EXPECT_TRUE(LooksLikeJwt(Seed("id_token.txt")));
  EXPECT_FALSE(LooksLikeJwt("t-0123456789abcdef." + std::string(64, 'a')));
}

TEST(Jwt, ClaimsAreCheckedWithClearReasons) {
  auto jwt = ParseJwt(Seed("id_token.txt"));
  ASSERT_TRUE(jwt.ok());
  Status expired = CheckClaims(*jwt, Policy(kIssuedAt + 600 + 61));
  EXPECT_EQ(expired.code(), StatusCode::kExpired);
  EXPECT_NE(expired.message().find("token expired at 20"), std::string::npos) << expired.message();
  EXPECT_TRUE(CheckClaims(*jwt, Policy(kIssuedAt + 600 + 59)).ok()) << "within the clock skew";
  ClaimsPolicy other = Policy();
  other.audience = "other-app";
  EXPECT_NE(CheckClaims(*jwt, other).message().find("audience appban, not other-app"), std::string::npos);
  other = Policy();
  other.issuer = "https://idp.example";
  EXPECT_NE(CheckClaims(*jwt, other).message().find("not by https://idp.example"), std::string::npos);
  EXPECT_NE(CheckClaims(*jwt, Policy(kIssuedAt - 3600)).message().find("issued in the future"), std::string::npos);

  // Several audiences: azp must name appban.
  Jwt multi = *jwt;
  multi.claims["aud"] = Json::array({"appban", "other-app"});
  EXPECT_NE(CheckClaims(multi, Policy()).message().find("another client"), std::string::npos);
  multi.claims["azp"] = "appban";
  EXPECT_TRUE(CheckClaims(multi, Policy()).ok());
  Jwt no_exp = *jwt;
  no_exp.claims.erase("exp");
  EXPECT_NE(CheckClaims(no_exp, Policy()).message().find("no exp"), std::string::npos);
}

// A fake fetcher that serves the seed provider's discovery document and keys, counting fetches.
struct SeedProvider {
  int discovery_fetches = 0;
  Fetcher fetcher() {
    return [this](const OidcIssuerConfig&, const std::string& url) -> Result<std::string> {
      if (url.ends_with("/.well-known/openid-configuration")) {
        ++discovery_fetches;
        return std::string(R"({"issuer":"http://127.0.0.1:44101","jwks_uri":"http://127.0.0.1:44101/jwks"})");
      }
      return Seed("jwks.json");
    };
  }
};

OidcIssuerConfig SeedIssuer() {
  OidcIssuerConfig config;
  config.name = "seed";
  config.issuer = "http://127.0.0.1:44101";
  config.client_id = "appban";
  config.min_refresh_seconds = 3600;
  return config;
}

TEST(OidcVerifier, VerifiesFromItsCacheAndBoundsRefreshesCausedByUnknownKeys) {
  SeedProvider provider;
  OidcVerifier verifier({SeedIssuer()}, provider.fetcher());
  // Never fetched: 503-class, naming the provider.
  auto early = verifier.Verify(Seed("id_token.txt"), kIssuedAt);
  EXPECT_EQ(early.status().code(), StatusCode::kUnavailable);
  verifier.RefreshAllNow();
  auto verified = verifier.Verify(Seed("id_token.txt"), kIssuedAt);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->subject, "alice");
  EXPECT_EQ(verified->display_name, "Alice Martin");
  EXPECT_EQ(verified->role, "admin");
  EXPECT_EQ(verifier.fetch_count(), 1);

  // A storm of tokens naming unknown keys: each is refused with "retry", and the background
  // thread fetches at most once per min_refresh_seconds (here: not again within the hour).
  verifier.Start();
  std::string token = Seed("id_token.txt");
  std::string header = Encode(R"({"alg":"RS256","kid":"unknown"})");
  std::string unknown = header + token.substr(token.find('.'));
  for (int i = 0; i < 200; ++i) {
    auto refused = verifier.Verify(unknown, kIssuedAt);
    EXPECT_EQ(refused.status().code(), StatusCode::kNotFound);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  verifier.Stop();
  EXPECT_EQ(verifier.fetch_count(), 1);
  EXPECT_EQ(provider.discovery_fetches, 1);

  auto stranger =
      verifier.Verify(Encode(R"({"alg":"RS256"})") + "." +
                          Encode(R"({"iss":"https://evil.example","sub":"x","aud":"appban","exp":1})") + ".c2ln",
                      kIssuedAt);
  EXPECT_NE(stranger.status().message().find("not a configured identity provider"), std::string::npos);
}

}  // namespace
}  // namespace appban::identity
