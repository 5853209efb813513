// Waking the agent when the installed software changes, so a `dpkg -i`, a flatpak install or a
// snap install that bypasses APT is undone within a second instead of at the next check-in.
// inotify watches:
//   <admindir>             "status" written or renamed into place (every dpkg run ends so);
//   the wake file's dir    the dpkg/APT post-invoke hooks touch the wake file;
//   <snap mount dir>       a new /snap/<name> directory;
//   each Flatpak installation and its app/ dir   flatpak touches <installation>/.changed.
// Directories that do not exist are skipped (a system without snapd). Not thread-safe: one
// watcher per thread.
#pragma once

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>
#include <vector>

#include "appban/agent/enforce.h"
#include "appban/agent/inventory.h"
#include "appban/common/status.h"

namespace appban::agent {

class ChangeWatcher {
 public:
  static Result<ChangeWatcher> Open(const SystemPaths& paths, const std::string& wake_file);
  ChangeWatcher(ChangeWatcher&&) noexcept;
  ChangeWatcher& operator=(ChangeWatcher&&) noexcept;
  ChangeWatcher(const ChangeWatcher&) = delete;
  ChangeWatcher& operator=(const ChangeWatcher&) = delete;
  ~ChangeWatcher();

  // Waits up to `timeout` for a change; true when one was seen. Events arriving within `settle`
  // after the first are folded into it (a dpkg run writes the database several times).
  Result<bool> Wait(std::chrono::milliseconds timeout,
                    std::chrono::milliseconds settle = std::chrono::milliseconds(50));

 private:
  ChangeWatcher() = default;
  int fd_ = -1;
  std::vector<std::pair<int, std::string>> watches_;  // descriptor, the file name that matters ("" any)
};

// What the caller decides for an inventory (evaluates the cached verified bundle).
using DecideFn = std::function<std::vector<policy::AppDecision>(const LocalInventory&)>;
// Where events go (the state queue). A failure stops the loop: events must not be lost.
using RecordFn = std::function<Status(std::vector<protocol::DeviceEvent>)>;

// One enforcement cycle: inventory, decide, plan, execute, collect the APT hook's refusals, record.
Status EnforceOnce(const SystemPaths& paths, Enforcer& enforcer, const DecideFn& decide, const RecordFn& record,
                   UnixSeconds now);

// Runs EnforceOnce at start, on every change the watcher sees, and at least every `interval`,
// until `stop` is requested (checked at least every 200 ms).
Status WatchAndEnforce(ChangeWatcher& watcher, const SystemPaths& paths, Enforcer& enforcer, const DecideFn& decide,
                       const RecordFn& record, std::stop_token stop,
                       std::chrono::milliseconds interval = std::chrono::minutes(5));

}  // namespace appban::agent
