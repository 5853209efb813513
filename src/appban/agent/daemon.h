// The agent's control loop: the cached verified bundle, local enforcement, the event queue and the
// conversation with the server, tied together.
//
// `appban agent once` (RunOnce): inventory -> evaluate with the cached verified bundle -> enforce
// -> queue events -> check in -> if a newer bundle arrived: verify, store, enforce, check in.
//
// `appban agent run` (RunDaemon): one loop thread owns the Agent (state, enforcer, bundle); a
// second, detached thread holds the long-poll open and hands bundles it receives to the loop
// through a shared mailbox (it touches nothing else, so stopping never waits for a poll that the
// server may hold for a minute). The loop:
//   - enforces at start, whenever the ChangeWatcher sees the dpkg database / wake file / snap or
//     flatpak directories change, at the earliest waiver expiry (NextWaiverExpiry: a waiver ends
//     without a new bundle), after a new bundle, and every `full_cycle_interval`;
//   - checks in at the server's interval (±jitter), after enforcing anything, after a new bundle;
//   - when the server is unreachable, keeps enforcing the cached bundle until it expires, keeps
//     events in the durable queue and retries with exponential back-off and jitter.
// Every bundle, whether from a check-in, the poll or the state directory at start, goes through
// policy::VerifyBundle (pinned keys, no rollback, not expired); a refused one is never applied and
// becomes a bundle_refused event naming the reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <vector>

#include "appban/agent/agent_client.h"
#include "appban/agent/enforce.h"
#include "appban/agent/inventory.h"
#include "appban/agent/state.h"
#include "appban/common/status.h"
#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"

namespace appban::agent {

struct DaemonConfig {
  std::string state_dir = "/var/lib/appban";
  EnforcementConfig enforcement;  // paths, tools, monitor mode
  ClientTimeouts timeouts;
  // Back-off after a failed check-in or poll: doubles from initial to max, each wait jittered.
  std::chrono::milliseconds backoff_initial{1'000};
  std::chrono::milliseconds backoff_max{std::chrono::minutes(5)};
  double jitter = 0.1;  // ± this fraction on check-in intervals and back-off waits
  // A full local enforcement cycle at least this often even when nothing woke the agent.
  std::chrono::milliseconds full_cycle_interval{std::chrono::minutes(5)};
  // Overrides the server's check-in interval (0: use the server's).
  std::chrono::seconds checkin_interval_override{0};
};

using LogFn = std::function<void(std::string_view line)>;

// The agent's state in memory. One thread.
class Agent {
 public:
  enum class Mode {
    kAct,      // once/run: a refused cached bundle is recorded as an event
    kInspect,  // status: reads only; records nothing
  };
  // Opens (and locks) the state directory, reads the enrolment, the pinned keys and the cached
  // bundle, verifying it (a refused cached bundle is not used).
  static Result<Agent> Open(const DaemonConfig& config, Mode mode, LogFn log = {});

  // Inventory -> decisions -> plan -> execute -> events queued durably; refreshes the APT pin,
  // hooks and flatpak masks when the set of banned identifiers changed.
  //
  // No action without a durable record of it: before each removal the intent is written to the
  // state directory (fsync) and space for its outcome is reserved at the end of events.log; when
  // either fails (a full disk) nothing is removed and a remove_failed event says why. Events that
  // could not be written are kept in memory and written first at the next cycle, before anything
  // else is done; an intent left by a crash is resolved against the inventory (removed, or
  // interrupted) at the next cycle.
  Status EnforceCycle(UnixSeconds now);

  struct ApplyResult {
    bool applied = false;  // a new bundle is now the one enforced
  };
  // Verifies `envelope` and, if it is newer than the held bundle, stores and adopts it. A refused
  // bundle is recorded as a bundle_refused event (once per distinct envelope) and the error
  // returned; nothing is applied. `key_rotations` (sent with the bundle) are followed first.
  Result<ApplyResult> ApplyBundle(std::string_view envelope, UnixSeconds now,
                                  const std::vector<std::string>& key_rotations = {});

  // Follows key rotation statements (policy/rotation.h) from the pinned keys: each one signed by a
  // pinned key replaces that key by the one it names, durably (policy_keys.pem), so bundles signed
  // by the old key are refused from then on. Statements about keys not pinned are ignored.
  Status FollowKeyRotations(const std::vector<std::string>& key_rotations);
  const std::vector<policy::PublicKey>& pinned_keys() const { return keys_; }

  struct CheckinResult {
    bool bundle_applied = false;
    int64_t latest_version = 0;
  };
  // One check-in conversation: events in batches of at most kProtocolLimits.max_events_per_checkin
  // (acknowledged ones dropped), the inventory when it changed or was asked for, a newer bundle
  // applied (verified first). Records the outcome for `status`.
  Result<CheckinResult> Checkin(AgentClient& client, UnixSeconds now);

  // When the next enforcement must happen without any outside trigger: the earliest waiver expiry.
  std::optional<UnixSeconds> next_waiver_expiry() const { return next_waiver_expiry_; }
  int64_t held_version() const;
  const std::optional<policy::VerifiedBundle>& bundle() const { return bundle_; }
  AgentState& state() { return state_; }
  const Enrollment& enrollment() const { return enrollment_; }

  // Unenrolment: removes the APT pin, hooks and Flatpak masks this agent installed.
  Status RemoveInstallBlocks(UnixSeconds now);

  // The status report (`appban agent status --json`).
  Json Report(UnixSeconds now) const;
  // Writes Report() to <state dir>/status.json, for `status` while the daemon holds the lock.
  Status WriteStatusFile(UnixSeconds now) const;

 private:
  Agent(DaemonConfig config, AgentState state, LogFn log);
  // Appends the events to the durable queue; those it cannot append (a full disk) are kept, in
  // order, and appended first by the next Record or FlushUnrecorded.
  Status Record(std::vector<protocol::DeviceEvent> events);
  Status FlushUnrecorded();
  // ActionJournal::before / after (enforce.h) over the state directory.
  Status BeforeAction(const PlannedAction& action, UnixSeconds now);
  Status AfterAction(std::vector<protocol::DeviceEvent> outcome);
  // An intent whose outcome never reached events.log (the agent stopped in between), judged by
  // whether the app is still installed.
  Status ResolveIntent(const LocalInventory& inventory, UnixSeconds now);
  std::vector<policy::AppDecision> Decide(const LocalInventory& inventory, UnixSeconds now) const;
  bool BundleUsable(UnixSeconds now) const;
  void Log(const std::string& line) const;

  DaemonConfig config_;
  AgentState state_;
  LogFn log_;
  Enforcer enforcer_;
  Enrollment enrollment_;
  std::vector<policy::PublicKey> keys_;
  policy::DeviceContext device_;
  std::optional<policy::VerifiedBundle> bundle_;
  std::optional<policy::PolicyIndex> index_;
  std::string cached_bundle_problem_;  // why the stored bundle is not used, for status
  // The payload hash of the bundle of the held version (also when it expired since): another
  // bundle claiming that version is refused, not applied in its place.
  std::optional<std::string> held_payload_sha256_;
  bool server_rules_hash_mismatch_ = false;  // the last check-in answer said our rules_hash is wrong
  std::optional<std::vector<BannedApp>> written_blocks_;
  std::vector<UnenforcedBan> unenforced_;
  std::vector<protocol::DeviceEvent> unrecorded_;  // events not yet in the durable queue, oldest first
  std::string record_problem_;                     // why the last append failed, for status
  bool intent_outcome_unrecorded_ = false;  // the intent's outcome is among unrecorded_  // bans left out of the pins
                                            // (protected packages), for status
  std::optional<UnixSeconds> next_waiver_expiry_;
  std::string acked_inventory_hash_;  // the inventory the server last acknowledged
  bool inventory_requested_ = false;
  std::vector<std::string> refused_envelope_hashes_;  // the latest few, to report each once
  // For status: the last check-in.
  UnixSeconds last_checkin_attempt_ = 0;
  UnixSeconds last_checkin_ok_ = 0;
  std::string last_checkin_result_ = "never";
  // The latest cycle's decisions for installed apps that a rule touches, for status.
  Json last_decisions_ = Json::array();
};

// Exit statuses of RunOnce (and `appban agent once`).
inline constexpr int kOnceOk = 0;
inline constexpr int kOnceFailed = 1;
inline constexpr int kOnceOffline = 3;  // enforced locally; the server could not be reached

int RunOnce(const DaemonConfig& config, LogFn log);

struct UnenrollOptions {
  // Leave without telling the server (it is gone for good): the device must then be retired on
  // the server (POST /v1/admin/devices/{id}/revoke), or it stays listed as not checking in.
  bool offline = false;
};
// `appban agent unenrol`: delivers the queued events, tells the server (POST /v1/unenroll), removes
// the pins, hooks and masks it installed, and deletes the state directory's files — the machine is
// as before enrolment, less the apps enforcement removed. Nothing is changed when the server
// cannot be told (unless offline). Returns 0 or 1; `log` gets every line for the operator.
int RunUnenroll(const DaemonConfig& config, const UnenrollOptions& options, LogFn log);
// Runs until `stop` is requested (SIGTERM in the CLI). Returns the error that made it give up
// (the state directory cannot be written, the agent is not enrolled).
Status RunDaemon(const DaemonConfig& config, std::stop_token stop, LogFn log);

// Exponential back-off with jitter.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter);
  // The wait before the next attempt; doubles the base for the one after (up to max).
  std::chrono::milliseconds Next();
  void Reset() { current_ = initial_; }
  // `base` ± jitter.
  std::chrono::milliseconds Jittered(std::chrono::milliseconds base);

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds current_;
  double jitter_;
  std::mt19937_64 random_;
};

}  // namespace appban::agent
