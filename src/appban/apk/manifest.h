// The facts of AndroidManifest.xml that an assessment rests on, extracted from the parsed AXML
// tree the way PackageManager reads them (android: attributes matched by resource id; resource
// references resolved through resources.arsc). Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/apk/arsc.h"
#include "appban/apk/axml.h"
#include "appban/common/status.h"

namespace appban::apk {

struct RequestedPermission {
  std::string name;
  std::optional<int> max_sdk;  // android:maxSdkVersion
  bool sdk23_only = false;     // came from <uses-permission-sdk-23>
};

// A permission Android grants the app although its manifest does not request it: the old-target
// permissions PackageParser adds (targetSdk < 4) and the platform's split permissions (a
// permission split in two in some release is granted with the old one to apps targeting an
// earlier release). See implied_permissions.h for the table and its sources.
struct ImpliedPermission {
  std::string name;
  std::string reason;          // as `aapt dump badging` words it: "requested WRITE_EXTERNAL_STORAGE"
  std::string implied_by;      // the permission it comes with ("" for the targetSdk < 4 ones)
  std::optional<int> max_sdk;  // the maxSdkVersion of the permission it comes with
};

struct DeclaredPermission {
  std::string name;
  std::string protection_level;  // "normal", "dangerous", "signature", "signature|privileged", ...
};

struct IntentFilter {
  std::vector<std::string> actions;
  std::vector<std::string> categories;
  std::vector<std::string> data;  // one string per <data>: "scheme://host:port/path" parts present, or "mime:type/sub"
  std::optional<int> priority;
  bool auto_verify = false;
};

enum class ComponentKind { kActivity, kActivityAlias, kService, kReceiver, kProvider };
std::string_view ComponentKindName(ComponentKind kind);  // "activity", "service", ...

struct Component {
  ComponentKind kind = ComponentKind::kActivity;
  std::string name;  // fully qualified (".Foo" expanded against the package)
  bool exported = false;
  // "explicit" when android:exported is set; "intent-filter" when implied by having one (the
  // pre-Android-12 rule); "default" otherwise (providers: exported by default below SDK 17).
  std::string exported_reason;
  std::string permission;  // android:permission guarding it ("" when none)
  bool enabled = true;
  std::vector<std::string> authorities;  // providers only
  std::vector<IntentFilter> intent_filters;
};

struct ApplicationFlags {
  bool debuggable = false;
  bool allow_backup = true;  // Android's default when the attribute is absent
  bool allow_backup_explicit = false;
  std::optional<bool> uses_cleartext_traffic;  // absent: platform default (true below SDK 28)
  bool network_security_config = false;
  std::string network_security_config_path;  // the XML file it resolves to ("res/xml/nsc.xml"), "" when unresolved
  bool test_only = false;
};

struct Queries {
  std::vector<std::string> packages;
  std::vector<IntentFilter> intents;
  std::vector<std::string> providers;  // authorities
};

struct Manifest {
  std::string package;
  std::optional<int64_t> version_code;      // versionCodeMajor << 32 | versionCode when both present
  std::optional<std::string> version_name;  // nullopt when the attribute is absent
  std::optional<int> min_sdk;               // 10000 (CUR_DEVELOPMENT) when a preview codename is given
  std::optional<int> target_sdk;            // as declared; PackageManager falls back to min_sdk when absent
  std::string min_sdk_codename;             // "Q" when android:minSdkVersion is a codename string (a preview build)
  std::string target_sdk_codename;
  std::optional<int> max_sdk;
  std::optional<int> compile_sdk;
  // Where compile_sdk was read: "compileSdkVersion" (android:compileSdkVersion, aapt2 and AGP
  // write it) or "platformBuildVersionCode" (the platform the package was linked against, which
  // older aapt writes instead); "" when neither is present.
  std::string compile_sdk_source;
  std::optional<std::string> label;        // resolved to the default-configuration string; nullopt when absent
  std::optional<uint32_t> label_resource;  // when the label was a reference
  std::vector<RequestedPermission> permissions;
  std::vector<ImpliedPermission> implied_permissions;  // granted with the requested ones (never repeats them)
  std::vector<DeclaredPermission> declared_permissions;
  std::vector<Component> components;
  ApplicationFlags flags;
  Queries queries;
  std::vector<std::string> uses_libraries;
  std::vector<std::string> uses_features;
};

// Errors: InvalidArgument when the root is not <manifest> or the package name is missing/invalid
// (Android refuses to install such a package). Everything else is best-effort with anomalies.
Result<Manifest> ExtractManifest(const XmlDocument& document, const ResourceTable* resources, Anomalies* anomalies);

}  // namespace appban::apk
