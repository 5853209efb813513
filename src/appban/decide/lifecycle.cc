#include "appban/decide/lifecycle.h"

namespace appban::decide {

using policy::Rule;
using policy::RuleState;

namespace {

void Record(Rule& rule, RuleState to, std::string_view by, UnixSeconds now, std::string_view note) {
  rule.state = to;
  rule.history.push_back(policy::Transition{to, std::string(by), now, std::string(note)});
}

Status RequireState(const Rule& rule, RuleState expected, std::string_view verb) {
  if (rule.state == expected) return Status::Ok();
  return Status::FailedPrecondition("cannot " + std::string(verb) + " rule " + rule.id + ": it is " +
                                    std::string(policy::RuleStateName(rule.state)) + ", not " +
                                    std::string(policy::RuleStateName(expected)));
}

}  // namespace

Status ValidateActor(std::string_view actor) {
  if (actor.empty()) {
    return Status::InvalidArgument(
        "no acting user: pass --user NAME or set APPBAN_USER (it is recorded in the audit log)");
  }
  return policy::ValidateIdentifier(actor, "user name");
}

Status ProposeRule(Rule& rule, std::string_view proposer, UnixSeconds now, std::string_view note) {
  APPBAN_RETURN_IF_ERROR(ValidateActor(proposer));
  APPBAN_RETURN_IF_ERROR(policy::ValidateRule(rule));
  APPBAN_RETURN_IF_ERROR(policy::CheckRuleEnforceable(rule));
  rule.proposed_by = std::string(proposer);
  rule.history.clear();
  Record(rule, RuleState::kDraft, proposer, now, note);
  return Status::Ok();
}

Status ApproveRule(Rule& rule, std::string_view approver, UnixSeconds now, std::string_view note) {
  APPBAN_RETURN_IF_ERROR(ValidateActor(approver));
  APPBAN_RETURN_IF_ERROR(RequireState(rule, RuleState::kDraft, "approve"));
  if (approver == rule.proposed_by) {
    return Status::PermissionDenied("two-person rule: " + std::string(approver) + " proposed rule " + rule.id +
                                    " and cannot also approve it; another person must approve");
  }
  Record(rule, RuleState::kApproved, approver, now, note);
  return Status::Ok();
}

Status PublishRule(Rule& rule, std::string_view publisher, UnixSeconds now, std::string_view note) {
  APPBAN_RETURN_IF_ERROR(ValidateActor(publisher));
  APPBAN_RETURN_IF_ERROR(RequireState(rule, RuleState::kApproved, "publish"));
  // A draft stored before the protected-package list existed must not reach devices either.
  APPBAN_RETURN_IF_ERROR(policy::CheckRuleEnforceable(rule));
  Record(rule, RuleState::kPublished, publisher, now, note);
  return Status::Ok();
}

Status RevokeRule(Rule& rule, std::string_view revoker, UnixSeconds now, std::string_view reason) {
  APPBAN_RETURN_IF_ERROR(ValidateActor(revoker));
  if (rule.state == RuleState::kRevoked) return Status::FailedPrecondition("rule " + rule.id + " is already revoked");
  if (reason.empty()) return Status::InvalidArgument("revoking rule " + rule.id + " needs a reason");
  Record(rule, RuleState::kRevoked, revoker, now, reason);
  return Status::Ok();
}

}  // namespace appban::decide
