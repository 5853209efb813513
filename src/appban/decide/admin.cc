#include "appban/decide/admin.h"

#include <algorithm>
#include <chrono>

#include "appban/decide/lifecycle.h"
#include "appban/policy/limits.h"

namespace appban::decide {

using store::AuditRecord;
using store::BundleRecord;

UnixSeconds SystemClockNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Actor::Shown() const {
  if (display_name.empty() || display_name == id) return id;
  return display_name + " (" + id + ")";
}

bool Actor::Is(std::string_view user_id) const {
  return user_id == id || std::find(same_person.begin(), same_person.end(), user_id) != same_person.end();
}

PolicyAdmin::PolicyAdmin(store::Store& store, Actor actor, Clock clock)
    : store_(store), who_(std::move(actor)), actor_(who_.id), clock_(std::move(clock)) {}

PolicyAdmin::PolicyAdmin(store::Store& store, std::string name, Clock clock)
    : PolicyAdmin(store, Actor{std::move(name), "", true, nullptr, false, {}}, std::move(clock)) {}

Status PolicyAdmin::CheckHumanDecider(std::string_view what) const {
  if (who_.break_glass && what.starts_with("approve")) {
    return Status::PermissionDenied("two-person rule: " + who_.Shown() + " acts through break-glass and cannot " +
                                    std::string(what) + "; a person signed in to the admin API must");
  }
  if (!who_.human) {
    return Status::PermissionDenied("two-person rule: " + who_.Shown() + " is a service account and cannot " +
                                    std::string(what) + "; a person must");
  }
  return Status::Ok();
}

Status PolicyAdmin::CheckActor() const { return decide::ValidateActor(actor_); }

AuditRecord PolicyAdmin::Audit(std::string action, std::string object, Json before, Json after) const {
  return AuditRecord{actor_,           std::move(action), std::move(object), std::move(before),
                     std::move(after), clock_(),          who_.identity};
}

Status PolicyAdmin::Record(const std::string& action, const std::string& object, Json after) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  return store_.AppendAudit(Audit(action, object, nullptr, std::move(after)));
}

// A rule drafted through break-glass names its proposer by a typed name, which no identity
// vouches for: it is recorded as such, and the rule then needs two signed-in people after it (one
// approves, another publishes) so that the typed name never stands in for the second person.
constexpr std::string_view kBreakGlassProposerPrefix = "break-glass:";

namespace {

// A user id as the fleet store makes them (store/fleet.h): "u-" and 24 lowercase hex digits.
bool IsUserId(std::string_view id) {
  return id.size() == 26 && id.starts_with("u-") &&
         std::all_of(id.begin() + 2, id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

bool PolicyAdmin::ProposedUnderATypedName(const policy::Rule& rule) const {
  if (rule.proposed_by.starts_with(kBreakGlassProposerPrefix)) return true;
  // Drafts stored on the host before decisions needed a signed-in person (2026-12-05) name their
  // proposer by whatever was typed. Among signed-in people (whose ids are user ids), such a name
  // vouches for no one either.
  return IsUserId(actor_) && !IsUserId(rule.proposed_by);
}

Result<policy::Rule> PolicyAdmin::ProposeRule(policy::Rule rule, const std::string& note) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  const std::string proposer = who_.break_glass ? std::string(kBreakGlassProposerPrefix) + actor_ : actor_;
  APPBAN_RETURN_IF_ERROR(decide::ProposeRule(rule, proposer, clock_(), note));
  for (const auto& group : rule.scope_groups) {
    auto found = store_.GetGroup(group);
    if (!found.ok())
      return Status::NotFound("rule " + rule.id + " is scoped to group " + group + ", which does not exist");
  }
  APPBAN_RETURN_IF_ERROR(
      store_.CreateRule(rule, Audit("rule.propose", "rule:" + rule.id, nullptr, policy::RuleToJson(rule, true))));
  return rule;
}

Result<policy::Rule> PolicyAdmin::Transition(const std::string& id, const std::string& action,
                                             const std::function<Status(policy::Rule&)>& step) {
  APPBAN_ASSIGN_OR_RETURN(policy::Rule rule, store_.GetRule(id));
  Json before = policy::RuleToJson(rule, true);
  APPBAN_RETURN_IF_ERROR(step(rule));
  Json after = policy::RuleToJson(rule, true);
  after["revision"] = rule.revision + 1;
  APPBAN_RETURN_IF_ERROR(store_.UpdateRule(rule, Audit(action, "rule:" + id, std::move(before), std::move(after))));
  return rule;
}

Result<policy::Rule> PolicyAdmin::ApproveRule(const std::string& id, const std::string& note) {
  APPBAN_RETURN_IF_ERROR(CheckHumanDecider("approve rule " + id));
  return Transition(id, "rule.approve", [&](policy::Rule& rule) -> Status {
    if (rule.state == policy::RuleState::kDraft && who_.Is(rule.proposed_by)) {
      return Status::PermissionDenied("two-person rule: " + who_.Shown() + " proposed rule " + rule.id +
                                      " and cannot also approve it; another person must approve");
    }
    return decide::ApproveRule(rule, actor_, clock_(), note);
  });
}

Result<policy::Rule> PolicyAdmin::PublishRule(const std::string& id, const std::string& note) {
  APPBAN_RETURN_IF_ERROR(CheckHumanDecider("publish rule " + id));
  return Transition(id, "rule.publish", [&](policy::Rule& rule) -> Status {
    if (ProposedUnderATypedName(rule)) {
      const std::string how = rule.proposed_by.starts_with(kBreakGlassProposerPrefix)
                                  ? "through break-glass"
                                  : "on the host before decisions needed a signed-in person";
      if (who_.break_glass) {
        return Status::PermissionDenied("two-person rule: rule " + rule.id + " was proposed " + how +
                                        "; a person signed in to the admin API, other than its approver, must "
                                        "publish it");
      }
      for (auto step = rule.history.rbegin(); step != rule.history.rend(); ++step) {
        if (step->to != policy::RuleState::kApproved) continue;
        if (who_.Is(step->by)) {
          return Status::PermissionDenied("two-person rule: rule " + rule.id + " was proposed " + how + " (" +
                                          rule.proposed_by + ": a typed name, not a signed-in person), so " +
                                          who_.Shown() +
                                          ", who approved it, cannot also publish it; another person must");
        }
        break;
      }
    }
    return decide::PublishRule(rule, actor_, clock_(), note);
  });
}

Result<policy::Rule> PolicyAdmin::RevokeRule(const std::string& id, const std::string& reason) {
  APPBAN_RETURN_IF_ERROR(CheckHumanDecider("revoke rule " + id));
  return Transition(id, "rule.revoke",
                    [&](policy::Rule& rule) { return decide::RevokeRule(rule, actor_, clock_(), reason); });
}

Result<policy::Waiver> PolicyAdmin::AddWaiver(policy::Waiver waiver) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  APPBAN_RETURN_IF_ERROR(CheckHumanDecider("approve waiver " + waiver.id));
  UnixSeconds now = clock_();
  waiver.approved_by = actor_;
  waiver.created_at = now;
  waiver.revoked_at.reset();
  waiver.revoked_by.clear();
  if (!waiver.requested_by.empty() && who_.Is(waiver.requested_by)) {
    return Status::PermissionDenied("two-person rule: " + who_.Shown() + " requested waiver " + waiver.id +
                                    " and cannot also approve it");
  }
  APPBAN_RETURN_IF_ERROR(CheckWaiver(waiver));
  APPBAN_RETURN_IF_ERROR(store_.CreateWaiver(
      waiver, Audit("waiver.add", "waiver:" + waiver.id, nullptr, policy::WaiverToJson(waiver, true))));
  return waiver;
}

Status PolicyAdmin::CheckWaiver(const policy::Waiver& waiver) {
  APPBAN_RETURN_IF_ERROR(policy::ValidateWaiver(waiver));
  APPBAN_ASSIGN_OR_RETURN(policy::Rule rule, store_.GetRule(waiver.rule_id));
  if (rule.state == policy::RuleState::kRevoked) {
    return Status::FailedPrecondition("waiver " + waiver.id + ": rule " + rule.id + " is revoked");
  }
  if (waiver.subject_kind == policy::WaiverSubject::kGroup && !store_.GetGroup(waiver.subject).ok()) {
    return Status::NotFound("waiver " + waiver.id + ": no group " + waiver.subject);
  }
  return Status::Ok();
}

Result<policy::Waiver> PolicyAdmin::RevokeWaiver(const std::string& id, const std::string& reason) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  if (reason.empty()) return Status::InvalidArgument("revoking waiver " + id + " needs a reason");
  APPBAN_ASSIGN_OR_RETURN(policy::Waiver waiver, store_.GetWaiver(id));
  if (waiver.revoked_at) return Status::FailedPrecondition("waiver " + id + " is already revoked");
  Json before = policy::WaiverToJson(waiver, true);
  waiver.revoked_at = clock_();
  waiver.revoked_by = actor_;
  Json after = policy::WaiverToJson(waiver, true);
  after["reason"] = reason;
  APPBAN_RETURN_IF_ERROR(
      store_.UpdateWaiver(waiver, Audit("waiver.revoke", "waiver:" + id, std::move(before), std::move(after))));
  return waiver;
}

Result<policy::Group> PolicyAdmin::CreateGroup(policy::Group group) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  APPBAN_RETURN_IF_ERROR(policy::ValidateGroup(group));
  group.revision = 0;
  APPBAN_RETURN_IF_ERROR(
      store_.PutGroup(group, Audit("group.create", "group:" + group.name, nullptr, policy::GroupToJson(group))));
  return group;
}

Result<policy::Group> PolicyAdmin::AddDevices(const std::string& name, const std::vector<std::string>& devices) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  APPBAN_ASSIGN_OR_RETURN(policy::Group group, store_.GetGroup(name));
  Json before = policy::GroupToJson(group);
  for (const auto& device : devices) {
    APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(device, "device id"));
    if (std::find(group.devices.begin(), group.devices.end(), device) == group.devices.end())
      group.devices.push_back(device);
  }
  APPBAN_RETURN_IF_ERROR(store_.PutGroup(
      group, Audit("group.add-devices", "group:" + name, std::move(before), policy::GroupToJson(group))));
  return group;
}

Status PolicyAdmin::DeleteGroup(const std::string& name) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  APPBAN_ASSIGN_OR_RETURN(policy::Group group, store_.GetGroup(name));
  APPBAN_ASSIGN_OR_RETURN(auto rules, store_.ListRules());
  for (const auto& rule : rules) {
    if (rule.state != policy::RuleState::kRevoked &&
        std::find(rule.scope_groups.begin(), rule.scope_groups.end(), name) != rule.scope_groups.end()) {
      return Status::FailedPrecondition("group " + name + " scopes rule " + rule.id + "; revoke the rule first");
    }
  }
  return store_.DeleteGroup(name, Audit("group.delete", "group:" + name, policy::GroupToJson(group), nullptr));
}

Result<policy::Vendor> PolicyAdmin::WriteVendorMerge(const policy::Vendor& incoming) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  APPBAN_RETURN_IF_ERROR(policy::ValidateVendor(incoming));
  APPBAN_ASSIGN_OR_RETURN(auto vendors, store_.ListVendors());
  policy::Vendor vendor = incoming;
  vendor.revision = 0;
  Json before = nullptr;
  for (const auto& existing : vendors) {
    if (existing.name != incoming.name) continue;
    vendor = existing;
    before = policy::VendorToJson(existing);
    if (vendor.country.empty()) vendor.country = incoming.country;
    for (const auto& target : incoming.identifiers) {
      auto same = [&](const policy::Target& t) { return t.kind == target.kind && t.value == target.value; };
      if (std::none_of(vendor.identifiers.begin(), vendor.identifiers.end(), same))
        vendor.identifiers.push_back(target);
    }
  }
  // A vendor is read back with the rule's target limit: a merge must not store one it cannot read.
  if (vendor.identifiers.size() > policy::kPolicyLimits.max_targets_per_rule) {
    return Status::LimitExceeded("vendor " + vendor.name + " would have " + std::to_string(vendor.identifiers.size()) +
                                 " identifiers, more than the " +
                                 std::to_string(policy::kPolicyLimits.max_targets_per_rule) + " a vendor may have");
  }
  if (!before.is_null() && policy::VendorToJson(vendor) == before) return vendor;  // nothing new
  APPBAN_RETURN_IF_ERROR(
      store_.PutVendor(vendor, Audit("vendor.put", "vendor:" + vendor.name, before, policy::VendorToJson(vendor))));
  return vendor;
}

namespace {

// Whether merging `incoming` adds an identifier (or the vendor itself) to what is stored.
bool MergeAddsIdentifiers(const std::vector<policy::Vendor>& stored, const policy::Vendor& incoming) {
  for (const auto& existing : stored) {
    if (existing.name != incoming.name) continue;
    for (const auto& target : incoming.identifiers) {
      auto same = [&](const policy::Target& t) { return t.kind == target.kind && t.value == target.value; };
      if (std::none_of(existing.identifiers.begin(), existing.identifiers.end(), same)) return true;
    }
    return false;
  }
  return true;
}

// The approved and published rules that target vendor `name`: what they ban grows with the vendor.
std::vector<std::string> RulesInForceTargetingVendor(const std::vector<policy::Rule>& rules, const std::string& name) {
  std::vector<std::string> ids;
  for (const auto& rule : rules) {
    if (rule.state != policy::RuleState::kApproved && rule.state != policy::RuleState::kPublished) continue;
    for (const auto& target : rule.targets) {
      if (target.kind == policy::TargetKind::kVendor && target.value == name) {
        ids.push_back(rule.id);
        break;
      }
    }
  }
  return ids;
}

}  // namespace

Result<store::Change> PolicyAdmin::MergeVendor(const policy::Vendor& incoming, int64_t quorum,
                                               const std::string& note) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  APPBAN_RETURN_IF_ERROR(policy::ValidateVendor(incoming));
  APPBAN_ASSIGN_OR_RETURN(auto vendors, store_.ListVendors());
  if (MergeAddsIdentifiers(vendors, incoming)) {
    APPBAN_ASSIGN_OR_RETURN(auto rules, store_.ListRules());
    std::vector<std::string> widened = RulesInForceTargetingVendor(rules, incoming.name);
    if (!widened.empty()) {
      std::string list;
      for (const auto& id : widened) list += (list.empty() ? "" : ", ") + id;
      Json payload = policy::VendorToJson(incoming);
      payload["widens"] = widened;
      return ProposeChange("vendor.merge", "vendor:" + incoming.name, std::move(payload), quorum,
                           note.empty() ? "widens rule(s) " + list : note);
    }
  }
  APPBAN_ASSIGN_OR_RETURN(policy::Vendor stored, WriteVendorMerge(incoming));
  store::Change done;
  done.kind = "vendor.merge";
  done.object = "vendor:" + stored.name;
  done.payload = policy::VendorToJson(stored);
  done.quorum = quorum;
  done.proposed_by = actor_;
  done.state = store::ChangeState::kApplied;
  return done;
}

Result<PolicyAdmin::AdoptedEntry> PolicyAdmin::AdoptCatalogEntry(const policy::CatalogEntry& entry,
                                                                 policy::Action action, int64_t quorum) {
  APPBAN_ASSIGN_OR_RETURN(policy::Adoption adopted, policy::AdoptEntry(entry, action));
  AdoptedEntry adoption;
  for (const auto& vendor : adopted.vendors) {
    APPBAN_ASSIGN_OR_RETURN(store::Change change,
                            MergeVendor(vendor, quorum, "adopted from catalog entry " + entry.id));
    if (change.state == store::ChangeState::kPending) adoption.pending_vendor_merges.push_back(std::move(change));
  }
  APPBAN_ASSIGN_OR_RETURN(adoption.rule,
                          ProposeRule(std::move(adopted.rule), "adopted from catalog entry " + entry.id));
  return adoption;
}

Result<std::string> PolicyAdmin::ExportBundle(const policy::SigningKey& key, int64_t validity_seconds) {
  APPBAN_RETURN_IF_ERROR(CheckActor());
  if (validity_seconds <= 0) return Status::InvalidArgument("bundle validity must be positive");
  policy::BundleInputs inputs;
  APPBAN_ASSIGN_OR_RETURN(inputs.rules, store_.ListRules());
  APPBAN_ASSIGN_OR_RETURN(inputs.waivers, store_.ListWaivers());
  APPBAN_ASSIGN_OR_RETURN(inputs.vendors, store_.ListVendors());
  APPBAN_ASSIGN_OR_RETURN(int64_t latest, store_.LatestBundleVersion());
  inputs.version = latest + 1;
  inputs.issued_at = clock_();
  inputs.not_after = inputs.issued_at + validity_seconds;
  APPBAN_ASSIGN_OR_RETURN(policy::Bundle bundle, policy::CompileBundle(inputs));
  APPBAN_ASSIGN_OR_RETURN(std::string envelope, policy::SignBundle(bundle, key));
  BundleRecord record{bundle.version, bundle.issued_at, bundle.rules_hash, key.key_id(), envelope};
  Json after{{"version", bundle.version},
             {"issued_at", FormatTimestamp(bundle.issued_at)},
             {"not_after", FormatTimestamp(bundle.not_after)},
             {"rules_hash", bundle.rules_hash},
             {"key_id", key.key_id()},
             {"rules", bundle.rules.size()},
             {"waivers", bundle.waivers.size()}};
  APPBAN_RETURN_IF_ERROR(
      store_.RecordBundle(record, Audit("bundle.publish", "bundle:" + std::to_string(bundle.version), nullptr, after)));
  return envelope;
}

}  // namespace appban::decide
