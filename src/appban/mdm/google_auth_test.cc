#include "appban/mdm/google_auth.h"

#include <gtest/gtest.h>

#include "appban/mdm/mdm_test_support.h"

namespace appban::mdm {
namespace {

using testing::Fixture;

std::string Decode(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    buffer = (buffer << 6) | static_cast<uint32_t>(alphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

TEST(GoogleAuth, Base64UrlMatchesRfc4648Vectors) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");  // the URL-safe alphabet, no padding
}

TEST(GoogleAuth, AssertionCarriesTheClaimsGoogleRequires) {
  auto key = ParseServiceAccountKey(testing::ServiceAccountJson("https://oauth2.googleapis.com/token"));
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  auto jwt = MakeJwtAssertion(*key, kAndroidManagementScope, 1'800'000'000);
  ASSERT_TRUE(jwt.ok()) << jwt.status().ToString();
  size_t first = jwt->find('.'), second = jwt->find('.', first + 1);
  ASSERT_NE(second, std::string::npos);
  Json header = Json::parse(Decode(jwt->substr(0, first)));
  Json claims = Json::parse(Decode(jwt->substr(first + 1, second - first - 1)));
  EXPECT_EQ(header["alg"], "RS256");
  EXPECT_EQ(header["typ"], "JWT");
  EXPECT_EQ(header["kid"], "0123456789abcdef");
  EXPECT_EQ(claims["iss"], testing::kClientEmail);
  EXPECT_EQ(claims["scope"], "https://www.googleapis.com/auth/androidmanagement");
  EXPECT_EQ(claims["aud"], "https://oauth2.googleapis.com/token");
  EXPECT_EQ(claims["iat"], 1'800'000'000);
  EXPECT_EQ(claims["exp"], 1'800'000'000 + 3600);
  EXPECT_EQ(Decode(jwt->substr(second + 1)).size(), 256u);  // RSA-2048 signature
  EXPECT_FALSE(MakeJwtAssertion(*key, kAndroidManagementScope, 0, 3601).ok()) << "Google refuses exp - iat > 1 h";
  EXPECT_FALSE(MakeJwtAssertion(*key, kAndroidManagementScope, 0, 0).ok());
}

TEST(GoogleAuth, KeyFileMustBeOwnerOnly) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/sa.json";
  ASSERT_TRUE(WriteFileAtomically(path, testing::ServiceAccountJson("https://oauth2.googleapis.com/token"), 0644).ok());
  auto refused = LoadServiceAccountKey(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("0600"), std::string::npos);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto loaded = LoadServiceAccountKey(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->client_email, testing::kClientEmail);
  // A symbolic link is not followed: the mode checked must be the file's own.
  ASSERT_EQ(::symlink(path.c_str(), (dir.path() + "/link.json").c_str()), 0);
  EXPECT_FALSE(LoadServiceAccountKey(dir.path() + "/link.json").ok());
  EXPECT_EQ(LoadServiceAccountKey(dir.path() + "/missing.json").status().code(), StatusCode::kNotFound);
}

TEST(GoogleAuth, MalformedKeysAreRefusedWithoutQuotingTheSecret) {
  const std::string uri = "https://oauth2.googleapis.com/token";
  Json good = Json::parse(testing::ServiceAccountJson(uri));
  Json wrong_type = good;
  wrong_type["type"] = "authorized_user";
  EXPECT_FALSE(ParseServiceAccountKey(wrong_type.dump()).ok());
  Json no_email = good;
  no_email.erase("client_email");
  EXPECT_FALSE(ParseServiceAccountKey(no_email.dump()).ok());
  Json bad_key = good;
  bad_key["private_key"] = "-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n";
  auto refused = ParseServiceAccountKey(bad_key.dump());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message().find("SECRET"), std::string::npos);
  Json plain = good;
  plain["token_uri"] = "http://oauth2.googleapis.com/token";  // a credential in the clear
  EXPECT_FALSE(ParseServiceAccountKey(plain.dump()).ok());
  EXPECT_FALSE(ParseServiceAccountKey("{\"type\":").ok());
  EXPECT_FALSE(ParseServiceAccountKey(std::string(100'000, '[')).ok());
}

TEST(GoogleAuth, EmulatorVerifiesTheSignatureAndTheTokenIsCached) {
  Fixture fixture({});
  auto key = LoadServiceAccountKey(fixture.config.service_account_key_file);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  auto tokens = AccessTokenSource::Create(*key, {});
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  auto first = (*tokens)->Token();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = (*tokens)->Token();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_EQ((*tokens)->fetches(), 1);
  EXPECT_EQ(fixture.emulator->token_grants(), 1);
  (*tokens)->Invalidate();
  ASSERT_TRUE((*tokens)->Token().ok());
  EXPECT_EQ(fixture.emulator->token_grants(), 2);
}

TEST(GoogleAuth, TokenIsRefreshedBeforeItExpires) {
  appban::testing::AmapiEmulatorOptions options;
  options.token_lifetime_seconds = 600;
  Fixture fixture({}, options);
  auto key = LoadServiceAccountKey(fixture.config.service_account_key_file);
  ASSERT_TRUE(key.ok());
  UnixSeconds now = testing::Now();
  TokenSourceOptions token_options;
  token_options.now = [&now] { return now; };
  token_options.refresh_margin = std::chrono::seconds(500);
  auto tokens = AccessTokenSource::Create(*key, token_options);
  ASSERT_TRUE(tokens.ok());
  ASSERT_TRUE((*tokens)->Token().ok());
  now += 50;  // 550 s left: more than the 500 s margin
  ASSERT_TRUE((*tokens)->Token().ok());
  EXPECT_EQ((*tokens)->fetches(), 1);
  now += 100;  // 450 s left: refreshed ahead of expiry (the emulator allows this little clock skew)
  ASSERT_TRUE((*tokens)->Token().ok());
  EXPECT_EQ((*tokens)->fetches(), 2);
}

TEST(GoogleAuth, EmulatorRefusesAForeignKeyAndAnExpiredAssertion) {
  Fixture fixture({});
  auto key = LoadServiceAccountKey(fixture.config.service_account_key_file);
  ASSERT_TRUE(key.ok());
  // Signed by another key than the service account's.
  ServiceAccountKey forged = *key;
  forged.private_key_pem = testing::MakeRsaKey().private_pem;
  auto forged_tokens = AccessTokenSource::Create(forged, {});
  ASSERT_TRUE(forged_tokens.ok());
  auto refused = (*forged_tokens)->Token();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("Invalid JWT Signature"), std::string::npos);
  EXPECT_EQ(refused.status().message().find("PRIVATE KEY"), std::string::npos);
  // A clock two hours behind signs an assertion that expired an hour ago.
  TokenSourceOptions late;
  late.now = [] { return testing::Now() - 7200; };
  auto expired = AccessTokenSource::Create(*key, late);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ((*expired)->Token().status().code(), StatusCode::kPermissionDenied);
  // Another service account (issuer) with a valid signature is refused too.
  ServiceAccountKey other = *key;
  other.client_email = "intruder@elsewhere.iam.gserviceaccount.com";
  auto other_tokens = AccessTokenSource::Create(other, {});
  ASSERT_TRUE(other_tokens.ok());
  EXPECT_FALSE((*other_tokens)->Token().ok());
  EXPECT_EQ(fixture.emulator->token_grants(), 0);
}

}  // namespace
}  // namespace appban::mdm
