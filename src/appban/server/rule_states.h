// Per-rule compliance of one device against the latest bundle (docs/protocol.md, "Compliance"):
// which rules target the device, and for each whether it is waived, pending (the device has not
// applied a bundle carrying the rule yet), violating (it applied it and still holds an app the
// rule removes) or compliant. The server runs this when a device's applied version or inventory
// changes and stores the result (store::DeviceRuleState), so steady check-ins cost no evaluation.
// Pure function; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"
#include "appban/server/context.h"

namespace appban::server {

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

}  // namespace appban::server
