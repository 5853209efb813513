// The fleet simulator behind `appban simulate`: N simulated devices speaking the real device
// protocol (docs/protocol.md) to a real `appban server`, for benchmarks and soak tests.
//
// Each process runs one single-threaded io_context with many AsyncConnections; `processes` > 1
// forks that many children (RLIMIT_NOFILE is capped per process), each simulating a contiguous
// slice of the device indexes, and the parent merges the JSON summary each child writes back on a
// pipe. Modes:
//   fleet   every device enrols (or is reloaded from the state file), checks in with its full
//           inventory, then keeps one long-poll open; a bundle (from a poll or a check-in answer)
//           is verified, applied (banned apps removed, `removed` events queued) and acknowledged
//           with a check-in, after which the device polls again. Periodic check-ins are sent when
//           due between polls, so each device needs exactly one connection.
//   steady  after enrolment and a first check-in, `concurrency` connections per process send
//           check-ins with unchanged inventories back to back for `duration`, round-robin over the
//           process's devices (or the identical request to POST /healthz with target = healthz).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "appban/sim/inventory.h"
#include "appban/sim/stats.h"

namespace appban::sim {

enum class SimulationMode { kFleet, kSteady };
enum class SteadyTarget { kCheckin, kHealthz };

struct SimulationOptions {
  std::string server_url;  // https://host:port or http://127.0.0.1:port
  std::string ca_file;     // PEM of the server's CA (https)
  uint64_t devices = 100;
  uint32_t processes = 1;
  std::vector<std::string> source_addresses;  // empty: the kernel chooses
  std::string admin_token;                    // mints enrolment tokens for devices not in the state file
  // Instead of minting: the one multi-use enrolment token every new device presents, as the devices
  // of a fleet image do (docs/agent.md "Enrolling many machines").
  std::string shared_enrollment_token;
  std::string state_file;  // enrolled devices are loaded from / saved to it
  uint64_t first_device_index = 0;
  SimulationMode mode = SimulationMode::kFleet;
  SteadyTarget target = SteadyTarget::kCheckin;
  uint32_t concurrency = 64;  // steady: connections per process; fleet: devices starting at once per process
  std::chrono::milliseconds duration{30'000};  // steady: measuring time; fleet: longest run (0 = no limit)
  uint32_t stop_after_bundles = 0;             // fleet: stop once every device acknowledged this many new bundles
  std::optional<int64_t> publish_at_ms;        // fleet: timeline reference (Unix ms) instead of first receipt
  InventoryOptions inventory;
  uint32_t enroll_token_batch = 1000;
  uint32_t enroll_token_ttl_seconds = 3600;
  bool quiet = false;  // no progress lines on stderr
};

// Runs the whole simulation (forking when processes > 1), saves the state file when new devices
// enrolled, and returns the merged summary of all processes.
Result<ProcessSummary> RunSimulation(const SimulationOptions& options);

// What a forked child gets from RunForked. `ready_fd` / `start_fd` (or -1): in steady mode the
// process writes "ready\n" to ready_fd once its devices are set up and waits for a byte on
// start_fd before measuring, so every process measures the same window. `report_and_wait` hands
// the summary to the parent and returns only once the parent has every child's summary: a child
// that finished early keeps its connections open meanwhile, so closing thousands of connections
// does not eat into the others' measurement (real devices do not disconnect after a bundle).
struct ChildChannel {
  int ready_fd = -1;
  int start_fd = -1;
  std::function<void(const Result<ProcessSummary>&)> report_and_wait;
};

// One process's share: devices [first, first + count) of the fleet (see ChildChannel).
Result<ProcessSummary> RunProcess(const SimulationOptions& options, uint64_t first, uint64_t count,
                                  const ChildChannel& channel);

// Forks `processes` children; child i runs `work(i)`, whose summary is written back on a pipe
// (by report_and_wait, or after `work` returns if it did not call it); the parent merges them in
// index order, then releases every child at once. A child that dies or writes garbage is an error
// naming it. A child that has not reported `report_within` after the fork (0: no limit) is taken
// for hung: every child is killed and the error names it. Used by RunSimulation; exposed so the
// aggregation can be tested alone.
using ChildWork = std::function<Result<ProcessSummary>(uint32_t child, const ChildChannel& channel)>;
Result<ProcessSummary> RunForked(uint32_t processes, bool synchronize_start, const ChildWork& work,
                                 std::chrono::milliseconds report_within = std::chrono::milliseconds{0});

// The summary as `--json` prints it (percentiles, rates; no raw per-device data), and as text.
Json ReportJson(const SimulationOptions& options, const ProcessSummary& summary);
std::string ReportText(const Json& report);

// Sets the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
Result<uint64_t> RaiseDescriptorLimit();

}  // namespace appban::sim
