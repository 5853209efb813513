// Key rotation as a signed statement the fleet follows (docs/policy.md, "Keys and rotation").
//
// When the policy key is rotated, the old key signs a statement naming the new key:
//   {"format":"appban.key-rotation/1","signature":HEX,"statement":TEXT}
// where TEXT is the canonical JSON {"issued_at":T,"new_key":HEX(raw 32 bytes),"new_key_id":K2,
// "old_key_id":K1} and the signature is Ed25519 by K1 over kKeyRotationContext || TEXT. The server
// sends the chain of statements (oldest first) with every bundle; a device that pins K1 verifies
// the statement with K1, pins K2 and drops K1 — from then on a bundle signed by K1 is refused as
// signed by an unknown key, so a rotated-out key can neither lower a version nor remove rules.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/policy/keys.h"
#include "appban/policy/model.h"

namespace appban::policy {

inline constexpr std::string_view kKeyRotationFormat = "appban.key-rotation/1";
inline constexpr std::string_view kKeyRotationContext{"appban-key-rotation-v1\0", 23};
// A chain longer than this is refused (a device follows at most this many rotations at once).
inline constexpr size_t kMaxKeyRotations = 64;

struct KeyRotation {
  std::string old_key_id;
  PublicKey new_key;
  UnixSeconds issued_at = 0;
};

// The statement by which `old_key` hands over to `new_key`.
Result<std::string> SignKeyRotation(const SigningKey& old_key, const PublicKey& new_key, UnixSeconds issued_at);
// Parses without checking the signature (kCorruption when malformed).
Result<KeyRotation> ParseKeyRotation(std::string_view envelope);
// Parses and checks the signature with `old_key`: kPermissionDenied unless signed by it.
Result<KeyRotation> VerifyKeyRotation(std::string_view envelope, const PublicKey& old_key);

// Follows `statements` (oldest first) from the keys a device pins: every statement whose old key
// is pinned and whose signature verifies with it replaces that key by the new one. Statements
// about keys not pinned are skipped (already followed, or another line). The result is the new
// pinned set; `followed` (if given) receives the statements that changed it.
Result<std::vector<PublicKey>> FollowKeyRotations(const std::vector<PublicKey>& pinned,
                                                  const std::vector<std::string>& statements,
                                                  std::vector<KeyRotation>* followed = nullptr);

// Key directory support (keys.h): `<old_key_id>.rotation` holds the statement that retired a key.
// Writes it. REQUIRES: `old_key` is the key being rotated out of `dir`.
Status SaveKeyRotation(const std::string& dir, const std::string& old_key_id, const std::string& envelope);
// The chain of statements that ends at `active_key_id`, oldest first (empty when never rotated).
Result<std::vector<std::string>> LoadKeyRotations(const std::string& dir, const std::string& active_key_id);

}  // namespace appban::policy
