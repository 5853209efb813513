// A worker's policy keys, kept in step with the data directory's keys/ (policy/keys.h): the active
// signing key, every public key there (to check stored bundles) and the chain of key rotation
// statements that leads to the active key (policy/rotation.h), which devices need to follow a
// rotation. `appban policy keys init --rotate` may run while the server does: Refresh re-reads
// `keys/active` and, when it names another key, loads the new key and chain. Single-threaded: the
// worker's io_context thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "appban/policy/keys.h"

namespace appban::server {

class KeyRing {
 public:
  static Result<KeyRing> Load(const std::string& key_dir);

  // Reloads when keys/active names another key. True when the keys changed. The previous key
  // object stays alive until the next change, so a pointer taken before a Refresh is valid until
  // the one after.
  Result<bool> Refresh();

  const policy::SigningKey& active() const { return *active_; }
  const std::vector<policy::PublicKey>& trusted() const { return trusted_; }
  const std::vector<std::string>& rotations() const { return rotations_; }

 private:
  explicit KeyRing(std::string key_dir) : key_dir_(std::move(key_dir)) {}
  Status LoadAll();

  std::string key_dir_;
  std::shared_ptr<const policy::SigningKey> active_;
  std::shared_ptr<const policy::SigningKey> previous_;
  std::vector<policy::PublicKey> trusted_;
  std::vector<std::string> rotations_;
};

}  // namespace appban::server
