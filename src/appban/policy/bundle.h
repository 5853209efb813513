// The policy bundle: published rules, the waivers active when it was issued and the vendor records
// those rules name, compiled into one canonical document, versioned and signed with Ed25519.
// docs/policy.md specifies the format. Pure functions; thread-safe.
//
// On the wire a bundle is an envelope (canonical JSON):
//   {"format":"appban.bundle/1","key_id":HEX,"payload":TEXT,"signature":HEX}
// where TEXT is the canonical JSON of the payload, carried as a string so the signed bytes are
// exactly the bytes received, and the signature is Ed25519 over "appban-policy-bundle-v1\0" + TEXT.
//
// VerifyBundle refuses, with a distinct StatusCode for each reason:
//   kCorruption          malformed envelope or payload, non-canonical payload, wrong rules_hash
//   kNotFound            signed by a key id that is not among the trusted keys ("unknown key")
//   kBadSignature        the signature does not verify (altered or forged)
//   kFailedPrecondition  version lower than the one already held ("rollback"), more than
//                        kMaxBundleVersionStep above it ("version jump"), or equal to it with
//                        different content ("conflicting bundle")
//   kLimitExceeded       a validity longer than the verifier allows, a version above
//                        kMaxBundleVersion
//   kExpired             now >= not_after ("expired": a fresh bundle must be fetched)
// A signed bundle is still checked like any input: it must carry exactly the payload members of
// its format, rule ids (and waiver ids, vendor names) sorted and unique, issued_at < not_after.
// These checks hold at export too (CompileBundle): what the verifier refuses is never signed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/policy/keys.h"
#include "appban/policy/model.h"

namespace appban::policy {

inline constexpr std::string_view kBundleFormat = "appban.bundle/1";
inline constexpr std::string_view kPayloadFormat = "appban.policy/1";
inline constexpr std::string_view kSignatureContext{"appban-policy-bundle-v1\0", 24};

// Named limits on what a correctly signed bundle may claim (docs/policy.md, "Bundle checks").
// Versions go up by one per export; a verifier holding version N refuses N + kMaxBundleVersionStep
// + 1 and above, so one mistaken (or malicious) signature cannot jump the fleet to a version that
// blocks every later update. kMaxBundleVersion is a hard cap far below 2^63 for the same reason.
inline constexpr int64_t kMaxBundleVersionStep = 1000;
inline constexpr int64_t kMaxBundleVersion = int64_t{1} << 40;
// The longest validity any bundle may have (the server's policy.max_bundle_validity_days may be
// lower, never higher): an expiry is what limits how long a leaked or stale bundle is enforced.
inline constexpr int64_t kMaxBundleValidityDays = 366;
inline constexpr UnixSeconds kMaxBundleValiditySeconds = kMaxBundleValidityDays * 86400;

struct Bundle {
  int64_t version = 0;
  UnixSeconds issued_at = 0;
  UnixSeconds not_after = 0;
  std::vector<Rule> rules;      // published rules, sorted by id, without lifecycle fields
  std::vector<Waiver> waivers;  // waivers active at issued_at on those rules, sorted by id
  std::vector<Vendor> vendors;  // vendor records the rules target, sorted by name
  // SHA-256 (hex) of the canonical JSON {"rules":[...],"vendors":[...],"waivers":[...]}: the
  // policy content alone, so two bundles enforcing the same thing report the same hash.
  std::string rules_hash;
};

struct BundleInputs {
  std::vector<Rule> rules;      // any states: only published ones are taken
  std::vector<Waiver> waivers;  // any: only those active at issued_at on a taken rule are kept
  std::vector<Vendor> vendors;  // all known vendors: those a taken rule names are embedded
  int64_t version = 0;
  UnixSeconds issued_at = 0;
  UnixSeconds not_after = 0;
};
// Fails when a rule names a vendor without a record, two published rules share an id, or the
// version/validity are outside the limits above.
Result<Bundle> CompileBundle(const BundleInputs& inputs);

Result<std::string> ComputeRulesHash(const Bundle& bundle);
// The canonical payload text (what is signed).
Result<std::string> BundlePayload(const Bundle& bundle);
// The signed envelope text.
Result<std::string> SignBundle(const Bundle& bundle, const SigningKey& key);
// The envelope around any payload text, signed as is (no checks: tests use it to sign what
// CompileBundle refuses, and show the verifier refuses it too).
Result<std::string> SignPayload(const std::string& payload_text, const SigningKey& key);

struct VerifyOptions {
  std::vector<PublicKey> trusted_keys;
  std::optional<int64_t> held_version;  // the newest version already accepted, if any
  UnixSeconds now = 0;
  // SHA-256 (hex) of the held bundle's payload: a bundle of the held version must be that one.
  std::optional<std::string> held_payload_sha256;
  UnixSeconds max_validity = kMaxBundleValiditySeconds;  // capped at kMaxBundleValiditySeconds
};
struct VerifiedBundle {
  Bundle bundle;
  std::string key_id;
  std::string payload_sha256;  // SHA-256 (hex) of the signed payload text
};
Result<VerifiedBundle> VerifyBundle(std::string_view envelope, const VerifyOptions& options);

}  // namespace appban::policy
