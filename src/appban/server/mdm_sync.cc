#include "appban/server/mdm_sync.h"
#include "appban/store/open.h"

#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <ctime>

#include <spdlog/spdlog.h>

#include "appban/mdm/connectors.h"
#include "appban/mdm/fleet_import.h"
#include "appban/server/bundle_hub.h"
#include "appban/server/config.h"
#include "appban/server/key_ring.h"
#include "appban/store/store.h"

namespace appban::server {
namespace {

constexpr std::string_view kStatusPrefix = "mdm.status.";
constexpr std::string_view kAuditActor = "mdm-sync";
constexpr size_t kMaxStatusBytes = 16 * 1024;

UnixSeconds SystemNow() { return static_cast<UnixSeconds>(std::time(nullptr)); }

Json TimeJson(UnixSeconds at) { return at == 0 ? Json(nullptr) : Json(FormatTimestamp(at)); }

UnixSeconds TimeFrom(const Json& json, std::string_view key) {
  std::string text = StringOr(json, key);
  if (text.empty()) return 0;
  Result<UnixSeconds> at = ParseTimestamp(text);
  return at.ok() ? *at : 0;
}

}  // namespace

Json MdmSyncStatus::ToJson() const {
  return Json{{"connector", connector},
              {"source", source},
              {"state", state},
              {"error", error.empty() ? Json(nullptr) : Json(error)},
              {"last_run_at", TimeJson(last_run_at)},
              {"last_success_at", TimeJson(last_success_at)},
              {"consecutive_failures", consecutive_failures},
              {"runs", runs},
              {"bundle_version", bundle_version},
              {"pushed_version", pushed_version},
              {"pushed_at", TimeJson(pushed_at)},
              {"pushes", pushes},
              {"devices", devices},
              {"violating", violating},
              {"cannot_enforce", cannot_enforce},
              {"gone", gone},
              {"duration_ms", duration_ms},
              {"next_run_at", TimeJson(next_run_at)}};
}

Result<MdmSyncStatus> MdmSyncStatus::FromJson(const Json& json) {
  if (!json.is_object()) return Status::Corruption("MDM sync status is not an object");
  MdmSyncStatus status;
  status.connector = StringOr(json, "connector");
  status.source = StringOr(json, "source");
  status.state = StringOr(json, "state");
  status.error = StringOr(json, "error");
  status.last_run_at = TimeFrom(json, "last_run_at");
  status.last_success_at = TimeFrom(json, "last_success_at");
  status.consecutive_failures = IntOr(json, "consecutive_failures");
  status.runs = IntOr(json, "runs");
  status.bundle_version = IntOr(json, "bundle_version");
  status.pushed_version = IntOr(json, "pushed_version");
  status.pushed_at = TimeFrom(json, "pushed_at");
  status.pushes = IntOr(json, "pushes");
  status.devices = IntOr(json, "devices");
  status.violating = IntOr(json, "violating");
  status.cannot_enforce = IntOr(json, "cannot_enforce");
  status.gone = IntOr(json, "gone");
  status.duration_ms = IntOr(json, "duration_ms");
  status.next_run_at = TimeFrom(json, "next_run_at");
  return status;
}

std::string MdmStatusKey(std::string_view connector) { return std::string(kStatusPrefix) + std::string(connector); }

Result<std::vector<MdmSyncStatus>> ReadMdmStatuses(store::FleetStore& fleet, const ServerConfig& config) {
  std::vector<MdmSyncStatus> statuses;
  for (const auto& connector : config.mdm.Connectors()) {
    APPBAN_ASSIGN_OR_RETURN(std::optional<std::string> text, fleet.GetSetting(MdmStatusKey(connector.name)));
    MdmSyncStatus status;
    if (text) {
      Result<Json> json = ParseJsonBounded(*text, kMaxStatusBytes, 8, "MDM sync status");
      if (json.ok()) {
        Result<MdmSyncStatus> parsed = MdmSyncStatus::FromJson(*json);
        if (parsed.ok()) status = std::move(*parsed);
      }
    }
    status.connector = connector.name;
    if (status.source.empty()) status.source = connector.source;
    if (status.state.empty()) status.state = config.mdm.sync.enabled ? "starting" : "disabled";
    statuses.push_back(std::move(status));
  }
  return statuses;
}

// One connector's loop state and its steps, on its own thread with its own connections.
class MdmSync::Runner {
 public:
  Runner(const MdmSyncOptions& options, mdm::MdmConnector& connector) : options_(options), connector_(connector) {}

  Status Open() {
    APPBAN_ASSIGN_OR_RETURN(store_, store::OpenStore(options_.database));
    APPBAN_ASSIGN_OR_RETURN(fleet_, store::OpenFleetStore(options_.database));
    APPBAN_ASSIGN_OR_RETURN(KeyRing keys, KeyRing::Load(options_.key_dir));
    keys_.emplace(std::move(keys));
    hub_ = std::make_unique<BundleHub>(*store_, keys_->trusted());
    hub_->SetKeys(keys_->trusted(), keys_->rotations());
    status_.connector = std::string(connector_.name());
    status_.source = std::string(mdm::MdmSourceName(connector_.source()));
    status_.state = "starting";
    // A restart carries on from what the previous process pushed.
    if (auto text = fleet_->GetSetting(MdmStatusKey(status_.connector)); text.ok() && *text) {
      if (auto json = ParseJsonBounded(**text, kMaxStatusBytes, 8, "MDM sync status"); json.ok()) {
        if (auto previous = MdmSyncStatus::FromJson(*json); previous.ok()) {
          status_.pushed_version = previous->pushed_version;
          status_.pushed_at = previous->pushed_at;
          status_.runs = previous->runs;
          status_.last_success_at = previous->last_success_at;
        }
      }
    }
    return Status::Ok();
  }

  // The newest published version (a primary-key lookup), reloading the bundle when it changed.
  int64_t LatestVersion() {
    if (auto keys_changed = keys_->Refresh(); keys_changed.ok() && *keys_changed) {
      hub_->SetKeys(keys_->trusted(), keys_->rotations());
    }
    if (Result<bool> refreshed = hub_->Refresh(); !refreshed.ok()) {
      spdlog::warn("mdm {}: reading the latest bundle: {}", status_.connector, refreshed.status().ToString());
    }
    return hub_->latest().version;
  }

  // Apply, then inventory and import. The outcome is in status_ (and stored).
  bool RunOnce() {
    const auto started = std::chrono::steady_clock::now();
    const UnixSeconds now = options_.now();
    status_.last_run_at = now;
    ++status_.runs;
    Status outcome = Sync(now);
    status_.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    if (outcome.ok()) {
      status_.state = hub_->latest().version == 0 ? "waiting" : "ok";
      status_.error.clear();
      status_.consecutive_failures = 0;
      status_.last_success_at = now;
    } else {
      status_.state = "error";
      status_.error = outcome.ToString();
      ++status_.consecutive_failures;
      spdlog::warn("mdm {}: sync failed ({} in a row): {}", status_.connector, status_.consecutive_failures,
                   status_.error);
    }
    return outcome.ok();
  }

  void Publish(UnixSeconds next_run_at) {
    status_.next_run_at = next_run_at;
    if (Status stored = fleet_->PutSetting(MdmStatusKey(status_.connector), status_.ToJson().dump()); !stored.ok()) {
      spdlog::warn("mdm {}: storing the sync status: {}", status_.connector, stored.ToString());
    }
  }

  const MdmSyncStatus& status() const { return status_; }

 private:
  Status Sync(UnixSeconds now) {
    const verify::PublishedBundle& latest = hub_->latest();
    status_.bundle_version = latest.version;
    if (latest.version == 0 || !latest.bundle) return Status::Ok();  // nothing to enforce yet
    APPBAN_ASSIGN_OR_RETURN(mdm::ConnectorReport applied, connector_.Apply(*latest.bundle));
    status_.pushes = static_cast<int64_t>(applied.pushes.size());
    for (const mdm::MdmPush& push : applied.pushes) {
      store::AuditRecord record;
      record.actor = std::string(kAuditActor);
      record.action = push.action;
      record.object = push.object;
      record.before = nullptr;
      record.after = push.what;
      record.at = now;
      APPBAN_RETURN_IF_ERROR(store_->AppendAudit(record));
    }
    std::string apply_error;
    if (!applied.failed) {
      if (!applied.empty || status_.pushed_version != latest.version) status_.pushed_at = now;
      status_.pushed_version = latest.version;
    } else {
      apply_error = "apply failed for some MDM objects (the next run retries them)";
    }
    mdm::ImportContext context;
    context.latest = &latest;
    context.pushed_version = status_.pushed_version;
    context.now = now;
    mdm::FleetImport import(*fleet_, status_.connector, context);
    Status listed = connector_.InventoryPages(
        *latest.bundle, [&import](std::vector<mdm::MdmDevice> page) { return import.Add(std::move(page)); });
    APPBAN_ASSIGN_OR_RETURN(mdm::ImportStats stats, import.Finish(listed.ok()));
    status_.devices = stats.devices;
    status_.violating = stats.violating;
    status_.cannot_enforce = stats.cannot_enforce;
    status_.gone = stats.gone;
    if (stats.refused > 0)
      spdlog::warn("mdm {}: {} device(s) refused, first: {}", status_.connector, stats.refused, stats.first_refusal);
    if (!listed.ok()) return listed;
    if (!apply_error.empty()) return Status::Unavailable(apply_error);
    return Status::Ok();
  }

  const MdmSyncOptions& options_;
  mdm::MdmConnector& connector_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::FleetStore> fleet_;
  std::optional<KeyRing> keys_;
  std::unique_ptr<BundleHub> hub_;
  MdmSyncStatus status_;
};

MdmSync::MdmSync(MdmSyncOptions options, std::vector<std::unique_ptr<mdm::MdmConnector>> connectors)
    : options_(std::move(options)), connectors_(std::move(connectors)) {
  if (!options_.now) options_.now = SystemNow;
}

MdmSync::~MdmSync() { Stop(); }

void MdmSync::Start() {
  for (size_t i = 0; i < connectors_.size(); ++i) threads_.emplace_back([this, i] { RunConnector(i); });
}

void MdmSync::Wake() {
  MutexLock lock(mutex_);
  ++wakes_;
  wake_.NotifyAll();
}

void MdmSync::Stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
    wake_.NotifyAll();
  }
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

bool MdmSync::WaitUntil(std::chrono::steady_clock::time_point deadline, uint64_t seen_wakes) {
  MutexLock lock(mutex_);
  while (!stopping_ && wakes_ == seen_wakes && std::chrono::steady_clock::now() < deadline) {
    wake_.WaitUntil(mutex_, deadline);
  }
  return !stopping_;
}

void MdmSync::RunConnector(size_t index) {
  mdm::MdmConnector& connector = *connectors_[index];
  Runner runner(options_, connector);
  if (Status opened = runner.Open(); !opened.ok()) {
    spdlog::error("mdm {}: cannot start: {}", connector.name(), opened.ToString());
    return;
  }
  using Clock = std::chrono::steady_clock;
  int64_t synced_version = -1;
  Clock::time_point next_run = Clock::now();
  auto backoff = options_.first_backoff;
  uint64_t seen_wakes = 0;
  {
    MutexLock lock(mutex_);
    seen_wakes = wakes_;
  }
  while (true) {
    const int64_t latest = runner.LatestVersion();
    bool woken = false;
    {
      MutexLock lock(mutex_);
      if (stopping_) return;
      woken = wakes_ != seen_wakes;
      seen_wakes = wakes_;
    }
    const bool healthy = runner.status().consecutive_failures == 0;
    // A publish runs a sync at once, unless the connector is backing off after a failure.
    const bool due = Clock::now() >= next_run || (healthy && (latest != synced_version || woken));
    if (!due) {
      auto deadline = std::min(next_run, Clock::now() + options_.publish_poll);
      if (!WaitUntil(deadline, seen_wakes)) return;
      continue;
    }
    const bool ok = runner.RunOnce();
    if (ok) {
      synced_version = latest;
      backoff = options_.first_backoff;
      next_run = Clock::now() + options_.interval;
    } else {
      next_run = Clock::now() + backoff;
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, options_.max_backoff);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::seconds>(next_run - Clock::now()).count();
    runner.Publish(options_.now() + std::max<int64_t>(0, wait));
  }
}

int RunMdmSyncProcess(const ServerConfig& config) {
  // SIGTERM/SIGINT are taken here, synchronously, by the main thread; the connector threads
  // inherit the blocked mask and never see them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  mdm::ConnectorOptions connector_options;
  connector_options.state_dir = config.data_dir + "/mdm";
  connector_options.retry.max_attempts = static_cast<int>(config.mdm.sync.request_attempts);
  auto connectors = mdm::CreateConnectors(config.mdm, connector_options);
  if (!connectors.ok()) {
    spdlog::error("mdm sync: {}", connectors.status().ToString());
    // Shown by GET /v1/admin/mdm and /metrics rather than left "starting".
    auto database = config.Database();
    if (auto fleet = database.ok() ? store::OpenFleetStore(*database) : database.status(); fleet.ok()) {
      for (const auto& connector : config.mdm.Connectors()) {
        MdmSyncStatus status;
        status.connector = connector.name;
        status.source = connector.source;
        status.state = "error";
        status.error = connectors.status().ToString();
        status.consecutive_failures = 1;
        if (Status stored = (*fleet)->PutSetting(MdmStatusKey(connector.name), status.ToJson().dump()); !stored.ok()) {
          spdlog::warn("mdm {}: storing the sync status: {}", connector.name, stored.ToString());
        }
      }
    }
    // Not restarted in a loop by the supervisor: a configuration error waits for a stop signal.
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    return 1;
  }
  MdmSyncOptions options;
  auto database = config.Database();
  if (!database.ok()) {
    spdlog::error("mdm sync: {}", database.status().ToString());
    return 1;
  }
  options.database = *database;
  options.key_dir = config.data_dir + "/keys";
  options.interval = std::chrono::seconds(config.mdm.sync.interval_seconds);
  options.max_backoff = std::chrono::seconds(config.mdm.sync.max_backoff_seconds);
  options.first_backoff = std::min<std::chrono::milliseconds>(options.first_backoff, options.max_backoff);
  spdlog::info("mdm sync: {} connector(s), every {} s and on every publish", connectors->size(),
               config.mdm.sync.interval_seconds);
  MdmSync sync(std::move(options), std::move(*connectors));
  sync.Start();
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  sync.Stop();
  return 0;
}

}  // namespace appban::server
