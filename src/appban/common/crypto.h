// Hashing helpers over OpenSSL 3 (EVP). Thread-safe: no shared state.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "appban/common/bytes.h"

namespace appban {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(Bytes data);
// Lowercase hex, as `apksigner verify --print-certs` and `sha256sum` print digests.
std::string HexLower(Bytes data);
// Equal contents, compared in time that depends on the lengths only (secrets presented by clients).
bool ConstantTimeEquals(std::string_view a, std::string_view b);
inline std::string Sha256Hex(Bytes data) {
  auto digest = Sha256(data);
  return HexLower(digest);
}

// Incremental SHA-256 for data that arrives in pieces (a file read in chunks).
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(Bytes data);
  Sha256Digest Finish();

 private:
  struct ContextDeleter {
    void operator()(void* ctx) const;
  };
  std::unique_ptr<void, ContextDeleter> ctx_;  // EVP_MD_CTX, kept opaque to callers
};

}  // namespace appban
