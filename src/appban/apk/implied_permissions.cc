#include "appban/apk/implied_permissions.h"

#include <algorithm>
#include <string>

namespace appban::apk {
namespace {

// Build.VERSION_CODES.DONUT: below it, external storage and phone state needed no request.
constexpr int kDonutSdk = 4;

// platform.xml's <split-permission> rows, in its order (the order they are applied in), as AOSP
// frameworks/base/data/etc/platform.xml has them through Android 16 (LineageOS 23's copy; AOSP's
// Android 14 copy has the same rows up to the two `health` ones). Not modelled: INTERNET ->
// ACCESS_LOCAL_NETWORK (targetSdk 37), which stands behind a feature flag.
constexpr SplitPermission kSplitPermissions[] = {
    {"android.permission.ACCESS_FINE_LOCATION", "android.permission.ACCESS_COARSE_LOCATION", std::nullopt},
    {"android.permission.WRITE_EXTERNAL_STORAGE", "android.permission.READ_EXTERNAL_STORAGE", std::nullopt},
    {"android.permission.READ_CONTACTS", "android.permission.READ_CALL_LOG", 16},
    {"android.permission.WRITE_CONTACTS", "android.permission.WRITE_CALL_LOG", 16},
    {"android.permission.ACCESS_FINE_LOCATION", "android.permission.ACCESS_BACKGROUND_LOCATION", 29},
    {"android.permission.ACCESS_COARSE_LOCATION", "android.permission.ACCESS_BACKGROUND_LOCATION", 29},
    {"android.permission.READ_EXTERNAL_STORAGE", "android.permission.ACCESS_MEDIA_LOCATION", 29},
    {"android.permission.WRITE_EXTERNAL_STORAGE", "android.permission.ACCESS_MEDIA_LOCATION", 29},
    {"android.permission.BLUETOOTH", "android.permission.BLUETOOTH_SCAN", 31},
    {"android.permission.BLUETOOTH", "android.permission.BLUETOOTH_CONNECT", 31},
    {"android.permission.BLUETOOTH", "android.permission.BLUETOOTH_ADVERTISE", 31},
    {"android.permission.BLUETOOTH_ADMIN", "android.permission.BLUETOOTH_SCAN", 31},
    {"android.permission.BLUETOOTH_ADMIN", "android.permission.BLUETOOTH_CONNECT", 31},
    {"android.permission.BLUETOOTH_ADMIN", "android.permission.BLUETOOTH_ADVERTISE", 31},
    {"android.permission.BODY_SENSORS", "android.permission.BODY_SENSORS_BACKGROUND", 33},
    {"android.permission.BODY_SENSORS", "android.permission.health.READ_HEART_RATE", 36},
    {"android.permission.BODY_SENSORS_BACKGROUND", "android.permission.health.READ_HEALTH_DATA_IN_BACKGROUND", 36},
    {"android.permission.READ_EXTERNAL_STORAGE", "android.permission.READ_MEDIA_AUDIO", 33},
    {"android.permission.READ_EXTERNAL_STORAGE", "android.permission.READ_MEDIA_VIDEO", 33},
    {"android.permission.READ_EXTERNAL_STORAGE", "android.permission.READ_MEDIA_IMAGES", 33},
    {"android.permission.WRITE_EXTERNAL_STORAGE", "android.permission.READ_MEDIA_AUDIO", 33},
    {"android.permission.WRITE_EXTERNAL_STORAGE", "android.permission.READ_MEDIA_VIDEO", 33},
    {"android.permission.WRITE_EXTERNAL_STORAGE", "android.permission.READ_MEDIA_IMAGES", 33},
    {"android.permission.READ_MEDIA_IMAGES", "android.permission.READ_MEDIA_VISUAL_USER_SELECTED", std::nullopt},
    {"android.permission.READ_MEDIA_VIDEO", "android.permission.READ_MEDIA_VISUAL_USER_SELECTED", std::nullopt},
    {"android.permission.ACCESS_MEDIA_LOCATION", "android.permission.READ_MEDIA_VISUAL_USER_SELECTED", std::nullopt},
};

constexpr std::string_view kOldTargetPermissions[] = {"android.permission.WRITE_EXTERNAL_STORAGE",
                                                      "android.permission.READ_PHONE_STATE"};

// "WRITE_EXTERNAL_STORAGE" for "android.permission.WRITE_EXTERNAL_STORAGE", as aapt words it.
std::string_view ShortName(std::string_view permission) {
  constexpr std::string_view kPrefix = "android.permission.";
  return permission.starts_with(kPrefix) ? permission.substr(kPrefix.size()) : permission;
}

// Every permission the app holds so far: requested or implied, with its maxSdkVersion.
struct Held {
  std::string_view name;
  std::optional<int> max_sdk;
};

}  // namespace

std::span<const SplitPermission> SplitPermissions() { return kSplitPermissions; }

std::vector<ImpliedPermission> ImpliedPermissions(const std::vector<RequestedPermission>& requested, int target_sdk) {
  std::vector<ImpliedPermission> implied;
  std::vector<Held> held;
  for (const RequestedPermission& p : requested) held.push_back({p.name, p.max_sdk});
  auto find = [&](std::string_view name) -> const Held* {
    auto it = std::find_if(held.begin(), held.end(), [&](const Held& h) { return h.name == name; });
    return it == held.end() ? nullptr : &*it;
  };
  // `held` views the names of `implied`: keep its strings from moving.
  implied.reserve(std::size(kOldTargetPermissions) + std::size(kSplitPermissions));
  auto add = [&](std::string_view name, std::string reason, std::string_view by, std::optional<int> max_sdk) {
    implied.push_back({std::string(name), std::move(reason), std::string(by), max_sdk});
    held.push_back({implied.back().name, max_sdk});
  };

  if (target_sdk < kDonutSdk) {
    for (std::string_view name : kOldTargetPermissions) {
      if (find(name) == nullptr) add(name, "targetSdkVersion < " + std::to_string(kDonutSdk), "", std::nullopt);
    }
  }
  // One pass in table order, as the platform applies it; a permission implied by an earlier row
  // (READ_EXTERNAL_STORAGE from WRITE_EXTERNAL_STORAGE) counts for the later ones.
  for (const SplitPermission& split : kSplitPermissions) {
    if (split.target_sdk_below && target_sdk >= *split.target_sdk_below) continue;
    const Held* from = find(split.from);
    if (from == nullptr || find(split.to) != nullptr) continue;
    if (split.target_sdk_below && from->max_sdk && *from->max_sdk < *split.target_sdk_below) continue;
    std::string reason = split.target_sdk_below
                             ? "targetSdkVersion < " + std::to_string(*split.target_sdk_below) + " and requested "
                             : std::string("requested ");
    reason += ShortName(split.from);
    add(split.to, std::move(reason), split.from, from->max_sdk);
  }
  return implied;
}

}  // namespace appban::apk
