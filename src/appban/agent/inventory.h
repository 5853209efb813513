// The local inventory of a Linux endpoint: Debian packages (the dpkg status database, read
// directly), Flatpak apps (system and user installations, read from their on-disk deploy
// directories) and snaps (snapd's state.json, else the /snap/<name>/current links). Nothing is
// run as a subprocess. Every location is a field of SystemPaths so tests point it at a scratch
// root. Pure reads; safe to call from any thread.
//
// On-disk layouts read (checked against flatpak 1.14 and dpkg 1.21 in this repository's tests):
//   <admindir>/status                                         dpkg_status.h
//   <installation>/app/<id>/<arch>/<branch>/active            symlink to the deployed commit dir
//   <installation>/app/<id>/<arch>/<branch>/active/metadata   key file, [Application] name=<id>
//   <installation>/app/<id>/<arch>/<branch>/active/deploy     GVariant (ssasta{sv}): origin remote,
//                                                             commit, subpaths, size, metadata
//   <snapd state>                {"data":{"snaps":{"<name>":{"active":..,"current":"<rev>",
//                                 "sequence":[{"name","revision",...}],"tracking-channel":..}}}}
//   <snap mount dir>/<name>/current/meta/snap.yaml            "version:" line
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "appban/agent/dpkg_status.h"
#include "appban/common/status.h"
#include "appban/policy/evaluate.h"

namespace appban::agent {

struct FlatpakInstallation {
  std::string path;   // /var/lib/flatpak, ~/.local/share/flatpak, or $FLATPAK_USER_DIR
  bool user = false;  // a per-user installation (flatpak --user)
};

struct SystemPaths {
  std::string root = "/";  // the system root the package tools act on (dpkg --root)
  std::string dpkg_admindir = "/var/lib/dpkg";
  std::vector<FlatpakInstallation> flatpak_installations = {{"/var/lib/flatpak", false}};
  std::string snapd_state = "/var/lib/snapd/state.json";
  std::string snap_mount_dir = "/snap";

  // Every path under `root` (a scratch root in tests, "/" in production).
  static SystemPaths UnderRoot(const std::string& root);
};

struct InventoryLimits {
  DpkgStatusLimits dpkg;
  uint64_t max_small_file_bytes = 1u << 20;  // flatpak metadata/deploy, snap.yaml
  uint64_t max_snapd_state_bytes = 64ull << 20;
  size_t max_flatpak_refs = 100000;  // per installation
  size_t max_snaps = 100000;
};
inline constexpr InventoryLimits kInventoryLimits{};

struct InventoryEntry {
  policy::InstalledApp app;  // platform deb/flatpak/snap, id, version
  // Where it came from: deb: the Origin field (often empty: dpkg keeps it only when the package
  // declared one); flatpak: the remote it was installed from; snap: the channel it tracks.
  std::string origin;
  // deb: the architecture; flatpak: "app/<id>/<arch>/<branch>" (the ref); snap: the revision.
  std::string detail;
  bool flatpak_user = false;                     // flatpak: installed in a user installation
  std::string flatpak_installation;              // flatpak: the installation path
  bool protected_package = false;                // deb: in ProtectedPackages (Essential, required, or needed by those)
  std::string protected_reason;                  // deb: why, e.g. "needed by dpkg, which is Essential: yes"
  DpkgState dpkg_state = DpkgState::kInstalled;  // deb only
};

struct LocalInventory {
  std::vector<InventoryEntry> entries;
  std::vector<std::string> warnings;  // skipped entries, unreadable optional sources

  std::vector<policy::InstalledApp> Apps() const;
  // protocol::InventoryHash of Apps().
  std::string Hash() const;
};

// Absent sources (no snapd, no flatpak installation) are simply empty. A dpkg database that exists
// but cannot be parsed is an error: an inventory silently missing every package would report a
// device as compliant.
Result<LocalInventory> CollectInventory(const SystemPaths& paths, const InventoryLimits& limits = kInventoryLimits);

// The origin remote name from a flatpak `deploy` file (the first string of the GVariant tuple).
Result<std::string> FlatpakDeployOrigin(std::string_view deploy_bytes);

}  // namespace appban::agent
