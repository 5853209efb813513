#include "appban/server/admin_call.h"

#include <algorithm>
#include <utility>

#include "appban/common/bytes.h"
#include "appban/common/crypto.h"
#include "appban/common/text.h"
#include "appban/policy/model.h"
#include "appban/protocol/messages.h"
#include "appban/server/config.h"

namespace appban::server::admin {

// ---------------------------------------------------------------------------------------------
// Responses

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse response;
  response.status = status;
  // Stored text (host names, notes) is validated UTF-8, but never let a stray byte throw here.
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return response;
}

HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  HttpResponse response;
  response.status = status;
  response.body = protocol::ErrorBody(code, message);
  return response;
}

HttpResponse ErrorFrom(const Status& status) {
  HttpError error = HttpErrorFor(status);
  return ErrorResponse(error.status, error.code, status.message());
}

HttpResponse BadRequest(std::string_view message) { return ErrorResponse(400, "bad_request", message); }

HttpResponse ErrorFromBodyReference(const Status& status) {
  if (status.code() == StatusCode::kNotFound) return BadRequest(status.message());
  return ErrorFrom(status);
}

Json OptionalTime(const std::optional<UnixSeconds>& at) { return at ? Json(FormatTimestamp(*at)) : Json(nullptr); }
Json TimeOrNull(UnixSeconds at) { return at > 0 ? Json(FormatTimestamp(at)) : Json(nullptr); }

Json RulesHashMismatchJson(const store::Device& device) {
  if (!device.rules_hash_mismatch) return nullptr;
  const store::RulesHashMismatch& mismatch = *device.rules_hash_mismatch;
  return Json{{"applied_version", device.applied_version},
              {"reported_rules_hash", device.applied_rules_hash},
              {"expected_rules_hash", mismatch.expected_hash.empty() ? Json(nullptr) : Json(mismatch.expected_hash)},
              {"since", FormatTimestamp(mismatch.since)}};
}

// ---------------------------------------------------------------------------------------------
// Strict input

std::string Quoted(std::string_view text) {
  // Error messages quote client input: keep them short and printable.
  std::string safe = SanitizeUtf8(text.substr(0, 80));
  for (char& c : safe) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return "\"" + safe + (text.size() > 80 ? "…\"" : "\"");
}

Status CheckMembers(const Json& object, std::initializer_list<std::string_view> allowed, std::string_view what) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (auto name : allowed) list += (list.empty() ? "" : ", ") + std::string(name);
      return Status::InvalidArgument(std::string(what) + ": unknown member " + Quoted(key) + " (expected: " + list +
                                     ")");
    }
  }
  return Status::Ok();
}

Result<std::string> StringMember(const Json& object, std::string_view name, bool required, size_t max_bytes) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) {
    if (required) return Status::InvalidArgument(std::string(name) + ": missing (a string is required)");
    return std::string();
  }
  if (!it->is_string()) return Status::InvalidArgument(std::string(name) + ": must be a string");
  std::string value = it->get<std::string>();
  if (value.size() > max_bytes) {
    return Status::InvalidArgument(std::string(name) + ": longer than " + std::to_string(max_bytes) + " bytes");
  }
  if (required && value.empty()) return Status::InvalidArgument(std::string(name) + ": must not be empty");
  return value;
}

Result<std::optional<int64_t>> IntegerMember(const Json& object, std::string_view name, int64_t min, int64_t max) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) return Status::InvalidArgument(std::string(name) + ": must be an integer");
  // Unsigned values above INT64_MAX would wrap on get<int64_t>().
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(max)) {
    return Status::InvalidArgument(std::string(name) + ": must be between " + std::to_string(min) + " and " +
                                   std::to_string(max));
  }
  int64_t value = it->get<int64_t>();
  if (value < min || value > max) {
    return Status::InvalidArgument(std::string(name) + ": " + std::to_string(value) + " is out of range (" +
                                   std::to_string(min) + " to " + std::to_string(max) + ")");
  }
  return std::optional<int64_t>(value);
}

Result<std::vector<std::string>> IdentifierArrayMember(const Json& object, std::string_view name, bool required,
                                                       size_t max_items, std::string_view what) {
  std::vector<std::string> values;
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) {
    if (required) return Status::InvalidArgument(std::string(name) + ": missing (an array of strings is required)");
    return values;
  }
  if (!it->is_array()) return Status::InvalidArgument(std::string(name) + ": must be an array of strings");
  if (it->size() > max_items) {
    return Status::InvalidArgument(std::string(name) + ": more than " + std::to_string(max_items) + " items");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& element = (*it)[i];
    std::string where = std::string(name) + "[" + std::to_string(i) + "]";
    if (!element.is_string()) return Status::InvalidArgument(where + ": must be a string");
    std::string value = element.get<std::string>();
    Status valid = policy::ValidateIdentifier(value, what);
    if (!valid.ok()) return valid.WithContext(where);
    values.push_back(std::move(value));
  }
  return values;
}

Result<std::optional<int64_t>> QueryInteger(const HttpRequest& request, std::string_view name, int64_t min,
                                            int64_t max) {
  std::optional<std::string> text = request.QueryParam(name);
  if (!text) {
    if (request.query.find(std::string(name) + "=") != std::string::npos) {
      return Status::InvalidArgument("query parameter " + std::string(name) + ": malformed percent-encoding");
    }
    return std::optional<int64_t>();
  }
  auto bad = [&]() {
    return Status::InvalidArgument("query parameter " + std::string(name) + ": " + Quoted(*text) +
                                   " is not an integer between " + std::to_string(min) + " and " + std::to_string(max));
  };
  if (text->empty() || text->size() > 18) return bad();
  int64_t value = 0;
  for (char c : *text) {
    if (c < '0' || c > '9') return bad();
    value = value * 10 + (c - '0');
  }
  if (value < min || value > max) return bad();
  return std::optional<int64_t>(value);
}

Status CheckPathIdentifier(const std::string& value, std::string_view what) {
  return policy::ValidateIdentifier(value, what).WithContext("path");
}

namespace {

// A search text from the query string: absent is "", else at most `max_bytes` of UTF-8 without
// control characters (host names and app ids are stored so; PostgreSQL refuses invalid UTF-8).
Result<std::string> QuerySearchText(const HttpRequest& request, std::string_view name, size_t max_bytes) {
  std::optional<std::string> text = request.QueryParam(name);
  std::string what = "query parameter " + std::string(name);
  if (!text) {
    if (request.query.find(std::string(name) + "=") != std::string::npos) {
      return Status::InvalidArgument(what + ": malformed percent-encoding");
    }
    return std::string();
  }
  if (text->size() > max_bytes) {
    return Status::InvalidArgument(what + ": longer than " + std::to_string(max_bytes) + " bytes");
  }
  if (!IsValidUtf8(*text)) return Status::InvalidArgument(what + ": not UTF-8");
  for (char c : *text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Status::InvalidArgument(what + ": contains a control character");
    }
  }
  return std::move(*text);
}

}  // namespace

Result<store::DeviceFilter> ReadDeviceFilter(const HttpRequest& request) {
  if (request.QueryParam("user")) {
    return Status::InvalidArgument(
        "query parameter user: devices record no user (an enrolment names a host, not a person); search by "
        "hostname, id or app");
  }
  store::DeviceFilter filter;
  for (auto [name, value] : {std::pair{"source", &filter.source}, std::pair{"platform", &filter.platform}}) {
    if (auto given = request.QueryParam(name)) {
      APPBAN_RETURN_IF_ERROR(CheckPathIdentifier(*given, std::string("query parameter ") + name));
      *value = *given;
    }
  }
  const DeviceSearchLimits& limits = kDeviceSearchLimits;
  APPBAN_ASSIGN_OR_RETURN(filter.hostname_prefix, QuerySearchText(request, "hostname", limits.max_hostname_bytes));
  APPBAN_ASSIGN_OR_RETURN(filter.id_prefix, QuerySearchText(request, "id", limits.max_id_bytes));
  APPBAN_ASSIGN_OR_RETURN(filter.app, QuerySearchText(request, "app", limits.max_app_bytes));
  // Device ids are "d-" or "m-" and lowercase hex: anything else can only be a mistake.
  for (char c : filter.id_prefix) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-')) {
      return Status::InvalidArgument("query parameter id: " + Quoted(filter.id_prefix) +
                                     " is not the start of a device id (lowercase letters, digits and '-')");
    }
  }
  return filter;
}

// ---------------------------------------------------------------------------------------------
// Paging

namespace {

// "c1.<list>.<hex of the key>": versioned so the encoding can change without old cursors being
// misread, hex so any key survives a query string unescaped.
constexpr std::string_view kCursorVersion = "c1";
constexpr size_t kMaxCursorBytes = 640;  // a 256-byte vendor name, hex-encoded, and the prefix

Result<std::string> DecodeHex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return Status::InvalidArgument("odd length");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = nibble(hex[i]);
    int low = nibble(hex[i + 1]);
    if (high < 0 || low < 0) return Status::InvalidArgument("not lowercase hex");
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return out;
}

bool IsDecimal(std::string_view text, size_t max_digits) {
  return !text.empty() && text.size() <= max_digits &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Status CheckCursorKey(std::string_view key, CursorKey kind) {
  switch (kind) {
    case CursorKey::kIdentifier:
      return policy::ValidateIdentifier(key, "key");
    case CursorKey::kSequence:
      return IsDecimal(key, 15) ? Status::Ok() : Status::InvalidArgument("the key is not a sequence number");
    case CursorKey::kAssessment: {
      size_t colon = key.find(':');
      std::string_view sha = colon == std::string_view::npos ? std::string_view() : key.substr(colon + 1);
      bool ok =
          IsDecimal(key.substr(0, colon), 15) && sha.size() == 64 &&
          std::all_of(sha.begin(), sha.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
      return ok ? Status::Ok() : Status::InvalidArgument("the key is not an assessment's upload time and SHA-256");
    }
    case CursorKey::kName:
      return policy::ValidateVendor(policy::Vendor{std::string(key), "", {}, 0});
  }
  return Status::InvalidArgument("unknown key kind");
}

}  // namespace

std::string EncodeCursor(std::string_view list, std::string_view key) {
  return std::string(kCursorVersion) + "." + std::string(list) + "." + HexLower(AsBytes(key));
}

Result<PageRequest> ReadPageRequest(const HttpRequest& request, std::string_view list, CursorKey kind) {
  PageRequest page;
  auto limit = QueryInteger(request, "limit", 1, kAdminLimits.max_page);
  if (!limit.ok()) return limit.status();
  page.limit = static_cast<size_t>(limit->value_or(kAdminLimits.default_page));
  std::optional<std::string> cursor = request.QueryParam("cursor");
  if (!cursor) {
    if (request.query.find("cursor=") != std::string::npos) {
      return Status::InvalidArgument("query parameter cursor: malformed percent-encoding");
    }
    return page;
  }
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("query parameter cursor: " + Quoted(*cursor) + " is not a cursor of GET " +
                                   std::string(kAdminPathPrefix) + std::string(list) + " (" + std::string(why) +
                                   "); pass back the next_cursor of the previous page unchanged");
  };
  if (cursor->size() > kMaxCursorBytes) return bad("too long");
  std::string expected_prefix = std::string(kCursorVersion) + "." + std::string(list) + ".";
  if (!cursor->starts_with(expected_prefix)) {
    return bad(cursor->starts_with(std::string(kCursorVersion) + ".") ? "issued by another list" : "unknown format");
  }
  auto key = DecodeHex(std::string_view(*cursor).substr(expected_prefix.size()));
  if (!key.ok()) return bad(key.status().message());
  if (Status valid = CheckCursorKey(*key, kind); !valid.ok()) return bad(valid.message());
  page.after = std::move(*key);
  return page;
}

// ---------------------------------------------------------------------------------------------
// The call

bool Allows(store::Role role, Need need) {
  switch (need) {
    case Need::kRead:
      return true;
    case Need::kAnalyst:
      return role == store::Role::kAdmin || role == store::Role::kAnalyst;
    case Need::kAdmin:
      return role == store::Role::kAdmin;
  }
  return false;
}

std::string_view NeedName(Need need) {
  switch (need) {
    case Need::kRead:
      return "auditor";
    case Need::kAnalyst:
      return "analyst";
    case Need::kAdmin:
      return "admin";
  }
  return "admin";
}

const ServerConfig& ConfigOf(const WorkerContext& context) {
  static const ServerConfig kDefaults;  // immutable: a context without config uses the documented defaults
  return context.config != nullptr ? *context.config : kDefaults;
}

UnixSeconds Call::Now() const { return context.clock ? context.clock() : decide::SystemClockNow(); }

store::AuditIdentity Principal::Identity() const {
  store::AuditIdentity identity;
  identity.user_id = user.id;
  identity.issuer = user.issuer;
  identity.subject = user.subject;
  identity.actor_name = user.display_name;
  identity.method = session ? "session" : method;
  identity.token_id = token_id;
  identity.certificate = certificate;
  identity.source = source;
  identity.channel = session ? "console" : (cli ? "cli" : "api");
  return identity;
}

decide::Actor Principal::Actor() const {
  return decide::Actor{
      user.id, user.display_name, user.kind == store::UserKind::kHuman, store::AuditIdentityJson(Identity()),
      false,   same_person};
}

Result<NamedRole> ReadNamedRole(const Json& body) {
  NamedRole out;
  APPBAN_ASSIGN_OR_RETURN(out.name, StringMember(body, "name", true, store::kFleetLimits.max_name_bytes));
  if (Status s = policy::ValidateIdentifier(out.name, "name"); !s.ok()) return Status::InvalidArgument(s.message());
  APPBAN_ASSIGN_OR_RETURN(std::string role_name, StringMember(body, "role", true, 32));
  auto role = store::ParseRole(role_name);
  if (!role.ok()) return Status::InvalidArgument("role: " + role.status().message());
  out.role = *role;
  return out;
}

std::optional<HttpResponse> RefuseToConfer(const Call& call, store::Role role, std::string_view what) {
  if (call.principal.user.kind != store::UserKind::kHuman) {
    return ErrorResponse(403, "forbidden",
                         "a service account cannot create " + std::string(what) + "; the person who owns it does");
  }
  // The stronger role has the smaller value.
  if (role < call.principal.role) {
    return ErrorResponse(403, "forbidden",
                         "role: you have role " + std::string(store::RoleName(call.principal.role)) +
                             " and cannot create " + std::string(what) + " with role " +
                             std::string(store::RoleName(role)));
  }
  return std::nullopt;
}

decide::PolicyAdmin Call::Admin() const {
  return decide::PolicyAdmin(*context.store, principal.Actor(), [this] { return Now(); });
}

store::AuditRecord Call::Audit() const {
  store::AuditRecord record;
  record.actor = principal.user.id;
  record.at = Now();
  record.identity = store::AuditIdentityJson(principal.Identity());
  return record;
}

Result<Json> Call::Body(bool empty_ok) const {
  std::string_view body = request.body;
  bool blank =
      std::all_of(body.begin(), body.end(), [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; });
  if (blank) {
    if (empty_ok) return Json::object();
    return Status::InvalidArgument("request body: empty; a JSON object is required");
  }
  auto parsed = ParseJsonBounded(body, config().limits.json_max_bytes, kAdminLimits.max_json_depth, "request body");
  if (!parsed.ok()) return Status::InvalidArgument(parsed.status().message());
  if (!parsed->is_object()) return Status::InvalidArgument("request body: must be a JSON object");
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// JSON views shared by several resources

Json UserJson(const store::User& user) {
  auto role = [](const std::optional<store::Role>& r) -> Json {
    return r ? Json(std::string(store::RoleName(*r))) : Json(nullptr);
  };
  return Json{{"id", user.id},
              {"issuer", user.issuer},
              {"subject", user.subject},
              {"display_name", user.display_name},
              {"kind", std::string(store::UserKindName(user.kind))},
              {"owner_id", user.owner_id.empty() ? Json(nullptr) : Json(user.owner_id)},
              {"granted_role", role(user.granted_role)},
              {"claim_role", role(user.claim_role)},
              {"role", role(user.EffectiveRole())},
              {"person_id", user.person_id.empty() ? Json(nullptr) : Json(user.person_id)},
              {"created_at", FormatTimestamp(user.created_at)},
              {"last_seen", FormatTimestamp(user.last_seen)}};
}

Json ApiTokenJson(const store::ApiToken& token) {
  return Json{{"id", token.id},
              {"name", token.name},
              {"user_id", token.user_id},
              {"role", store::RoleName(token.role)},
              {"created_by", token.created_by},
              {"created_at", FormatTimestamp(token.created_at)},
              {"expires_at", OptionalTime(token.expires_at)},
              {"revoked_at", OptionalTime(token.revoked_at)}};
}

std::string AssessmentPath(const std::string& sha256) {
  return std::string(kAdminPathPrefix) + "assessments/" + sha256;
}

Json AssessmentSummaryJson(const store::Assessment& a) {
  return Json{{"sha256", a.sha256},
              {"package", a.package},
              {"version", a.version},
              {"score", a.score},
              {"band", a.band},
              {"file_size", a.file_size},
              {"uploaded_by", a.uploaded_by},
              {"uploaded_at", FormatTimestamp(a.uploaded_at)},
              {"report", AssessmentPath(a.sha256)}};
}

}  // namespace appban::server::admin
