#include "appban/mdm/entra_auth.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/mdm/limits.h"

namespace appban::mdm {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

std::string Digest(const EVP_MD* md, std::string_view bytes) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), out, &length, md, nullptr);
  return std::string(reinterpret_cast<const char*>(out), length);
}

Result<std::string> LoadCertificateDer(const std::string& pem, std::string_view private_key_pem,
                                       const std::string& path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509, X509Free> certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!certificate) return Status::InvalidArgument(path + ": not a PEM certificate");
  unsigned char* der = nullptr;
  int length = i2d_X509(certificate.get(), &der);
  if (length <= 0) return Status::InvalidArgument(path + ": cannot encode the certificate");
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  std::unique_ptr<BIO, BioFree> key_bio(
      BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Status::InvalidArgument("private_key_file is not a PEM private key");
  if (X509_check_private_key(certificate.get(), key.get()) != 1) {
    return Status::InvalidArgument(path + ": the private key does not belong to this certificate");
  }
  return out;
}

std::string RandomGuid() {
  unsigned char bytes[16];
  RAND_bytes(bytes, sizeof bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  std::string hex = HexLower(Bytes(bytes, sizeof bytes));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

}  // namespace

std::string EntraTokenUrl(std::string_view login_base_url, std::string_view tenant_id) {
  return std::string(login_base_url) + "/" + std::string(tenant_id) + "/oauth2/v2.0/token";
}

Result<EntraCredentials> LoadEntraCredentials(const IntuneConnectorConfig& config) {
  EntraCredentials credentials;
  credentials.tenant_id = config.tenant_id;
  credentials.client_id = config.client_id;
  if (!config.client_secret_file.empty()) {
    APPBAN_ASSIGN_OR_RETURN(
        credentials.client_secret,
        ReadCredentialFile(config.client_secret_file, kMdmLimits.max_key_file_bytes, "client secret"));
    while (!credentials.client_secret.empty() &&
           (credentials.client_secret.back() == '\n' || credentials.client_secret.back() == '\r')) {
      credentials.client_secret.pop_back();
    }
    if (credentials.client_secret.empty()) {
      return Status::InvalidArgument(config.client_secret_file + ": the client secret file is empty");
    }
    return credentials;
  }
  APPBAN_ASSIGN_OR_RETURN(credentials.private_key_pem,
                          ReadCredentialFile(config.private_key_file, kMdmLimits.max_key_file_bytes, "private key"));
  // The certificate is public: no mode check, but the same bound.
  APPBAN_ASSIGN_OR_RETURN(std::string certificate,
                          ReadFileToString(config.certificate_file, kMdmLimits.max_key_file_bytes));
  APPBAN_ASSIGN_OR_RETURN(credentials.certificate_der,
                          LoadCertificateDer(certificate, credentials.private_key_pem, config.certificate_file));
  return credentials;
}

Result<std::string> MakeClientAssertion(const EntraCredentials& credentials, std::string_view token_url,
                                        UnixSeconds now, std::string_view jti) {
  if (credentials.certificate_der.empty()) return Status::InvalidArgument("no certificate credential");
  Json header = {{"alg", "RS256"},
                 {"typ", "JWT"},
                 {"x5t#S256", Base64UrlEncode(Digest(EVP_sha256(), credentials.certificate_der))},
                 {"x5t", Base64UrlEncode(Digest(EVP_sha1(), credentials.certificate_der))}};
  Json claims = {{"aud", token_url},
                 {"iss", credentials.client_id},
                 {"sub", credentials.client_id},
                 {"jti", jti},
                 {"nbf", now},
                 {"iat", now},
                 {"exp", now + kClientAssertionLifetimeSeconds}};
  return SignJwtRs256(header, claims, credentials.private_key_pem);
}

Result<std::string> ClientCredentialsBody(const EntraCredentials& credentials, std::string_view token_url,
                                          UnixSeconds now) {
  std::string body = "grant_type=client_credentials&client_id=" + PercentEncode(credentials.client_id) +
                     "&scope=" + PercentEncode(kGraphDefaultScope);
  if (!credentials.client_secret.empty()) return body + "&client_secret=" + PercentEncode(credentials.client_secret);
  APPBAN_ASSIGN_OR_RETURN(std::string assertion, MakeClientAssertion(credentials, token_url, now, RandomGuid()));
  return body + "&client_assertion_type=" + PercentEncode(kClientAssertionType) +
         "&client_assertion=" + PercentEncode(assertion);
}

Result<std::unique_ptr<AccessTokenSource>> MakeGraphTokenSource(EntraCredentials credentials,
                                                                std::string_view login_base_url,
                                                                TokenSourceOptions options) {
  options.scope = std::string(kGraphDefaultScope);
  std::string token_url = EntraTokenUrl(login_base_url, credentials.tenant_id);
  TokenRequestBody body = [credentials = std::move(credentials), token_url](UnixSeconds now) {
    return ClientCredentialsBody(credentials, token_url, now);
  };
  return AccessTokenSource::CreateForGrant(std::move(token_url), std::move(body), std::move(options));
}

}  // namespace appban::mdm
