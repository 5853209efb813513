#include "appban/agent/enforce.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <istream>
#include <iterator>
#include <map>
#include <ostream>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "appban/agent/dpkg_status.h"
#include "appban/common/file.h"
#include "appban/common/json.h"
#include "appban/common/text.h"

namespace appban::agent {
namespace {

using policy::Platform;
using protocol::DeviceEvent;
using protocol::EventKind;

constexpr uint64_t kMaxBannedListBytes = 16ull << 20;

std::string UnderRoot(const std::string& root, std::string_view path) {
  if (root.empty() || root == "/") return std::string(path);
  std::string joined = root;
  while (!joined.empty() && joined.back() == '/') joined.pop_back();
  return joined + std::string(path);
}

DeviceEvent MakeEvent(EventKind kind, const InventoryEntry& entry, const std::string& rule_id, std::string detail,
                      UnixSeconds now) {
  DeviceEvent event;
  event.at = now;
  event.kind = kind;
  event.platform = std::string(policy::PlatformName(entry.app.platform));
  event.app = entry.app.id;
  event.rule_id = rule_id;
  event.detail = std::move(detail);
  return event;
}

std::string ProtectedRefusal(const std::string& reason) {
  return "not enforced: the package is protected (" + (reason.empty() ? std::string("Essential or required") : reason) +
         "); the agent never removes, pins or refuses it, so its updates keep flowing";
}

// Debian package names: what APT and dpkg accept, so nothing else ever reaches an argv as a name.
bool ValidDebName(std::string_view name) {
  if (name.size() < 2 || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
                     }) &&
         name.front() != '-';
}
bool ValidFlatpakOrSnapName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

// Packages named in `apt-get -s` output: "Remv name[:arch] [version]" lines for a remove, "Purg"
// lines for a purge.
std::vector<std::string> SimulatedRemovals(std::string_view output) {
  std::vector<std::string> names;
  while (!output.empty()) {
    size_t end = output.find('\n');
    std::string_view line = output.substr(0, end);
    output = end == std::string_view::npos ? std::string_view() : output.substr(end + 1);
    if (line.substr(0, 5) != "Remv " && line.substr(0, 5) != "Purg ") continue;
    line.remove_prefix(5);
    std::string_view name = line.substr(0, line.find(' '));
    names.emplace_back(name.substr(0, name.find(':')));
  }
  return names;
}

Status WriteIfChanged(const std::string& path, const std::string& contents) {
  if (auto current = ReadFileToString(path, contents.size() + 1); current.ok() && *current == contents) {
    return Status::Ok();
  }
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  if (error) return Status::Unavailable("cannot create the directory of " + path + ": " + error.message());
  return WriteFileAtomically(path, contents, 0644);
}

// The Flatpak masks this agent set, one "installation path<TAB>app id" per line, so that a ban
// lifted later has its mask removed: flatpak cannot tell appban's masks from an administrator's.
std::string FlatpakMaskRecordPath(const std::string& banned_list_path) { return banned_list_path + ".flatpak-masks"; }

// The "key<TAB>value" lines of one of the agent's own list files (the banned list, the mask
// record); a missing file is an empty list, lines without a tab are skipped.
Result<std::vector<std::pair<std::string, std::string>>> ReadTabSeparatedPairs(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> pairs;
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) return pairs;
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxBannedListBytes));
  std::string_view rest(text);
  while (!rest.empty()) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos) continue;
    pairs.emplace_back(std::string(line.substr(0, tab)), std::string(line.substr(tab + 1)));
  }
  return pairs;
}

Result<std::set<std::pair<std::string, std::string>>> ReadFlatpakMaskRecord(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(auto pairs, ReadTabSeparatedPairs(path));
  return std::set<std::pair<std::string, std::string>>(pairs.begin(), pairs.end());
}

// APT configuration strings are double-quoted with no escape syntax: refuse what would break out.
Result<std::string> AptQuoted(const std::string& text) {
  if (text.find_first_of("\"\n;{}") != std::string::npos) {
    return Status::InvalidArgument("cannot put " + TerminalSafe(text) + " in APT configuration");
  }
  return "\"" + text + "\"";
}

// A POSIX shell single-quoted word.
std::string ShellQuoted(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

}  // namespace

std::string_view PlannedKindName(PlannedKind kind) {
  switch (kind) {
    case PlannedKind::kNone:
      return "none";
    case PlannedKind::kRemove:
      return "remove";
    case PlannedKind::kWouldRemove:
      return "would-remove";
    case PlannedKind::kWaived:
      return "waived";
    case PlannedKind::kBlockInstallOnly:
      return "block-install";
    case PlannedKind::kProtected:
      return "protected";
  }
  return "unknown";
}

std::vector<PlannedAction> PlanEnforcement(std::span<const InventoryEntry> entries,
                                           std::span<const policy::AppDecision> decisions, bool monitor) {
  std::vector<PlannedAction> plan;
  size_t count = std::min(entries.size(), decisions.size());
  for (size_t i = 0; i < count; ++i) {
    const auto& decision = decisions[i];
    PlannedAction action;
    action.entry = entries[i];
    action.rule_id = decision.rule_id;
    switch (decision.verdict) {
      case policy::Verdict::kAllowed:
        continue;
      case policy::Verdict::kReport:
        action.kind = PlannedKind::kWouldRemove;
        break;
      case policy::Verdict::kBlockInstall:
        action.kind = PlannedKind::kBlockInstallOnly;
        break;
      case policy::Verdict::kWaived:
        action.kind = PlannedKind::kWaived;
        action.waived_until = decision.waived_until;
        break;
      case policy::Verdict::kRemove:
        if (monitor) {
          action.kind = PlannedKind::kWouldRemove;
        } else if (action.entry.app.platform == Platform::kDeb && action.entry.protected_package) {
          action.kind = PlannedKind::kProtected;
        } else {
          action.kind = PlannedKind::kRemove;
        }
        break;
    }
    plan.push_back(std::move(action));
  }
  return plan;
}

std::optional<UnixSeconds> NextWaiverExpiry(std::span<const policy::AppDecision> decisions) {
  std::optional<UnixSeconds> next;
  for (const auto& decision : decisions) {
    if (decision.verdict != policy::Verdict::kWaived || !decision.waived_until) continue;
    if (!next || *decision.waived_until < *next) next = decision.waived_until;
  }
  return next;
}

std::vector<BannedApp> InstallBlocklist(const policy::Bundle& bundle, const policy::PolicyIndex& index,
                                        const policy::DeviceContext& device, UnixSeconds now) {
  std::map<std::pair<Platform, std::string>, std::string> banned;
  auto consider = [&](const policy::Target& target) {
    auto platform = policy::PlatformOfTarget(target.kind);
    if (!platform || (*platform != Platform::kDeb && *platform != Platform::kFlatpak && *platform != Platform::kSnap)) {
      return;
    }
    policy::InstalledApp app;
    app.platform = *platform;
    app.id = target.value;
    auto decision = index.Evaluate(app, device, now);
    if (decision.verdict == policy::Verdict::kRemove || decision.verdict == policy::Verdict::kBlockInstall) {
      banned.emplace(std::make_pair(*platform, target.value), decision.rule_id);
    }
  };
  std::unordered_map<std::string, const policy::Vendor*> vendors;
  for (const auto& vendor : bundle.vendors) vendors[vendor.name] = &vendor;
  for (const auto& rule : bundle.rules) {
    for (const auto& target : rule.targets) {
      if (target.kind != policy::TargetKind::kVendor) {
        consider(target);
      } else if (auto it = vendors.find(target.value); it != vendors.end()) {
        for (const auto& identifier : it->second->identifiers) consider(identifier);
      }
    }
  }
  std::vector<BannedApp> list;
  for (auto& [key, rule_id] : banned) list.push_back({key.first, key.second, rule_id});
  return list;
}

Enforcer::Enforcer(EnforcementConfig config) : config_(std::move(config)) {
  if (config_.banned_list_path.empty()) {
    config_.banned_list_path = UnderRoot(config_.paths.root, "/var/lib/appban/apt-banned");
  }
}

bool Enforcer::FirstTime(EventKind kind, const std::string& app, const std::string& rule_id) {
  return reported_.emplace(static_cast<int>(kind), app, rule_id).second;
}

std::vector<std::string> Enforcer::AptCommand(std::initializer_list<std::string_view> args) const {
  std::vector<std::string> argv = {config_.apt_get};
  const std::string& root = config_.paths.root;
  if (!root.empty() && root != "/") {
    // APT reads the root's own database, and must hand dpkg the same root and database: without
    // these DPkg::Options dpkg would act on the running system's package database instead.
    argv.insert(argv.end(), {"-o", "Dir::State::status=" + config_.paths.dpkg_admindir + "/status"});
    argv.insert(argv.end(), {"-o", "DPkg::Options::=--root=" + root});
    argv.insert(argv.end(), {"-o", "DPkg::Options::=--admindir=" + config_.paths.dpkg_admindir});
  }
  for (const auto& option : config_.apt_options) argv.insert(argv.end(), {"-o", option});
  for (auto arg : args) argv.emplace_back(arg);
  return argv;
}

std::vector<DeviceEvent> Enforcer::Execute(std::span<const PlannedAction> plan, UnixSeconds now,
                                           const ActionJournal* journal) {
  std::vector<DeviceEvent> events;
  bool halted = false;  // an outcome could not be recorded: act no more
  // One removal per identifier: a multi-arch package or a Flatpak app in two branches is listed
  // once per instance, and one tool run removes them all.
  std::set<std::pair<Platform, std::string>> removal_attempted;
  for (const auto& action : plan) {
    const auto& app = action.entry.app;
    if (action.kind == PlannedKind::kRemove && app.platform != Platform::kFlatpak &&
        !removal_attempted.emplace(app.platform, app.id).second) {
      continue;
    }
    switch (action.kind) {
      case PlannedKind::kNone:
      case PlannedKind::kBlockInstallOnly:
        break;
      case PlannedKind::kWouldRemove:
        if (FirstTime(EventKind::kMonitorWouldRemove, app.id, action.rule_id)) {
          events.push_back(MakeEvent(EventKind::kMonitorWouldRemove, action.entry, action.rule_id,
                                     config_.monitor ? "monitor mode: would remove" : "report rule: would remove",
                                     now));
        }
        break;
      case PlannedKind::kWaived:
        if (FirstTime(EventKind::kWaiverApplied, app.id, action.rule_id)) {
          events.push_back(
              MakeEvent(EventKind::kWaiverApplied, action.entry, action.rule_id,
                        action.waived_until ? "waived until " + FormatTimestamp(*action.waived_until) : "waived", now));
        }
        break;
      case PlannedKind::kProtected:
        if (FirstTime(EventKind::kRemoveFailed, app.id, action.rule_id)) {
          events.push_back(MakeEvent(EventKind::kRemoveFailed, action.entry, action.rule_id,
                                     ProtectedRefusal(action.entry.protected_reason), now));
        }
        break;
      case PlannedKind::kRemove: {
        if (halted) break;
        if (journal != nullptr) {
          if (Status ready = journal->before(action); !ready.ok()) {
            // Every later action would fail the same way; the next cycle tries again.
            halted = true;
            std::string detail = "not removed: the agent cannot record the action durably: " + ready.ToString();
            if (FirstTime(EventKind::kRemoveFailed, app.id, action.rule_id + "\n" + detail)) {
              events.push_back(
                  MakeEvent(EventKind::kRemoveFailed, action.entry, action.rule_id, std::move(detail), now));
            }
            break;
          }
        }
        std::vector<DeviceEvent> outcome;
        if (app.platform == Platform::kDeb) RemoveDeb(action, now, outcome);
        if (app.platform == Platform::kFlatpak) RemoveFlatpak(action, now, outcome);
        if (app.platform == Platform::kSnap) RemoveSnap(action, now, outcome);
        // A removal that keeps failing is retried every cycle but reported once per reason.
        std::vector<DeviceEvent> reported;
        for (auto& event : outcome) {
          if (event.kind != EventKind::kRemoveFailed ||
              FirstTime(event.kind, event.app, event.rule_id + "\n" + event.detail)) {
            reported.push_back(std::move(event));
          }
        }
        if (journal == nullptr) {
          events.insert(events.end(), std::make_move_iterator(reported.begin()),
                        std::make_move_iterator(reported.end()));
        } else if (!journal->after(std::move(reported)).ok()) {
          halted = true;
        }
        break;
      }
    }
  }
  return events;
}

void Enforcer::RemoveDeb(const PlannedAction& action, UnixSeconds now, std::vector<DeviceEvent>& events) {
  const std::string& name = action.entry.app.id;
  auto fail = [&](std::string detail) {
    events.push_back(MakeEvent(EventKind::kRemoveFailed, action.entry, action.rule_id, std::move(detail), now));
  };
  if (!ValidDebName(name)) return fail("not a valid Debian package name");
  if (action.entry.protected_package) return fail(ProtectedRefusal(action.entry.protected_reason));

  auto status = ReadDpkgStatus(config_.paths.dpkg_admindir);
  if (!status.ok()) return fail("cannot read the dpkg database: " + status.status().ToString());
  const std::map<std::string, std::string> protected_packages = ProtectedPackages(*status);
  const std::string verb = config_.purge ? "purge" : "remove";

  // Ask APT what the removal would take with it.
  std::vector<std::string> collateral;
  bool apt_usable = false;
  auto simulation = RunCommand(AptCommand({"-s", "-q", verb, name}), config_.apt_env, "", config_.command_limits);
  if (simulation.ok() && simulation->ok()) {
    auto removed = SimulatedRemovals(simulation->stdout_text);
    if (std::find(removed.begin(), removed.end(), name) != removed.end()) {
      apt_usable = true;
      for (const auto& other : removed) {
        if (auto it = protected_packages.find(other); it != protected_packages.end()) {
          return fail("refused: removing it would also remove " + other + ", which is protected (" + it->second + ")");
        }
        if (other != name) collateral.push_back(other);
      }
      if (simulation->stdout_text.find("\nInst ") != std::string::npos) {
        return fail("refused: APT would install packages to remove it");
      }
    }
  }

  Result<CommandResult> run = Status::Internal("not run");
  if (apt_usable) {
    // Wait for a dpkg that is still finishing (the install that woke us) instead of failing.
    run = RunCommand(AptCommand({"-y", "-q", "-o", "DPkg::Lock::Timeout=30", verb, name}), config_.apt_env, "",
                     config_.command_limits);
  } else {
    std::vector<std::string> argv = {config_.dpkg};
    const std::string& root = config_.paths.root;
    if (!root.empty() && root != "/") argv.push_back("--root=" + root);
    argv.push_back("--admindir=" + config_.paths.dpkg_admindir);
    argv.insert(argv.end(), config_.dpkg_options.begin(), config_.dpkg_options.end());
    argv.push_back(config_.purge ? "--purge" : "--remove");
    argv.push_back(name);
    run = RunCommand(argv, {}, "", config_.command_limits);
  }
  if (!run.ok()) return fail(run.status().ToString());

  // Judge by the database, not the exit status: that is what the next inventory will see.
  auto after = ReadDpkgStatus(config_.paths.dpkg_admindir);
  auto still_present = [&](const std::string& package) {
    if (!after.ok()) return true;
    return std::any_of(after->packages.begin(), after->packages.end(),
                       [&](const DpkgPackage& p) { return p.name == package && p.FilesPresent(); });
  };
  if (still_present(name)) {
    return fail(std::string(apt_usable ? "apt-get " : "dpkg ") + verb + " failed: " + run->Describe());
  }
  std::string tool = apt_usable ? "apt-get " + verb : "dpkg --" + verb;
  events.push_back(MakeEvent(EventKind::kRemoved, action.entry, action.rule_id, "removed with " + tool, now));
  for (const auto& other : collateral) {
    if (still_present(other)) continue;
    InventoryEntry dependent;
    dependent.app.platform = Platform::kDeb;
    dependent.app.id = other;
    events.push_back(MakeEvent(EventKind::kRemoved, dependent, action.rule_id,
                               "removed with " + tool + " because it depends on " + name, now));
  }
}

void Enforcer::RemoveFlatpak(const PlannedAction& action, UnixSeconds now, std::vector<DeviceEvent>& events) {
  const auto& entry = action.entry;
  if (!ValidFlatpakOrSnapName(entry.app.id)) {
    events.push_back(MakeEvent(EventKind::kRemoveFailed, entry, action.rule_id, "not a valid Flatpak id", now));
    return;
  }
  std::vector<std::string> env = {(entry.flatpak_user ? "FLATPAK_USER_DIR=" : "FLATPAK_SYSTEM_DIR=") +
                                  entry.flatpak_installation};
  std::vector<std::string> argv = {config_.flatpak, "uninstall", "--noninteractive",
                                   entry.flatpak_user ? "--user" : "--system",
                                   entry.detail.empty() ? entry.app.id : entry.detail};
  auto run = RunCommand(argv, env, "", config_.command_limits);
  if (run.ok() && run->ok()) {
    events.push_back(MakeEvent(EventKind::kRemoved, entry, action.rule_id,
                               "removed with flatpak uninstall " + (entry.detail.empty() ? entry.app.id : entry.detail),
                               now));
  } else {
    events.push_back(MakeEvent(EventKind::kRemoveFailed, entry, action.rule_id,
                               "flatpak uninstall failed: " + (run.ok() ? run->Describe() : run.status().ToString()),
                               now));
  }
}

void Enforcer::RemoveSnap(const PlannedAction& action, UnixSeconds now, std::vector<DeviceEvent>& events) {
  const auto& entry = action.entry;
  if (!ValidFlatpakOrSnapName(entry.app.id)) {
    events.push_back(MakeEvent(EventKind::kRemoveFailed, entry, action.rule_id, "not a valid snap name", now));
    return;
  }
  std::vector<std::string> argv = config_.snap_command;
  argv.insert(argv.end(), {"remove", entry.app.id});
  auto run = RunCommand(argv, {}, "", config_.command_limits);
  if (run.ok() && run->ok()) {
    events.push_back(MakeEvent(EventKind::kRemoved, entry, action.rule_id, "removed with snap remove", now));
  } else {
    events.push_back(MakeEvent(EventKind::kRemoveFailed, entry, action.rule_id,
                               "snap remove failed: " + (run.ok() ? run->Describe() : run.status().ToString()), now));
  }
}

std::vector<DeviceEvent> Enforcer::CollectRefusals(UnixSeconds now) {
  std::vector<DeviceEvent> events;
  std::string spool = config_.banned_list_path + ".refused";
  // Renamed first, so a refusal recorded while we read lands in a fresh spool, not lost.
  std::string taken = spool + ".taking";
  if (::rename(spool.c_str(), taken.c_str()) != 0) return events;
  auto text = ReadFileToString(taken, kMaxBannedListBytes);
  ::unlink(taken.c_str());
  if (!text.ok()) return events;
  std::string_view rest(*text);
  while (!rest.empty()) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    size_t tab1 = line.find('\t');
    size_t tab2 = tab1 == std::string_view::npos ? tab1 : line.find('\t', tab1 + 1);
    if (tab2 == std::string_view::npos) continue;
    InventoryEntry entry;
    entry.app.platform = Platform::kDeb;
    entry.app.id = std::string(line.substr(0, tab1));
    // A path: the pre-install hook refused that .deb; otherwise the JSON hook's own words.
    std::string_view detail = line.substr(tab2 + 1);
    events.push_back(MakeEvent(
        EventKind::kInstallRefused, entry, std::string(line.substr(tab1 + 1, tab2 - tab1 - 1)),
        detail.starts_with("/") ? "APT pre-install hook refused " + std::string(detail) : std::string(detail), now));
  }
  return events;
}

Status Enforcer::RemoveInstallBlocks(std::span<const BannedApp> banned) {
  const std::string& root = config_.paths.root;
  for (const std::string& path :
       {config_.banned_list_path, config_.banned_list_path + ".refused",
        UnderRoot(root, "/etc/apt/preferences.d/appban"), UnderRoot(root, "/etc/apt/apt.conf.d/50appban"),
        UnderRoot(root, "/etc/dpkg/dpkg.cfg.d/appban")}) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::Unavailable("cannot delete " + path + ": " + std::strerror(errno));
    }
  }
  // The masks recorded as appban's and those of the bans still in force (a record lost or written
  // by an older agent must not leave a mask behind).
  const std::string record_path = FlatpakMaskRecordPath(config_.banned_list_path);
  APPBAN_ASSIGN_OR_RETURN(auto masks, ReadFlatpakMaskRecord(record_path));
  for (const auto& installation : config_.paths.flatpak_installations) {
    for (const auto& app : banned) {
      if (app.platform == Platform::kFlatpak && ValidFlatpakOrSnapName(app.id))
        masks.emplace(installation.path, app.id);
    }
  }
  APPBAN_RETURN_IF_ERROR(RemoveFlatpakMasks(masks));
  if (::unlink(record_path.c_str()) != 0 && errno != ENOENT) {
    return Status::Unavailable("cannot delete " + record_path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status Enforcer::RemoveFlatpakMasks(const std::set<std::pair<std::string, std::string>>& masks) {
  std::string failures;
  for (const auto& installation : config_.paths.flatpak_installations) {
    struct stat info;
    if (::stat(installation.path.c_str(), &info) != 0) continue;
    for (const auto& [path, id] : masks) {
      if (path != installation.path || !ValidFlatpakOrSnapName(id)) continue;
      // One app per call: flatpak refuses the whole call when one pattern is not masked.
      std::vector<std::string> argv = {config_.flatpak, "mask", "--remove", installation.user ? "--user" : "--system",
                                       id};
      std::vector<std::string> env = {(installation.user ? "FLATPAK_USER_DIR=" : "FLATPAK_SYSTEM_DIR=") +
                                      installation.path};
      auto run = RunCommand(argv, env, "", config_.command_limits);
      if (!run.ok()) return run.status();
      if (!run->ok() && run->stderr_text.find("No current mask") == std::string::npos) {
        failures += (failures.empty() ? "" : "; ") + id + " in " + installation.path + ": " + run->Describe();
      }
    }
  }
  if (!failures.empty()) return Status::Unavailable("flatpak mask --remove failed: " + failures);
  return Status::Ok();
}

Result<std::vector<UnenforcedBan>> Enforcer::WriteInstallBlocks(std::span<const BannedApp> banned) {
  std::vector<UnenforcedBan> unenforced;
  if (config_.monitor) return unenforced;
  const std::string& root = config_.paths.root;

  // Never pin or refuse what the system cannot lose: its updates are security updates. A root
  // without a dpkg database has nothing to protect; one that cannot be read stops everything here
  // (the pins already written stay).
  std::map<std::string, std::string> protected_packages;
  struct stat status_info;
  if (::stat((config_.paths.dpkg_admindir + "/status").c_str(), &status_info) == 0) {
    APPBAN_ASSIGN_OR_RETURN(DpkgStatus status, ReadDpkgStatus(config_.paths.dpkg_admindir));
    protected_packages = ProtectedPackages(status);
  }

  std::string preferences = "# Written by the appban agent: packages banned by policy. Do not edit.\n";
  std::string banned_list;
  for (const auto& app : banned) {
    if (app.platform != Platform::kDeb || !ValidDebName(app.id)) continue;
    if (auto it = protected_packages.find(app.id); it != protected_packages.end()) {
      unenforced.push_back({app, ProtectedRefusal(it->second)});
      continue;
    }
    preferences +=
        "\nExplanation: appban rule " + app.rule_id + "\nPackage: " + app.id + "\nPin: release *\nPin-Priority: -1\n";
    banned_list += app.id + "\t" + app.rule_id + "\n";
  }
  APPBAN_RETURN_IF_ERROR(WriteIfChanged(config_.banned_list_path, banned_list));
  APPBAN_RETURN_IF_ERROR(WriteIfChanged(UnderRoot(root, "/etc/apt/preferences.d/appban"), preferences));

  // APT runs the hook before every dpkg call, removals included, so a hook whose program is gone
  // (the agent uninstalled) would break APT altogether: a missing program lets APT proceed, and the
  // pin still keeps repository versions out.
  const std::string program = config_.apt_hook_command.substr(0, config_.apt_hook_command.find(' '));
  auto hook_line = [&](const std::string& command) {
    std::string line =
        command + " " + ShellQuoted(config_.banned_list_path) + " --wake-file " + ShellQuoted(config_.wake_file);
    if (!program.empty() && program.front() == '/') line = "[ ! -e " + ShellQuoted(program) + " ] || " + line;
    return AptQuoted(line);
  };
  APPBAN_ASSIGN_OR_RETURN(std::string hook, hook_line(config_.apt_hook_command));
  APPBAN_ASSIGN_OR_RETURN(std::string poke, AptQuoted("touch " + ShellQuoted(config_.wake_file) + " || true"));
  std::string apt_conf =
      "// Written by the appban agent. Refuses banned packages even as local .deb files (the hook\n"
      "// speaks Pre-Install-Pkgs protocol version 1, APT's default), and wakes the agent after every\n"
      "// dpkg run.\n"
      "DPkg::Pre-Install-Pkgs { " +
      hook +
      "; };\n"
      "DPkg::Post-Invoke { " +
      poke + "; };\n";
  if (std::string json_hook = AptJsonHookCommand(config_.apt_hook_command); !json_hook.empty()) {
    APPBAN_ASSIGN_OR_RETURN(std::string json_hook_quoted, hook_line(json_hook));
    apt_conf +=
        "// When APT itself refuses a banned package (the pin leaves it no installation candidate),\n"
        "// says which rule bans it and records the refusal.\n"
        "AptCli::Hooks::Install { " +
        json_hook_quoted + "; };\n";
  }
  APPBAN_RETURN_IF_ERROR(WriteIfChanged(UnderRoot(root, "/etc/apt/apt.conf.d/50appban"), apt_conf));
  std::string dpkg_cfg = "# Written by the appban agent: wake it after every dpkg run.\npost-invoke=\"touch " +
                         config_.wake_file + " || true\"\n";
  APPBAN_RETURN_IF_ERROR(WriteIfChanged(UnderRoot(root, "/etc/dpkg/dpkg.cfg.d/appban"), dpkg_cfg));

  // A ban lifted since the last write has its mask removed; the record then names the masks set now.
  const std::string record_path = FlatpakMaskRecordPath(config_.banned_list_path);
  APPBAN_ASSIGN_OR_RETURN(auto recorded, ReadFlatpakMaskRecord(record_path));
  std::set<std::pair<std::string, std::string>> current;
  for (const auto& installation : config_.paths.flatpak_installations) {
    struct stat info;
    if (::stat(installation.path.c_str(), &info) != 0) continue;
    for (const auto& app : banned) {
      if (app.platform == Platform::kFlatpak && ValidFlatpakOrSnapName(app.id))
        current.emplace(installation.path, app.id);
    }
  }
  std::set<std::pair<std::string, std::string>> lifted;
  std::set_difference(recorded.begin(), recorded.end(), current.begin(), current.end(),
                      std::inserter(lifted, lifted.end()));
  APPBAN_RETURN_IF_ERROR(RemoveFlatpakMasks(lifted));
  std::string record;
  for (const auto& [path, id] : current) record += path + "\t" + id + "\n";

  for (const auto& installation : config_.paths.flatpak_installations) {
    struct stat info;
    if (::stat(installation.path.c_str(), &info) != 0) continue;
    std::vector<std::string> ids;
    for (const auto& app : banned) {
      if (app.platform == Platform::kFlatpak && ValidFlatpakOrSnapName(app.id)) ids.push_back(app.id);
    }
    if (ids.empty()) continue;
    std::vector<std::string> argv = {config_.flatpak, "mask", installation.user ? "--user" : "--system"};
    argv.insert(argv.end(), ids.begin(), ids.end());
    std::vector<std::string> env = {(installation.user ? "FLATPAK_USER_DIR=" : "FLATPAK_SYSTEM_DIR=") +
                                    installation.path};
    auto run = RunCommand(argv, env, "", config_.command_limits);
    if (!run.ok()) return run.status();
    if (!run->ok()) return Status::Unavailable("flatpak mask in " + installation.path + ": " + run->Describe());
  }
  APPBAN_RETURN_IF_ERROR(WriteIfChanged(record_path, record));
  return unenforced;
}

namespace {

// What the dpkg and APT post-invoke hooks do (`touch`): the daemon's watcher wakes on it. Best
// effort: the refusal is already recorded, only its promptness depends on this.
void TouchWakeFile(const std::string& wake_file) {
  if (wake_file.empty()) return;
  int fd = ::open(wake_file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  ::futimens(fd, nullptr);
  ::close(fd);
}

// Both hooks' refusals: "package<TAB>rule<TAB>detail" lines appended to the spool that
// Enforcer::CollectRefusals takes, then the daemon woken. Best effort: the refusal itself does not
// depend on the agent learning about it.
void RecordRefusals(const std::string& banned_list_path, const std::string& lines, const std::string& wake_file,
                    std::ostream& err) {
  int fd = ::open((banned_list_path + ".refused").c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, lines.data(), lines.size()) < 0) err << "appban: cannot record the refusal\n";
  if (fd >= 0) ::close(fd);
  TouchWakeFile(wake_file);
}

}  // namespace

int RunAptPreInstallHook(std::istream& in, const std::string& banned_list_path, std::ostream& err,
                         const std::string& dpkg_deb, const std::string& wake_file) {
  std::unordered_map<std::string, std::string> banned;  // package -> rule
  {
    auto list = ReadTabSeparatedPairs(banned_list_path);
    if (!list.ok()) {
      err << "appban: cannot read the banned package list: " << list.status().ToString() << "\n";
      return 2;
    }
    banned.insert(list->begin(), list->end());
  }
  std::string line;
  int refused = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    // Version 1 sends paths only; anything that is not an existing file (a later protocol's
    // header or marker lines) is not a package to check.
    struct stat info;
    if (::stat(line.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) continue;
    auto field = RunCommand({dpkg_deb, "--field", line, "Package", "Essential", "Priority"});
    if (!field.ok() || !field->ok()) {
      err << "appban: cannot read the package name of " << TerminalSafe(line) << ": "
          << (field.ok() ? field->Describe() : field.status().ToString()) << "\n";
      return 2;
    }
    auto parsed = ParseDpkgStatus(field->stdout_text + "Status: install ok installed\n");
    if (!parsed.ok() || parsed->packages.size() != 1) {
      err << "appban: cannot read the control fields of " << TerminalSafe(line) << "\n";
      return 2;
    }
    const DpkgPackage& package = parsed->packages[0];
    const std::string& name = package.name;
    auto it = banned.find(name);
    if (it != banned.end() && package.Protected()) {
      err << "appban: not refusing " << TerminalSafe(name) << " (" << TerminalSafe(line) << "), banned by policy rule "
          << TerminalSafe(it->second) << ": it is " << (package.essential ? "Essential: yes" : "Priority: required")
          << ", and blocking its updates would do more harm than the ban\n";
      continue;
    }
    if (it != banned.end()) {
      err << "appban: refusing to install " << TerminalSafe(name) << " (" << TerminalSafe(line)
          << "): banned by policy rule " << TerminalSafe(it->second) << "\n";
      ++refused;
      // At once: a later file the hook cannot read still leaves this refusal recorded.
      RecordRefusals(banned_list_path, name + "\t" + it->second + "\t" + line + "\n", wake_file, err);
    }
  }
  return refused > 0 ? 1 : 0;
}

namespace {

// Reads one JSON hook message: bytes up to the empty line that ends it. nullopt at the end of the
// stream (or on a read error); an oversized message is an error.
Result<std::optional<std::string>> ReadAptHookMessage(int fd, std::string& buffer) {
  while (true) {
    size_t end = buffer.find("\n\n");
    if (end != std::string::npos) {
      std::string message = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      return std::optional<std::string>(std::move(message));
    }
    if (buffer.size() > kMaxAptHookMessageBytes) {
      return Status::LimitExceeded("an APT hook message exceeds " + std::to_string(kMaxAptHookMessageBytes) + " bytes");
    }
    char chunk[16384];
    ssize_t got = ::read(fd, chunk, sizeof(chunk));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::optional<std::string>();
    buffer.append(chunk, static_cast<size_t>(got));
  }
}

bool WriteAptHookMessage(int fd, const Json& message) {
  std::string text = message.dump() + "\n\n";
  size_t written = 0;
  while (written < text.size()) {
    ssize_t put = ::write(fd, text.data() + written, text.size() - written);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    written += static_cast<size_t>(put);
  }
  return true;
}

// "wechat", "wechat=1.0", "wechat/bookworm", "wechat:amd64" name the package wechat; a term with a
// trailing '-' asks for a removal, and a pattern or path names none.
std::string PackageOfSearchTerm(std::string_view term) {
  size_t end = term.find_first_of("=/:");
  std::string name(term.substr(0, end));
  if (name.ends_with('+')) name.pop_back();
  if (name.empty() || name.ends_with('-') || !ValidDebName(name)) return "";
  return name;
}

}  // namespace

std::string AptJsonHookCommand(const std::string& apt_hook_command) {
  constexpr std::string_view kSuffix = " apt-hook";
  if (!apt_hook_command.ends_with(kSuffix)) return "";
  return apt_hook_command.substr(0, apt_hook_command.size() - kSuffix.size()) + " apt-json-hook";
}

int RunAptJsonHook(int socket_fd, const std::string& banned_list_path, std::ostream& err,
                   const std::string& wake_file) {
  std::string buffer;
  while (true) {
    auto message = ReadAptHookMessage(socket_fd, buffer);
    if (!message.ok()) {
      err << "appban: APT hook: " << message.status().ToString() << "\n";
      return 0;
    }
    if (!message->has_value()) return 0;
    Json request = Json::parse(**message, nullptr, false);
    if (!request.is_object() || !request.contains("method") || !request["method"].is_string()) {
      err << "appban: APT hook: a message that is not a JSON-RPC request\n";
      return 0;
    }
    const std::string method = request["method"].get<std::string>();
    const bool is_call = request.contains("id");
    if (method == "org.debian.apt.hooks.hello") {
      // Version 0.1 is the one every APT offers (support for it is mandatory).
      if (!WriteAptHookMessage(socket_fd,
                               Json{{"jsonrpc", "2.0"}, {"id", request["id"]}, {"result", {{"version", "0.1"}}}}))
        return 0;
      continue;
    }
    if (method == "org.debian.apt.hooks.bye") return 0;
    if (is_call) {
      // A later protocol may make calls of what are notifications today: answer, never hang APT.
      WriteAptHookMessage(socket_fd, Json{{"jsonrpc", "2.0"},
                                          {"id", request["id"]},
                                          {"error", {{"code", -32601}, {"message", "method not handled"}}}});
    }
    if (method != "org.debian.apt.hooks.install.fail") continue;
    const Json* terms = nullptr;
    if (request.contains("params") && request["params"].is_object() && request["params"].contains("search-terms") &&
        request["params"]["search-terms"].is_array()) {
      terms = &request["params"]["search-terms"];
    }
    if (terms == nullptr) continue;
    auto list = ReadTabSeparatedPairs(banned_list_path);
    if (!list.ok()) {
      err << "appban: cannot read the banned package list: " << list.status().ToString() << "\n";
      continue;
    }
    std::map<std::string, std::string> banned(list->begin(), list->end());
    std::string command = request["params"].value("command", "install");
    if (!ValidDebName(command)) command = "install";
    std::string spool;
    for (const Json& term : *terms) {
      if (!term.is_string()) continue;
      std::string name = PackageOfSearchTerm(term.get<std::string>());
      auto it = banned.find(name);
      if (name.empty() || it == banned.end()) continue;
      err << "appban: " << name << " is banned on this device by policy rule " << TerminalSafe(it->second)
          << ": APT offers no version of it (appban pins it at priority -1)\n";
      spool += name + "\t" + it->second + "\tAPT refused `" + command + " " + name +
               "`: banned by policy, no installation candidate\n";
    }
    if (!spool.empty()) RecordRefusals(banned_list_path, spool, wake_file, err);
  }
}

}  // namespace appban::agent
