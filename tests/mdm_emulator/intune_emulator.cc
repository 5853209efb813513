#include "intune_emulator.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <thread>

#include "appban/common/crypto.h"
#include "appban/common/mutex.h"
#include "appban/common/thread_annotations.h"
#include "appban/mdm/google_auth.h"
#include "appban/net/http.h"
#include "appban/net/server.h"
#include "emulator_util.h"

namespace appban::testing {
namespace {

constexpr size_t kMaxBody = 4 << 20;
constexpr std::string_view kScope = "https://graph.microsoft.com/.default";
constexpr std::string_view kAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

net::HttpResponse GraphError(int status, std::string_view code, std::string_view message) {
  net::HttpResponse response;
  response.status = status;
  response.body = Json{{"error",
                        {{"code", code},
                         {"message", message},
                         {"innerError", {{"request-id", "00000000-0000-0000-0000-000000000000"}}}}}}
                      .dump();
  return response;
}

net::HttpResponse AadError(int status, std::string_view error, std::string_view description) {
  net::HttpResponse response;
  response.status = status;
  response.body = Json{{"error", error}, {"error_description", description}, {"error_codes", Json::array()}}.dump();
  return response;
}

net::HttpResponse JsonOk(const Json& body, int status = 200) {
  net::HttpResponse response;
  response.status = status;
  response.body = body.dump();
  return response;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  return HexLower(Bytes(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()));
}

std::string Guid() {
  std::string hex = RandomHex(16);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

std::string Digest(const EVP_MD* md, const std::string& bytes) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), out, &length, md, nullptr);
  return std::string(reinterpret_cast<const char*>(out), length);
}

// The certificate's DER and its public key as SubjectPublicKeyInfo PEM.
bool LoadCertificate(const std::string& pem, std::string& der, std::string& public_pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* certificate = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!certificate) return false;
  unsigned char* buffer = nullptr;
  int length = i2d_X509(certificate, &buffer);
  der.assign(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
  OPENSSL_free(buffer);
  EVP_PKEY* key = X509_get0_pubkey(certificate);
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(out, key);
  char* data = nullptr;
  long size = BIO_get_mem_data(out, &data);
  public_pem.assign(data, static_cast<size_t>(size));
  BIO_free(out);
  X509_free(certificate);
  return true;
}

}  // namespace

struct IntuneEmulator::Server {
  const IntuneEmulatorOptions& options;
  const CsdlSchemas& schemas;
  std::string certificate_der, certificate_public_pem;

  LoopbackServer loop;  // stopped by the emulator's destructor, before the state it serves

  struct DeviceRecord {
    Json device;
    std::set<std::string> groups;
    std::vector<IntuneEmulatedApp> apps;
  };
  struct Assigned {
    Json object;
    std::set<std::string> groups;
  };

  mutable Mutex mutex;
  std::map<std::string, Json> apps GUARDED_BY(mutex);
  std::map<std::string, std::vector<Json>> assignments GUARDED_BY(mutex);
  std::map<std::string, Assigned> compliance GUARDED_BY(mutex);
  std::map<std::string, Assigned> configurations GUARDED_BY(mutex);
  std::map<std::string, DeviceRecord> devices GUARDED_BY(mutex);
  std::map<std::string, int64_t> tokens GUARDED_BY(mutex);
  std::map<std::string, std::string> raw_answers GUARDED_BY(mutex);
  std::set<std::string> seen_jti GUARDED_BY(mutex);
  struct Failure {
    int count;
    int status;
    std::string method, path;
  };
  std::vector<Failure> failures GUARDED_BY(mutex);
  int writes GUARDED_BY(mutex) = 0;
  int grants GUARDED_BY(mutex) = 0;
  int throttled GUARDED_BY(mutex) = 0;
  int api_calls GUARDED_BY(mutex) = 0;
  int next_app GUARDED_BY(mutex) = 0;
  std::vector<std::string> log GUARDED_BY(mutex);

  Server(const IntuneEmulatorOptions& o, const CsdlSchemas& s) : options(o), schemas(s) {}

  static int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }
  std::string Base() const { return "http://127.0.0.1:" + std::to_string(loop.port()); }
  std::string TokenPath() const { return "/" + options.tenant_id + "/oauth2/v2.0/token"; }

  net::HttpResponse Handle(const net::HttpRequest& request) {
    MutexLock lock(mutex);
    if (request.path == TokenPath()) return Token(request);
    ++api_calls;
    log.push_back(request.method + " " + request.path + (request.query.empty() ? "" : "?" + request.query));
    for (auto it = failures.begin(); it != failures.end(); ++it) {
      if ((it->method.empty() || it->method == request.method) &&
          (it->path.empty() || request.path.rfind(it->path, 0) == 0)) {
        const int status = it->status;
        if (--it->count == 0) failures.erase(it);
        net::HttpResponse response =
            GraphError(status, status == 503 ? "ServiceUnavailable" : "InternalServerError", "injected failure");
        response.headers.emplace_back("Retry-After", options.retry_after);
        return response;
      }
    }
    if (options.throttle_every > 0 && api_calls % options.throttle_every == 0) {
      ++throttled;
      net::HttpResponse response =
          GraphError(429, "TooManyRequests", "Too many requests from Identifier under category Intune.");
      response.headers.emplace_back("Retry-After", options.retry_after);
      return response;
    }
    std::string_view authorization = request.Header("authorization");
    if (authorization.substr(0, 7) != "Bearer ") {
      return GraphError(401, "InvalidAuthenticationToken", "Access token is empty.");
    }
    auto token = tokens.find(std::string(authorization.substr(7)));
    if (token == tokens.end() || token->second <= Now()) {
      return GraphError(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.");
    }
    if (request.method == "GET") {
      if (auto raw = raw_answers.find(request.path); raw != raw_answers.end()) {
        net::HttpResponse response;
        response.body = raw->second;
        return response;
      }
    }
    std::vector<std::string> parts = Split(request.path, '/');  // "", version, area, collection, …
    if (parts.size() < 4 || (parts[1] != "v1.0" && parts[1] != "beta")) {
      return GraphError(400, "BadRequest", "Invalid version.");
    }
    const bool beta = parts[1] == "beta";
    const std::string area = parts[2], collection = parts[3];
    const size_t depth = parts.size();
    if (area == "deviceManagement" && collection == "managedDevices" && depth == 4 && request.method == "GET") {
      std::vector<Json> items;
      for (const auto& [id, record] : devices) items.push_back(record.device);
      return Page(request, items);
    }
    if (area == "deviceManagement" && collection == "detectedApps" && request.method == "GET") {
      std::map<std::string, std::pair<Json, std::vector<Json>>> detected = DetectedApps();
      if (depth == 4) {
        std::vector<Json> items;
        for (const auto& [id, entry] : detected) items.push_back(entry.first);
        return Page(request, items);
      }
      if (depth == 6 && parts[5] == "managedDevices") {
        auto it = detected.find(parts[4]);
        if (it == detected.end()) return GraphError(404, "ResourceNotFound", "Resource not found.");
        return Page(request, it->second.second);
      }
    }
    if (area == "deviceAppManagement" && collection == "mobileApps") {
      if (depth == 4 && request.method == "GET") {
        std::vector<Json> items;
        for (const auto& [id, app] : apps) items.push_back(app);
        return Page(request, items);
      }
      if (depth >= 6 && parts[5] == "assignments" && !beta) {
        auto app = apps.find(parts[4]);
        if (app == apps.end()) return GraphError(404, "ResourceNotFound", "Resource not found.");
        std::vector<Json>& list = assignments[parts[4]];
        if (depth == 6 && request.method == "GET") return Page(request, list);
        if (depth == 6 && request.method == "POST") return CreateAssignment(request, list);
        if (depth == 7 && request.method == "DELETE") {
          for (auto it = list.begin(); it != list.end(); ++it) {
            if (it->value("id", "") == parts[6]) {
              list.erase(it);
              ++writes;
              DevicesObey();
              net::HttpResponse response;
              response.status = 204;
              return response;
            }
          }
          return GraphError(404, "ResourceNotFound", "Resource not found.");
        }
      }
    }
    if (area == "deviceManagement" && depth == 5 &&
        (collection == "deviceCompliancePolicies" || collection == "deviceConfigurations")) {
      auto& store = collection == "deviceCompliancePolicies" ? compliance : configurations;
      auto it = store.find(parts[4]);
      if (it == store.end()) return GraphError(404, "ResourceNotFound", "Resource not found.");
      const bool is_compliance = collection == "deviceCompliancePolicies";
      if (request.method == "GET") return JsonOk(Visible(it->second.object, beta, is_compliance));
      if (request.method == "PATCH") return PatchObject(request, it->second.object, beta, is_compliance);
    }
    return GraphError(400, "BadRequest", "Resource not found for the segment '" + collection + "'.");
  }

  // The CSDL type a body for this object is checked against: v1.0's, or beta's for a beta
  // compliance policy (restrictedApps exists only there).
  std::string SchemaType(const std::string& odata_type, bool beta, bool is_compliance) const {
    std::string name = odata_type.substr(odata_type.rfind('.') + 1);
    if (beta && is_compliance && name == "iosCompliancePolicy") return "beta.iosCompliancePolicy";
    return name;
  }

  // The object as the version asked shows it: v1.0 has no restrictedApps.
  Json Visible(const Json& object, bool beta, bool is_compliance) const {
    Json out = object;
    if (!beta && is_compliance) out.erase("restrictedApps");
    return out;
  }

  net::HttpResponse PatchObject(const net::HttpRequest& request, Json& stored, bool beta, bool is_compliance)
      REQUIRES(mutex) {
    Result<Json> body = ParseJsonBounded(request.body, kMaxBody, 64, "body");
    if (!body.ok() || !body->is_object()) {
      return GraphError(400, "BadRequest", "Unable to read JSON request payload.");
    }
    const std::string stored_type = stored.value("@odata.type", "");
    // The body is checked against the stored object's type (a PATCH cannot change it).
    if (body->contains("@odata.type") && (*body)["@odata.type"] != stored_type) {
      return GraphError(400, "BadRequest", "The @odata.type of a PATCH must be the entity's own type.");
    }
    Json checked = *body;
    checked["@odata.type"] = stored_type;
    const std::string type = SchemaType(stored_type, beta, is_compliance);
    // The beta type is registered under its own name; Derives() accepts it for its @odata.type.
    checked.erase("@odata.type");
    if (auto error = schemas.Validate(type, checked)) return GraphError(400, "BadRequest", *error);
    for (const auto& [key, value] : body->items()) {
      if (key == "@odata.type") continue;
      stored[key] = value;
    }
    stored["version"] = stored.value("version", 0) + 1;
    ++writes;
    DevicesObey();
    net::HttpResponse response;
    response.status = 204;
    return response;
  }

  net::HttpResponse CreateAssignment(const net::HttpRequest& request, std::vector<Json>& list) REQUIRES(mutex) {
    Result<Json> body = ParseJsonBounded(request.body, kMaxBody, 64, "body");
    if (!body.ok() || !body->is_object()) {
      return GraphError(400, "BadRequest", "Unable to read JSON request payload.");
    }
    if (auto error = schemas.Validate("mobileAppAssignment", *body)) return GraphError(400, "BadRequest", *error);
    if (!body->contains("target")) return GraphError(400, "BadRequest", "An assignment needs a target.");
    Json created = *body;
    created["@odata.type"] = "#microsoft.graph.mobileAppAssignment";
    created["id"] = Guid() + "_0_0";
    list.push_back(created);
    ++writes;
    DevicesObey();
    return JsonOk(created, 201);
  }

  // detectedApp id → (detectedApp, devices that have it), from every device's apps.
  std::map<std::string, std::pair<Json, std::vector<Json>>> DetectedApps() const REQUIRES(mutex) {
    std::map<std::string, std::pair<Json, std::vector<Json>>> out;
    for (const auto& [id, record] : devices) {
      for (const IntuneEmulatedApp& app : record.apps) {
        const std::string key =
            Sha256Hex(AsBytes(app.display_name + "\n" + app.version + "\n" + app.platform)).substr(0, 44);
        auto& entry = out[key];
        if (entry.first.is_null()) {
          entry.first = Json{{"id", key},
                             {"displayName", app.display_name},
                             {"version", app.version},
                             {"platform", app.platform},
                             {"sizeInByte", 1024},
                             {"deviceCount", 0}};
        }
        entry.first["deviceCount"] = entry.first["deviceCount"].get<int>() + 1;
        entry.second.push_back(record.device);
      }
    }
    return out;
  }

  void DevicesObey(bool on_demand = false) REQUIRES(mutex) {
    if (options.devices_sync_on_demand && !on_demand) return;
    for (auto& [id, record] : devices) {
      // Uninstall assignments to one of the device's groups remove the managed copies.
      std::vector<IntuneEmulatedApp> kept;
      for (const IntuneEmulatedApp& app : record.apps) {
        bool removed = false;
        for (const auto& [app_id, mobile_app] : apps) {
          const std::string identity = mobile_app.value("bundleId", mobile_app.value("packageId", ""));
          if (identity != app.app_id || !app.managed) continue;
          auto list = assignments.find(app_id);
          if (list == assignments.end()) continue;
          for (const Json& assignment : list->second) {
            if (assignment.value("intent", "") == "uninstall" && assignment.contains("target") &&
                record.groups.count(assignment["target"].value("groupId", ""))) {
              removed = true;
            }
          }
        }
        if (!removed) kept.push_back(app);
      }
      record.apps = std::move(kept);
      // Restricted-app compliance.
      bool restricted = false, assessed = false;
      for (const auto& [policy_id, policy] : compliance) {
        bool applies = false;
        for (const std::string& group : policy.groups) applies = applies || record.groups.count(group);
        if (!applies) continue;
        assessed = true;
        if (!policy.object.contains("restrictedApps")) continue;
        for (const Json& item : policy.object["restrictedApps"]) {
          for (const IntuneEmulatedApp& app : record.apps)
            restricted = restricted || app.app_id == item.value("appId", "");
        }
      }
      if (assessed) record.device["complianceState"] = restricted ? "noncompliant" : "compliant";
    }
  }

  net::HttpResponse Page(const net::HttpRequest& request, const std::vector<Json>& items) const {
    int page_size = options.max_page_size;
    if (auto top = request.QueryParam("$top")) {
      try {
        int asked = std::stoi(*top);
        if (asked > 0 && asked < page_size) page_size = asked;
      } catch (...) {
        return GraphError(400, "BadRequest", "Invalid $top value.");
      }
    }
    size_t offset = 0;
    if (auto token = request.QueryParam("$skiptoken")) {
      try {
        offset = std::stoul(*token);
      } catch (...) {
        return GraphError(400, "BadRequest", "Invalid skip token.");
      }
    }
    Json value = Json::array();
    for (size_t i = offset; i < items.size() && value.size() < static_cast<size_t>(page_size); ++i) {
      value.push_back(items[i]);
    }
    Json body = {{"@odata.context", Base() + "/v1.0/$metadata#collection"}, {"value", value}};
    if (offset + value.size() < items.size()) {
      body["@odata.nextLink"] = Base() + request.path + "?$top=" + std::to_string(page_size) +
                                "&$skiptoken=" + std::to_string(offset + value.size());
    }
    return JsonOk(body);
  }

  net::HttpResponse Token(const net::HttpRequest& request) REQUIRES(mutex) {
    if (request.method != "POST") return AadError(400, "invalid_request", "AADSTS900561: POST only.");
    std::map<std::string, std::string> form;
    for (const std::string& pair : Split(request.body, '&')) {
      size_t eq = pair.find('=');
      if (eq == std::string::npos) continue;
      std::optional<std::string> value = net::PercentDecode(std::string_view(pair).substr(eq + 1), true);
      if (!value) return AadError(400, "invalid_request", "AADSTS900144: malformed form body.");
      form[pair.substr(0, eq)] = *value;
    }
    if (form["grant_type"] != "client_credentials") {
      return AadError(400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.");
    }
    if (form["client_id"] != options.client_id) {
      return AadError(400, "unauthorized_client", "AADSTS700016: Application not found in the directory.");
    }
    if (form["scope"] != kScope) {
      return AadError(400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid.");
    }
    if (form.count("client_secret")) {
      if (options.client_secret.empty() || form["client_secret"] != options.client_secret) {
        return AadError(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
      }
    } else if (form.count("client_assertion")) {
      if (form["client_assertion_type"] != kAssertionType) {
        return AadError(400, "invalid_request", "AADSTS50027: Invalid client_assertion_type.");
      }
      if (auto error = CheckAssertion(form["client_assertion"])) return AadError(401, "invalid_client", *error);
    } else {
      return AadError(401, "invalid_client",
                      "AADSTS7000218: The request body must contain client_assertion or "
                      "client_secret.");
    }
    std::string token = "eyJ0eXAiOiJKV1QiLCJlbXUiOnRydWV9." + RandomHex(24);
    tokens[token] = Now() + options.token_lifetime_seconds;
    ++grants;
    return JsonOk(Json{{"token_type", "Bearer"},
                       {"expires_in", options.token_lifetime_seconds},
                       {"ext_expires_in", options.token_lifetime_seconds},
                       {"access_token", token}});
  }

  std::optional<std::string> CheckAssertion(const std::string& assertion) REQUIRES(mutex) {
    if (certificate_der.empty()) return "AADSTS700027: No certificate is registered for the application.";
    std::vector<std::string> parts = Split(assertion, '.');
    if (parts.size() != 3) return "AADSTS50012: Client assertion is not a JWT.";
    auto header_text = Base64UrlDecode(parts[0]);
    auto claims_text = Base64UrlDecode(parts[1]);
    auto signature = Base64UrlDecode(parts[2]);
    if (!header_text || !claims_text || !signature) return "AADSTS50012: Client assertion is not base64url.";
    Result<Json> header = ParseJsonBounded(*header_text, 4096, 4, "header");
    Result<Json> claims = ParseJsonBounded(*claims_text, 16384, 4, "claims");
    if (!header.ok() || !claims.ok() || !header->is_object() || !claims->is_object()) {
      return "AADSTS50012: Client assertion is not JSON.";
    }
    if (header->value("alg", "") != "RS256") return "AADSTS5002738: Invalid JWT token. Unsupported algorithm.";
    const std::string s256 = mdm::Base64UrlEncode(Digest(EVP_sha256(), certificate_der));
    const std::string s1 = mdm::Base64UrlEncode(Digest(EVP_sha1(), certificate_der));
    if (header->value("x5t#S256", "") != s256 && header->value("x5t", "") != s1) {
      return "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on "
             "application.";
    }
    if (!VerifyRs256(certificate_public_pem, parts[0] + "." + parts[1], *signature)) {
      return "AADSTS700027: Client assertion contains an invalid signature.";
    }
    const Json& c = *claims;
    if (c.value("aud", "") != Base() + TokenPath()) return "AADSTS700016: Invalid audience.";
    if (c.value("iss", "") != options.client_id || c.value("sub", "") != options.client_id) {
      return "AADSTS700023: Client assertion issuer or subject is not the client id.";
    }
    if (!c.contains("exp") || !c["exp"].is_number_integer() || c["exp"].get<int64_t>() <= Now()) {
      return "AADSTS700024: Client assertion is not within its valid time range.";
    }
    if (c.contains("nbf") && (!c["nbf"].is_number_integer() || c["nbf"].get<int64_t>() > Now() + 300)) {
      return "AADSTS700024: Client assertion is not within its valid time range.";
    }
    const std::string jti = c.value("jti", "");
    if (jti.empty() || !seen_jti.insert(jti).second)
      return "AADSTS700025: Client assertion jti is missing or replayed.";
    return std::nullopt;
  }
};

Result<std::unique_ptr<IntuneEmulator>> IntuneEmulator::Start(IntuneEmulatorOptions options) {
  APPBAN_ASSIGN_OR_RETURN(CsdlSchemas schemas, CsdlSchemas::Load(options.specs_dir + "/graph-v1.0-csdl.fragments.xml"));
  // Beta iosCompliancePolicy: the v1.0 type plus the beta names; restrictedApps is documented as
  // "Require the device to not have the specified apps installed", a collection of appListItem.
  APPBAN_RETURN_IF_ERROR(schemas.AddDerivedFromExcerpt(options.specs_dir + "/graph-beta-type-mappings.excerpt.json",
                                                       "iosCompliancePolicy", "beta.iosCompliancePolicy",
                                                       {{"restrictedApps", "Collection(graph.appListItem)"}}));
  std::unique_ptr<IntuneEmulator> emulator(new IntuneEmulator(std::move(options), std::move(schemas)));
  Server& server = *emulator->server_;
  if (!emulator->options_.certificate_pem.empty() &&
      !LoadCertificate(emulator->options_.certificate_pem, server.certificate_der, server.certificate_public_pem)) {
    return Status::InvalidArgument("emulator: certificate_pem is not a PEM certificate");
  }
  APPBAN_RETURN_IF_ERROR(server.loop.Start(
      net::ServerOptions{}, kMaxBody, [&server](const net::HttpRequest& request) { return server.Handle(request); }));
  return emulator;
}

IntuneEmulator::IntuneEmulator(IntuneEmulatorOptions options, CsdlSchemas schemas)
    : options_(std::move(options)), schemas_(std::move(schemas)) {
  server_ = std::make_unique<Server>(options_, schemas_);
}

IntuneEmulator::~IntuneEmulator() { server_->loop.Stop(); }

std::string IntuneEmulator::base_url() const { return server_->Base(); }

std::string IntuneEmulator::AddMobileApp(Json app) {
  MutexLock lock(server_->mutex);
  const std::string id = "a" + std::to_string(++server_->next_app) + "000000-0000-4000-8000-000000000000";
  app["id"] = id.substr(0, 36);
  server_->apps[app["id"]] = app;
  return app["id"];
}

std::vector<Json> IntuneEmulator::Assignments(const std::string& app_id) const {
  MutexLock lock(server_->mutex);
  auto it = server_->assignments.find(app_id);
  return it == server_->assignments.end() ? std::vector<Json>{} : it->second;
}

void IntuneEmulator::AddAssignment(const std::string& app_id, Json assignment) {
  MutexLock lock(server_->mutex);
  if (!assignment.contains("id")) assignment["id"] = Guid() + "_1_0";
  server_->assignments[app_id].push_back(std::move(assignment));
  server_->DevicesObey();
}

void IntuneEmulator::PutCompliancePolicy(const std::string& id, Json policy, std::set<std::string> groups) {
  MutexLock lock(server_->mutex);
  policy["id"] = id;
  if (!policy.contains("version")) policy["version"] = 1;
  server_->compliance[id] = {std::move(policy), std::move(groups)};
  server_->DevicesObey();
}

void IntuneEmulator::PutConfiguration(const std::string& id, Json configuration, std::set<std::string> groups) {
  MutexLock lock(server_->mutex);
  configuration["id"] = id;
  if (!configuration.contains("version")) configuration["version"] = 1;
  server_->configurations[id] = {std::move(configuration), std::move(groups)};
}

Json IntuneEmulator::CompliancePolicy(const std::string& id) const {
  MutexLock lock(server_->mutex);
  auto it = server_->compliance.find(id);
  return it == server_->compliance.end() ? Json() : it->second.object;
}

Json IntuneEmulator::Configuration(const std::string& id) const {
  MutexLock lock(server_->mutex);
  auto it = server_->configurations.find(id);
  return it == server_->configurations.end() ? Json() : it->second.object;
}

void IntuneEmulator::PutDevice(Json device, std::set<std::string> groups, std::vector<IntuneEmulatedApp> apps) {
  MutexLock lock(server_->mutex);
  const std::string id = device.value("id", "");
  server_->devices[id] = {std::move(device), std::move(groups), std::move(apps)};
  server_->DevicesObey();
}

Json IntuneEmulator::Device(const std::string& id) const {
  MutexLock lock(server_->mutex);
  auto it = server_->devices.find(id);
  return it == server_->devices.end() ? Json() : it->second.device;
}

std::vector<IntuneEmulatedApp> IntuneEmulator::DeviceApps(const std::string& id) const {
  MutexLock lock(server_->mutex);
  auto it = server_->devices.find(id);
  return it == server_->devices.end() ? std::vector<IntuneEmulatedApp>{} : it->second.apps;
}

void IntuneEmulator::SyncDevices() {
  MutexLock lock(server_->mutex);
  server_->DevicesObey(/*on_demand=*/true);
}

void IntuneEmulator::FailNext(int count, int status, const std::string& method, const std::string& path_prefix) {
  MutexLock lock(server_->mutex);
  server_->failures.push_back({count, status, method, path_prefix});
}

void IntuneEmulator::SetRawAnswer(const std::string& path, std::string body) {
  MutexLock lock(server_->mutex);
  server_->raw_answers[path] = std::move(body);
}

void IntuneEmulator::RevokeTokens() {
  MutexLock lock(server_->mutex);
  server_->tokens.clear();
}

int IntuneEmulator::writes() const {
  MutexLock lock(server_->mutex);
  return server_->writes;
}
int IntuneEmulator::token_grants() const {
  MutexLock lock(server_->mutex);
  return server_->grants;
}
int IntuneEmulator::throttled() const {
  MutexLock lock(server_->mutex);
  return server_->throttled;
}
std::vector<std::string> IntuneEmulator::request_log() const {
  MutexLock lock(server_->mutex);
  return server_->log;
}
const CsdlSchemas& IntuneEmulator::schemas() const { return schemas_; }

}  // namespace appban::testing
