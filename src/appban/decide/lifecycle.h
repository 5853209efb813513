// A rule's lifecycle: draft -> approved -> published, and revoked from any earlier state.
//
//   ProposeRule   (new)       -> draft      by anyone; records the proposer
//   ApproveRule   draft       -> approved   by someone other than the proposer (two-person rule)
//   PublishRule   approved    -> published  by anyone; published rules go into the next bundle
//   RevokeRule    any but revoked -> revoked, with a reason; a revoked rule leaves the next bundle
//
// ProposeRule and PublishRule also refuse a rule that targets a Debian package the system cannot
// lose (CheckRuleEnforceable in model.h: Essential, required, or needed by those, e.g. libc6).
//
// Every transition appends {to, by, at, note} to the rule's history. Pure functions over a Rule
// value: the caller (PolicyAdmin, admin.h) stores the result with its audit entry in one
// transaction. They live in decide/ rather than policy/ because they are the due process of deciding
// a ban, not part of what a rule is.
#pragma once

#include <string>
#include <string_view>

#include "appban/common/status.h"
#include "appban/policy/model.h"

namespace appban::decide {

Status ProposeRule(policy::Rule& rule, std::string_view proposer, UnixSeconds now, std::string_view note = "");
Status ApproveRule(policy::Rule& rule, std::string_view approver, UnixSeconds now, std::string_view note = "");
Status PublishRule(policy::Rule& rule, std::string_view publisher, UnixSeconds now, std::string_view note = "");
Status RevokeRule(policy::Rule& rule, std::string_view revoker, UnixSeconds now, std::string_view reason);

// The acting user must be named: audit entries and transitions are worthless without one.
Status ValidateActor(std::string_view actor);

}  // namespace appban::decide
