// Permissions Android grants an app although its manifest does not request them, derived from
// the requested permissions and the target SDK the way the package parser does it:
//   1. apps targeting SDK < 4 (before Donut) get WRITE_EXTERNAL_STORAGE and READ_PHONE_STATE,
//      which did not need requesting then (PackageParser's NEW_PERMISSIONS);
//   2. the platform's split permissions: when a release split a permission in two, an app that
//      requests the old one and targets an SDK below the split's threshold is granted the new
//      one too (AOSP frameworks/base/data/etc/platform.xml, <split-permission>; a split without
//      a threshold applies to every target).
// docs/formats/inspect-json.md lists the table with its sources. Pure; thread-safe.
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "appban/apk/manifest.h"

namespace appban::apk {

struct SplitPermission {
  std::string_view from;  // the permission the app requests
  std::string_view to;    // the permission it is then also granted
  // Applies to apps whose target SDK is below this; nullopt: to every target SDK.
  std::optional<int> target_sdk_below;
};

// The split-permission table, in the platform's order.
std::span<const SplitPermission> SplitPermissions();

// The implied permissions of an app requesting `requested` and targeting `target_sdk` (the
// effective one: targetSdkVersion, else minSdkVersion, 10000 for a preview codename), in the
// order the platform adds them; none repeats a requested one. A permission implied through
// another inherits its maxSdkVersion, as `aapt dump badging` prints it; a conditional split is
// skipped when that maxSdkVersion is below its threshold (the platforms that know the split no
// longer request the old permission).
std::vector<ImpliedPermission> ImpliedPermissions(const std::vector<RequestedPermission>& requested, int target_sdk);

}  // namespace appban::apk
