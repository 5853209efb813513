// Per-rule compliance of one device against the latest bundle (docs/protocol.md, "Compliance"):
// which rules target the device, and for each whether it is waived, pending (the device has not
// applied a bundle carrying the rule yet), violating (it applied it and still holds an app the
// rule removes) or compliant. The server runs this when a device's applied version or inventory
// changes and stores the result (store::DeviceRuleState), so steady check-ins cost no evaluation;
// DiffRuleStates turns the standings into the rows that check-in writes. Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"
#include "appban/store/fleet.h"
#include "appban/verify/published_bundle.h"

namespace appban::verify {

enum class RuleStanding { kPending, kCompliant, kViolating, kWaived };

struct DeviceRuleStanding {
  std::string rule_id;
  RuleStanding standing = RuleStanding::kPending;
  bool holds_matching_app = false;  // an installed app matches the rule (whatever its action)
};

// `applied_version`: the bundle version the device enforces. Rules that do not target the device
// (out of scope, not yet effective) are left out.
std::vector<DeviceRuleStanding> EvaluateRuleStandings(const PublishedBundle& latest,
                                                      const policy::DeviceContext& device,
                                                      std::span<const policy::InstalledApp> apps,
                                                      int64_t applied_version, UnixSeconds now);

// What one evaluation changes in a device's stored rule states.
struct RuleStateDiff {
  // New rows and rows whose state, had_app or compliant_at changed, in the order of `standings`.
  std::vector<store::DeviceRuleState> upserts;
  // Rules with a stored row but no decided standing any more (the rule left the bundle or the
  // device's scope, or is pending again), sorted by rule id.
  std::vector<std::string> cleared_rule_ids;
};

// Compares the standings just evaluated for `device_id` against its stored rows. A pending
// standing stores nothing: the device has not applied a bundle carrying the rule yet. A row keeps what was
// first observed: had_app once set (a matching app was held, or `removed_rule_ids` says the
// device just removed one for the rule), compliant_at of the first compliant evaluation, and
// `since` while the state is unchanged; a new or changed row is stamped `bundle_version`, `now`.
// Rows that would be written unchanged are left out, so a check-in that changes nothing writes
// nothing.
RuleStateDiff DiffRuleStates(std::string_view device_id, std::span<const DeviceRuleStanding> standings,
                             std::span<const store::DeviceRuleState> stored,
                             const std::set<std::string, std::less<>>& removed_rule_ids, int64_t bundle_version,
                             UnixSeconds now);

}  // namespace appban::verify
