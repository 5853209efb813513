// appban agent: the Linux endpoint agent (docs/agent.md).
//   enroll    present an enrolment token, pin the server's CA and the policy keys
//   once      one full cycle (cron, tests)
//   run       the daemon (long-poll, periodic check-ins, change watcher); SIGTERM stops it
//   status    policy version, last check-in, pending events, decisions, waivers
//   apt-hook  APT's DPkg::Pre-Install-Pkgs checker
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stop_token>
#include <thread>

#include "appban/agent/agent_client.h"
#include "appban/agent/daemon.h"
#include "appban/agent/enforce.h"
#include "appban/cli/commands.h"
#include "appban/common/file.h"

namespace appban::cli {
namespace {

using agent::DaemonConfig;

constexpr uint64_t kMaxConfigBytes = 1u << 20;

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

std::string Where(const std::string& file, const toml::node& node, std::string_view key) {
  return file + ":" + std::to_string(node.source().begin.line) + ": " + std::string(key);
}

Result<std::string> TomlString(const toml::node& node, const std::string& where) {
  if (auto value = node.value<std::string>()) return *value;
  return Status::InvalidArgument(where + ": expected a string");
}
Result<int64_t> TomlInt(const toml::node& node, const std::string& where, int64_t min, int64_t max) {
  auto value = node.value<int64_t>();
  if (!value || !node.is_integer()) return Status::InvalidArgument(where + ": expected an integer");
  if (*value < min || *value > max) {
    return Status::InvalidArgument(where + ": " + std::to_string(*value) + " is outside " + std::to_string(min) + "–" +
                                   std::to_string(max));
  }
  return *value;
}
Result<std::vector<std::string>> TomlStrings(const toml::node& node, const std::string& where) {
  const toml::array* array = node.as_array();
  if (array == nullptr) return Status::InvalidArgument(where + ": expected an array of strings");
  std::vector<std::string> out;
  for (const auto& item : *array) {
    auto text = item.value<std::string>();
    if (!text) return Status::InvalidArgument(where + ": expected an array of strings");
    out.push_back(*text);
  }
  return out;
}

// The TOML configuration (docs/agent.md): every key known, types and ranges checked, an unknown
// key named with its line.
Status ApplyConfigFile(const std::string& path, DaemonConfig& config) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxConfigBytes));
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& error) {
    return Status::InvalidArgument(path + ":" + std::to_string(error.source().begin.line) + ": " +
                                   std::string(error.description()));
  }
  agent::EnforcementConfig& enforcement = config.enforcement;
  agent::SystemPaths& paths = enforcement.paths;
  bool flatpak_set = false;
  for (const auto& [key, node] : root) {
    std::string where = Where(path, node, key.str());
    std::string_view name = key.str();
    if (name == "state_dir") {
      APPBAN_ASSIGN_OR_RETURN(config.state_dir, TomlString(node, where));
    } else if (name == "monitor") {
      auto value = node.value<bool>();
      if (!value) return Status::InvalidArgument(where + ": expected true or false");
      enforcement.monitor = *value;
    } else if (name == "purge") {
      auto value = node.value<bool>();
      if (!value) return Status::InvalidArgument(where + ": expected true or false");
      enforcement.purge = *value;
    } else if (name == "paths" || name == "tools" || name == "timing") {
      const toml::table* table = node.as_table();
      if (table == nullptr) return Status::InvalidArgument(where + ": expected a table");
      for (const auto& [sub_key, sub] : *table) {
        std::string sub_where = Where(path, sub, std::string(name) + "." + std::string(sub_key.str()));
        std::string_view sub_name = sub_key.str();
        if (name == "paths") {
          if (sub_name == "root") {
            APPBAN_ASSIGN_OR_RETURN(std::string root_dir, TomlString(sub, sub_where));
            // A root moves every default with it; explicit keys below still win.
            agent::SystemPaths moved = agent::SystemPaths::UnderRoot(root_dir);
            paths.root = moved.root;
            if (paths.dpkg_admindir == agent::SystemPaths{}.dpkg_admindir) paths.dpkg_admindir = moved.dpkg_admindir;
            if (!flatpak_set) paths.flatpak_installations = moved.flatpak_installations;
            if (paths.snapd_state == agent::SystemPaths{}.snapd_state) paths.snapd_state = moved.snapd_state;
            if (paths.snap_mount_dir == agent::SystemPaths{}.snap_mount_dir)
              paths.snap_mount_dir = moved.snap_mount_dir;
          } else if (sub_name == "dpkg_admindir") {
            APPBAN_ASSIGN_OR_RETURN(paths.dpkg_admindir, TomlString(sub, sub_where));
          } else if (sub_name == "flatpak_system" || sub_name == "flatpak_user") {
            APPBAN_ASSIGN_OR_RETURN(auto dirs, TomlStrings(sub, sub_where));
            if (!flatpak_set) paths.flatpak_installations.clear();
            flatpak_set = true;
            for (auto& dir : dirs) paths.flatpak_installations.push_back({dir, sub_name == "flatpak_user"});
          } else if (sub_name == "snapd_state") {
            APPBAN_ASSIGN_OR_RETURN(paths.snapd_state, TomlString(sub, sub_where));
          } else if (sub_name == "snap_mount_dir") {
            APPBAN_ASSIGN_OR_RETURN(paths.snap_mount_dir, TomlString(sub, sub_where));
          } else if (sub_name == "banned_list") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.banned_list_path, TomlString(sub, sub_where));
          } else if (sub_name == "wake_file") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.wake_file, TomlString(sub, sub_where));
          } else {
            return Status::InvalidArgument(sub_where + ": unknown key");
          }
        } else if (name == "tools") {
          if (sub_name == "apt_get") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.apt_get, TomlString(sub, sub_where));
          } else if (sub_name == "dpkg") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.dpkg, TomlString(sub, sub_where));
          } else if (sub_name == "dpkg_deb") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.dpkg_deb, TomlString(sub, sub_where));
          } else if (sub_name == "flatpak") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.flatpak, TomlString(sub, sub_where));
          } else if (sub_name == "snap") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.snap_command, TomlStrings(sub, sub_where));
            if (enforcement.snap_command.empty()) return Status::InvalidArgument(sub_where + ": must not be empty");
          } else if (sub_name == "apt_env") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.apt_env, TomlStrings(sub, sub_where));
          } else if (sub_name == "apt_options") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.apt_options, TomlStrings(sub, sub_where));
          } else if (sub_name == "dpkg_options") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.dpkg_options, TomlStrings(sub, sub_where));
          } else if (sub_name == "apt_hook_command") {
            APPBAN_ASSIGN_OR_RETURN(enforcement.apt_hook_command, TomlString(sub, sub_where));
          } else {
            return Status::InvalidArgument(sub_where + ": unknown key");
          }
        } else {  // timing
          if (sub_name == "backoff_initial_ms") {
            APPBAN_ASSIGN_OR_RETURN(int64_t value, TomlInt(sub, sub_where, 10, 3'600'000));
            config.backoff_initial = std::chrono::milliseconds(value);
          } else if (sub_name == "backoff_max_ms") {
            APPBAN_ASSIGN_OR_RETURN(int64_t value, TomlInt(sub, sub_where, 10, 86'400'000));
            config.backoff_max = std::chrono::milliseconds(value);
          } else if (sub_name == "checkin_interval_seconds") {
            APPBAN_ASSIGN_OR_RETURN(int64_t value, TomlInt(sub, sub_where, 1, 604'800));
            config.checkin_interval_override = std::chrono::seconds(value);
          } else if (sub_name == "request_timeout_ms") {
            APPBAN_ASSIGN_OR_RETURN(int64_t value, TomlInt(sub, sub_where, 100, 600'000));
            config.timeouts.request = std::chrono::milliseconds(value);
          } else if (sub_name == "full_cycle_seconds") {
            APPBAN_ASSIGN_OR_RETURN(int64_t value, TomlInt(sub, sub_where, 1, 86'400));
            config.full_cycle_interval = std::chrono::seconds(value);
          } else {
            return Status::InvalidArgument(sub_where + ": unknown key");
          }
        }
      }
    } else {
      return Status::InvalidArgument(where + ": unknown key");
    }
  }
  return Status::Ok();
}

Result<DaemonConfig> BuildConfig(const AgentFlags& flags) {
  DaemonConfig config;
  if (!flags.config_file.empty()) APPBAN_RETURN_IF_ERROR(ApplyConfigFile(flags.config_file, config));
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

void AddSystemOptions(CLI::App* command, AgentFlags* flags) {
  command->add_option("--config", flags->config_file, "TOML configuration file (docs/agent.md)")
      ->check(CLI::ExistingFile);
  command->add_option("--state-dir", flags->state_dir, "state directory (default /var/lib/appban)");
  command->add_option("--root", flags->root, "system root the package tools act on (default /)");
  command->add_option("--dpkg-admindir", flags->dpkg_admindir, "dpkg database directory (default <root>/var/lib/dpkg)");
  command->add_option("--flatpak-system", flags->flatpak_system, "a system Flatpak installation (repeatable)");
  command->add_option("--flatpak-user", flags->flatpak_user, "a per-user Flatpak installation (repeatable)");
  command->add_option("--snapd-state", flags->snapd_state, "snapd's state.json");
  command->add_option("--snap-mount-dir", flags->snap_mount_dir, "where snaps are mounted (default <root>/snap)");
  command->add_option("--apt-get", flags->apt_get, "the apt-get program");
  command->add_option("--dpkg", flags->dpkg, "the dpkg program");
  command->add_option("--dpkg-deb", flags->dpkg_deb, "the dpkg-deb program");
  command->add_option("--flatpak", flags->flatpak, "the flatpak program");
  command->add_option("--snap", flags->snap_command, "the snap client command (argv words)");
  command->add_option("--apt-env", flags->apt_env, "NAME=value for every apt-get run (repeatable)");
  command->add_option("--apt-option", flags->apt_options, "-o option for every apt-get run (repeatable)");
  command->add_option("--dpkg-option", flags->dpkg_options, "extra dpkg option for the fallback path (repeatable)");
  command->add_option("--apt-hook-command", flags->apt_hook_command, "the shell command APT runs as pre-install hook");
  command->add_option("--banned-list", flags->banned_list, "the list the APT hook reads");
  command->add_option("--wake-file", flags->wake_file, "the file dpkg/APT post-invoke hooks touch");
  command->add_flag("--monitor", flags->monitor, "plan and report what would be done; never act");
  command->add_flag("--no-purge", flags->no_purge, "remove packages but keep their configuration files");
  command->add_option("--backoff-initial-ms", flags->backoff_initial_ms, "first retry wait after a failure");
  command->add_option("--backoff-max-ms", flags->backoff_max_ms, "longest retry wait (default 300000)");
  command->add_option("--checkin-interval", flags->checkin_interval_seconds,
                      "seconds between check-ins (default: the server's)");
  command->add_option("--request-timeout-ms", flags->request_timeout_ms, "timeout of one check-in");
  command->add_option("--full-cycle-seconds", flags->full_cycle_seconds, "local re-enforcement at least this often");
}

agent::LogFn StderrLog() {
  return [](std::string_view line) { std::cerr << "appban agent: " << line << "\n" << std::flush; };
}

int RunEnroll(const AgentFlags& flags, const std::string& server, const std::string& ca_file,
              const std::string& ca_sha256, const std::string& token, const std::string& hostname) {
  auto config = BuildConfig(flags);
  if (!config.ok()) {
    std::cerr << "appban agent enroll: " << config.status().message() << "\n";
    return 2;
  }
  agent::EnrollOptions options;
  options.server_url = server;
  options.token = token;
  options.hostname = hostname;
  options.expected_ca_sha256 = ca_sha256;
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

void PrintStatus(const policy::Json& report, std::ostream& out) {
  out << "device:          " << report.value("device_id", "") << " (" << report.value("server", "") << ")\n";
  out << "mode:            " << (report.value("monitor", false) ? "monitor (reports, never acts)" : "enforcing")
      << "\n";
  out << "policy version:  " << report.value("policy_version", 0);
  if (report.contains("bundle_expires_at")) {
    out << " (rules " << report.value("rules_hash", "").substr(0, 12) << ", expires "
        << policy::FormatTimestamp(report.value("bundle_expires_at", int64_t{0}))
        << (report.value("bundle_expired", false) ? ", EXPIRED" : "") << ")";
  }
  out << "\n";
  if (report.contains("cached_bundle_refused"))
    out << "cached bundle:   refused: " << report.value("cached_bundle_refused", "") << "\n";
  const auto& checkin = report["last_checkin"];
  int64_t attempt = checkin.value("attempt_at", int64_t{0});
  int64_t ok_at = checkin.value("ok_at", int64_t{0});
  out << "last check-in:   " << (attempt > 0 ? policy::FormatTimestamp(attempt) : "never") << ": "
      << checkin.value("result", "") << "\n";
  out << "last success:    " << (ok_at > 0 ? policy::FormatTimestamp(ok_at) : "never") << "\n";
  out << "pending events:  " << report.value("pending_events", 0) << " (acknowledged up to seq "
      << report.value("events_acked", 0) << ")\n";
  out << "decisions:\n";
  if (report["decisions"].empty()) out << "  (no installed app is named by a rule)\n";
  for (const auto& item : report["decisions"]) {
    out << "  " << item.value("platform", "") << ":" << item.value("id", "") << " " << item.value("version", "") << "  "
        << item.value("verdict", "") << " -> " << item.value("action", "") << "  rule " << item.value("rule", "");
    if (item.contains("waived_until"))
      out << " until " << policy::FormatTimestamp(item.value("waived_until", int64_t{0}));
    out << "\n";
  }
  out << "waivers:\n";
  if (report["waivers"].empty()) out << "  (none for this device)\n";
  for (const auto& item : report["waivers"]) {
    out << "  " << item.value("id", "") << " on rule " << item.value("rule", "") << " until "
        << policy::FormatTimestamp(item.value("expires_at", int64_t{0}))
        << (item.value("active", false) ? "" : " (expired)") << "\n";
  }
}

int RunAgentStatus(const AgentFlags& flags, bool json) {
  auto config = BuildConfig(flags);
  if (!config.ok()) {
    std::cerr << "appban agent status: " << config.status().message() << "\n";
    return 2;
  }
  policy::Json report;
  auto agent_state = agent::Agent::Open(*config, agent::Agent::Mode::kInspect);
  if (agent_state.ok()) {
    // Nobody else holds the state: evaluate the installed apps now (nothing is acted on: monitor).
    auto previous = ReadFileToString(config->state_dir + "/status.json", 16u << 20);
    report = agent_state->Report(static_cast<policy::UnixSeconds>(std::time(nullptr)));
    if (previous.ok()) {
      policy::Json saved = policy::Json::parse(*previous, nullptr, false);
      // The last run's check-in outcome and decisions are only known from its status file.
      if (saved.is_object()) {
        if (saved.contains("last_checkin")) report["last_checkin"] = saved["last_checkin"];
        if (saved.contains("decisions")) report["decisions"] = saved["decisions"];
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
    report = policy::Json::parse(*saved, nullptr, false);
    if (!report.is_object()) {
      std::cerr << "appban agent status: status.json is not JSON\n";
      return 1;
    }
  } else {
    std::cerr << "appban agent status: " << agent_state.status().ToString() << "\n";
    return 1;
  }
  if (json) {
    std::cout << report.dump(2) << "\n";
  } else {
    PrintStatus(report, std::cout);
  }
  return 0;
}

}  // namespace

void AddAgentCommand(CLI::App& app, CommandAction* action) {
  CLI::App* agent_command = app.add_subcommand("agent", "the Linux endpoint agent: enrol, enforce, report");
  agent_command->require_subcommand(1);
  auto flags = std::make_shared<AgentFlags>();

  CLI::App* enroll = agent_command->add_subcommand("enroll", "enrol this device with an appban server");
  auto server = std::make_shared<std::string>();
  auto ca_file = std::make_shared<std::string>();
  auto ca_sha256 = std::make_shared<std::string>();
  auto token = std::make_shared<std::string>();
  auto hostname = std::make_shared<std::string>();
  enroll->add_option("--server", *server, "server URL (https://host:port)")->required();
  enroll->add_option("--ca", *ca_file, "the server's CA certificate (PEM) to pin")->check(CLI::ExistingFile);
  enroll->add_option("--ca-sha256", *ca_sha256, "refuse a CA whose SHA-256 fingerprint differs");
  enroll->add_option("--token", *token, "the single-use enrolment token")->required();
  enroll->add_option("--hostname", *hostname, "name to enrol under (default: this host's name)");
  enroll->add_option("--state-dir", flags->state_dir, "state directory (default /var/lib/appban)");
  enroll->add_option("--config", flags->config_file, "TOML configuration file")->check(CLI::ExistingFile);
  enroll->callback(
      [=] { *action = [=] { return RunEnroll(*flags, *server, *ca_file, *ca_sha256, *token, *hostname); }; });

  CLI::App* once = agent_command->add_subcommand("once", "one cycle: enforce, check in, apply a new bundle");
  AddSystemOptions(once, flags.get());
  once->callback([=] { *action = [=] { return RunAgentOnce(*flags); }; });

  CLI::App* run = agent_command->add_subcommand("run", "run the agent daemon until SIGTERM");
  AddSystemOptions(run, flags.get());
  run->callback([=] { *action = [=] { return RunAgentDaemon(*flags); }; });

  CLI::App* status = agent_command->add_subcommand("status", "policy version, last check-in, decisions, waivers");
  AddSystemOptions(status, flags.get());
  auto json = std::make_shared<bool>(false);
  status->add_flag("--json", *json, "machine-readable output");
  status->callback([=] { *action = [=] { return RunAgentStatus(*flags, *json); }; });

  CLI::App* hook = agent_command->add_subcommand(
      "apt-hook", "APT DPkg::Pre-Install-Pkgs checker: refuses .deb files of banned packages (stdin: paths)");
  auto banned_list = std::make_shared<std::string>();
  auto dpkg_deb = std::make_shared<std::string>("dpkg-deb");
  hook->add_option("banned_list", *banned_list, "the banned list the agent writes")->required();
  hook->add_option("--dpkg-deb", *dpkg_deb, "the dpkg-deb program");
  hook->callback(
      [=] { *action = [=] { return agent::RunAptPreInstallHook(std::cin, *banned_list, std::cerr, *dpkg_deb); }; });
}

}  // namespace appban::cli
