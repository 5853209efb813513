// appban simulate: the fleet simulator (sim/fleet.h) for benchmarks and soak tests.
#include <chrono>
#include <iostream>
#include <memory>

#include "appban/cli/commands.h"
#include "appban/net/async_client.h"
#include "appban/sim/fleet.h"
#include "appban/sim/inventory.h"

namespace appban::cli {
namespace {

struct SimulateFlags {
  sim::SimulationOptions options;
  std::string mode = "fleet";
  std::string target = "checkin";
  std::string source_addresses;
  std::string banned = "deb:wechat,deb:kesl";
  double duration_seconds = 0;
  double publish_at = 0;  // Unix seconds (may be fractional)
  bool json = false;
};

int RunSimulate(SimulateFlags& flags) {
  sim::SimulationOptions& o = flags.options;
  auto fail = [](const Status& status) {
    std::cerr << "appban simulate: " << status.ToString() << "\n";
    return 1;
  };
  if (flags.mode == "fleet") {
    o.mode = sim::SimulationMode::kFleet;
  } else if (flags.mode == "steady") {
    o.mode = sim::SimulationMode::kSteady;
  } else {
    return fail(Status::InvalidArgument("--mode must be fleet or steady"));
  }
  if (flags.target == "checkin") {
    o.target = sim::SteadyTarget::kCheckin;
  } else if (flags.target == "healthz") {
    o.target = sim::SteadyTarget::kHealthz;
  } else {
    return fail(Status::InvalidArgument("--target must be checkin or healthz"));
  }
  auto sources = net::ParseSourceAddresses(flags.source_addresses);
  if (!sources.ok()) return fail(sources.status());
  o.source_addresses = std::move(*sources);
  auto banned = sim::ParseAppList(flags.banned);
  if (!banned.ok()) return fail(banned.status());
  o.inventory.banned = std::move(*banned);
  if (flags.duration_seconds > 0) {
    o.duration = std::chrono::milliseconds(static_cast<int64_t>(flags.duration_seconds * 1000));
  } else if (o.mode == sim::SimulationMode::kFleet) {
    o.duration = std::chrono::milliseconds(0);
  }
  if (flags.publish_at > 0) o.publish_at_ms = static_cast<int64_t>(flags.publish_at * 1000);
  o.quiet = flags.json;

  auto summary = sim::RunSimulation(o);
  if (!summary.ok()) return fail(summary.status());
  Json report = sim::ReportJson(o, *summary);
  if (flags.json) {
    std::cout << report.dump(2) << "\n";
  } else {
    std::cout << sim::ReportText(report);
  }
  return summary->errors.count("device_gave_up") ? 3 : 0;
}

}  // namespace

void AddSimulateCommand(CLI::App& app, CommandAction* action) {
  auto flags = std::make_shared<SimulateFlags>();
  sim::SimulationOptions& o = flags->options;
  CLI::App* cmd = app.add_subcommand(
      "simulate",
      "Simulate a fleet of devices against an appban server, to try a policy or measure the server before a "
      "roll-out.\n"
      "fleet mode: every device enrols, checks in with an inventory, keeps a long-poll open and applies new bundles;\n"
      "  the summary tells how long the fleet took to receive and acknowledge a publish.\n"
      "steady mode: check-ins per second and their latency at a fixed concurrency.\n"
      "Devices verify every bundle like real agents (docs/benchmarks.md shows the commands behind each number).");
  cmd->add_option("--server", o.server_url, "Server URL: https://host:port (with --ca) or http://127.0.0.1:port")
      ->required();
  cmd->add_option("--ca", o.ca_file, "PEM file of the server's CA certificate (required for https)");
  cmd->add_option("--devices", o.devices, "Number of simulated devices")->capture_default_str();
  cmd->add_option("--processes", o.processes,
                  "Processes to fork; each simulates devices/processes devices (one process holds < 20,000 sockets)")
      ->capture_default_str();
  cmd->add_option("--source-addresses", flags->source_addresses,
                  "Local addresses to bind connections to, e.g. 127.0.0.2-127.0.0.20 (ranges and commas)");
  cmd->add_option("--admin-token", o.admin_token,
                  "Admin API token, to mint enrolment tokens for devices not in --state");
  cmd->add_option("--enrollment-token", o.shared_enrollment_token,
                  "One multi-use enrolment token that every device not in --state presents, as the machines of a "
                  "fleet image do (instead of --admin-token)");
  cmd->add_option("--state", o.state_file,
                  "File of enrolled devices (ids, credentials; mode 0600): loaded if present, new enrolments added");
  cmd->add_option("--first-device", o.first_device_index, "Index of the first simulated device (inventory seed)")
      ->capture_default_str();
  cmd->add_option("--mode", flags->mode,
                  "One of fleet (enrol, check in, long-poll, apply bundles) or steady (check-in rate)")
      ->capture_default_str();
  cmd->add_option("--target", flags->target,
                  "In steady mode: checkin (POST /v1/checkin) or healthz (the same request to POST /healthz)")
      ->capture_default_str();
  cmd->add_option(
         "--concurrency", o.concurrency,
         "In steady mode: connections in flight per process; fleet: devices starting (enrol + first check-in) at once "
         "per process")
      ->capture_default_str();
  cmd->add_option(
      "--duration", flags->duration_seconds,
      "Seconds: steady mode measures this long (default 30); fleet mode stops after it (default: no limit)");
  cmd->add_option("--stop-after-bundles", o.stop_after_bundles,
                  "In fleet mode: exit once every device has applied and acknowledged this many new bundles (0: never)")
      ->capture_default_str();
  cmd->add_option(
      "--publish-at", flags->publish_at,
      "In fleet mode: Unix time (seconds, fractional allowed) the bundle was published; timelines count from it "
      "instead of from the first device receiving the bundle");
  cmd->add_option("--seed", o.inventory.seed, "Inventory seed")->capture_default_str();
  cmd->add_option("--banned", flags->banned, "Banned apps some devices hold (platform:id, comma separated)")
      ->capture_default_str();
  cmd->add_option("--banned-fraction", o.inventory.banned_fraction, "Share of devices holding 1-2 banned apps")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--json", flags->json, "Print the summary as JSON (and no progress lines)");
  cmd->callback([action, flags] { *action = [flags] { return RunSimulate(*flags); }; });
}

}  // namespace appban::cli
