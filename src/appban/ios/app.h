// An iOS app read from its bytes alone: an .ipa (ZIP with Payload/X.app/), an unpacked .app
// directory, a .framework or .xcframework, or a bare Mach-O file — recognised by content, not by
// name. For the main bundle and every nested one (Frameworks/, PlugIns/, Watch/…): Info.plist
// facts, the executable's Mach-O facts and code signature, the provisioning profile and the
// privacy manifest. This is the entry point the CLI and the assessment use for iOS, as apk::Apk
// is for Android. An IosApp is immutable after Open and safe to query from several threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/common/bytes.h"
#include "appban/common/status.h"
#include "appban/ios/code_signature.h"
#include "appban/ios/limits.h"
#include "appban/ios/macho.h"
#include "appban/ios/trust_anchors.h"
#include "appban/plist/plist.h"

namespace appban::ios {

struct AtsExceptionDomain {
  std::string domain;
  bool allows_insecure_http = false;  // NSExceptionAllowsInsecureHTTPLoads (or the third-party form)
  bool includes_subdomains = false;
  std::string minimum_tls;  // NSExceptionMinimumTLSVersion, "" when not set
};

// NSAppTransportSecurity, when the Info.plist has it.
struct AppTransportSecurity {
  bool arbitrary_loads = false;  // NSAllowsArbitraryLoads: cleartext HTTP to any host
  bool arbitrary_loads_in_web_content = false;
  bool arbitrary_loads_for_media = false;
  bool local_networking = false;
  std::vector<AtsExceptionDomain> exception_domains;
};

// The facts of one Info.plist.
struct InfoPlist {
  std::string format;  // "xml" or "binary"
  std::string bundle_id, name, display_name, short_version, version, executable, package_type;
  std::string minimum_os;                     // MinimumOSVersion (or LSMinimumSystemVersion)
  std::vector<std::string> device_families;   // "iphone", "ipad", "tv", "watch", "mac-catalyst"…
  std::vector<std::string> url_schemes;       // CFBundleURLTypes[].CFBundleURLSchemes
  std::vector<std::string> queried_schemes;   // LSApplicationQueriesSchemes
  std::vector<std::string> background_modes;  // UIBackgroundModes
  // Every NS…UsageDescription key with its text: the iOS equivalent of a requested permission.
  std::vector<std::pair<std::string, std::string>> usage_descriptions;
  std::optional<AppTransportSecurity> ats;
  std::string extension_point;                   // NSExtension.NSExtensionPointIdentifier, for app extensions
  std::vector<std::string> supported_platforms;  // CFBundleSupportedPlatforms
};

InfoPlist ReadInfoPlist(const plist::Value& root, std::string format);

struct ProvisioningProfile {
  std::string name, uuid, team_id, team_name, app_id_name;
  std::string application_identifier;  // Entitlements.application-identifier ("TEAMID.com.x.y")
  std::optional<plist::Value> entitlements;
  std::string creation_date, expiration_date;  // RFC 3339
  bool expired = false;                        // at the time of reading
  std::optional<size_t> provisioned_devices;   // count, when the profile lists devices
  bool provisions_all_devices = false;         // enterprise "in-house" distribution
  bool get_task_allow = false;
  // "development", "ad-hoc", "enterprise" (in-house), "app-store".
  std::string type;
  std::vector<std::string> platforms;
  std::vector<SignerCertificate> signers;  // of the profile's CMS signature
  bool signature_verifies = false;
  std::vector<std::string> developer_certificates;  // SHA-256 of DeveloperCertificates entries
  // Who signed the profile: the signer certificate's common name, its chain to Apple's roots (at
  // the signing time, else the creation date), and whether it is Apple's provisioning service —
  // the chain verified and the signer named kAppleProfileSigner. iOS installs no other profile.
  std::string signer_name;
  ChainCheck chain;
  bool signed_by_apple = false;
};

// The common name of the certificate Apple's developer portal signs every provisioning profile with.
inline constexpr char kAppleProfileSigner[] = "Apple iPhone OS Provisioning Profile Signing";

// Reads a provisioning profile; its signer's chain is checked against `anchors` (nullptr: not
// checked, said so in chain.note).
Result<ProvisioningProfile> ReadProvisioningProfile(Bytes der, const Limits& limits, int64_t now_unix,
                                                    const TrustAnchors* anchors = nullptr);

struct CollectedDataType {
  std::string type;  // NSPrivacyCollectedDataTypeEmailAddress, ...
  bool linked = false, tracking = false;
  std::vector<std::string> purposes;
};
struct AccessedApi {
  std::string category;  // NSPrivacyAccessedAPICategoryUserDefaults, ...
  std::vector<std::string> reasons;
};
struct PrivacyManifest {
  std::string path;
  std::optional<bool> tracking;
  std::vector<std::string> tracking_domains;
  std::vector<CollectedDataType> collected_data;
  std::vector<AccessedApi> accessed_apis;
};

PrivacyManifest ReadPrivacyManifest(const plist::Value& root, std::string path);

// One bundle: the app itself, or a framework / extension / watch app nested in it.
struct Bundle {
  std::string kind;  // "app", "framework", "appex", "executable" (a bare Mach-O)
  std::string path;  // inside the input: "Payload/WeChat.app", "Payload/WeChat.app/Frameworks/X.framework"
  std::optional<InfoPlist> info;
  std::string executable_path;  // "" when missing
  std::optional<MachO> macho;
  std::string macho_error;                 // why the executable could not be read, "" when it could
  std::optional<CodeSignature> signature;  // of the first slice that carries one, else the detached one
  std::string signature_error;
  // The signature is codesign's detached form in _CodeSignature/ (an .xcframework, a framework
  // around a static library), its code hashes over the main file (executable, else Info.plist).
  bool signature_detached = false;
  std::optional<ProvisioningProfile> profile;
  std::optional<PrivacyManifest> privacy_manifest;
};

class IosApp {
 public:
  // Opens a file (IPA or Mach-O) or a directory (.app, .framework, .xcframework). Each code
  // signature's signer chain is checked against `anchors` (nullptr: not checked, said so).
  static Result<IosApp> Open(const std::string& path, const Limits& limits = {}, const TrustAnchors* anchors = nullptr);
  // An IPA or a Mach-O file already in memory.
  static Result<IosApp> FromBytes(Bytes bytes, std::string display_name, const Limits& limits = {},
                                  const TrustAnchors* anchors = nullptr);

  // "ipa", "app", "framework", "xcframework", "macho".
  const std::string& input_kind() const { return input_kind_; }
  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  const std::string& sha256() const { return sha256_; }  // of the file; "" for a directory
  uint64_t file_count() const { return file_count_; }    // ZIP entries or files under the directory
  const Bundle& main() const { return bundles_.front(); }
  // The main bundle first, then every nested one in path order.
  const std::vector<Bundle>& bundles() const { return bundles_; }
  const apk::Anomalies& anomalies() const { return anomalies_; }

 private:
  IosApp() = default;
  std::string input_kind_, path_, sha256_;
  uint64_t file_size_ = 0, file_count_ = 0;
  std::vector<Bundle> bundles_;
  apk::Anomalies anomalies_;
};

// True when `bytes` look like an IPA: a ZIP with a Payload/<name>.app/ entry. Cheap (reads the
// central directory only).
bool LooksLikeIpa(Bytes bytes);
// True when `path` is a directory that is an iOS bundle (.app/.framework/.xcframework by content:
// an Info.plist at its root or a framework inside).
bool IsIosBundleDirectory(const std::string& path);

}  // namespace appban::ios
