// Fleet compliance: which state each enrolled device is in for each rule of the latest bundle, the
// per-rule counts, and how long devices took to comply. Pure functions over plain data (devices,
// groups, rule states read from the FleetStore, the bundle's waivers), so the numbers can be
// checked by hand in tests and the admin API only has to load the data. Thread-safe: no state.
//
// A device the rule's scope reaches but whose platform the rule names nothing for (a Linux
// workstation and a rule with only Android and iOS targets) is NOT APPLICABLE: neither targeted
// nor compliant — the rule cannot say anything about it. Platforms: "linux" (deb, flatpak, snap
// targets), "android" (Android packages and signers), "ios"/"ipados" (iOS bundles and Team IDs);
// vendor targets count with the identifiers of the vendor record. A device of any other platform
// is not applicable to every rule; one with no platform recorded is judged applicable.
//
// States (docs/protocol.md, "Compliance"), for one rule and one enrolled, non-revoked device the
// rule targets (no scope groups, or the device is in one of them) and applies to, decided in this order:
//   waived     an active waiver of the bundle (expires_at > now, not revoked) names the device or
//              one of its groups, or the device's last evaluation found it waived;
//   mismatch   the device reports a rules_hash that is not the hash of the bundle version it
//              claims (verify/rules_hash.h): whatever its stored state, it is not counted
//              compliant, violating or pending until it reports the right hash;
//   violating  the stored state (evaluated against a bundle carrying the rule) is violating;
//   cannot_enforce  an MDM device (source other than "agent") whose MDM cannot enforce appban's
//              bans on it (ComplianceDevice::cannot_enforce: an unmanaged policy, no app reports,
//              gone from the MDM, an unsupervised iPhone…) or a rule with publisher targets
//              (signer, Team ID), which no MDM inventory can match: never counted compliant;
//   compliant  the stored state is compliant; REMEDIATED when it also had a matching app at first
//              evaluation (remediated devices are a subset of compliant ones);
//   pending    no state evaluated against a bundle carrying the rule yet, and the device was
//              heard from within stale_after;
//   stale      as pending, but the device's last check-in is older than stale_after (or never).
// targeted = waived + mismatch + violating + cannot_enforce + compliant + pending + stale; each device is in
// exactly one.
// A device's groups are the group its enrolment token named plus every policy group listing it.
//
// Time to compliance: for each compliant device whose state carries compliant_at, the seconds from
// the issue time of the first bundle that carried the rule to compliant_at (clamped at 0). The
// median and p95 are exact NEAREST-RANK order statistics: with the n samples sorted ascending, the
// p-th percentile is the sample at 1-based rank ceil(p/100 * n) (so the median of 4 samples is the
// 2nd, the lower median). No interpolation: every reported number is a real device's time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "appban/policy/model.h"
#include "appban/store/fleet.h"
#include "appban/verify/published_bundle.h"

namespace appban::verify {

enum class DeviceRuleStatus {
  kNotTargeted,
  kNotApplicable,
  kWaived,
  kMismatch,
  kViolating,
  kCannotEnforce,
  kCompliant,
  kRemediated,
  kPending,
  kStale
};
// "not_targeted", "not_applicable", "waived", "mismatch", "violating", "cannot_enforce", "compliant", "remediated",
// "pending", "stale"
std::string_view DeviceRuleStatusName(DeviceRuleStatus status);

// The platform families a rule can name apps on (bits of ComplianceRule::families).
enum PlatformFamily : uint8_t {
  kFamilyLinux = 1,    // deb, flatpak, snap
  kFamilyAndroid = 2,  // Android packages, Android signers
  kFamilyApple = 4,    // iOS bundles, Apple Team IDs
};
// The family of a device's platform string: "linux", "android", "ios"/"ipados"; 0 for any other
// (nothing appban can name applies), and kAllFamilies for an empty (unrecorded) platform.
inline constexpr uint8_t kAllFamilies = kFamilyLinux | kFamilyAndroid | kFamilyApple;
uint8_t PlatformFamilyOf(std::string_view platform);
uint8_t PlatformFamilyOf(policy::TargetKind kind);  // 0 for kVendor (expanded by the caller)

// One enrolled device as compliance sees it.
struct ComplianceDevice {
  std::string id;
  std::vector<std::string> groups;  // sorted, unique
  UnixSeconds last_seen = 0;        // 0: never checked in
  UnixSeconds enrolled_at = 0;      // 0: unknown (then only the publish time counts)
  bool revoked = false;
  bool rules_hash_mismatch = false;  // store::Device::rules_hash_mismatch is set
  bool mdm = false;                  // imported from an MDM (store::Device::IsMdm)
  bool cannot_enforce = false;       // store::Device::cannot_enforce is set
  uint8_t family = kAllFamilies;     // PlatformFamilyOf(platform)
};

// One rule of the latest bundle.
struct ComplianceRule {
  std::string id;
  policy::Action action = policy::Action::kRemove;
  std::vector<std::string> scope_groups;  // empty: every device
  int64_t first_version = 0;              // first bundle version that carried the rule
  UnixSeconds first_published_at = 0;     // that bundle's issue time
  // The rule names a publisher (android-signer, apple-team, directly or through a vendor record):
  // MDM inventories carry no signer identity, so an MDM device cannot be verified against it.
  bool publisher_targets = false;
  // The platform families the rule's targets (vendor records expanded) name apps on.
  uint8_t families = kAllFamilies;
};
// The rules of a bundle as compliance sees them (first publication from `latest`).
std::vector<ComplianceRule> ComplianceRulesOf(const PublishedBundle& latest);

struct ComplianceParams {
  UnixSeconds now = 0;
  int64_t stale_after_seconds = 0;
};

// The fleet's devices with their group memberships, indexed by id. Build once per request.
class FleetMembership {
 public:
  // Heterogeneous lookup: a string_view id finds its entry without building a std::string.
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
  };

  // `devices` as listed by the FleetStore; `groups` from the policy Store. Revoked devices are kept
  // (so a lookup can say "revoked") but never targeted.
  static FleetMembership Build(const std::vector<store::Device>& devices, const std::vector<policy::Group>& groups);
  // The same in steps, so a caller can read the fleet page by page instead of holding every
  // store::Device at once: Add each page, then Finish once with the groups.
  FleetMembership() = default;
  void Add(const std::vector<store::Device>& devices);
  void Finish(const std::vector<policy::Group>& groups);

  const std::vector<ComplianceDevice>& devices() const { return devices_; }
  // Index into devices(), or nullopt.
  std::optional<size_t> Find(std::string_view device_id) const;
  // Active (non-revoked) devices.
  int64_t active_devices() const { return active_devices_; }

 private:
  std::vector<ComplianceDevice> devices_;
  std::unordered_map<std::string, size_t, IdHash, std::equal_to<>> index_;
  int64_t active_devices_ = 0;
};

// Waivers of the bundle, indexed by rule for the per-device check.
class WaiverLookup {
 public:
  using List = std::vector<const policy::Waiver*>;
  // Keeps pointers into `waivers`, which must outlive the lookup.
  explicit WaiverLookup(const std::vector<policy::Waiver>& waivers);
  // True when an active (at `now`) waiver on `rule_id` names the device or one of its groups.
  bool Exempts(std::string_view rule_id, const ComplianceDevice& device, UnixSeconds now) const;
  // The waivers on one rule (nullptr: none), so a pass over the fleet looks the rule up once.
  const List* ForRule(std::string_view rule_id) const;
  static bool Exempts(const List* waivers, const ComplianceDevice& device, UnixSeconds now);

 private:
  std::unordered_map<std::string, List, FleetMembership::IdHash, std::equal_to<>> by_rule_;
};

// The state of one device for one rule. `state` is the device's stored row for the rule, if any.
DeviceRuleStatus ClassifyDeviceRule(const ComplianceDevice& device, const ComplianceRule& rule,
                                    const store::DeviceRuleState* state, const WaiverLookup& waivers,
                                    const ComplianceParams& params);
// The same with the rule's waivers already looked up (WaiverLookup::ForRule).
DeviceRuleStatus ClassifyDeviceRule(const ComplianceDevice& device, const ComplianceRule& rule,
                                    const store::DeviceRuleState* state, const WaiverLookup::List* rule_waivers,
                                    const ComplianceParams& params);
bool InScope(const ComplianceDevice& device, const ComplianceRule& rule);

// How many of the samples took at most `seconds` (cumulative), for a chart of compliance against
// the time since publish.
struct CompliedWithin {
  int64_t seconds = 0;
  int64_t devices = 0;
};
// The marks the curve is read at: 1 s to 30 days, roughly 1-2-5 per decade and the clock's units,
// so one chart's axis serves a fleet on long-polls (seconds) and one checking in daily (days).
inline constexpr int64_t kCurveMarksSeconds[] = {1,    2,    5,    10,    20,    30,    60,     120,    300,    600,
                                                 1800, 3600, 7200, 21600, 43200, 86400, 172800, 604800, 2592000};

struct TimeToCompliance {
  int64_t samples = 0;
  std::optional<int64_t> median_seconds;  // nearest rank (see above); unset without samples
  std::optional<int64_t> p95_seconds;
  std::optional<int64_t> max_seconds;
  // At each mark of kCurveMarksSeconds up to the first one that is >= max_seconds (so the last
  // point holds every sample; samples past 30 days end the curve at 30 days, short of `samples`).
  // Empty without samples.
  std::vector<CompliedWithin> curve;
};
// Nearest-rank order statistics of `seconds` and the curve (reordered in place; O(n)).
TimeToCompliance SummarizeDurations(std::vector<int64_t>& seconds);

// Seconds from when `device` could first have received `rule` (the rule's first publish, or the
// device's enrolment when that came later) to `compliant_at`; never negative.
int64_t SecondsToCompliance(const ComplianceDevice& device, const ComplianceRule& rule, UnixSeconds compliant_at);
// The sample at 1-based rank ceil(percentile/100 * n); REQUIRES non-empty, 0 < percentile <= 100.
int64_t NearestRank(std::vector<int64_t>& seconds, int percentile);

struct RuleCompliance {
  ComplianceRule rule;
  int64_t targeted = 0;
  int64_t compliant = 0;  // includes remediated
  int64_t remediated = 0;
  int64_t violating = 0;
  int64_t waived = 0;
  int64_t mismatch = 0;
  int64_t cannot_enforce = 0;
  int64_t pending = 0;
  int64_t stale = 0;
  int64_t not_applicable = 0;  // in scope, but on a platform the rule names nothing for (not in targeted)
  TimeToCompliance time_to_compliance;
  // Filled only up to `list_limit` ids each (sorted by device id); the *_total counts are exact.
  std::vector<std::string> violating_devices;
  std::vector<std::string> mismatch_devices;
  std::vector<std::string> cannot_enforce_devices;
  std::vector<std::string> pending_devices;  // pending and stale
  bool lists_truncated = false;
};

// Summarizes one rule. `states` are the rule's stored rows (ListRuleStates: device_id filled).
// Rows of unknown or revoked devices are ignored. `list_limit` 0 leaves the id lists empty.
RuleCompliance SummarizeRule(const FleetMembership& fleet, const ComplianceRule& rule,
                             const std::vector<store::DeviceRuleState>& states, const WaiverLookup& waivers,
                             const ComplianceParams& params, size_t list_limit);

// Fleet totals over every rule of the bundle, per active device:
//   devices = untargeted + fully_compliant + mismatch_any + violating_any + cannot_enforce_any +
//   pending_any, where
//   mismatch_any:    targeted by at least one rule and reporting a rules_hash that is not its
//                    claimed version's (even when every rule targeting it is waived: a device
//                    that does not enforce the published bundle is never fully compliant);
//   fully_compliant: every rule targeting it is compliant (or remediated) or waived;
//   violating_any:   violating at least one rule;
//   cannot_enforce_any: violating none, cannot-enforce on at least one (an MDM device appban
//                    cannot verify is never fully compliant);
//   pending_any:     none of the above, pending or stale on at least one;
//   stale_any:       the part of pending_any that is stale on at least one rule.
struct FleetTotals {
  int64_t devices = 0;
  int64_t fully_compliant = 0;
  int64_t mismatch_any = 0;
  int64_t violating_any = 0;
  int64_t cannot_enforce_any = 0;
  int64_t pending_any = 0;
  int64_t stale_any = 0;
  int64_t untargeted = 0;  // no rule targets the device (or none applies to its platform)
};
struct FleetCompliance {
  std::vector<RuleCompliance> rules;
  FleetTotals totals;
};
// Fleet compliance device by device: each device of the membership classified against every rule
// once, whatever order the caller reads the stored states in (SummarizeStoredFleet reads them by
// device, as the table is keyed).
struct RuleTally;
class FleetSummarizer {
 public:
  // Keeps references to all four: they must outlive the summarizer.
  FleetSummarizer(const FleetMembership& fleet, const std::vector<ComplianceRule>& rules, const WaiverLookup& waivers,
                  const ComplianceParams& params);
  ~FleetSummarizer();
  FleetSummarizer(const FleetSummarizer&) = delete;
  FleetSummarizer& operator=(const FleetSummarizer&) = delete;
  // Device `index` of the membership, with its stored row for rules[r] at states[r] (nullptr or
  // past the end: none). A device added twice counts once (the first time).
  void AddDevice(size_t index, std::span<const store::DeviceRuleState* const> states);
  bool Added(size_t index) const;
  // Devices never added count with no stored state (pending or stale).
  FleetCompliance Finish();

 private:
  const FleetMembership& fleet_;
  const ComplianceParams& params_;
  std::vector<RuleTally> tallies_;
  std::vector<uint8_t> flags_;
  std::vector<bool> added_;
};

// `states_by_rule[i]` belongs to `rules[i]`.
FleetCompliance SummarizeFleet(const FleetMembership& fleet, const std::vector<ComplianceRule>& rules,
                               const std::vector<std::vector<store::DeviceRuleState>>& states_by_rule,
                               const WaiverLookup& waivers, const ComplianceParams& params);

// The same from the store, without holding its rows: the stored states are scanned in ranges of
// `devices_per_scan` devices of the membership, in the table's key order (each device's rows
// together), and each device is classified as its rows pass. What GET /v1/admin/compliance runs:
// at 100,000 devices and 50 rules it reads 5 million rows without a copy of any id
// (docs/benchmarks.md). Rows of devices not in the membership, or of rules not in `rules`, are
// ignored, as SummarizeFleet ignores them.
Result<FleetCompliance> SummarizeStoredFleet(store::FleetStore& store, const FleetMembership& fleet,
                                             const std::vector<ComplianceRule>& rules, const WaiverLookup& waivers,
                                             const ComplianceParams& params, size_t devices_per_scan = 2000);

}  // namespace appban::verify
