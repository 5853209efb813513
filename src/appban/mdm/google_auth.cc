#include "appban/mdm/google_auth.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <array>
#include <memory>

#include "appban/common/encoding.h"
#include "appban/common/json.h"
#include "appban/mdm/credential_file.h"
#include "appban/mdm/limits.h"
#include "appban/net/http.h"

namespace appban::mdm {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};

Result<std::unique_ptr<EVP_PKEY, PkeyFree>> LoadRsaPrivateKey(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::Internal("out of memory");
  std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  // Deliberately no OpenSSL error text: it may quote the PEM.
  if (!key) return Status::InvalidArgument("private_key is not a PEM private key");
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) return Status::InvalidArgument("private_key is not an RSA key");
  if (EVP_PKEY_get_bits(key.get()) < 2048) return Status::InvalidArgument("private_key is shorter than 2048 bits");
  return key;
}

Result<std::string> RequiredString(const Json& json, std::string_view key) {
  auto it = json.find(key);
  if (it == json.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument(std::string(key) + " is missing or not a string");
  }
  return it->get<std::string>();
}

}  // namespace

// Kept under mdm:: for its callers; the encoders live in common/encoding.h (identity uses them too).
std::string PercentEncode(std::string_view text) { return appban::PercentEncode(text); }
std::string Base64UrlEncode(std::string_view bytes) { return appban::Base64UrlEncode(bytes); }

Result<ServiceAccountKey> ParseServiceAccountKey(std::string_view json_text) {
  APPBAN_ASSIGN_OR_RETURN(Json json,
                          ParseJsonBounded(json_text, kMdmLimits.max_key_file_bytes, 4, "service-account key"));
  if (!json.is_object()) return Status::InvalidArgument("service-account key: not a JSON object");
  auto type = json.find("type");
  if (type == json.end() || *type != "service_account") {
    return Status::InvalidArgument("service-account key: type is not \"service_account\"");
  }
  ServiceAccountKey key;
  APPBAN_ASSIGN_OR_RETURN(key.client_email, RequiredString(json, "client_email"));
  APPBAN_ASSIGN_OR_RETURN(key.private_key_pem, RequiredString(json, "private_key"));
  APPBAN_ASSIGN_OR_RETURN(key.token_uri, RequiredString(json, "token_uri"));
  if (auto id = json.find("private_key_id"); id != json.end() && id->is_string()) key.private_key_id = *id;
  Result<std::unique_ptr<EVP_PKEY, PkeyFree>> loaded = LoadRsaPrivateKey(key.private_key_pem);
  if (!loaded.ok()) return Status::InvalidArgument("service-account key: " + loaded.status().message());
  Result<SplitUrl> token_uri = ParseServiceUrl(key.token_uri);
  if (!token_uri.ok())
    return Status::InvalidArgument("service-account key: token_uri: " + token_uri.status().message());
  return key;
}

Result<ServiceAccountKey> LoadServiceAccountKey(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(std::string text,
                          ReadCredentialFile(path, kMdmLimits.max_key_file_bytes, "the service-account key"));
  Result<ServiceAccountKey> key = ParseServiceAccountKey(text);
  if (!key.ok()) return Status(key.status().code(), path + ": " + key.status().message());
  return key;
}

Result<std::string> SignJwtRs256(const Json& header, const Json& claims, std::string_view private_key_pem) {
  std::string signing_input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  APPBAN_ASSIGN_OR_RETURN(auto pkey, LoadRsaPrivateKey(private_key_pem));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> context(EVP_MD_CTX_new());
  size_t length = 0;
  if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return Status::Internal("cannot sign the JWT assertion");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1) {
    return Status::Internal("cannot sign the JWT assertion");
  }
  signature.resize(length);
  return signing_input + "." + Base64UrlEncode(signature);
}

Result<std::string> MakeJwtAssertion(const ServiceAccountKey& key, std::string_view scope, UnixSeconds now,
                                     int64_t lifetime_seconds) {
  if (lifetime_seconds < 1 || lifetime_seconds > kMaxAssertionLifetimeSeconds) {
    return Status::InvalidArgument("JWT lifetime must be 1.." + std::to_string(kMaxAssertionLifetimeSeconds) + " s");
  }
  Json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!key.private_key_id.empty()) header["kid"] = key.private_key_id;
  Json claims = {{"iss", key.client_email},
                 {"scope", scope},
                 {"aud", key.token_uri},
                 {"iat", now},
                 {"exp", now + lifetime_seconds}};
  return SignJwtRs256(header, claims, key.private_key_pem);
}

Result<SplitUrl> ParseServiceUrl(std::string_view text) {
  size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos)
    return Status::InvalidArgument("\"" + std::string(text) + "\" is not a URL");
  size_t path_start = text.find('/', scheme_end + 3);
  SplitUrl split;
  std::string_view origin = text.substr(0, path_start);
  if (path_start != std::string_view::npos) split.path = std::string(text.substr(path_start));
  APPBAN_ASSIGN_OR_RETURN(split.origin, net::ParseUrl(origin));
  if (!split.origin.tls) {
    const std::string& host = split.origin.host;
    bool loopback = host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
    if (!loopback) {
      return Status::InvalidArgument("\"" + std::string(origin) +
                                     "\": plain http is accepted only on loopback (an emulator); use https");
    }
  }
  return split;
}

Result<std::unique_ptr<AccessTokenSource>> AccessTokenSource::Create(ServiceAccountKey key,
                                                                     TokenSourceOptions options) {
  std::string token_url = key.token_uri;
  std::string scope = options.scope;
  TokenRequestBody body = [key = std::move(key), scope](UnixSeconds now) -> Result<std::string> {
    APPBAN_ASSIGN_OR_RETURN(std::string assertion, MakeJwtAssertion(key, scope, now));
    return "grant_type=" + PercentEncode(kJwtBearerGrantType) + "&assertion=" + PercentEncode(assertion);
  };
  return CreateForGrant(std::move(token_url), std::move(body), std::move(options));
}

Result<std::unique_ptr<AccessTokenSource>> AccessTokenSource::CreateForGrant(std::string token_url,
                                                                             TokenRequestBody body,
                                                                             TokenSourceOptions options) {
  APPBAN_ASSIGN_OR_RETURN(SplitUrl endpoint, ParseServiceUrl(token_url));
  if (endpoint.path.empty()) endpoint.path = "/";
  return std::unique_ptr<AccessTokenSource>(
      new AccessTokenSource(std::move(token_url), std::move(body), std::move(options), std::move(endpoint)));
}

AccessTokenSource::AccessTokenSource(std::string token_url, TokenRequestBody body, TokenSourceOptions options,
                                     SplitUrl endpoint)
    : token_url_(std::move(token_url)),
      body_(std::move(body)),
      options_(std::move(options)),
      endpoint_(std::move(endpoint)) {
  http_ = std::make_unique<net::HttpClient>(endpoint_.origin, options_.http);
}

AccessTokenSource::~AccessTokenSource() = default;

void AccessTokenSource::Invalidate() {
  token_.clear();
  expires_at_ = 0;
}

Result<std::string> AccessTokenSource::Token() {
  const UnixSeconds now = options_.now();
  if (!token_.empty() && now + options_.refresh_margin.count() < expires_at_) return token_;
  APPBAN_ASSIGN_OR_RETURN(const std::string body, body_(now));
  const std::string where = "token endpoint " + token_url_;
  Result<net::HttpResponse> response = SendWithRetry(
      *http_, "POST", endpoint_.path, body,
      {{"content-type", "application/x-www-form-urlencoded"}, {"accept", "application/json"}}, options_.retry);
  if (!response.ok()) return Status(response.status().code(), where + ": " + response.status().message());
  if (response->body.size() > kMdmLimits.max_token_response_bytes) {
    return Status::LimitExceeded(where + ": answer larger than " + std::to_string(kMdmLimits.max_token_response_bytes) +
                                 " bytes");
  }
  Result<Json> json = ParseJsonBounded(response->body, kMdmLimits.max_token_response_bytes, 4, where);
  if (response->status == 400 || response->status == 401 || response->status == 403) {
    // OAuth errors are {"error":"invalid_grant","error_description":"…"}: safe to show, they carry
    // no secret.
    std::string reason = "HTTP " + std::to_string(response->status);
    if (json.ok() && json->is_object()) {
      if (auto e = json->find("error"); e != json->end() && e->is_string()) reason += " " + e->get<std::string>();
      if (auto d = json->find("error_description"); d != json->end() && d->is_string()) {
        reason += ": " + d->get<std::string>().substr(0, 300);
      }
    }
    return Status::PermissionDenied(where + " refused the credentials (" + reason + ")");
  }
  if (response->status != 200) {
    return Status::Unavailable(where + " answered HTTP " + std::to_string(response->status));
  }
  if (!json.ok()) return json.status();
  if (!json->is_object()) return Status::Corruption(where + ": answer is not a JSON object");
  auto token = json->find("access_token");
  auto expires = json->find("expires_in");
  if (token == json->end() || !token->is_string() || token->get_ref<const std::string&>().empty() ||
      expires == json->end() || !expires->is_number_integer()) {
    return Status::Corruption(where + ": answer lacks access_token or expires_in");
  }
  const std::string& value = token->get_ref<const std::string&>();
  // The token goes into an HTTP header: refuse anything that could break out of it.
  for (unsigned char c : value) {
    if (c <= 0x20 || c >= 0x7f) return Status::Corruption(where + ": access_token holds characters a header cannot");
  }
  int64_t lifetime = expires->get<int64_t>();
  if (lifetime <= 0 || lifetime > 24 * 3600) return Status::Corruption(where + ": expires_in out of range");
  token_ = value;
  expires_at_ = now + lifetime;
  ++fetches_;
  return token_;
}

}  // namespace appban::mdm
