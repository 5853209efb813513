#include "appban/server/admin_api.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "appban/apk/apk.h"
#include "appban/assess/report.h"
#include "appban/common/crypto.h"
#include "appban/common/data_dir.h"
#include "appban/common/text.h"
#include "appban/policy/bundle.h"
#include "appban/policy/json_util.h"
#include "appban/policy/model.h"
#include "appban/protocol/messages.h"
#include "appban/server/compliance.h"
#include "appban/server/config.h"
#include "appban/server/metrics.h"
#include "appban/store/admin.h"

namespace appban::server {
namespace {

using net::HttpRequest;
using net::HttpResponse;
using policy::Json;

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

// A Status about an object the request BODY names (a rule's scope group, a waiver's rule): that the
// object is missing is a fault of the body (400), not of the URL (404).
HttpResponse ErrorFromBodyReference(const Status& status) {
  if (status.code() == StatusCode::kNotFound) return BadRequest(status.message());
  return ErrorFrom(status);
}

Json OptionalTime(const std::optional<UnixSeconds>& at) {
  return at ? Json(policy::FormatTimestamp(*at)) : Json(nullptr);
}
// 0 means "never" for the device fields that use it.
Json TimeOrNull(UnixSeconds at) { return at > 0 ? Json(policy::FormatTimestamp(at)) : Json(nullptr); }

// ---------------------------------------------------------------------------------------------
// Strict input helpers

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

// Strict non-negative decimal integer from the query string.
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

// ---------------------------------------------------------------------------------------------
// The call: who is asking, and what they may do.

enum class Need { kRead, kAnalyst, kAdmin };

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

struct Call {
  WorkerContext& context;
  const HttpRequest& request;
  store::ApiToken token;
  std::vector<std::string> params;  // the {placeholders} of the matched route, in order

  UnixSeconds Now() const { return context.clock ? context.clock() : store::SystemClockNow(); }
  store::PolicyAdmin Admin() const {
    return store::PolicyAdmin(*context.store, token.name, [this] { return Now(); });
  }
  store::AuditRecord Audit() const {
    store::AuditRecord record;
    record.actor = token.name;
    record.at = Now();
    return record;
  }
  const ServerConfig& config() const { return ConfigOf(context); }

  // The body as a JSON object; an empty body is {} when `empty_ok`.
  Result<Json> Body(bool empty_ok) const {
    std::string_view body = request.body;
    bool blank =
        std::all_of(body.begin(), body.end(), [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; });
    if (blank) {
      if (empty_ok) return Json::object();
      return Status::InvalidArgument("request body: empty; a JSON object is required");
    }
    auto parsed =
        policy::ParseJsonBounded(body, config().limits.json_max_bytes, kAdminLimits.max_json_depth, "request body");
    if (!parsed.ok()) return Status::InvalidArgument(parsed.status().message());
    if (!parsed->is_object()) return Status::InvalidArgument("request body: must be a JSON object");
    return parsed;
  }
};

using HandlerFn = HttpResponse (*)(Call&);

// Validates a path segment that names an object.
Status CheckPathIdentifier(const std::string& value, std::string_view what) {
  return policy::ValidateIdentifier(value, what).WithContext("path");
}

// ---------------------------------------------------------------------------------------------
// JSON views of fleet objects

Json ApiTokenJson(const store::ApiToken& token) {
  return Json{{"id", token.id},
              {"name", token.name},
              {"role", store::RoleName(token.role)},
              {"created_by", token.created_by},
              {"created_at", policy::FormatTimestamp(token.created_at)},
              {"expires_at", OptionalTime(token.expires_at)},
              {"revoked_at", OptionalTime(token.revoked_at)}};
}

std::string_view EnrollmentTokenState(const store::EnrollmentToken& token, UnixSeconds now) {
  if (token.revoked_at) return "revoked";
  if (token.used_at) return "used";
  if (now >= token.expires_at) return "expired";
  return "active";
}

Json EnrollmentTokenJson(const store::EnrollmentToken& token, UnixSeconds now) {
  return Json{{"id", token.id},
              {"group", token.group},
              {"note", token.note},
              {"created_by", token.created_by},
              {"created_at", policy::FormatTimestamp(token.created_at)},
              {"expires_at", policy::FormatTimestamp(token.expires_at)},
              {"used_at", OptionalTime(token.used_at)},
              {"used_by_device", token.used_by_device.empty() ? Json(nullptr) : Json(token.used_by_device)},
              {"revoked_at", OptionalTime(token.revoked_at)},
              {"state", EnrollmentTokenState(token, now)}};
}

Json DeviceJson(const store::Device& device) {
  return Json{{"id", device.id},
              {"hostname", device.hostname},
              {"platform", device.platform},
              {"agent_version", device.agent_version},
              {"group", device.group},
              {"enrolled_at", policy::FormatTimestamp(device.enrolled_at)},
              {"enrollment_token_id", device.enrollment_token_id},
              {"revoked_at", OptionalTime(device.revoked_at)},
              {"revoked_by", device.revoked_by},
              {"applied_version", device.applied_version},
              {"applied_rules_hash", device.applied_rules_hash},
              {"inventory_hash", device.inventory_hash},
              {"inventory_at", OptionalTime(device.inventory_at)},
              {"last_seen", TimeOrNull(device.last_seen)},
              {"evaluated_version", device.evaluated_version}};
}

Json RuleStateJson(const store::DeviceRuleState& state) {
  return Json{{"rule_id", state.rule_id},
              {"state", store::ComplianceStateName(state.state)},
              {"since", policy::FormatTimestamp(state.since)},
              {"had_app", state.had_app},
              {"compliant_at", OptionalTime(state.compliant_at)},
              {"version", state.version}};
}

Json EventJson(const store::DeviceEvent& event) {
  return Json{{"seq", event.seq},       {"at", policy::FormatTimestamp(event.at)},
              {"kind", event.kind},     {"platform", event.platform},
              {"app", event.app},       {"rule_id", event.rule_id},
              {"detail", event.detail}, {"received_at", policy::FormatTimestamp(event.received_at)}};
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
              {"uploaded_at", policy::FormatTimestamp(a.uploaded_at)},
              {"report", AssessmentPath(a.sha256)}};
}

// The policy groups that list the device, plus the group its enrolment token named.
Result<std::vector<std::string>> GroupsOfDevice(store::Store& store, const store::Device& device) {
  APPBAN_ASSIGN_OR_RETURN(auto groups, store.ListGroups());
  std::vector<std::string> names;
  if (!device.group.empty()) names.push_back(device.group);
  for (const auto& group : groups) {
    if (std::find(group.devices.begin(), group.devices.end(), device.id) != group.devices.end())
      names.push_back(group.name);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

// ---------------------------------------------------------------------------------------------
// whoami, rules

HttpResponse WhoAmI(Call& call) {
  Json body = ApiTokenJson(call.token);
  body["actor"] = call.token.name;
  return JsonResponse(200, body);
}

HttpResponse ListRules(Call& call) {
  auto rules = call.context.store->ListRules();
  if (!rules.ok()) return ErrorFrom(rules.status());
  Json list = Json::array();
  for (const auto& rule : *rules) list.push_back(policy::RuleToJson(rule, true));
  return JsonResponse(200, Json{{"rules", list}});
}

Status CheckProposalShape(const Json& body) {
  for (std::string_view lifecycle : {"state", "proposed_by", "history", "revision"}) {
    if (body.contains(lifecycle)) {
      return Status::InvalidArgument("rule: member \"" + std::string(lifecycle) +
                                     "\" is set by the server; a proposal carries no lifecycle");
    }
  }
  // A proposal is the rule without its lifecycle, plus the proposer's note.
  APPBAN_RETURN_IF_ERROR(
      CheckMembers(body,
                   {"id", "title", "targets", "action", "scope_groups", "effective_at", "effective_note", "rationale",
                    "authority", "instrument", "references", "assessments", "source", "note"},
                   "rule"));
  if (auto it = body.find("targets"); it != body.end() && it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      if ((*it)[i].is_object()) {
        APPBAN_RETURN_IF_ERROR(
            CheckMembers((*it)[i], {"kind", "value", "unverified"}, "rule: targets[" + std::to_string(i) + "]"));
      }
    }
  }
  if (auto it = body.find("assessments"); it != body.end() && it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      if ((*it)[i].is_object()) {
        APPBAN_RETURN_IF_ERROR(
            CheckMembers((*it)[i], {"apk_sha256", "report"}, "rule: assessments[" + std::to_string(i) + "]"));
      }
    }
  }
  return Status::Ok();
}

HttpResponse ProposeRule(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  Status shape = CheckProposalShape(*body);
  if (!shape.ok()) return ErrorFrom(shape);
  auto note = StringMember(*body, "note", false, store::kFleetLimits.max_note_bytes);
  if (!note.ok()) return ErrorFrom(note.status().WithContext("rule"));
  Json rule_json = *body;
  rule_json.erase("note");
  auto rule = policy::RuleFromJson(rule_json);
  if (!rule.ok()) return BadRequest(rule.status().message());
  // A rule may cite only assessments the server holds; the citation then points at the report.
  for (size_t i = 0; i < rule->assessments.size(); ++i) {
    auto& cited = rule->assessments[i];
    auto held = call.context.fleet->GetAssessment(cited.apk_sha256);
    if (!held.ok()) {
      if (held.status().code() != StatusCode::kNotFound) return ErrorFrom(held.status());
      return BadRequest("rule: assessments[" + std::to_string(i) + "].apk_sha256: the server holds no assessment of " +
                        cited.apk_sha256 + "; upload the APK first (POST /v1/admin/assessments)");
    }
    cited.report = AssessmentPath(cited.apk_sha256);
  }
  auto proposed = call.Admin().ProposeRule(std::move(*rule), *note);
  if (!proposed.ok()) return ErrorFromBodyReference(proposed.status());
  return JsonResponse(201, policy::RuleToJson(*proposed, true));
}

HttpResponse GetRule(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "rule id"); !s.ok()) return ErrorFrom(s);
  auto rule = call.context.store->GetRule(id);
  if (!rule.ok()) return ErrorFrom(rule.status());
  return JsonResponse(200, policy::RuleToJson(*rule, true));
}

enum class RuleStep { kApprove, kPublish, kRevoke };

HttpResponse RuleTransition(Call& call, RuleStep step) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "rule id"); !s.ok()) return ErrorFrom(s);
  bool revoke = step == RuleStep::kRevoke;
  auto body = call.Body(!revoke);
  if (!body.ok()) return ErrorFrom(body.status());
  const char* member = revoke ? "reason" : "note";
  if (Status s = CheckMembers(*body, {member}, "body"); !s.ok()) return ErrorFrom(s);
  auto text = StringMember(*body, member, revoke, store::kFleetLimits.max_note_bytes);
  if (!text.ok()) return ErrorFrom(text.status());
  store::PolicyAdmin admin = call.Admin();
  Result<policy::Rule> rule = Status::Internal("unreachable");
  switch (step) {
    case RuleStep::kApprove:
      rule = admin.ApproveRule(id, *text);
      break;
    case RuleStep::kPublish:
      rule = admin.PublishRule(id, *text);
      break;
    case RuleStep::kRevoke:
      rule = admin.RevokeRule(id, *text);
      break;
  }
  if (!rule.ok()) return ErrorFrom(rule.status());
  return JsonResponse(200, policy::RuleToJson(*rule, true));
}

HttpResponse ApproveRule(Call& call) { return RuleTransition(call, RuleStep::kApprove); }
HttpResponse PublishRule(Call& call) { return RuleTransition(call, RuleStep::kPublish); }
HttpResponse RevokeRule(Call& call) { return RuleTransition(call, RuleStep::kRevoke); }

// ---------------------------------------------------------------------------------------------
// waivers, groups

HttpResponse ListWaivers(Call& call) {
  auto waivers = call.context.store->ListWaivers();
  if (!waivers.ok()) return ErrorFrom(waivers.status());
  UnixSeconds now = call.Now();
  Json list = Json::array();
  for (const auto& waiver : *waivers) {
    Json json = policy::WaiverToJson(waiver, true);
    json["active"] = waiver.ActiveAt(now);
    list.push_back(std::move(json));
  }
  return JsonResponse(200, Json{{"waivers", list}});
}

HttpResponse AddWaiver(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  for (std::string_view server_set : {"approved_by", "created_at", "revoked_at", "revoked_by", "revision"}) {
    if (body->contains(server_set)) {
      return BadRequest("waiver: member \"" + std::string(server_set) + "\" is set by the server");
    }
  }
  if (Status s = CheckMembers(
          *body, {"id", "rule_id", "subject_kind", "subject", "justification", "requested_by", "expires_at"}, "waiver");
      !s.ok()) {
    return ErrorFrom(s);
  }
  // The approver is the caller and the creation time is now; WaiverFromJson checks the rest.
  Json json = *body;
  json["approved_by"] = call.token.name;
  json["created_at"] = policy::FormatTimestamp(call.Now());
  auto waiver = policy::WaiverFromJson(json);
  if (!waiver.ok()) return BadRequest(waiver.status().message());
  if (waiver->subject_kind == policy::WaiverSubject::kDevice) {
    auto device = call.context.fleet->GetDevice(waiver->subject);
    if (!device.ok()) {
      if (device.status().code() != StatusCode::kNotFound) return ErrorFrom(device.status());
      return BadRequest("waiver " + waiver->id + ": subject: no enrolled device " + waiver->subject);
    }
  }
  auto added = call.Admin().AddWaiver(std::move(*waiver));
  if (!added.ok()) return ErrorFromBodyReference(added.status());
  return JsonResponse(201, policy::WaiverToJson(*added, true));
}

HttpResponse RevokeWaiver(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "waiver id"); !s.ok()) return ErrorFrom(s);
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"reason"}, "body"); !s.ok()) return ErrorFrom(s);
  auto reason = StringMember(*body, "reason", true, store::kFleetLimits.max_note_bytes);
  if (!reason.ok()) return ErrorFrom(reason.status());
  auto waiver = call.Admin().RevokeWaiver(id, *reason);
  if (!waiver.ok()) return ErrorFrom(waiver.status());
  return JsonResponse(200, policy::WaiverToJson(*waiver, true));
}

HttpResponse ListGroups(Call& call) {
  auto groups = call.context.store->ListGroups();
  if (!groups.ok()) return ErrorFrom(groups.status());
  Json list = Json::array();
  for (const auto& group : *groups) list.push_back(policy::GroupToJson(group));
  return JsonResponse(200, Json{{"groups", list}});
}

HttpResponse GetGroup(Call& call) {
  const std::string& name = call.params[0];
  if (Status s = CheckPathIdentifier(name, "group name"); !s.ok()) return ErrorFrom(s);
  auto group = call.context.store->GetGroup(name);
  if (!group.ok()) return ErrorFrom(group.status());
  return JsonResponse(200, policy::GroupToJson(*group));
}

// Every listed device must be enrolled: a typo would otherwise silently scope nothing. The error
// response when one is not.
std::optional<HttpResponse> CheckDevicesExist(Call& call, const std::vector<std::string>& devices) {
  for (size_t i = 0; i < devices.size(); ++i) {
    auto device = call.context.fleet->GetDevice(devices[i]);
    if (device.ok()) continue;
    if (device.status().code() != StatusCode::kNotFound) return ErrorFrom(device.status());
    return BadRequest("devices[" + std::to_string(i) + "]: no enrolled device " + devices[i]);
  }
  return std::nullopt;
}

HttpResponse CreateGroup(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"name", "description", "devices"}, "group"); !s.ok()) return ErrorFrom(s);
  policy::Group group;
  auto name = StringMember(*body, "name", true, store::kFleetLimits.max_name_bytes);
  if (!name.ok()) return ErrorFrom(name.status());
  group.name = *name;
  auto description = StringMember(*body, "description", false, store::kFleetLimits.max_note_bytes);
  if (!description.ok()) return ErrorFrom(description.status());
  group.description = *description;
  auto devices = IdentifierArrayMember(*body, "devices", false,
                                       static_cast<size_t>(kAdminLimits.max_group_devices_per_request), "device id");
  if (!devices.ok()) return ErrorFrom(devices.status());
  group.devices = *devices;
  if (Status s = policy::ValidateGroup(group); !s.ok()) return BadRequest(s.message());
  if (auto missing = CheckDevicesExist(call, group.devices)) return std::move(*missing);
  auto existing = call.context.store->GetGroup(group.name);
  if (existing.ok()) return ErrorResponse(409, "conflict", "group " + group.name + " already exists");
  auto created = call.Admin().CreateGroup(std::move(group));
  if (!created.ok()) return ErrorFrom(created.status());
  return JsonResponse(201, policy::GroupToJson(*created));
}

HttpResponse AddGroupDevices(Call& call) {
  const std::string& name = call.params[0];
  if (Status s = CheckPathIdentifier(name, "group name"); !s.ok()) return ErrorFrom(s);
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"devices"}, "body"); !s.ok()) return ErrorFrom(s);
  auto devices = IdentifierArrayMember(*body, "devices", true,
                                       static_cast<size_t>(kAdminLimits.max_group_devices_per_request), "device id");
  if (!devices.ok()) return ErrorFrom(devices.status());
  if (devices->empty()) return BadRequest("devices: must list at least one device");
  if (auto missing = CheckDevicesExist(call, *devices)) return std::move(*missing);
  auto group = call.Admin().AddDevices(name, *devices);
  if (!group.ok()) return ErrorFrom(group.status());
  return JsonResponse(200, policy::GroupToJson(*group));
}

HttpResponse DeleteGroup(Call& call) {
  const std::string& name = call.params[0];
  if (Status s = CheckPathIdentifier(name, "group name"); !s.ok()) return ErrorFrom(s);
  if (Status s = call.Admin().DeleteGroup(name); !s.ok()) return ErrorFrom(s);
  return JsonResponse(200, Json{{"deleted", name}});
}

// ---------------------------------------------------------------------------------------------
// publish, bundles

Json BundleSummary(const policy::Bundle& bundle, const std::string& key_id) {
  Json rules = Json::array();
  for (const auto& rule : bundle.rules) rules.push_back(rule.id);
  return Json{{"version", bundle.version},
              {"rules_hash", bundle.rules_hash},
              {"issued_at", policy::FormatTimestamp(bundle.issued_at)},
              {"not_after", policy::FormatTimestamp(bundle.not_after)},
              {"key_id", key_id},
              {"rules", rules},
              {"waivers", bundle.waivers.size()}};
}

HttpResponse Publish(Call& call) {
  if (call.context.refresh_keys) call.context.refresh_keys();
  if (call.context.signing_key == nullptr) return ErrorResponse(503, "unavailable", "no policy signing key is loaded");
  auto body = call.Body(true);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"validity_days"}, "body"); !s.ok()) return ErrorFrom(s);
  auto days = IntegerMember(*body, "validity_days", 1, call.config().policy.max_bundle_validity_days);
  if (!days.ok()) return ErrorFrom(days.status());
  int64_t validity_days = days->value_or(call.config().policy.bundle_validity_days);
  auto envelope = call.Admin().ExportBundle(*call.context.signing_key, validity_days * 24 * 3600);
  if (!envelope.ok()) return ErrorFrom(envelope.status());
  // Read back what was signed, with the key devices pin: a bundle the fleet would refuse must not
  // be reported as published.
  policy::VerifyOptions options;
  options.trusted_keys = {call.context.signing_key->public_key()};
  options.now = call.Now();
  auto verified = policy::VerifyBundle(*envelope, options);
  if (!verified.ok()) {
    return ErrorResponse(500, "internal", "the bundle just signed does not verify: " + verified.status().message());
  }
  if (call.context.notifier != nullptr) call.context.notifier->BundlePublished();
  return JsonResponse(201, BundleSummary(verified->bundle, verified->key_id));
}

HttpResponse LatestBundle(Call& call) {
  auto version = call.context.store->LatestBundleVersion();
  if (!version.ok()) return ErrorFrom(version.status());
  if (*version == 0) return ErrorResponse(404, "not_found", "no bundle has been published yet");
  auto record = call.context.store->GetBundle(*version);
  if (!record.ok()) return ErrorFrom(record.status());
  Json body{{"version", record->version},
            {"issued_at", policy::FormatTimestamp(record->issued_at)},
            {"rules_hash", record->rules_hash},
            {"key_id", record->key_id},
            {"envelope", record->envelope}};
  // The contents, when the envelope verifies with the current key (after a key rotation an old
  // bundle is served as recorded, without the decoded summary).
  if (call.context.signing_key != nullptr) {
    policy::VerifyOptions options;
    options.trusted_keys = {call.context.signing_key->public_key()};
    options.now = record->issued_at;
    if (auto verified = policy::VerifyBundle(record->envelope, options); verified.ok()) {
      Json summary = BundleSummary(verified->bundle, verified->key_id);
      body["not_after"] = summary["not_after"];
      body["rules"] = summary["rules"];
      body["waivers"] = summary["waivers"];
    }
  }
  return JsonResponse(200, body);
}

// ---------------------------------------------------------------------------------------------
// devices

HttpResponse ListDevices(Call& call) {
  auto offset = QueryInteger(call.request, "offset", 0, INT64_C(1) << 40);
  if (!offset.ok()) return ErrorFrom(offset.status());
  auto limit = QueryInteger(call.request, "limit", 1, kAdminLimits.max_page);
  if (!limit.ok()) return ErrorFrom(limit.status());
  int64_t first = offset->value_or(0);
  int64_t count = limit->value_or(kAdminLimits.default_page);
  auto total = call.context.fleet->CountDevices();
  if (!total.ok()) return ErrorFrom(total.status());
  auto devices = call.context.fleet->ListDevices(first, count);
  if (!devices.ok()) return ErrorFrom(devices.status());
  Json list = Json::array();
  for (const auto& device : *devices) list.push_back(DeviceJson(device));
  return JsonResponse(200, Json{{"total", *total}, {"offset", first}, {"limit", count}, {"devices", list}});
}

HttpResponse GetDevice(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "device id"); !s.ok()) return ErrorFrom(s);
  auto device = call.context.fleet->GetDevice(id);
  if (!device.ok()) return ErrorFrom(device.status());
  auto groups = GroupsOfDevice(*call.context.store, *device);
  if (!groups.ok()) return ErrorFrom(groups.status());
  Json body = DeviceJson(*device);
  body["groups"] = *groups;

  body["inventory"] = nullptr;
  body["decisions"] = nullptr;
  std::vector<policy::InstalledApp> apps;
  bool have_inventory = false;
  if (!device->inventory_json.empty()) {
    auto parsed = policy::ParseJsonBounded(device->inventory_json, store::kFleetLimits.max_inventory_json_bytes,
                                           protocol::kProtocolLimits.max_json_depth, "stored inventory");
    if (parsed.ok()) {
      body["inventory"] = *parsed;
      auto read = protocol::InventoryFromJsonArray(*parsed, "inventory");
      if (read.ok()) {
        apps = std::move(*read);
        have_inventory = true;
      } else {
        body["inventory_error"] = read.status().message();
      }
    } else {
      body["inventory_error"] = parsed.status().message();
    }
  }
  // What the latest bundle decides for each installed app of this device.
  if (call.context.latest_bundle) {
    const PublishedBundle& latest = call.context.latest_bundle();
    body["bundle_version"] = latest.version;
    if (latest.index && have_inventory) {
      policy::DeviceContext device_context{device->id, *groups};
      auto decisions = latest.index->EvaluateAll(apps, device_context, call.Now());
      body["decisions"] = policy::DecisionsToJson(apps, decisions);
    }
  }
  auto states = call.context.fleet->ListDeviceRuleStates(id);
  if (!states.ok()) return ErrorFrom(states.status());
  Json state_list = Json::array();
  for (const auto& state : *states) state_list.push_back(RuleStateJson(state));
  body["rule_states"] = state_list;
  auto events = call.context.fleet->ListEvents(id, kAdminLimits.recent_events);
  if (!events.ok()) return ErrorFrom(events.status());
  Json event_list = Json::array();
  for (const auto& event : *events) event_list.push_back(EventJson(event));
  body["events"] = event_list;
  return JsonResponse(200, body);
}

HttpResponse RevokeDevice(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "device id"); !s.ok()) return ErrorFrom(s);
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"reason"}, "body"); !s.ok()) return ErrorFrom(s);
  auto reason = StringMember(*body, "reason", true, store::kFleetLimits.max_note_bytes);
  if (!reason.ok()) return ErrorFrom(reason.status());
  store::AuditRecord audit = call.Audit();
  if (Status s = call.context.fleet->RevokeDevice(id, audit); !s.ok()) return ErrorFrom(s);
  if (call.context.notifier != nullptr) call.context.notifier->DeviceRevoked(id);
  return JsonResponse(200, Json{{"device_id", id},
                                {"revoked_at", policy::FormatTimestamp(audit.at)},
                                {"revoked_by", audit.actor},
                                {"reason", *reason}});
}

// ---------------------------------------------------------------------------------------------
// enrolment tokens, API tokens

HttpResponse CreateEnrollmentTokens(Call& call) {
  auto body = call.Body(true);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"group", "ttl_seconds", "note", "count"}, "body"); !s.ok()) return ErrorFrom(s);
  auto group = StringMember(*body, "group", false, store::kFleetLimits.max_name_bytes);
  if (!group.ok()) return ErrorFrom(group.status());
  auto ttl = IntegerMember(*body, "ttl_seconds", kAdminLimits.min_ttl_seconds, kAdminLimits.max_enrollment_ttl_seconds);
  if (!ttl.ok()) return ErrorFrom(ttl.status());
  auto note = StringMember(*body, "note", false, store::kFleetLimits.max_note_bytes);
  if (!note.ok()) return ErrorFrom(note.status());
  auto count = IntegerMember(*body, "count", 1, kAdminLimits.max_enrollment_tokens);
  if (!count.ok()) return ErrorFrom(count.status());
  if (!group->empty()) {
    if (Status s = policy::ValidateIdentifier(*group, "group"); !s.ok()) return BadRequest(s.message());
    // Checked up front so a batch cannot stop half-way over a missing group.
    auto found = call.context.store->GetGroup(*group);
    if (!found.ok()) return ErrorFromBodyReference(found.status().WithContext("group"));
  }
  store::AuditRecord audit = call.Audit();
  UnixSeconds expires_at = audit.at + ttl->value_or(kAdminLimits.default_enrollment_ttl_seconds);
  // One transaction for the whole batch (one fsync, one audit entry per token): all or none.
  auto created = call.context.fleet->CreateEnrollmentTokens(*group, expires_at, *note,
                                                            static_cast<size_t>(count->value_or(1)), audit);
  if (!created.ok()) return ErrorFromBodyReference(created.status());
  Json tokens = Json::array();
  for (const store::CreatedEnrollmentToken& token : *created) {
    Json json = EnrollmentTokenJson(token.token, audit.at);
    json["token"] = token.presented;
    tokens.push_back(std::move(json));
  }
  return JsonResponse(201, Json{{"tokens", tokens}});
}

HttpResponse ListEnrollmentTokens(Call& call) {
  auto tokens = call.context.fleet->ListEnrollmentTokens();
  if (!tokens.ok()) return ErrorFrom(tokens.status());
  UnixSeconds now = call.Now();
  Json list = Json::array();
  for (const auto& token : *tokens) list.push_back(EnrollmentTokenJson(token, now));
  return JsonResponse(200, Json{{"tokens", list}});
}

HttpResponse RevokeEnrollmentToken(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "enrollment token id"); !s.ok()) return ErrorFrom(s);
  if (!call.request.body.empty()) {
    auto body = call.Body(true);
    if (!body.ok()) return ErrorFrom(body.status());
    if (Status s = CheckMembers(*body, {}, "body"); !s.ok()) return ErrorFrom(s);
  }
  if (Status s = call.context.fleet->RevokeEnrollmentToken(id, call.Audit()); !s.ok()) return ErrorFrom(s);
  return JsonResponse(200, Json{{"revoked", id}});
}

HttpResponse CreateApiToken(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"name", "role", "ttl_seconds"}, "body"); !s.ok()) return ErrorFrom(s);
  auto name = StringMember(*body, "name", true, store::kFleetLimits.max_name_bytes);
  if (!name.ok()) return ErrorFrom(name.status());
  if (Status s = policy::ValidateIdentifier(*name, "name"); !s.ok()) return BadRequest(s.message());
  auto role_name = StringMember(*body, "role", true, 32);
  if (!role_name.ok()) return ErrorFrom(role_name.status());
  auto role = store::ParseRole(*role_name);
  if (!role.ok()) return BadRequest("role: " + role.status().message());
  auto ttl = IntegerMember(*body, "ttl_seconds", kAdminLimits.min_ttl_seconds, kAdminLimits.max_api_token_ttl_seconds);
  if (!ttl.ok()) return ErrorFrom(ttl.status());
  store::AuditRecord audit = call.Audit();
  std::optional<UnixSeconds> expires_at;
  if (*ttl) expires_at = audit.at + **ttl;
  auto created = call.context.fleet->CreateApiToken(*name, *role, expires_at, audit);
  if (!created.ok()) return ErrorFrom(created.status());
  Json json = ApiTokenJson(created->token);
  json["token"] = created->presented;
  return JsonResponse(201, json);
}

HttpResponse ListApiTokens(Call& call) {
  auto tokens = call.context.fleet->ListApiTokens();
  if (!tokens.ok()) return ErrorFrom(tokens.status());
  Json list = Json::array();
  for (const auto& token : *tokens) list.push_back(ApiTokenJson(token));
  return JsonResponse(200, Json{{"tokens", list}});
}

HttpResponse RevokeApiToken(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "token id"); !s.ok()) return ErrorFrom(s);
  if (!call.request.body.empty()) {
    auto body = call.Body(true);
    if (!body.ok()) return ErrorFrom(body.status());
    if (Status s = CheckMembers(*body, {}, "body"); !s.ok()) return ErrorFrom(s);
  }
  if (Status s = call.context.fleet->RevokeApiToken(id, call.Audit()); !s.ok()) return ErrorFrom(s);
  return JsonResponse(200, Json{{"revoked", id}});
}

// ---------------------------------------------------------------------------------------------
// assessments

// A file under the server's data directory that is removed when this goes out of scope.
class TempFile {
 public:
  static Result<TempFile> Write(const std::string& dir, std::string_view contents) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) return Status::Unavailable("cannot create " + dir + ": " + error.message());
    std::string path = dir + "/upload-XXXXXX";
    int fd = ::mkstemp(path.data());
    if (fd < 0) return Status::Unavailable("cannot create a temporary file in " + dir + ": " + std::strerror(errno));
    TempFile file(path);
    size_t written = 0;
    while (written < contents.size()) {
      ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int saved = errno;
        ::close(fd);
        return Status::Unavailable("cannot write " + path + ": " + std::strerror(saved));
      }
      written += static_cast<size_t>(n);
    }
    if (::close(fd) != 0) return Status::Unavailable("cannot close " + path + ": " + std::strerror(errno));
    return file;
  }
  TempFile(TempFile&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempFile& operator=(TempFile&&) = delete;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

HttpResponse UploadAssessment(Call& call) {
  std::string content_type = AsciiLower(call.request.Header("content-type"));
  if (size_t semicolon = content_type.find(';'); semicolon != std::string::npos) content_type.resize(semicolon);
  while (!content_type.empty() && content_type.back() == ' ') content_type.pop_back();
  if (content_type != "application/vnd.android.package-archive" && content_type != "application/octet-stream") {
    return ErrorResponse(415, "unsupported_media_type",
                         "Content-Type must be application/vnd.android.package-archive or application/octet-stream "
                         "(the APK as the raw body), not " +
                             Quoted(content_type));
  }
  const std::string& bytes = call.request.body;
  if (bytes.empty()) return BadRequest("request body: empty; send the APK file as the body");
  if (bytes.size() > call.config().limits.apk_max_bytes) {
    return ErrorResponse(413, "body_too_large", "the APK exceeds limits.apk_max_bytes");
  }
  std::string sha256 = Sha256Hex(AsBytes(bytes));

  auto existing = call.context.fleet->GetAssessment(sha256);
  if (existing.ok()) return JsonResponse(200, AssessmentSummaryJson(*existing));
  if (existing.status().code() != StatusCode::kNotFound) return ErrorFrom(existing.status());

  if (call.context.data_dir.empty()) return ErrorResponse(500, "internal", "the server has no data directory");
  auto file = TempFile::Write(call.context.data_dir + "/tmp", bytes);
  if (!file.ok()) return ErrorFrom(file.status());
  auto apk = apk::Apk::Open(file->path());
  if (!apk.ok())
    return ErrorResponse(422, "apk_invalid", "the upload is not a readable APK: " + apk.status().ToString());

  auto knowledge_dir = ResolveDataDir();
  if (!knowledge_dir.ok()) return ErrorResponse(500, "internal", knowledge_dir.status().message());
  auto knowledge = assess::LoadKnowledgeBase(*knowledge_dir);
  if (!knowledge.ok()) return ErrorResponse(500, "internal", knowledge.status().ToString());
  auto model = assess::LoadRiskModel(*knowledge_dir + "/risk-model.toml");
  if (!model.ok()) return ErrorResponse(500, "internal", model.status().ToString());
  assess::Assessment assessment = assess::Assess(*apk, *knowledge, *model);
  // The temporary name means nothing to a reader of the report; the content hash does.
  assessment.file["path"] = sha256 + ".apk";
  auto report = assess::AssessmentJson(assessment);

  store::Assessment record;
  record.sha256 = sha256;
  record.package = assessment.package();
  record.version = assessment.app.value("version_name", "");
  record.score = assessment.risk.score;
  record.band = std::string(assess::VerdictName(assessment.risk.verdict));
  record.report_json = report.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  record.uploaded_by = call.token.name;
  record.uploaded_at = call.Now();
  record.file_size = static_cast<int64_t>(bytes.size());
  auto stored = call.context.fleet->PutAssessment(record, call.Audit());
  if (!stored.ok()) return ErrorFrom(stored.status());
  Json summary = AssessmentSummaryJson(record);
  summary["level"] = assess::RiskLevelName(assessment.risk.level);
  return JsonResponse(*stored ? 201 : 200, summary);
}

HttpResponse ListAssessments(Call& call) {
  auto list = call.context.fleet->ListAssessments();
  if (!list.ok()) return ErrorFrom(list.status());
  Json items = Json::array();
  for (const auto& a : *list) items.push_back(AssessmentSummaryJson(a));
  return JsonResponse(200, Json{{"assessments", items}});
}

HttpResponse GetAssessment(Call& call) {
  auto sha = policy::NormalizeHex(call.params[0], 64, "assessment SHA-256");
  if (!sha.ok()) return BadRequest("path: " + sha.status().message());
  auto assessment = call.context.fleet->GetAssessment(*sha);
  if (!assessment.ok()) return ErrorFrom(assessment.status());
  HttpResponse response;
  response.body = assessment->report_json;  // stored as produced: appban.assess/1
  return response;
}

// ---------------------------------------------------------------------------------------------
// compliance

struct ComplianceInputs {
  const PublishedBundle* bundle = nullptr;
  std::vector<ComplianceRule> rules;
  ComplianceParams params;
};

ComplianceInputs LoadComplianceInputs(Call& call) {
  ComplianceInputs inputs;
  inputs.params.now = call.Now();
  inputs.params.stale_after_seconds = call.config().StaleAfterSeconds();
  if (!call.context.latest_bundle) return inputs;
  const PublishedBundle& latest = call.context.latest_bundle();
  if (latest.version == 0 || !latest.bundle) return inputs;
  inputs.bundle = &latest;
  for (const auto& rule : latest.bundle->rules) {
    ComplianceRule entry{rule.id, rule.action, rule.scope_groups, latest.version, latest.issued_at};
    if (auto it = latest.rule_first_published.find(rule.id); it != latest.rule_first_published.end()) {
      entry.first_version = it->second.first;
      entry.first_published_at = it->second.second;
    }
    inputs.rules.push_back(std::move(entry));
  }
  return inputs;
}

// The fleet's membership, read page by page so only one page of store::Device is held at a time
// (100,000 full Device records would be tens of megabytes; the membership keeps ids and groups).
Result<FleetMembership> LoadMembership(Call& call) {
  FleetMembership fleet;
  constexpr int64_t kPage = 10000;
  for (int64_t offset = 0;; offset += kPage) {
    APPBAN_ASSIGN_OR_RETURN(auto page, call.context.fleet->ListDevices(offset, kPage));
    fleet.Add(page);
    if (static_cast<int64_t>(page.size()) < kPage) break;
  }
  APPBAN_ASSIGN_OR_RETURN(auto groups, call.context.store->ListGroups());
  fleet.Finish(groups);
  return fleet;
}

Json TimeJson(const TimeToCompliance& time) {
  auto optional = [](const std::optional<int64_t>& v) { return v ? Json(*v) : Json(nullptr); };
  return Json{{"samples", time.samples},
              {"median_seconds", optional(time.median_seconds)},
              {"p95_seconds", optional(time.p95_seconds)},
              {"max_seconds", optional(time.max_seconds)},
              {"method", "nearest-rank"}};
}

Json RuleComplianceJson(const RuleCompliance& rule) {
  return Json{{"rule_id", rule.rule.id},
              {"action", policy::ActionName(rule.rule.action)},
              {"scope_groups", rule.rule.scope_groups},
              {"first_version", rule.rule.first_version},
              {"first_published_at", policy::FormatTimestamp(rule.rule.first_published_at)},
              {"targeted", rule.targeted},
              {"compliant", rule.compliant},
              {"remediated", rule.remediated},
              {"violating", rule.violating},
              {"waived", rule.waived},
              {"pending", rule.pending},
              {"stale", rule.stale},
              {"time_to_compliance", TimeJson(rule.time_to_compliance)}};
}

Json ComplianceHeader(const ComplianceInputs& inputs) {
  return Json{{"bundle_version", inputs.bundle ? inputs.bundle->version : 0},
              {"generated_at", policy::FormatTimestamp(inputs.params.now)},
              {"stale_after_seconds", inputs.params.stale_after_seconds}};
}

const std::vector<policy::Waiver>& BundleWaivers(const ComplianceInputs& inputs) {
  static const std::vector<policy::Waiver> kNone;
  return inputs.bundle ? inputs.bundle->bundle->waivers : kNone;
}

HttpResponse FleetComplianceView(Call& call) {
  ComplianceInputs inputs = LoadComplianceInputs(call);
  auto fleet = LoadMembership(call);
  if (!fleet.ok()) return ErrorFrom(fleet.status());
  std::vector<std::vector<store::DeviceRuleState>> states;
  for (const auto& rule : inputs.rules) {
    auto rows = call.context.fleet->ListRuleStates(rule.id);
    if (!rows.ok()) return ErrorFrom(rows.status());
    states.push_back(std::move(*rows));
  }
  WaiverLookup waivers(BundleWaivers(inputs));
  FleetCompliance summary = SummarizeFleet(*fleet, inputs.rules, states, waivers, inputs.params);
  if (call.context.metrics != nullptr) {
    // appban_compliance_devices{state}: pending here excludes the stale devices counted apart.
    const FleetTotals& totals = summary.totals;
    auto count = [](int64_t value) { return static_cast<uint64_t>(std::max<int64_t>(0, value)); };
    std::array<uint64_t, kDeviceComplianceCount> by_state{};
    by_state[static_cast<size_t>(DeviceCompliance::kCompliant)] = count(totals.fully_compliant);
    by_state[static_cast<size_t>(DeviceCompliance::kViolating)] = count(totals.violating_any);
    by_state[static_cast<size_t>(DeviceCompliance::kPending)] = count(totals.pending_any - totals.stale_any);
    by_state[static_cast<size_t>(DeviceCompliance::kStale)] = count(totals.stale_any);
    call.context.metrics->SetComplianceCounts(by_state);
  }
  Json body = ComplianceHeader(inputs);
  Json rules = Json::array();
  for (const auto& rule : summary.rules) rules.push_back(RuleComplianceJson(rule));
  body["rules"] = rules;
  body["totals"] = Json{{"devices", summary.totals.devices},
                        {"fully_compliant", summary.totals.fully_compliant},
                        {"violating_any", summary.totals.violating_any},
                        {"pending_any", summary.totals.pending_any},
                        {"stale_any", summary.totals.stale_any},
                        {"untargeted", summary.totals.untargeted}};
  return JsonResponse(200, body);
}

HttpResponse RuleComplianceView(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "rule id"); !s.ok()) return ErrorFrom(s);
  auto limit = QueryInteger(call.request, "limit", 0, kAdminLimits.max_compliance_ids);
  if (!limit.ok()) return ErrorFrom(limit.status());
  ComplianceInputs inputs = LoadComplianceInputs(call);
  auto rule =
      std::find_if(inputs.rules.begin(), inputs.rules.end(), [&](const ComplianceRule& r) { return r.id == id; });
  if (rule == inputs.rules.end()) {
    return ErrorResponse(404, "not_found",
                         "rule " + id + " is not in the latest bundle (version " +
                             std::to_string(inputs.bundle ? inputs.bundle->version : 0) + ")");
  }
  auto fleet = LoadMembership(call);
  if (!fleet.ok()) return ErrorFrom(fleet.status());
  auto rows = call.context.fleet->ListRuleStates(id);
  if (!rows.ok()) return ErrorFrom(rows.status());
  WaiverLookup waivers(BundleWaivers(inputs));
  RuleCompliance summary = SummarizeRule(*fleet, *rule, *rows, waivers, inputs.params,
                                         static_cast<size_t>(limit->value_or(kAdminLimits.default_compliance_ids)));
  Json body = ComplianceHeader(inputs);
  body["rule"] = RuleComplianceJson(summary);
  body["violating_devices"] = summary.violating_devices;
  body["pending_devices"] = summary.pending_devices;
  body["lists_truncated"] = summary.lists_truncated;
  return JsonResponse(200, body);
}

HttpResponse DeviceComplianceView(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "device id"); !s.ok()) return ErrorFrom(s);
  auto device = call.context.fleet->GetDevice(id);
  if (!device.ok()) return ErrorFrom(device.status());
  device->inventory_json.clear();
  auto groups = call.context.store->ListGroups();
  if (!groups.ok()) return ErrorFrom(groups.status());
  FleetMembership fleet = FleetMembership::Build({*device}, *groups);
  const ComplianceDevice& member = fleet.devices().front();
  auto rows = call.context.fleet->ListDeviceRuleStates(id);
  if (!rows.ok()) return ErrorFrom(rows.status());
  std::map<std::string, const store::DeviceRuleState*> by_rule;
  for (const auto& row : *rows) by_rule[row.rule_id] = &row;

  ComplianceInputs inputs = LoadComplianceInputs(call);
  WaiverLookup waivers(BundleWaivers(inputs));
  Json rules = Json::array();
  for (const auto& rule : inputs.rules) {
    auto it = by_rule.find(rule.id);
    const store::DeviceRuleState* state = it == by_rule.end() ? nullptr : it->second;
    DeviceRuleStatus status = ClassifyDeviceRule(member, rule, state, waivers, inputs.params);
    Json entry{
        {"rule_id", rule.id}, {"status", DeviceRuleStatusName(status)}, {"action", policy::ActionName(rule.action)}};
    entry["since"] = state ? Json(policy::FormatTimestamp(state->since)) : Json(nullptr);
    entry["compliant_at"] = state ? OptionalTime(state->compliant_at) : Json(nullptr);
    bool counts = (status == DeviceRuleStatus::kCompliant || status == DeviceRuleStatus::kRemediated) && state &&
                  state->compliant_at;
    entry["time_to_compliance_seconds"] =
        counts ? Json(std::max<int64_t>(0, *state->compliant_at - rule.first_published_at)) : Json(nullptr);
    rules.push_back(std::move(entry));
  }
  Json body = ComplianceHeader(inputs);
  body["device_id"] = id;
  body["groups"] = member.groups;
  body["last_seen"] = TimeOrNull(member.last_seen);
  body["revoked"] = member.revoked;
  body["rules"] = rules;
  return JsonResponse(200, body);
}

// ---------------------------------------------------------------------------------------------
// audit

Json StoredJson(const std::string& text) {
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? Json(text) : parsed;
}

HttpResponse ReadAuditLog(Call& call) {
  auto after = QueryInteger(call.request, "after", 0, INT64_C(1) << 53);
  if (!after.ok()) return ErrorFrom(after.status());
  auto limit = QueryInteger(call.request, "limit", 1, kAdminLimits.max_page);
  if (!limit.ok()) return ErrorFrom(limit.status());
  auto entries = call.context.store->ReadAudit();
  if (!entries.ok()) return ErrorFrom(entries.status());
  int64_t from = after->value_or(0);
  auto want = static_cast<size_t>(limit->value_or(kAdminLimits.default_page));
  Json list = Json::array();
  int64_t last_seq = from;
  bool more = false;
  for (const auto& entry : *entries) {
    if (entry.seq <= from) continue;
    if (list.size() == want) {
      more = true;
      break;
    }
    list.push_back(Json{{"seq", entry.seq},
                        {"at", policy::FormatTimestamp(entry.at)},
                        {"actor", entry.actor},
                        {"action", entry.action},
                        {"object", entry.object},
                        {"before", StoredJson(entry.before_json)},
                        {"after", StoredJson(entry.after_json)},
                        {"prev_hash", entry.prev_hash},
                        {"hash", entry.hash}});
    last_seq = entry.seq;
  }
  return JsonResponse(200, Json{{"entries", list}, {"next_after", last_seq}, {"more", more}});
}

HttpResponse VerifyAuditLog(Call& call) {
  auto verification = call.context.store->VerifyAudit();
  if (!verification.ok()) return ErrorFrom(verification.status());
  Json problems = Json::array();
  for (const auto& problem : verification->problems)
    problems.push_back(Json{{"seq", problem.seq}, {"what", problem.what}});
  return JsonResponse(200, Json{{"ok", verification->ok()},
                                {"entries", verification->entries},
                                {"head_hash", verification->head_hash},
                                {"problems", problems}});
}

// ---------------------------------------------------------------------------------------------
// Routing

struct AdminRoute {
  std::string_view method;
  std::string_view pattern;  // below /v1/admin/; "{}" matches one path segment
  Need need;
  HandlerFn handler;
};

constexpr AdminRoute kRoutes[] = {
    {"GET", "whoami", Need::kRead, WhoAmI},
    {"GET", "rules", Need::kRead, ListRules},
    {"POST", "rules", Need::kAnalyst, ProposeRule},
    {"GET", "rules/{}", Need::kRead, GetRule},
    {"POST", "rules/{}/approve", Need::kAdmin, ApproveRule},
    {"POST", "rules/{}/publish", Need::kAdmin, PublishRule},
    {"POST", "rules/{}/revoke", Need::kAdmin, RevokeRule},
    {"GET", "waivers", Need::kRead, ListWaivers},
    {"POST", "waivers", Need::kAdmin, AddWaiver},
    {"POST", "waivers/{}/revoke", Need::kAdmin, RevokeWaiver},
    {"GET", "groups", Need::kRead, ListGroups},
    {"POST", "groups", Need::kAdmin, CreateGroup},
    {"GET", "groups/{}", Need::kRead, GetGroup},
    {"DELETE", "groups/{}", Need::kAdmin, DeleteGroup},
    {"POST", "groups/{}/devices", Need::kAdmin, AddGroupDevices},
    {"POST", "publish", Need::kAdmin, Publish},
    {"GET", "bundles/latest", Need::kRead, LatestBundle},
    {"GET", "devices", Need::kRead, ListDevices},
    {"GET", "devices/{}", Need::kRead, GetDevice},
    {"POST", "devices/{}/revoke", Need::kAdmin, RevokeDevice},
    {"GET", "enrollment-tokens", Need::kRead, ListEnrollmentTokens},
    {"POST", "enrollment-tokens", Need::kAdmin, CreateEnrollmentTokens},
    {"POST", "enrollment-tokens/{}/revoke", Need::kAdmin, RevokeEnrollmentToken},
    {"GET", "tokens", Need::kRead, ListApiTokens},
    {"POST", "tokens", Need::kAdmin, CreateApiToken},
    {"POST", "tokens/{}/revoke", Need::kAdmin, RevokeApiToken},
    {"GET", "assessments", Need::kRead, ListAssessments},
    {"POST", "assessments", Need::kAnalyst, UploadAssessment},
    {"GET", "assessments/{}", Need::kRead, GetAssessment},
    {"GET", "compliance", Need::kRead, FleetComplianceView},
    {"GET", "compliance/rules/{}", Need::kRead, RuleComplianceView},
    {"GET", "compliance/devices/{}", Need::kRead, DeviceComplianceView},
    {"GET", "audit", Need::kRead, ReadAuditLog},
    {"GET", "audit/verify", Need::kRead, VerifyAuditLog},
};

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    segments.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return segments;
}

// Matches `segments` against a route pattern, collecting the placeholders.
bool Matches(std::string_view pattern, const std::vector<std::string>& segments, std::vector<std::string>* params) {
  std::vector<std::string> parts = SplitPath(pattern);
  if (parts.size() != segments.size()) return false;
  std::vector<std::string> captured;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "{}") {
      captured.push_back(segments[i]);
    } else if (parts[i] != segments[i]) {
      return false;
    }
  }
  *params = std::move(captured);
  return true;
}

Result<store::ApiToken> Authenticate(WorkerContext& context, const HttpRequest& request, UnixSeconds now) {
  std::string_view header = request.Header("authorization");
  if (header.empty())
    return Status::InvalidArgument("no Authorization header; send \"Authorization: Bearer <API token>\"");
  std::string_view credential = protocol::BearerCredential(header);
  if (credential.empty()) return Status::InvalidArgument("the Authorization header is not \"Bearer <API token>\"");
  return context.fleet->AuthenticateApiToken(credential, now);
}

HttpResponse Dispatch(WorkerContext& context, const HttpRequest& request) {
  if (context.store == nullptr || context.fleet == nullptr) {
    return ErrorResponse(503, "unavailable", "the worker has no database connection");
  }
  std::string_view path = request.path;
  if (path.substr(0, kAdminPathPrefix.size()) != kAdminPathPrefix) {
    return ErrorResponse(404, "not_found", "not an admin path");
  }
  UnixSeconds now = context.clock ? context.clock() : store::SystemClockNow();
  auto token = Authenticate(context, request, now);
  if (!token.ok()) {
    const Status& status = token.status();
    if (status.code() == StatusCode::kUnavailable) return ErrorResponse(503, "unavailable", status.message());
    if (status.code() == StatusCode::kInternal || status.code() == StatusCode::kCorruption) {
      return ErrorResponse(500, "internal", "authentication failed: " + status.message());
    }
    // Every other outcome (malformed, unknown, wrong secret, expired, revoked) is "not authenticated".
    HttpResponse response = ErrorResponse(401, "unauthenticated", status.message());
    response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"appban-admin\"");
    return response;
  }

  std::vector<std::string> segments = SplitPath(path.substr(kAdminPathPrefix.size()));
  // Ids never contain '/', so "." and ".." segments are attempts to walk the tree (possibly after
  // percent-decoding %2F): refuse them by name rather than let them reach a lookup.
  for (const auto& segment : segments) {
    if (segment.empty() || segment == "." || segment == "..") {
      return BadRequest("path: empty, \".\" and \"..\" segments are not allowed in " + Quoted(path));
    }
  }

  std::vector<std::string> allowed_methods;
  for (const AdminRoute& route : kRoutes) {
    std::vector<std::string> params;
    if (!Matches(route.pattern, segments, &params)) continue;
    if (route.method != request.method) {
      allowed_methods.emplace_back(route.method);
      continue;
    }
    if (!Allows(token->role, route.need)) {
      return ErrorResponse(403, "forbidden",
                           std::string(request.method) + " " + std::string(path) + " needs the " +
                               std::string(NeedName(route.need)) + " role; token " + token->name + " has role " +
                               std::string(store::RoleName(token->role)));
    }
    Call call{context, request, *token, std::move(params)};
    return route.handler(call);
  }
  if (!allowed_methods.empty()) {
    std::string allow;
    for (const auto& method : allowed_methods) allow += (allow.empty() ? "" : ", ") + method;
    HttpResponse response =
        ErrorResponse(405, "method_not_allowed", request.method + " is not allowed here; use " + allow);
    response.headers.emplace_back("Allow", allow);
    return response;
  }
  return ErrorResponse(404, "not_found", "no admin endpoint " + Quoted(path));
}

}  // namespace

HttpError HttpErrorFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return {200, "ok"};
    case StatusCode::kInvalidArgument:
    case StatusCode::kLimitExceeded:
    case StatusCode::kNotRecognized:
    case StatusCode::kTruncated:
    case StatusCode::kUnsupported:
      return {400, "bad_request"};
    case StatusCode::kNotFound:
      return {404, "not_found"};
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kExpired:
      return {409, "conflict"};
    // The policy core's only refusal of an authenticated actor is the two-person rule (approving
    // one's own proposal or waiver request); roles are checked before the core is reached.
    case StatusCode::kPermissionDenied:
      return {409, "two_person_rule"};
    case StatusCode::kUnavailable:
      return {503, "unavailable"};
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
      return {500, "internal"};
  }
  return {500, "internal"};
}

std::vector<AdminRouteInfo> AdminRoutes() {
  std::vector<AdminRouteInfo> routes;
  for (const AdminRoute& route : kRoutes) routes.push_back({route.method, route.pattern, NeedName(route.need)});
  return routes;
}

size_t AdminBodyLimit(const ServerConfig& config, std::string_view method, std::string_view path) {
  if (method != "POST") return 0;
  if (path == std::string(kAdminPathPrefix) + "assessments") return static_cast<size_t>(config.limits.apk_max_bytes);
  return static_cast<size_t>(config.limits.json_max_bytes);
}

HttpResponse HandleAdminRequest(WorkerContext& context, const HttpRequest& request) {
  try {
    return Dispatch(context, request);
  } catch (const std::exception& error) {
    // Third-party code (JSON, filesystem) may throw; no request may take the worker down.
    return ErrorResponse(500, "internal", std::string("internal error: ") + error.what());
  }
}

}  // namespace appban::server
