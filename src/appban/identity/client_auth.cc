#include "appban/identity/client_auth.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <chrono>
#include <optional>
#include <tuple>
#include <utility>

#include "appban/common/bytes.h"
#include "appban/common/crypto.h"
#include "appban/common/encoding.h"
#include "appban/common/file.h"
#include "appban/common/json.h"
#include "appban/common/text.h"

namespace appban::identity {
namespace {

constexpr size_t kJtiBytes = 16;
constexpr size_t kEs256CoordinateBytes = 32;
constexpr std::string_view kClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};

// `pem` is the text of the key file at `path` (named in errors).
Result<std::shared_ptr<EVP_PKEY>> ReadPrivateKey(const std::string& path, const std::string& pem,
                                                 JwtAlgorithm& algorithm) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (raw == nullptr) return Status::InvalidArgument(path + ": not a PEM private key (unencrypted PKCS#8 or PKCS#1)");
  std::shared_ptr<EVP_PKEY> key(raw, EVP_PKEY_free);
  if (EVP_PKEY_get_base_id(raw) == EVP_PKEY_RSA) {
    int bits = EVP_PKEY_get_bits(raw);
    if (bits < kJwtLimits.min_rsa_bits || bits > kJwtLimits.max_rsa_bits) {
      return Status::InvalidArgument(path + ": an RSA key of " + std::to_string(bits) + " bits; use " +
                                     std::to_string(kJwtLimits.min_rsa_bits) + " to " +
                                     std::to_string(kJwtLimits.max_rsa_bits));
    }
    algorithm = JwtAlgorithm::kRs256;
    return key;
  }
  if (EVP_PKEY_get_base_id(raw) == EVP_PKEY_EC) {
    char group[64] = {};
    size_t length = 0;
    if (EVP_PKEY_get_utf8_string_param(raw, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length) != 1 ||
        std::string_view(group, length) != "prime256v1") {
      return Status::InvalidArgument(path + ": an EC key must be on P-256 (ES256); this one is on " +
                                     std::string(group, length));
    }
    algorithm = JwtAlgorithm::kEs256;
    return key;
  }
  return Status::InvalidArgument(path + ": the key must be RSA (RS256) or EC P-256 (ES256)");
}

// The certificate that may follow the private key in the same PEM file (how Entra ID and others
// hand out a certificate credential): its SHA-1 and SHA-256 thumbprints, base64url (RFC 7515
// §4.1.7-8), or nullopt when the file holds none. A certificate for another key is refused: the
// provider would look up the wrong credential and refuse every sign-in.
Result<std::optional<std::pair<std::string, std::string>>> ReadCertificateThumbprints(const std::string& path,
                                                                                      const std::string& pem,
                                                                                      EVP_PKEY* key) {
  if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return std::optional<std::pair<std::string, std::string>>();
  }
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509, decltype(&X509_free)> certificate(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
  ERR_clear_error();
  if (!certificate)
    return Status::InvalidArgument(path + ": the CERTIFICATE block is not a readable X.509 certificate");
  if (EVP_PKEY_eq(X509_get0_pubkey(certificate.get()), key) != 1) {
    return Status::InvalidArgument(path + ": the certificate is for another key than the private key in the file");
  }
  unsigned char sha1[EVP_MAX_MD_SIZE];
  unsigned char sha256[EVP_MAX_MD_SIZE];
  unsigned int sha1_length = 0;
  unsigned int sha256_length = 0;
  if (X509_digest(certificate.get(), EVP_sha1(), sha1, &sha1_length) != 1 ||
      X509_digest(certificate.get(), EVP_sha256(), sha256, &sha256_length) != 1) {
    return Status::Internal(path + ": cannot compute the certificate's thumbprints");
  }
  return std::optional<std::pair<std::string, std::string>>(
      std::pair(Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(sha1), sha1_length)),
                Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(sha256), sha256_length))));
}

// JWS ES256 signatures are R || S, 32 bytes each (RFC 7518 §3.4); OpenSSL makes DER.
Result<std::string> DerToRawEcdsa(const std::string& der) {
  const unsigned char* cursor = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
  if (!sig) return Status::Internal("cannot decode the ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(2 * kEs256CoordinateBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, kEs256CoordinateBytes) < 0 ||
      BN_bn2binpad(s, out + kEs256CoordinateBytes, kEs256CoordinateBytes) < 0) {
    return Status::Internal("cannot encode the ECDSA signature");
  }
  return raw;
}

Result<std::string> Sign(EVP_PKEY* key, JwtAlgorithm algorithm, const std::string& input) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> context(EVP_MD_CTX_new());
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  size_t length = 0;
  if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &length, data, input.size()) != 1) {
    return Status::Internal("cannot sign the client assertion");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data, input.size()) !=
      1) {
    return Status::Internal("cannot sign the client assertion");
  }
  signature.resize(length);
  if (algorithm == JwtAlgorithm::kEs256) return DerToRawEcdsa(signature);
  return signature;
}

// Standard base64 with padding (RFC 4648 §4), for the Basic scheme, from its base64url sibling.
std::string Base64Padded(std::string_view bytes) {
  std::string out = Base64UrlEncode(bytes);
  for (char& c : out) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (out.size() % 4 != 0) out += '=';
  return out;
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// The provider's answer when it is not 200: its `error` and `error_description` (RFC 6749 §5.2).
Status TokenError(const OidcIssuerConfig& issuer, const net::HttpResponse& response) {
  auto body = ParseJsonBounded(response.body, ClientAuthLimits::kMaxTokenResponseBytes, 4, "token response");
  if (!body.ok() || !body->is_object() || !(*body)["error"].is_string()) {
    return Status::Unavailable("the token endpoint of identity provider " + issuer.name + " answered HTTP " +
                               std::to_string(response.status));
  }
  std::string error = SanitizeUtf8(StringOr(*body, "error").substr(0, 64));
  std::string description = SanitizeUtf8(StringOr(*body, "error_description").substr(0, 300));
  return Status::PermissionDenied("identity provider " + issuer.name + " refused the authorization code: " + error +
                                  (description.empty() ? "" : " (" + description + ")"));
}

// An endpoint the discovery document names, or "" when it names none that CheckProviderUrl accepts.
std::string EndpointOf(const Json& discovery, const char* name) {
  std::string url = StringOr(discovery, name);
  return CheckProviderUrl(url).ok() ? url : std::string();
}

}  // namespace

Status CheckProviderUrl(std::string_view url) {
  if (url.empty()) return Status::InvalidArgument("must not be empty");
  if (url.size() > ClientAuthLimits::kMaxProviderUrlBytes) {
    return Status::InvalidArgument("longer than " + std::to_string(ClientAuthLimits::kMaxProviderUrlBytes) + " bytes");
  }
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Status::InvalidArgument("contains a space or a control character");
    }
  if (url.starts_with("https://")) return Status::Ok();
  if (url.starts_with("http://")) {
    std::string_view rest = url.substr(7);
    std::string_view host = rest.substr(0, rest.find_first_of(":/"));
    if (host.starts_with("[")) host = rest.substr(1, rest.find(']') - 1);
    if (host == "localhost" || host == "::1" || host.starts_with("127.")) return Status::Ok();
    return Status::InvalidArgument("must be https:// (plain http only for a provider on a loopback address)");
  }
  return Status::InvalidArgument("must be an https:// URL");
}

Result<ProviderRequest> ProviderClient(const OidcIssuerConfig& issuer, const std::string& url,
                                       size_t max_response_bytes) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return Status::InvalidArgument("not a URL: " + url);
  size_t path_start = url.find('/', scheme_end + 3);
  std::string origin = path_start == std::string::npos ? url : url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  APPBAN_ASSIGN_OR_RETURN(net::Url parsed, net::ParseUrl(origin));
  net::ClientOptions options;
  if (parsed.tls) {
    if (!issuer.ca_file.empty()) {
      APPBAN_ASSIGN_OR_RETURN(options.pinned_ca_pem,
                              ReadFileToString(issuer.ca_file, ClientAuthLimits::kMaxCaFileBytes));
    } else {
      options.trust_system_roots = true;
    }
  }
  options.connect_timeout = std::chrono::milliseconds(issuer.fetch_timeout_ms);
  options.read_timeout = std::chrono::milliseconds(issuer.fetch_timeout_ms);
  options.max_response_bytes = max_response_bytes;
  return ProviderRequest{net::HttpClient(parsed, options), std::move(path)};
}

Result<ProviderEndpoints> DiscoverEndpoints(const OidcIssuerConfig& issuer, const Fetcher& fetcher) {
  std::string url = issuer.discovery_url;
  if (url.empty()) {
    url = issuer.issuer;
    while (!url.empty() && url.back() == '/') url.pop_back();
    url += "/.well-known/openid-configuration";
  }
  auto unavailable = [&](const std::string& why) {
    return Status::Unavailable("identity provider " + issuer.name + ": " + why);
  };
  auto text = fetcher(issuer, url);
  if (!text.ok()) return unavailable("its discovery document cannot be fetched: " + text.status().message());
  auto discovery =
      ParseJsonBounded(*text, ClientAuthLimits::kMaxDiscoveryBytes, kJwtLimits.max_json_depth, "discovery");
  if (!discovery.ok() || !discovery->is_object()) return unavailable("its discovery document is not a JSON object");
  if (StringOr(*discovery, "issuer") != issuer.issuer) {
    return unavailable("its discovery document names another issuer than the configured " + issuer.issuer);
  }
  ProviderEndpoints endpoints{EndpointOf(*discovery, "authorization_endpoint"),
                              EndpointOf(*discovery, "token_endpoint")};
  if (endpoints.authorization_endpoint.empty() || endpoints.token_endpoint.empty()) {
    return unavailable(
        "its discovery document names no usable authorization_endpoint and token_endpoint (https, or http on "
        "loopback)");
  }
  return endpoints;
}

std::string_view ClientCredentials::MethodName() const {
  switch (method_) {
    case Method::kClientSecretBasic:
      return "client_secret_basic";
    case Method::kPrivateKeyJwt:
      return "private_key_jwt";
    case Method::kNone:
      break;
  }
  return "none";
}

Result<std::string> ClientCredentials::MakeAssertion(std::string_view client_id, std::string_view audience,
                                                     UnixSeconds now) const {
  if (method_ != Method::kPrivateKeyJwt) return Status::FailedPrecondition("no private_key_jwt_file is configured");
  std::string jti(kJtiBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(jti.data()), static_cast<int>(jti.size())) != 1) {
    return Status::Internal("RAND_bytes failed");
  }
  Json header{{"alg", std::string(JwtAlgorithmName(algorithm_))}, {"typ", "JWT"}};
  if (!x5t_.empty()) {
    header["x5t"] = x5t_;
    header["x5t#S256"] = x5t_s256_;
  }
  Json claims{{"iss", client_id},
              {"sub", client_id},
              {"aud", audience},
              {"jti", HexLower(AsBytes(jti))},
              {"iat", now},
              {"nbf", now},
              {"exp", now + ClientAuthLimits::kAssertionLifetimeSeconds}};
  std::string input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  APPBAN_ASSIGN_OR_RETURN(std::string signature, Sign(key_.get(), algorithm_, input));
  return input + "." + Base64UrlEncode(signature);
}

Result<ClientCredentials> LoadClientCredentials(const OidcIssuerConfig& issuer) {
  ClientCredentials credentials;
  if (!issuer.private_key_jwt_file.empty()) {
    const std::string& path = issuer.private_key_jwt_file;
    APPBAN_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path, ClientAuthLimits::kMaxKeyFileBytes));
    APPBAN_ASSIGN_OR_RETURN(credentials.key_, ReadPrivateKey(path, pem, credentials.algorithm_));
    APPBAN_ASSIGN_OR_RETURN(auto thumbprints, ReadCertificateThumbprints(path, pem, credentials.key_.get()));
    if (thumbprints) std::tie(credentials.x5t_, credentials.x5t_s256_) = *thumbprints;
    credentials.method_ = ClientCredentials::Method::kPrivateKeyJwt;
  } else if (!issuer.client_secret_file.empty()) {
    APPBAN_ASSIGN_OR_RETURN(std::string secret,
                            ReadFileToString(issuer.client_secret_file, ClientAuthLimits::kMaxSecretFileBytes));
    credentials.secret_ = Trimmed(std::move(secret));
    if (credentials.secret_.empty())
      return Status::InvalidArgument(issuer.client_secret_file + ": the secret is empty");
    credentials.method_ = ClientCredentials::Method::kClientSecretBasic;
  }
  return credentials;
}

std::string CodeChallengeS256(std::string_view verifier) {
  Sha256Digest digest = Sha256(AsBytes(verifier));
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

Result<std::string> ExchangeAuthorizationCode(const OidcIssuerConfig& issuer, const ClientCredentials& credentials,
                                              const CodeExchange& exchange, UnixSeconds now) {
  APPBAN_RETURN_IF_ERROR(CheckProviderUrl(exchange.token_endpoint));
  std::string form = "grant_type=authorization_code&code=" + PercentEncode(exchange.code) +
                     "&redirect_uri=" + PercentEncode(exchange.redirect_uri) +
                     "&code_verifier=" + PercentEncode(exchange.code_verifier);
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                                                              {"Accept", "application/json"}};
  switch (credentials.method()) {
    case ClientCredentials::Method::kClientSecretBasic: {
      // RFC 6749 §2.3.1: both parts form-encoded before they are joined and base64-encoded.
      std::string pair = PercentEncode(issuer.client_id) + ":" + PercentEncode(credentials.secret_);
      headers.emplace_back("Authorization", "Basic " + Base64Padded(pair));
      break;
    }
    case ClientCredentials::Method::kPrivateKeyJwt: {
      APPBAN_ASSIGN_OR_RETURN(std::string assertion,
                              credentials.MakeAssertion(issuer.client_id, exchange.token_endpoint, now));
      form += "&client_id=" + PercentEncode(issuer.client_id) +
              "&client_assertion_type=" + PercentEncode(kClientAssertionType) +
              "&client_assertion=" + PercentEncode(assertion);
      break;
    }
    case ClientCredentials::Method::kNone:
      form += "&client_id=" + PercentEncode(issuer.client_id);
      break;
  }
  APPBAN_ASSIGN_OR_RETURN(ProviderRequest request,
                          ProviderClient(issuer, exchange.token_endpoint, ClientAuthLimits::kMaxTokenResponseBytes));
  auto response = request.client.Request("POST", request.path, form, headers);
  if (!response.ok()) {
    return Status::Unavailable("the token endpoint of identity provider " + issuer.name +
                               " cannot be reached: " + response.status().message());
  }
  if (response->status != 200) return TokenError(issuer, *response);
  auto body = ParseJsonBounded(response->body, ClientAuthLimits::kMaxTokenResponseBytes, 4, "token response");
  if (!body.ok() || !body->is_object()) {
    return Status::Unavailable("the token endpoint of identity provider " + issuer.name +
                               " answered something that is not a JSON object");
  }
  std::string id_token = StringOr(*body, "id_token");
  if (id_token.empty()) {
    return Status::Unavailable("the token endpoint of identity provider " + issuer.name +
                               " answered no id_token (is the scope openid granted?)");
  }
  return id_token;
}

}  // namespace appban::identity
