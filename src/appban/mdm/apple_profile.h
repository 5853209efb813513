// The restrictions configuration profile appban gives an Apple MDM: one `Configuration` profile
// holding one `com.apple.applicationaccess` payload whose `blockedAppBundleIDs` lists the banned
// iOS bundle ids, signed as CMS SignedData so any MDM (or Apple Configurator) can install it and
// the device shows who signed it. Keys and values follow Apple's schema (tests/specs/apple/:
// mdm/profiles/TopLevel.yaml, CommonPayloadKeys.yaml, com.apple.applicationaccess.yaml); the
// tests validate every generated profile against it.
//
// blockedAppBundleIDs "prevents showing or launching" the apps; it needs a supervised device on
// iOS/iPadOS 15 or later (docs/mdm.md). It does not uninstall: RemoveApplication does that.
//
// Stable identity. PayloadIdentifier is the configured identifier (the payload's is that plus
// ".applicationaccess"), so a newer profile replaces the older one on the device. PayloadUUIDs
// are name-based (RFC 9562 UUIDv5 over the identifier and the sorted bundle ids), so generating
// the profile again for the same bans gives the same bytes before signing, and a different list
// gives a different UUID.
//
// Pure functions, except LoadSigningIdentity (reads files). Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/plist/plist.h"

namespace appban::mdm {

inline constexpr std::string_view kApplicationAccessPayloadType = "com.apple.applicationaccess";
// TargetDeviceType 1: iPhone, iPad, iPod touch.
inline constexpr int64_t kTargetDeviceTypeIos = 1;

struct RestrictionsProfileOptions {
  std::string identifier;    // PayloadIdentifier of the profile (reverse DNS)
  std::string organization;  // PayloadOrganization; omitted when empty
};

// The profile as a plist value. `blocked_bundle_ids` are sorted and de-duplicated first.
plist::Value BuildRestrictionsProfile(const RestrictionsProfileOptions& options,
                                      std::vector<std::string> blocked_bundle_ids);
// The same as an XML plist document (what is signed).
std::string RestrictionsProfileXml(const RestrictionsProfileOptions& options,
                                   std::vector<std::string> blocked_bundle_ids);

// A name-based UUID (version 5, SHA-1, RFC 9562 §5.5) of `name` in appban's namespace, upper-case
// as Apple writes them: "9C2A…-…".
std::string NameBasedUuid(std::string_view name);
// A random UUID (version 4), upper-case: command UUIDs.
std::string RandomUuid();

// A signing identity: certificate (with the chain to send along) and private key.
class SigningIdentity {
 public:
  // `certificate_pem` holds the signer's certificate first, then any intermediates; `key_pem`
  // its private key (RSA or EC). Fails when the key does not belong to the certificate.
  static Result<SigningIdentity> FromPem(std::string_view certificate_pem, std::string_view key_pem);
  SigningIdentity(SigningIdentity&&) noexcept;
  SigningIdentity& operator=(SigningIdentity&&) noexcept;
  ~SigningIdentity();

  // CMS SignedData (DER) over `content`, content attached, SHA-256, with the signer's certificate
  // and chain: the form of a signed .mobileconfig.
  Result<std::string> Sign(std::string_view content) const;
  // The signer's subject, one line ("CN=appban profile signing,O=…"), for reports.
  std::string subject() const;

 private:
  struct Impl;
  explicit SigningIdentity(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads the certificate file and the key file; the key file must be mode 0600.
Result<SigningIdentity> LoadSigningIdentity(const std::string& certificate_file, const std::string& key_file);

}  // namespace appban::mdm
