// Enforcement on the local system: turning the decisions of a verified bundle into actions
// (remove Debian packages, Flatpak apps and snaps; refuse their reinstallation) and events.
//
// Safety rules, in the order they are checked:
//   1. Monitor mode and `report` rules never act: they produce monitor_would_remove events.
//   2. A waived decision never acts: it produces waiver_applied (the caller re-evaluates at
//      NextWaiverExpiry and enforces then, without a new bundle).
//   3. A Debian package that is Essential: yes or Priority: required, or that one of those needs
//      (ProtectedPackages in dpkg_status.h: libc6), is never removed, nor one
//      whose removal APT says would remove such a package (`apt-get -s purge` is run first and its
//      "Remv"/"Purg" lines checked against the dpkg database). When APT cannot simulate (not configured
//      for the root), removal falls back to `dpkg --purge`, which itself refuses to break
//      dependencies or remove essential packages, after our own Essential/required check.
//   4. Every tool runs with argv (no shell), a deadline and bounded output; its stderr goes into
//      the remove_failed event.
//
// Refusing reinstalls (WriteInstallBlocks), for every package the bundle bans for this device
// except protected ones (rule 3: a pin or a refusal of those would block their security updates;
// they come back as UnenforcedBan, and the APT hook also lets through a .deb that declares itself
// Essential: yes or Priority: required):
//   <root>/etc/apt/preferences.d/appban   Pin-Priority -1 for each banned package (APT never
//                                         picks a version from any repository);
//   <root>/etc/apt/apt.conf.d/50appban    DPkg::Pre-Install-Pkgs runs the apt hook (refuses a
//                                         banned .deb even when handed to apt as a local file)
//                                         and DPkg::Post-Invoke touches the wake file;
//   <root>/etc/dpkg/dpkg.cfg.d/appban     post-invoke touches the wake file after any dpkg run;
//   <banned list>                         "package<TAB>rule" lines the apt hook reads;
//   flatpak mask <id>                     in every configured Flatpak installation.
// A `dpkg -i` that bypasses APT is undone by the watcher (watch.h), woken by inotify on the dpkg
// database. (dpkg reads its own configuration from /etc/dpkg even with --root, so the post-invoke
// file only takes effect on a real root.)
//
// An Enforcer is used from one thread; it remembers which informational events (waiver_applied,
// monitor_would_remove, install_refused) it already produced so a cycle every few seconds does
// not repeat them.
#pragma once

#include <functional>
#include <iosfwd>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "appban/agent/inventory.h"
#include "appban/agent/process.h"
#include "appban/common/status.h"
#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"
#include "appban/protocol/messages.h"

namespace appban::agent {

struct EnforcementConfig {
  SystemPaths paths;
  bool monitor = false;  // --monitor: plan and report, never act
  bool purge = true;     // purge (remove configuration too) rather than remove

  std::string apt_get = "apt-get";
  std::string dpkg = "dpkg";
  std::string dpkg_deb = "dpkg-deb";
  // Environment and -o options for every apt-get run (tests: APT_CONFIG=<scratch apt.conf>).
  std::vector<std::string> apt_env;
  std::vector<std::string> apt_options;
  // Extra dpkg options for the fallback path; --root/--admindir are added when root is not "/".
  std::vector<std::string> dpkg_options;

  std::string flatpak = "flatpak";
  // The snap client. snapd does not run here, so tests point this at a stub that records calls.
  std::vector<std::string> snap_command = {"snap"};

  // The shell command APT runs as the pre-install hook; " <banned list>" is appended. When it
  // starts with an absolute path that does not exist, the hook lets APT proceed (see .cc).
  std::string apt_hook_command = "/usr/bin/appban agent apt-hook";
  std::string banned_list_path;  // default <root>/var/lib/appban/apt-banned
  std::string wake_file = "/run/appban/dpkg-changed";

  CommandLimits command_limits;
};

// What the plan says to do with one installed app.
enum class PlannedKind {
  kNone,  // allowed
  kRemove,
  kWouldRemove,  // monitor mode or a `report` rule
  kWaived,
  kBlockInstallOnly,  // a `block` rule: keep the installed copy, refuse new installs
  kProtected,         // deb that is Essential/required: refused
};
std::string_view PlannedKindName(PlannedKind kind);

struct PlannedAction {
  PlannedKind kind = PlannedKind::kNone;
  InventoryEntry entry;
  std::string rule_id;
  std::optional<UnixSeconds> waived_until;
};

// REQUIRES: decisions.size() == entries.size() (decisions[i] is for entries[i]).
std::vector<PlannedAction> PlanEnforcement(std::span<const InventoryEntry> entries,
                                           std::span<const policy::AppDecision> decisions, bool monitor);

// The earliest waived_until among the decisions: when the caller must evaluate again.
std::optional<UnixSeconds> NextWaiverExpiry(std::span<const policy::AppDecision> decisions);

// An app identifier whose installation must be refused, with the rule that bans it.
struct BannedApp {
  policy::Platform platform = policy::Platform::kDeb;
  std::string id;
  std::string rule_id;
  friend bool operator==(const BannedApp&, const BannedApp&) = default;
  friend bool operator<(const BannedApp& a, const BannedApp& b) {
    return std::tie(a.platform, a.id, a.rule_id) < std::tie(b.platform, b.id, b.rule_id);
  }
};
// Every deb/flatpak/snap identifier the bundle bans for this device now (remove and block rules
// that apply and are not waived, vendor targets expanded), evaluated with the same precedence as
// installed apps. Sorted, one entry per identifier.
std::vector<BannedApp> InstallBlocklist(const policy::Bundle& bundle, const policy::PolicyIndex& index,
                                        const policy::DeviceContext& device, UnixSeconds now);

// Durable bookkeeping around every action that changes the system (the removals), so that no
// action goes unrecorded (a full disk must stop the agent, not silence it). `before` runs first
// and must durably record what is about to happen and make sure its outcome can be recorded; when
// it fails the action is not taken and a remove_failed event saying why takes its place. `after`
// receives the action's outcome events and must record them durably; when it fails no further
// action is taken in this Execute.
struct ActionJournal {
  std::function<Status(const PlannedAction&)> before;
  std::function<Status(std::vector<protocol::DeviceEvent>)> after;
};

// A ban the agent does not enforce on this device, and why (a protected Debian package).
struct UnenforcedBan {
  BannedApp app;
  std::string reason;
  friend bool operator==(const UnenforcedBan&, const UnenforcedBan&) = default;
};

class Enforcer {
 public:
  explicit Enforcer(EnforcementConfig config);

  const EnforcementConfig& config() const { return config_; }

  // Carries out the plan. Events come back with seq 0 (the state queue numbers them), in order.
  // With a journal, the outcome of each removal goes to journal->after instead of the result.
  std::vector<protocol::DeviceEvent> Execute(std::span<const PlannedAction> plan, UnixSeconds now,
                                             const ActionJournal* journal = nullptr);

  // install_refused events for the installs the APT hook refused since the last call. The hook
  // runs inside APT, not in the agent, so it leaves a line in the refusal spool
  // (<banned list>.refused) and the agent turns the spool into events here (then empties it).
  std::vector<protocol::DeviceEvent> CollectRefusals(UnixSeconds now);

  // Writes the APT pin, APT and dpkg hook configuration and banned list, and masks banned Flatpak
  // apps. Files are written atomically and only when their content changes. In monitor mode
  // nothing is written. Debian packages protected in the dpkg database (ProtectedPackages) are
  // left out of the pin and the list, whatever `banned` says, and returned with the reason.
  Result<std::vector<UnenforcedBan>> WriteInstallBlocks(std::span<const BannedApp> banned);

  // Undoes WriteInstallBlocks (unenrolment): deletes the APT pin, the APT and dpkg hook files, the
  // banned list and its refusal spool, and unmasks the Flatpak apps of `banned` and every mask
  // recorded as appban's. Files already gone are fine; the first file that cannot be deleted is an
  // error. (WriteInstallBlocks itself unmasks a Flatpak app whose ban was lifted.)
  Status RemoveInstallBlocks(std::span<const BannedApp> banned);

 private:
  void RemoveDeb(const PlannedAction& action, UnixSeconds now, std::vector<protocol::DeviceEvent>& events);
  void RemoveFlatpak(const PlannedAction& action, UnixSeconds now, std::vector<protocol::DeviceEvent>& events);
  void RemoveSnap(const PlannedAction& action, UnixSeconds now, std::vector<protocol::DeviceEvent>& events);
  bool FirstTime(protocol::EventKind kind, const std::string& app, const std::string& rule_id);
  std::vector<std::string> AptCommand(std::initializer_list<std::string_view> args) const;
  // `flatpak mask --remove` for each (installation path, app id) in an installation that exists;
  // a pattern that is no longer masked is fine.
  Status RemoveFlatpakMasks(const std::set<std::pair<std::string, std::string>>& masks);

  EnforcementConfig config_;
  std::set<std::tuple<int, std::string, std::string>> reported_;
};

// The APT pre-install hook (`appban agent apt-hook BANNED_LIST`). APT's Pre-Install-Pkgs protocol
// version 1 writes the .deb files about to be installed to stdin, one path per line. Each file's
// Package field is read with `dpkg-deb --field`; a banned one is refused, unless its control file
// says Essential: yes or Priority: required (a stale list must never block an update of the
// system's core: the hook then lets it through and says so on `err`). Returns the process
// exit status: 0 allow, 1 refused (a message naming the package and rule on `err`, and a line
// "package<TAB>rule<TAB>path" appended to <banned list>.refused), 2 the hook could not decide
// (unreadable list or .deb) — non-zero, so APT stops.
// With a `wake_file`, a refusal also touches it, so the agent's daemon reports it at once instead of
// at its next cycle (both hooks; the agent writes them with --wake-file).
int RunAptPreInstallHook(std::istream& in, const std::string& banned_list_path, std::ostream& err,
                         const std::string& dpkg_deb = "dpkg-deb", const std::string& wake_file = "");

// APT's JSON hook (`AptCli::Hooks::Install`, `appban agent apt-json-hook BANNED_LIST`): APT's pin
// at -1 refuses a banned package before any .deb exists, with only "has no installation
// candidate", so the pre-install hook never sees it. APT then sends this hook
// "org.debian.apt.hooks.install.fail" (JSON-RPC 2.0 over the socket in $APT_HOOK_SOCKET, protocol
// 0.1: each message one line followed by an empty line); for every requested package on the
// banned list the hook says which rule bans it on `err` and appends
// "package<TAB>rule<TAB>detail" to <banned list>.refused, which the agent reports as an
// install_refused event. Never stands in APT's way: any trouble is a warning on `err`, and the
// result is always 0. Messages are read up to kMaxAptHookMessageBytes each.
inline constexpr size_t kMaxAptHookMessageBytes = 1 << 20;
int RunAptJsonHook(int socket_fd, const std::string& banned_list_path, std::ostream& err,
                   const std::string& wake_file = "");
// The JSON hook's command for a pre-install hook command ("… agent apt-hook" → "… agent
// apt-json-hook"); empty when `apt_hook_command` does not end in " apt-hook".
std::string AptJsonHookCommand(const std::string& apt_hook_command);

}  // namespace appban::agent
