// What the MDM connector fuzz targets share: a fixed clock and a fixed published bundle of WeChat
// (and other) bans, so that each input is planned and evaluated against the same policy.
#pragma once

#include <string>
#include <vector>

#include "appban/common/time.h"
#include "appban/policy/bundle.h"

namespace appban::mdm::fuzzing {

inline constexpr UnixSeconds kNow = 1700000000;

// A published rule `id` banning `targets` (every group unless `scope_groups`).
inline policy::Rule BanRule(const std::string& id, std::vector<policy::Target> targets,
                            std::vector<std::string> scope_groups = {}) {
  policy::Rule rule;
  rule.id = id;
  rule.title = id;
  rule.targets = std::move(targets);
  rule.scope_groups = std::move(scope_groups);
  rule.state = policy::RuleState::kPublished;
  return rule;
}

// Bundle version 1 of `rules`, valid from just before kNow for a day; traps when it does not compile.
inline policy::Bundle FixedBundle(std::vector<policy::Rule> rules) {
  policy::BundleInputs inputs{std::move(rules), {}, {}, 1, kNow - 100, kNow + 86400};
  auto bundle = policy::CompileBundle(inputs);
  if (!bundle.ok()) __builtin_trap();
  return *bundle;
}

}  // namespace appban::mdm::fuzzing
