// One simulated device's protocol state, without any I/O: what it has installed, the bundle it
// enforces, its event queue and what its next check-in says. The fleet driver (fleet.h) moves
// bytes; this class decides, so it can be tested without a network.
//
// Applying a bundle follows docs/protocol.md and docs/policy.md like a real agent: the envelope
// must verify with a pinned policy key, be newer than the applied version and not be expired;
// every installed app the bundle decides `remove` is dropped from the inventory (the simulated
// removal always succeeds) and a `removed` event is queued with the next sequence number. A
// refused bundle queues a `bundle_refused` event instead.
//
// Not thread-safe; a SimDevice belongs to one io_context thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "appban/common/status.h"
#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"
#include "appban/protocol/messages.h"
#include "appban/sim/inventory.h"

namespace appban::sim {

struct VerifiedPolicy {
  policy::Bundle bundle;
  policy::PolicyIndex index;
};

// Bundle verification shared by every device of one process. All simulated devices of a run pin
// the same policy keys and receive byte-identical envelopes, so the signature, format and rules
// hash of each distinct envelope are checked once (policy::VerifyBundle) and the outcome — success
// or the refusal — is reused; the per-device checks (newer than the applied version, not expired)
// are still made by each device. This keeps 100,000 devices from costing 100,000 Ed25519
// verifications per publish, which would measure the simulator instead of the server.
//
// Key rotation (policy/rotation.h): each device holds the ids of the keys it pins (at first the
// enrolment keys); following a chain of statements from a given set, and verifying with a given
// set, are also computed once per distinct input.
class BundleVerifier {
 public:
  explicit BundleVerifier(std::vector<policy::PublicKey> pinned_keys);

  // With the enrolment keys.
  Result<std::shared_ptr<const VerifiedPolicy>> Verify(const std::string& envelope, UnixSeconds now);
  // With the keys named by `pinned_key_ids` (ids this verifier knows: enrolment keys, or keys
  // learned by FollowRotations).
  Result<std::shared_ptr<const VerifiedPolicy>> Verify(const std::string& envelope, UnixSeconds now,
                                                       const std::vector<std::string>& pinned_key_ids);
  // The pinned set after following `statements` (policy::FollowKeyRotations); unchanged when they
  // are refused.
  std::vector<std::string> FollowRotations(const std::vector<std::string>& pinned_key_ids,
                                           const std::vector<std::string>& statements);
  const std::vector<std::string>& enrolment_key_ids() const { return enrolment_key_ids_; }
  // How many times VerifyBundle actually ran (tests check the reuse).
  size_t full_verifications() const { return full_verifications_; }
  const std::vector<policy::PublicKey>& pinned_keys() const { return pinned_keys_; }

 private:
  std::vector<policy::PublicKey> pinned_keys_;
  std::vector<std::string> enrolment_key_ids_;
  std::unordered_map<std::string, policy::PublicKey> known_keys_;  // by key id
  std::unordered_map<std::string, std::vector<std::string>> rotations_cache_;
  std::unordered_map<std::string, Result<std::shared_ptr<const VerifiedPolicy>>> cache_;
  size_t full_verifications_ = 0;
};

struct DeviceIdentity {
  uint64_t index = 0;  // position in the simulated fleet: seeds its inventory
  std::string device_id;
  std::string credential;
  std::string group;  // the group its enrolment token put it in, if any
};

struct BundleOutcome {
  enum class Kind { kApplied, kNotNewer, kRefused };
  Kind kind = Kind::kNotNewer;
  int64_t version = 0;
  size_t removed = 0;  // apps dropped from the inventory
  Status refusal;      // kRefused: why (the StatusCode of VerifyBundle, or kExpired/kFailedPrecondition)
};

class SimDevice {
 public:
  SimDevice(DeviceIdentity identity, std::vector<AppIndex> apps, const AppCatalog& catalog);

  // The next check-in: applied version, rules hash, inventory hash, the full inventory when the
  // server has not acknowledged this one (first check-in of a run, after a change, or when asked),
  // and every queued event.
  protocol::CheckinRequest NextCheckin(const AppCatalog& catalog) const;
  // Takes a check-in answer: drops acknowledged events, remembers whether the server wants the
  // inventory, continues the event sequence after what the server already stored. Call before
  // applying the answer's bundle (ApplyBundle then re-arms the inventory if it changes anything).
  void OnCheckinAnswer(const protocol::CheckinResponse& answer);
  // `key_rotations` (sent with the bundle) are followed first, as a real agent does.
  BundleOutcome ApplyBundle(const std::string& envelope, BundleVerifier& verifier, const AppCatalog& catalog,
                            UnixSeconds now, const std::vector<std::string>& key_rotations = {});
  // The ids of the policy keys this device pins (empty: still the enrolment keys).
  const std::vector<std::string>& pinned_key_ids() const { return pinned_key_ids_; }

  const DeviceIdentity& identity() const { return identity_; }
  int64_t applied_version() const { return applied_version_; }
  const std::string& rules_hash() const { return rules_hash_; }
  const std::string& inventory_hash() const { return inventory_hash_; }
  const std::vector<AppIndex>& apps() const { return apps_; }
  const std::vector<protocol::DeviceEvent>& pending_events() const { return events_; }
  bool will_send_inventory() const { return send_inventory_; }

 private:
  void Rehash(const AppCatalog& catalog);

  DeviceIdentity identity_;
  std::vector<AppIndex> apps_;
  std::string inventory_hash_;
  bool send_inventory_ = true;
  int64_t applied_version_ = 0;
  std::string rules_hash_;
  int64_t next_seq_ = 1;
  std::vector<protocol::DeviceEvent> events_;
  std::vector<std::string> pinned_key_ids_;
};

}  // namespace appban::sim
