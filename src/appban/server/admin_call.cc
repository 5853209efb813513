#include "appban/server/admin_call.h"

#include <algorithm>

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

decide::PolicyAdmin Call::Admin() const {
  return decide::PolicyAdmin(*context.store, token.name, [this] { return Now(); });
}

store::AuditRecord Call::Audit() const {
  store::AuditRecord record;
  record.actor = token.name;
  record.at = Now();
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

Json ApiTokenJson(const store::ApiToken& token) {
  return Json{{"id", token.id},
              {"name", token.name},
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
