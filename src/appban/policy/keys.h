// Ed25519 policy keys (OpenSSL 3). The private key signs bundles on the policy server; agents
// and `appban policy bundle verify` hold only public keys. A key is named by its key id: the
// SHA-256 of the raw 32-byte public key, in lowercase hex. Key files are PEM (PKCS#8 private,
// SubjectPublicKeyInfo public), readable by `openssl pkey`. Private key files are written with
// mode 0600 and refused when group or others can read them. Immutable after creation; safe to
// use from several threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "appban/common/status.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace appban::policy {

using RawPublicKey = std::array<uint8_t, 32>;
inline constexpr size_t kEd25519SignatureBytes = 64;

std::string KeyIdOf(const RawPublicKey& raw);

struct PublicKey {
  RawPublicKey raw{};
  std::string key_id;
};

class SigningKey {
 public:
  static Result<SigningKey> Generate();
  // Refuses files that group or others may read (PermissionDenied), and anything but Ed25519.
  static Result<SigningKey> LoadPrivateKeyFile(const std::string& path);

  // Writes the private key with mode 0600 (atomically) and the public key beside it with 0644.
  Status SavePrivateKeyFile(const std::string& path) const;
  const PublicKey& public_key() const { return public_key_; }
  const std::string& key_id() const { return public_key_.key_id; }

  // Ed25519 signature (64 bytes) over `message`.
  Result<std::string> Sign(std::string_view message) const;

 private:
  struct KeyDeleter {
    void operator()(evp_pkey_st* key) const;
  };
  explicit SigningKey(std::unique_ptr<evp_pkey_st, KeyDeleter> key, PublicKey public_key)
      : key_(std::move(key)), public_key_(std::move(public_key)) {}

  std::unique_ptr<evp_pkey_st, KeyDeleter> key_;
  PublicKey public_key_;
};

std::string PublicKeyPem(const PublicKey& key);
Status SavePublicKeyFile(const PublicKey& key, const std::string& path);
Result<PublicKey> ParsePublicKeyPem(std::string_view pem);
Result<PublicKey> LoadPublicKeyFile(const std::string& path);

// True when `signature` is a valid Ed25519 signature of `message` by `key`.
bool VerifySignature(const PublicKey& key, std::string_view message, std::string_view signature);

}  // namespace appban::policy

namespace appban::policy {

// A key directory holds <key_id>.key (0600), <key_id>.pub and `active` (the signing key's id).
// The directory itself is created 0700. Rotation writes a new key and points `active` at it; old
// keys stay so bundles they signed can still be checked (docs/policy.md, "Key rotation").
// kAlreadyExists when an active key exists and `rotate` is false.
Result<SigningKey> CreateActiveKey(const std::string& dir, bool rotate);
Result<SigningKey> LoadActiveKey(const std::string& dir);

}  // namespace appban::policy
