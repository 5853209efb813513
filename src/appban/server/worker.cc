#include "appban/server/worker.h"
#include "appban/store/open.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>

#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/decide/admin.h"
#include "appban/identity/oidc.h"
#include "appban/net/server.h"
#include "appban/net/tls.h"
#include "appban/policy/keys.h"
#include "appban/protocol/messages.h"
#include "appban/server/admin_api.h"
#include "appban/server/admin_reader.h"
#include "appban/server/assessment_pool.h"
#include "appban/server/auth_providers.h"
#include "appban/server/bundle_hub.h"
#include "appban/server/checkin_writer.h"
#include "appban/server/console.h"
#include "appban/server/console_session.h"
#include "appban/server/console_sign_in.h"
#include "appban/server/context.h"
#include "appban/server/device_api.h"
#include "appban/server/key_ring.h"
#include "appban/server/mdm_sync.h"
#include "appban/store/change_listener.h"

namespace appban::server {
namespace {

// Publishes made by other workers are noticed within this period (on PostgreSQL, while a listening
// connection is up, a notification wakes the workers and the store is looked at only every
// database_catch_up_seconds).
constexpr auto kRefreshPeriod = std::chrono::milliseconds(200);
// How many nice levels the assessment pool's threads run below the request thread.
constexpr int kAssessmentNiceBelowRequests = 3;
// How many nice levels the admin reader's thread runs below the request thread: device requests
// first, administrators' listings in the time left.
constexpr int kAdminReadNiceBelowRequests = 3;

class MetricsObserver : public net::ServerObserver {
 public:
  explicit MetricsObserver(MetricsSlot& slot) : slot_(slot) {}
  void OnConnectionOpened() override { slot_.ConnectionOpened(); }
  void OnConnectionClosed() override { slot_.ConnectionClosed(); }
  void OnRequestCompleted(std::string_view, std::string_view path, int status, double seconds) override {
    slot_.RecordRequest(RouteOf(path), status, std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9)));
  }

 private:
  MetricsSlot& slot_;
};

class Worker : public FleetNotifier {
 public:
  Worker(const ServerConfig& config, const WorkerInputs& inputs) : config_(config), inputs_(inputs) {}

  int Run() {
    auto failed = [&](const std::string& what, const Status& status) {
      spdlog::error("worker {}: {}: {}", inputs_.worker_index, what, status.ToString());
      return 1;
    };
    auto database = config_.Database();
    if (!database.ok()) return failed("reading the database password", database.status());
    auto store = store::OpenStore(*database);
    if (!store.ok()) return failed("opening the policy store", store.status());
    auto fleet = store::OpenFleetStore(*database);
    if (!fleet.ok()) return failed("opening the fleet store", fleet.status());
    auto writer_fleet = store::OpenFleetStore(*database, store::FleetConnection::kBatchWriter);
    if (!writer_fleet.ok()) return failed("opening the fleet store", writer_fleet.status());
    auto assessment_fleet = store::OpenFleetStore(*database);
    if (!assessment_fleet.ok()) return failed("opening the fleet store", assessment_fleet.status());
    auto reader_store = store::OpenStore(*database);
    if (!reader_store.ok()) return failed("opening the policy store", reader_store.status());
    auto reader_fleet = store::OpenFleetStore(*database);
    if (!reader_fleet.ok()) return failed("opening the fleet store", reader_fleet.status());
    auto keys = KeyRing::Load(config_.data_dir + "/keys");
    if (!keys.ok()) return failed("loading the policy signing key", keys.status());
    keys_.emplace(std::move(*keys));

    boost::asio::io_context io(1);
    MetricsSlot slot = inputs_.metrics->Slot(static_cast<uint32_t>(inputs_.worker_index));
    slot.SetUp(true, static_cast<uint64_t>(getpid()));
    hub_ = std::make_unique<BundleHub>(**store, keys_->trusted());
    hub_->SetKeys(keys_->trusted(), keys_->rotations());
    if (auto refreshed = hub_->Refresh(); !refreshed.ok())
      return failed("loading the latest bundle", refreshed.status());
    CheckinWriter writer(io, std::move(*writer_fleet), *inputs_.generations);
    AssessmentPool::Options pool_options;
    // Started before this thread lowers its own priority: the pool goes a few levels further down,
    // so the request thread preempts an assessment as soon as a request arrives.
    pool_options.nice_increment = static_cast<int>(config_.request_thread_nice) + kAssessmentNiceBelowRequests;
    AssessmentPool assessments(io, std::move(*assessment_fleet), pool_options);
    AdminReader::Options reader_options;
    reader_options.nice_increment = static_cast<int>(config_.request_thread_nice) + kAdminReadNiceBelowRequests;
    AdminReader admin_reader(io, std::move(*reader_store), std::move(*reader_fleet), reader_options);

    context_.config = &config_;
    context_.store = store->get();
    context_.fleet = fleet->get();
    context_.signing_key = &keys_->active();
    context_.refresh_keys = [this] { RefreshKeys(); };
    context_.metrics = &slot;
    context_.notifier = this;
    context_.generations = inputs_.generations;
    context_.assessments = &assessments;
    context_.admin_reader = &admin_reader;
    // The providers' keys are fetched by the verifier's own thread, never on this io thread: a slow
    // or unreachable provider cannot stall the device protocol (identity/oidc.h).
    std::optional<identity::OidcVerifier> oidc;
    if (!config_.identity.oidc.empty()) {
      oidc.emplace(config_.identity.oidc, identity::HttpFetcher());
      oidc->Start();
      context_.oidc = &*oidc;
    }
    context_.clock = decide::SystemClockNow;
    // Administrators read what was just published, even when another worker published it.
    context_.latest_bundle = [this]() -> const verify::PublishedBundle& {
      CatchUp();
      return hub_->latest();
    };
    context_.data_dir = config_.data_dir;
    // Without the key the console cannot sign anyone in; the device protocol and bearer tokens
    // carry on.
    if (auto session_key = LoadOrCreateSessionKey(config_.data_dir); session_key.ok()) {
      context_.console_session_key = std::move(*session_key);
    } else {
      spdlog::error("console sessions disabled: {}", session_key.status().ToString());
    }
    context_.worker_index = inputs_.worker_index;
    context_.sign_in_limiter = inputs_.sign_in_limiter;

    DeviceApiSettings settings;
    settings.checkin_interval = config_.devices.checkin_interval_seconds;
    settings.longpoll_timeout = config_.devices.longpoll_timeout_seconds;
    settings.enrollment_burst = config_.enrollment.rate_limit_burst;
    settings.enrollment_per_minute = config_.enrollment.rate_limit_per_minute;
    settings.enrollment_limiter = inputs_.enrollment_limiter;
    devices_ = std::make_unique<DeviceApi>(context_, *hub_, writer, settings, [this] { CatchUp(); });

    net::ServerOptions options;
    options.read_header_timeout = std::chrono::seconds(config_.timeouts.read_header_seconds);
    options.read_body_timeout = std::chrono::seconds(config_.timeouts.body_seconds);
    options.idle_keepalive_timeout = std::chrono::seconds(
        std::max<uint32_t>(config_.timeouts.idle_seconds, config_.devices.longpoll_timeout_seconds + 30));
    // listen.max_connections sized the number of workers; each worker takes what its descriptor
    // limit allows, so an uneven spread never refuses a device another worker could have served.
    options.max_connections = net::DefaultMaxConnections();
    if (!inputs_.certificate_pem.empty()) {
      auto tls = net::MakeServerContext(inputs_.certificate_pem, inputs_.private_key_pem);
      if (!tls.ok()) return failed("setting up TLS", tls.status());
      if (!inputs_.client_ca_pem.empty()) {
        Status clients = net::RequestClientCertificates(**tls, inputs_.client_ca_pem, inputs_.client_crl_pem);
        if (!clients.ok()) return failed("setting up client certificates", clients);
      }
      options.tls = *tls;
      client_tls_ = inputs_.client_ca_pem.empty() ? nullptr : *tls;
      loaded_crl_pem_ = inputs_.client_crl_pem;
    }
    MetricsObserver observer(slot);
    net::HttpServer server(
        io, options,
        [this](net::HttpRequest request, net::Responder respond) { Route(std::move(request), std::move(respond)); },
        [this](std::string_view method, std::string_view path) { return BodyLimit(method, path); }, &observer);
    if (auto adopted = server.Adopt(inputs_.listening_fd); !adopted.ok()) return failed("accepting", adopted);
    server.SetRequestGate([this](const net::HttpRequest& head) { return Gate(head); });
    server.SetLongPollDrainer(
        [this] { hub_->DrainPolls(503, "unavailable", "the server is shutting down; poll again shortly"); });

    boost::asio::steady_timer refresh(io);
    std::function<void()> schedule_refresh = [&] {
      refresh.expires_after(kRefreshPeriod);
      refresh.async_wait([&](const boost::system::error_code& error) {
        if (error) return;
        Tick(slot);
        schedule_refresh();
      });
    };
    schedule_refresh();

    // The compliance summary the console's overview reads (admin_api.h): each worker looks every
    // period and computes it when it is that old, the workers' first looks spread over the period
    // so that one of them usually finds it computed by another.
    boost::asio::steady_timer compliance_refresh(io);
    const uint32_t compliance_period = config_.console.compliance_refresh_seconds;
    std::function<void(std::chrono::milliseconds)> schedule_compliance = [&](std::chrono::milliseconds after) {
      compliance_refresh.expires_after(after);
      compliance_refresh.async_wait([&](const boost::system::error_code& error) {
        if (error) return;
        RefreshComplianceSummary(context_, compliance_period);
        schedule_compliance(std::chrono::seconds(compliance_period));
      });
    };
    if (compliance_period > 0) {
      const auto period = std::chrono::milliseconds(std::chrono::seconds(compliance_period));
      schedule_compliance(std::chrono::milliseconds(1000) + (period * (inputs_.worker_index % 8)) / 8);
    }

    // Several nodes on one PostgreSQL database: what another node commits is heard at once.
    // Declared after `io`, so destroyed (its thread joined) before it: nothing posts to a dead loop.
    std::unique_ptr<store::ChangeListener> listener;
    if (config_.UsesPostgres()) {
      store::ChangeListener::Options listen_options;
      listen_options.url = database->location;
      listen_options.password = database->password;
      store::ChangeListener::Callbacks callbacks;
      callbacks.on_bundle = [&io, this](int64_t version) {
        boost::asio::post(io, [this, version] { BundleNotified(version); });
      };
      // The generations are shared memory, safe from any thread; the polls belong to the io thread.
      // Only a revocation ends the device's waiting long-polls (403): a change its own check-in
      // made only makes the cached copies stale (answering those polls 403 told a healthy agent it
      // was revoked, which it does not retry).
      callbacks.on_device = [&io, this](const std::string& device_id, bool revoked) {
        inputs_.generations->Bump(device_id);
        if (revoked) boost::asio::post(io, [this, device_id] { hub_->DropDevicePolls(device_id); });
      };
      // Notifications sent while this worker was not listening are lost: every cached device may
      // be stale (the next request of each reads its row again) and a bundle may be waiting.
      callbacks.on_connected = [&io, this] {
        inputs_.generations->BumpEpoch();
        boost::asio::post(io, [this] { BundleNotified(0); });
      };
      callbacks.on_lost = [this](const Status& why) {
        spdlog::warn("worker {}: not listening for other nodes' changes ({}); looking for new bundles every {} ms",
                     inputs_.worker_index, why.ToString(), kRefreshPeriod.count());
      };
      auto started = store::ChangeListener::Start(std::move(listen_options), std::move(callbacks));
      if (!started.ok()) return failed("listening for other nodes' changes", started.status());
      listener = std::move(*started);
      change_listener_ = listener.get();
    }

    bool stopping = false;
    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& error, int) {
      if (error || stopping) return;
      stopping = true;
      refresh.cancel();
      compliance_refresh.cancel();
      server.BeginShutdown([&] {
        writer.Flush();
        io.stop();
      });
    });
    LowerRequestThreadPriority();
    spdlog::info("worker {} serving (pid {})", inputs_.worker_index, getpid());
    io.run();
    // Commit what the writer still holds before the process ends (its destructor joins).
    writer.Flush();
    slot.SetUp(false, static_cast<uint64_t>(getpid()));
    spdlog::info("worker {} stopped", inputs_.worker_index);
    return 0;
  }

  // A rotated key (keys/active names another key): sign with it, and send the rotation
  // statements with every bundle from now on.
  void RefreshKeys() {
    auto changed = keys_->Refresh();
    if (!changed.ok()) {
      spdlog::error("worker {}: reloading the policy keys: {}", inputs_.worker_index, changed.status().ToString());
      return;
    }
    if (!*changed) return;
    context_.signing_key = &keys_->active();
    hub_->SetKeys(keys_->trusted(), keys_->rotations());
    spdlog::info("worker {}: policy key is now {} ({} rotation statement(s))", inputs_.worker_index,
                 keys_->active().key_id(), keys_->rotations().size());
  }

  void BundlePublished() override {
    RefreshKeys();
    auto refreshed = hub_->Refresh();
    if (!refreshed.ok()) {
      spdlog::error("worker {}: reloading the published bundle: {}", inputs_.worker_index,
                    refreshed.status().ToString());
      return;
    }
    hub_->WakePolls();
    devices_->InvalidateGroups();
    context_.metrics->SetPolicyVersion(static_cast<uint64_t>(hub_->latest().version));
  }

  void DeviceRevoked(const std::string& device_id) override {
    // Every worker's cached copy of the device is now stale: its next request reads the row
    // (revoked: 403).
    inputs_.generations->Bump(device_id);
    hub_->DropDevicePolls(device_id);
  }

  // This (request) thread yields to the writer thread, which already runs: nice applies per thread
  // on Linux, and raising the writer instead would need CAP_SYS_NICE.
  void LowerRequestThreadPriority() {
    if (config_.request_thread_nice == 0) return;
    const auto thread = static_cast<id_t>(gettid());
    errno = 0;
    int current = getpriority(PRIO_PROCESS, thread);
    if (current == -1 && errno != 0) return;
    int lowered = std::min(19, current + static_cast<int>(config_.request_thread_nice));
    if (setpriority(PRIO_PROCESS, thread, lowered) != 0) {
      spdlog::warn("worker {}: cannot lower the request thread's priority: {}", inputs_.worker_index,
                   std::strerror(errno));
    }
  }

  // Loads a bundle another worker published since the last tick. The publishing worker raises
  // the shared policy-version gauge after its commit, so the common case costs one atomic load.
  void CatchUp() {
    if (inputs_.metrics->shared().policy_version.load(std::memory_order_acquire) <=
        static_cast<uint64_t>(hub_->latest().version)) {
      return;
    }
    RefreshKeys();
    auto refreshed = hub_->Refresh();
    if (refreshed.ok() && *refreshed) {
      hub_->WakePolls();
      devices_->InvalidateGroups();
      context_.metrics->SetPolicyVersion(static_cast<uint64_t>(hub_->latest().version));
    }
  }

 private:
  // A node (maybe this one) published `version` (0: look anyway, a notification may be lost).
  void BundleNotified(int64_t version) {
    if (version != 0 && version <= hub_->latest().version) return;
    LookForBundle(*context_.metrics);
  }

  void Tick(MetricsSlot& slot) {
    auto now = std::chrono::steady_clock::now();
    bool listening = change_listener_ != nullptr && change_listener_->listening();
    if (!listening || now >= next_bundle_look_) {
      LookForBundle(slot);
      next_bundle_look_ = now + std::chrono::seconds(config_.database_catch_up_seconds);
    } else {
      CatchUp();  // this node's other workers: one atomic load
    }
    hub_->ExpirePolls(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
    // Gauges: the slot only has increments, so move it by the difference.
    int64_t waiting = static_cast<int64_t>(hub_->waiting());
    for (; reported_waiting_ < waiting; ++reported_waiting_) {
      slot.LongpollStarted();
      slot.DeviceConnected();
    }
    for (; reported_waiting_ > waiting; --reported_waiting_) {
      slot.LongpollEnded();
      slot.DeviceDisconnected();
    }
    ReloadClientCrlsIfChanged();
  }

  void LookForBundle(MetricsSlot& slot) {
    auto refreshed = hub_->Refresh();
    if (!refreshed.ok() && refreshed.status().code() == StatusCode::kNotFound) {
      // Another worker published with a key rotated in since this one loaded its keys.
      RefreshKeys();
      refreshed = hub_->Refresh();
    }
    if (refreshed.ok() && *refreshed) {
      spdlog::info("worker {}: policy bundle {} published; waking {} polls", inputs_.worker_index,
                   hub_->latest().version, hub_->waiting());
      hub_->WakePolls();
      devices_->InvalidateGroups();
      slot.SetPolicyVersion(static_cast<uint64_t>(hub_->latest().version));
    } else if (!refreshed.ok()) {
      spdlog::warn("worker {}: checking for a new bundle: {}", inputs_.worker_index, refreshed.status().ToString());
    }
  }

  // A revoked card must stop working without a restart: every crl_reload_seconds the CRL file is
  // looked at, and when it changed (modified, replaced or resized) it is loaded for the handshakes
  // that follow. A file that does not load leaves the lists in force, and says so.
  void ReloadClientCrlsIfChanged() {
    const ClientCertificateConfig& clients = config_.identity.client_certificates;
    if (client_tls_ == nullptr || clients.crl_file.empty()) return;
    auto now = std::chrono::steady_clock::now();
    if (now < next_crl_check_) return;
    next_crl_check_ = now + std::chrono::seconds(clients.crl_reload_seconds);
    struct stat info {};
    if (::stat(clients.crl_file.c_str(), &info) != 0) {
      spdlog::warn("worker {}: identity.client_certificates.crl_file {}: {}; the CRLs loaded before stay in force",
                   inputs_.worker_index, clients.crl_file, std::strerror(errno));
      return;
    }
    CrlFileStamp stamp{info.st_ino, info.st_size, info.st_mtim.tv_sec, info.st_mtim.tv_nsec};
    if (stamp == crl_stamp_) return;
    crl_stamp_ = stamp;
    auto crl = ReadFileToString(clients.crl_file, net::kMaxCrlFileBytes);
    // Touched but the same lists (or, at the first look, what the supervisor read at start):
    // nothing to load, and the TLS sessions clients hold stay resumable.
    if (crl.ok() && *crl == loaded_crl_pem_) return;
    Status loaded = crl.ok() ? net::ReplaceClientCrls(*client_tls_, inputs_.client_ca_pem, *crl) : crl.status();
    if (!loaded.ok()) {
      spdlog::error(
          "worker {}: identity.client_certificates.crl_file {} changed but cannot be used: {}; the CRLs "
          "loaded before stay in force",
          inputs_.worker_index, clients.crl_file, loaded.ToString());
      return;
    }
    loaded_crl_pem_ = std::move(*crl);
    spdlog::info("worker {}: loaded the changed CRLs of {} for the client certificates presented from now on",
                 inputs_.worker_index, clients.crl_file);
  }

  // Decided from the headers, before any body is read: an admin request that carries a body is
  // authenticated and its role checked first, so that nobody without a valid token can make the
  // worker receive (up to apk_max_bytes of) an upload. Requests without a body are checked once,
  // by their handler.
  std::optional<net::HttpResponse> Gate(const net::HttpRequest& head) {
    if (!head.path.starts_with(kAdminPathPrefix)) return std::nullopt;
    std::string_view length = head.Header("content-length");
    bool has_body = !head.Header("transfer-encoding").empty() || (!length.empty() && length != "0");
    if (!has_body) return std::nullopt;
    return AdminRequestGate(context_, head);
  }

  size_t BodyLimit(std::string_view method, std::string_view path) const {
    if (method == "GET" || method == "HEAD" || method == "DELETE") return 0;
    if (path == "/v1/checkin") return config_.limits.inventory_max_bytes;
    if (path.starts_with(kAdminPathPrefix)) return AdminBodyLimit(config_, method, path);
    return config_.limits.json_max_bytes;
  }

  void Route(net::HttpRequest request, net::Responder respond) {
    const std::string& path = request.path;
    const std::string& method = request.method;
    auto only = [&](std::string_view allowed) {
      if (method == allowed) return true;
      net::HttpResponse response =
          net::MakeErrorResponse(405, "method_not_allowed", path + " accepts " + std::string(allowed));
      response.headers.emplace_back("Allow", std::string(allowed));
      respond(std::move(response));
      return false;
    };
    if (path == "/v1/checkin") {
      if (!only("POST")) return;
      context_.metrics->RecordCheckin();
      return devices_->Checkin(request, std::move(respond));
    }
    if (path == "/v1/poll") {
      if (only("GET")) devices_->Poll(request, std::move(respond));
      return;
    }
    if (path == "/v1/enroll") {
      if (only("POST")) devices_->Enroll(request, std::move(respond));
      return;
    }
    if (path == "/v1/unenroll") {
      if (only("POST")) devices_->Unenroll(request, std::move(respond));
      return;
    }
    if (path.starts_with(kAdminPathPrefix)) return HandleAdminRequest(context_, std::move(request), std::move(respond));
    if (path == kAuthProvidersPath) {
      if (only("GET")) respond(AuthProvidersResponse(config_.identity.oidc));
      return;
    }
    if (path == kSessionPath) return HandleSessionRequest(context_, std::move(request), std::move(respond));
    if (path.starts_with("/console/")) return HandleConsoleSignIn(context_, std::move(request), std::move(respond));
    if (IsConsolePath(path)) return respond(ServeConsole(request));
    if (path == "/healthz") {
      // POST is accepted too (body ignored): the benchmarks send the same request here as to
      // /v1/checkin to measure what the transport alone costs.
      if (method != "GET" && method != "POST" && method != "HEAD") return (void)only("GET");
      net::HttpResponse response;
      response.body = "{\"status\":\"ok\",\"worker\":" + std::to_string(inputs_.worker_index) +
                      ",\"policy_version\":" + std::to_string(hub_->latest().version) + "}";
      return respond(std::move(response));
    }
    if (path == "/readyz") {
      if (method != "GET" && method != "HEAD") return (void)only("GET");
      return respond(Readiness());
    }
    if (path == "/metrics") {
      if (!only("GET")) return;
      if (auto refusal = RefuseMetrics(request)) return respond(std::move(*refusal));
      std::vector<ExtraGauge> extra;
      // From the database, not this worker's memory: a device's verdict may have been recorded by
      // any worker, or before a restart. One partial-index count. Left out (and logged) when the
      // database cannot answer, so the rest of the scrape still arrives.
      if (auto mismatched = context_.fleet->CountRulesHashMismatches(); mismatched.ok()) {
        extra.push_back(ExtraGauge{"appban_devices_rules_hash_mismatch",
                                   "Enrolled devices whose last check-in reported a rules_hash that is not the "
                                   "hash of the bundle version they claim to enforce.",
                                   {},
                                   static_cast<double>(*mismatched)});
      } else {
        spdlog::warn("metrics: counting rules_hash mismatches failed: {}", mismatched.status().ToString());
      }
      AddFleetSourceGauges(extra);
      auto text = RenderPrometheus(*inputs_.metrics, extra);
      if (!text.ok()) return respond(net::MakeErrorResponse(500, "internal", text.status().message()));
      net::HttpResponse response;
      response.content_type = std::string(kPrometheusContentType);
      response.body = std::move(*text);
      return respond(std::move(response));
    }
    respond(net::MakeErrorResponse(404, "not_found", "no such endpoint: " + path));
  }

  // GET /readyz, for load balancers: 200 while this worker's database answers and its schema is
  // the one this binary migrates to; 503 naming why not (unreachable or busy, or migrated by a
  // newer appban), so traffic goes to nodes that can serve. /healthz says only that the process
  // answers.
  net::HttpResponse Readiness() {
    auto schema = context_.fleet->ReadSchemaState();
    if (!schema.ok()) {
      return net::MakeErrorResponse(503, "not_ready", "database unavailable: " + schema.status().message());
    }
    if (!schema->Current()) {
      return net::MakeErrorResponse(503, "not_ready",
                                    "database schema version " + std::to_string(schema->current) +
                                        ", this appban serves version " + std::to_string(schema->expected));
    }
    net::HttpResponse response;
    response.body = "{\"status\":\"ready\",\"schema_version\":" + std::to_string(schema->current) +
                    ",\"worker\":" + std::to_string(inputs_.worker_index) + "}";
    return response;
  }

  // Devices per source and platform (agent, amapi, ...) and each MDM connector's last sync, from
  // the database: the MDM sync process writes its outcome there (mdm_sync.h).
  void AddFleetSourceGauges(std::vector<ExtraGauge>& extra) {
    if (auto counts = context_.fleet->CountDevicesBySource(); counts.ok()) {
      // Labelled by source only: a platform is whatever an agent said at enrolment, and a client
      // must not be able to add series.
      std::map<std::string, std::pair<int64_t, int64_t>> by_source;
      for (const store::SourceCount& count : *counts) {
        by_source[count.source].first += count.devices;
        by_source[count.source].second += count.cannot_enforce;
      }
      for (const auto& [source, totals] : by_source) {
        extra.push_back(ExtraGauge{"appban_devices",
                                   "Non-revoked devices by source (agent, or the MDM connector kind they come from).",
                                   {{"source", source}},
                                   static_cast<double>(totals.first)});
        extra.push_back(ExtraGauge{"appban_devices_cannot_enforce",
                                   "MDM devices on which their MDM cannot enforce appban's bans.",
                                   {{"source", source}},
                                   static_cast<double>(totals.second)});
      }
    } else {
      spdlog::warn("metrics: counting devices by source failed: {}", counts.status().ToString());
    }
    if (!config_.mdm.HasConnectors()) return;
    auto statuses = ReadMdmStatuses(*context_.fleet, config_);
    if (!statuses.ok()) {
      spdlog::warn("metrics: reading the MDM sync status failed: {}", statuses.status().ToString());
      return;
    }
    for (const MdmSyncStatus& status : *statuses) {
      std::vector<std::pair<std::string, std::string>> labels{{"connector", status.connector},
                                                              {"source", status.source}};
      auto gauge = [&](const char* name, const char* help, double value) {
        extra.push_back(ExtraGauge{name, help, labels, value});
      };
      gauge("appban_mdm_sync_up", "1 when the connector's last sync succeeded.", status.state == "ok" ? 1 : 0);
      gauge("appban_mdm_sync_consecutive_failures", "Failed syncs in a row (retried with back-off).",
            static_cast<double>(status.consecutive_failures));
      gauge("appban_mdm_sync_last_success_timestamp_seconds", "Unix time of the connector's last successful sync.",
            static_cast<double>(status.last_success_at));
      gauge("appban_mdm_sync_duration_seconds", "How long the connector's last sync took.",
            static_cast<double>(status.duration_ms) / 1000.0);
      gauge("appban_mdm_pushed_bundle_version", "The last bundle version the connector pushed to its MDM.",
            static_cast<double>(status.pushed_version));
      gauge("appban_mdm_devices", "Devices the connector's last sync imported.", static_cast<double>(status.devices));
      gauge("appban_mdm_devices_violating", "Imported devices still reporting a banned app installed.",
            static_cast<double>(status.violating));
    }
  }

  // /metrics shows the fleet's size, compliance and enrolment counts: with a configured scrape
  // token it needs that token; without one it answers loopback clients only (a Prometheus on the
  // same host, or behind an SSH tunnel).
  std::optional<net::HttpResponse> RefuseMetrics(const net::HttpRequest& request) const {
    if (!inputs_.metrics_token.empty()) {
      std::string_view presented = protocol::BearerCredential(request.Header("authorization"));
      if (!presented.empty() && ConstantTimeEquals(presented, inputs_.metrics_token)) return std::nullopt;
      net::HttpResponse refusal = net::MakeErrorResponse(
          401, "unauthenticated", "GET /metrics needs \"Authorization: Bearer <the token in metrics.token_file>\"");
      refusal.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"appban-metrics\"");
      return refusal;
    }
    std::string_view address = request.remote_address;
    if (address.starts_with("::ffff:")) address.remove_prefix(7);  // IPv4 client on an IPv6 socket
    if (IsLoopbackAddress(address)) return std::nullopt;
    return net::MakeErrorResponse(403, "forbidden",
                                  "GET /metrics is served to loopback clients only; set metrics.token_file to let a "
                                  "scraper on another host in with a bearer token");
  }

  const ServerConfig& config_;
  const WorkerInputs& inputs_;
  WorkerContext context_;
  std::optional<KeyRing> keys_;
  std::unique_ptr<BundleHub> hub_;
  store::ChangeListener* change_listener_ = nullptr;  // PostgreSQL only; owned by Run
  std::chrono::steady_clock::time_point next_bundle_look_{};
  std::unique_ptr<DeviceApi> devices_;
  int64_t reported_waiting_ = 0;
  // Mutual TLS: the context whose client CRLs are reloaded, and what the CRL file looked like.
  struct CrlFileStamp {
    ino_t inode = 0;
    off_t size = 0;
    time_t modified_seconds = 0;
    long modified_nanoseconds = 0;
    bool operator==(const CrlFileStamp&) const = default;
  };
  std::shared_ptr<boost::asio::ssl::context> client_tls_;
  CrlFileStamp crl_stamp_;
  std::string loaded_crl_pem_;  // the lists in force
  std::chrono::steady_clock::time_point next_crl_check_{};
};

}  // namespace

Route RouteOf(std::string_view path) {
  if (path == "/v1/checkin") return Route::kCheckin;
  if (path == "/v1/poll") return Route::kPoll;
  if (path == "/v1/enroll") return Route::kEnroll;
  if (path.starts_with(kAdminPathPrefix)) return Route::kAdmin;
  if (path == "/healthz" || path == "/readyz") return Route::kHealth;
  if (path == "/metrics") return Route::kMetrics;
  return Route::kOther;
}

int RunWorker(const ServerConfig& config, const WorkerInputs& inputs) {
  Worker worker(config, inputs);
  return worker.Run();
}

}  // namespace appban::server
