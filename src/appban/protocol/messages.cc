#include "appban/protocol/messages.h"

#include <algorithm>
#include <array>
#include <optional>
#include <tuple>

#include "appban/common/crypto.h"
#include "appban/common/text.h"
#include "appban/policy/rotation.h"

namespace appban::protocol {
namespace {

constexpr std::array<std::pair<EventKind, std::string_view>, 7> kEventKinds{{
    {EventKind::kRemoved, "removed"},
    {EventKind::kRemoveFailed, "remove_failed"},
    {EventKind::kInstallRefused, "install_refused"},
    {EventKind::kWaiverApplied, "waiver_applied"},
    {EventKind::kBundleApplied, "bundle_applied"},
    {EventKind::kBundleRefused, "bundle_refused"},
    {EventKind::kMonitorWouldRemove, "monitor_would_remove"},
}};

// Reads the members of one JSON object, each at most once, and refuses members nobody asked for.
// Errors name the member by its path ("checkin: events[2].seq").
class StrictObject {
 public:
  StrictObject(const Json& json, std::string where) : json_(json), where_(std::move(where)) {}
  // An element of an array: its path ("checkin.inventory[12]") is built only for an error, as
  // inventories have thousands of elements.
  StrictObject(const Json& json, std::string_view array_where, size_t index)
      : json_(json), array_where_(array_where), index_(index) {}

  Status CheckIsObject() const {
    if (!json_.is_object()) return Status::InvalidArgument(Where() + ": must be a JSON object");
    return Status::Ok();
  }

  Result<std::string> Text(std::string_view key, bool required, size_t max_length) {
    const Json* value = Find(key);
    if (value == nullptr) {
      if (required) return Missing(key);
      return std::string();
    }
    if (!value->is_string()) return Wrong(key, "must be a string");
    const auto& text = value->get_ref<const std::string&>();
    if (text.size() > max_length) {
      return Status::LimitExceeded(Path(key) + ": longer than " + std::to_string(max_length) + " bytes");
    }
    return text;
  }

  Result<int64_t> Integer(std::string_view key, bool required, int64_t min_value) {
    const Json* value = Find(key);
    if (value == nullptr) {
      if (required) return Missing(key);
      return min_value;
    }
    if (!value->is_number_integer()) return Wrong(key, "must be an integer");
    int64_t number =
        value->is_number_unsigned() && value->get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : value->get<int64_t>();
    if (number < min_value) return Wrong(key, "must be at least " + std::to_string(min_value));
    return number;
  }

  Result<bool> Boolean(std::string_view key) {
    const Json* value = Find(key);
    if (value == nullptr) return false;
    if (!value->is_boolean()) return Wrong(key, "must be true or false");
    return value->get<bool>();
  }

  // nullptr when absent (or null). REQUIRES: `key` outlives this object (callers pass literals).
  const Json* Find(std::string_view key) {
    seen_.push_back(key);
    auto it = json_.find(key);
    if (it == json_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  // Call last: refuses members that were not read.
  Status CheckNoUnknownMembers() const {
    for (const auto& [key, value] : json_.items()) {
      if (std::find(seen_.begin(), seen_.end(), key) == seen_.end()) {
        return Status::InvalidArgument(Where() + ": unknown member \"" + key + "\"");
      }
    }
    return Status::Ok();
  }

  std::string Where() const {
    if (!where_.empty() || !index_) return where_;
    return std::string(array_where_) + "[" + std::to_string(*index_) + "]";
  }
  std::string Path(std::string_view key) const { return Where() + "." + std::string(key); }
  Status Missing(std::string_view key) const { return Status::InvalidArgument(Path(key) + ": missing"); }
  Status Wrong(std::string_view key, const std::string& why) const {
    return Status::InvalidArgument(Path(key) + ": " + why);
  }

 private:
  const Json& json_;
  std::string where_;
  std::string_view array_where_;
  std::optional<size_t> index_;
  std::vector<std::string_view> seen_;
};

Result<Json> ParseBody(std::string_view body, std::string_view what) {
  // The transport's body limit bounds the size; this bounds the nesting.
  return ParseJsonBounded(body, body.size(), kProtocolLimits.max_json_depth, what);
}

Status CheckHex(const std::string& text, size_t length, const std::string& where) {
  if (text.empty()) return Status::Ok();
  bool hex = text.size() == length && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
             });
  if (!hex) return Status::InvalidArgument(where + ": must be " + std::to_string(length) + " lowercase hex digits");
  return Status::Ok();
}

auto SortKey(const policy::InstalledApp& app) {
  return std::tie(app.platform, app.id, app.version, app.signer_sha256, app.team_id);
}

Json AppToJson(const policy::InstalledApp& app) {
  Json json = Json::object();
  json["platform"] = std::string(policy::PlatformName(app.platform));
  json["id"] = app.id;
  if (!app.version.empty()) json["version"] = app.version;
  if (!app.signer_sha256.empty()) json["signer_sha256"] = app.signer_sha256;
  if (!app.team_id.empty()) json["team_id"] = app.team_id;
  return json;
}

std::vector<const policy::InstalledApp*> Sorted(std::span<const policy::InstalledApp> apps) {
  std::vector<const policy::InstalledApp*> sorted;
  sorted.reserve(apps.size());
  for (const auto& app : apps) sorted.push_back(&app);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return SortKey(*a) < SortKey(*b); });
  return sorted;
}

// A JSON string exactly as CanonicalJson writes it (common/json.h): only `"`, `\` and
// control characters escaped, \u00XX in lowercase hex for controls without a short form.
void AppendCanonicalString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace

std::string_view EventKindName(EventKind kind) {
  for (const auto& [value, name] : kEventKinds) {
    if (value == kind) return name;
  }
  return "unknown";
}

Result<EventKind> ParseEventKind(std::string_view name) {
  for (const auto& [value, known] : kEventKinds) {
    if (known == name) return value;
  }
  return Status::InvalidArgument("unknown event kind \"" + std::string(name) + "\"");
}

Json EventToJson(const DeviceEvent& event) {
  Json json = {{"seq", event.seq}, {"at", event.at}, {"kind", std::string(EventKindName(event.kind))}};
  if (!event.platform.empty()) json["platform"] = event.platform;
  if (!event.app.empty()) json["app"] = event.app;
  if (!event.rule_id.empty()) json["rule"] = event.rule_id;
  if (!event.detail.empty()) json["detail"] = event.detail;
  return json;
}

Result<DeviceEvent> EventFromJson(const Json& json, std::string_view where) {
  StrictObject object(json, std::string(where));
  APPBAN_RETURN_IF_ERROR(object.CheckIsObject());
  DeviceEvent event;
  APPBAN_ASSIGN_OR_RETURN(event.seq, object.Integer("seq", true, 1));
  APPBAN_ASSIGN_OR_RETURN(event.at, object.Integer("at", true, 0));
  APPBAN_ASSIGN_OR_RETURN(std::string kind, object.Text("kind", true, kProtocolLimits.max_text));
  auto parsed_kind = ParseEventKind(kind);
  if (!parsed_kind.ok()) return object.Wrong("kind", std::string(parsed_kind.status().message()));
  event.kind = *parsed_kind;
  APPBAN_ASSIGN_OR_RETURN(event.platform, object.Text("platform", false, kProtocolLimits.max_text));
  if (!event.platform.empty() && !policy::ParsePlatform(event.platform).ok()) {
    return object.Wrong("platform", "unknown platform \"" + event.platform + "\"");
  }
  APPBAN_ASSIGN_OR_RETURN(event.app, object.Text("app", false, kProtocolLimits.max_text));
  APPBAN_ASSIGN_OR_RETURN(event.rule_id, object.Text("rule", false, kProtocolLimits.max_text));
  APPBAN_ASSIGN_OR_RETURN(event.detail, object.Text("detail", false, kProtocolLimits.max_detail));
  APPBAN_RETURN_IF_ERROR(object.CheckNoUnknownMembers());
  return event;
}

Json ToJson(const EnrollRequest& request) {
  return {{"token", request.token},
          {"hostname", request.hostname},
          {"platform", request.platform},
          {"agent_version", request.agent_version}};
}

Result<EnrollRequest> ParseEnrollRequest(std::string_view body) {
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseBody(body, "enroll"));
  StrictObject object(json, "enroll");
  APPBAN_RETURN_IF_ERROR(object.CheckIsObject());
  EnrollRequest request;
  APPBAN_ASSIGN_OR_RETURN(request.token, object.Text("token", true, kProtocolLimits.max_text));
  APPBAN_ASSIGN_OR_RETURN(request.hostname, object.Text("hostname", true, kProtocolLimits.max_text));
  APPBAN_ASSIGN_OR_RETURN(request.platform, object.Text("platform", true, kProtocolLimits.max_text));
  APPBAN_ASSIGN_OR_RETURN(request.agent_version, object.Text("agent_version", false, kProtocolLimits.max_text));
  APPBAN_RETURN_IF_ERROR(object.CheckNoUnknownMembers());
  if (request.hostname.empty()) return object.Wrong("hostname", "must not be empty");
  return request;
}

Json ToJson(const EnrollResponse& response) {
  return {{"device_id", response.device_id},
          {"credential", response.credential},
          {"policy_keys", response.policy_keys_pem},
          {"group", response.group},
          {"checkin_interval", response.checkin_interval},
          {"longpoll_timeout", response.longpoll_timeout},
          {"server_time", response.server_time}};
}

Result<EnrollResponse> ParseEnrollResponse(std::string_view body) {
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseBody(body, "enroll response"));
  StrictObject object(json, "enroll response");
  APPBAN_RETURN_IF_ERROR(object.CheckIsObject());
  EnrollResponse response;
  APPBAN_ASSIGN_OR_RETURN(response.device_id, object.Text("device_id", true, kProtocolLimits.max_text));
  APPBAN_ASSIGN_OR_RETURN(response.credential, object.Text("credential", true, kProtocolLimits.max_text));
  const Json* keys = object.Find("policy_keys");
  if (keys == nullptr || !keys->is_array()) return object.Wrong("policy_keys", "must be an array of PEM strings");
  for (const auto& key : *keys) {
    if (!key.is_string()) return object.Wrong("policy_keys", "must be an array of PEM strings");
    response.policy_keys_pem.push_back(key.get<std::string>());
  }
  APPBAN_ASSIGN_OR_RETURN(response.group, object.Text("group", false, kProtocolLimits.max_text));
  APPBAN_ASSIGN_OR_RETURN(response.checkin_interval, object.Integer("checkin_interval", true, 1));
  APPBAN_ASSIGN_OR_RETURN(response.longpoll_timeout, object.Integer("longpoll_timeout", true, 1));
  APPBAN_ASSIGN_OR_RETURN(response.server_time, object.Integer("server_time", true, 0));
  // Answers may grow members in later server versions; an agent ignores what it does not know.
  return response;
}

namespace {
Json CheckinJsonWithoutInventory(const CheckinRequest& request) {
  Json json = {{"applied_version", request.applied_version},
               {"rules_hash", request.rules_hash},
               {"inventory_hash", request.inventory_hash}};
  Json events = Json::array();
  for (const auto& event : request.events) events.push_back(EventToJson(event));
  json["events"] = std::move(events);
  if (!request.agent_version.empty()) json["agent_version"] = request.agent_version;
  if (request.monitor) json["monitor"] = true;
  return json;
}
}  // namespace

Json ToJson(const CheckinRequest& request) {
  Json json = CheckinJsonWithoutInventory(request);
  if (request.inventory) json["inventory"] = InventoryToJson(*request.inventory);
  return json;
}

Result<CheckinRequest> ParseCheckinRequest(std::string_view body) {
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseBody(body, "checkin"));
  StrictObject object(json, "checkin");
  APPBAN_RETURN_IF_ERROR(object.CheckIsObject());
  CheckinRequest request;
  APPBAN_ASSIGN_OR_RETURN(request.applied_version, object.Integer("applied_version", true, 0));
  APPBAN_ASSIGN_OR_RETURN(request.rules_hash, object.Text("rules_hash", false, 64));
  APPBAN_RETURN_IF_ERROR(CheckHex(request.rules_hash, 64, "checkin.rules_hash"));
  APPBAN_ASSIGN_OR_RETURN(request.inventory_hash, object.Text("inventory_hash", true, 64));
  APPBAN_RETURN_IF_ERROR(CheckHex(request.inventory_hash, 64, "checkin.inventory_hash"));
  if (const Json* inventory = object.Find("inventory")) {
    APPBAN_ASSIGN_OR_RETURN(request.inventory, InventoryFromJsonArray(*inventory, "checkin.inventory"));
    request.canonical_inventory = CanonicalInventory(*request.inventory);
    if (Sha256Hex(AsBytes(request.canonical_inventory)) != request.inventory_hash) {
      return object.Wrong("inventory_hash",
                          "does not match the inventory sent (see docs/protocol.md, \"Inventory hash\")");
    }
  }
  if (const Json* events = object.Find("events")) {
    if (!events->is_array()) return object.Wrong("events", "must be an array");
    if (events->size() > kProtocolLimits.max_events_per_checkin) {
      return Status::LimitExceeded("checkin.events: more than " +
                                   std::to_string(kProtocolLimits.max_events_per_checkin) + " events in one check-in");
    }
    for (size_t i = 0; i < events->size(); ++i) {
      APPBAN_ASSIGN_OR_RETURN(DeviceEvent event,
                              EventFromJson((*events)[i], "checkin.events[" + std::to_string(i) + "]"));
      if (!request.events.empty() && event.seq <= request.events.back().seq) {
        return Status::InvalidArgument("checkin.events[" + std::to_string(i) +
                                       "].seq: events must be sorted by increasing seq");
      }
      request.events.push_back(std::move(event));
    }
  }
  APPBAN_ASSIGN_OR_RETURN(request.agent_version, object.Text("agent_version", false, kProtocolLimits.max_text));
  APPBAN_ASSIGN_OR_RETURN(request.monitor, object.Boolean("monitor"));
  APPBAN_RETURN_IF_ERROR(object.CheckNoUnknownMembers());
  return request;
}

Json ToJson(const CheckinResponse& response) {
  Json json = {{"server_time", response.server_time},           {"latest_version", response.latest_version},
               {"send_inventory", response.send_inventory},     {"events_acked", response.events_acked},
               {"checkin_interval", response.checkin_interval}, {"longpoll_timeout", response.longpoll_timeout}};
  if (response.bundle) json["bundle"] = *response.bundle;
  if (response.rules_hash_mismatch) json["rules_hash_mismatch"] = true;
  if (!response.key_rotations.empty()) json["key_rotations"] = response.key_rotations;
  return json;
}

namespace {

// "key_rotations": optional array of statement strings (checked by the agent, not here).
Result<std::vector<std::string>> KeyRotations(StrictObject& object) {
  std::vector<std::string> out;
  const Json* list = object.Find("key_rotations");
  if (list == nullptr) return out;
  if (!list->is_array() || list->size() > policy::kMaxKeyRotations) {
    return object.Wrong("key_rotations",
                        "must be an array of at most " + std::to_string(policy::kMaxKeyRotations) + " statements");
  }
  for (const auto& item : *list) {
    if (!item.is_string()) return object.Wrong("key_rotations", "must hold statements as strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

Result<CheckinResponse> ParseCheckinResponse(std::string_view body) {
  // A bundle inside may be large; the client's own body limit bounds it.
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseBody(body, "checkin response"));
  StrictObject object(json, "checkin response");
  APPBAN_RETURN_IF_ERROR(object.CheckIsObject());
  CheckinResponse response;
  APPBAN_ASSIGN_OR_RETURN(response.server_time, object.Integer("server_time", true, 0));
  APPBAN_ASSIGN_OR_RETURN(response.latest_version, object.Integer("latest_version", true, 0));
  if (const Json* bundle = object.Find("bundle")) {
    if (!bundle->is_string()) return object.Wrong("bundle", "must be the signed envelope as a string");
    response.bundle = bundle->get<std::string>();
  }
  APPBAN_ASSIGN_OR_RETURN(response.send_inventory, object.Boolean("send_inventory"));
  APPBAN_ASSIGN_OR_RETURN(response.rules_hash_mismatch, object.Boolean("rules_hash_mismatch"));
  APPBAN_ASSIGN_OR_RETURN(response.events_acked, object.Integer("events_acked", true, 0));
  APPBAN_ASSIGN_OR_RETURN(response.checkin_interval, object.Integer("checkin_interval", true, 1));
  APPBAN_ASSIGN_OR_RETURN(response.longpoll_timeout, object.Integer("longpoll_timeout", true, 1));
  APPBAN_ASSIGN_OR_RETURN(response.key_rotations, KeyRotations(object));
  return response;
}

Json ToJson(const PollResponse& response) {
  Json json = {{"latest_version", response.latest_version}};
  if (response.bundle) json["bundle"] = *response.bundle;
  if (!response.key_rotations.empty()) json["key_rotations"] = response.key_rotations;
  return json;
}

Result<PollResponse> ParsePollResponse(std::string_view body) {
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseBody(body, "poll response"));
  StrictObject object(json, "poll response");
  APPBAN_RETURN_IF_ERROR(object.CheckIsObject());
  PollResponse response;
  APPBAN_ASSIGN_OR_RETURN(response.latest_version, object.Integer("latest_version", true, 0));
  if (const Json* bundle = object.Find("bundle")) {
    if (!bundle->is_string()) return object.Wrong("bundle", "must be the signed envelope as a string");
    response.bundle = bundle->get<std::string>();
  }
  APPBAN_ASSIGN_OR_RETURN(response.key_rotations, KeyRotations(object));
  return response;
}

Json InventoryToJson(std::span<const policy::InstalledApp> apps) {
  Json json = Json::array();
  for (const auto* app : Sorted(apps)) json.push_back(AppToJson(*app));
  return json;
}

std::string CanonicalInventory(std::span<const policy::InstalledApp> apps) {
  // Written directly rather than through CanonicalJson(InventoryToJson(apps)) — the same
  // bytes (messages_test.cc compares the two) at a fraction of the cost: every check-in that
  // carries an inventory is canonicalised to check its hash. Keys in byte order: id, platform,
  // signer_sha256, team_id, version. Invalid UTF-8 (which InventoryFromJsonArray cannot produce)
  // makes the text empty, as CanonicalJson refuses it.
  std::string out;
  out.reserve(2 + apps.size() * 72);
  out += '[';
  bool first = true;
  for (const auto* app : Sorted(apps)) {
    if (!IsValidUtf8(app->id) || !IsValidUtf8(app->version) || !IsValidUtf8(app->signer_sha256) ||
        !IsValidUtf8(app->team_id)) {
      return std::string();
    }
    if (!first) out += ',';
    first = false;
    out += "{\"id\":";
    AppendCanonicalString(out, app->id);
    out += ",\"platform\":";
    AppendCanonicalString(out, policy::PlatformName(app->platform));
    if (!app->signer_sha256.empty()) {
      out += ",\"signer_sha256\":";
      AppendCanonicalString(out, app->signer_sha256);
    }
    if (!app->team_id.empty()) {
      out += ",\"team_id\":";
      AppendCanonicalString(out, app->team_id);
    }
    if (!app->version.empty()) {
      out += ",\"version\":";
      AppendCanonicalString(out, app->version);
    }
    out += '}';
  }
  out += ']';
  return out;
}

std::string CheckinRequestBody(const CheckinRequest& request) {
  std::string body = CheckinJsonWithoutInventory(request).dump();
  if (!request.inventory) return body;
  // The inventory is the canonical text the hash was computed over (valid JSON), spliced in
  // rather than built and serialised again member by member.
  body.pop_back();  // the closing brace; the object is never empty (applied_version is always there)
  body += ",\"inventory\":";
  body += request.canonical_inventory.empty() ? CanonicalInventory(*request.inventory) : request.canonical_inventory;
  body += '}';
  return body;
}

std::string InventoryHash(std::span<const policy::InstalledApp> apps) {
  return Sha256Hex(AsBytes(CanonicalInventory(apps)));
}

Result<std::vector<policy::InstalledApp>> InventoryFromJsonArray(const Json& json, std::string_view where) {
  if (!json.is_array()) return Status::InvalidArgument(std::string(where) + ": must be an array of apps");
  if (json.size() > kProtocolLimits.max_inventory_apps) {
    return Status::LimitExceeded(std::string(where) + ": more than " +
                                 std::to_string(kProtocolLimits.max_inventory_apps) + " apps");
  }
  std::vector<policy::InstalledApp> apps;
  apps.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    StrictObject object(json[i], where, i);
    APPBAN_RETURN_IF_ERROR(object.CheckIsObject());
    policy::InstalledApp app;
    APPBAN_ASSIGN_OR_RETURN(std::string platform, object.Text("platform", true, kProtocolLimits.max_text));
    auto parsed = policy::ParsePlatform(platform);
    if (!parsed.ok()) return object.Wrong("platform", "unknown platform \"" + platform + "\"");
    app.platform = *parsed;
    APPBAN_ASSIGN_OR_RETURN(app.id, object.Text("id", true, kProtocolLimits.max_text));
    if (app.id.empty()) return object.Wrong("id", "must not be empty");
    APPBAN_ASSIGN_OR_RETURN(app.version, object.Text("version", false, kProtocolLimits.max_text));
    APPBAN_ASSIGN_OR_RETURN(app.signer_sha256, object.Text("signer_sha256", false, 64));
    if (!app.signer_sha256.empty())
      APPBAN_RETURN_IF_ERROR(CheckHex(app.signer_sha256, 64, object.Path("signer_sha256")));
    APPBAN_ASSIGN_OR_RETURN(app.team_id, object.Text("team_id", false, kProtocolLimits.max_text));
    APPBAN_RETURN_IF_ERROR(object.CheckNoUnknownMembers());
    apps.push_back(std::move(app));
  }
  return apps;
}

std::string ErrorBody(std::string_view code, std::string_view message) {
  Json json = {{"error", {{"code", std::string(code)}, {"message", std::string(message)}}}};
  // Messages may quote client input; dump with replacement so invalid UTF-8 cannot throw.
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string_view BearerCredential(std::string_view header) {
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    char want = kScheme[i];
    if (want >= 'A' && want <= 'Z') want = static_cast<char>(want - 'A' + 'a');
    if (c != want) return {};
  }
  std::string_view credential = header.substr(kScheme.size());
  while (!credential.empty() && credential.front() == ' ') credential.remove_prefix(1);
  while (!credential.empty() && credential.back() == ' ') credential.remove_suffix(1);
  return credential;
}

}  // namespace appban::protocol
