// Evaluation: (a device's installed apps, the device and its groups, a verified bundle, now) -> one
// decision per installed app, each naming the rule that decided it.
//
// Matching. A rule matches an installed app when one of its targets (or, for a vendor target, one
// of the vendor's identifiers) names
//   - the app's identifier on its platform (android package, iOS bundle id, deb, flatpak, snap),
//     whoever signed it: a banned package name signed by an unknown key is a repackage and still
//     matches (the decision notes the foreign signer when the rule knows the publisher's keys);
//   - the app's Android signing-certificate SHA-256, whatever its package name;
//   - the app's Apple Team ID.
// A matching rule applies when it is effective (no effective_at, or effective_at <= now) and in
// scope (no scope groups, or the device is in one of them).
//
// Precedence (deterministic):
//   1. A rule with an active waiver for this device or one of its groups (expires_at > now) is
//      "waived"; every other applying rule is "in force".
//   2. If any rule is in force, the strongest action wins: remove > block > report; ties go to
//      the smallest rule id. Decision: remove / block-install / report.
//   3. Otherwise, if rules are waived, the decision is waived-until, naming the strongest waived
//      rule (ties: smallest rule id) and the latest expiry among its applying waivers.
//   4. Otherwise: allowed.
//
// A PolicyIndex is built once per bundle (hash maps keyed by platform+identifier, by signer and by
// team), is immutable afterwards and safe to share between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "appban/common/status.h"
#include "appban/policy/bundle.h"
#include "appban/policy/model.h"

namespace appban::policy {

struct InstalledApp {
  Platform platform = Platform::kAndroid;
  std::string id;  // package name, bundle id, ...
  std::string version;
  std::string signer_sha256;  // Android: signing-certificate SHA-256 (lowercase hex), if known
  std::string team_id;        // iOS: Apple Team ID, if known
};

struct DeviceContext {
  std::string device_id;
  std::vector<std::string> groups;
};

enum class Verdict { kAllowed, kReport, kBlockInstall, kRemove, kWaived };
std::string_view VerdictName(Verdict verdict);  // "allowed", "report", "block-install", "remove", "waived-until"

struct AppDecision {
  Verdict verdict = Verdict::kAllowed;
  std::string rule_id;                      // the deciding rule; empty when allowed
  std::string matched_by;                   // how the deciding rule matched ("android package com.tencent.mm", ...)
  std::optional<UnixSeconds> waived_until;  // kWaived only
  std::string waiver_id;                    // kWaived only
  std::vector<std::string> other_rules;     // other applying rules, sorted by id
};

class PolicyIndex {
 public:
  // REQUIRES: bundle verified (VerifyBundle) or compiled locally. Fails only on a vendor target
  // without a vendor record.
  static Result<PolicyIndex> Build(const Bundle& bundle);

  AppDecision Evaluate(const InstalledApp& app, const DeviceContext& device, UnixSeconds now) const;
  std::vector<AppDecision> EvaluateAll(std::span<const InstalledApp> apps, const DeviceContext& device,
                                       UnixSeconds now) const;
  // True when some rule of the bundle names this identifier, signer or team, whatever its scope,
  // effective time or waivers: an app for which this is false is "allowed" on every device. Lets
  // a caller skip building and evaluating the (many) apps no rule mentions.
  bool Mentions(Platform platform, std::string_view id, std::string_view signer_sha256, std::string_view team_id) const;

 private:
  struct IndexedRule {
    std::string id;
    Action action = Action::kRemove;
    std::vector<std::string> scope_groups;
    std::optional<UnixSeconds> effective_at;
    std::vector<std::string> known_signers;  // publisher keys the rule knows (direct or via vendor)
    std::vector<uint32_t> waivers;           // indexes into waivers_
  };
  struct Hit {
    uint32_t rule = 0;
    uint32_t description = 0;  // index into descriptions_
    bool by_identifier = false;
  };

  // Transparent, so string_view keys are looked up without building a std::string.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  using HitMap = std::unordered_map<std::string, std::vector<Hit>, KeyHash, std::equal_to<>>;

  PolicyIndex() = default;
  void AddHit(HitMap& map, const std::string& key, uint32_t rule, std::string description, bool by_identifier);

  std::vector<IndexedRule> rules_;
  std::vector<Waiver> waivers_;
  std::vector<std::string> descriptions_;
  HitMap by_app_;     // AppKey: platform byte + identifier
  HitMap by_signer_;  // signer SHA-256
  HitMap by_team_;    // Apple Team ID
};

// An inventory document: {"device":ID,"groups":[...],"apps":[{"platform","id","version",
// "signer_sha256","team_id"}]} (the last three optional).
struct Inventory {
  DeviceContext device;
  std::vector<InstalledApp> apps;
};
Result<Inventory> InventoryFromJson(const Json& json);
Json DecisionsToJson(std::span<const InstalledApp> apps, std::span<const AppDecision> decisions);

}  // namespace appban::policy
