// Group commit for device reports. Check-ins that carry something durable (events, a new
// inventory, a newly applied bundle, changed compliance states) are queued here; a writer thread
// with its own database connection commits whatever accumulated while the previous commit was
// being synced, in one transaction, then hands each outcome back to the worker's io_context. A
// device is answered only after its write committed: an acknowledged event survives kill -9. One
// fsync then covers hundreds of devices instead of one (docs/benchmarks.md measures the disk).
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "appban/store/fleet.h"

namespace appban::server {

class CheckinWriter {
 public:
  using Done = std::function<void(store::CheckinOutcome)>;

  // `fleet` is used only by the writer thread from now on.
  CheckinWriter(boost::asio::io_context& io, std::unique_ptr<store::FleetStore> fleet);
  ~CheckinWriter();  // commits what is queued, then joins
  CheckinWriter(const CheckinWriter&) = delete;
  CheckinWriter& operator=(const CheckinWriter&) = delete;

  // Called on the io_context thread; `done` runs there after the commit (or its failure).
  void Submit(store::CheckinWrite write, Done done);
  // Waits until everything submitted so far is committed (shutdown).
  void Flush();
  size_t queued() const;

 private:
  struct Item {
    store::CheckinWrite write;
    Done done;
  };
  void Run();

  boost::asio::io_context& io_;
  std::unique_ptr<store::FleetStore> fleet_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::vector<Item> queue_;
  bool writing_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace appban::server
