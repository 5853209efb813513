// The MDM sync loop: inside `appban server`, one thread per configured MDM connector (any kind,
// through mdm::MdmConnector) that, on every publish and every [mdm.sync] interval_seconds,
//   1. Apply: pushes the latest bundle into the MDM's own enforcement, auditing every push
//      ("mdm.amapi.apply" on "amapi:enterprises/E/policies/P", with the bundle version);
//   2. Inventory + import: pages the MDM's devices into the fleet store (mdm/fleet_import.h), so
//      /v1/admin/compliance counts the phones next to agent devices.
// A run that fails (the MDM is down, a policy refused) is retried with exponential back-off
// (from 5 s up to max_backoff_seconds). Each connector's outcome is written to the fleet store's
// settings ("mdm.status.<name>", MdmSyncStatus JSON), where GET /v1/admin/mdm, GET /metrics and
// `appban mdm status` read it: the request workers never talk to an MDM.
//
// Where it runs: the supervisor forks one "mdm sync" child process beside the request workers and
// restarts it like one. Not threads in the supervisor itself: the supervisor forks (and re-forks)
// workers, and forking a process whose other threads may hold a lock (the logger's, OpenSSL's)
// can leave the child deadlocked. A slow or down MDM thus shares nothing with the device
// protocol but the database, which it writes a page of devices per transaction.
//
// Thread-safety: MdmSync is driven by one thread (Start, Wake, Stop); its connector threads each
// own their connector and their own database connections.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/mutex.h"
#include "appban/common/status.h"
#include "appban/common/thread_annotations.h"
#include "appban/common/time.h"
#include "appban/mdm/connector.h"
#include "appban/store/fleet.h"
#include "appban/store/open.h"

namespace appban::server {

struct ServerConfig;

// What one connector's last run did; stored as JSON under MdmStatusKey(name).
struct MdmSyncStatus {
  std::string connector;
  std::string source;  // "amapi", ...
  std::string state;   // "ok", "error", "waiting" (nothing published yet), "starting"
  std::string error;   // of the last failed run
  UnixSeconds last_run_at = 0;
  UnixSeconds last_success_at = 0;
  int64_t consecutive_failures = 0;
  int64_t runs = 0;
  int64_t bundle_version = 0;  // the bundle the last run worked from
  int64_t pushed_version = 0;  // the last bundle applied without failure
  UnixSeconds pushed_at = 0;   // when that apply ran
  int64_t pushes = 0;          // MDM objects changed (or failed) by the last run, all audited
  int64_t devices = 0;         // imported by the last run
  int64_t violating = 0;
  int64_t cannot_enforce = 0;
  int64_t gone = 0;
  int64_t duration_ms = 0;
  UnixSeconds next_run_at = 0;

  Json ToJson() const;
  static Result<MdmSyncStatus> FromJson(const Json& json);
};

std::string MdmStatusKey(std::string_view connector);
// Every configured connector's stored status (state "starting" for one that never ran).
Result<std::vector<MdmSyncStatus>> ReadMdmStatuses(store::FleetStore& fleet, const ServerConfig& config);

struct MdmSyncOptions {
  store::DatabaseTarget database;  // the server's database (store/open.h)
  std::string key_dir;             // DATA_DIR/keys: bundles are verified as the workers verify them
  std::chrono::seconds interval{300};
  std::chrono::milliseconds first_backoff{5000};
  std::chrono::seconds max_backoff{600};
  std::chrono::milliseconds publish_poll{500};  // how often the newest bundle version is looked up
  std::function<UnixSeconds()> now;             // default: the system clock
};

class MdmSync {
 public:
  MdmSync(MdmSyncOptions options, std::vector<std::unique_ptr<mdm::MdmConnector>> connectors);
  ~MdmSync();  // Stop()
  MdmSync(const MdmSync&) = delete;
  MdmSync& operator=(const MdmSync&) = delete;

  void Start();
  // Runs every connector at once (as a publish does).
  void Wake() EXCLUDES(mutex_);
  // Asks every thread to stop after its current step and joins them. A run in progress finishes
  // the request it is in (bounded by the HTTP timeouts and request_attempts).
  void Stop() EXCLUDES(mutex_);

 private:
  class Runner;
  void RunConnector(size_t index);
  bool WaitUntil(std::chrono::steady_clock::time_point deadline, uint64_t seen_wakes) EXCLUDES(mutex_);

  MdmSyncOptions options_;
  std::vector<std::unique_ptr<mdm::MdmConnector>> connectors_;
  std::vector<std::thread> threads_;
  Mutex mutex_;
  CondVar wake_;
  bool stopping_ GUARDED_BY(mutex_) = false;
  uint64_t wakes_ GUARDED_BY(mutex_) = 0;
};

// The "mdm sync" child process: builds the connectors from config.mdm, runs MdmSync until SIGTERM
// or SIGINT, then stops it. Returns the process exit status.
int RunMdmSyncProcess(const ServerConfig& config);

}  // namespace appban::server
