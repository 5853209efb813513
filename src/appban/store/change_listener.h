// What other server nodes changed, heard the moment it commits, on PostgreSQL: one connection that
// LISTENs on kBundleChannel, kDeviceChannel and kDeviceChangeChannel (postgres_store.h), on a thread of its own, so a
// slow or unreachable database never blocks the thread that serves devices.
//
// A notification is a hint, never the truth (the tables are): PostgreSQL keeps none for a listener
// that is not connected, so after every (re)connection the listener says so (`on_connected`), and
// the node then treats everything it holds as possibly stale: it looks for a newer bundle and
// drops its cached devices. The node also keeps a slow periodic look of its own for bundles
// (docs/postgresql.md "Several nodes").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "appban/common/status.h"

namespace appban::store {

class ChangeListener {
 public:
  struct Options {
    std::string url;
    std::optional<std::string> password;
    // Waits between attempts to connect again after a loss: doubling from the first to the last.
    std::chrono::milliseconds first_retry{250};
    std::chrono::milliseconds longest_retry{5000};
  };
  // Every callback runs on the listener's thread and must be quick (hand the work to the caller's
  // own loop, or touch only thread-safe state).
  struct Callbacks {
    // A node published bundle `version`.
    std::function<void(int64_t version)> on_bundle;
    // A node changed the device behind the caches: revoked it (`revoked`), or stored a check-in
    // that changed more than its last-seen time.
    std::function<void(const std::string& device_id, bool revoked)> on_device;
    // Listening (again): anything may have changed while not listening.
    std::function<void()> on_connected;
    // The connection was lost or could not be opened; the listener retries.
    std::function<void(const Status& why)> on_lost;
  };

  // Starts listening in the background; the first connection is made by the listener's thread.
  static Result<std::unique_ptr<ChangeListener>> Start(Options options, Callbacks callbacks);
  ~ChangeListener();  // stops and joins the thread (woken at once, whatever it waits for)
  ChangeListener(const ChangeListener&) = delete;
  ChangeListener& operator=(const ChangeListener&) = delete;

  // True while a connection is open and subscribed: then the node can afford to look for bundles
  // itself only rarely.
  bool listening() const { return listening_.load(std::memory_order_acquire); }
  // Connections opened so far (the first one included).
  int64_t connections() const { return connections_.load(std::memory_order_relaxed); }

 private:
  ChangeListener(Options options, Callbacks callbacks, int wake_fd);
  void Run();
  // Serves one connection until it is lost (the reason) or the listener stops (Ok).
  Status ListenOnce();
  // Sleeps `wait`, or less when woken to stop. True when stopping.
  bool SleepOrStop(std::chrono::milliseconds wait);

  Options options_;
  Callbacks callbacks_;
  int wake_fd_;  // an eventfd: written once to stop the thread
  std::atomic<bool> stopping_{false};
  std::atomic<bool> listening_{false};
  std::atomic<int64_t> connections_{0};
  std::thread thread_;
};

}  // namespace appban::store
