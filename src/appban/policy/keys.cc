#include "appban/policy/keys.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <filesystem>

#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/policy/limits.h"
#include "appban/policy/rotation.h"

namespace appban::policy {
namespace {

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

Result<PublicKey> PublicKeyOf(EVP_PKEY* key) {
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) return Status::InvalidArgument("key is not an Ed25519 key");
  PublicKey out;
  size_t length = out.raw.size();
  if (EVP_PKEY_get_raw_public_key(key, out.raw.data(), &length) != 1 || length != out.raw.size()) {
    return Status::Internal("cannot read the raw Ed25519 public key");
  }
  out.key_id = KeyIdOf(out.raw);
  return out;
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return length > 0 ? std::string(data, static_cast<size_t>(length)) : std::string();
}

}  // namespace

void SigningKey::KeyDeleter::operator()(evp_pkey_st* key) const { EVP_PKEY_free(key); }

std::string KeyIdOf(const RawPublicKey& raw) { return Sha256Hex(raw); }

Result<SigningKey> SigningKey::Generate() {
  EVP_PKEY* raw_key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (raw_key == nullptr) return Status::Internal("OpenSSL could not generate an Ed25519 key");
  std::unique_ptr<evp_pkey_st, KeyDeleter> key(raw_key);
  APPBAN_ASSIGN_OR_RETURN(PublicKey public_key, PublicKeyOf(key.get()));
  return SigningKey(std::move(key), std::move(public_key));
}

Result<SigningKey> SigningKey::LoadPrivateKeyFile(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return Status::NotFound(path + ": no such private key file");
  if ((info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%03o", static_cast<unsigned>(info.st_mode & 0777));
    return Status::PermissionDenied(path + ": private key is readable by group or others (mode " + mode +
                                    "); chmod 600 it");
  }
  APPBAN_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path, kPolicyLimits.max_key_file_bytes));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::Internal("BIO_new_mem_buf failed");
  EVP_PKEY* raw_key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (raw_key == nullptr) return Status::Corruption(path + ": not a PEM private key");
  std::unique_ptr<evp_pkey_st, KeyDeleter> key(raw_key);
  auto public_key = PublicKeyOf(key.get());
  if (!public_key.ok()) return public_key.status().WithContext(path);
  return SigningKey(std::move(key), std::move(*public_key));
}

Status SigningKey::SavePrivateKeyFile(const std::string& path) const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::Internal("cannot encode the private key as PEM");
  }
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(path, BioContents(bio.get()), 0600));
  return Status::Ok();
}

Result<std::string> SigningKey::Sign(std::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return Status::Internal("EVP_MD_CTX_new failed");
  // Ed25519 hashes internally: no digest is named, and the message is passed in one call.
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    return Status::Internal("EVP_DigestSignInit failed for Ed25519");
  }
  std::string signature(kEd25519SignatureBytes, '\0');
  size_t length = signature.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      length != kEd25519SignatureBytes) {
    return Status::Internal("Ed25519 signing failed");
  }
  return signature;
}

std::string PublicKeyPem(const PublicKey& key) {
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.raw.data(), key.raw.size()));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!pkey || !bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) return {};
  return BioContents(bio.get());
}

Status SavePublicKeyFile(const PublicKey& key, const std::string& path) {
  std::string pem = PublicKeyPem(key);
  if (pem.empty()) return Status::Internal("cannot encode the public key as PEM");
  return WriteFileAtomically(path, pem, 0644);
}

Result<PublicKey> ParsePublicKeyPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::Internal("BIO_new_mem_buf failed");
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Status::Corruption("not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  return PublicKeyOf(key.get());
}

Result<PublicKey> LoadPublicKeyFile(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path, kPolicyLimits.max_key_file_bytes));
  auto key = ParsePublicKeyPem(pem);
  if (!key.ok()) return key.status().WithContext(path);
  return key;
}

bool VerifySignature(const PublicKey& key, std::string_view message, std::string_view signature) {
  if (signature.size() != kEd25519SignatureBytes) return false;
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.raw.data(), key.raw.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

}  // namespace appban::policy

namespace appban::policy {

Result<SigningKey> CreateActiveKey(const std::string& dir, bool rotate) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return Status::Unavailable("cannot create key directory " + dir + ": " + error.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, error);
  if (error) return Status::Unavailable("cannot restrict key directory " + dir + ": " + error.message());
  std::string active = dir + "/active";
  if (std::filesystem::exists(active) && !rotate) {
    return Status::AlreadyExists("a policy key already exists in " + dir +
                                 " (to replace it: appban policy keys init --rotate; see docs/policy.md)");
  }
  APPBAN_ASSIGN_OR_RETURN(SigningKey key, SigningKey::Generate());
  APPBAN_RETURN_IF_ERROR(key.SavePrivateKeyFile(dir + "/" + key.key_id() + ".key"));
  APPBAN_RETURN_IF_ERROR(SavePublicKeyFile(key.public_key(), dir + "/" + key.key_id() + ".pub"));
  if (std::filesystem::exists(active)) {
    // The old key hands over to the new one in a statement devices verify with the key they pin
    // (rotation.h); without it the fleet could not follow.
    APPBAN_ASSIGN_OR_RETURN(SigningKey old_key, LoadActiveKey(dir));
    APPBAN_ASSIGN_OR_RETURN(std::string statement,
                            SignKeyRotation(old_key, key.public_key(), static_cast<UnixSeconds>(std::time(nullptr))));
    APPBAN_RETURN_IF_ERROR(SaveKeyRotation(dir, old_key.key_id(), statement));
  }
  // The pointer is switched last: a crash before this leaves the old key active.
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(active, key.key_id() + "\n", 0600));
  return key;
}

Result<SigningKey> LoadActiveKey(const std::string& dir) {
  auto id = ReadFileToString(dir + "/active", 256);
  if (!id.ok()) return Status::NotFound("no policy key in " + dir + ": run `appban policy keys init` first");
  std::string key_id = *id;
  while (!key_id.empty() && (key_id.back() == '\n' || key_id.back() == '\r')) key_id.pop_back();
  if (key_id.size() != 64 || key_id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::Corruption(dir + "/active does not hold a key id");
  }
  APPBAN_ASSIGN_OR_RETURN(SigningKey key, SigningKey::LoadPrivateKeyFile(dir + "/" + key_id + ".key"));
  if (key.key_id() != key_id) return Status::Corruption(dir + "/" + key_id + ".key holds a different key");
  return key;
}

}  // namespace appban::policy
