#include "appban/agent/inventory.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "appban/common/bytes.h"
#include "appban/common/file.h"
#include "appban/common/json.h"
#include "appban/common/text.h"
#include "appban/protocol/messages.h"

namespace appban::agent {
namespace fs = std::filesystem;
namespace {

bool Exists(const std::string& path) {
  struct stat info;
  return ::lstat(path.c_str(), &info) == 0;
}

std::string JoinUnder(const std::string& root, std::string_view path) {
  if (root.empty() || root == "/") return std::string(path);
  std::string joined = root;
  while (!joined.empty() && joined.back() == '/') joined.pop_back();
  return joined + std::string(path);
}

// Flatpak ids, arches and branches as they appear in directory names; anything else is not ours.
bool PlausibleName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::vector<std::string> ListDirectory(const std::string& path, std::vector<std::string>& warnings) {
  std::vector<std::string> names;
  std::error_code error;
  fs::directory_iterator it(path, error);
  if (error) {
    if (error != std::errc::no_such_file_or_directory) warnings.push_back(path + ": " + error.message());
    return names;
  }
  for (; it != fs::directory_iterator(); it.increment(error)) {
    if (error) {
      warnings.push_back(path + ": " + error.message());
      break;
    }
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The value of `key` in `[group]` of a GLib key file.
std::string KeyFileValue(std::string_view text, std::string_view group, std::string_view key) {
  bool in_group = false;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (!line.empty() && line.front() == '[') {
      in_group = line == "[" + std::string(group) + "]";
      continue;
    }
    if (!in_group || line.size() <= key.size() || line.substr(0, key.size()) != key) continue;
    std::string_view rest = line.substr(key.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty() || rest.front() != '=') continue;
    rest.remove_prefix(1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    return std::string(rest);
  }
  return {};
}

void CollectDebs(const SystemPaths& paths, const InventoryLimits& limits, LocalInventory& inventory, Status& error) {
  std::string status_path = paths.dpkg_admindir + "/status";
  if (!Exists(status_path)) {
    inventory.warnings.push_back(status_path + ": not present; no Debian packages listed");
    return;
  }
  auto status = ReadDpkgStatus(paths.dpkg_admindir, limits.dpkg);
  if (!status.ok()) {
    error = status.status();
    return;
  }
  for (const auto& warning : status->warnings) {
    inventory.warnings.push_back(status_path + " line " + std::to_string(warning.line) + ": " + warning.message);
  }
  const std::map<std::string, std::string> protected_packages = ProtectedPackages(*status);
  for (auto& package : status->packages) {
    if (!package.FilesPresent()) continue;
    InventoryEntry entry;
    entry.app.platform = policy::Platform::kDeb;
    entry.app.id = package.name;
    entry.app.version = package.version;
    entry.origin = package.origin;
    entry.detail = package.architecture;
    if (auto it = protected_packages.find(package.name); it != protected_packages.end()) {
      entry.protected_package = true;
      entry.protected_reason = it->second;
    }
    entry.dpkg_state = package.state;
    inventory.entries.push_back(std::move(entry));
  }
}

void CollectFlatpaks(const FlatpakInstallation& installation, const InventoryLimits& limits,
                     LocalInventory& inventory) {
  std::string app_root = installation.path + "/app";
  size_t refs = 0;
  for (const auto& id : ListDirectory(app_root, inventory.warnings)) {
    if (!PlausibleName(id)) continue;
    for (const auto& arch : ListDirectory(app_root + "/" + id, inventory.warnings)) {
      if (!PlausibleName(arch) || arch == "current") continue;
      for (const auto& branch : ListDirectory(app_root + "/" + id + "/" + arch, inventory.warnings)) {
        if (!PlausibleName(branch)) continue;
        std::string active = app_root + "/" + id + "/" + arch + "/" + branch + "/active";
        if (!Exists(active)) continue;  // a ref being deployed or removed
        if (++refs > limits.max_flatpak_refs) {
          inventory.warnings.push_back(app_root + ": more than " + std::to_string(limits.max_flatpak_refs) +
                                       " deployed refs; the rest are not listed");
          return;
        }
        InventoryEntry entry;
        entry.app.platform = policy::Platform::kFlatpak;
        entry.app.id = id;
        // Flatpak's own "version" lives in AppStream data that not every app ships; the branch is
        // what `flatpak list` always shows and what an uninstall names.
        entry.app.version = branch;
        entry.detail = "app/" + id + "/" + arch + "/" + branch;
        entry.flatpak_user = installation.user;
        entry.flatpak_installation = installation.path;
        if (auto metadata = ReadFileToString(active + "/metadata", limits.max_small_file_bytes); metadata.ok()) {
          std::string name = KeyFileValue(*metadata, "Application", "name");
          if (!name.empty() && name != id) {
            inventory.warnings.push_back(active + "/metadata: names " + TerminalSafe(name) + ", directory says " + id);
          }
        } else {
          inventory.warnings.push_back(metadata.status().WithContext(active + "/metadata").ToString());
        }
        if (auto deploy = ReadFileToString(active + "/deploy", limits.max_small_file_bytes); deploy.ok()) {
          if (auto origin = FlatpakDeployOrigin(*deploy); origin.ok()) {
            entry.origin = *origin;
          } else {
            inventory.warnings.push_back(origin.status().WithContext(active + "/deploy").ToString());
          }
        }
        inventory.entries.push_back(std::move(entry));
      }
    }
  }
}

// snap.yaml's top-level "version:" value (quotes stripped); empty when absent.
std::string SnapYamlVersion(const std::string& text) {
  std::string_view rest(text);
  while (!rest.empty()) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (line.substr(0, 8) != "version:") continue;
    std::string_view value = line.substr(8);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.remove_suffix(1);
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    return std::string(value);
  }
  return {};
}

void CollectSnaps(const SystemPaths& paths, const InventoryLimits& limits, LocalInventory& inventory) {
  auto add = [&](const std::string& name, std::string revision, std::string channel) {
    InventoryEntry entry;
    entry.app.platform = policy::Platform::kSnap;
    entry.app.id = name;
    std::string yaml_path = paths.snap_mount_dir + "/" + name + "/current/meta/snap.yaml";
    if (auto yaml = ReadFileToString(yaml_path, limits.max_small_file_bytes); yaml.ok()) {
      entry.app.version = SnapYamlVersion(*yaml);
    }
    if (entry.app.version.empty()) entry.app.version = revision;
    entry.detail = std::move(revision);
    entry.origin = std::move(channel);
    inventory.entries.push_back(std::move(entry));
  };

  if (Exists(paths.snapd_state)) {
    auto text = ReadFileToString(paths.snapd_state, limits.max_snapd_state_bytes);
    if (!text.ok()) {
      inventory.warnings.push_back(text.status().WithContext(paths.snapd_state).ToString());
    } else {
      auto json = ParseJsonBounded(*text, limits.max_snapd_state_bytes, 64, paths.snapd_state);
      const Json* snaps = nullptr;
      if (json.ok() && json->is_object() && json->contains("data") && (*json)["data"].is_object() &&
          (*json)["data"].contains("snaps") && (*json)["data"]["snaps"].is_object()) {
        snaps = &(*json)["data"]["snaps"];
      }
      if (snaps == nullptr) {
        inventory.warnings.push_back(paths.snapd_state + ": no data.snaps object; snaps read from " +
                                     paths.snap_mount_dir);
      } else {
        size_t count = 0;
        for (const auto& [name, snap] : snaps->items()) {
          if (++count > limits.max_snaps) {
            inventory.warnings.push_back(paths.snapd_state + ": more than " + std::to_string(limits.max_snaps) +
                                         " snaps");
            break;
          }
          if (!PlausibleName(name) || !snap.is_object()) continue;
          // A snap with "active": false is installed but disabled (`snap disable`): still on disk.
          std::string revision =
              snap.contains("current") && snap["current"].is_string() ? snap["current"].get<std::string>() : "";
          std::string channel;
          for (const char* key : {"tracking-channel", "channel"}) {
            if (channel.empty() && snap.contains(key) && snap[key].is_string()) channel = snap[key].get<std::string>();
          }
          add(name, revision, channel);
        }
        return;
      }
    }
  }
  // No usable snapd state: every /snap/<name>/current link is an installed snap.
  for (const auto& name : ListDirectory(paths.snap_mount_dir, inventory.warnings)) {
    if (!PlausibleName(name) || name == "bin") continue;
    std::error_code error;
    fs::path target = fs::read_symlink(paths.snap_mount_dir + "/" + name + "/current", error);
    if (error) continue;
    add(name, target.filename().string(), "");
  }
}

}  // namespace

SystemPaths SystemPaths::UnderRoot(const std::string& root) {
  SystemPaths paths;
  paths.root = root;
  paths.dpkg_admindir = JoinUnder(root, "/var/lib/dpkg");
  paths.flatpak_installations = {{JoinUnder(root, "/var/lib/flatpak"), false}};
  paths.snapd_state = JoinUnder(root, "/var/lib/snapd/state.json");
  paths.snap_mount_dir = JoinUnder(root, "/snap");
  return paths;
}

std::vector<policy::InstalledApp> LocalInventory::Apps() const {
  std::vector<policy::InstalledApp> apps;
  apps.reserve(entries.size());
  for (const auto& entry : entries) apps.push_back(entry.app);
  return apps;
}

std::string LocalInventory::Hash() const {
  auto apps = Apps();
  return protocol::InventoryHash(apps);
}

Result<std::string> FlatpakDeployOrigin(std::string_view deploy_bytes) {
  // GVariant serialisation of a tuple: members back to back, then the end offsets of every
  // variable-sized member except the last, stored in reverse order at the very end; each offset is
  // 1, 2, 4 or 8 bytes depending on the container's total size. The origin is member 0, so its end
  // offset is the last offset in the file.
  Bytes bytes = AsBytes(deploy_bytes);
  size_t size = bytes.size();
  size_t offset_size = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffull ? 4 : 8;
  if (size < offset_size + 1) return Status::Truncated("deploy data shorter than one framing offset");
  uint64_t end = 0;
  for (size_t i = 0; i < offset_size; ++i) end |= static_cast<uint64_t>(bytes[size - offset_size + i]) << (8 * i);
  if (end == 0 || end > size - offset_size) {
    return Status::Corruption("deploy data: origin ends at " + std::to_string(end) + ", outside the " +
                              std::to_string(size) + "-byte tuple");
  }
  std::string_view origin = deploy_bytes.substr(0, static_cast<size_t>(end));
  if (origin.back() != '\0' || origin.find('\0') != origin.size() - 1) {
    return Status::Corruption("deploy data: origin is not a NUL-terminated string");
  }
  origin.remove_suffix(1);
  return std::string(origin);
}

Result<LocalInventory> CollectInventory(const SystemPaths& paths, const InventoryLimits& limits) {
  LocalInventory inventory;
  Status deb_error;
  CollectDebs(paths, limits, inventory, deb_error);
  APPBAN_RETURN_IF_ERROR(deb_error);
  for (const auto& installation : paths.flatpak_installations) CollectFlatpaks(installation, limits, inventory);
  CollectSnaps(paths, limits, inventory);
  return inventory;
}

}  // namespace appban::agent
