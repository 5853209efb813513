// PolicyAdmin: changes that wait for a quorum of distinct people (admin.h, store/change.h).
#include <algorithm>
#include <cstdint>

#include "appban/decide/admin.h"

namespace appban::decide {

namespace {

constexpr std::string_view kRuleApprove = "rule.approve";
constexpr std::string_view kRuleRevoke = "rule.revoke";
constexpr std::string_view kWaiverAdd = "waiver.add";
constexpr std::string_view kVendorMerge = "vendor.merge";

Status CheckQuorum(int64_t quorum) {
  if (quorum < store::ChangeLimits::kMinQuorum || quorum > store::ChangeLimits::kMaxQuorum) {
    return Status::InvalidArgument("quorum " + std::to_string(quorum) + " is outside " +
                                   std::to_string(store::ChangeLimits::kMinQuorum) + ".." +
                                   std::to_string(store::ChangeLimits::kMaxQuorum));
  }
  return Status::Ok();
}

Status CheckNote(const std::string& note) {
  if (note.size() > store::ChangeLimits::kMaxNoteBytes) {
    return Status::InvalidArgument("note is longer than " + std::to_string(store::ChangeLimits::kMaxNoteBytes) +
                                   " bytes");
  }
  return Status::Ok();
}

}  // namespace

bool PolicyAdmin::IsPolicyChange(std::string_view kind) {
  return kind == kRuleApprove || kind == kRuleRevoke || kind == kWaiverAdd || kind == kVendorMerge;
}

Result<store::Change> PolicyAdmin::NewChange(std::string kind, std::string object, Json payload, int64_t quorum,
                                             const std::string& note) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  APPBAN_RETURN_IF_ERROR(CheckQuorum(quorum));
  APPBAN_RETURN_IF_ERROR(CheckNote(note));
  if (!payload.is_object()) return Status::InvalidArgument("a change's payload is an object");
  if (payload.dump().size() > store::ChangeLimits::kMaxPayloadBytes) {
    return Status::InvalidArgument("a change's payload is larger than " +
                                   std::to_string(store::ChangeLimits::kMaxPayloadBytes) + " bytes");
  }
  store::Change change;
  APPBAN_ASSIGN_OR_RETURN(change.id, store::NewChangeId());
  change.kind = std::move(kind);
  change.object = std::move(object);
  change.payload = std::move(payload);
  change.quorum = quorum;
  change.proposed_by = actor_;
  change.proposer_name = who_.display_name.empty() ? actor_ : who_.display_name;
  change.proposer_counts = !who_.break_glass;
  change.note = note;
  change.created_at = clock_();
  return change;
}

Result<store::Change> PolicyAdmin::ProposeChange(std::string kind, std::string object, Json payload, int64_t quorum,
                                                 const std::string& note) {
  APPBAN_RETURN_IF_ERROR(CheckHumanDecider("propose " + kind));
  APPBAN_ASSIGN_OR_RETURN(store::Change change,
                          NewChange(std::move(kind), std::move(object), std::move(payload), quorum, note));
  APPBAN_RETURN_IF_ERROR(
      store_.PutChange(change, Audit("change.propose", "change:" + change.id, nullptr, store::ChangeToJson(change))));
  return change;
}

Result<store::Change> PolicyAdmin::ProposeRuleRevocation(const std::string& id, const std::string& reason,
                                                         int64_t quorum) {
  APPBAN_ASSIGN_OR_RETURN(policy::Rule rule, store_.GetRule(id));
  if (rule.state == policy::RuleState::kRevoked)
    return Status::FailedPrecondition("rule " + id + " is already revoked");
  if (reason.empty()) return Status::InvalidArgument("revoking rule " + id + " needs a reason");
  return ProposeChange(std::string(kRuleRevoke), "rule:" + id, Json{{"rule_id", id}, {"reason", reason}}, quorum,
                       reason);
}

Result<store::Change> PolicyAdmin::ProposeWaiver(policy::Waiver waiver, int64_t quorum) {
  // The proposer is the requester; whoever completes the quorum is recorded as the approver.
  if (!waiver.requested_by.empty() && !who_.Is(waiver.requested_by)) {
    return Status::InvalidArgument("waiver " + waiver.id + ": requested_by is the person proposing it (" + actor_ +
                                   "), not " + waiver.requested_by);
  }
  waiver.requested_by = actor_;
  waiver.approved_by = actor_;  // a placeholder for the checks; replaced when applied
  waiver.created_at = clock_();
  waiver.revoked_at.reset();
  waiver.revoked_by.clear();
  APPBAN_RETURN_IF_ERROR(CheckWaiver(waiver));
  if (store_.GetWaiver(waiver.id).ok()) return Status::AlreadyExists("waiver " + waiver.id + " already exists");
  Json payload = policy::WaiverToJson(waiver, false);
  payload.erase("approved_by");
  payload.erase("created_at");
  return ProposeChange(std::string(kWaiverAdd), "waiver:" + waiver.id, std::move(payload), quorum,
                       waiver.justification);
}

Result<store::Change> PolicyAdmin::ApproveRuleWithQuorum(const std::string& id, const std::string& note,
                                                         int64_t quorum) {
  APPBAN_RETURN_IF_ERROR(CheckQuorum(quorum));
  APPBAN_RETURN_IF_ERROR(CheckNote(note));
  if (quorum == store::ChangeLimits::kMinQuorum) {
    // The proposer and this approver are the two people: nothing waits.
    APPBAN_ASSIGN_OR_RETURN(policy::Rule rule, ApproveRule(id, note));
    store::Change done;
    done.kind = std::string(kRuleApprove);
    done.object = "rule:" + rule.id;
    done.payload = Json{{"rule_id", rule.id}};
    done.quorum = quorum;
    done.proposed_by = rule.proposed_by;
    done.approvals.push_back({actor_, who_.display_name, clock_(), note});
    done.state = store::ChangeState::kApplied;
    return done;
  }
  // Join the rule's open approval, if one is open.
  APPBAN_ASSIGN_OR_RETURN(auto changes, store_.ListChangesAfter("", SIZE_MAX));
  for (const auto& change : changes) {
    if (change.state == store::ChangeState::kPending && change.kind == kRuleApprove && change.object == "rule:" + id) {
      return ApproveChange(change.id, note);
    }
  }
  APPBAN_RETURN_IF_ERROR(CheckHumanDecider("approve rule " + id));
  APPBAN_ASSIGN_OR_RETURN(policy::Rule rule, store_.GetRule(id));
  if (rule.state != policy::RuleState::kDraft) {
    return Status::FailedPrecondition("cannot approve rule " + id + ": it is " +
                                      std::string(policy::RuleStateName(rule.state)) + ", not draft");
  }
  if (who_.Is(rule.proposed_by)) {
    return Status::PermissionDenied("two-person rule: " + who_.Shown() + " proposed rule " + id +
                                    " and cannot also approve it; another person must approve");
  }
  // The rule's proposer is the change's first person; this approver is the second.
  APPBAN_ASSIGN_OR_RETURN(store::Change change,
                          NewChange(std::string(kRuleApprove), "rule:" + id, Json{{"rule_id", id}}, quorum, ""));
  change.proposed_by = rule.proposed_by;
  change.proposer_name = rule.proposed_by;
  change.proposer_counts = !ProposedUnderATypedName(rule);  // a typed name is nobody
  change.approvals.push_back({actor_, who_.display_name, change.created_at, note});
  APPBAN_RETURN_IF_ERROR(
      store_.PutChange(change, Audit("change.approve", "change:" + change.id, nullptr, store::ChangeToJson(change))));
  return change;
}

Result<store::Change> PolicyAdmin::ApproveChange(const std::string& id, const std::string& note) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  APPBAN_RETURN_IF_ERROR(CheckNote(note));
  APPBAN_ASSIGN_OR_RETURN(store::Change change, store_.GetChange(id));
  APPBAN_RETURN_IF_ERROR(CheckHumanDecider("approve change " + id + " (" + change.kind + " " + change.object + ")"));
  if (change.state != store::ChangeState::kPending) {
    return Status::FailedPrecondition("change " + id + " is " + std::string(store::ChangeStateName(change.state)) +
                                      ", not pending");
  }
  if (who_.Is(change.proposed_by)) {
    return Status::PermissionDenied("two-person rule: " + who_.Shown() + " proposed change " + id +
                                    " and cannot also approve it; another person must");
  }
  for (const auto& approval : change.approvals) {
    if (who_.Is(approval.user_id)) {
      return Status::PermissionDenied("two-person rule: " + who_.Shown() + " has already approved change " + id +
                                      "; it needs " + std::to_string(change.quorum) + " different people");
    }
  }
  Json before = store::ChangeToJson(change);
  change.approvals.push_back({actor_, who_.display_name, clock_(), note});
  APPBAN_RETURN_IF_ERROR(store_.PutChange(
      change, Audit("change.approve", "change:" + id, std::move(before), store::ChangeToJson(change))));
  return change;
}

Result<Json> PolicyAdmin::ApplyPolicyChange(const store::Change& change) {
  if (!change.QuorumReached()) {
    return Status::FailedPrecondition("change " + change.id + " has " + std::to_string(change.People()) + " of " +
                                      std::to_string(change.quorum) + " people");
  }
  std::string rule_id = StringOr(change.payload, "rule_id");
  if (change.kind == kRuleApprove) {
    APPBAN_ASSIGN_OR_RETURN(policy::Rule rule, ApproveRule(rule_id, "change " + change.id));
    return policy::RuleToJson(rule, true);
  }
  if (change.kind == kRuleRevoke) {
    APPBAN_ASSIGN_OR_RETURN(policy::Rule rule, RevokeRule(rule_id, StringOr(change.payload, "reason")));
    return policy::RuleToJson(rule, true);
  }
  if (change.kind == kWaiverAdd) {
    Json json = change.payload;
    json["approved_by"] = actor_;
    json["created_at"] = FormatTimestamp(clock_());
    APPBAN_ASSIGN_OR_RETURN(policy::Waiver waiver, policy::WaiverFromJson(json));
    waiver.requested_by = change.proposed_by;
    APPBAN_ASSIGN_OR_RETURN(policy::Waiver added, AddWaiver(std::move(waiver)));
    return policy::WaiverToJson(added, true);
  }
  if (change.kind == kVendorMerge) {
    Json json = change.payload;
    json.erase("widens");
    APPBAN_ASSIGN_OR_RETURN(policy::Vendor incoming, policy::VendorFromJson(json));
    APPBAN_ASSIGN_OR_RETURN(policy::Vendor merged, WriteVendorMerge(incoming));
    return policy::VendorToJson(merged);
  }
  return Status::InvalidArgument("change " + change.id + " of kind " + change.kind + " is not a policy change");
}

Result<store::Change> PolicyAdmin::CloseChange(store::Change change, store::ChangeState state) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  if (change.state != store::ChangeState::kPending) {
    return Status::FailedPrecondition("change " + change.id + " is " +
                                      std::string(store::ChangeStateName(change.state)) + ", not pending");
  }
  if (state == store::ChangeState::kWithdrawn && !who_.Is(change.proposed_by)) {
    return Status::FailedPrecondition("change " + change.id + " can be withdrawn only by its proposer, " +
                                      change.proposer_name);
  }
  if (state == store::ChangeState::kApplied && !change.QuorumReached()) {
    return Status::FailedPrecondition("change " + change.id + " has not reached its quorum");
  }
  Json before = store::ChangeToJson(change);
  change.state = state;
  change.closed_at = clock_();
  change.closed_by = actor_;
  std::string action = state == store::ChangeState::kApplied ? "change.apply" : "change.withdraw";
  APPBAN_RETURN_IF_ERROR(
      store_.PutChange(change, Audit(action, "change:" + change.id, std::move(before), store::ChangeToJson(change))));
  return change;
}

}  // namespace appban::decide
