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

class PolicyAdmin {
 public:
  // `actor` is the acting user recorded in every transition and audit entry.
  PolicyAdmin(store::Store& store, std::string actor, Clock clock = SystemClockNow);

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

  store::Store& store_;
  std::string actor_;
  Clock clock_;
};

}  // namespace appban::decide
