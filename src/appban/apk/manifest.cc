// Manifest facts, read the way PackageManager reads them: android: attributes by resource id
// (XmlElement::FindAndroidAttribute), `package` as a namespace-less attribute, values given as
// resource references resolved through resources.arsc in the default configuration, only the
// elements at the places PackageParser looks at (direct children of <manifest> / <application>),
// and only the first <application>.
#include "appban/apk/manifest.h"

#include "appban/apk/implied_permissions.h"
#include "appban/common/text.h"

#include <charconv>
#include <cstdio>

namespace appban::apk {

std::string_view ComponentKindName(ComponentKind kind) {
  switch (kind) {
    case ComponentKind::kActivity:
      return "activity";
    case ComponentKind::kActivityAlias:
      return "activity-alias";
    case ComponentKind::kService:
      return "service";
    case ComponentKind::kReceiver:
      return "receiver";
    case ComponentKind::kProvider:
      return "provider";
  }
  return "activity";
}

namespace {

// Build.VERSION_CODES.CUR_DEVELOPMENT: what a preview codename in minSdkVersion stands for.
constexpr int kCurrentDevelopmentSdk = 10000;
// Below this target SDK (JELLY_BEAN_MR1) a provider without android:exported is exported.
constexpr int kProviderExportedDefaultUntilSdk = 17;

std::optional<int64_t> ParseInteger(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  int base = 10;
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return negative ? -value : value;
}

// A Java-style package name as PackageParser.validateName(name, requireSeparator=true, ...)
// accepts it: dot-separated segments, each starting with a letter, then letters, digits or '_'.
bool IsValidPackageName(std::string_view name) {
  if (name.empty()) return false;
  bool has_separator = false;
  bool segment_start = true;
  for (char c : name) {
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c == '.') {
      if (segment_start) return false;
      has_separator = true;
      segment_start = true;
    } else if (segment_start) {
      if (!letter) return false;
      segment_start = false;
    } else if (!letter && !(c >= '0' && c <= '9') && c != '_') {
      return false;
    }
  }
  return has_separator && !segment_start;
}

std::string ProtectionLevelName(uint32_t level) {
  static constexpr std::string_view kBase[] = {"normal", "dangerous", "signature", "signatureOrSystem", "internal"};
  struct Flag {
    uint32_t bit;
    std::string_view name;
  };
  // PermissionInfo.PROTECTION_FLAG_* with their manifest spellings (attrs_manifest.xml).
  static constexpr Flag kFlags[] = {
      {0x10, "privileged"},
      {0x20, "development"},
      {0x40, "appop"},
      {0x80, "pre23"},
      {0x100, "installer"},
      {0x200, "verifier"},
      {0x400, "preinstalled"},
      {0x800, "setup"},
      {0x1000, "instant"},
      {0x2000, "runtime"},
      {0x4000, "oem"},
      {0x8000, "vendorPrivileged"},
      {0x10000, "textClassifier"},
      {0x80000, "configurator"},
      {0x100000, "incidentReportApprover"},
      {0x200000, "appPredictor"},
      {0x400000, "module"},
      {0x800000, "companion"},
      {0x1000000, "retailDemo"},
      {0x2000000, "recents"},
      {0x4000000, "role"},
      {0x8000000, "knownSigner"},
  };
  const uint32_t base = level & 0xf;
  std::string out = base < std::size(kBase) ? std::string(kBase[base]) : "base" + std::to_string(base);
  uint32_t rest = level & ~0xfu;
  for (const Flag& flag : kFlags) {
    if (rest & flag.bit) {
      out += "|" + std::string(flag.name);
      rest &= ~flag.bit;
    }
  }
  if (rest != 0) out += "|" + Hex32(rest);
  return out;
}

class ManifestReader {
 public:
  ManifestReader(const ResourceTable* resources, Anomalies* anomalies) : resources_(resources), anomalies_(anomalies) {}

  Result<Manifest> Read(const XmlElement& root) {
    if (root.name != "manifest") {
      return Status::InvalidArgument("root element is <" + root.name + ">, not <manifest>");
    }
    const XmlAttribute* package = root.FindPlainAttribute("package");
    if (package == nullptr) return Status::InvalidArgument("<manifest> has no package attribute");
    manifest_.package = package->raw_value ? *package->raw_value : AsString(*package, "package");
    // PackageParser exempts the platform itself ("android") from the dotted-name rule.
    if (manifest_.package != "android" && !IsValidPackageName(manifest_.package)) {
      return Status::InvalidArgument("package name '" + manifest_.package + "' is not a valid Java package name");
    }
    ReadVersion(root);

    const XmlElement* uses_sdk = nullptr;
    bool found_application = false;
    for (const XmlElement& child : root.children) {
      const std::string& tag = child.name;
      if (tag == "uses-sdk") {
        uses_sdk = &child;
      } else if (tag == "uses-permission" || tag == "uses-permission-sdk-23" || tag == "uses-permission-sdk-m") {
        RequestedPermission permission;
        permission.name = AndroidString(child, attr::kName, "name");
        permission.max_sdk = AndroidInt(child, attr::kMaxSdkVersion, "maxSdkVersion");
        permission.sdk23_only = tag != "uses-permission";
        AddRequestedPermission(std::move(permission), child.line);
      } else if (tag == "permission") {
        DeclaredPermission permission;
        permission.name = AndroidString(child, attr::kName, "name");
        permission.protection_level = "normal";
        if (const XmlAttribute* level = child.FindAndroidAttribute(attr::kProtectionLevel, "protectionLevel")) {
          ResourceValue value = Resolve(*level, "protectionLevel");
          if (value.type == ValueType::kString) {
            permission.protection_level = value.string_value;
          } else if (value.type != ValueType::kNull) {
            permission.protection_level = ProtectionLevelName(value.data);
          }
        }
        if (!permission.name.empty()) manifest_.declared_permissions.push_back(std::move(permission));
      } else if (tag == "uses-feature") {
        std::string name = AndroidString(child, attr::kName, "name");
        if (name.empty()) {
          if (auto gles = AndroidInt(child, attr::kGlEsVersion, "glEsVersion")) {
            name = "glEsVersion=" + Hex32(static_cast<uint32_t>(*gles));
          }
        }
        if (!name.empty()) manifest_.uses_features.push_back(std::move(name));
      } else if (tag == "queries") {
        ReadQueries(child);
      } else if (tag == "application") {
        if (found_application) {
          AddAnomaly(anomalies_, "manifest.multiple_application",
                     "AndroidManifest.xml line " + std::to_string(child.line),
                     "a second <application> element; ignored, as PackageParser uses only the first");
          continue;
        }
        found_application = true;
        application_ = &child;
      }
    }
    if (uses_sdk != nullptr) ReadUsesSdk(*uses_sdk);
    if (application_ != nullptr) ReadApplication(*application_);
    manifest_.implied_permissions = ImpliedPermissions(manifest_.permissions, EffectiveTargetSdk());
    return std::move(manifest_);
  }

 private:
  // PackageParser keeps the first request of a name and ignores repeats.
  void AddRequestedPermission(RequestedPermission permission, uint32_t line) {
    if (permission.name.empty()) return;
    for (const RequestedPermission& existing : manifest_.permissions) {
      if (existing.name == permission.name) {
        AddAnomaly(anomalies_, "manifest.duplicate_permission", "AndroidManifest.xml line " + std::to_string(line),
                   permission.name + " is requested more than once; the first request counts, as on Android");
        return;
      }
    }
    manifest_.permissions.push_back(std::move(permission));
  }

  void ReadVersion(const XmlElement& root) {
    auto code = AndroidInt(root, attr::kVersionCode, "versionCode");
    auto major = AndroidInt(root, attr::kVersionCodeMajor, "versionCodeMajor");
    if (code || major) {
      manifest_.version_code = (static_cast<int64_t>(major.value_or(0)) << 32) |
                               static_cast<int64_t>(static_cast<uint32_t>(code.value_or(0)));
    }
    if (const XmlAttribute* name = root.FindAndroidAttribute(attr::kVersionName, "versionName")) {
      manifest_.version_name = AsString(*name, "versionName");
    }
    manifest_.compile_sdk = AndroidInt(root, attr::kCompileSdkVersion, "compileSdkVersion");
    if (manifest_.compile_sdk) {
      manifest_.compile_sdk_source = "compileSdkVersion";
    } else if (const XmlAttribute* platform = root.FindPlainAttribute("platformBuildVersionCode")) {
      // Older aapt records only the platform it linked against; the report says which it was.
      manifest_.compile_sdk = IntOf(Resolve(*platform, "platformBuildVersionCode"));
      if (manifest_.compile_sdk) manifest_.compile_sdk_source = "platformBuildVersionCode";
    }
  }

  // minSdkVersion/targetSdkVersion are an integer or a preview codename string.
  void ReadSdk(const XmlElement& element, uint32_t id, std::string_view name, std::optional<int>* level,
               std::string* codename) {
    const XmlAttribute* attribute = element.FindAndroidAttribute(id, name);
    if (attribute == nullptr) return;
    ResourceValue value = Resolve(*attribute, name);
    if (value.type == ValueType::kString) {
      if (auto number = ParseInteger(value.string_value)) {
        *level = static_cast<int>(*number);
      } else if (!value.string_value.empty()) {
        *codename = value.string_value;
        *level = kCurrentDevelopmentSdk;
        if (id == attr::kMinSdkVersion) {
          // PackageParser.computeMinSdkVersion: a codename is accepted only by a preview build of
          // that very codename; every release build refuses the package.
          AddAnomaly(anomalies_, "manifest.codename_min_sdk", "AndroidManifest.xml <uses-sdk> android:minSdkVersion",
                     "minSdkVersion is the preview codename '" + *codename +
                         "' (read as SDK 10000, CUR_DEVELOPMENT): current Android refuses to install the package "
                         "(\"Requires development platform " +
                         *codename + "\"); only a preview build of that codename accepts it");
        }
      }
      return;
    }
    *level = IntOf(value);
  }

  void ReadUsesSdk(const XmlElement& uses_sdk) {
    ReadSdk(uses_sdk, attr::kMinSdkVersion, "minSdkVersion", &manifest_.min_sdk, &manifest_.min_sdk_codename);
    ReadSdk(uses_sdk, attr::kTargetSdkVersion, "targetSdkVersion", &manifest_.target_sdk,
            &manifest_.target_sdk_codename);
    manifest_.max_sdk = AndroidInt(uses_sdk, attr::kMaxSdkVersion, "maxSdkVersion");
  }

  // The target SDK PackageManager uses: targetSdkVersion, else minSdkVersion (a codename: 10000).
  int EffectiveTargetSdk() const {
    if (manifest_.target_sdk) return *manifest_.target_sdk;
    return manifest_.min_sdk.value_or(1);
  }

  void ReadApplication(const XmlElement& application) {
    if (const XmlAttribute* label = application.FindAndroidAttribute(attr::kLabel, "label")) {
      if (label->type == ValueType::kReference || label->type == ValueType::kDynamicReference) {
        manifest_.label_resource = label->data;
      }
      manifest_.label = AsString(*label, "label");
    }
    ApplicationFlags& flags = manifest_.flags;
    flags.debuggable = AndroidBool(application, attr::kDebuggable, "debuggable").value_or(false);
    if (auto allow_backup = AndroidBool(application, attr::kAllowBackup, "allowBackup")) {
      flags.allow_backup = *allow_backup;
      flags.allow_backup_explicit = true;
    }
    flags.uses_cleartext_traffic = AndroidBool(application, attr::kUsesCleartextTraffic, "usesCleartextTraffic");
    if (const XmlAttribute* config =
            application.FindAndroidAttribute(attr::kNetworkSecurityConfig, "networkSecurityConfig")) {
      flags.network_security_config = true;
      // A file resource resolves to its path inside the APK; an unresolved one stays "@0x...".
      std::string path = AsString(*config, "networkSecurityConfig");
      if (!path.empty() && path.front() != '@') flags.network_security_config_path = std::move(path);
    }
    flags.test_only = AndroidBool(application, attr::kTestOnly, "testOnly").value_or(false);

    for (const XmlElement& child : application.children) {
      const std::string& tag = child.name;
      if (tag == "activity") {
        ReadComponent(child, ComponentKind::kActivity);
      } else if (tag == "activity-alias") {
        ReadComponent(child, ComponentKind::kActivityAlias);
      } else if (tag == "service") {
        ReadComponent(child, ComponentKind::kService);
      } else if (tag == "receiver") {
        ReadComponent(child, ComponentKind::kReceiver);
      } else if (tag == "provider") {
        ReadComponent(child, ComponentKind::kProvider);
      } else if (tag == "uses-library") {
        std::string name = AndroidString(child, attr::kName, "name");
        if (!name.empty()) manifest_.uses_libraries.push_back(std::move(name));
      }
    }
  }

  // PackageParser.buildClassName: ".Foo" and "Foo" are relative to the package.
  std::string ExpandClassName(const std::string& name) const {
    if (name.empty()) return name;
    if (name.front() == '.') return manifest_.package + name;
    if (name.find('.') == std::string::npos) return manifest_.package + "." + name;
    return name;
  }

  void ReadComponent(const XmlElement& element, ComponentKind kind) {
    Component component;
    component.kind = kind;
    component.name = ExpandClassName(AndroidString(element, attr::kName, "name"));
    component.permission = AndroidString(element, attr::kPermission, "permission");
    component.enabled = AndroidBool(element, attr::kEnabled, "enabled").value_or(true);
    if (kind == ComponentKind::kProvider) {
      std::string authorities = AndroidString(element, attr::kAuthorities, "authorities");
      size_t start = 0;
      while (start <= authorities.size()) {
        size_t end = authorities.find(';', start);
        if (end == std::string::npos) end = authorities.size();
        if (end > start) component.authorities.push_back(authorities.substr(start, end - start));
        start = end + 1;
      }
    }
    for (const XmlElement& child : element.children) {
      if (child.name == "intent-filter") component.intent_filters.push_back(ReadIntentFilter(child));
    }
    if (auto exported = AndroidBool(element, attr::kExported, "exported")) {
      component.exported = *exported;
      component.exported_reason = "explicit";
    } else if (kind == ComponentKind::kProvider) {
      component.exported = EffectiveTargetSdk() < kProviderExportedDefaultUntilSdk;
      component.exported_reason = "default";
    } else if (!component.intent_filters.empty()) {
      component.exported = true;
      component.exported_reason = "intent-filter";
    } else {
      component.exported = false;
      component.exported_reason = "default";
    }
    manifest_.components.push_back(std::move(component));
  }

  IntentFilter ReadIntentFilter(const XmlElement& filter_element) {
    IntentFilter filter;
    filter.priority = AndroidInt(filter_element, attr::kPriority, "priority");
    filter.auto_verify = AndroidBool(filter_element, attr::kAutoVerify, "autoVerify").value_or(false);
    for (const XmlElement& child : filter_element.children) {
      if (child.name == "action") {
        std::string name = AndroidString(child, attr::kName, "name");
        if (!name.empty()) filter.actions.push_back(std::move(name));
      } else if (child.name == "category") {
        std::string name = AndroidString(child, attr::kName, "name");
        if (!name.empty()) filter.categories.push_back(std::move(name));
      } else if (child.name == "data") {
        std::string data = DataString(child);
        if (!data.empty()) filter.data.push_back(std::move(data));
      }
    }
    return filter;
  }

  std::string DataString(const XmlElement& data) {
    std::string scheme = AndroidString(data, attr::kScheme, "scheme");
    std::string host = AndroidString(data, attr::kHost, "host");
    std::string port = AndroidString(data, attr::kPort, "port");
    std::string path = AndroidString(data, attr::kPath, "path");
    std::string prefix = AndroidString(data, attr::kPathPrefix, "pathPrefix");
    std::string pattern = AndroidString(data, attr::kPathPattern, "pathPattern");
    std::string mime = AndroidString(data, attr::kMimeType, "mimeType");
    std::string out;
    if (!scheme.empty()) out += scheme + "://";
    out += host;
    if (!port.empty()) out += ":" + port;
    out += path;
    if (!prefix.empty()) out += prefix + "*";
    out += pattern;
    if (!mime.empty()) out += (out.empty() ? "mime:" : " mime:") + mime;
    return out;
  }

  void ReadQueries(const XmlElement& queries) {
    for (const XmlElement& child : queries.children) {
      if (child.name == "package") {
        std::string name = AndroidString(child, attr::kName, "name");
        if (!name.empty()) manifest_.queries.packages.push_back(std::move(name));
      } else if (child.name == "intent") {
        manifest_.queries.intents.push_back(ReadIntentFilter(child));
      } else if (child.name == "provider") {
        std::string authorities = AndroidString(child, attr::kAuthorities, "authorities");
        if (!authorities.empty()) manifest_.queries.providers.push_back(std::move(authorities));
      }
    }
  }

  // The attribute's value with a resource reference replaced by what it resolves to. An
  // unresolvable reference stays a reference (and is reported).
  ResourceValue Resolve(const XmlAttribute& attribute, std::string_view name) {
    ResourceValue value{attribute.type, attribute.data, attribute.string_value};
    bool is_reference = attribute.type == ValueType::kReference || attribute.type == ValueType::kDynamicReference;
    if (!is_reference || attribute.data == 0) return value;
    if (resources_ != nullptr) {
      if (auto resolved = resources_->Resolve(attribute.data)) return std::move(*resolved);
    }
    AddAnomaly(anomalies_, "manifest.unresolved_reference", "AndroidManifest.xml android:" + std::string(name),
               "resource reference " + Hex32(attribute.data) +
                   (resources_ == nullptr ? " cannot be resolved: no readable resources.arsc"
                                          : " is not in resources.arsc (or loops)"));
    return value;
  }

  static std::optional<int> IntOf(const ResourceValue& value) {
    switch (value.type) {
      case ValueType::kIntDec:
      case ValueType::kIntHex:
      case ValueType::kIntBoolean:
        return static_cast<int>(static_cast<int32_t>(value.data));
      case ValueType::kString:
        if (auto number = ParseInteger(value.string_value)) return static_cast<int>(*number);
        return std::nullopt;
      default:
        return std::nullopt;
    }
  }

  std::string AsString(const XmlAttribute& attribute, std::string_view name) {
    ResourceValue value = Resolve(attribute, name);
    switch (value.type) {
      case ValueType::kString:
        return value.string_value;
      case ValueType::kIntDec:
        return std::to_string(static_cast<int32_t>(value.data));
      case ValueType::kIntHex:
        return Hex32(value.data);
      case ValueType::kIntBoolean:
        return value.data != 0 ? "true" : "false";
      case ValueType::kReference:
        return "@" + Hex32(value.data);
      default:
        return attribute.raw_value.value_or("");
    }
  }

  std::string AndroidString(const XmlElement& element, uint32_t id, std::string_view name) {
    const XmlAttribute* attribute = element.FindAndroidAttribute(id, name);
    return attribute == nullptr ? std::string() : AsString(*attribute, name);
  }

  std::optional<int> AndroidInt(const XmlElement& element, uint32_t id, std::string_view name) {
    const XmlAttribute* attribute = element.FindAndroidAttribute(id, name);
    if (attribute == nullptr) return std::nullopt;
    return IntOf(Resolve(*attribute, name));
  }

  std::optional<bool> AndroidBool(const XmlElement& element, uint32_t id, std::string_view name) {
    const XmlAttribute* attribute = element.FindAndroidAttribute(id, name);
    if (attribute == nullptr) return std::nullopt;
    ResourceValue value = Resolve(*attribute, name);
    switch (value.type) {
      case ValueType::kIntBoolean:
      case ValueType::kIntDec:
      case ValueType::kIntHex:
        return value.data != 0;
      case ValueType::kString:
        if (value.string_value == "true") return true;
        if (value.string_value == "false") return false;
        return std::nullopt;
      default:
        return std::nullopt;
    }
  }

  const ResourceTable* resources_;
  Anomalies* anomalies_;
  Manifest manifest_;
  const XmlElement* application_ = nullptr;
};

}  // namespace

Result<Manifest> ExtractManifest(const XmlDocument& document, const ResourceTable* resources, Anomalies* anomalies) {
  return ManifestReader(resources, anomalies).Read(document.root);
}

}  // namespace appban::apk
