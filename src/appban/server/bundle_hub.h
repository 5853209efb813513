// A worker's view of the newest published bundle, and the long-polls waiting for the next one.
//
// The newest bundle is read from the store: at start, right after this worker publishes, and on a
// short timer that notices publishes made by other workers (a primary-key lookup of the highest
// version, a few times a second). When a newer version appears every waiting poll of this worker is
// answered with one shared body (the bundle is serialized once, not once per device). Polls that
// see no new version are answered 204 after their timeout. Single-threaded: the worker's
// io_context thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "appban/net/http.h"
#include "appban/policy/keys.h"
#include "appban/server/context.h"
#include "appban/store/store.h"
#include "appban/verify/published_bundle.h"

namespace appban::server {

class BundleHub {
 public:
  // `trusted_keys`: the server's policy public keys; a stored bundle that does not verify with them
  // is not served (it would be refused by every device anyway) and is logged.
  BundleHub(store::Store& store, std::vector<policy::PublicKey> trusted_keys);

  // After a key rotation: the keys stored bundles are checked with, and the rotation statements
  // (policy/rotation.h, oldest first) sent with every bundle so devices pinning an earlier key
  // can follow. Rebuilds the shared answer bodies.
  void SetKeys(std::vector<policy::PublicKey> trusted_keys, std::vector<std::string> key_rotations);

  // Loads a newer bundle if the store has one. Returns true when the version changed; the caller
  // then calls WakePolls().
  Result<bool> Refresh();
  const verify::PublishedBundle& latest() const { return latest_; }

  // The poll answer for the current version, shared by every response:
  // {"latest_version":M,"bundle":…[,"key_rotations":[…]]}.
  std::shared_ptr<const std::string> poll_body() const { return poll_body_; }
  // The `"bundle":"…"` member (JSON-escaped envelope), followed by `,"key_rotations":[…]` when the
  // key was ever rotated, for check-in answers; empty when none.
  const std::string& bundle_member() const { return bundle_member_; }

  // Holds `respond` until a version > `known_version` exists or `deadline` (steady seconds) passes.
  void AddPoll(int64_t known_version, net::Responder respond, int64_t deadline, std::string device_id);
  // Answers every waiting poll that the current version satisfies.
  void WakePolls();
  // Answers polls whose deadline is <= `now_steady` with 204 and forgets closed connections.
  void ExpirePolls(int64_t now_steady);
  // Answers every poll with 503 (shutdown) or the revoked device's polls with 403.
  void DrainPolls(int status, std::string_view code, std::string_view message);
  void DropDevicePolls(const std::string& device_id);
  size_t waiting() const { return waiting_; }

 private:
  struct Poll {
    int64_t known_version = 0;
    net::Responder respond;
    std::string device_id;
  };
  Status Load(int64_t version);
  void BuildBodies();

  store::Store& store_;
  std::vector<policy::PublicKey> trusted_keys_;
  std::vector<std::string> key_rotations_;
  verify::PublishedBundle latest_;
  std::shared_ptr<const std::string> poll_body_;
  std::string bundle_member_;
  // Waiting polls bucketed by deadline second: expiry walks only the buckets that are due.
  std::map<int64_t, std::vector<Poll>> polls_by_deadline_;
  size_t waiting_ = 0;
};

}  // namespace appban::server
