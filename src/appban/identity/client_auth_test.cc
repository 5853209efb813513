#include "appban/identity/client_auth.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "appban/common/encoding.h"

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

// What `openssl CMD` prints (the real tool, run as an administrator would), or "" when it fails.
std::string Openssl(const std::string& arguments) {
  std::string out;
  std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(("openssl " + arguments + " 2>/dev/null").c_str(), "r"), pclose);
  if (!pipe) return out;
  char buffer[4096];
  size_t read = 0;
  while ((read = fread(buffer, 1, sizeof buffer, pipe.get())) > 0) out.append(buffer, read);
  return out;
}

// "SHA1 Fingerprint=AB:CD:..." as openssl prints it, as base64url of the bytes.
std::string FingerprintAsBase64Url(const std::string& printed) {
  std::string bytes;
  std::string hex = printed.substr(printed.find('=') + 1);
  for (size_t i = 0; i + 1 < hex.size(); i += 3)
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return Base64UrlEncode(bytes);
}

// Entra ID finds a certificate credential by the assertion's x5t (SHA-1 thumbprint) or x5t#S256:
// a key file that also holds the registered certificate sends both, as openssl computes them.
TEST(ClientAuth, AKeyFileWithItsCertificateSendsItsThumbprints) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("appban-x5t-" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  Openssl("req -x509 -newkey rsa:2048 -nodes -subj /CN=appban-console -days 2 -keyout " + dir + "/key.pem -out " + dir +
          "/cert.pem");
  Openssl("req -x509 -newkey rsa:2048 -nodes -subj /CN=someone-else -days 2 -keyout " + dir + "/other-key.pem -out " +
          dir + "/other-cert.pem");
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  ASSERT_FALSE(read(dir + "/cert.pem").empty()) << "openssl could not make the test certificate";
  KeyFile combined(read(dir + "/key.pem") + read(dir + "/cert.pem"));
  auto credentials = LoadClientCredentials(WithKey(combined.path()));
  ASSERT_TRUE(credentials.ok()) << credentials.status().ToString();
  auto assertion = credentials->MakeAssertion("appban-console", "https://login.example/token", 1000);
  ASSERT_TRUE(assertion.ok()) << assertion.status().ToString();
  auto jwt = ParseJwt(*assertion);
  ASSERT_TRUE(jwt.ok()) << jwt.status().ToString();
  EXPECT_EQ(jwt->header["x5t"],
            FingerprintAsBase64Url(Openssl("x509 -noout -fingerprint -sha1 -in " + dir + "/cert.pem")));
  EXPECT_EQ(jwt->header["x5t#S256"],
            FingerprintAsBase64Url(Openssl("x509 -noout -fingerprint -sha256 -in " + dir + "/cert.pem")));
  EXPECT_EQ(jwt->claims["nbf"], 1000);

  // A key alone sends no thumbprint; a certificate for another key is refused when loaded.
  KeyFile key_only(read(dir + "/key.pem"));
  auto plain = LoadClientCredentials(WithKey(key_only.path()));
  ASSERT_TRUE(plain.ok());
  auto plain_jwt = ParseJwt(*plain->MakeAssertion("appban-console", "https://login.example/token", 1000));
  ASSERT_TRUE(plain_jwt.ok());
  EXPECT_FALSE(plain_jwt->header.contains("x5t"));
  KeyFile mismatched(read(dir + "/key.pem") + read(dir + "/other-cert.pem"));
  auto refused = LoadClientCredentials(WithKey(mismatched.path()));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("the certificate is for another key"), std::string::npos)
      << refused.status().ToString();
  std::filesystem::remove_all(dir);
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
