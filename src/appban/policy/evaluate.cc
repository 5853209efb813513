#include "appban/policy/evaluate.h"

#include <algorithm>
#include <map>

#include "appban/common/text.h"
#include "appban/policy/limits.h"

namespace appban::policy {
namespace {

// One byte per platform in front of the identifier keeps identical names on different platforms
// apart ("com.deepseek.chat" is both an Android package and an iOS bundle id).
std::string AppKey(Platform platform, std::string_view id) {
  std::string key;
  key.reserve(id.size() + 1);
  key.push_back(static_cast<char>('0' + static_cast<int>(platform)));
  key.append(id);
  return key;
}

bool InScope(const std::vector<std::string>& scope, const DeviceContext& device) {
  if (scope.empty()) return true;
  for (const auto& group : scope) {
    if (std::find(device.groups.begin(), device.groups.end(), group) != device.groups.end()) return true;
  }
  return false;
}

Verdict VerdictOf(Action action) {
  switch (action) {
    case Action::kRemove:
      return Verdict::kRemove;
    case Action::kBlock:
      return Verdict::kBlockInstall;
    case Action::kReport:
      return Verdict::kReport;
  }
  return Verdict::kReport;
}

}  // namespace

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kAllowed:
      return "allowed";
    case Verdict::kReport:
      return "report";
    case Verdict::kBlockInstall:
      return "block-install";
    case Verdict::kRemove:
      return "remove";
    case Verdict::kWaived:
      return "waived-until";
  }
  return "?";
}

void PolicyIndex::AddHit(HitMap& map, const std::string& key, uint32_t rule, std::string description,
                         bool by_identifier) {
  auto& hits = map[key];
  for (const auto& hit : hits) {
    if (hit.rule == rule) return;  // the first way a rule matches is the one reported
  }
  descriptions_.push_back(std::move(description));
  hits.push_back(Hit{rule, static_cast<uint32_t>(descriptions_.size() - 1), by_identifier});
}

Result<PolicyIndex> PolicyIndex::Build(const Bundle& bundle) {
  PolicyIndex index;
  std::map<std::string, const Vendor*> vendors;
  for (const auto& vendor : bundle.vendors) vendors[vendor.name] = &vendor;
  std::map<std::string, uint32_t> rule_numbers;
  for (const auto& rule : bundle.rules) {
    uint32_t number = static_cast<uint32_t>(index.rules_.size());
    rule_numbers[rule.id] = number;
    IndexedRule indexed{rule.id, rule.action, rule.scope_groups, rule.effective_at, {}, {}};
    auto add_target = [&](const Target& target, const std::string& via) {
      std::string prefix = via.empty() ? "" : "vendor " + via + ": ";
      std::string suffix = target.unverified ? " (unverified identifier)" : "";
      if (auto platform = PlatformOfTarget(target.kind)) {
        index.AddHit(index.by_app_, AppKey(*platform, target.value), number,
                     prefix + std::string(PlatformName(*platform)) + " identifier " + target.value + suffix, true);
      } else if (target.kind == TargetKind::kAndroidSigner) {
        indexed.known_signers.push_back(target.value);
        index.AddHit(index.by_signer_, target.value, number, prefix + "android signer " + target.value + suffix, false);
      } else if (target.kind == TargetKind::kAppleTeam) {
        index.AddHit(index.by_team_, target.value, number, prefix + "apple team " + target.value + suffix, false);
      }
    };
    for (const auto& target : rule.targets) {
      if (target.kind != TargetKind::kVendor) {
        add_target(target, "");
        continue;
      }
      auto vendor = vendors.find(target.value);
      if (vendor == vendors.end()) {
        return Status::FailedPrecondition("rule " + rule.id + " targets vendor \"" + target.value +
                                          "\" but the bundle has no record of it");
      }
      for (const auto& identifier : vendor->second->identifiers) add_target(identifier, vendor->second->name);
    }
    index.rules_.push_back(std::move(indexed));
  }
  for (const auto& waiver : bundle.waivers) {
    auto rule = rule_numbers.find(waiver.rule_id);
    if (rule == rule_numbers.end()) continue;  // a waiver for a rule not in force changes nothing
    index.waivers_.push_back(waiver);
    index.rules_[rule->second].waivers.push_back(static_cast<uint32_t>(index.waivers_.size() - 1));
  }
  return index;
}

AppDecision PolicyIndex::Evaluate(const InstalledApp& app, const DeviceContext& device, UnixSeconds now) const {
  // Candidate hits: by identifier, by signer, by team. Rules are few per app, so a vector with
  // linear de-duplication beats any set (and allocates nothing for the many unmatched apps).
  std::vector<const Hit*> hits;
  auto collect = [&](const HitMap& map, std::string_view key) {
    auto it = map.find(key);
    if (it == map.end()) return;
    for (const Hit& hit : it->second) {
      bool seen = false;
      for (const Hit* other : hits) seen = seen || other->rule == hit.rule;
      if (!seen) hits.push_back(&hit);
    }
  };
  collect(by_app_, AppKey(app.platform, app.id));
  if (!app.signer_sha256.empty()) collect(by_signer_, app.signer_sha256);
  if (!app.team_id.empty()) collect(by_team_, app.team_id);

  AppDecision decision;
  const Hit* best_in_force = nullptr;
  const Hit* best_waived = nullptr;
  const Waiver* best_waiver = nullptr;
  auto better = [&](const Hit* candidate, const Hit* current) {
    if (current == nullptr) return true;
    const IndexedRule& a = rules_[candidate->rule];
    const IndexedRule& b = rules_[current->rule];
    if (a.action != b.action) return a.action > b.action;
    return a.id < b.id;
  };
  std::vector<std::string> applying;
  for (const Hit* hit : hits) {
    const IndexedRule& rule = rules_[hit->rule];
    if (rule.effective_at && *rule.effective_at > now) continue;
    if (!InScope(rule.scope_groups, device)) continue;
    applying.push_back(rule.id);
    const Waiver* waiver = nullptr;
    for (uint32_t w : rule.waivers) {
      const Waiver& candidate = waivers_[w];
      if (!candidate.ActiveAt(now)) continue;
      bool covers =
          candidate.subject_kind == WaiverSubject::kDevice
              ? candidate.subject == device.device_id
              : std::find(device.groups.begin(), device.groups.end(), candidate.subject) != device.groups.end();
      if (covers && (waiver == nullptr || candidate.expires_at > waiver->expires_at ||
                     (candidate.expires_at == waiver->expires_at && candidate.id < waiver->id))) {
        waiver = &candidate;
      }
    }
    if (waiver == nullptr) {
      if (better(hit, best_in_force)) best_in_force = hit;
    } else if (better(hit, best_waived)) {
      best_waived = hit;
      best_waiver = waiver;
    }
  }
  const Hit* decider = best_in_force != nullptr ? best_in_force : best_waived;
  if (decider == nullptr) return decision;
  const IndexedRule& rule = rules_[decider->rule];
  decision.rule_id = rule.id;
  decision.matched_by = descriptions_[decider->description];
  if (decider->by_identifier && app.platform == Platform::kAndroid && !app.signer_sha256.empty() &&
      !rule.known_signers.empty() &&
      std::find(rule.known_signers.begin(), rule.known_signers.end(), app.signer_sha256) == rule.known_signers.end()) {
    decision.matched_by +=
        "; signed by " + app.signer_sha256 + ", not a known key of the publisher (possible repackage)";
  }
  if (best_in_force != nullptr) {
    decision.verdict = VerdictOf(rule.action);
  } else {
    decision.verdict = Verdict::kWaived;
    decision.waived_until = best_waiver->expires_at;
    decision.waiver_id = best_waiver->id;
  }
  for (auto& id : applying) {
    if (id != rule.id) decision.other_rules.push_back(std::move(id));
  }
  std::sort(decision.other_rules.begin(), decision.other_rules.end());
  return decision;
}

bool PolicyIndex::Mentions(Platform platform, std::string_view id, std::string_view signer_sha256,
                           std::string_view team_id) const {
  if (!signer_sha256.empty() && by_signer_.find(signer_sha256) != by_signer_.end()) return true;
  if (!team_id.empty() && by_team_.find(team_id) != by_team_.end()) return true;
  // A stack buffer for the usual identifier keeps the check free of allocation.
  char buffer[128];
  if (id.size() + 1 <= sizeof(buffer)) {
    buffer[0] = static_cast<char>('0' + static_cast<int>(platform));
    std::copy(id.begin(), id.end(), buffer + 1);
    return by_app_.find(std::string_view(buffer, id.size() + 1)) != by_app_.end();
  }
  return by_app_.find(AppKey(platform, id)) != by_app_.end();
}

std::vector<AppDecision> PolicyIndex::EvaluateAll(std::span<const InstalledApp> apps, const DeviceContext& device,
                                                  UnixSeconds now) const {
  std::vector<AppDecision> decisions;
  decisions.reserve(apps.size());
  for (const auto& app : apps) decisions.push_back(Evaluate(app, device, now));
  return decisions;
}

Result<Inventory> InventoryFromJson(const Json& json) {
  if (!json.is_object()) return Status::InvalidArgument("inventory must be a JSON object");
  Inventory inventory;
  auto string_field = [](const Json& object, const char* key, bool required) -> Result<std::string> {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
      if (required) return Status::InvalidArgument(std::string("inventory: missing field \"") + key + "\"");
      return std::string();
    }
    if (!it->is_string())
      return Status::InvalidArgument(std::string("inventory: field \"") + key + "\" must be a string");
    return it->get<std::string>();
  };
  APPBAN_ASSIGN_OR_RETURN(inventory.device.device_id, string_field(json, "device", true));
  APPBAN_RETURN_IF_ERROR(ValidateIdentifier(inventory.device.device_id, "device id"));
  if (auto it = json.find("groups"); it != json.end()) {
    if (!it->is_array()) return Status::InvalidArgument("inventory: groups must be an array of strings");
    for (const auto& group : *it) {
      if (!group.is_string()) return Status::InvalidArgument("inventory: groups must be an array of strings");
      inventory.device.groups.push_back(group.get<std::string>());
    }
  }
  auto apps = json.find("apps");
  if (apps == json.end() || !apps->is_array()) return Status::InvalidArgument("inventory: missing \"apps\" array");
  if (apps->size() > kPolicyLimits.max_inventory_items) {
    return Status::LimitExceeded("inventory lists more than " + std::to_string(kPolicyLimits.max_inventory_items) +
                                 " apps");
  }
  for (const auto& element : *apps) {
    if (!element.is_object()) return Status::InvalidArgument("inventory: each app must be an object");
    InstalledApp app;
    APPBAN_ASSIGN_OR_RETURN(std::string platform, string_field(element, "platform", true));
    APPBAN_ASSIGN_OR_RETURN(app.platform, ParsePlatform(platform));
    APPBAN_ASSIGN_OR_RETURN(app.id, string_field(element, "id", true));
    APPBAN_ASSIGN_OR_RETURN(app.version, string_field(element, "version", false));
    APPBAN_ASSIGN_OR_RETURN(std::string signer, string_field(element, "signer_sha256", false));
    if (!signer.empty()) {
      APPBAN_ASSIGN_OR_RETURN(app.signer_sha256, NormalizeHex(signer, 64, "signer_sha256"));
    }
    APPBAN_ASSIGN_OR_RETURN(app.team_id, string_field(element, "team_id", false));
    inventory.apps.push_back(std::move(app));
  }
  return inventory;
}

Json DecisionsToJson(std::span<const InstalledApp> apps, std::span<const AppDecision> decisions) {
  Json out = Json::array();
  for (size_t i = 0; i < apps.size() && i < decisions.size(); ++i) {
    const AppDecision& d = decisions[i];
    Json entry{{"platform", PlatformName(apps[i].platform)},
               {"id", apps[i].id},
               {"version", apps[i].version},
               {"decision", VerdictName(d.verdict)},
               {"rule", d.rule_id},
               {"matched_by", d.matched_by},
               {"other_rules", d.other_rules}};
    if (d.waived_until) {
      entry["waived_until"] = FormatTimestamp(*d.waived_until);
      entry["waiver"] = d.waiver_id;
    }
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace appban::policy
