// Intune's inventory as appban reads it (Graph v1.0): managedDevice objects and the detectedApp
// objects each device reports, turned into MdmDevice values (mdm_device.h). Pure; thread-safe.
//
// What Graph cannot tell: a v1.0 detectedApp carries a displayName, version and platform but no
// bundle id or package name. appban names a detected app by the bundle id / package of the Intune
// mobileApp with the same displayName and platform (its app catalogue) when there is one, and by
// its displayName otherwise; a ban on an app that is neither in the catalogue nor reported under
// its id is therefore not seen in Intune's inventory (docs/mdm.md).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/mdm/mdm_device.h"

namespace appban::mdm {

// Graph DateTimeOffset ("2026-12-05T04:00:00Z", with optional fraction and ±HH:MM offset) → Unix
// seconds; nullopt for Graph's "never" (0001-01-01T00:00:00Z).
Result<std::optional<UnixSeconds>> ParseGraphDateTime(std::string_view text);

// operatingSystem ("iOS", "iPadOS", "Android", "AndroidForWork", "Windows", "macOS") → appban's
// platform ("ios", "ipados", "android", "windows", "macos"); others lower-cased.
std::string PlatformFromOperatingSystem(std::string_view operating_system);

// A managedDevice. Fails (kCorruption) without an id or with a mistyped field. Sets source, id,
// names, platform, mdm_compliant (complianceState), last_mdm_sync (lastSyncDateTime) and, for an
// unsupervised iPhone/iPad, cannot_enforce_reason; reports_apps once the device has synced (Intune
// inventories apps at every sync; a personally owned device's inventory holds managed apps only).
// Apps are added by BuildIntuneDevices.
Result<MdmDevice> ParseManagedDevice(const Json& device);

struct DetectedApp {
  std::string id;
  std::string display_name;
  std::string version;
  std::string platform;  // detectedAppPlatformType: ios, androidWorkProfile, …
};
Result<DetectedApp> ParseDetectedApp(const Json& app);

// An Intune mobileApp's identity: its Graph id, display name, and the bundle id (iosStoreApp,
// iosVppApp) or package (androidStoreApp) it installs; empty for other kinds (web links, LOB).
struct CatalogApp {
  std::string id;
  std::string odata_type;  // "#microsoft.graph.iosStoreApp"
  std::string display_name;
  std::string app_id;  // bundle id or package name
  bool ios = false;
};
Result<CatalogApp> ParseMobileApp(const Json& app);

// Joins devices and apps: `apps_by_device` maps a managedDevice id to the detected apps it has.
std::vector<MdmDevice> BuildIntuneDevices(std::vector<MdmDevice> devices,
                                          const std::map<std::string, std::vector<DetectedApp>>& apps_by_device,
                                          const std::vector<CatalogApp>& catalogue);

}  // namespace appban::mdm
