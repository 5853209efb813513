// What a published bundle means for one AMAPI policy: the pure computation behind
// `appban mdm plan` and `apply` (no network, no files; amapi_connector.h does those).
//
// For a managed policy, every Android package some rule of the bundle names (directly or through
// its vendor) is evaluated like an app on a device whose groups are the policy's configured
// groups (policy::PolicyIndex::Evaluate: effective times, group scopes and waivers count exactly
// as they do for agent devices). A package whose verdict is remove or block-install must have an
// applications[] entry with installType BLOCKED; AMAPI has no "refuse installs but keep the
// installed copy", so block-install is enforced as BLOCKED too (docs/mdm.md). A waived, report-only
// or unbanned package must not have an entry appban put there.
//
// Ownership. appban removes only entries it created or changed, recorded per policy in the
// connector's state as package → the entry that was there before (null when there was none):
//   - banned, no entry                → append {packageName, installType: BLOCKED}; owned, previous null
//   - banned, entry BLOCKED not ours  → an administrator blocked it already: left alone, not owned
//   - banned, other entry (AVAILABLE…) → replaced by the BLOCKED entry; owned, previous = that entry
//   - banned, owned but the entry was changed or removed since → blocked again (the ban stands)
//   - not banned, owned, still BLOCKED → the previous entry restored (or the entry removed)
//   - not banned, owned, entry changed since → an administrator took it over: forgotten, untouched
// Every other entry and every other field of the policy stays byte-for-byte as it was read;
// statusReportingSettings.applicationReportsEnabled is set to true when it is not (devices report
// their apps only then), keeping the other reporting settings.
//
// Pure functions over values; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/mdm/config.h"
#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"

namespace appban::mdm {

// What appban owns in one policy: package → the entry it replaced (null: appban added the entry).
using OwnedEntries = std::map<std::string, Json, std::less<>>;

// The part of a rule AMAPI cannot express, reported by every plan so nobody believes otherwise.
struct Unenforceable {
  std::string rule_id;
  std::string target;  // "android-signer:ab12…"
  std::string reason;
};

struct PolicyChange {
  std::string policy;                        // enterprises/E/policies/P
  std::string policy_version;                // Policy.version as read ("" when absent)
  std::vector<std::string> block;            // entries added or turned into BLOCKED
  std::vector<std::string> unblock;          // appban's entries removed or restored
  std::vector<std::string> released;         // appban's entries an administrator changed: forgotten, untouched
  std::vector<std::string> already_blocked;  // banned and already BLOCKED by someone else: untouched
  std::vector<std::string> waived;           // banned but waived for this policy's groups: no entry
  bool enable_application_reports = false;
  // What to send: the patch body (only the fields in update_mask) and the mask. Empty when the
  // policy needs no change.
  Json patch_body = Json::object();
  std::string update_mask;
  OwnedEntries owned_after;  // the ownership record once the patch is stored

  bool NeedsPatch() const { return !update_mask.empty(); }
  // Changes of ownership alone (released entries) are recorded without patching.
  bool ChangesState(const OwnedEntries& before) const { return owned_after != before; }
};

// The Android packages the bundle's rules name, each with the rules naming it (sorted), and the
// publisher targets AMAPI cannot enforce.
struct BannedPackages {
  std::map<std::string, std::vector<std::string>, std::less<>> packages;
  std::vector<Unenforceable> unenforceable;
};
BannedPackages CollectBannedPackages(const policy::Bundle& bundle);

// The change one policy needs. `current` is the policy as policies.get returned it. Fails only
// when the policy's applications[] is malformed or over the limit.
Result<PolicyChange> PlanPolicy(const policy::PolicyIndex& index, const BannedPackages& banned,
                                const ManagedPolicy& managed, const Json& current, const OwnedEntries& owned,
                                UnixSeconds now);

}  // namespace appban::mdm
