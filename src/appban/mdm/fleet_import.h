// The fleet import: turns MdmDevices (any connector's inventory, mdm_device.h) into fleet-store
// devices that compliance counts exactly like agent devices. For each device:
//   - its id is MdmDeviceId(source, connector, MDM id): stable across syncs, never an agent's;
//   - its reported apps become its inventory (canonical JSON + match records), evaluated against
//     the latest bundle with the same EvaluateRuleStandings/DiffRuleStates an agent check-in uses:
//     a banned app still reported installed is violating;
//   - apps reported removed are remediation evidence (the rule's had_app is set: "remediated");
//   - the bundle version the device counts as enforcing is the connector's last successful push
//     (ImportContext::pushed_version): until appban pushed a bundle carrying a rule, the device is
//     pending on it, as an agent that has not applied it yet;
//   - a device the MDM cannot enforce on (cannot_enforce_reason, or no app reports) is stored with
//     that reason and counted cannot-enforce, never compliant;
//   - its last MDM sync is its last_seen (an MDM device that stopped syncing goes stale);
//   - incremental: a device whose reported apps are those already stored (same inventory hash) is
//     not sent its inventory again, and one whose evaluation inputs are all unchanged (apps,
//     removals, groups, cannot-enforce, pushed bundle, latest bundle: the evaluation key stored as
//     its evaluation mark) is not evaluated again — only its MDM fields and last_seen are written.
// Devices are written a batch at a time (one transaction each, like the check-in writer), and
// Finish marks every device of the connector that this import did not list as gone.
// Thread-safety: one thread at a time (it drives one FleetStore connection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/mdm/mdm_device.h"
#include "appban/store/fleet.h"
#include "appban/verify/published_bundle.h"

namespace appban::mdm {

// "m-" + 24 lowercase hex digits of SHA-256(source "\n" connector "\n" mdm_id).
std::string MdmDeviceId(MdmSource source, std::string_view connector, std::string_view mdm_id);

struct ImportContext {
  const verify::PublishedBundle* latest = nullptr;  // required; version 0: nothing published yet
  int64_t pushed_version = 0;                       // last bundle the connector applied without failure
  UnixSeconds now = 0;
  size_t batch_size = 1000;  // devices per transaction
  bool incremental = true;   // false: rewrite every device's inventory and rule states (the benchmark's peer)
};

struct ImportStats {
  int64_t devices = 0;
  int64_t violating = 0;       // devices with a banned app still reported installed
  int64_t cannot_enforce = 0;  // devices stored with a cannot-enforce reason
  int64_t refused = 0;         // devices the store refused (a limit); named in the log
  int64_t gone = 0;            // devices of the connector newly marked gone by Finish
  int64_t unchanged = 0;       // devices whose inventory and evaluation were already stored as they are
  std::string first_refusal;
};

class FleetImport {
 public:
  FleetImport(store::FleetStore& fleet, std::string connector, ImportContext context);

  // Evaluates the devices and writes them, a batch per transaction. Devices of another connector
  // are refused (kInvalidArgument).
  Status Add(std::vector<MdmDevice> devices);
  // Writes what is buffered and, when `complete` (the whole inventory was listed), marks the
  // connector's devices this import did not see as gone.
  Result<ImportStats> Finish(bool complete);

 private:
  Status Flush();
  Result<store::MdmDeviceWrite> Evaluate(MdmDevice device);

  store::FleetStore& fleet_;
  std::string connector_;
  ImportContext context_;
  UnixSeconds started_ = 0;
  std::vector<store::MdmDeviceWrite> pending_;
  ImportStats stats_;
};

}  // namespace appban::mdm
