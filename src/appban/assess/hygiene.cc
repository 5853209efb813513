// Transport and storage hygiene from the manifest: cleartext traffic, debuggable, backups,
// test-only builds and components other apps can reach without a permission.
#include <algorithm>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

// Android's default for usesCleartextTraffic flips to false at target SDK 28.
constexpr int kCleartextOffByDefaultSdk = 28;

bool IsLauncher(const apk::Component& component) {
  if (component.kind != apk::ComponentKind::kActivity && component.kind != apk::ComponentKind::kActivityAlias) return false;
  for (const apk::IntentFilter& filter : component.intent_filters) {
    const bool main = std::find(filter.actions.begin(), filter.actions.end(), "android.intent.action.MAIN") != filter.actions.end();
    const bool launcher = std::find(filter.categories.begin(), filter.categories.end(), "android.intent.category.LAUNCHER") !=
                          filter.categories.end();
    if (main && launcher) return true;
  }
  return false;
}

}  // namespace

std::vector<Finding> HygieneFindings(const apk::Manifest& manifest) {
  std::vector<Finding> out;
  constexpr const char* kCategory = "hygiene";
  constexpr const char* kManifest = "AndroidManifest.xml";
  const apk::ApplicationFlags& flags = manifest.flags;
  // Target SDK defaults to min SDK, which defaults to 1.
  const int target_sdk = manifest.target_sdk.value_or(manifest.min_sdk.value_or(1));

  if (flags.uses_cleartext_traffic.value_or(false)) {
    out.push_back({"hygiene.cleartext_traffic", kCategory, Severity::kMedium, "Cleartext network traffic allowed",
                   "android:usesCleartextTraffic=\"true\": the app may send data over unencrypted HTTP, readable and "
                   "alterable by anyone on the network path.",
                   {{"manifest", "/manifest/application[@android:usesCleartextTraffic=true]", kManifest,
                     flags.network_security_config
                         ? "a network security config is also present; on Android 7.0+ it takes precedence and was not read"
                         : ""}}});
  } else if (!flags.uses_cleartext_traffic.has_value() && target_sdk < kCleartextOffByDefaultSdk &&
             !flags.network_security_config) {
    out.push_back({"hygiene.cleartext_traffic", kCategory, Severity::kMedium,
                   "Cleartext network traffic allowed by default",
                   "The app targets SDK " + std::to_string(target_sdk) +
                       " (below 28) and neither sets android:usesCleartextTraffic nor has a network security config, so "
                       "Android allows unencrypted HTTP for it.",
                   {{"manifest", "/manifest/uses-sdk[@android:targetSdkVersion=" + std::to_string(target_sdk) + "]",
                     kManifest, manifest.target_sdk ? "" : "not declared: defaults to minSdkVersion"}}});
  }
  if (flags.debuggable) {
    out.push_back({"hygiene.debuggable", kCategory, Severity::kHigh, "Debuggable build",
                   "android:debuggable=\"true\": anyone with USB access can attach a debugger, read the app's private "
                   "data and run code as the app.",
                   {{"manifest", "/manifest/application[@android:debuggable=true]", kManifest, ""}}});
  }
  if (flags.test_only) {
    out.push_back({"hygiene.test_only", kCategory, Severity::kLow, "Test-only build",
                   "android:testOnly=\"true\": a development build that is not meant for distribution.",
                   {{"manifest", "/manifest/application[@android:testOnly=true]", kManifest, ""}}});
  }
  if (flags.allow_backup) {
    out.push_back({"hygiene.allow_backup", kCategory, Severity::kLow, "App data can be backed up",
                   "android:allowBackup is " + std::string(flags.allow_backup_explicit ? "true" : "not set (default true)") +
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
