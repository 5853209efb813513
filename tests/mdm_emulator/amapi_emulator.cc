#include "amapi_emulator.h"

#include <algorithm>
#include <cstdio>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <optional>
#include <set>
#include <thread>

#include "appban/common/crypto.h"
#include "appban/common/thread_annotations.h"
#include "appban/net/http.h"
#include "appban/net/server.h"
#include "appban/net/tls.h"
#include "emulator_util.h"

namespace appban::testing {
namespace {

constexpr std::string_view kScope = "https://www.googleapis.com/auth/androidmanagement";
constexpr size_t kMaxBody = 4 << 20;

net::HttpResponse GoogleError(int code, std::string_view status, std::string_view message) {
  net::HttpResponse response;
  response.status = code;
  response.body = Json{{"error", {{"code", code}, {"message", message}, {"status", status}}}}.dump();
  return response;
}

net::HttpResponse OAuthError(std::string_view error, std::string_view description) {
  net::HttpResponse response;
  response.status = 400;
  response.body = Json{{"error", error}, {"error_description", description}}.dump();
  return response;
}

net::HttpResponse JsonOk(const Json& body) {
  net::HttpResponse response;
  response.body = body.dump();
  return response;
}

}  // namespace

struct AmapiEmulator::Server {
  const AmapiEmulatorOptions& options;
  const DiscoverySchemas& schemas;

  LoopbackServer loop;  // stopped by the emulator's destructor, before the state it serves

  mutable Mutex mutex;
  std::map<std::string, Json> policies GUARDED_BY(mutex);
  std::map<std::string, Json> devices GUARDED_BY(mutex);
  std::map<std::string, int64_t> tokens GUARDED_BY(mutex);  // token → expiry
  struct Failure {
    int count;
    int status;
    std::string method, path;
  };
  std::vector<Failure> failures GUARDED_BY(mutex);
  int patches GUARDED_BY(mutex) = 0;
  int grants GUARDED_BY(mutex) = 0;
  int throttled GUARDED_BY(mutex) = 0;
  int api_calls GUARDED_BY(mutex) = 0;
  std::vector<std::string> log GUARDED_BY(mutex);

  Server(const AmapiEmulatorOptions& o, const DiscoverySchemas& s) : options(o), schemas(s) {}

  static int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

  net::HttpResponse Handle(const net::HttpRequest& request) {
    MutexLock lock(mutex);
    if (request.path == "/token") return Token(request);
    ++api_calls;
    log.push_back(request.method + " " + request.path + (request.query.empty() ? "" : "?" + request.query));
    for (auto it = failures.begin(); it != failures.end(); ++it) {
      if ((it->method.empty() || it->method == request.method) && (it->path.empty() || it->path == request.path)) {
        int status = it->status;
        if (--it->count == 0) failures.erase(it);
        net::HttpResponse response =
            GoogleError(status, status == 503 ? "UNAVAILABLE" : "INTERNAL", "injected failure");
        response.headers.emplace_back("Retry-After", options.retry_after);
        return response;
      }
    }
    if (options.throttle_every > 0 && api_calls % options.throttle_every == 0) {
      ++throttled;
      net::HttpResponse response = GoogleError(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Requests'");
      response.headers.emplace_back("Retry-After", options.retry_after);
      return response;
    }
    std::string_view authorization = request.Header("authorization");
    if (authorization.substr(0, 7) != "Bearer ") {
      return GoogleError(401, "UNAUTHENTICATED", "Request is missing required authentication credential.");
    }
    auto token = tokens.find(std::string(authorization.substr(7)));
    if (token == tokens.end() || token->second <= Now()) {
      return GoogleError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
    }
    // /v1/enterprises/{e}/policies[/{p}] or /v1/enterprises/{e}/devices
    std::vector<std::string> parts = Split(request.path, '/');
    if (parts.size() < 5 || !parts[0].empty() || parts[1] != "v1" || parts[2] != "enterprises" || parts[3].empty()) {
      return GoogleError(404, "NOT_FOUND", "Requested entity was not found.");
    }
    const std::string enterprise = "enterprises/" + parts[3];
    if (parts.size() == 5 && parts[4] == "policies" && request.method == "GET") {
      return List(request, policies, enterprise + "/policies/", "policies");
    }
    if (parts.size() == 5 && parts[4] == "devices" && request.method == "GET") {
      if (options.synthetic_devices > 0) return SyntheticDevices(request, enterprise);
      return List(request, devices, enterprise + "/devices/", "devices");
    }
    if (parts.size() == 6 && parts[4] == "policies" && !parts[5].empty()) {
      const std::string name = enterprise + "/policies/" + parts[5];
      if (request.method == "GET") {
        auto it = policies.find(name);
        if (it == policies.end()) return GoogleError(404, "NOT_FOUND", "Requested entity was not found.");
        return JsonOk(it->second);
      }
      if (request.method == "PATCH") return Patch(request, name);
    }
    return GoogleError(404, "NOT_FOUND", "Requested entity was not found.");
  }

  net::HttpResponse Token(const net::HttpRequest& request) REQUIRES(mutex) {
    if (request.method != "POST") return OAuthError("invalid_request", "POST only");
    std::string grant_type, assertion;
    for (const std::string& pair : Split(request.body, '&')) {
      size_t eq = pair.find('=');
      if (eq == std::string::npos) continue;
      std::optional<std::string> value = net::PercentDecode(std::string_view(pair).substr(eq + 1), true);
      if (!value) return OAuthError("invalid_request", "malformed form body");
      if (pair.substr(0, eq) == "grant_type") grant_type = *value;
      if (pair.substr(0, eq) == "assertion") assertion = *value;
    }
    if (grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      return OAuthError("unsupported_grant_type", "Invalid grant_type: " + grant_type);
    }
    std::vector<std::string> parts = Split(assertion, '.');
    if (parts.size() != 3) return OAuthError("invalid_grant", "Invalid JWT: not three parts");
    std::optional<std::string> header_text = Base64UrlDecode(parts[0]);
    std::optional<std::string> claims_text = Base64UrlDecode(parts[1]);
    std::optional<std::string> signature = Base64UrlDecode(parts[2]);
    if (!header_text || !claims_text || !signature) return OAuthError("invalid_grant", "Invalid JWT: bad base64url");
    Result<Json> header = ParseJsonBounded(*header_text, 4096, 4, "JWT header");
    Result<Json> claims = ParseJsonBounded(*claims_text, 16384, 4, "JWT claims");
    if (!header.ok() || !claims.ok() || !header->is_object() || !claims->is_object()) {
      return OAuthError("invalid_grant", "Invalid JWT: bad JSON");
    }
    if (header->value("alg", "") != "RS256") return OAuthError("invalid_grant", "Invalid JWT: alg must be RS256");
    if (!VerifyRs256(options.service_account_public_key_pem, parts[0] + "." + parts[1], *signature)) {
      return OAuthError("invalid_grant", "Invalid JWT Signature.");
    }
    const Json& c = *claims;
    if (c.value("iss", "") != options.client_email) return OAuthError("invalid_grant", "Invalid issuer");
    if (c.value("aud", "") != TokenUri()) return OAuthError("invalid_grant", "Invalid JWT audience");
    if (c.value("scope", "") != kScope) return OAuthError("invalid_scope", "Invalid OAuth scope");
    if (!c.contains("iat") || !c["iat"].is_number_integer() || !c.contains("exp") || !c["exp"].is_number_integer()) {
      return OAuthError("invalid_grant", "Invalid JWT: iat/exp missing");
    }
    const int64_t iat = c["iat"].get<int64_t>(), exp = c["exp"].get<int64_t>(), now = Now();
    if (exp <= now)
      return OAuthError("invalid_grant",
                        "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe");
    if (exp - iat > 3600 || iat > now + 300) {
      return OAuthError("invalid_grant",
                        "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe");
    }
    std::string token(24, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(token.data()), static_cast<int>(token.size()));
    token = "ya29.emu-" + HexLower(Bytes(reinterpret_cast<const uint8_t*>(token.data()), token.size()));
    tokens[token] = now + options.token_lifetime_seconds;
    ++grants;
    return JsonOk(
        Json{{"access_token", token}, {"expires_in", options.token_lifetime_seconds}, {"token_type", "Bearer"}});
  }

  std::string Scheme() const { return options.tls ? "https" : "http"; }
  std::string TokenUri() const { return Scheme() + "://127.0.0.1:" + std::to_string(loop.port()) + "/token"; }

  net::HttpResponse List(const net::HttpRequest& request, const std::map<std::string, Json>& items,
                         const std::string& prefix, const std::string& key) REQUIRES(mutex) {
    int page_size = options.max_page_size;
    if (auto size = request.QueryParam("pageSize")) {
      try {
        int asked = std::stoi(*size);
        if (asked > 0 && asked < page_size) page_size = asked;
      } catch (...) {
        return GoogleError(400, "INVALID_ARGUMENT", "Invalid value at 'page_size' (TYPE_INT32), \"" + *size + "\"");
      }
    }
    size_t offset = 0;
    if (auto token = request.QueryParam("pageToken"); token && !token->empty()) {
      if (token->rfind("page-", 0) != 0) return GoogleError(400, "INVALID_ARGUMENT", "Invalid page token.");
      try {
        offset = std::stoul(token->substr(5));
      } catch (...) {
        return GoogleError(400, "INVALID_ARGUMENT", "Invalid page token.");
      }
    }
    Json page = Json::array();
    size_t index = 0, taken = 0;
    bool more = false;
    for (const auto& [name, item] : items) {
      if (name.rfind(prefix, 0) != 0) continue;
      if (index++ < offset) continue;
      if (taken == static_cast<size_t>(page_size)) {
        more = true;
        break;
      }
      page.push_back(item);
      ++taken;
    }
    Json body = Json::object();
    if (!page.empty()) body[key] = std::move(page);
    if (more) body["nextPageToken"] = "page-" + std::to_string(offset + taken);
    return JsonOk(body);
  }

  // A page of the generated fleet (AmapiEmulatorOptions::synthetic_devices): built on request, so
  // the emulator holds one page, never 100,000 devices' JSON.
  net::HttpResponse SyntheticDevices(const net::HttpRequest& request, const std::string& enterprise) {
    int64_t page_size = options.max_page_size;
    if (auto size = request.QueryParam("pageSize"))
      page_size = std::clamp<int64_t>(std::atoll(size->c_str()), 1, page_size);
    int64_t offset = 0;
    if (auto token = request.QueryParam("pageToken"); token && token->rfind("page-", 0) == 0) {
      offset = std::atoll(token->c_str() + 5);
    }
    const int64_t end = std::min<int64_t>(options.synthetic_devices, offset + page_size);
    Json page = Json::array();
    for (int64_t i = offset; i < end; ++i) {
      Json reports = Json::array();
      for (int a = 0; a + 1 < options.synthetic_apps_per_device; ++a) {
        reports.push_back({{"packageName", "com.example.app" + std::to_string(a)},
                           {"versionName", "1." + std::to_string(a)},
                           {"state", "INSTALLED"}});
      }
      const bool kept = options.synthetic_violating_every > 0 && i % options.synthetic_violating_every == 0;
      reports.push_back(
          {{"packageName", "com.tencent.mm"}, {"versionName", "8.0.40"}, {"state", kept ? "INSTALLED" : "REMOVED"}});
      char id[32];
      std::snprintf(id, sizeof id, "syn-%07lld", static_cast<long long>(i));
      page.push_back({{"name", enterprise + "/devices/" + id},
                      {"policyName", enterprise + "/policies/default"},
                      {"appliedPolicyName", enterprise + "/policies/default"},
                      {"appliedPolicyVersion", "2"},
                      {"policyCompliant", !kept},
                      {"lastPolicySyncTime", "2026-12-05T04:00:00.123Z"},
                      {"applicationReports", std::move(reports)}});
    }
    Json body = {{"devices", std::move(page)}};
    if (end < options.synthetic_devices) body["nextPageToken"] = "page-" + std::to_string(end);
    return JsonOk(body);
  }

  net::HttpResponse Patch(const net::HttpRequest& request, const std::string& name) REQUIRES(mutex) {
    Result<Json> body = ParseJsonBounded(request.body, kMaxBody, 64, "body");
    if (!body.ok() || !body->is_object()) {
      return GoogleError(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token.");
    }
    if (auto error = schemas.Validate("Policy", *body)) return GoogleError(400, "INVALID_ARGUMENT", *error);
    Json stored = policies.count(name) ? policies[name] : Json::object();
    std::string mask = request.QueryParam("updateMask").value_or("");
    if (mask.empty()) {
      // "If not set, all modifiable fields will be modified."
      Json replaced = *body;
      stored = std::move(replaced);
    } else {
      for (const std::string& path : Split(mask, ',')) {
        std::vector<std::string> keys = Split(path, '.');
        // Every step of the path must be a field of the Policy message.
        if (keys.empty() || !IsPolicyField(keys.front())) {
          return GoogleError(400, "INVALID_ARGUMENT", "Invalid field mask path \"" + path + "\".");
        }
        const Json* source = &*body;
        Json* target = &stored;
        bool present = true;
        for (size_t i = 0; i + 1 < keys.size(); ++i) {
          if (present && source->contains(keys[i]))
            source = &(*source)[keys[i]];
          else
            present = false;
          if (!target->contains(keys[i]) || !(*target)[keys[i]].is_object()) (*target)[keys[i]] = Json::object();
          target = &(*target)[keys[i]];
        }
        if (present && source->contains(keys.back())) {
          (*target)[keys.back()] = (*source)[keys.back()];
        } else {
          target->erase(keys.back());
        }
      }
    }
    int64_t version = 0;
    if (policies.count(name) && policies[name].contains("version")) {
      version = std::stoll(policies[name]["version"].get<std::string>());
    }
    stored["name"] = name;
    stored["version"] = std::to_string(version + 1);
    policies[name] = stored;
    ++patches;
    DevicesObey(name);
    return JsonOk(stored);
  }

  bool IsPolicyField(const std::string& key) const {
    // The discovery schema knows: a body of only this field validates iff it is a field.
    std::optional<std::string> error = schemas.Validate("Policy", Json{{key, nullptr}});
    return !error || error->find("Unknown name") == std::string::npos;
  }

  void DevicesObey(const std::string& policy_name) REQUIRES(mutex) {
    const Json& policy = policies[policy_name];
    std::set<std::string> blocked;
    if (policy.contains("applications")) {
      for (const Json& entry : policy["applications"]) {
        if (entry.value("installType", "") == "BLOCKED") blocked.insert(entry.value("packageName", ""));
      }
    }
    const bool reports = policy.contains("statusReportingSettings") &&
                         policy["statusReportingSettings"].value("applicationReportsEnabled", false);
    for (auto& [name, device] : devices) {
      if (device.value("policyName", "") != policy_name) continue;
      device["appliedPolicyName"] = policy_name;
      device["appliedPolicyVersion"] = policy["version"];
      device["policyCompliant"] = true;
      if (!reports || !device.contains("applicationReports")) continue;
      for (Json& report : device["applicationReports"]) {
        if (blocked.count(report.value("packageName", ""))) report["state"] = "REMOVED";
      }
    }
  }
};

Result<std::unique_ptr<AmapiEmulator>> AmapiEmulator::Start(AmapiEmulatorOptions options) {
  APPBAN_ASSIGN_OR_RETURN(DiscoverySchemas schemas, DiscoverySchemas::Load(options.spec_path));
  std::unique_ptr<AmapiEmulator> emulator(new AmapiEmulator(std::move(options), std::move(schemas)));
  Server& server = *emulator->server_;
  net::ServerOptions server_options;
  if (emulator->options_.tls) {
    // A CA of its own and a certificate for 127.0.0.1, as Google's front end has for its names.
    APPBAN_ASSIGN_OR_RETURN(net::CertificateAndKey ca, net::GenerateSelfSignedCa("AMAPI emulator CA", 1));
    APPBAN_ASSIGN_OR_RETURN(net::CertificateAndKey leaf, net::IssueServerCertificate(ca, {"127.0.0.1"}, 1));
    APPBAN_ASSIGN_OR_RETURN(server_options.tls, net::MakeServerContext(leaf.certificate_pem, leaf.private_key_pem));
    emulator->ca_pem_ = ca.certificate_pem;
  }
  APPBAN_RETURN_IF_ERROR(server.loop.Start(
      server_options, kMaxBody, [&server](const net::HttpRequest& request) { return server.Handle(request); }));
  return emulator;
}

AmapiEmulator::AmapiEmulator(AmapiEmulatorOptions options, DiscoverySchemas schemas)
    : options_(std::move(options)), schemas_(std::move(schemas)) {
  server_ = std::make_unique<Server>(options_, schemas_);
}

AmapiEmulator::~AmapiEmulator() { server_->loop.Stop(); }

std::string AmapiEmulator::base_url() const {
  return server_->Scheme() + "://127.0.0.1:" + std::to_string(server_->loop.port());
}
std::string AmapiEmulator::token_uri() const { return server_->TokenUri(); }

void AmapiEmulator::PutPolicy(const std::string& name, Json policy) {
  MutexLock lock(server_->mutex);
  policy["name"] = name;
  if (!policy.contains("version")) policy["version"] = "1";
  server_->policies[name] = std::move(policy);
}

Json AmapiEmulator::GetPolicy(const std::string& name) const {
  MutexLock lock(server_->mutex);
  auto it = server_->policies.find(name);
  return it == server_->policies.end() ? Json() : it->second;
}

void AmapiEmulator::PutDevice(Json device) {
  MutexLock lock(server_->mutex);
  std::string name = device.value("name", "");
  server_->devices[name] = std::move(device);
}

Json AmapiEmulator::GetDevice(const std::string& name) const {
  MutexLock lock(server_->mutex);
  auto it = server_->devices.find(name);
  return it == server_->devices.end() ? Json() : it->second;
}

void AmapiEmulator::FailNext(int count, int status, const std::string& method, const std::string& path) {
  MutexLock lock(server_->mutex);
  server_->failures.push_back({count, status, method, path});
}

void AmapiEmulator::RevokeTokens() {
  MutexLock lock(server_->mutex);
  server_->tokens.clear();
}

int AmapiEmulator::patches() const {
  MutexLock lock(server_->mutex);
  return server_->patches;
}
int AmapiEmulator::token_grants() const {
  MutexLock lock(server_->mutex);
  return server_->grants;
}
int AmapiEmulator::throttled() const {
  MutexLock lock(server_->mutex);
  return server_->throttled;
}
int AmapiEmulator::api_calls() const {
  MutexLock lock(server_->mutex);
  return server_->api_calls;
}
std::vector<std::string> AmapiEmulator::request_log() const {
  MutexLock lock(server_->mutex);
  return server_->log;
}

}  // namespace appban::testing
