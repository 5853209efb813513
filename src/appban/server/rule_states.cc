#include "appban/server/rule_states.h"

#include <algorithm>
#include <set>

namespace appban::server {
namespace {

bool InScope(const policy::Rule& rule, const policy::DeviceContext& device) {
  if (rule.scope_groups.empty()) return true;
  return std::any_of(rule.scope_groups.begin(), rule.scope_groups.end(), [&](const std::string& group) {
    return std::find(device.groups.begin(), device.groups.end(), group) != device.groups.end();
  });
}

bool Waived(const policy::Bundle& bundle, const std::string& rule_id, const policy::DeviceContext& device,
            UnixSeconds now) {
  return std::any_of(bundle.waivers.begin(), bundle.waivers.end(), [&](const policy::Waiver& waiver) {
    if (waiver.rule_id != rule_id || !waiver.ActiveAt(now)) return false;
    if (waiver.subject_kind == policy::WaiverSubject::kDevice) return waiver.subject == device.device_id;
    return std::find(device.groups.begin(), device.groups.end(), waiver.subject) != device.groups.end();
  });
}

}  // namespace

std::vector<DeviceRuleStanding> EvaluateRuleStandings(const PublishedBundle& latest,
                                                      const policy::DeviceContext& device,
                                                      std::span<const policy::InstalledApp> apps,
                                                      int64_t applied_version, UnixSeconds now) {
  std::vector<DeviceRuleStanding> standings;
  if (!latest.bundle || !latest.index) return standings;
  // Every rule some installed app matches (deciding or not, waived or not).
  std::set<std::string, std::less<>> matched;
  for (const auto& decision : latest.index->EvaluateAll(apps, device, now)) {
    if (decision.rule_id.empty()) continue;
    matched.insert(decision.rule_id);
    matched.insert(decision.other_rules.begin(), decision.other_rules.end());
  }
  for (const policy::Rule& rule : latest.bundle->rules) {
    if (rule.effective_at && *rule.effective_at > now) continue;
    if (!InScope(rule, device)) continue;
    DeviceRuleStanding standing;
    standing.rule_id = rule.id;
    standing.holds_matching_app = matched.contains(rule.id);
    int64_t first_version = latest.version;
    if (auto it = latest.rule_first_published.find(rule.id); it != latest.rule_first_published.end()) {
      first_version = it->second.first;
    }
    if (Waived(*latest.bundle, rule.id, device, now)) {
      standing.standing = RuleStanding::kWaived;
    } else if (applied_version < first_version) {
      standing.standing = RuleStanding::kPending;
    } else if (standing.holds_matching_app && rule.action == policy::Action::kRemove) {
      standing.standing = RuleStanding::kViolating;
    } else {
      standing.standing = RuleStanding::kCompliant;
    }
    standings.push_back(std::move(standing));
  }
  return standings;
}

}  // namespace appban::server
