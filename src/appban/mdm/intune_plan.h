// What a published bundle means for one Intune tenant: the pure computation behind the Intune
// connector's plan and apply (no network, no files; intune_connector.h does those).
//
// Three mechanisms, per configured target (an Entra group with its appban groups):
//   1. Uninstall assignments (v1.0, every platform Intune manages apps on): for each app of
//      Intune's catalogue (iosStoreApp / iosVppApp bundleId, androidStoreApp packageId) that a rule
//      bans for the target's groups, a mobileAppAssignment {intent: uninstall, target:
//      groupAssignmentTarget{groupId}}. Intune uninstalls only apps it manages.
//   2. iOS restricted-app compliance (beta iosCompliancePolicy.restrictedApps, at most 100): an
//      appListItem {name, appId} per banned bundle id, so a device that has it is non-compliant.
//   3. iOS device restrictions (v1.0 iosGeneralDeviceConfiguration.appsVisibilityList with
//      appsVisibilityListType appsNotInListCompliant, supervised devices): the app is hidden.
// A bundle id / package is "banned for a target" when PolicyIndex::Evaluate gives remove or
// block-install for a device in the target's groups (effective times, scopes, waivers count as for
// agent devices); a waived or lifted ban removes appban's entries for that target.
//
// Ownership, as for AMAPI: appban removes only what it created, recorded in IntuneState. An entry
// or assignment someone else made is left alone (reported as "already"); an administrator's
// assignment of a banned app to the same group with another intent is a conflict, reported and
// left alone; an allow-list (appsInListCompliant) configuration is a conflict too. Before an
// operation is sent its ownership is recorded as pending; a pending item found in place at the next
// read is adopted, one not found is dropped. Every other property of every object stays as it was:
// PATCH bodies carry only @odata.type and the list appban changes.
//
// Pure functions over values; thread-safe.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/mdm/amapi_plan.h"
#include "appban/mdm/config.h"
#include "appban/mdm/intune_inventory.h"
#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"

namespace appban::mdm {

// Graph documents at most 100 restrictedApps per compliance policy.
inline constexpr size_t kMaxRestrictedApps = 100;
inline constexpr std::string_view kIosCompliancePolicyType = "#microsoft.graph.iosCompliancePolicy";
inline constexpr std::string_view kIosGeneralConfigurationType = "#microsoft.graph.iosGeneralDeviceConfiguration";
inline constexpr std::string_view kGroupTargetType = "#microsoft.graph.groupAssignmentTarget";

struct IntuneState {
  std::map<std::string, std::string> assignments;               // "mobileAppId|groupId" → appban's assignment id
  std::set<std::string> pending_assignments;                    // "mobileAppId|groupId" being created
  std::map<std::string, std::set<std::string>> compliance;      // policy id → appIds appban added
  std::map<std::string, std::set<std::string>> configurations;  // configuration id → appIds appban added
  std::map<std::string, std::set<std::string>> pending_lists;   // "compliance:ID"/"configuration:ID" → after
  std::set<std::string> list_type_set;  // configurations whose appsVisibilityListType appban set
  int64_t last_applied_bundle = 0;
  UnixSeconds last_applied_at = 0;

  bool operator==(const IntuneState&) const = default;
};
Json IntuneStateToJson(const IntuneState& state);
Result<IntuneState> IntuneStateFromJson(const Json& json);

// The iOS bundle ids and Android packages the bundle's rules name, with their rules, and the
// targets Intune cannot enforce (publisher keys, Apple Team IDs).
struct IntuneBanned {
  std::map<std::string, std::vector<std::string>, std::less<>> ios, android;
  std::vector<Unenforceable> unenforceable;
};
IntuneBanned CollectIntuneBanned(const policy::Bundle& bundle);

// Everything a plan reads from Graph. An object that could not be read is named in read_errors.
struct IntuneSnapshot {
  std::vector<CatalogApp> catalogue;
  std::map<std::string, std::vector<Json>> assignments;  // mobileApp id → its assignments
  std::map<std::string, Json> compliance_policies;       // id → policy (beta)
  std::map<std::string, Json> configurations;            // id → configuration (v1.0)
  std::map<std::string, std::string> read_errors;        // object → error
};

struct IntuneOperation {
  enum class Kind { kCreateAssignment, kDeleteAssignment, kPatchCompliancePolicy, kPatchConfiguration };
  Kind kind = Kind::kCreateAssignment;
  std::string object;                    // mobileApp id, compliance policy id or configuration id
  std::string group;                     // assignments: the Entra group
  std::string label;                     // the app's display name and id, for people
  std::vector<std::string> add, remove;  // bundle ids / packages
  std::string assignment_id;             // kDeleteAssignment
  Json body = Json::object();            // POST / PATCH body
  std::set<std::string> owned_after;     // lists: appIds appban owns once stored
  bool list_type_set_after = false;      // configurations

  std::string Path() const;  // the Graph path (with /v1.0 or /beta) the operation goes to
  std::string Describe() const;
};

struct IntunePlan {
  std::vector<IntuneOperation> operations;
  std::vector<std::string> notes;   // left alone: someone else's entry, waived, conflict, not in catalogue
  std::vector<std::string> errors;  // objects that could not be read or planned
  std::vector<Unenforceable> unenforceable;
  IntuneState resolved;  // the loaded state with pending items resolved and vanished items forgotten
  bool state_changes = false;

  bool Empty() const { return operations.empty() && errors.empty() && !state_changes; }
};

IntunePlan PlanIntune(const policy::PolicyIndex& index, const IntuneBanned& banned,
                      const std::vector<IntuneTarget>& targets, const IntuneSnapshot& snapshot,
                      const IntuneState& state, UnixSeconds now);

}  // namespace appban::mdm
