// Administrative operations on the policy: each one checks the policy rules (lifecycle, two-person
// rule, references between objects), then writes the change and its audit entry through the Store
// in one transaction. The CLI and the server's admin API call these; they never write the
// Store directly. Not thread-safe (like the Store it wraps).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "appban/policy/bundle.h"
#include "appban/policy/catalog.h"
#include "appban/policy/keys.h"
#include "appban/policy/model.h"
#include "appban/store/store.h"

namespace appban::decide {

using Clock = std::function<UnixSeconds()>;
UnixSeconds SystemClockNow();

// Who acts. The two-person rule compares `id`s, so through the admin API `id` is the user id of an
// authenticated identity (store::User), never a typed name.
struct Actor {
  std::string id;            // recorded in every transition and as the audit actor
  std::string display_name;  // shown in refusals ("alice (u-…)")
  bool human = true;         // a service account cannot approve, publish or revoke
  Json identity;             // the audit identity (store::AuditIdentityJson), null for none
  // Acting on the host without authenticating (`--break-glass`): may propose, never approve, and a
  // change it proposes needs its whole quorum from other, authenticated people.
  bool break_glass = false;
  // The person's other accounts (user ids an administrator linked with `id`): the two-person rule
  // compares people, so what any of them proposed or approved counts as this actor's.
  std::vector<std::string> same_person;

  std::string Shown() const;
  // Whether `user_id` (a proposer, an approver) is this actor's person.
  bool Is(std::string_view user_id) const;
};

class PolicyAdmin {
 public:
  PolicyAdmin(store::Store& store, Actor actor, Clock clock = SystemClockNow);
  // An actor known only by `name` (the local CLI, tests).
  PolicyAdmin(store::Store& store, std::string name, Clock clock = SystemClockNow);

  Status CheckActor() const;

  // Stores `rule` as a new draft proposed by the actor. Scope groups must exist.
  Result<policy::Rule> ProposeRule(policy::Rule rule, const std::string& note = "");
  Result<policy::Rule> ApproveRule(const std::string& id, const std::string& note = "");
  Result<policy::Rule> PublishRule(const std::string& id, const std::string& note = "");
  Result<policy::Rule> RevokeRule(const std::string& id, const std::string& reason);

  // The actor approves the waiver; the rule must exist and not be revoked, a group subject must
  // exist, and the expiry must lie in the future.
  Result<policy::Waiver> AddWaiver(policy::Waiver waiver);
  Result<policy::Waiver> RevokeWaiver(const std::string& id, const std::string& reason);

  Result<policy::Group> CreateGroup(policy::Group group);
  Result<policy::Group> AddDevices(const std::string& group, const std::vector<std::string>& devices);
  Status DeleteGroup(const std::string& name);

  // Creates the vendor or merges new identifiers into it. A rule that targets "vendor:NAME" bans
  // every identifier of the vendor, so adding identifiers to a vendor that an approved or
  // published rule targets widens what that rule bans: the merge then waits for `quorum` people
  // as a "vendor.merge" change that the actor proposes (a person, never a service account), and
  // the pending change is returned. Otherwise the merge is written at once and an applied change
  // is returned whose payload is the vendor as stored (unchanged when the merge added nothing).
  Result<store::Change> MergeVendor(const policy::Vendor& vendor, int64_t quorum, const std::string& note = "");

  // Proposes the entry's draft rule and merges its vendor records (MergeVendor with `quorum`).
  struct AdoptedEntry {
    policy::Rule rule;
    std::vector<store::Change> pending_vendor_merges;  // vendor merges waiting for a quorum
  };
  Result<AdoptedEntry> AdoptCatalogEntry(const policy::CatalogEntry& entry, policy::Action action, int64_t quorum);

  // Compiles the published rules and active waivers into the next version, signs it, records it.
  Result<std::string> ExportBundle(const policy::SigningKey& key, int64_t validity_seconds);

  // ---- Changes that wait for a quorum (store/change.h, docs/identity.md "Quorum")
  //
  // A change is proposed by a person (never a service account); the proposer counts as the first
  // of `quorum` distinct people, unless acting through break-glass. Each approval by another
  // person adds one; service accounts, break-glass actors, the proposer and earlier approvers are
  // refused with kPermissionDenied ("two-person rule: …"). Every step is audited (change.propose,
  // change.approve, change.apply, change.withdraw).

  // Proposes revoking rule `id` (kinds "rule.revoke"); checked now, applied at quorum.
  Result<store::Change> ProposeRuleRevocation(const std::string& id, const std::string& reason, int64_t quorum);
  // Proposes a waiver ("waiver.add"): the actor is its requester; the approvers grant it.
  Result<store::Change> ProposeWaiver(policy::Waiver waiver, int64_t quorum);
  // Proposes a change the caller applies itself (key rotation, the admin role): `kind`, `object`
  // and `payload` are recorded as given.
  Result<store::Change> ProposeChange(std::string kind, std::string object, Json payload, int64_t quorum,
                                      const std::string& note);
  // Approving draft rule `id` when more than two people must agree: the proposer of the rule
  // counts as the first, the first approver opens a "rule.approve" change, later ones join it,
  // and the approval that reaches the quorum approves the rule. With quorum 2 it is ApproveRule.
  Result<store::Change> ApproveRuleWithQuorum(const std::string& id, const std::string& note, int64_t quorum);
  // The actor joins pending change `id`. The change is returned with the approval recorded; the
  // caller applies it when QuorumReached() (ApplyPolicyChange for the policy kinds) and closes it.
  Result<store::Change> ApproveChange(const std::string& id, const std::string& note);
  // Applies a change of a policy kind (rule.approve, rule.revoke, waiver.add, vendor.merge) as
  // the actor, the approver who completed the quorum; returns the changed object as JSON.
  // kInvalidArgument for another kind.
  Result<Json> ApplyPolicyChange(const store::Change& change);
  static bool IsPolicyChange(std::string_view kind);
  // Marks the change applied (by the actor whose approval completed it) or withdrawn (only by its
  // proposer, while pending).
  Result<store::Change> CloseChange(store::Change change, store::ChangeState state);

  // Records a decision that changed nothing in the store (key created, bundle verified, ...).
  Status Record(const std::string& action, const std::string& object, Json after);

 private:
  store::AuditRecord Audit(std::string action, std::string object, Json before, Json after) const;
  Result<policy::Rule> Transition(const std::string& id, const std::string& action,
                                  const std::function<Status(policy::Rule&)>& step);

  // Whether the rule's proposer is a typed name rather than a signed-in person (break-glass, or a
  // draft from before decisions needed one): such a rule needs two people after it.
  bool ProposedUnderATypedName(const policy::Rule& rule) const;
  // The actor may decide what widens or relaxes enforcement (approve, publish, revoke, waive):
  // kPermissionDenied for a service account, naming it.
  Status CheckHumanDecider(std::string_view what) const;
  // Writes `incoming`'s new identifiers into the stored vendor (or creates it), with no quorum
  // check: MergeVendor's direct path and an applied "vendor.merge" change.
  Result<policy::Vendor> WriteVendorMerge(const policy::Vendor& incoming);
  // The checks AddWaiver makes before writing (also made when a waiver is proposed).
  Status CheckWaiver(const policy::Waiver& waiver);
  Result<store::Change> NewChange(std::string kind, std::string object, Json payload, int64_t quorum,
                                  const std::string& note);

  store::Store& store_;
  Actor who_;
  std::string actor_;  // who_.id
  Clock clock_;
};

}  // namespace appban::decide
