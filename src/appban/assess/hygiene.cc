// Transport and storage hygiene from the manifest: cleartext traffic, debuggable, backups,
// test-only builds and components other apps can reach without a permission.
#include <algorithm>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

// Android's default for usesCleartextTraffic flips to false at target SDK 28.
constexpr int kCleartextOffByDefaultSdk = 28;

bool IsLauncher(const apk::Component& component) {
  if (component.kind != apk::ComponentKind::kActivity && component.kind != apk::ComponentKind::kActivityAlias)
    return false;
  for (const apk::IntentFilter& filter : component.intent_filters) {
    const bool main =
        std::find(filter.actions.begin(), filter.actions.end(), "android.intent.action.MAIN") != filter.actions.end();
    const bool launcher = std::find(filter.categories.begin(), filter.categories.end(),
                                    "android.intent.category.LAUNCHER") != filter.categories.end();
    if (main && launcher) return true;
  }
  return false;
}

constexpr const char* kCategory = "hygiene";
constexpr const char* kManifest = "AndroidManifest.xml";
// Android trusts user-installed CAs by default below target SDK 24.
constexpr int kUserCasDistrustedByDefaultSdk = 24;

void ManifestCleartextFindings(const apk::Manifest& manifest, int target_sdk, std::vector<Finding>* out) {
  const apk::ApplicationFlags& flags = manifest.flags;
  if (flags.uses_cleartext_traffic.value_or(false)) {
    out->push_back(
        {"hygiene.cleartext_traffic",
         kCategory,
         Severity::kMedium,
         "Cleartext network traffic allowed",
         "android:usesCleartextTraffic=\"true\": the app may send data over unencrypted HTTP, readable and "
         "alterable by anyone on the network path.",
         {{"manifest", "/manifest/application[@android:usesCleartextTraffic=true]", kManifest,
           flags.network_security_config ? "a network security config is named but could not be read (see anomalies)"
                                         : ""}}});
  } else if (!flags.uses_cleartext_traffic.has_value() && target_sdk < kCleartextOffByDefaultSdk &&
             !flags.network_security_config) {
    out->push_back({"hygiene.cleartext_traffic",
                    kCategory,
                    Severity::kMedium,
                    "Cleartext network traffic allowed by default",
                    "The app targets SDK " + std::to_string(target_sdk) +
                        " (below 28) and neither sets android:usesCleartextTraffic nor has a network security config, "
                        "so Android allows unencrypted HTTP for it.",
                    {{"manifest", "/manifest/uses-sdk[@android:targetSdkVersion=" + std::to_string(target_sdk) + "]",
                      kManifest, manifest.target_sdk ? "" : "not declared: defaults to minSdkVersion"}}});
  }
}

// On Android 7.0+ the network security config decides, and android:usesCleartextTraffic is
// ignored; evidence points into the config file.
void NetworkSecurityFindings(const apk::NetworkSecurityConfig& config, std::vector<Finding>* out) {
  std::vector<Evidence> cleartext, user_cas;
  if (config.base_cleartext_permitted) {
    cleartext.push_back({"manifest", "/network-security-config/base-config[@cleartextTrafficPermitted=true]",
                         config.path, "every domain not configured otherwise"});
  }
  if (config.base_trusts_user_certificates) {
    user_cas.push_back({"manifest", "/network-security-config/base-config/trust-anchors/certificates[@src=user]",
                        config.path, "every domain not configured otherwise"});
  }
  for (const apk::DomainSecurityConfig& domain : config.domains) {
    std::string names;
    for (const std::string& name : domain.domains) names += (names.empty() ? "" : " ") + name;
    if (domain.cleartext_permitted && !config.base_cleartext_permitted) {
      cleartext.push_back({"host", names, config.path, "domain-config permits cleartext"});
    }
    if (domain.trusts_user_certificates && !config.base_trusts_user_certificates) {
      user_cas.push_back({"host", names, config.path, "domain-config trusts user CAs"});
    }
  }
  if (!cleartext.empty()) {
    bool everywhere = config.base_cleartext_permitted;
    out->push_back({"hygiene.cleartext_traffic", kCategory, everywhere ? Severity::kMedium : Severity::kLow,
                    everywhere ? "Cleartext network traffic allowed (network security config)"
                               : "Cleartext network traffic allowed for some domains",
                    "The app's network security config permits unencrypted HTTP " +
                        std::string(everywhere ? "by default" : "to the listed domains") +
                        ": what it sends there can be read and altered on the network path.",
                    cleartext});
  }
  if (!user_cas.empty()) {
    out->push_back({"hygiene.user_certificates_trusted", kCategory, Severity::kMedium,
                    "Trusts user-installed CA certificates",
                    "The network security config trusts CA certificates that a user or device administrator "
                    "installs, so whoever can install one can read and alter the app's TLS traffic.",
                    user_cas});
  }
}

}  // namespace

std::vector<Finding> HygieneFindings(const apk::Manifest& manifest,
                                     const apk::NetworkSecurityConfig* network_security_config) {
  std::vector<Finding> out;
  const apk::ApplicationFlags& flags = manifest.flags;
  // Target SDK defaults to min SDK, which defaults to 1.
  const int target_sdk = manifest.target_sdk.value_or(manifest.min_sdk.value_or(1));

  if (network_security_config != nullptr) {
    NetworkSecurityFindings(*network_security_config, &out);
  } else {
    ManifestCleartextFindings(manifest, target_sdk, &out);
    if (target_sdk < kUserCasDistrustedByDefaultSdk) {
      out.push_back({"hygiene.user_certificates_trusted",
                     kCategory,
                     Severity::kLow,
                     "Trusts user-installed CA certificates by default",
                     "The app targets SDK " + std::to_string(target_sdk) +
                         " (below 24) and has no network security config, so Android lets any CA certificate a "
                         "user or device administrator installs intercept its TLS traffic.",
                     {{"manifest", "/manifest/uses-sdk[@android:targetSdkVersion=" + std::to_string(target_sdk) + "]",
                       kManifest, ""}}});
    }
  }
  if (flags.debuggable) {
    out.push_back({"hygiene.debuggable",
                   kCategory,
                   Severity::kHigh,
                   "Debuggable build",
                   "android:debuggable=\"true\": anyone with USB access can attach a debugger, read the app's private "
                   "data and run code as the app.",
                   {{"manifest", "/manifest/application[@android:debuggable=true]", kManifest, ""}}});
  }
  if (flags.test_only) {
    out.push_back({"hygiene.test_only",
                   kCategory,
                   Severity::kLow,
                   "Test-only build",
                   "android:testOnly=\"true\": a development build that is not meant for distribution.",
                   {{"manifest", "/manifest/application[@android:testOnly=true]", kManifest, ""}}});
  }
  if (flags.allow_backup) {
    out.push_back({"hygiene.allow_backup",
                   kCategory,
                   Severity::kLow,
                   "App data can be backed up",
                   "android:allowBackup is " +
                       std::string(flags.allow_backup_explicit ? "true" : "not set (default true)") +
                       ": the app's private data can be copied off the device by backup (and with adb backup on older "
                       "Android).",
                   {{"manifest", "/manifest/application[@android:allowBackup=true]", kManifest,
                     flags.allow_backup_explicit ? "" : "attribute absent: Android's default"}}});
  }
  std::vector<Evidence> exported;
  size_t exported_count = 0;
  for (const apk::Component& component : manifest.components) {
    if (!component.exported || !component.enabled || !component.permission.empty() || IsLauncher(component)) continue;
    ++exported_count;
    if (exported.size() < kMaxEvidencePerFinding) {
      exported.push_back({"manifest",
                          "/manifest/application/" + std::string(apk::ComponentKindName(component.kind)) +
                              "[@name=" + component.name + "]",
                          kManifest, "exported (" + component.exported_reason + "), no permission"});
    }
  }
  if (exported_count > 0) {
    out.push_back({"hygiene.exported_components", kCategory, Severity::kMedium,
                   std::to_string(exported_count) + " exported component" + (exported_count == 1 ? "" : "s") +
                       " without a permission",
                   "Other apps on the device can start these activities, services, receivers or providers without "
                   "holding any permission (the launcher activity is not counted).",
                   exported});
  }
  return out;
}

}  // namespace appban::assess
