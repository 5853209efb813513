#include "appban/identity/client_auth.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace appban::identity {
namespace {

// A key made by OpenSSL, written as PEM to a file of the test's own.
class KeyFile {
 public:
  explicit KeyFile(EVP_PKEY* key) : key_(key, EVP_PKEY_free) {
    path_ = (std::filesystem::temp_directory_path() /
             ("appban-client-auth-" + std::to_string(getpid()) + "-" + std::to_string(counter_++) + ".pem"))
                .string();
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long length = BIO_get_mem_data(bio.get(), &data);
    std::ofstream(path_) << std::string(data, static_cast<size_t>(length));
  }
  explicit KeyFile(const std::string& text) : key_(nullptr, EVP_PKEY_free) {
    path_ = (std::filesystem::temp_directory_path() /
             ("appban-client-auth-" + std::to_string(getpid()) + "-" + std::to_string(counter_++) + ".pem"))
                .string();
    std::ofstream(path_) << text;
  }
  ~KeyFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }
  std::shared_ptr<EVP_PKEY> key() const { return key_; }

 private:
  static inline int counter_ = 0;
  std::shared_ptr<EVP_PKEY> key_;
  std::string path_;
};

OidcIssuerConfig WithKey(const std::string& path) {
  OidcIssuerConfig issuer;
  issuer.name = "idp";
  issuer.client_id = "appban-console";
  issuer.private_key_jwt_file = path;
  return issuer;
}

void ExpectAssertionVerifies(EVP_PKEY* generated, JwtAlgorithm expected) {
  KeyFile file(generated);
  auto credentials = LoadClientCredentials(WithKey(file.path()));
  ASSERT_TRUE(credentials.ok()) << credentials.status().ToString();
  EXPECT_EQ(credentials->method(), ClientCredentials::Method::kPrivateKeyJwt);
  EXPECT_EQ(credentials->MethodName(), "private_key_jwt");
  EXPECT_EQ(credentials->algorithm(), expected);
  auto first = credentials->MakeAssertion("appban-console", "https://idp.example/token", 1000);
  auto second = credentials->MakeAssertion("appban-console", "https://idp.example/token", 1000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(second.ok());
  auto jwt = ParseJwt(*first);
  ASSERT_TRUE(jwt.ok()) << jwt.status().ToString();
  EXPECT_EQ(jwt->alg, expected);
  // The signature verifies with the public half, as the provider checks it.
  JsonWebKey public_key("k", expected, file.key());
  EXPECT_TRUE(public_key.Verify(*jwt).ok());
  EXPECT_EQ(jwt->claims["iss"], "appban-console");
  EXPECT_EQ(jwt->claims["sub"], "appban-console");
  EXPECT_EQ(jwt->claims["aud"], "https://idp.example/token");
  EXPECT_EQ(jwt->claims["iat"], 1000);
  EXPECT_EQ(jwt->claims["exp"], 1000 + ClientAuthLimits::kAssertionLifetimeSeconds);
  // A fresh jti every time: the provider may refuse a replayed assertion.
  EXPECT_EQ(jwt->claims["jti"].get<std::string>().size(), 32u);
  EXPECT_NE(jwt->claims["jti"], ParseJwt(*second)->claims["jti"]);
}

TEST(ClientAuth, PrivateKeyJwtRs256AssertionVerifiesWithThePublicKey) {
  ExpectAssertionVerifies(EVP_RSA_gen(2048), JwtAlgorithm::kRs256);
}

TEST(ClientAuth, PrivateKeyJwtEs256AssertionVerifiesWithThePublicKey) {
  ExpectAssertionVerifies(EVP_EC_gen("P-256"), JwtAlgorithm::kEs256);
}

TEST(ClientAuth, RefusesKeysItWouldNotSignWithNamingTheFile) {
  KeyFile small(EVP_RSA_gen(1024));
  auto refused = LoadClientCredentials(WithKey(small.path()));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("1024 bits"), std::string::npos) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find(small.path()), std::string::npos);

  KeyFile p384(EVP_EC_gen("P-384"));
  refused = LoadClientCredentials(WithKey(p384.path()));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("P-256"), std::string::npos) << refused.status().ToString();

  KeyFile garbage(std::string("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n"));
  refused = LoadClientCredentials(WithKey(garbage.path()));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not a PEM private key"), std::string::npos);

  EXPECT_FALSE(LoadClientCredentials(WithKey("/nonexistent/appban-key.pem")).ok());
}

TEST(ClientAuth, SecretFileIsReadWithoutItsNewlineAndPublicClientsHaveNone) {
  KeyFile secret(std::string("s3cret value\n"));
  OidcIssuerConfig issuer;
  issuer.client_id = "appban";
  issuer.client_secret_file = secret.path();
  auto credentials = LoadClientCredentials(issuer);
  ASSERT_TRUE(credentials.ok());
  EXPECT_EQ(credentials->MethodName(), "client_secret_basic");
  EXPECT_FALSE(credentials->MakeAssertion("appban", "https://idp/token", 1).ok());

  KeyFile empty(std::string("\n"));
  issuer.client_secret_file = empty.path();
  EXPECT_FALSE(LoadClientCredentials(issuer).ok());

  issuer.client_secret_file.clear();
  EXPECT_EQ(LoadClientCredentials(issuer)->MethodName(), "none");
}

// RFC 7636 Appendix B.
TEST(ClientAuth, CodeChallengeS256MatchesTheRfcExample) {
  EXPECT_EQ(CodeChallengeS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST(ClientAuth, ProviderUrlsMustBeHttpsOrLoopbackHttp) {
  EXPECT_TRUE(CheckProviderUrl("https://login.example.gov/token").ok());
  EXPECT_TRUE(CheckProviderUrl("http://127.0.0.1:4000/token").ok());
  EXPECT_TRUE(CheckProviderUrl("http://[::1]:4000/token").ok());
  EXPECT_FALSE(CheckProviderUrl("http://login.example.gov/token").ok());
  EXPECT_FALSE(CheckProviderUrl("javascript:alert(1)").ok());
  EXPECT_FALSE(CheckProviderUrl("https://a b/").ok());
  EXPECT_FALSE(CheckProviderUrl("https://x/" + std::string(3000, 'a')).ok());
}

}  // namespace
}  // namespace appban::identity
