#include "appban/agent/config.h"

#include <chrono>
#include <vector>

#include "appban/common/toml.h"

namespace appban::agent {
namespace {

// 1 MiB of "a.a.a…" would overflow toml++'s recursion (TomlLimits::max_key_dots); the agent's
// keys have one dot at most, a floating-point number one.
constexpr TomlLimits kTomlLimits{.max_bytes = kMaxAgentConfigBytes, .max_key_dots = 15};

// monitor and purge have always also taken an integer (0 false, anything else true), as toml++'s
// permissive conversion reads one; kept so that configuration files written that way still load.
Result<bool> Switch(const TomlField& field) {
  if (auto value = field.node().value<bool>()) return *value;
  return field.Error("must be true or false");
}

// `paths` holds `flatpak_set` across calls: the first flatpak_system/flatpak_user key replaces the
// default installations, later ones add to them.
Status ApplyPathsKey(const TomlField& field, EnforcementConfig& enforcement, bool& flatpak_set) {
  SystemPaths& paths = enforcement.paths;
  const std::string& name = field.path();
  if (name == "paths.root") {
    APPBAN_ASSIGN_OR_RETURN(std::string root_dir, field.String());
    // A root moves every default with it; explicit keys still win.
    SystemPaths moved = SystemPaths::UnderRoot(root_dir);
    paths.root = moved.root;
    if (paths.dpkg_admindir == SystemPaths{}.dpkg_admindir) paths.dpkg_admindir = moved.dpkg_admindir;
    if (!flatpak_set) paths.flatpak_installations = moved.flatpak_installations;
    if (paths.snapd_state == SystemPaths{}.snapd_state) paths.snapd_state = moved.snapd_state;
    if (paths.snap_mount_dir == SystemPaths{}.snap_mount_dir) paths.snap_mount_dir = moved.snap_mount_dir;
  } else if (name == "paths.dpkg_admindir") {
    APPBAN_ASSIGN_OR_RETURN(paths.dpkg_admindir, field.String());
  } else if (name == "paths.flatpak_system" || name == "paths.flatpak_user") {
    APPBAN_ASSIGN_OR_RETURN(std::vector<std::string> dirs, field.Strings());
    if (!flatpak_set) paths.flatpak_installations.clear();
    flatpak_set = true;
    for (auto& dir : dirs) paths.flatpak_installations.push_back({dir, name == "paths.flatpak_user"});
  } else if (name == "paths.snapd_state") {
    APPBAN_ASSIGN_OR_RETURN(paths.snapd_state, field.String());
  } else if (name == "paths.snap_mount_dir") {
    APPBAN_ASSIGN_OR_RETURN(paths.snap_mount_dir, field.String());
  } else if (name == "paths.banned_list") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.banned_list_path, field.String());
  } else if (name == "paths.wake_file") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.wake_file, field.String());
  } else {
    return field.Unknown();
  }
  return Status::Ok();
}

Status ApplyToolsKey(const TomlField& field, EnforcementConfig& enforcement) {
  const std::string& name = field.path();
  if (name == "tools.apt_get") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.apt_get, field.String());
  } else if (name == "tools.dpkg") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.dpkg, field.String());
  } else if (name == "tools.dpkg_deb") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.dpkg_deb, field.String());
  } else if (name == "tools.flatpak") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.flatpak, field.String());
  } else if (name == "tools.snap") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.snap_command, field.Strings());
    if (enforcement.snap_command.empty()) return field.Error("must not be empty");
  } else if (name == "tools.apt_env") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.apt_env, field.Strings());
  } else if (name == "tools.apt_options") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.apt_options, field.Strings());
  } else if (name == "tools.dpkg_options") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.dpkg_options, field.Strings());
  } else if (name == "tools.apt_hook_command") {
    APPBAN_ASSIGN_OR_RETURN(enforcement.apt_hook_command, field.String());
  } else {
    return field.Unknown();
  }
  return Status::Ok();
}

Status ApplyTimingKey(const TomlField& field, DaemonConfig& config) {
  const std::string& name = field.path();
  if (name == "timing.backoff_initial_ms") {
    APPBAN_ASSIGN_OR_RETURN(int64_t value, field.Integer(10, 3'600'000));
    config.backoff_initial = std::chrono::milliseconds(value);
  } else if (name == "timing.backoff_max_ms") {
    APPBAN_ASSIGN_OR_RETURN(int64_t value, field.Integer(10, 86'400'000));
    config.backoff_max = std::chrono::milliseconds(value);
  } else if (name == "timing.checkin_interval_seconds") {
    APPBAN_ASSIGN_OR_RETURN(int64_t value, field.Integer(1, 604'800));
    config.checkin_interval_override = std::chrono::seconds(value);
  } else if (name == "timing.request_timeout_ms") {
    APPBAN_ASSIGN_OR_RETURN(int64_t value, field.Integer(100, 600'000));
    config.timeouts.request = std::chrono::milliseconds(value);
  } else if (name == "timing.full_cycle_seconds") {
    APPBAN_ASSIGN_OR_RETURN(int64_t value, field.Integer(1, 86'400));
    config.full_cycle_interval = std::chrono::seconds(value);
  } else {
    return field.Unknown();
  }
  return Status::Ok();
}

Status ApplyTable(const toml::table& root, const std::string& source, DaemonConfig& config) {
  EnforcementConfig& enforcement = config.enforcement;
  bool flatpak_set = false;
  for (const TomlField& field : TomlFields(root, source)) {
    const std::string& name = field.path();
    if (name == "state_dir") {
      APPBAN_ASSIGN_OR_RETURN(config.state_dir, field.String());
    } else if (name == "monitor") {
      APPBAN_ASSIGN_OR_RETURN(enforcement.monitor, Switch(field));
    } else if (name == "purge") {
      APPBAN_ASSIGN_OR_RETURN(enforcement.purge, Switch(field));
    } else if (name == "paths" || name == "tools" || name == "timing") {
      APPBAN_ASSIGN_OR_RETURN(const toml::table* table, field.Table());
      for (const TomlField& sub : TomlFields(*table, source, name)) {
        if (name == "paths") {
          APPBAN_RETURN_IF_ERROR(ApplyPathsKey(sub, enforcement, flatpak_set));
        } else if (name == "tools") {
          APPBAN_RETURN_IF_ERROR(ApplyToolsKey(sub, enforcement));
        } else {
          APPBAN_RETURN_IF_ERROR(ApplyTimingKey(sub, config));
        }
      }
    } else {
      return field.Unknown();
    }
  }
  return Status::Ok();
}

}  // namespace

Status ApplyAgentConfig(std::string_view toml_text, const std::string& source, DaemonConfig& config) {
  APPBAN_ASSIGN_OR_RETURN(toml::table root, ParseToml(toml_text, source, kTomlLimits));
  return ApplyTable(root, source, config);
}

Status ApplyAgentConfigFile(const std::string& path, DaemonConfig& config) {
  APPBAN_ASSIGN_OR_RETURN(toml::table root, ReadTomlFile(path, kTomlLimits));
  return ApplyTable(root, path, config);
}

}  // namespace appban::agent
