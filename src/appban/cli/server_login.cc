#include "appban/cli/server_login.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "appban/agent/agent_client.h"
#include "appban/common/file.h"
#include "appban/decide/admin.h"
#include "appban/identity/jwt.h"
#include "appban/net/tls.h"

namespace appban::cli {
namespace {

constexpr std::string_view kDeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code";
constexpr std::string_view kChannelHeader = "X-Appban-Channel";

std::string EnvOr(const std::string& given, const char* name) {
  if (!given.empty()) return given;
  const char* env = std::getenv(name);
  return env != nullptr ? env : "";
}

Result<Json> ParseAnswer(std::string_view body, std::string_view what) {
  return ParseJsonBounded(body, kLoginLimits.max_answer_bytes, kLoginLimits.max_json_depth, what);
}

// A string member, bounded; "" when absent and not required.
Result<std::string> Text(const Json& json, const char* name, bool required, std::string_view what) {
  auto it = json.find(name);
  if (it == json.end() || it->is_null()) {
    if (required) return Status::InvalidArgument(std::string(what) + ": \"" + name + "\" is missing");
    return std::string();
  }
  if (!it->is_string()) return Status::InvalidArgument(std::string(what) + ": \"" + name + "\" is not a string");
  std::string value = it->get<std::string>();
  if (value.size() > kLoginLimits.max_token_file_bytes) {
    return Status::LimitExceeded(std::string(what) + ": \"" + name + "\" is longer than " +
                                 std::to_string(kLoginLimits.max_token_file_bytes) + " bytes");
  }
  return value;
}

Result<int64_t> Seconds(const Json& json, const char* name, int64_t fallback, std::string_view what) {
  auto it = json.find(name);
  if (it == json.end()) return fallback;
  if (!it->is_number_integer() || it->get<int64_t>() < 0) {
    return Status::InvalidArgument(std::string(what) + ": \"" + name + "\" is not a non-negative integer");
  }
  return it->get<int64_t>();
}

// "https://host:port/a/b?c" -> (Url of the authority, "/a/b?c").
Result<std::pair<net::Url, std::string>> SplitUrl(const std::string& text) {
  size_t scheme = text.find("://");
  if (scheme == std::string::npos) return Status::InvalidArgument("not a URL: " + text);
  size_t slash = text.find('/', scheme + 3);
  std::string path = slash == std::string::npos ? "/" : text.substr(slash);
  APPBAN_ASSIGN_OR_RETURN(net::Url url, net::ParseUrl(text.substr(0, slash)));
  return std::make_pair(std::move(url), std::move(path));
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += '&';
    for (const std::string* part : {&name, &value}) {
      for (unsigned char c : *part) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
          out += static_cast<char>(c);
        } else {
          out += '%';
          out += kHex[c >> 4];
          out += kHex[c & 15];
        }
      }
      if (part == &name) out += '=';
    }
  }
  return out;
}

// The identity provider is reached directly (not through appban): an https provider is checked
// against the system's CA store; plain http only makes sense for a loopback test provider.
Result<net::HttpResponse> ProviderRequest(const std::string& url_text, std::string_view method,
                                          const std::string& form = "") {
  APPBAN_ASSIGN_OR_RETURN(auto target, SplitUrl(url_text));
  net::ClientOptions options;
  options.trust_system_roots = true;
  options.max_response_bytes = kLoginLimits.max_answer_bytes;
  net::HttpClient client(target.first, options);
  std::vector<std::pair<std::string, std::string>> headers = {{"Accept", "application/json"}};
  if (method == "POST") headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  auto response = client.Request(method, target.second, form, headers);
  if (!response.ok()) return Status(response.status().code(), url_text + ": " + response.status().message());
  return response;
}

Result<std::string> ReadCa(const ServerOptions& options) {
  if (options.ca_file.empty()) return std::string();
  APPBAN_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(options.ca_file, kLoginLimits.max_ca_bytes));
  if (!options.ca_sha256.empty()) {
    APPBAN_ASSIGN_OR_RETURN(std::string fingerprint, agent::CertificateFingerprint(pem));
    APPBAN_ASSIGN_OR_RETURN(std::string expected, agent::NormalizeSha256Fingerprint(options.ca_sha256));
    if (fingerprint != expected) {
      return Status::PermissionDenied("the CA file's SHA-256 fingerprint is " + fingerprint + ", not the expected " +
                                      expected);
    }
  }
  return pem;
}

// A client certificate to present, read from `cert_file` and `key_file` (both, or neither).
struct ClientCertificateFiles {
  std::string cert_file;
  std::string key_file;
  bool empty() const { return cert_file.empty(); }
};

Result<ClientCertificateFiles> CertificateOption(const ServerOptions& options) {
  ClientCertificateFiles files{EnvOr(options.cert_file, "APPBAN_CLIENT_CERT"),
                               EnvOr(options.key_file, "APPBAN_CLIENT_KEY")};
  if (files.cert_file.empty() != files.key_file.empty()) {
    return Status::InvalidArgument(
        "a client certificate needs both --client-cert FILE and --client-key FILE (or $APPBAN_CLIENT_CERT "
        "and $APPBAN_CLIENT_KEY)");
  }
  if (!files.empty()) {
    // Saved as absolute paths, so a later command run from elsewhere finds them.
    std::error_code ec;
    for (std::string* path : {&files.cert_file, &files.key_file}) {
      std::filesystem::path absolute = std::filesystem::absolute(*path, ec);
      if (!ec) *path = absolute.string();
    }
  }
  return files;
}

Result<net::HttpClient> ServerClient(const std::string& server, const std::string& ca_pem,
                                     const ClientCertificateFiles& certificate = {}) {
  APPBAN_ASSIGN_OR_RETURN(net::Url url, net::ParseUrl(server));
  net::ClientOptions options;
  if (!certificate.empty()) {
    if (!url.tls)
      return Status::InvalidArgument(server + " is not https: a client certificate is presented over TLS only");
    APPBAN_ASSIGN_OR_RETURN(net::CertificateAndKey material,
                            net::ReadCertificateAndKey(certificate.cert_file, certificate.key_file));
    options.client_certificate_pem = std::move(material.certificate_pem);
    options.client_key_pem = std::move(material.private_key_pem);
  }
  if (url.tls) {
    if (ca_pem.empty()) {
      return Status::InvalidArgument(server + " is https: pass the server's CA certificate with --ca FILE (the " +
                                     "server prints its fingerprint on first start; --ca-sha256 checks it)");
    }
    options.pinned_ca_pem = ca_pem;
  }
  // Admin answers (rule lists, audit pages) are larger than the login's; bounded all the same.
  options.max_response_bytes = 64ull << 20;
  return net::HttpClient(url, options);
}

Status ErrorFromAnswer(const net::HttpResponse& response, const std::string& what) {
  auto json = ParseJsonBounded(response.body, kLoginLimits.max_answer_bytes, kLoginLimits.max_json_depth, what);
  std::string message, error_code;
  if (json.ok() && json->is_object() && json->contains("error") && (*json)["error"].is_object()) {
    message = (*json)["error"].value("message", "");
    error_code = (*json)["error"].value("code", "");
  }
  if (message.empty()) message = "HTTP " + std::to_string(response.status);
  bool refused = response.status == 401 || response.status == 403 || error_code == "two_person_rule";
  StatusCode code = refused                  ? StatusCode::kPermissionDenied
                    : response.status == 404 ? StatusCode::kNotFound
                    : response.status == 409 ? StatusCode::kFailedPrecondition
                    : response.status >= 500 ? StatusCode::kUnavailable
                                             : StatusCode::kInvalidArgument;
  return Status(code, what + ": " + message);
}

Result<Json> ReadCredentials(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return Json{{"servers", Json::object()}};
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kLoginLimits.max_credentials_bytes));
  APPBAN_ASSIGN_OR_RETURN(
      Json json, ParseJsonBounded(text, kLoginLimits.max_credentials_bytes, kLoginLimits.max_json_depth, path));
  if (!json.is_object() || !json.contains("servers") || !json["servers"].is_object()) {
    return Status::Corruption(path +
                              ": not an appban credentials file (no \"servers\" object); remove it and sign "
                              "in again");
  }
  return json;
}

Status WriteCredentials(const std::string& path, const Json& json) {
  std::error_code error;
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, error)) {
    std::filesystem::create_directories(dir, error);
    if (error) return Status::Unavailable("cannot create " + dir.string() + ": " + error.message());
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, error);
  }
  return WriteFileAtomically(path, json.dump(2) + "\n", 0600);
}

Result<SavedLogin> LoginFromJson(const Json& json, const std::string& path) {
  if (!json.is_object()) return Status::Corruption(path + ": a server's entry is not an object");
  SavedLogin login;
  std::string what = path;
  APPBAN_ASSIGN_OR_RETURN(login.server, Text(json, "server", true, what));
  APPBAN_ASSIGN_OR_RETURN(login.ca_pem, Text(json, "ca_pem", false, what));
  APPBAN_ASSIGN_OR_RETURN(login.provider, Text(json, "provider", false, what));
  APPBAN_ASSIGN_OR_RETURN(login.issuer, Text(json, "issuer", false, what));
  APPBAN_ASSIGN_OR_RETURN(login.client_id, Text(json, "client_id", false, what));
  APPBAN_ASSIGN_OR_RETURN(login.token_endpoint, Text(json, "token_endpoint", false, what));
  APPBAN_ASSIGN_OR_RETURN(login.id_token, Text(json, "id_token", false, what));
  APPBAN_ASSIGN_OR_RETURN(login.cert_file, Text(json, "cert_file", false, what));
  APPBAN_ASSIGN_OR_RETURN(login.key_file, Text(json, "key_file", false, what));
  if (login.id_token.empty() && login.cert_file.empty()) {
    return Status::InvalidArgument(what + ": the sign-in to " + login.server +
                                   " has neither an ID token nor a certificate");
  }
  APPBAN_ASSIGN_OR_RETURN(login.refresh_token, Text(json, "refresh_token", false, what));
  APPBAN_ASSIGN_OR_RETURN(login.expires_at, Seconds(json, "expires_at", 0, what));
  return login;
}

UnixSeconds ExpiryOf(const std::string& id_token) {
  auto jwt = identity::ParseJwt(id_token);
  if (!jwt.ok() || !jwt->claims.contains("exp") || !jwt->claims["exp"].is_number_integer()) return 0;
  return jwt->claims["exp"].get<int64_t>();
}

// RFC 6749 §6: a new ID token for an expired sign-in.
Result<SavedLogin> Refresh(SavedLogin login) {
  APPBAN_ASSIGN_OR_RETURN(net::HttpResponse response,
                          ProviderRequest(login.token_endpoint, "POST",
                                          FormEncode({{"grant_type", "refresh_token"},
                                                      {"refresh_token", login.refresh_token},
                                                      {"client_id", login.client_id}})));
  APPBAN_ASSIGN_OR_RETURN(TokenAnswer answer, ParseTokenAnswer(response.status, response.body));
  if (answer.kind != TokenAnswer::Kind::kTokens) {
    return Status::PermissionDenied("refreshing the sign-in failed: " + answer.error_description);
  }
  login.id_token = answer.id_token;
  if (!answer.refresh_token.empty()) login.refresh_token = answer.refresh_token;
  login.expires_at = ExpiryOf(login.id_token);
  return login;
}

struct Provider {
  std::string name, issuer, client_id;
};

Result<Provider> ChooseProvider(net::HttpClient& server, const std::string& wanted) {
  APPBAN_ASSIGN_OR_RETURN(net::HttpResponse response, server.Request("GET", "/v1/auth/providers"));
  if (response.status != 200) return ErrorFromAnswer(response, "GET /v1/auth/providers");
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseAnswer(response.body, "the server's provider list"));
  if (!json.is_object() || !json.contains("providers") || !json["providers"].is_array()) {
    return Status::Corruption("the server's provider list has no \"providers\" array");
  }
  if (json["providers"].size() > kLoginLimits.max_providers) {
    return Status::LimitExceeded("the server lists more than " + std::to_string(kLoginLimits.max_providers) +
                                 " providers");
  }
  std::vector<Provider> providers;
  std::string names;
  for (const Json& entry : json["providers"]) {
    if (!entry.is_object()) return Status::Corruption("the server's provider list holds a non-object");
    Provider p;
    APPBAN_ASSIGN_OR_RETURN(p.name, Text(entry, "name", true, "provider"));
    APPBAN_ASSIGN_OR_RETURN(p.issuer, Text(entry, "issuer", true, "provider"));
    APPBAN_ASSIGN_OR_RETURN(p.client_id, Text(entry, "client_id", true, "provider"));
    names += (names.empty() ? "" : ", ") + p.name;
    providers.push_back(std::move(p));
  }
  if (providers.empty()) {
    return Status::FailedPrecondition(
        "the server trusts no OpenID Connect provider ([[identity.oidc]] in its configuration); use an API token "
        "with --token-file instead");
  }
  if (wanted.empty()) {
    if (providers.size() == 1) return providers.front();
    return Status::InvalidArgument("the server trusts several providers (" + names + "): choose one with --provider");
  }
  for (const auto& p : providers) {
    if (p.name == wanted) return p;
  }
  return Status::NotFound("the server trusts no provider named " + wanted + " (it trusts " + names + ")");
}

struct Endpoints {
  std::string device_authorization, token;
};

Result<Endpoints> Discover(const Provider& provider) {
  std::string url = provider.issuer + "/.well-known/openid-configuration";
  APPBAN_ASSIGN_OR_RETURN(net::HttpResponse response, ProviderRequest(url, "GET"));
  if (response.status != 200) return Status::Unavailable(url + " answered HTTP " + std::to_string(response.status));
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseAnswer(response.body, url));
  if (!json.is_object()) return Status::Corruption(url + ": not a JSON object");
  APPBAN_ASSIGN_OR_RETURN(std::string issuer, Text(json, "issuer", true, url));
  if (issuer != provider.issuer) {
    return Status::PermissionDenied(url + " names issuer " + issuer + ", not " + provider.issuer);
  }
  Endpoints endpoints;
  APPBAN_ASSIGN_OR_RETURN(endpoints.device_authorization, Text(json, "device_authorization_endpoint", false, url));
  if (endpoints.device_authorization.empty()) {
    return Status::Unsupported("provider " + provider.name + " does not offer the device authorization grant (no " +
                               "device_authorization_endpoint in its discovery document); enable it for client " +
                               provider.client_id + ", or use an API token with --token-file");
  }
  APPBAN_ASSIGN_OR_RETURN(endpoints.token, Text(json, "token_endpoint", true, url));
  return endpoints;
}

}  // namespace

std::string CredentialsPath(const ServerOptions& options) {
  std::string path = EnvOr(options.credentials, "APPBAN_CREDENTIALS");
  if (!path.empty()) return path;
  std::string config = EnvOr("", "XDG_CONFIG_HOME");
  if (config.empty()) config = EnvOr("", "HOME") + "/.config";
  return config + "/appban/credentials.json";
}

Result<std::optional<SavedLogin>> LoadLogin(const std::string& path, const std::string& server) {
  APPBAN_ASSIGN_OR_RETURN(Json json, ReadCredentials(path));
  std::string key = server.empty() ? json.value("default", "") : server;
  if (key.empty() || !json["servers"].contains(key)) return std::optional<SavedLogin>();
  APPBAN_ASSIGN_OR_RETURN(SavedLogin login, LoginFromJson(json["servers"][key], path));
  return std::optional<SavedLogin>(std::move(login));
}

Status SaveLogin(const std::string& path, const SavedLogin& login) {
  APPBAN_ASSIGN_OR_RETURN(Json json, ReadCredentials(path));
  json["servers"][login.server] = Json{{"server", login.server},        {"ca_pem", login.ca_pem},
                                       {"provider", login.provider},    {"issuer", login.issuer},
                                       {"client_id", login.client_id},  {"token_endpoint", login.token_endpoint},
                                       {"id_token", login.id_token},    {"refresh_token", login.refresh_token},
                                       {"expires_at", login.expires_at}};
  if (!login.cert_file.empty()) {
    json["servers"][login.server]["cert_file"] = login.cert_file;
    json["servers"][login.server]["key_file"] = login.key_file;
  }
  json["default"] = login.server;
  return WriteCredentials(path, json);
}

Result<bool> RemoveLogin(const std::string& path, const std::string& server) {
  APPBAN_ASSIGN_OR_RETURN(Json json, ReadCredentials(path));
  std::string key = server.empty() ? json.value("default", "") : server;
  if (key.empty() || !json["servers"].contains(key)) return false;
  json["servers"].erase(key);
  if (json.value("default", "") == key) json.erase("default");
  APPBAN_RETURN_IF_ERROR(WriteCredentials(path, json));
  return true;
}

Result<DeviceAuthorization> ParseDeviceAuthorization(int http_status, std::string_view body) {
  constexpr std::string_view kWhat = "the device authorization answer";
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseAnswer(body, kWhat));
  if (!json.is_object()) return Status::Corruption(std::string(kWhat) + " is not a JSON object");
  if (http_status != 200) {
    return Status::PermissionDenied("the provider refused the device authorization request: " +
                                    json.value("error", "HTTP " + std::to_string(http_status)) + " " +
                                    json.value("error_description", ""));
  }
  DeviceAuthorization out;
  APPBAN_ASSIGN_OR_RETURN(out.device_code, Text(json, "device_code", true, kWhat));
  APPBAN_ASSIGN_OR_RETURN(out.user_code, Text(json, "user_code", true, kWhat));
  APPBAN_ASSIGN_OR_RETURN(out.verification_uri, Text(json, "verification_uri", true, kWhat));
  APPBAN_ASSIGN_OR_RETURN(out.verification_uri_complete, Text(json, "verification_uri_complete", false, kWhat));
  APPBAN_ASSIGN_OR_RETURN(out.expires_in, Seconds(json, "expires_in", -1, kWhat));
  if (out.expires_in < 0) return Status::InvalidArgument(std::string(kWhat) + ": \"expires_in\" is missing");
  APPBAN_ASSIGN_OR_RETURN(out.interval, Seconds(json, "interval", 5, kWhat));
  return out;
}

Result<TokenAnswer> ParseTokenAnswer(int http_status, std::string_view body) {
  constexpr std::string_view kWhat = "the token endpoint's answer";
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseAnswer(body, kWhat));
  if (!json.is_object()) return Status::Corruption(std::string(kWhat) + " is not a JSON object");
  TokenAnswer answer;
  if (http_status == 200) {
    answer.kind = TokenAnswer::Kind::kTokens;
    APPBAN_ASSIGN_OR_RETURN(answer.id_token, Text(json, "id_token", false, kWhat));
    if (answer.id_token.empty()) {
      return Status::InvalidArgument(std::string(kWhat) + " carries no id_token: was the scope \"openid\" granted?");
    }
    APPBAN_ASSIGN_OR_RETURN(answer.refresh_token, Text(json, "refresh_token", false, kWhat));
    return answer;
  }
  APPBAN_ASSIGN_OR_RETURN(std::string error, Text(json, "error", true, kWhat));
  APPBAN_ASSIGN_OR_RETURN(answer.error_description, Text(json, "error_description", false, kWhat));
  if (error == "authorization_pending") {
    answer.kind = TokenAnswer::Kind::kPending;
  } else if (error == "slow_down") {
    answer.kind = TokenAnswer::Kind::kSlowDown;
  } else if (error == "expired_token") {
    answer.kind = TokenAnswer::Kind::kExpired;
  } else if (error == "access_denied") {
    answer.kind = TokenAnswer::Kind::kDenied;
  } else {
    return Status::PermissionDenied("the provider's token endpoint answered " + error +
                                    (answer.error_description.empty() ? "" : ": " + answer.error_description));
  }
  return answer;
}

Result<Json> Login(const LoginRequest& request, std::ostream& out) {
  std::string credentials = CredentialsPath(request.server);
  std::string server = EnvOr(request.server.server, "APPBAN_SERVER");
  APPBAN_ASSIGN_OR_RETURN(std::string ca_pem, ReadCa(request.server));
  if (server.empty() || ca_pem.empty()) {
    // Signing in again to the last server: its URL and pinned CA are in the credentials file.
    APPBAN_ASSIGN_OR_RETURN(auto saved, LoadLogin(credentials, server));
    if (saved) {
      if (server.empty()) server = saved->server;
      if (ca_pem.empty()) ca_pem = saved->ca_pem;
    }
  }
  if (server.empty()) return Status::InvalidArgument("which server? pass --server URL (or set APPBAN_SERVER)");
  APPBAN_ASSIGN_OR_RETURN(ClientCertificateFiles certificate, CertificateOption(request.server));
  if (!certificate.empty()) {
    if (!request.provider.empty()) {
      return Status::InvalidArgument("--provider and --client-cert are two ways to sign in: give one");
    }
    APPBAN_ASSIGN_OR_RETURN(net::HttpClient client, ServerClient(server, ca_pem, certificate));
    auto who = client.Request("GET", "/v1/admin/whoami", "", {{std::string(kChannelHeader), "cli"}});
    if (!who.ok()) return who.status();
    if (who->status != 200) return ErrorFromAnswer(*who, "the server refused the client certificate");
    APPBAN_ASSIGN_OR_RETURN(Json whoami, ParseAnswer(who->body, "GET /v1/admin/whoami"));
    SavedLogin login;
    login.server = server;
    login.ca_pem = ca_pem;
    login.provider = "client-certificate";
    login.cert_file = certificate.cert_file;
    login.key_file = certificate.key_file;
    APPBAN_RETURN_IF_ERROR(SaveLogin(credentials, login));
    return whoami;
  }
  APPBAN_ASSIGN_OR_RETURN(net::HttpClient client, ServerClient(server, ca_pem));
  APPBAN_ASSIGN_OR_RETURN(Provider provider, ChooseProvider(client, request.provider));
  APPBAN_ASSIGN_OR_RETURN(Endpoints endpoints, Discover(provider));

  APPBAN_ASSIGN_OR_RETURN(
      net::HttpResponse asked,
      ProviderRequest(endpoints.device_authorization, "POST",
                      FormEncode({{"client_id", provider.client_id}, {"scope", "openid profile offline_access"}})));
  APPBAN_ASSIGN_OR_RETURN(DeviceAuthorization device, ParseDeviceAuthorization(asked.status, asked.body));
  if (!device.verification_uri_complete.empty()) {
    out << "To sign in to " << server << " through " << provider.name << ", open\n  "
        << device.verification_uri_complete << "\nand check that it shows the code " << device.user_code << "\n";
  } else {
    out << "To sign in to " << server << " through " << provider.name << ", open\n  " << device.verification_uri
        << "\nand enter the code " << device.user_code << "\n";
  }
  out << "Waiting for you to sign in (the code is valid for " << device.expires_in << " seconds)…" << std::endl;

  int64_t interval = std::clamp<int64_t>(device.interval, 1, kLoginLimits.max_poll_interval_seconds);
  int64_t waited = 0;
  const int64_t limit = std::min(device.expires_in, kLoginLimits.max_device_code_seconds);
  std::string form = FormEncode({{"grant_type", std::string(kDeviceCodeGrant)},
                                 {"device_code", device.device_code},
                                 {"client_id", provider.client_id}});
  TokenAnswer answer;
  for (;;) {
    request.sleep(std::chrono::seconds(interval));
    waited += interval;
    APPBAN_ASSIGN_OR_RETURN(net::HttpResponse polled, ProviderRequest(endpoints.token, "POST", form));
    APPBAN_ASSIGN_OR_RETURN(answer, ParseTokenAnswer(polled.status, polled.body));
    if (answer.kind == TokenAnswer::Kind::kTokens) break;
    if (answer.kind == TokenAnswer::Kind::kExpired || (answer.kind != TokenAnswer::Kind::kDenied && waited > limit)) {
      return Status::Expired("the sign-in code " + device.user_code + " expired before anyone signed in with " +
                             "it (it was valid for " + std::to_string(device.expires_in) +
                             " seconds); run appban login again");
    }
    if (answer.kind == TokenAnswer::Kind::kDenied) {
      return Status::PermissionDenied("the sign-in was refused at " + provider.name + " (access_denied" +
                                      (answer.error_description.empty() ? "" : ": " + answer.error_description) +
                                      "); nothing was saved");
    }
    // RFC 8628 §3.5: slow_down adds 5 seconds to the interval for this and every later poll.
    if (answer.kind == TokenAnswer::Kind::kSlowDown) {
      interval = std::min(interval + 5, kLoginLimits.max_poll_interval_seconds);
    }
  }

  // The server checks the token the way it will on every call: that is the sign-in's real test.
  auto who = client.Request("GET", "/v1/admin/whoami", "",
                            {{"Authorization", "Bearer " + answer.id_token}, {std::string(kChannelHeader), "cli"}});
  if (!who.ok()) return who.status();
  if (who->status != 200) return ErrorFromAnswer(*who, "the server refused the new sign-in");
  APPBAN_ASSIGN_OR_RETURN(Json whoami, ParseAnswer(who->body, "GET /v1/admin/whoami"));

  SavedLogin login{server,
                   ca_pem,
                   provider.name,
                   provider.issuer,
                   provider.client_id,
                   endpoints.token,
                   answer.id_token,
                   answer.refresh_token,
                   ExpiryOf(answer.id_token),
                   "",
                   ""};
  APPBAN_RETURN_IF_ERROR(SaveLogin(credentials, login));
  return whoami;
}

Result<std::optional<AdminConnection>> AdminConnection::Open(const ServerOptions& options) {
  std::string credentials = CredentialsPath(options);
  std::string server = EnvOr(options.server, "APPBAN_SERVER");
  std::string token_file = EnvOr(options.token_file, "APPBAN_TOKEN_FILE");
  APPBAN_ASSIGN_OR_RETURN(std::string ca_pem, ReadCa(options));
  std::optional<SavedLogin> saved;
  if (token_file.empty() || server.empty() || ca_pem.empty()) {
    APPBAN_ASSIGN_OR_RETURN(saved, LoadLogin(credentials, server));
  }
  if (server.empty()) {
    if (!saved) return std::optional<AdminConnection>();
    server = saved->server;
  }
  if (ca_pem.empty() && saved) ca_pem = saved->ca_pem;

  std::string credential;
  APPBAN_ASSIGN_OR_RETURN(ClientCertificateFiles certificate, CertificateOption(options));
  if (!token_file.empty()) {
    APPBAN_ASSIGN_OR_RETURN(credential, ReadFileToString(token_file, kLoginLimits.max_token_file_bytes));
    while (!credential.empty() && std::isspace(static_cast<unsigned char>(credential.back()))) credential.pop_back();
    if (credential.empty()) return Status::InvalidArgument(token_file + ": the token file is empty");
  } else if (!certificate.empty()) {
    // The certificate is the sign-in: no bearer credential (a header would win over it).
  } else if (saved && !saved->cert_file.empty()) {
    certificate = ClientCertificateFiles{saved->cert_file, saved->key_file};
  } else if (saved) {
    if (saved->expires_at != 0 && saved->expires_at <= decide::SystemClockNow()) {
      if (saved->refresh_token.empty()) {
        return Status::PermissionDenied("your sign-in to " + server + " expired at " +
                                        FormatTimestamp(saved->expires_at) + "; run appban login again");
      }
      APPBAN_ASSIGN_OR_RETURN(SavedLogin refreshed, Refresh(*saved));
      APPBAN_RETURN_IF_ERROR(SaveLogin(credentials, refreshed));
      saved = std::move(refreshed);
    }
    credential = saved->id_token;
  } else {
    return Status::PermissionDenied("not signed in to " + server + ": run appban login --server " + server +
                                    ", or pass an API token with --token-file FILE");
  }
  APPBAN_ASSIGN_OR_RETURN(net::HttpClient client, ServerClient(server, ca_pem, certificate));
  return std::optional<AdminConnection>(AdminConnection(server, std::move(client), std::move(credential)));
}

Result<AdminConnection::Reply> AdminConnection::Call(std::string_view method, const std::string& path,
                                                     const Json* body) {
  std::vector<std::pair<std::string, std::string>> headers = {{std::string(kChannelHeader), "cli"}};
  if (!credential_.empty()) headers.emplace_back("Authorization", "Bearer " + credential_);
  if (body != nullptr) headers.emplace_back("Content-Type", "application/json");
  std::string what = std::string(method) + " " + path;
  APPBAN_ASSIGN_OR_RETURN(net::HttpResponse response,
                          client_.Request(method, path, body != nullptr ? body->dump() : "", headers));
  if (response.status < 200 || response.status >= 300) return ErrorFromAnswer(response, server_ + ": " + what);
  Reply reply{response.status, Json::object()};
  if (!response.body.empty()) {
    APPBAN_ASSIGN_OR_RETURN(reply.body, ParseJsonBounded(response.body, 64ull << 20, 64, what));
  }
  return reply;
}

}  // namespace appban::cli
