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

  std::string Shown() const;
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

  // Creates the vendor or merges new identifiers into it.
  Result<policy::Vendor> MergeVendor(const policy::Vendor& vendor);

  // Proposes the entry's draft rule and merges its vendor records.
  Result<policy::Rule> AdoptCatalogEntry(const policy::CatalogEntry& entry, policy::Action action);

  // Compiles the published rules and active waivers into the next version, signs it, records it.
  Result<std::string> ExportBundle(const policy::SigningKey& key, int64_t validity_seconds);

  // Records a decision that changed nothing in the store (key created, bundle verified, ...).
  Status Record(const std::string& action, const std::string& object, Json after);

 private:
  store::AuditRecord Audit(std::string action, std::string object, Json before, Json after) const;
  Result<policy::Rule> Transition(const std::string& id, const std::string& action,
                                  const std::function<Status(policy::Rule&)>& step);

  // The actor may decide what widens or relaxes enforcement (approve, publish, revoke, waive):
  // kPermissionDenied for a service account, naming it.
  Status CheckHumanDecider(std::string_view what) const;

  store::Store& store_;
  Actor who_;
  std::string actor_;  // who_.id
  Clock clock_;
};

}  // namespace appban::decide
