// Realistic, reproducible inventories for simulated devices: each device holds 60–150 Debian
// packages drawn from a fixed list of real package names (as found on Debian 12 workstations),
// and a chosen fraction of devices also hold one or two banned apps. The inventory of device i
// depends only on (seed, i), so a run that reloads its enrolled devices from a state file
// regenerates exactly what each device reported before. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/policy/evaluate.h"

namespace appban::sim {

struct InventoryOptions {
  uint64_t seed = 1;
  size_t min_apps = 60;
  size_t max_apps = 150;
  double banned_fraction = 0.1;              // share of devices holding 1–2 banned apps
  std::vector<policy::InstalledApp> banned;  // candidates, e.g. deb:wechat
};

// The embedded list of real Debian package names (340) the ordinary apps come from.
std::span<const std::string_view> CommonDebPackages();

// Parses "deb:wechat,deb:kesl" (platform:identifier, comma separated).
Result<std::vector<policy::InstalledApp>> ParseAppList(std::string_view text);

// Index of an app in an AppCatalog. A device's inventory is a sorted list of these (2 bytes per
// app instead of a few hundred), so 100,000 simulated devices fit in a few hundred MB.
using AppIndex = uint16_t;

// Every app a simulated fleet can hold: the common packages, each with one version per seed (a
// fleet on one Debian release mostly runs the same versions), then the banned candidates.
// Immutable after Make; safe to share.
class AppCatalog {
 public:
  static Result<AppCatalog> Make(InventoryOptions options);

  // The apps of device `device_index`: 60–150 distinct common packages and, for a
  // banned_fraction of devices, 1–2 banned apps. Sorted, no duplicates.
  std::vector<AppIndex> DeviceApps(uint64_t device_index) const;
  std::vector<policy::InstalledApp> Materialize(std::span<const AppIndex> apps) const;
  const policy::InstalledApp& app(AppIndex index) const { return apps_[index]; }
  size_t size() const { return apps_.size(); }
  bool IsBanned(AppIndex index) const { return index >= common_count_; }

 private:
  AppCatalog() = default;
  InventoryOptions options_;
  std::vector<policy::InstalledApp> apps_;
  size_t common_count_ = 0;
};

}  // namespace appban::sim
