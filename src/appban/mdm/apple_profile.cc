#include "appban/mdm/apple_profile.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>

#include "appban/common/file.h"
#include "appban/mdm/credential_file.h"

namespace appban::mdm {
namespace {

// appban's UUIDv5 namespace (itself a random UUID, fixed forever: changing it changes every
// profile's PayloadUUID).
constexpr std::array<uint8_t, 16> kUuidNamespace = {0x6b, 0x1f, 0x3e, 0x52, 0x0c, 0x7d, 0x4a, 0x91,
                                                    0xb4, 0x2e, 0x58, 0x93, 0x1d, 0xa7, 0x60, 0xc4};
constexpr uint64_t kMaxCertificateFileBytes = 256 * 1024;
constexpr uint64_t kMaxSigningKeyFileBytes = 64 * 1024;

std::string FormatUuid(const uint8_t* bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0xf];
  }
  return out;
}

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertStackFree {
  void operator()(STACK_OF(X509) * certs) const { sk_X509_pop_free(certs, X509_free); }
};
struct CmsFree {
  void operator()(CMS_ContentInfo* cms) const { CMS_ContentInfo_free(cms); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr MemoryBio(std::string_view text) { return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))); }

}  // namespace

std::string NameBasedUuid(std::string_view name) {
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned length = 0;
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  EVP_DigestInit_ex(context, EVP_sha1(), nullptr);
  EVP_DigestUpdate(context, kUuidNamespace.data(), kUuidNamespace.size());
  EVP_DigestUpdate(context, name.data(), name.size());
  EVP_DigestFinal_ex(context, digest, &length);
  EVP_MD_CTX_free(context);
  digest[6] = static_cast<uint8_t>((digest[6] & 0x0f) | 0x50);  // version 5
  digest[8] = static_cast<uint8_t>((digest[8] & 0x3f) | 0x80);  // RFC 9562 variant
  return FormatUuid(digest);
}

std::string RandomUuid() {
  uint8_t bytes[16];
  RAND_bytes(bytes, sizeof(bytes));
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);
  return FormatUuid(bytes);
}

plist::Value BuildRestrictionsProfile(const RestrictionsProfileOptions& options,
                                      std::vector<std::string> blocked_bundle_ids) {
  std::sort(blocked_bundle_ids.begin(), blocked_bundle_ids.end());
  blocked_bundle_ids.erase(std::unique(blocked_bundle_ids.begin(), blocked_bundle_ids.end()), blocked_bundle_ids.end());
  std::string name = options.identifier;
  for (const std::string& id : blocked_bundle_ids) name += "\n" + id;
  const std::string payload_identifier = options.identifier + ".applicationaccess";

  plist::Value::Array blocked;
  for (std::string& id : blocked_bundle_ids) blocked.push_back(plist::Value::String(std::move(id)));
  plist::Value payload = plist::Value::MakeDict();
  payload.Set("PayloadType", plist::Value::String(std::string(kApplicationAccessPayloadType)));
  payload.Set("PayloadVersion", plist::Value::Integer(1));
  payload.Set("PayloadIdentifier", plist::Value::String(payload_identifier));
  payload.Set("PayloadUUID", plist::Value::String(NameBasedUuid(payload_identifier + "\n" + name)));
  payload.Set("PayloadDisplayName", plist::Value::String("Banned apps"));
  payload.Set("blockedAppBundleIDs", plist::Value::MakeArray(std::move(blocked)));

  plist::Value profile = plist::Value::MakeDict();
  profile.Set("PayloadType", plist::Value::String("Configuration"));
  profile.Set("PayloadVersion", plist::Value::Integer(1));
  profile.Set("PayloadIdentifier", plist::Value::String(options.identifier));
  profile.Set("PayloadUUID", plist::Value::String(NameBasedUuid(name)));
  profile.Set("PayloadDisplayName", plist::Value::String("Banned apps (appban)"));
  profile.Set("PayloadDescription",
              plist::Value::String("Hides and stops apps banned for government devices from launching. "
                                   "Installed and kept current by the device's MDM from appban's signed policy."));
  if (!options.organization.empty()) {
    profile.Set("PayloadOrganization", plist::Value::String(options.organization));
  }
  profile.Set("TargetDeviceType", plist::Value::Integer(kTargetDeviceTypeIos));
  profile.Set("PayloadContent", plist::Value::MakeArray({std::move(payload)}));
  return profile;
}

std::string RestrictionsProfileXml(const RestrictionsProfileOptions& options,
                                   std::vector<std::string> blocked_bundle_ids) {
  return plist::WriteXml(BuildRestrictionsProfile(options, std::move(blocked_bundle_ids)));
}

struct SigningIdentity::Impl {
  std::unique_ptr<X509, X509Free> certificate;
  std::unique_ptr<EVP_PKEY, PkeyFree> key;
  std::unique_ptr<STACK_OF(X509), CertStackFree> chain;
};

SigningIdentity::SigningIdentity(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SigningIdentity::SigningIdentity(SigningIdentity&&) noexcept = default;
SigningIdentity& SigningIdentity::operator=(SigningIdentity&&) noexcept = default;
SigningIdentity::~SigningIdentity() = default;

Result<SigningIdentity> SigningIdentity::FromPem(std::string_view certificate_pem, std::string_view key_pem) {
  auto impl = std::make_unique<Impl>();
  BioPtr certs = MemoryBio(certificate_pem);
  impl->certificate.reset(PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr));
  if (!impl->certificate) return Status::InvalidArgument("the signing certificate file holds no PEM certificate");
  impl->chain.reset(sk_X509_new_null());
  while (X509* extra = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
    sk_X509_push(impl->chain.get(), extra);
  }
  BioPtr key = MemoryBio(key_pem);
  impl->key.reset(PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, nullptr));
  if (!impl->key) return Status::InvalidArgument("the signing key file holds no unencrypted PEM private key");
  if (X509_check_private_key(impl->certificate.get(), impl->key.get()) != 1) {
    return Status::InvalidArgument("the signing key does not belong to the signing certificate");
  }
  return SigningIdentity(std::move(impl));
}

Result<std::string> SigningIdentity::Sign(std::string_view content) const {
  BioPtr data = MemoryBio(content);
  std::unique_ptr<CMS_ContentInfo, CmsFree> cms(CMS_sign(impl_->certificate.get(), impl_->key.get(), impl_->chain.get(),
                                                         data.get(), CMS_BINARY | CMS_NOSMIMECAP));
  if (!cms) return Status::Internal("CMS signing failed");
  BioPtr out(BIO_new(BIO_s_mem()));
  if (i2d_CMS_bio(out.get(), cms.get()) != 1) return Status::Internal("CMS encoding failed");
  char* bytes = nullptr;
  long length = BIO_get_mem_data(out.get(), &bytes);
  return std::string(bytes, static_cast<size_t>(length));
}

std::string SigningIdentity::subject() const {
  BioPtr out(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(out.get(), X509_get_subject_name(impl_->certificate.get()), 0,
                     XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  char* bytes = nullptr;
  long length = BIO_get_mem_data(out.get(), &bytes);
  return std::string(bytes, static_cast<size_t>(length));
}

Result<SigningIdentity> LoadSigningIdentity(const std::string& certificate_file, const std::string& key_file) {
  APPBAN_ASSIGN_OR_RETURN(std::string certificate, ReadFileToString(certificate_file, kMaxCertificateFileBytes));
  APPBAN_ASSIGN_OR_RETURN(std::string key, ReadCredentialFile(key_file, kMaxSigningKeyFileBytes, "the signing key"));
  Result<SigningIdentity> identity = SigningIdentity::FromPem(certificate, key);
  if (!identity.ok()) {
    return Status(identity.status().code(), certificate_file + ", " + key_file + ": " + identity.status().message());
  }
  return identity;
}

}  // namespace appban::mdm
