#include "appban/agent/daemon.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <thread>

#include "appban/agent/watch.h"
#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/common/mutex.h"
#include "appban/policy/rotation.h"

namespace appban::agent {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

UnixSeconds WallNow() { return static_cast<UnixSeconds>(std::time(nullptr)); }

protocol::DeviceEvent BundleEvent(protocol::EventKind kind, UnixSeconds now, std::string detail) {
  protocol::DeviceEvent event;
  event.at = now;
  event.kind = kind;
  event.detail = std::move(detail);
  if (event.detail.size() > protocol::kProtocolLimits.max_detail)
    event.detail.resize(protocol::kProtocolLimits.max_detail);
  return event;
}

// The "version" member of an envelope's payload, for naming a refused bundle; 0 when unreadable.
int64_t ClaimedVersion(std::string_view envelope) {
  Json outer = Json::parse(envelope, nullptr, false);
  if (!outer.is_object() || !outer.contains("payload") || !outer["payload"].is_string()) return 0;
  Json payload = Json::parse(outer["payload"].get<std::string>(), nullptr, false);
  if (!payload.is_object() || !payload.contains("version") || !payload["version"].is_number_integer()) return 0;
  return payload["version"].get<int64_t>();
}

bool WaiverCoversDevice(const policy::Waiver& waiver, const policy::DeviceContext& device) {
  if (waiver.subject_kind == policy::WaiverSubject::kDevice) return waiver.subject == device.device_id;
  return std::find(device.groups.begin(), device.groups.end(), waiver.subject) != device.groups.end();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Backoff

Backoff::Backoff(milliseconds initial, milliseconds max, double jitter)
    : initial_(std::max(initial, milliseconds(1))),
      max_(std::max(max, initial_)),
      current_(initial_),
      jitter_(std::clamp(jitter, 0.0, 0.9)),
      random_(std::random_device{}()) {}

milliseconds Backoff::Jittered(milliseconds base) {
  std::uniform_real_distribution<double> factor(1.0 - jitter_, 1.0 + jitter_);
  return milliseconds(static_cast<int64_t>(static_cast<double>(base.count()) * factor(random_)));
}

milliseconds Backoff::Next() {
  milliseconds wait = Jittered(current_);
  current_ = std::min(current_ * 2, max_);
  return wait;
}

// ---------------------------------------------------------------------------------------------
// Agent

Agent::Agent(DaemonConfig config, AgentState state, LogFn log)
    : config_(std::move(config)), state_(std::move(state)), log_(std::move(log)), enforcer_(config_.enforcement) {}

void Agent::Log(const std::string& line) const {
  if (log_) log_(line);
}

Result<Agent> Agent::Open(const DaemonConfig& config, Mode mode, LogFn log) {
  // The enrolment first: a device that is not enrolled gets that answer, and a command that only
  // reads (status) creates no state directory for it.
  APPBAN_ASSIGN_OR_RETURN(Enrollment enrollment, ReadEnrollment(config.state_dir));
  APPBAN_ASSIGN_OR_RETURN(AgentState state, AgentState::Open(config.state_dir));
  Agent agent(config, std::move(state), std::move(log));
  agent.enrollment_ = std::move(enrollment);
  APPBAN_ASSIGN_OR_RETURN(agent.keys_, PinnedPolicyKeys(agent.state_));
  agent.device_.device_id = agent.enrollment_.device_id;
  if (!agent.enrollment_.group.empty()) agent.device_.groups.push_back(agent.enrollment_.group);

  APPBAN_ASSIGN_OR_RETURN(auto cached, agent.state_.Read(StateItem::kBundle));
  if (cached.has_value()) {
    UnixSeconds now = WallNow();
    // held_version is the stored bundle's own version: a file swapped for an older signed bundle
    // is a rollback and refused like one from the network.
    auto verified = VerifyReceivedBundle(*cached, agent.keys_, agent.state_.bundle_version(), now);
    if (verified.ok()) {
      agent.held_payload_sha256_ = verified->payload_sha256;
    } else if (verified.status().code() == StatusCode::kExpired) {
      // Expired is still the bundle of the held version: checked as of its own validity.
      if (auto identity = VerifyReceivedBundle(*cached, agent.keys_, agent.state_.bundle_version(), 0); identity.ok()) {
        agent.held_payload_sha256_ = identity->payload_sha256;
      }
    }
    if (verified.ok()) {
      auto index = policy::PolicyIndex::Build(verified->bundle);
      if (index.ok()) {
        agent.bundle_ = std::move(*verified);
        agent.index_ = std::move(*index);
      } else {
        agent.cached_bundle_problem_ = index.status().ToString();
      }
    } else {
      agent.cached_bundle_problem_ = verified.status().ToString();
    }
    if (!agent.cached_bundle_problem_.empty()) {
      agent.Log("the cached bundle is not used: " + agent.cached_bundle_problem_);
      if (mode == Mode::kAct && verified.status().code() != StatusCode::kExpired) {
        agent.refused_envelope_hashes_.push_back(Sha256Hex(AsBytes(*cached)));
        APPBAN_RETURN_IF_ERROR(
            agent.Record({BundleEvent(protocol::EventKind::kBundleRefused, now,
                                      "cached bundle version " + std::to_string(ClaimedVersion(*cached)) + ": " +
                                          agent.cached_bundle_problem_)}));
      }
    }
  }
  return agent;
}

int64_t Agent::held_version() const { return bundle_ ? bundle_->bundle.version : 0; }

Status Agent::Record(std::vector<protocol::DeviceEvent> events) {
  for (auto& event : events) {
    Log(std::string("event ") + std::string(protocol::EventKindName(event.kind)) +
        (event.app.empty() ? "" : " " + event.platform + ":" + event.app) +
        (event.rule_id.empty() ? "" : " rule " + event.rule_id) + (event.detail.empty() ? "" : ": " + event.detail));
    unrecorded_.push_back(std::move(event));
  }
  return FlushUnrecorded();
}

Status Agent::FlushUnrecorded() {
  size_t written = 0;
  Status status;
  for (; written < unrecorded_.size(); ++written) {
    status = state_.Append(unrecorded_[written]).status();
    if (!status.ok()) break;
  }
  unrecorded_.erase(unrecorded_.begin(), unrecorded_.begin() + static_cast<std::ptrdiff_t>(written));
  if (!status.ok()) {
    if (record_problem_.empty())
      Log("cannot write the event queue (" + std::to_string(unrecorded_.size()) +
          " events kept in memory, written when possible): " + status.ToString());
    record_problem_ = status.ToString();
    return status;
  }
  if (!record_problem_.empty()) Log("the event queue is writable again; every kept event is written");
  record_problem_.clear();
  return Status::Ok();
}

Status Agent::BeforeAction(const PlannedAction& action, UnixSeconds now) {
  if (!unrecorded_.empty()) {
    return Status::Unavailable(std::to_string(unrecorded_.size()) +
                               " earlier events are not written yet: " + record_problem_);
  }
  if (state_.intent()) {
    return Status::FailedPrecondition("the outcome of removing " + state_.intent()->app + " is not recorded yet");
  }
  APPBAN_RETURN_IF_ERROR(state_.ReserveEventSpace());
  return state_.RecordIntent(
      {std::string(policy::PlatformName(action.entry.app.platform)), action.entry.app.id, action.rule_id, now});
}

Status Agent::AfterAction(std::vector<protocol::DeviceEvent> outcome) {
  if (Status recorded = Record(std::move(outcome)); !recorded.ok()) {
    intent_outcome_unrecorded_ = true;  // cleared once FlushUnrecorded writes it
    return recorded;
  }
  return state_.ClearIntent();
}

Status Agent::ResolveIntent(const LocalInventory& inventory, UnixSeconds now) {
  if (!state_.intent()) return Status::Ok();
  if (intent_outcome_unrecorded_) {
    // Its outcome was kept in memory and has just been written.
    intent_outcome_unrecorded_ = false;
    return state_.ClearIntent();
  }
  const AgentState::Intent intent = *state_.intent();
  bool present = std::any_of(inventory.entries.begin(), inventory.entries.end(), [&](const InventoryEntry& entry) {
    return policy::PlatformName(entry.app.platform) == intent.platform && entry.app.id == intent.app;
  });
  protocol::DeviceEvent event;
  event.at = now;
  event.platform = intent.platform;
  event.app = intent.app;
  event.rule_id = intent.rule_id;
  event.kind = present ? protocol::EventKind::kRemoveFailed : protocol::EventKind::kRemoved;
  event.detail = present ? "interrupted: the agent stopped while removing it (started at " +
                               FormatTimestamp(intent.at) + ") before recording the outcome; still installed"
                         : "removed (started at " + FormatTimestamp(intent.at) +
                               "); the outcome is recorded late: the agent stopped before it could write it";
  APPBAN_RETURN_IF_ERROR(Record({std::move(event)}));
  return state_.ClearIntent();
}

bool Agent::BundleUsable(UnixSeconds now) const {
  return bundle_.has_value() && index_.has_value() && now < bundle_->bundle.not_after;
}

std::vector<policy::AppDecision> Agent::Decide(const LocalInventory& inventory, UnixSeconds now) const {
  std::vector<policy::InstalledApp> apps = inventory.Apps();
  // An expired bundle enforces nothing new: the policy it carries may have been lifted since.
  if (!BundleUsable(now)) return std::vector<policy::AppDecision>(apps.size());
  return index_->EvaluateAll(apps, device_, now);
}

Status Agent::EnforceCycle(UnixSeconds now) {
  APPBAN_ASSIGN_OR_RETURN(LocalInventory inventory, CollectInventory(config_.enforcement.paths));
  // What earlier cycles could not write goes first; while it cannot, BeforeAction refuses to act.
  Status backlog = FlushUnrecorded();
  if (backlog.ok()) backlog = ResolveIntent(inventory, now);
  if (!backlog.ok()) Log("events from an earlier cycle are still not written: " + backlog.ToString());
  std::vector<policy::AppDecision> decisions = Decide(inventory, now);
  std::vector<PlannedAction> plan = PlanEnforcement(inventory.entries, decisions, config_.enforcement.monitor);
  ActionJournal journal{[this, now](const PlannedAction& action) { return BeforeAction(action, now); },
                        [this](std::vector<protocol::DeviceEvent> outcome) { return AfterAction(std::move(outcome)); }};
  Status recorded = Record(enforcer_.Execute(plan, now, &journal));
  // Installs the APT hook refused since the last cycle (it runs inside APT and leaves a spool).
  if (Status refusals = Record(enforcer_.CollectRefusals(now)); recorded.ok()) recorded = refusals;
  next_waiver_expiry_ = NextWaiverExpiry(decisions);

  last_decisions_ = Json::array();
  for (size_t i = 0; i < plan.size(); ++i) {
    if (decisions[i].verdict == policy::Verdict::kAllowed) continue;
    Json item = {{"platform", policy::PlatformName(plan[i].entry.app.platform)},
                 {"id", plan[i].entry.app.id},
                 {"version", plan[i].entry.app.version},
                 {"verdict", policy::VerdictName(decisions[i].verdict)},
                 {"action", PlannedKindName(plan[i].kind)},
                 {"rule", decisions[i].rule_id}};
    if (decisions[i].waived_until) item["waived_until"] = *decisions[i].waived_until;
    last_decisions_.push_back(std::move(item));
  }

  if (BundleUsable(now)) {
    std::vector<BannedApp> banned = InstallBlocklist(bundle_->bundle, *index_, device_, now);
    if (!written_blocks_ || *written_blocks_ != banned) {
      auto written = enforcer_.WriteInstallBlocks(banned);
      if (!written.ok()) {
        Log("writing the install blocks failed: " + written.status().ToString());
      } else {
        written_blocks_ = std::move(banned);
        for (const auto& ban : *written) {
          Log("rule " + ban.app.rule_id + ", deb:" + ban.app.id + ": " + ban.reason);
        }
        unenforced_ = std::move(*written);
      }
    }
  }
  if (!recorded.ok()) return recorded;
  if (!unrecorded_.empty()) return Status::Unavailable("events are not written yet: " + record_problem_);
  return Status::Ok();
}

Status Agent::FollowKeyRotations(const std::vector<std::string>& key_rotations) {
  if (key_rotations.empty()) return Status::Ok();
  std::vector<policy::KeyRotation> followed;
  auto keys = policy::FollowKeyRotations(keys_, key_rotations, &followed);
  if (!keys.ok()) {
    Log("key rotation refused: " + keys.status().ToString());
    return keys.status();
  }
  if (followed.empty()) return Status::Ok();
  // Pinned before the bundle the new key signed is stored: after a crash in between, the next
  // check-in brings that bundle again (its version is above the held one).
  std::string pems;
  for (const auto& key : *keys) pems += policy::PublicKeyPem(key);
  APPBAN_RETURN_IF_ERROR(state_.Write(StateItem::kPolicyKeys, pems));
  keys_ = std::move(*keys);
  for (const auto& rotation : followed) {
    Log("policy key rotated from " + rotation.old_key_id + " to " + rotation.new_key.key_id +
        "; bundles signed by the old key are refused from now on");
  }
  return Status::Ok();
}

Result<Agent::ApplyResult> Agent::ApplyBundle(std::string_view envelope, UnixSeconds now,
                                              const std::vector<std::string>& key_rotations) {
  // A bad statement does not stop the bundle being tried: it is refused if no pinned key signed it.
  (void)FollowKeyRotations(key_rotations);
  auto verified = VerifyReceivedBundle(envelope, keys_, state_.bundle_version(), now, held_payload_sha256_);
  Status problem = verified.status();
  std::optional<policy::PolicyIndex> index;
  if (verified.ok()) {
    if (bundle_ && verified->bundle.version == bundle_->bundle.version &&
        verified->bundle.rules_hash == bundle_->bundle.rules_hash) {
      return ApplyResult{false};  // the bundle we already enforce
    }
    auto built = policy::PolicyIndex::Build(verified->bundle);
    if (built.ok()) {
      index = std::move(*built);
    } else {
      problem = built.status();
    }
  }
  if (!problem.ok()) {
    // A server that keeps offering the same bad bundle gets one event for it, not one per poll.
    constexpr size_t kRememberedRefusals = 16;
    std::string hash = Sha256Hex(AsBytes(envelope));
    if (std::find(refused_envelope_hashes_.begin(), refused_envelope_hashes_.end(), hash) ==
        refused_envelope_hashes_.end()) {
      if (refused_envelope_hashes_.size() >= kRememberedRefusals)
        refused_envelope_hashes_.erase(refused_envelope_hashes_.begin());
      refused_envelope_hashes_.push_back(hash);
      APPBAN_RETURN_IF_ERROR(Record(
          {BundleEvent(protocol::EventKind::kBundleRefused, now,
                       "bundle version " + std::to_string(ClaimedVersion(envelope)) + ": " + problem.ToString())}));
    }
    return problem;
  }
  // Stored before it is used: after a crash the agent restarts with what it enforced.
  APPBAN_RETURN_IF_ERROR(state_.Write(StateItem::kBundle, envelope));
  APPBAN_RETURN_IF_ERROR(state_.SetBundleVersion(verified->bundle.version, now));
  held_payload_sha256_ = verified->payload_sha256;
  bundle_ = std::move(*verified);
  index_ = std::move(index);
  cached_bundle_problem_.clear();
  written_blocks_.reset();
  APPBAN_RETURN_IF_ERROR(Record({BundleEvent(
      protocol::EventKind::kBundleApplied, now,
      "version " + std::to_string(bundle_->bundle.version) + " rules_hash " + bundle_->bundle.rules_hash)}));
  return ApplyResult{true};
}

Result<Agent::CheckinResult> Agent::Checkin(AgentClient& client, UnixSeconds now) {
  last_checkin_attempt_ = now;
  CheckinResult result;
  auto inventory = CollectInventory(config_.enforcement.paths);
  if (!inventory.ok()) {
    last_checkin_result_ = "inventory failed: " + inventory.status().ToString();
    return inventory.status();
  }
  std::string inventory_hash = inventory->Hash();
  // A bounded number of rounds: the queue drains in batches, an inventory request is answered.
  for (int round = 0; round < 1000; ++round) {
    protocol::CheckinRequest request;
    request.applied_version = held_version();
    request.rules_hash = bundle_ ? bundle_->bundle.rules_hash : "";
    request.inventory_hash = inventory_hash;
    bool with_inventory = inventory_requested_ || inventory_hash != acked_inventory_hash_;
    if (with_inventory) request.inventory = inventory->Apps();
    request.events = state_.Pending(protocol::kProtocolLimits.max_events_per_checkin);
    request.agent_version = std::string(kAgentVersion);
    request.monitor = config_.enforcement.monitor;
    int64_t acked_before = state_.acked_seq();

    auto answer = client.Checkin(request);
    if (!answer.ok()) {
      last_checkin_result_ = answer.status().ToString();
      return answer.status();
    }
    last_checkin_ok_ = now;
    last_checkin_result_ = "ok";
    if (answer->events_acked > state_.acked_seq()) APPBAN_RETURN_IF_ERROR(state_.Acknowledge(answer->events_acked));
    inventory_requested_ = answer->send_inventory;
    if (!answer->send_inventory) acked_inventory_hash_ = inventory_hash;
    if (answer->checkin_interval > 0 && (answer->checkin_interval != enrollment_.checkin_interval ||
                                         answer->longpoll_timeout != enrollment_.longpoll_timeout)) {
      enrollment_.checkin_interval = answer->checkin_interval;
      if (answer->longpoll_timeout > 0) enrollment_.longpoll_timeout = answer->longpoll_timeout;
      Status saved = WriteEnrollment(config_.state_dir, enrollment_);
      if (!saved.ok()) Log("saving the server's intervals failed: " + saved.ToString());
    }
    result.latest_version = answer->latest_version;
    if (answer->rules_hash_mismatch) {
      // The server holds another hash for the version this agent enforces (its state was damaged,
      // or someone signed two bundles with one version). The bundle it sends is checked like any
      // other: the same payload is taken as is, a different payload under the held version is
      // refused (only a higher version replaces it), and the device stays "mismatch" for a person
      // to look at.
      Log("the server reports that rules_hash " + (bundle_ ? bundle_->bundle.rules_hash : std::string("(none)")) +
          " is not the hash of version " + std::to_string(held_version()) + " it issued; checking its bundle");
    }
    server_rules_hash_mismatch_ = answer->rules_hash_mismatch;
    if (answer->bundle && (answer->latest_version > held_version() || answer->rules_hash_mismatch)) {
      auto applied = ApplyBundle(*answer->bundle, now, answer->key_rotations);
      if (applied.ok() && applied->applied) result.bundle_applied = true;
      if (!applied.ok()) last_checkin_result_ = "ok; bundle refused: " + applied.status().ToString();
      // The caller enforces the new bundle and checks in again, with that enforcement's events.
      if (result.bundle_applied) return result;
    }
    bool resend_inventory = answer->send_inventory && !with_inventory;
    bool more_events = state_.pending_count() > 0 && state_.acked_seq() > acked_before;
    if (!resend_inventory && !more_events) break;
  }
  return result;
}

Json Agent::Report(UnixSeconds now) const {
  Json key_ids = Json::array();
  for (const auto& key : keys_) key_ids.push_back(key.key_id);
  Json report = {
      {"generated_at", now},
      {"device_id", enrollment_.device_id},
      {"server", enrollment_.server_url},
      {"monitor", config_.enforcement.monitor},
      {"policy_version", held_version()},
      {"policy_key_ids", key_ids},
      {"pending_events", state_.pending_count()},
      {"unwritten_events", unrecorded_.size()},
      {"last_event_seq", state_.last_seq()},
      {"events_acked", state_.acked_seq()},
      {"last_checkin",
       {{"attempt_at", last_checkin_attempt_}, {"ok_at", last_checkin_ok_}, {"result", last_checkin_result_}}},
      {"decisions", last_decisions_}};
  if (bundle_) {
    report["rules_hash"] = bundle_->bundle.rules_hash;
    report["bundle_issued_at"] = bundle_->bundle.issued_at;
    report["bundle_expires_at"] = bundle_->bundle.not_after;
    report["bundle_expired"] = now >= bundle_->bundle.not_after;
    Json waivers = Json::array();
    for (const auto& waiver : bundle_->bundle.waivers) {
      if (!WaiverCoversDevice(waiver, device_)) continue;
      waivers.push_back({{"id", waiver.id},
                         {"rule", waiver.rule_id},
                         {"subject", waiver.subject},
                         {"expires_at", waiver.expires_at},
                         {"active", waiver.ActiveAt(now)}});
    }
    report["waivers"] = std::move(waivers);
  } else {
    report["waivers"] = Json::array();
  }
  if (!cached_bundle_problem_.empty()) report["cached_bundle_refused"] = cached_bundle_problem_;
  if (server_rules_hash_mismatch_) report["server_rules_hash_mismatch"] = true;
  if (!record_problem_.empty()) report["event_queue_error"] = record_problem_;
  Json not_enforced = Json::array();
  for (const auto& ban : unenforced_) {
    not_enforced.push_back({{"platform", policy::PlatformName(ban.app.platform)},
                            {"id", ban.app.id},
                            {"rule", ban.app.rule_id},
                            {"reason", ban.reason}});
  }
  report["not_enforced"] = std::move(not_enforced);
  return report;
}

Status Agent::WriteStatusFile(UnixSeconds now) const {
  return WriteFileAtomically(config_.state_dir + "/status.json", Report(now).dump(2) + "\n", 0644);
}

// ---------------------------------------------------------------------------------------------
// once

int RunOnce(const DaemonConfig& config, LogFn log) {
  auto say = [&](const std::string& line) {
    if (log) log(line);
  };
  auto opened = Agent::Open(config, Agent::Mode::kAct, log);
  if (!opened.ok()) {
    say("agent: " + opened.status().ToString());
    return kOnceFailed;
  }
  Agent& agent = *opened;
  int exit_code = kOnceOk;
  if (Status enforced = agent.EnforceCycle(WallNow()); !enforced.ok()) {
    say("agent: enforcement failed: " + enforced.ToString());
    exit_code = kOnceFailed;
  }
  auto client = AgentClient::FromState(agent.state(), config.timeouts);
  if (!client.ok()) {
    say("agent: " + client.status().ToString());
    (void)agent.WriteStatusFile(WallNow());
    return kOnceFailed;
  }
  // At most a few rounds: each new bundle is enforced and reported before looking for another.
  for (int round = 0; round < 4; ++round) {
    auto checked = agent.Checkin(*client, WallNow());
    if (!checked.ok()) {
      say("agent: check-in failed (events stay queued): " + checked.status().ToString());
      if (exit_code == kOnceOk) exit_code = kOnceOffline;
      break;
    }
    if (!checked->bundle_applied) break;
    if (Status enforced = agent.EnforceCycle(WallNow()); !enforced.ok()) {
      say("agent: enforcement failed: " + enforced.ToString());
      exit_code = kOnceFailed;
    }
  }
  if (Status written = agent.WriteStatusFile(WallNow()); !written.ok()) say("agent: " + written.ToString());
  return exit_code;
}

// ---------------------------------------------------------------------------------------------
// unenrol

Status Agent::RemoveInstallBlocks(UnixSeconds now) {
  std::vector<BannedApp> banned;
  if (bundle_ && index_) banned = InstallBlocklist(bundle_->bundle, *index_, device_, now);
  APPBAN_RETURN_IF_ERROR(enforcer_.RemoveInstallBlocks(banned));
  written_blocks_.reset();
  return Status::Ok();
}

namespace {

// Every file the agent keeps in its state directory (docs/agent.md, "State directory").
constexpr const char* kStateFiles[] = {
    "credential", "server_ca.pem", "policy_keys.pem", "agent.json",  "bundle.json", "bundle_meta.json",
    "events.log", "events.acked",  "intent.json",     "status.json", "lock"};

}  // namespace

int RunUnenroll(const DaemonConfig& config, const UnenrollOptions& options, LogFn log) {
  auto say = [&](const std::string& line) {
    if (log) log(line);
  };
  std::string device_id;
  {
    auto opened = Agent::Open(config, Agent::Mode::kAct, log);
    if (!opened.ok()) {
      say("agent unenrol: " + opened.status().ToString());
      return 1;
    }
    Agent& agent = *opened;
    device_id = agent.enrollment().device_id;
    if (!options.offline) {
      auto client = AgentClient::FromState(agent.state(), config.timeouts);
      if (!client.ok()) {
        say("agent unenrol: " + client.status().ToString());
        return 1;
      }
      // What happened on this machine reaches the server before it stops listening to it.
      if (auto checked = agent.Checkin(*client, WallNow()); !checked.ok()) {
        say("agent unenrol: the server cannot be reached, nothing was changed: " + checked.status().ToString() +
            "\n  retry, or leave with --offline and retire " + device_id + " on the server");
        return 1;
      }
      if (Status told = client->Unenroll(); !told.ok()) {
        say("agent unenrol: the server refused, nothing was changed: " + told.ToString());
        return 1;
      }
      say("server: " + device_id + " unenrolled (its credential is revoked)");
    } else {
      say("offline: the server was not told; retire " + device_id + " there (POST /v1/admin/devices/" + device_id +
          "/revoke)");
    }
    if (Status removed = agent.RemoveInstallBlocks(WallNow()); !removed.ok()) {
      say("agent unenrol: " + removed.ToString());
      return 1;
    }
    say("removed the APT pin, the APT and dpkg hooks and the Flatpak masks");
  }  // the state directory's lock is released here
  for (const char* name : kStateFiles) {
    std::string path = config.state_dir + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      say("agent unenrol: cannot delete " + path + ": " + std::strerror(errno));
      return 1;
    }
  }
  // Left in place when it holds anything appban did not put there.
  if (::rmdir(config.state_dir.c_str()) == 0) {
    say("deleted the state directory " + config.state_dir);
  } else {
    say("deleted appban's files from " + config.state_dir + " (other files in it were left)");
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// run

namespace {

// What the poll thread and the loop share. The poll thread only reads held_version and hands over
// bundle texts; it may outlive RunDaemon (it is detached), so everything it uses is owned here.
struct Mailbox {
  Mutex mutex;
  std::vector<protocol::PollResponse> bundles GUARDED_BY(mutex);  // each with a bundle
  std::atomic<int64_t> held_version{0};
  std::atomic<int64_t> longpoll_timeout{60};
  std::atomic<bool> stop{false};
};

void StoreMax(std::atomic<int64_t>& target, int64_t value) {
  int64_t current = target.load();
  while (current < value && !target.compare_exchange_weak(current, value)) {
  }
}

void PollLoop(AgentClient client, std::shared_ptr<Mailbox> mailbox, DaemonConfig config, LogFn log) {
  Backoff backoff(config.backoff_initial, config.backoff_max, config.jitter);
  while (!mailbox->stop.load()) {
    auto answer = client.Poll(mailbox->held_version.load(), std::chrono::seconds(mailbox->longpoll_timeout.load()));
    if (mailbox->stop.load()) return;
    if (answer.ok()) {
      backoff.Reset();
      if (answer->has_value() && (*answer)->bundle && (*answer)->latest_version > mailbox->held_version.load()) {
        MutexLock lock(mailbox->mutex);
        mailbox->bundles.push_back(std::move(**answer));
        // Wait for the loop to adopt it before asking again, or the server answers at once again.
        StoreMax(mailbox->held_version, (*answer)->latest_version);
      }
      continue;
    }
    milliseconds wait = answer.status().code() == StatusCode::kPermissionDenied ? config.backoff_max : backoff.Next();
    if (log) log("poll failed (retrying in " + std::to_string(wait.count()) + " ms): " + answer.status().ToString());
    auto until = Clock::now() + wait;
    while (!mailbox->stop.load() && Clock::now() < until) std::this_thread::sleep_for(milliseconds(50));
  }
}

}  // namespace

Status RunDaemon(const DaemonConfig& config, std::stop_token stop, LogFn log) {
  APPBAN_ASSIGN_OR_RETURN(Agent agent, Agent::Open(config, Agent::Mode::kAct, log));
  APPBAN_ASSIGN_OR_RETURN(AgentClient checkin_client, AgentClient::FromState(agent.state(), config.timeouts));
  APPBAN_ASSIGN_OR_RETURN(AgentClient poll_client, AgentClient::FromState(agent.state(), config.timeouts));
  APPBAN_ASSIGN_OR_RETURN(ChangeWatcher watcher,
                          ChangeWatcher::Open(config.enforcement.paths, config.enforcement.wake_file));

  auto mailbox = std::make_shared<Mailbox>();
  mailbox->held_version = agent.held_version();
  mailbox->longpoll_timeout = std::max<int64_t>(1, agent.enrollment().longpoll_timeout);
  std::thread(PollLoop, std::move(poll_client), mailbox, config, log).detach();
  struct StopPoll {
    std::shared_ptr<Mailbox> mailbox;
    ~StopPoll() { mailbox->stop = true; }
  } stop_poll{mailbox};

  Backoff backoff(config.backoff_initial, config.backoff_max, config.jitter);
  auto checkin_interval = [&]() -> milliseconds {
    if (config.checkin_interval_override.count() > 0) return config.checkin_interval_override;
    return std::chrono::seconds(std::max<int64_t>(10, checkin_client.enrollment().checkin_interval));
  };

  bool enforce_due = true;
  bool backing_off = false;
  auto next_checkin = Clock::now();
  auto next_full_cycle = Clock::now();
  while (!stop.stop_requested()) {
    bool changed = false;
    UnixSeconds now = WallNow();

    // Bundles the long-poll delivered.
    std::vector<protocol::PollResponse> delivered;
    {
      MutexLock lock(mailbox->mutex);
      delivered.swap(mailbox->bundles);
    }
    for (const auto& answer : delivered) {
      auto applied = agent.ApplyBundle(*answer.bundle, now, answer.key_rotations);
      if (applied.ok() && applied->applied) {
        enforce_due = true;
        next_checkin = Clock::now();  // report the new version (and what enforcing it did)
        backing_off = false;
      }
      changed = true;
    }
    // Never lower: a refused bundle must not be fetched again and again by the poll.
    StoreMax(mailbox->held_version, agent.held_version());

    if (auto expiry = agent.next_waiver_expiry(); expiry && now >= *expiry) enforce_due = true;
    if (enforce_due || Clock::now() >= next_full_cycle) {
      int64_t seq_before = agent.state().last_seq();
      if (Status enforced = agent.EnforceCycle(now); !enforced.ok()) {
        if (log) log("enforcement failed: " + enforced.ToString());
      }
      enforce_due = false;
      next_full_cycle = Clock::now() + config.full_cycle_interval;
      // New events go out at once, unless the server is known to be away (the back-off decides).
      if (agent.state().last_seq() != seq_before && !backing_off) next_checkin = Clock::now();
      changed = true;
    }

    if (Clock::now() >= next_checkin) {
      auto checked = agent.Checkin(checkin_client, WallNow());
      if (checked.ok()) {
        backoff.Reset();
        backing_off = false;
        next_checkin = Clock::now() + backoff.Jittered(checkin_interval());
        if (checked->bundle_applied) {
          enforce_due = true;
          next_checkin = Clock::now();
        }
        if (agent.state().pending_count() > 0 && !checked->bundle_applied) {
          // The server did not take everything (e.g. it acknowledged less): try again soon.
          next_checkin = std::min(next_checkin, Clock::now() + config.backoff_initial);
        }
      } else {
        backing_off = true;
        milliseconds wait =
            checked.status().code() == StatusCode::kPermissionDenied ? config.backoff_max : backoff.Next();
        next_checkin = Clock::now() + wait;
        if (log)
          log("check-in failed (" + std::to_string(agent.state().pending_count()) + " events queued, retrying in " +
              std::to_string(wait.count()) + " ms): " + checked.status().ToString());
      }
      mailbox->longpoll_timeout = std::max<int64_t>(1, checkin_client.enrollment().longpoll_timeout);
      changed = true;
    }
    if (changed) {
      if (Status written = agent.WriteStatusFile(WallNow()); !written.ok() && log) log(written.ToString());
    }

    // Sleep until the next deadline, a change on disk, or at most 100 ms (the mailbox and `stop`).
    milliseconds wait(100);
    if (enforce_due) wait = milliseconds(0);
    auto woke = watcher.Wait(wait);
    if (!woke.ok()) return woke.status();
    if (*woke) enforce_due = true;
  }
  if (Status written = agent.WriteStatusFile(WallNow()); !written.ok() && log) log(written.ToString());
  return Status::Ok();
}

}  // namespace appban::agent
