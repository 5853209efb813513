#include "appban/mdm/intune_inventory.h"

#include <cctype>

namespace appban::mdm {
namespace {

Status OptionalString(const Json& object, std::string_view key, std::string& out, std::string_view what) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return Status::Corruption(std::string(what) + ": " + std::string(key) + " is not a string");
  out = it->get<std::string>();
  return Status::Ok();
}

bool IsDigits(std::string_view text) {
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return !text.empty();
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsIosPlatform(std::string_view platform) { return platform == "ios" || platform == "ipados"; }

}  // namespace

Result<std::optional<UnixSeconds>> ParseGraphDateTime(std::string_view text) {
  auto bad = [&] {
    return Status::Corruption("\"" + std::string(text.substr(0, 64)) + "\" is not a Graph DateTimeOffset");
  };
  if (text.size() < 20 || text.size() > 40) return bad();
  std::string_view rest = text.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    size_t digits = 1;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 1) return bad();
    rest.remove_prefix(digits);
  }
  int64_t offset = 0;
  if (rest == "Z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' && IsDigits(rest.substr(1, 2)) &&
             IsDigits(rest.substr(4, 2))) {
    offset = (std::stoi(std::string(rest.substr(1, 2))) * 3600 + std::stoi(std::string(rest.substr(4, 2))) * 60) *
             (rest[0] == '+' ? 1 : -1);
  } else {
    return bad();
  }
  if (text.substr(0, 4) == "0001") return std::optional<UnixSeconds>();
  Result<UnixSeconds> at = ParseTimestamp(std::string(text.substr(0, 19)) + "Z");
  if (!at.ok()) return bad();
  return std::optional<UnixSeconds>(*at - offset);
}

std::string PlatformFromOperatingSystem(std::string_view operating_system) {
  const std::string os = Lower(operating_system);
  if (os == "ios") return "ios";
  if (os == "ipados") return "ipados";
  if (os.rfind("android", 0) == 0) return "android";
  if (os.rfind("windows", 0) == 0) return "windows";
  if (os == "macos" || os == "mac os" || os == "macosx") return "macos";
  return os.empty() ? "unknown" : os;
}

Result<MdmDevice> ParseManagedDevice(const Json& device) {
  if (!device.is_object()) return Status::Corruption("managedDevice is not an object");
  MdmDevice out;
  out.source = MdmSource::kIntune;
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "id", out.mdm_id, "managedDevice"));
  if (out.mdm_id.empty()) return Status::Corruption("managedDevice without an id");
  const std::string what = "managedDevice " + out.mdm_id;
  std::string operating_system, compliance, last_sync;
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "deviceName", out.display_name, what));
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "userPrincipalName", out.user, what));
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "serialNumber", out.serial_number, what));
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "operatingSystem", operating_system, what));
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "complianceState", compliance, what));
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "lastSyncDateTime", last_sync, what));
  out.platform = PlatformFromOperatingSystem(operating_system);
  if (compliance == "compliant") {
    out.mdm_compliant = true;
  } else if (compliance == "noncompliant" || compliance == "conflict" || compliance == "error" ||
             compliance == "inGracePeriod") {
    out.mdm_compliant = false;
  }  // unknown, configManager, a future value: Intune has no verdict of its own
  if (!last_sync.empty()) {
    Result<std::optional<UnixSeconds>> at = ParseGraphDateTime(last_sync);
    if (!at.ok()) return Status::Corruption(what + ": lastSyncDateTime: " + at.status().message());
    out.last_mdm_sync = *at;
  }
  // Intune inventories a device's apps at every sync: a device that has synced has an inventory,
  // even an empty one. One that never synced has none and cannot be verified.
  out.reports_apps = out.last_mdm_sync.has_value();
  bool supervised = false;
  if (auto it = device.find("isSupervised"); it != device.end() && !it->is_null()) {
    if (!it->is_boolean()) return Status::Corruption(what + ": isSupervised is not a boolean");
    supervised = it->get<bool>();
  }
  if (IsIosPlatform(out.platform) && !supervised) {
    out.cannot_enforce_reason =
        "unsupervised iPhone/iPad: Intune hides apps (appsVisibilityList) only on supervised devices and uninstalls "
        "only apps it installed; restricted-app compliance can only mark the device non-compliant";
  }
  return out;
}

Result<DetectedApp> ParseDetectedApp(const Json& app) {
  if (!app.is_object()) return Status::Corruption("detectedApp is not an object");
  DetectedApp out;
  APPBAN_RETURN_IF_ERROR(OptionalString(app, "id", out.id, "detectedApp"));
  if (out.id.empty()) return Status::Corruption("detectedApp without an id");
  APPBAN_RETURN_IF_ERROR(OptionalString(app, "displayName", out.display_name, out.id));
  APPBAN_RETURN_IF_ERROR(OptionalString(app, "version", out.version, out.id));
  APPBAN_RETURN_IF_ERROR(OptionalString(app, "platform", out.platform, out.id));
  return out;
}

Result<CatalogApp> ParseMobileApp(const Json& app) {
  if (!app.is_object()) return Status::Corruption("mobileApp is not an object");
  CatalogApp out;
  APPBAN_RETURN_IF_ERROR(OptionalString(app, "id", out.id, "mobileApp"));
  if (out.id.empty()) return Status::Corruption("mobileApp without an id");
  APPBAN_RETURN_IF_ERROR(OptionalString(app, "@odata.type", out.odata_type, out.id));
  APPBAN_RETURN_IF_ERROR(OptionalString(app, "displayName", out.display_name, out.id));
  if (out.odata_type == "#microsoft.graph.iosStoreApp" || out.odata_type == "#microsoft.graph.iosVppApp") {
    APPBAN_RETURN_IF_ERROR(OptionalString(app, "bundleId", out.app_id, out.id));
    out.ios = true;
  } else if (out.odata_type == "#microsoft.graph.androidStoreApp") {
    APPBAN_RETURN_IF_ERROR(OptionalString(app, "packageId", out.app_id, out.id));
  }
  return out;
}

std::vector<MdmDevice> BuildIntuneDevices(std::vector<MdmDevice> devices,
                                          const std::map<std::string, std::vector<DetectedApp>>& apps_by_device,
                                          const std::vector<CatalogApp>& catalogue) {
  for (MdmDevice& device : devices) {
    auto apps = apps_by_device.find(device.mdm_id);
    if (apps == apps_by_device.end()) continue;
    for (const DetectedApp& detected : apps->second) {
      policy::InstalledApp app;
      const bool ios =
          IsIosPlatform(detected.platform) || (detected.platform.empty() && IsIosPlatform(device.platform));
      app.platform = ios ? policy::Platform::kIos : policy::Platform::kAndroid;
      app.id = detected.display_name;
      app.version = detected.version;
      for (const CatalogApp& known : catalogue) {
        if (!known.app_id.empty() && known.ios == ios && known.display_name == detected.display_name) {
          app.id = known.app_id;
          break;
        }
      }
      if (!app.id.empty()) device.installed.push_back(std::move(app));
    }
  }
  return devices;
}

}  // namespace appban::mdm
