// The ban policy model: what a rule targets, what it does, who decided it and on what authority,
// the waivers that exempt devices from it, and the vendors and device groups it refers to.
// docs/policy.md explains the model and its lifecycle. Plain values: copyable, not thread-safe to
// mutate concurrently. JSON forms (…ToJson / …FromJson) are the ones stored, audited and bundled;
// the FromJson functions validate untrusted input and say which field is wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"

namespace appban::policy {

// Packaging systems an installed app can come from.
enum class Platform { kAndroid, kIos, kDeb, kFlatpak, kSnap };
std::string_view PlatformName(Platform platform);  // "android", "ios", "deb", "flatpak", "snap"
Result<Platform> ParsePlatform(std::string_view name);

// What a target names. The first five are app identifiers on one platform; the next two name a
// publisher (every app it signs); kVendor names a vendor record, which expands into all of the
// vendor's identifiers and publisher keys.
enum class TargetKind {
  kAndroidPackage,
  kIosBundle,
  kDebPackage,
  kFlatpakApp,
  kSnapName,
  kAndroidSigner,  // SHA-256 of the signing certificate, 64 lowercase hex digits
  kAppleTeam,      // Apple Developer Team ID, 10 upper-case alphanumerics
  kVendor,
};
// "android", "ios", "deb", "flatpak", "snap", "android-signer", "apple-team", "vendor"
std::string_view TargetKindName(TargetKind kind);
Result<TargetKind> ParseTargetKind(std::string_view name);
// The platform whose app identifiers this kind names, if it names app identifiers.
std::optional<Platform> PlatformOfTarget(TargetKind kind);

struct Target {
  TargetKind kind = TargetKind::kAndroidPackage;
  std::string value;
  // True when the identifier comes from a source that only believes it (catalog id_status "B"):
  // it is enforced like any other, but shown as unverified everywhere it is printed.
  bool unverified = false;

  friend bool operator==(const Target&, const Target&) = default;
};
// Checks and normalizes a target (signer hashes to lowercase hex, no empty values).
Result<Target> MakeTarget(TargetKind kind, std::string_view value, bool unverified = false);
// Parses "kind:value", e.g. "android:com.tencent.mm" or "vendor:AO Kaspersky Lab".
Result<Target> ParseTargetSpec(std::string_view spec);
std::string TargetSpec(const Target& target);

// remove: remove the app and refuse reinstalls; block: refuse installs, leave installed copies;
// report: monitor mode, only report. Ordered by strength (the precedence in evaluate.h).
enum class Action { kReport = 1, kBlock = 2, kRemove = 3 };
std::string_view ActionName(Action action);
Result<Action> ParseAction(std::string_view name);

enum class RuleState { kDraft, kApproved, kPublished, kRevoked };
std::string_view RuleStateName(RuleState state);
Result<RuleState> ParseRuleState(std::string_view name);

// One step of a rule's lifecycle: who moved it to which state, when, and why.
struct Transition {
  RuleState to = RuleState::kDraft;
  std::string by;
  UnixSeconds at = 0;
  std::string note;
};

struct LinkedAssessment {
  std::string apk_sha256;  // 64 lowercase hex digits
  std::string report;      // where the report lives (path or URL), may be empty
};

struct Rule {
  std::string id;  // [a-z0-9][a-z0-9._-]*, unique, chosen by the proposer or derived from the catalog
  std::string title;
  std::vector<Target> targets;
  Action action = Action::kRemove;
  std::vector<std::string> scope_groups;    // empty: every device
  std::optional<UnixSeconds> effective_at;  // the rule does not apply before this time
  std::string effective_note;               // the source's own words when it gave no exact date
  std::string rationale;
  std::string authority;
  std::string instrument;               // the legal instrument (directive, order, memo)
  std::vector<std::string> references;  // URLs
  std::vector<LinkedAssessment> assessments;
  std::string source;  // catalog entry id the rule was adopted from, if any

  RuleState state = RuleState::kDraft;
  std::string proposed_by;
  std::vector<Transition> history;  // oldest first; the first records the proposal
  // Incremented by every stored change; writers pass the revision they read (optimistic locking).
  int64_t revision = 0;
};

// Validates a rule's own fields (identifier syntax, targets, lengths); not its lifecycle.
Status ValidateRule(const Rule& rule);

// Why a Debian package may not be banned, or nullopt when it may: it is Essential: yes or
// Priority: required in Debian 12, or one of those depends on it (libc6). The list is
// data/debian-protected-packages.txt, compiled in. Removing such a package breaks the system, and
// banning it would pin it and refuse its upgrades, blocking security updates fleet-wide; the agent
// refuses all three whatever a bundle says (it judges from the device's own dpkg database).
std::optional<std::string> ProtectedDebianPackage(std::string_view package);
// InvalidArgument naming the package and the reason when a deb target of the rule is protected.
// Checked when a rule is proposed and when it is published (lifecycle.h), not when stored rules
// or bundles are read: a rule stored before the list existed still loads, and is reported.
Status CheckRuleEnforceable(const Rule& rule);
// `with_lifecycle` adds state, proposer, history and revision; bundles carry the rule without them.
Json RuleToJson(const Rule& rule, bool with_lifecycle);
Result<Rule> RuleFromJson(const Json& json);

enum class WaiverSubject { kDevice, kGroup };
std::string_view WaiverSubjectName(WaiverSubject subject);

// Exempts one device or one group from one rule until `expires_at`; afterwards the rule applies
// again without anyone acting.
struct Waiver {
  std::string id;
  std::string rule_id;
  WaiverSubject subject_kind = WaiverSubject::kDevice;
  std::string subject;  // device id or group name
  std::string justification;
  std::string requested_by;  // who asked for it (may be empty)
  std::string approved_by;
  UnixSeconds created_at = 0;
  UnixSeconds expires_at = 0;
  std::optional<UnixSeconds> revoked_at;
  std::string revoked_by;
  int64_t revision = 0;

  bool ActiveAt(UnixSeconds now) const { return !revoked_at && now < expires_at; }
};
Status ValidateWaiver(const Waiver& waiver);
Json WaiverToJson(const Waiver& waiver, bool with_lifecycle);
Result<Waiver> WaiverFromJson(const Json& json);

// A vendor: the identifiers and publisher keys of everything it ships. Banning the vendor bans all
// of them, and every app signed by one of its keys whatever its package name.
struct Vendor {
  std::string name;
  std::string country;              // ISO 3166 alpha-2, may be empty
  std::vector<Target> identifiers;  // app identifiers, signers and team IDs (never kVendor)
  int64_t revision = 0;
};
Status ValidateVendor(const Vendor& vendor);
Json VendorToJson(const Vendor& vendor);
Result<Vendor> VendorFromJson(const Json& json);

struct Group {
  std::string name;
  std::string description;
  std::vector<std::string> devices;
  int64_t revision = 0;
};
Status ValidateGroup(const Group& group);
Json GroupToJson(const Group& group);
Result<Group> GroupFromJson(const Json& json);

// Identifiers for rules, waivers, groups and devices: 1-128 of [A-Za-z0-9._:@-], starting
// alphanumeric, so they are safe in file names, URLs and log lines.
Status ValidateIdentifier(std::string_view id, std::string_view what);

}  // namespace appban::policy
