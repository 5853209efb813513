#include "appban/policy/model.h"

#include <array>
#include <cctype>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "appban/common/text.h"
#include "appban/policy/limits.h"

namespace appban::policy {
namespace {
// kDebianProtectedPackagesText: data/debian-protected-packages.txt, embedded by CMakeLists.txt.
#include "appban/policy/debian_protected_packages.inc"
}  // namespace
}  // namespace appban::policy

namespace appban::policy {
namespace {

constexpr size_t kMaxTextLength = 64 * 1024;

template <typename Enum, size_t N>
Result<Enum> ParseByName(std::string_view name, const std::array<std::pair<Enum, std::string_view>, N>& table,
                         std::string_view what) {
  for (const auto& [value, text] : table) {
    if (text == name) return value;
  }
  std::string known;
  for (const auto& entry : table) known += (known.empty() ? "" : ", ") + std::string(entry.second);
  return Status::InvalidArgument("unknown " + std::string(what) + " \"" + std::string(name) + "\" (expected one of " +
                                 known + ")");
}

template <typename Enum, size_t N>
std::string_view NameOf(Enum value, const std::array<std::pair<Enum, std::string_view>, N>& table) {
  for (const auto& [candidate, text] : table) {
    if (candidate == value) return text;
  }
  return "?";
}

constexpr std::array<std::pair<Platform, std::string_view>, 5> kPlatforms{{
    {Platform::kAndroid, "android"},
    {Platform::kIos, "ios"},
    {Platform::kDeb, "deb"},
    {Platform::kFlatpak, "flatpak"},
    {Platform::kSnap, "snap"},
}};
constexpr std::array<std::pair<TargetKind, std::string_view>, 8> kTargetKinds{{
    {TargetKind::kAndroidPackage, "android"},
    {TargetKind::kIosBundle, "ios"},
    {TargetKind::kDebPackage, "deb"},
    {TargetKind::kFlatpakApp, "flatpak"},
    {TargetKind::kSnapName, "snap"},
    {TargetKind::kAndroidSigner, "android-signer"},
    {TargetKind::kAppleTeam, "apple-team"},
    {TargetKind::kVendor, "vendor"},
}};
constexpr std::array<std::pair<Action, std::string_view>, 3> kActions{{
    {Action::kRemove, "remove"},
    {Action::kBlock, "block"},
    {Action::kReport, "report"},
}};
constexpr std::array<std::pair<RuleState, std::string_view>, 4> kRuleStates{{
    {RuleState::kDraft, "draft"},
    {RuleState::kApproved, "approved"},
    {RuleState::kPublished, "published"},
    {RuleState::kRevoked, "revoked"},
}};
constexpr std::array<std::pair<WaiverSubject, std::string_view>, 2> kWaiverSubjects{{
    {WaiverSubject::kDevice, "device"},
    {WaiverSubject::kGroup, "group"},
}};

// Field readers over untrusted JSON: each error names the field.
Status ExpectObject(const Json& json, std::string_view what) {
  if (!json.is_object()) return Status::InvalidArgument(std::string(what) + " must be a JSON object");
  return Status::Ok();
}

Result<std::string> GetString(const Json& object, const char* key, bool required) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) return Status::InvalidArgument(std::string("missing field \"") + key + "\"");
    return std::string();
  }
  if (!it->is_string()) return Status::InvalidArgument(std::string("field \"") + key + "\" must be a string");
  const auto& text = it->get_ref<const std::string&>();
  if (text.size() > kMaxTextLength) return Status::LimitExceeded(std::string("field \"") + key + "\" is too long");
  return text;
}

Result<std::vector<std::string>> GetStrings(const Json& object, const char* key) {
  std::vector<std::string> out;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_array()) return Status::InvalidArgument(std::string("field \"") + key + "\" must be an array of strings");
  for (const auto& element : *it) {
    if (!element.is_string())
      return Status::InvalidArgument(std::string("field \"") + key + "\" must hold strings only");
    out.push_back(element.get<std::string>());
  }
  return out;
}

Result<int64_t> GetInteger(const Json& object, const char* key, int64_t fallback) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) return Status::InvalidArgument(std::string("field \"") + key + "\" must be an integer");
  return it->get<int64_t>();
}

Result<std::optional<UnixSeconds>> GetTimestamp(const Json& object, const char* key, bool required) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, GetString(object, key, required));
  if (text.empty()) return std::optional<UnixSeconds>();
  auto parsed = ParseTimestamp(text);
  if (!parsed.ok()) return parsed.status().WithContext(std::string("field \"") + key + "\"");
  return std::optional<UnixSeconds>(*parsed);
}

Json TargetToJson(const Target& target) {
  Json json{{"kind", TargetKindName(target.kind)}, {"value", target.value}};
  if (target.unverified) json["unverified"] = true;
  return json;
}

Result<Target> TargetFromJson(const Json& json) {
  APPBAN_RETURN_IF_ERROR(ExpectObject(json, "target"));
  APPBAN_ASSIGN_OR_RETURN(std::string kind_name, GetString(json, "kind", true));
  APPBAN_ASSIGN_OR_RETURN(TargetKind kind, ParseTargetKind(kind_name));
  APPBAN_ASSIGN_OR_RETURN(std::string value, GetString(json, "value", true));
  bool unverified = false;
  if (auto it = json.find("unverified"); it != json.end()) {
    if (!it->is_boolean()) return Status::InvalidArgument("target field \"unverified\" must be true or false");
    unverified = it->get<bool>();
  }
  return MakeTarget(kind, value, unverified);
}

Result<std::vector<Target>> TargetsFromJson(const Json& object, const char* key) {
  std::vector<Target> targets;
  auto it = object.find(key);
  if (it == object.end()) return targets;
  if (!it->is_array()) return Status::InvalidArgument(std::string("field \"") + key + "\" must be an array");
  if (it->size() > kPolicyLimits.max_targets_per_rule) {
    return Status::LimitExceeded(std::string("field \"") + key + "\" has more than " +
                                 std::to_string(kPolicyLimits.max_targets_per_rule) + " targets");
  }
  for (const auto& element : *it) {
    auto target = TargetFromJson(element);
    if (!target.ok()) return target.status().WithContext(key);
    targets.push_back(std::move(*target));
  }
  return targets;
}

Status CheckText(const std::string& text, std::string_view what) {
  if (text.size() > kMaxTextLength) return Status::LimitExceeded(std::string(what) + " is longer than 64 KiB");
  return Status::Ok();
}

}  // namespace

std::string_view PlatformName(Platform platform) { return NameOf(platform, kPlatforms); }
Result<Platform> ParsePlatform(std::string_view name) { return ParseByName(name, kPlatforms, "platform"); }
std::string_view TargetKindName(TargetKind kind) { return NameOf(kind, kTargetKinds); }
Result<TargetKind> ParseTargetKind(std::string_view name) { return ParseByName(name, kTargetKinds, "target kind"); }
std::string_view ActionName(Action action) { return NameOf(action, kActions); }
Result<Action> ParseAction(std::string_view name) { return ParseByName(name, kActions, "action"); }
std::string_view RuleStateName(RuleState state) { return NameOf(state, kRuleStates); }
Result<RuleState> ParseRuleState(std::string_view name) { return ParseByName(name, kRuleStates, "rule state"); }
std::string_view WaiverSubjectName(WaiverSubject subject) { return NameOf(subject, kWaiverSubjects); }

std::optional<Platform> PlatformOfTarget(TargetKind kind) {
  switch (kind) {
    case TargetKind::kAndroidPackage:
      return Platform::kAndroid;
    case TargetKind::kIosBundle:
      return Platform::kIos;
    case TargetKind::kDebPackage:
      return Platform::kDeb;
    case TargetKind::kFlatpakApp:
      return Platform::kFlatpak;
    case TargetKind::kSnapName:
      return Platform::kSnap;
    default:
      return std::nullopt;
  }
}

Result<Target> MakeTarget(TargetKind kind, std::string_view value, bool unverified) {
  Target target{kind, std::string(value), unverified};
  if (value.empty())
    return Status::InvalidArgument("target " + std::string(TargetKindName(kind)) + " has an empty value");
  if (value.size() > kPolicyLimits.max_identifier_length) {
    return Status::LimitExceeded("target " + std::string(TargetKindName(kind)) + " value is longer than " +
                                 std::to_string(kPolicyLimits.max_identifier_length) + " bytes");
  }
  if (kind == TargetKind::kAndroidSigner) {
    APPBAN_ASSIGN_OR_RETURN(target.value, NormalizeHex(value, 64, "android signer SHA-256"));
  } else if (kind == TargetKind::kAppleTeam) {
    for (char c : value) {
      if (!std::isupper(static_cast<unsigned char>(c)) && !std::isdigit(static_cast<unsigned char>(c))) {
        return Status::InvalidArgument("Apple Team ID \"" + std::string(value) +
                                       "\" must be upper-case letters and digits");
      }
    }
    if (value.size() != 10)
      return Status::InvalidArgument("Apple Team ID \"" + std::string(value) + "\" must be 10 characters");
  } else if (kind != TargetKind::kVendor) {
    for (char c : value) {
      if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c))) {
        return Status::InvalidArgument("app identifier \"" + std::string(value) +
                                       "\" contains white space or controls");
      }
    }
  }
  return target;
}

Result<Target> ParseTargetSpec(std::string_view spec) {
  size_t colon = spec.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("target \"" + std::string(spec) +
                                   "\" must be KIND:VALUE, e.g. android:com.tencent.mm or vendor:\"AO Kaspersky Lab\"");
  }
  APPBAN_ASSIGN_OR_RETURN(TargetKind kind, ParseTargetKind(spec.substr(0, colon)));
  return MakeTarget(kind, spec.substr(colon + 1));
}

std::string TargetSpec(const Target& target) {
  return std::string(TargetKindName(target.kind)) + ":" + target.value + (target.unverified ? " (unverified)" : "");
}

Status ValidateIdentifier(std::string_view id, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(std::string(what) + " \"" + std::string(id) + "\" " + std::string(why));
  };
  if (id.empty() || id.size() > 128) return bad("must be 1 to 128 characters");
  if (!std::isalnum(static_cast<unsigned char>(id[0]))) return bad("must start with a letter or digit");
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' && c != ':' && c != '@') {
      return bad("may contain only letters, digits and . _ - : @");
    }
  }
  return Status::Ok();
}

Status ValidateRule(const Rule& rule) {
  APPBAN_RETURN_IF_ERROR(ValidateIdentifier(rule.id, "rule id"));
  if (rule.title.empty()) return Status::InvalidArgument("rule " + rule.id + " has no title");
  if (rule.targets.empty()) return Status::InvalidArgument("rule " + rule.id + " has no targets");
  if (rule.targets.size() > kPolicyLimits.max_targets_per_rule) {
    return Status::LimitExceeded("rule " + rule.id + " has too many targets");
  }
  for (const auto& group : rule.scope_groups) APPBAN_RETURN_IF_ERROR(ValidateIdentifier(group, "scope group"));
  for (const auto& assessment : rule.assessments) {
    APPBAN_RETURN_IF_ERROR(NormalizeHex(assessment.apk_sha256, 64, "linked assessment APK SHA-256").status());
  }
  for (const auto* text : {&rule.title, &rule.rationale, &rule.authority, &rule.instrument, &rule.effective_note}) {
    APPBAN_RETURN_IF_ERROR(CheckText(*text, "rule text"));
  }
  return Status::Ok();
}

namespace {

// package -> "essential", "required" or "needed-by:P", from the embedded list.
std::unordered_map<std::string_view, std::string_view> ParseDebianProtectedList() {
  std::unordered_map<std::string_view, std::string_view> parsed;
  std::string_view rest = kDebianProtectedPackagesText;
  while (!rest.empty()) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (line.empty() || line.front() == '#') continue;
    size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    parsed.emplace(line.substr(0, space), line.substr(space + 1));
  }
  return parsed;
}

const std::unordered_map<std::string_view, std::string_view>& DebianProtectedList() {
  static const std::unordered_map<std::string_view, std::string_view> list = ParseDebianProtectedList();
  return list;
}

}  // namespace

std::optional<std::string> ProtectedDebianPackage(std::string_view package) {
  const auto& list = DebianProtectedList();
  auto it = list.find(package);
  if (it == list.end()) return std::nullopt;
  std::string_view reason = it->second;
  if (reason == "essential") return std::string("it is Essential: yes in Debian 12");
  if (reason == "required") return std::string("it is Priority: required in Debian 12");
  constexpr std::string_view kNeededBy = "needed-by:";
  if (reason.substr(0, kNeededBy.size()) == kNeededBy) {
    std::string_view needer = reason.substr(kNeededBy.size());
    // The chain ends at an Essential or required package; the list is acyclic (built breadth first).
    std::string why = "it is needed by " + std::string(needer);
    for (int depth = 0; depth < 16; ++depth) {
      auto next = list.find(needer);
      if (next == list.end()) break;
      if (next->second == "essential") return why + " (Essential: yes in Debian 12)";
      if (next->second == "required") return why + " (Priority: required in Debian 12)";
      if (next->second.substr(0, kNeededBy.size()) != kNeededBy) break;
      needer = next->second.substr(kNeededBy.size());
      why += ", needed by " + std::string(needer);
    }
    return why;
  }
  return "it is protected in Debian 12 (" + std::string(reason) + ")";
}

Status CheckRuleEnforceable(const Rule& rule) {
  for (const auto& target : rule.targets) {
    if (target.kind != TargetKind::kDebPackage) continue;
    if (auto why = ProtectedDebianPackage(target.value)) {
      return Status::InvalidArgument("rule " + rule.id + ": target deb:" + target.value + " cannot be banned: " + *why +
                                     ". Removing it would break the system and banning it would block " +
                                     "its security updates; the agent never removes, pins or refuses it");
    }
  }
  return Status::Ok();
}

Json RuleToJson(const Rule& rule, bool with_lifecycle) {
  Json targets = Json::array();
  for (const auto& target : rule.targets) targets.push_back(TargetToJson(target));
  Json assessments = Json::array();
  for (const auto& a : rule.assessments) assessments.push_back({{"apk_sha256", a.apk_sha256}, {"report", a.report}});
  Json json{
      {"id", rule.id},
      {"title", rule.title},
      {"targets", targets},
      {"action", ActionName(rule.action)},
      {"scope_groups", rule.scope_groups},
      {"effective_note", rule.effective_note},
      {"rationale", rule.rationale},
      {"authority", rule.authority},
      {"instrument", rule.instrument},
      {"references", rule.references},
      {"assessments", assessments},
      {"source", rule.source},
  };
  if (rule.effective_at) json["effective_at"] = FormatTimestamp(*rule.effective_at);
  if (with_lifecycle) {
    Json history = Json::array();
    for (const auto& t : rule.history) {
      history.push_back({{"to", RuleStateName(t.to)}, {"by", t.by}, {"at", FormatTimestamp(t.at)}, {"note", t.note}});
    }
    json["state"] = RuleStateName(rule.state);
    json["proposed_by"] = rule.proposed_by;
    json["history"] = history;
    json["revision"] = rule.revision;
  }
  return json;
}

Result<Rule> RuleFromJson(const Json& json) {
  APPBAN_RETURN_IF_ERROR(ExpectObject(json, "rule"));
  Rule rule;
  APPBAN_ASSIGN_OR_RETURN(rule.id, GetString(json, "id", true));
  auto fill = [&]() -> Status {
    APPBAN_ASSIGN_OR_RETURN(rule.title, GetString(json, "title", true));
    APPBAN_ASSIGN_OR_RETURN(rule.targets, TargetsFromJson(json, "targets"));
    APPBAN_ASSIGN_OR_RETURN(std::string action, GetString(json, "action", true));
    APPBAN_ASSIGN_OR_RETURN(rule.action, ParseAction(action));
    APPBAN_ASSIGN_OR_RETURN(rule.scope_groups, GetStrings(json, "scope_groups"));
    APPBAN_ASSIGN_OR_RETURN(rule.effective_at, GetTimestamp(json, "effective_at", false));
    APPBAN_ASSIGN_OR_RETURN(rule.effective_note, GetString(json, "effective_note", false));
    APPBAN_ASSIGN_OR_RETURN(rule.rationale, GetString(json, "rationale", false));
    APPBAN_ASSIGN_OR_RETURN(rule.authority, GetString(json, "authority", false));
    APPBAN_ASSIGN_OR_RETURN(rule.instrument, GetString(json, "instrument", false));
    APPBAN_ASSIGN_OR_RETURN(rule.references, GetStrings(json, "references"));
    APPBAN_ASSIGN_OR_RETURN(rule.source, GetString(json, "source", false));
    if (auto it = json.find("assessments"); it != json.end() && !it->is_null()) {
      if (!it->is_array()) return Status::InvalidArgument("field \"assessments\" must be an array");
      for (const auto& element : *it) {
        APPBAN_RETURN_IF_ERROR(ExpectObject(element, "assessment"));
        LinkedAssessment assessment;
        APPBAN_ASSIGN_OR_RETURN(std::string sha, GetString(element, "apk_sha256", true));
        APPBAN_ASSIGN_OR_RETURN(assessment.apk_sha256, NormalizeHex(sha, 64, "linked assessment APK SHA-256"));
        APPBAN_ASSIGN_OR_RETURN(assessment.report, GetString(element, "report", false));
        rule.assessments.push_back(std::move(assessment));
      }
    }
    APPBAN_ASSIGN_OR_RETURN(std::string state, GetString(json, "state", false));
    if (!state.empty()) {
      APPBAN_ASSIGN_OR_RETURN(rule.state, ParseRuleState(state));
    }
    APPBAN_ASSIGN_OR_RETURN(rule.proposed_by, GetString(json, "proposed_by", false));
    APPBAN_ASSIGN_OR_RETURN(rule.revision, GetInteger(json, "revision", 0));
    if (auto it = json.find("history"); it != json.end() && !it->is_null()) {
      if (!it->is_array()) return Status::InvalidArgument("field \"history\" must be an array");
      for (const auto& element : *it) {
        APPBAN_RETURN_IF_ERROR(ExpectObject(element, "history entry"));
        Transition transition;
        APPBAN_ASSIGN_OR_RETURN(std::string to, GetString(element, "to", true));
        APPBAN_ASSIGN_OR_RETURN(transition.to, ParseRuleState(to));
        APPBAN_ASSIGN_OR_RETURN(transition.by, GetString(element, "by", true));
        APPBAN_ASSIGN_OR_RETURN(auto at, GetTimestamp(element, "at", true));
        transition.at = at.value_or(0);
        APPBAN_ASSIGN_OR_RETURN(transition.note, GetString(element, "note", false));
        rule.history.push_back(std::move(transition));
      }
    }
    return ValidateRule(rule);
  };
  Status status = fill();
  if (!status.ok()) return status.WithContext("rule " + rule.id);
  return rule;
}

Status ValidateWaiver(const Waiver& waiver) {
  APPBAN_RETURN_IF_ERROR(ValidateIdentifier(waiver.id, "waiver id"));
  APPBAN_RETURN_IF_ERROR(ValidateIdentifier(waiver.rule_id, "waiver rule id"));
  APPBAN_RETURN_IF_ERROR(ValidateIdentifier(waiver.subject, std::string(WaiverSubjectName(waiver.subject_kind))));
  if (waiver.justification.empty()) return Status::InvalidArgument("waiver " + waiver.id + " needs a justification");
  if (waiver.approved_by.empty()) return Status::InvalidArgument("waiver " + waiver.id + " needs an approver");
  if (waiver.expires_at <= waiver.created_at) {
    return Status::InvalidArgument("waiver " + waiver.id + " expires before it is created");
  }
  return CheckText(waiver.justification, "waiver justification");
}

Json WaiverToJson(const Waiver& waiver, bool with_lifecycle) {
  Json json{
      {"id", waiver.id},
      {"rule_id", waiver.rule_id},
      {"subject_kind", WaiverSubjectName(waiver.subject_kind)},
      {"subject", waiver.subject},
      {"justification", waiver.justification},
      {"requested_by", waiver.requested_by},
      {"approved_by", waiver.approved_by},
      {"created_at", FormatTimestamp(waiver.created_at)},
      {"expires_at", FormatTimestamp(waiver.expires_at)},
  };
  if (with_lifecycle) {
    json["revision"] = waiver.revision;
    if (waiver.revoked_at) {
      json["revoked_at"] = FormatTimestamp(*waiver.revoked_at);
      json["revoked_by"] = waiver.revoked_by;
    }
  }
  return json;
}

Result<Waiver> WaiverFromJson(const Json& json) {
  APPBAN_RETURN_IF_ERROR(ExpectObject(json, "waiver"));
  Waiver waiver;
  APPBAN_ASSIGN_OR_RETURN(waiver.id, GetString(json, "id", true));
  auto fill = [&]() -> Status {
    APPBAN_ASSIGN_OR_RETURN(waiver.rule_id, GetString(json, "rule_id", true));
    APPBAN_ASSIGN_OR_RETURN(std::string kind, GetString(json, "subject_kind", true));
    APPBAN_ASSIGN_OR_RETURN(waiver.subject_kind, ParseByName(kind, kWaiverSubjects, "waiver subject kind"));
    APPBAN_ASSIGN_OR_RETURN(waiver.subject, GetString(json, "subject", true));
    APPBAN_ASSIGN_OR_RETURN(waiver.justification, GetString(json, "justification", true));
    APPBAN_ASSIGN_OR_RETURN(waiver.requested_by, GetString(json, "requested_by", false));
    APPBAN_ASSIGN_OR_RETURN(waiver.approved_by, GetString(json, "approved_by", true));
    APPBAN_ASSIGN_OR_RETURN(auto created, GetTimestamp(json, "created_at", true));
    APPBAN_ASSIGN_OR_RETURN(auto expires, GetTimestamp(json, "expires_at", true));
    waiver.created_at = created.value_or(0);
    waiver.expires_at = expires.value_or(0);
    APPBAN_ASSIGN_OR_RETURN(waiver.revoked_at, GetTimestamp(json, "revoked_at", false));
    APPBAN_ASSIGN_OR_RETURN(waiver.revoked_by, GetString(json, "revoked_by", false));
    APPBAN_ASSIGN_OR_RETURN(waiver.revision, GetInteger(json, "revision", 0));
    return ValidateWaiver(waiver);
  };
  Status status = fill();
  if (!status.ok()) return status.WithContext("waiver " + waiver.id);
  return waiver;
}

Status ValidateVendor(const Vendor& vendor) {
  if (vendor.name.empty() || vendor.name.size() > 256)
    return Status::InvalidArgument("vendor name must be 1 to 256 bytes");
  for (const auto& target : vendor.identifiers) {
    if (target.kind == TargetKind::kVendor) {
      return Status::InvalidArgument("vendor " + vendor.name + " lists another vendor; vendors do not nest");
    }
  }
  return Status::Ok();
}

Json VendorToJson(const Vendor& vendor) {
  Json identifiers = Json::array();
  for (const auto& target : vendor.identifiers) identifiers.push_back(TargetToJson(target));
  return Json{{"name", vendor.name}, {"country", vendor.country}, {"identifiers", identifiers}};
}

Result<Vendor> VendorFromJson(const Json& json) {
  APPBAN_RETURN_IF_ERROR(ExpectObject(json, "vendor"));
  Vendor vendor;
  APPBAN_ASSIGN_OR_RETURN(vendor.name, GetString(json, "name", true));
  APPBAN_ASSIGN_OR_RETURN(vendor.country, GetString(json, "country", false));
  auto identifiers = TargetsFromJson(json, "identifiers");
  if (!identifiers.ok()) return identifiers.status().WithContext("vendor " + vendor.name);
  vendor.identifiers = std::move(*identifiers);
  APPBAN_ASSIGN_OR_RETURN(vendor.revision, GetInteger(json, "revision", 0));
  APPBAN_RETURN_IF_ERROR(ValidateVendor(vendor));
  return vendor;
}

Status ValidateGroup(const Group& group) {
  APPBAN_RETURN_IF_ERROR(ValidateIdentifier(group.name, "group name"));
  for (const auto& device : group.devices) APPBAN_RETURN_IF_ERROR(ValidateIdentifier(device, "device id"));
  return CheckText(group.description, "group description");
}

Json GroupToJson(const Group& group) {
  return Json{{"name", group.name}, {"description", group.description}, {"devices", group.devices}};
}

Result<Group> GroupFromJson(const Json& json) {
  APPBAN_RETURN_IF_ERROR(ExpectObject(json, "group"));
  Group group;
  APPBAN_ASSIGN_OR_RETURN(group.name, GetString(json, "name", true));
  APPBAN_ASSIGN_OR_RETURN(group.description, GetString(json, "description", false));
  APPBAN_ASSIGN_OR_RETURN(group.devices, GetStrings(json, "devices"));
  APPBAN_ASSIGN_OR_RETURN(group.revision, GetInteger(json, "revision", 0));
  APPBAN_RETURN_IF_ERROR(ValidateGroup(group));
  return group;
}

}  // namespace appban::policy
