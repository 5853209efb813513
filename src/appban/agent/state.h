// The agent's state directory: what must survive restarts, crashes and power loss.
//
//   credential        the device credential ("d-….<secret>"), mode 0600
//   server_ca.pem     the pinned CA of the server
//   policy_keys.pem   the pinned policy public keys
//   bundle.json       the last verified bundle envelope, exactly as received
//   bundle_meta.json  {"version":N,"verified_at":T} of that bundle
//   checkpoints.json  small named counters and times (last check-in, backoff, ...)
//   events.log        the pending event queue, append-only, one record per line
//   events.acked      the highest seq the server acknowledged
//   intent.json       the action being taken now, if any (written before it, removed after its
//                     outcome is in events.log): found at Open, the agent stopped in between
//
// Every file except events.log is replaced atomically (temp file, fsync, rename, fsync dir).
// events.log is appended and fsync'ed before Append returns, so an event acknowledged as recorded
// survives kill -9; a record torn by a crash mid-write is detected (each line carries the SHA-256
// of its JSON) and dropped on the next Open. Acked events are removed by rewriting the log
// atomically. Sequence numbers strictly increase across restarts and compactions.
//
// One AgentState per directory per process; not thread-safe (the daemon owns it on one thread).
// Two processes must not open the same directory: Open takes an exclusive flock on `lock`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "appban/protocol/messages.h"

namespace appban::agent {

struct StateLimits {
  uint64_t max_small_file_bytes = 1u << 20;  // credential, keys, checkpoints
  uint64_t max_bundle_bytes = 64ull << 20;   // as policy::kPolicyLimits.max_bundle_bytes
  uint64_t max_event_log_bytes = 256ull << 20;
  size_t max_pending_events = 1000000;  // beyond this Append refuses: the disk is not a sink
  // Space kept allocated at the end of events.log before every action (ReserveEventSpace), so
  // the action's outcome records fit even when the disk fills meanwhile: ~20 records of the
  // largest size, hundreds of ordinary ones.
  uint64_t event_log_reserve_bytes = 64u << 10;
};
inline constexpr StateLimits kStateLimits{};

enum class StateItem { kCredential, kServerCa, kPolicyKeys, kBundle };

class AgentState {
 public:
  // Creates the directory (0700) if needed, locks it, and loads the event queue (dropping a torn
  // last record).
  static Result<AgentState> Open(const std::string& directory, const StateLimits& limits = kStateLimits);

  AgentState(AgentState&&) noexcept;
  AgentState& operator=(AgentState&&) noexcept;
  AgentState(const AgentState&) = delete;
  AgentState& operator=(const AgentState&) = delete;
  ~AgentState();

  const std::string& directory() const { return directory_; }

  Status Write(StateItem item, std::string_view contents);
  // nullopt when the item was never written.
  Result<std::optional<std::string>> Read(StateItem item) const;

  Status SetBundleVersion(int64_t version, int64_t verified_at);
  int64_t bundle_version() const { return bundle_version_; }

  Status SetCheckpoint(const std::string& name, int64_t value);
  std::optional<int64_t> Checkpoint(const std::string& name) const;

  // Gives the event the next seq, appends it durably (fsync) and returns the seq.
  Result<int64_t> Append(protocol::DeviceEvent event);
  // Allocates limits.event_log_reserve_bytes past the end of events.log (fallocate, keeping its
  // size), so the next appends need no new disk blocks. Unavailable (ENOSPC) when the disk cannot
  // give them: the caller must not act, since it could not record what it did.
  Status ReserveEventSpace();

  // An action about to change the system, recorded durably before it is taken.
  struct Intent {
    std::string platform;
    std::string app;
    std::string rule_id;
    int64_t at = 0;
  };
  Status RecordIntent(const Intent& intent);
  // The recorded intent whose outcome is not yet in events.log (after a crash: the one in progress).
  const std::optional<Intent>& intent() const { return intent_; }
  Status ClearIntent();

  // Pending (unacknowledged) events, oldest first, at most `max_count`.
  std::vector<protocol::DeviceEvent> Pending(size_t max_count = SIZE_MAX) const;
  size_t pending_count() const { return pending_.size(); }
  // The server stored every event with seq <= acked: drop them (durably).
  Status Acknowledge(int64_t acked);
  int64_t acked_seq() const { return acked_; }
  int64_t last_seq() const { return last_seq_; }

 private:
  AgentState() = default;
  Status LoadEvents();
  Status LoadMeta();
  Status LoadIntent();
  Status RewriteLog();
  std::string PathOf(std::string_view name) const { return directory_ + "/" + std::string(name); }

  std::string directory_;
  StateLimits limits_;
  int lock_fd_ = -1;
  int log_fd_ = -1;
  int64_t bundle_version_ = 0;
  int64_t acked_ = 0;
  int64_t last_seq_ = 0;
  std::vector<protocol::DeviceEvent> pending_;
  std::vector<std::pair<std::string, int64_t>> checkpoints_;
  std::optional<Intent> intent_;
};

}  // namespace appban::agent
