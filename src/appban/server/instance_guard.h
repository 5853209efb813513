// One server per data directory and per port.
//
// Two servers on one data directory would both believe they own its database, keys and device
// generations; two servers on one port (SO_REUSEPORT lets a second process join the workers'
// listening group with no error) would split the fleet's connections between two databases, and
// devices would see the other server's certificate half the time. The supervisor therefore takes
// an exclusive lock on its data directory and checks that nobody listens on its port before it
// binds its own SO_REUSEPORT group (whose sockets then keep later servers out, see CheckPortFree).
#pragma once

#include <cstdint>
#include <string>

#include "appban/common/status.h"

namespace appban::server {

// An exclusive flock(2) on `<data_dir>/server.lock`, which also records the holder's pid for the
// error a second server prints. Held until destroyed; workers forked by the holder share it, so the
// lock stays held while any of them runs.
class DataDirLock {
 public:
  static Result<DataDirLock> Acquire(const std::string& data_dir);
  DataDirLock(DataDirLock&& other) noexcept;
  DataDirLock& operator=(DataDirLock&& other) noexcept;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// FailedPrecondition when another process listens on `address`:`port` (or on the wildcard address
// of that port). Binds a probe socket without SO_REUSEPORT — which conflicts with any listener,
// a SO_REUSEPORT group included — and closes it at once, after waiting up to 5 s for a port held
// by a server that is exiting. Port 0 is always free.
Status CheckPortFree(const std::string& address, uint16_t port);

}  // namespace appban::server
