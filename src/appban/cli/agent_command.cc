// appban agent: the Linux endpoint agent (docs/agent.md).
//   enroll    present an enrolment token, pin the server's CA and the policy keys
//   once      one full cycle (cron, tests)
//   run       the daemon (long-poll, periodic check-ins, change watcher); SIGTERM stops it
//   status    policy version, last check-in, pending events, decisions, waivers
//   apt-hook  APT's DPkg::Pre-Install-Pkgs checker
//   apt-json-hook  APT's AptCli::Hooks::Install hook (names the rule behind "no installation candidate")
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stop_token>
#include <thread>

#include "appban/agent/agent_client.h"
#include "appban/agent/config.h"
#include "appban/agent/daemon.h"
#include "appban/agent/enforce.h"
#include "appban/agent/sandbox.h"
#include "appban/cli/commands.h"
#include "appban/common/file.h"

namespace appban::cli {
namespace {

using agent::DaemonConfig;

struct AgentFlags {
  std::string config_file;
  std::string state_dir;
  // Paths and tools; empty / unset means "from the config file, else the default".
  std::string root;
  std::string dpkg_admindir;
  std::vector<std::string> flatpak_system;
  std::vector<std::string> flatpak_user;
  std::string snapd_state;
  std::string snap_mount_dir;
  std::string apt_get, dpkg, dpkg_deb, flatpak;
  std::vector<std::string> snap_command;
  std::vector<std::string> apt_env, apt_options, dpkg_options;
  std::string apt_hook_command, banned_list, wake_file;
  bool monitor = false;
  bool no_purge = false;
  int64_t backoff_initial_ms = -1;
  int64_t backoff_max_ms = -1;
  int64_t checkin_interval_seconds = -1;
  int64_t request_timeout_ms = -1;
  int64_t full_cycle_seconds = -1;
};

Result<DaemonConfig> BuildConfig(const AgentFlags& flags) {
  DaemonConfig config;
  if (!flags.config_file.empty()) APPBAN_RETURN_IF_ERROR(agent::ApplyAgentConfigFile(flags.config_file, config));
  agent::EnforcementConfig& enforcement = config.enforcement;
  agent::SystemPaths& paths = enforcement.paths;
  if (!flags.state_dir.empty()) config.state_dir = flags.state_dir;
  if (!flags.root.empty()) {
    agent::SystemPaths moved = agent::SystemPaths::UnderRoot(flags.root);
    paths.root = moved.root;
    paths.dpkg_admindir = moved.dpkg_admindir;
    paths.flatpak_installations = moved.flatpak_installations;
    paths.snapd_state = moved.snapd_state;
    paths.snap_mount_dir = moved.snap_mount_dir;
  }
  if (!flags.dpkg_admindir.empty()) paths.dpkg_admindir = flags.dpkg_admindir;
  if (!flags.flatpak_system.empty() || !flags.flatpak_user.empty()) {
    paths.flatpak_installations.clear();
    for (const auto& dir : flags.flatpak_system) paths.flatpak_installations.push_back({dir, false});
    for (const auto& dir : flags.flatpak_user) paths.flatpak_installations.push_back({dir, true});
  }
  if (!flags.snapd_state.empty()) paths.snapd_state = flags.snapd_state;
  if (!flags.snap_mount_dir.empty()) paths.snap_mount_dir = flags.snap_mount_dir;
  if (!flags.apt_get.empty()) enforcement.apt_get = flags.apt_get;
  if (!flags.dpkg.empty()) enforcement.dpkg = flags.dpkg;
  if (!flags.dpkg_deb.empty()) enforcement.dpkg_deb = flags.dpkg_deb;
  if (!flags.flatpak.empty()) enforcement.flatpak = flags.flatpak;
  if (!flags.snap_command.empty()) enforcement.snap_command = flags.snap_command;
  if (!flags.apt_env.empty()) enforcement.apt_env = flags.apt_env;
  if (!flags.apt_options.empty()) enforcement.apt_options = flags.apt_options;
  if (!flags.dpkg_options.empty()) enforcement.dpkg_options = flags.dpkg_options;
  if (!flags.apt_hook_command.empty()) enforcement.apt_hook_command = flags.apt_hook_command;
  if (!flags.banned_list.empty()) enforcement.banned_list_path = flags.banned_list;
  if (!flags.wake_file.empty()) enforcement.wake_file = flags.wake_file;
  if (flags.monitor) enforcement.monitor = true;
  if (flags.no_purge) enforcement.purge = false;
  if (flags.backoff_initial_ms >= 0) config.backoff_initial = std::chrono::milliseconds(flags.backoff_initial_ms);
  if (flags.backoff_max_ms >= 0) config.backoff_max = std::chrono::milliseconds(flags.backoff_max_ms);
  if (flags.checkin_interval_seconds > 0)
    config.checkin_interval_override = std::chrono::seconds(flags.checkin_interval_seconds);
  if (flags.request_timeout_ms > 0) config.timeouts.request = std::chrono::milliseconds(flags.request_timeout_ms);
  if (flags.full_cycle_seconds > 0) config.full_cycle_interval = std::chrono::seconds(flags.full_cycle_seconds);
  if (config.backoff_max < config.backoff_initial) {
    return Status::InvalidArgument("the maximum back-off is shorter than the initial one");
  }
  return config;
}

// What the agent reads: its configuration, its state and where the installed apps are listed.
// `status` needs only these; `once` and `run` also take the enforcement options below.
void AddInventoryOptions(CLI::App* command, AgentFlags* flags) {
  command->add_option("--config", flags->config_file, "TOML configuration file (docs/agent.md)")
      ->check(CLI::ExistingFile);
  command->add_option("--state-dir", flags->state_dir, "State directory (default /var/lib/appban)");
  command->add_option("--root", flags->root, "System root the package tools act on (default /)");
  command->add_option("--dpkg-admindir", flags->dpkg_admindir,
                      "The dpkg database directory (default <root>/var/lib/dpkg)");
  command->add_option("--flatpak-system", flags->flatpak_system, "A system Flatpak installation (repeatable)");
  command->add_option("--flatpak-user", flags->flatpak_user, "A per-user Flatpak installation (repeatable)");
  command->add_option("--snapd-state", flags->snapd_state, "The state.json of snapd");
  command->add_option("--snap-mount-dir", flags->snap_mount_dir, "Where snaps are mounted (default <root>/snap)");
}

// How the agent acts: the package tools, the hooks, monitor mode, back-off and intervals.
void AddEnforcementOptions(CLI::App* command, AgentFlags* flags) {
  command->add_option("--apt-get", flags->apt_get, "The apt-get program");
  command->add_option("--dpkg", flags->dpkg, "The dpkg program");
  command->add_option("--dpkg-deb", flags->dpkg_deb, "The dpkg-deb program");
  command->add_option("--flatpak", flags->flatpak, "The flatpak program");
  command->add_option("--snap", flags->snap_command, "The snap client command (argv words)");
  command->add_option("--apt-env", flags->apt_env, "NAME=value for every apt-get run (repeatable)");
  command->add_option("--apt-option", flags->apt_options, "-o option for every apt-get run (repeatable)");
  command->add_option("--dpkg-option", flags->dpkg_options, "Extra dpkg option for the fallback path (repeatable)");
  command->add_option("--apt-hook-command", flags->apt_hook_command, "The shell command APT runs as pre-install hook");
  command->add_option("--banned-list", flags->banned_list, "The list the APT hook reads");
  command->add_option("--wake-file", flags->wake_file, "The file dpkg/APT post-invoke hooks touch");
  command->add_flag("--monitor", flags->monitor, "Plan and report what would be done; never act");
  command->add_flag("--no-purge", flags->no_purge, "Remove packages but keep their configuration files");
  command->add_option("--backoff-initial-ms", flags->backoff_initial_ms, "First retry wait after a failure");
  command->add_option("--backoff-max-ms", flags->backoff_max_ms, "Longest retry wait (default 300000)");
  command->add_option("--checkin-interval", flags->checkin_interval_seconds,
                      "Seconds between check-ins (default: the server's)");
  command->add_option("--request-timeout-ms", flags->request_timeout_ms, "Timeout of one check-in");
  command->add_option("--full-cycle-seconds", flags->full_cycle_seconds, "Local re-enforcement at least this often");
}

agent::LogFn StderrLog() {
  return [](std::string_view line) { std::cerr << "appban agent: " << line << "\n" << std::flush; };
}

struct EnrollFlags {
  std::string server;
  std::string ca_file;
  std::string ca_sha256;
  std::string token;
  std::string token_file;
  std::string hostname;
  int64_t retry_for_seconds = 0;
};

// The token a fleet image or configuration tool left on the machine (not on the command line,
// where every local user could read it in the process list). Not a symbolic link: the file is
// deleted after enrolling, and that must not delete something else.
Result<std::string> ReadTokenFile(const std::string& path) {
  constexpr uint64_t kMaxTokenFileBytes = 4096;
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return Status::NotFound("--token-file " + path + ": " + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) return Status::InvalidArgument("--token-file " + path + " is not a regular file");
  auto text = ReadFileToString(path, kMaxTokenFileBytes);
  if (!text.ok()) return text.status().WithContext("--token-file");
  std::string_view token = *text;
  constexpr std::string_view kSpace = " \t\r\n";
  token.remove_prefix(std::min(token.size(), token.find_first_not_of(kSpace)));
  token.remove_suffix(token.size() - std::min(token.size(), token.find_last_not_of(kSpace) + 1));
  if (token.empty()) return Status::InvalidArgument("--token-file " + path + " is empty");
  if (token.find_first_of(" \t\r\n") != std::string_view::npos) {
    return Status::InvalidArgument("--token-file " + path + " holds more than one line; it must hold only the token");
  }
  return std::string(token);
}

int RunEnroll(const AgentFlags& flags, const EnrollFlags& enroll) {
  auto config = BuildConfig(flags);
  if (!config.ok()) {
    std::cerr << "appban agent enroll: " << config.status().message() << "\n";
    return 2;
  }
  if (enroll.token.empty() == enroll.token_file.empty()) {
    std::cerr << "appban agent enroll: give the enrolment token with exactly one of --token and --token-file\n";
    return 2;
  }
  agent::EnrollOptions options;
  options.server_url = enroll.server;
  options.token = enroll.token;
  if (!enroll.token_file.empty()) {
    auto token = ReadTokenFile(enroll.token_file);
    if (!token.ok()) {
      std::cerr << "appban agent enroll: " << token.status().ToString() << "\n";
      return 2;
    }
    options.token = *token;
  }
  options.hostname = enroll.hostname;
  options.expected_ca_sha256 = enroll.ca_sha256;
  options.retry_for = std::chrono::seconds(enroll.retry_for_seconds);
  const std::string& ca_file = enroll.ca_file;
  if (!ca_file.empty()) {
    auto ca = ReadFileToString(ca_file, 1u << 20);
    if (!ca.ok()) {
      std::cerr << "appban agent enroll: --ca: " << ca.status().ToString() << "\n";
      return 2;
    }
    options.ca_pem = *ca;
  }
  auto state = agent::AgentState::Open(config->state_dir);
  if (!state.ok()) {
    std::cerr << "appban agent enroll: " << state.status().ToString() << "\n";
    return 1;
  }
  auto enrolled = agent::Enroll(*state, options);
  if (!enrolled.ok()) {
    std::cerr << "appban agent enroll: " << enrolled.status().ToString() << "\n";
    return 1;
  }
  std::cout << "enrolled as " << enrolled->device_id << (enrolled->group.empty() ? "" : " in group " + enrolled->group)
            << "; " << enrolled->policy_keys_pem.size() << " policy key(s) pinned; state in " << config->state_dir
            << "\n";
  if (!enroll.token_file.empty()) {
    // Only after a successful enrolment: a machine that failed keeps the token to try again.
    std::error_code error;
    std::filesystem::remove(enroll.token_file, error);
    if (error) {
      std::cerr << "appban agent enroll: WARNING: enrolled, but the token file " << enroll.token_file
                << " could not be deleted (" << error.message() << "): delete it, it still enrols machines\n";
      return 0;
    }
    std::cout << "deleted the token file " << enroll.token_file << "\n";
  }
  return 0;
}

int RunAgentOnce(const AgentFlags& flags) {
  auto config = BuildConfig(flags);
  if (!config.ok()) {
    std::cerr << "appban agent once: " << config.status().message() << "\n";
    return 2;
  }
  return agent::RunOnce(*config, StderrLog());
}

int RunAgentUnenroll(const AgentFlags& flags, bool offline) {
  auto config = BuildConfig(flags);
  if (!config.ok()) {
    std::cerr << "appban agent unenrol: " << config.status().message() << "\n";
    return 2;
  }
  agent::UnenrollOptions options;
  options.offline = offline;
  return agent::RunUnenroll(*config, options, StderrLog());
}

int RunAgentDaemon(const AgentFlags& flags) {
  auto config = BuildConfig(flags);
  if (!config.ok()) {
    std::cerr << "appban agent run: " << config.status().message() << "\n";
    return 2;
  }
  // SIGTERM/SIGINT are taken by one thread with sigwait; every other thread inherits the mask, so
  // no handler runs in the middle of a write.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::stop_source stop;
  std::thread waiter([&signals, &stop] {
    int received = 0;
    sigwait(&signals, &received);
    stop.request_stop();
  });
  Status result = agent::RunDaemon(*config, stop.get_token(), StderrLog());
  if (!stop.stop_requested()) {
    // The loop gave up by itself: wake the signal thread so it can be joined.
    stop.request_stop();
    pthread_kill(waiter.native_handle(), SIGTERM);
  }
  waiter.join();
  if (!result.ok()) {
    std::cerr << "appban agent run: " << result.ToString() << "\n";
    return 1;
  }
  std::cerr << "appban agent: stopped\n" << std::flush;
  std::cout << std::flush;
  // Everything is on disk (the state is fsync'ed as it changes). The long-poll thread may still be
  // inside an OpenSSL read the server holds for up to a minute; exiting without running static
  // destructors keeps library teardown from racing it.
  ::_exit(0);
}

void PrintStatus(const Json& report, std::ostream& out) {
  out << "device:          " << StringOr(report, "device_id") << " (" << StringOr(report, "server") << ")\n";
  out << "mode:            " << (report.value("monitor", false) ? "monitor (reports, never acts)" : "enforcing")
      << "\n";
  out << "policy version:  " << report.value("policy_version", 0);
  if (report.contains("bundle_expires_at")) {
    out << " (rules " << StringOr(report, "rules_hash").substr(0, 12) << ", expires "
        << FormatTimestamp(report.value("bundle_expires_at", int64_t{0}))
        << (report.value("bundle_expired", false) ? ", EXPIRED" : "") << ")";
  }
  out << "\n";
  if (report.contains("cached_bundle_refused"))
    out << "cached bundle:   refused: " << StringOr(report, "cached_bundle_refused") << "\n";
  if (report.value("server_rules_hash_mismatch", false))
    out << "server verdict:  rules_hash MISMATCH: the server issued this version with another hash; not compliant\n";
  const auto& checkin = report["last_checkin"];
  int64_t attempt = checkin.value("attempt_at", int64_t{0});
  int64_t ok_at = checkin.value("ok_at", int64_t{0});
  out << "last check-in:   " << (attempt > 0 ? FormatTimestamp(attempt) : "never") << ": "
      << StringOr(checkin, "result") << "\n";
  out << "last success:    " << (ok_at > 0 ? FormatTimestamp(ok_at) : "never") << "\n";
  out << "pending events:  " << report.value("pending_events", 0) << " (acknowledged up to seq "
      << report.value("events_acked", 0) << ")\n";
  out << "decisions:\n";
  if (report["decisions"].empty()) out << "  (no installed app is named by a rule)\n";
  for (const auto& item : report["decisions"]) {
    out << "  " << StringOr(item, "platform") << ":" << StringOr(item, "id") << " " << StringOr(item, "version") << "  "
        << StringOr(item, "verdict") << " -> " << StringOr(item, "action") << "  rule " << StringOr(item, "rule");
    if (item.contains("waived_until")) out << " until " << FormatTimestamp(item.value("waived_until", int64_t{0}));
    out << "\n";
  }
  if (report.contains("event_queue_error")) {
    out << "event queue:     cannot write (" << report.value("unwritten_events", 0)
        << " events kept in memory; nothing is removed meanwhile): " << StringOr(report, "event_queue_error") << "\n";
  }
  if (report.contains("not_enforced") && !report["not_enforced"].empty()) {
    out << "not enforced:\n";
    for (const auto& item : report["not_enforced"]) {
      out << "  " << StringOr(item, "platform") << ":" << StringOr(item, "id") << "  rule " << StringOr(item, "rule")
          << ": " << StringOr(item, "reason") << "\n";
    }
  }
  out << "waivers:\n";
  if (report["waivers"].empty()) out << "  (none for this device)\n";
  for (const auto& item : report["waivers"]) {
    out << "  " << StringOr(item, "id") << " on rule " << StringOr(item, "rule") << " until "
        << FormatTimestamp(item.value("expires_at", int64_t{0})) << (item.value("active", false) ? "" : " (expired)")
        << "\n";
  }
}

int RunAgentStatus(const AgentFlags& flags, bool json) {
  auto config = BuildConfig(flags);
  if (!config.ok()) {
    std::cerr << "appban agent status: " << config.status().message() << "\n";
    return 2;
  }
  Json report;
  auto agent_state = agent::Agent::Open(*config, agent::Agent::Mode::kInspect);
  if (agent_state.ok()) {
    // Nobody else holds the state: evaluate the installed apps now (nothing is acted on: monitor).
    auto previous = ReadFileToString(config->state_dir + "/status.json", 16u << 20);
    report = agent_state->Report(static_cast<UnixSeconds>(std::time(nullptr)));
    if (previous.ok()) {
      Json saved = Json::parse(*previous, nullptr, false);
      // The last run's check-in outcome and decisions are only known from its status file.
      if (saved.is_object()) {
        if (saved.contains("last_checkin")) report["last_checkin"] = saved["last_checkin"];
        if (saved.contains("decisions")) report["decisions"] = saved["decisions"];
        if (saved.contains("not_enforced")) report["not_enforced"] = saved["not_enforced"];
      }
    }
  } else if (agent_state.status().code() == StatusCode::kFailedPrecondition &&
             agent_state.status().message().find("in use") != std::string::npos) {
    // The daemon holds the state: it writes status.json after every cycle and check-in.
    auto saved = ReadFileToString(config->state_dir + "/status.json", 16u << 20);
    if (!saved.ok()) {
      std::cerr << "appban agent status: the daemon runs but wrote no status yet: " << saved.status().ToString()
                << "\n";
      return 1;
    }
    report = Json::parse(*saved, nullptr, false);
    if (!report.is_object()) {
      std::cerr << "appban agent status: status.json is not JSON\n";
      return 1;
    }
  } else {
    // "not enrolled" is an answer, not an error code to decode.
    const Status& status = agent_state.status();
    std::cerr << "appban agent status: "
              << (status.code() == StatusCode::kNotFound ? status.message() : status.ToString()) << "\n";
    return 1;
  }
  if (json) {
    std::cout << report.dump(2) << "\n";
  } else {
    PrintStatus(report, std::cout);
  }
  return 0;
}

int RunSandbox(const std::string& dir, bool demo_packages, bool update_apt) {
  std::error_code error;
  std::string self = std::filesystem::read_symlink("/proc/self/exe", error).string();
  if (error) self = "appban";
  agent::SandboxOptions options;
  options.apt_hook_command = self + " agent apt-hook";
  options.demo_packages = demo_packages;
  options.update_apt = update_apt;
  auto sandbox = agent::CreateSandbox(dir, options);
  if (!sandbox.ok()) {
    std::cerr << "appban: agent sandbox: " << sandbox.status().ToString() << "\n";
    return 1;
  }
  std::cout << agent::SandboxInstructions(*sandbox, self);
  return 0;
}

}  // namespace

void AddAgentCommand(CLI::App& app, CommandAction* action) {
  CLI::App* agent_command = app.add_subcommand("agent", "The Linux endpoint agent: enrol, enforce, report");
  agent_command->require_subcommand(1);
  auto flags = std::make_shared<AgentFlags>();

  CLI::App* enroll = agent_command->add_subcommand("enroll", "Enrol this device with an appban server");
  auto enroll_flags = std::make_shared<EnrollFlags>();
  enroll->add_option("--server", enroll_flags->server, "Server URL (https://host:port)")->required();
  enroll->add_option("--ca", enroll_flags->ca_file, "The server's CA certificate (PEM) to pin")
      ->check(CLI::ExistingFile);
  enroll->add_option("--ca-sha256", enroll_flags->ca_sha256,
                     "Refuse a CA whose SHA-256 fingerprint differs (as the server printed it, or hex)");
  CLI::Option* token_option = enroll->add_option("--token", enroll_flags->token, "The enrolment token");
  enroll
      ->add_option("--token-file", enroll_flags->token_file,
                   "A file holding the enrolment token (as a fleet image carries it); deleted once enrolled")
      ->excludes(token_option);
  enroll
      ->add_option("--retry-for", enroll_flags->retry_for_seconds,
                   "Seconds to keep retrying while the server is unreachable or busy (429/503), as a fleet booting "
                   "at once needs (default 0: one attempt)")
      ->check(CLI::Range(int64_t{0}, int64_t{86400}));
  enroll->add_option("--hostname", enroll_flags->hostname, "Name to enrol under (default: this host's name)");
  enroll->add_option("--state-dir", flags->state_dir, "State directory (default /var/lib/appban)");
  enroll->add_option("--config", flags->config_file, "TOML configuration file")->check(CLI::ExistingFile);
  enroll->callback([=] { *action = [=] { return RunEnroll(*flags, *enroll_flags); }; });

  CLI::App* once = agent_command->add_subcommand("once", "One cycle: enforce, check in, apply a new bundle");
  AddInventoryOptions(once, flags.get());
  AddEnforcementOptions(once, flags.get());
  once->callback([=] { *action = [=] { return RunAgentOnce(*flags); }; });

  CLI::App* run = agent_command->add_subcommand("run", "Run the agent daemon until SIGTERM");
  AddInventoryOptions(run, flags.get());
  AddEnforcementOptions(run, flags.get());
  run->callback([=] { *action = [=] { return RunAgentDaemon(*flags); }; });

  CLI::App* status = agent_command->add_subcommand("status", "Policy version, last check-in, decisions, waivers");
  AddInventoryOptions(status, flags.get());
  auto json = std::make_shared<bool>(false);
  status->add_flag("--json", *json, "Machine-readable output");
  status->callback([=] { *action = [=] { return RunAgentStatus(*flags, *json); }; });

  CLI::App* unenroll = agent_command->add_subcommand(
      "unenrol", "Leave the fleet: tell the server, remove the pins and hooks, delete the agent's state");
  unenroll->alias("unenroll");
  AddInventoryOptions(unenroll, flags.get());
  AddEnforcementOptions(unenroll, flags.get());
  auto offline = std::make_shared<bool>(false);
  unenroll->add_flag("--offline", *offline,
                     "Leave without telling the server (then retire the device there: docs/agent.md)");
  unenroll->callback([=] { *action = [=] { return RunAgentUnenroll(*flags, *offline); }; });

  CLI::App* hook = agent_command->add_subcommand(
      "apt-hook", "APT DPkg::Pre-Install-Pkgs checker: refuses .deb files of banned packages (stdin: paths)");
  auto banned_list = std::make_shared<std::string>();
  auto dpkg_deb = std::make_shared<std::string>("dpkg-deb");
  hook->add_option("banned_list", *banned_list, "The banned list the agent writes")->required();
  hook->add_option("--dpkg-deb", *dpkg_deb, "The dpkg-deb program");
  auto hook_wake_file = std::make_shared<std::string>();
  hook->add_option("--wake-file", *hook_wake_file, "Touched after a refusal, so the agent reports it at once");
  hook->callback([=] {
    *action = [=] {
      return agent::RunAptPreInstallHook(std::cin, *banned_list, std::cerr, *dpkg_deb, *hook_wake_file);
    };
  });

  CLI::App* json_hook = agent_command->add_subcommand(
      "apt-json-hook",
      "APT AptCli::Hooks::Install hook: names the rule when APT finds no candidate for a banned package");
  auto json_banned_list = std::make_shared<std::string>();
  json_hook->add_option("banned_list", *json_banned_list, "The banned list the agent writes")->required();
  auto json_wake_file = std::make_shared<std::string>();
  json_hook->add_option("--wake-file", *json_wake_file, "Touched after a refusal, so the agent reports it at once");
  json_hook->callback([=] {
    *action = [=] {
      // APT hands the hook one end of a socket pair, by number, in APT_HOOK_SOCKET.
      const char* socket_env = std::getenv("APT_HOOK_SOCKET");
      int fd = -1;
      if (socket_env != nullptr) {
        auto [end, error] = std::from_chars(socket_env, socket_env + std::strlen(socket_env), fd);
        if (error != std::errc() || *end != '\0') fd = -1;
      }
      if (fd < 0) {
        std::cerr << "appban agent apt-json-hook: APT_HOOK_SOCKET does not name a descriptor (APT runs this hook)\n";
        return 0;
      }
      return agent::RunAptJsonHook(fd, *json_banned_list, std::cerr, *json_wake_file);
    };
  });

  CLI::App* sandbox = agent_command->add_subcommand(
      "sandbox", "Prepare a scratch system root to try the agent without touching this machine (docs/agent.md)");
  auto sandbox_dir = std::make_shared<std::string>();
  auto no_demo = std::make_shared<bool>(false);
  auto no_update = std::make_shared<bool>(false);
  sandbox->add_option("dir", *sandbox_dir, "A new or empty directory to create the sandbox in")->required();
  sandbox->add_flag("--no-demo-packages", *no_demo, "Leave the sandbox's repository empty (no stand-in packages)");
  sandbox->add_flag("--no-apt-update", *no_update, "Do not run apt-get update in the sandbox");
  sandbox->callback([=] { *action = [=] { return RunSandbox(*sandbox_dir, !*no_demo, !*no_update); }; });
}

}  // namespace appban::cli
