#include "appban/verify/rule_states.h"

#include <algorithm>
#include <map>

namespace appban::verify {
namespace {

bool InScope(const policy::Rule& rule, const policy::DeviceContext& device) {
  if (rule.scope_groups.empty()) return true;
  return std::any_of(rule.scope_groups.begin(), rule.scope_groups.end(), [&](const std::string& group) {
    return std::find(device.groups.begin(), device.groups.end(), group) != device.groups.end();
  });
}

store::ComplianceState StoredState(RuleStanding standing) {
  switch (standing) {
    case RuleStanding::kViolating:
      return store::ComplianceState::kViolating;
    case RuleStanding::kWaived:
      return store::ComplianceState::kWaived;
    default:
      return store::ComplianceState::kCompliant;
  }
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

RuleStateDiff DiffRuleStates(std::string_view device_id, std::span<const DeviceRuleStanding> standings,
                             std::span<const store::DeviceRuleState> stored,
                             const std::set<std::string, std::less<>>& removed_rule_ids, int64_t bundle_version,
                             UnixSeconds now) {
  RuleStateDiff diff;
  std::map<std::string, const store::DeviceRuleState*> existing;
  for (const auto& row : stored) existing[row.rule_id] = &row;
  std::set<std::string, std::less<>> kept;
  for (const DeviceRuleStanding& standing : standings) {
    if (standing.standing == RuleStanding::kPending) continue;
    kept.insert(standing.rule_id);
    store::DeviceRuleState row;
    row.device_id = std::string(device_id);
    row.rule_id = standing.rule_id;
    row.state = StoredState(standing.standing);
    row.version = bundle_version;
    row.since = now;
    row.had_app = standing.holds_matching_app || removed_rule_ids.contains(standing.rule_id);
    auto old = existing.find(standing.rule_id);
    if (old != existing.end()) {
      const store::DeviceRuleState& before = *old->second;
      row.had_app = row.had_app || before.had_app;
      row.compliant_at = before.compliant_at;
      if (before.state == row.state) row.since = before.since;
    }
    if (row.state == store::ComplianceState::kCompliant && !row.compliant_at) row.compliant_at = now;
    bool changed = old == existing.end() || old->second->state != row.state || old->second->had_app != row.had_app ||
                   old->second->compliant_at != row.compliant_at;
    if (changed) diff.upserts.push_back(std::move(row));
  }
  for (const auto& [rule_id, row] : existing) {
    if (!kept.contains(rule_id)) diff.cleared_rule_ids.push_back(rule_id);
  }
  return diff;
}

}  // namespace appban::verify
