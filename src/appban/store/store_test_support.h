// Policy writes for the store's own tests, made straight through the Store interface with the
// audit records decide::PolicyAdmin writes for the same changes. The store's tests need history in
// a database, not due process, and decide/ sits above store/, so they must not link it.
#pragma once

#include <string>
#include <utility>

#include "appban/common/status.h"
#include "appban/policy/model.h"
#include "appban/store/store.h"

namespace appban::store {

inline Status CreateGroupAs(Store& store, policy::Group group, const std::string& actor, UnixSeconds at) {
  group.revision = 0;
  return store.PutGroup(group, AuditRecord{actor, "group.create", "group:" + group.name, nullptr,
                                           policy::GroupToJson(group), at, nullptr});
}

// Stores `rule` as a draft proposed by `actor` (no validation: the store does not need any).
inline Status ProposeRuleAs(Store& store, policy::Rule rule, const std::string& actor, UnixSeconds at) {
  rule.state = policy::RuleState::kDraft;
  rule.proposed_by = actor;
  rule.history = {policy::Transition{policy::RuleState::kDraft, actor, at, ""}};
  return store.CreateRule(rule, AuditRecord{actor, "rule.propose", "rule:" + rule.id, nullptr,
                                            policy::RuleToJson(rule, true), at, nullptr});
}

inline Status ApproveRuleAs(Store& store, const std::string& id, const std::string& actor, UnixSeconds at) {
  APPBAN_ASSIGN_OR_RETURN(policy::Rule rule, store.GetRule(id));
  Json before = policy::RuleToJson(rule, true);
  rule.state = policy::RuleState::kApproved;
  rule.history.push_back(policy::Transition{policy::RuleState::kApproved, actor, at, ""});
  Json after = policy::RuleToJson(rule, true);
  after["revision"] = rule.revision + 1;
  return store.UpdateRule(
      rule, AuditRecord{actor, "rule.approve", "rule:" + id, std::move(before), std::move(after), at, nullptr});
}

}  // namespace appban::store
