#include "appban/sim/fleet.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <iostream>
#include <random>
#include <sstream>

#include "appban/common/file.h"
#include "appban/net/async_client.h"
#include "appban/net/client.h"
#include "appban/net/retry_after.h"
#include "appban/net/tls.h"
#include "appban/protocol/messages.h"
#include "appban/sim/device.h"

namespace appban::sim {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint64_t kMaxStateFileBytes = 256ull << 20;  // 100k devices take ~15 MB
constexpr uint64_t kMaxCaFileBytes = 1 << 20;
constexpr std::string_view kStateFormat = "appban.simulate-state/1";
constexpr std::string_view kAgentVersion = "appban-simulate/0.1.0";
constexpr int kMaxAttempts = 30;  // per request, not counting 429 answers (those wait as told)
constexpr milliseconds kRequestTimeout{60'000};

int64_t NowMs() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
UnixSeconds NowSeconds() { return NowMs() / 1000; }

struct StateFile {
  std::vector<std::string> policy_keys_pem;
  std::map<uint64_t, DeviceIdentity> devices;
};

Result<StateFile> LoadState(const std::string& path) {
  StateFile state;
  if (path.empty() || access(path.c_str(), F_OK) != 0) return state;
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxStateFileBytes));
  try {
    Json json = Json::parse(text);
    if (json.at("format").get<std::string>() != kStateFormat)
      return Status::Corruption(path + ": not a simulator state file");
    state.policy_keys_pem = json.at("policy_keys").get<std::vector<std::string>>();
    for (const auto& d : json.at("devices")) {
      DeviceIdentity identity;
      identity.index = d.at("index").get<uint64_t>();
      identity.device_id = d.at("device_id").get<std::string>();
      identity.credential = d.at("credential").get<std::string>();
      identity.group = StringOr(d, "group");
      state.devices[identity.index] = std::move(identity);
    }
  } catch (const std::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
  return state;
}

Status SaveState(const std::string& path, const StateFile& state) {
  Json devices = Json::array();
  for (const auto& [index, d] : state.devices) {
    devices.push_back({{"index", index}, {"device_id", d.device_id}, {"credential", d.credential}, {"group", d.group}});
  }
  Json json{{"format", kStateFormat}, {"policy_keys", state.policy_keys_pem}, {"devices", devices}};
  // Device credentials: readable by the owner only.
  return WriteFileAtomically(path, json.dump() + "\n", 0600);
}

Result<std::shared_ptr<net::ClientTarget>> MakeTarget(const SimulationOptions& options) {
  auto target = std::make_shared<net::ClientTarget>();
  APPBAN_ASSIGN_OR_RETURN(target->url, net::ParseUrl(options.server_url));
  if (target->url.tls) {
    if (options.ca_file.empty()) return Status::InvalidArgument("--ca is required for an https:// server");
    APPBAN_ASSIGN_OR_RETURN(std::string ca, ReadFileToString(options.ca_file, kMaxCaFileBytes));
    APPBAN_ASSIGN_OR_RETURN(target->tls, net::MakeClientContext(ca));
  }
  APPBAN_RETURN_IF_ERROR(target->Resolve());
  return target;
}

std::string HttpErrorKind(const net::ClientResponse& response) {
  std::string kind = "http_" + std::to_string(response.status);
  Json body = Json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object() && body["error"].contains("code") &&
      body["error"]["code"].is_string()) {
    kind += "_" + body["error"]["code"].get<std::string>();
  }
  return kind;
}

// Mints `count` enrolment tokens through the admin API, in batches (or hands out the shared one).
Result<std::vector<std::string>> MintEnrollmentTokens(const SimulationOptions& options, uint64_t count) {
  std::vector<std::string> tokens;
  if (count == 0) return tokens;
  if (!options.shared_enrollment_token.empty()) return std::vector<std::string>(count, options.shared_enrollment_token);
  if (options.admin_token.empty()) {
    return Status::InvalidArgument(std::to_string(count) +
                                   " device(s) are not in the state file: --admin-token or --enrollment-token is "
                                   "needed to enrol them");
  }
  APPBAN_ASSIGN_OR_RETURN(net::Url url, net::ParseUrl(options.server_url));
  net::ClientOptions client_options;
  if (url.tls) {
    APPBAN_ASSIGN_OR_RETURN(client_options.pinned_ca_pem, ReadFileToString(options.ca_file, kMaxCaFileBytes));
  }
  net::HttpClient client(url, client_options);
  while (tokens.size() < count) {
    uint64_t batch = std::min<uint64_t>(options.enroll_token_batch, count - tokens.size());
    Json body{{"count", batch}, {"ttl_seconds", options.enroll_token_ttl_seconds}};
    // Several processes mint at once against one database: retry what may be transient.
    Result<net::HttpResponse> request = Status::Internal("not sent");
    for (int attempt = 0; attempt < 10; ++attempt) {
      request =
          client.Request("POST", "/v1/admin/enrollment-tokens", body.dump(),
                         {{"Authorization", "Bearer " + options.admin_token}, {"Content-Type", "application/json"}});
      bool transient = !request.ok() || request->status >= 500 || request->status == 429 || request->status == 409;
      if (!transient) break;
      usleep(static_cast<useconds_t>(200'000) << std::min(attempt, 4));
    }
    APPBAN_ASSIGN_OR_RETURN(net::HttpResponse response, std::move(request));
    if (response.status != 200 && response.status != 201) {
      return Status::Unavailable("minting enrolment tokens: HTTP " + std::to_string(response.status) + ": " +
                                 response.body.substr(0, 300));
    }
    size_t before = tokens.size();
    try {
      Json answer = Json::parse(response.body);
      for (const auto& token : answer.at("tokens")) tokens.push_back(token.at("token").get<std::string>());
    } catch (const std::exception& e) {
      return Status::Corruption(std::string("minting enrolment tokens: unexpected answer: ") + e.what());
    }
    if (tokens.size() == before) return Status::Corruption("minting enrolment tokens: the server returned none");
  }
  tokens.resize(count);
  return tokens;
}

// One process's devices and connections, all on one io_context thread.
class ProcessRun {
 public:
  ProcessRun(const SimulationOptions& options, std::shared_ptr<net::ClientTarget> target, AppCatalog catalog)
      : options_(options), target_(std::move(target)), catalog_(std::move(catalog)), rng_(options.inventory.seed) {}

  Status Prepare(uint64_t first, uint64_t count) {
    APPBAN_ASSIGN_OR_RETURN(StateFile state, LoadState(options_.state_file));
    if (!state.policy_keys_pem.empty()) APPBAN_RETURN_IF_ERROR(PinKeys(state.policy_keys_pem));
    slots_.resize(count);
    uint64_t to_enrol = 0;
    for (uint64_t i = 0; i < count; ++i) {
      Slot& slot = slots_[i];
      slot.index = first + i;
      if (auto it = state.devices.find(slot.index); it != state.devices.end()) {
        slot.device.emplace(it->second, catalog_.DeviceApps(slot.index), catalog_);
        ++summary_.loaded_from_state;
      } else {
        ++to_enrol;
      }
    }
    APPBAN_ASSIGN_OR_RETURN(std::vector<std::string> tokens, MintEnrollmentTokens(options_, to_enrol));
    size_t next_token = 0;
    for (Slot& slot : slots_) {
      if (!slot.device) slot.token = std::move(tokens[next_token++]);
    }
    summary_.devices = count;
    return Status::Ok();
  }

  Result<ProcessSummary> RunFleet() {
    for (size_t i = 0; i < slots_.size(); ++i) {
      slots_[i].connection = net::MakeConnection(io_, target_, SourceAddress(i));
    }
    if (options_.duration.count() > 0) {
      duration_timer_.expires_after(options_.duration);
      duration_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) Stop();
      });
    }
    started_ = Clock::now();
    for (size_t i = 0; i < slots_.size() && i < std::max<uint32_t>(1, options_.concurrency); ++i) StartNext();
    io_.run();
    return Finish();
  }

  Result<ProcessSummary> RunSteady(int ready_fd, int start_fd) {
    size_t lanes = std::min<size_t>(std::max<uint32_t>(1, options_.concurrency), std::max<size_t>(1, slots_.size()));
    for (size_t i = 0; i < lanes; ++i) lanes_.push_back(net::MakeConnection(io_, target_, SourceAddress(i)));
    // Setup: each lane enrols and first-checks-in devices one after another. io_.run() returns
    // once nothing is pending, i.e. when every device is set up (or gave up).
    for (size_t lane = 0; lane < lanes; ++lane) SetupNext(lane);
    io_.run();
    std::vector<std::shared_ptr<const std::string>> requests;
    std::string path = options_.target == SteadyTarget::kHealthz ? "/healthz" : std::string(protocol::kCheckinPath);
    for (Slot& slot : slots_) {
      if (!slot.device || slot.gave_up) continue;
      std::string body = protocol::CheckinRequestBody(slot.device->NextCheckin(catalog_));
      requests.push_back(std::make_shared<const std::string>(net::SerializeRequest(
          "POST", path, net::HostHeader(target_->url), slot.device->identity().credential, body)));
    }
    if (!options_.quiet) {
      std::cerr << "appban simulate: " << requests.size() << " devices ready in this process (pid " << getpid()
                << ")\n";
    }
    if (ready_fd >= 0) {
      if (write(ready_fd, "ready\n", 6) != 6) return Status::Unavailable("cannot tell the parent we are ready");
      char go = 0;
      if (read(start_fd, &go, 1) != 1) return Status::Unavailable("the parent did not start the measurement");
    }
    if (requests.empty()) return Finish();
    steady_requests_ = std::move(requests);
    io_.restart();
    started_ = Clock::now();
    steady_deadline_ = started_ + options_.duration;
    for (size_t lane = 0; lane < lanes_.size(); ++lane) SendSteady(lane, lane);
    io_.run();
    summary_.measured_seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    return Finish();
  }

 private:
  struct Slot {
    uint64_t index = 0;
    std::optional<SimDevice> device;
    std::string token;                                 // enrolment token when not enrolled yet
    std::shared_ptr<net::AsyncConnection> connection;  // fleet mode: the device's own connection
    int64_t pending_ack_version = 0;                   // applied, compliant check-in not answered yet
    uint32_t acked_bundles = 0;
    Clock::time_point next_periodic;
    bool polling = false;  // has reached its first long-poll
    bool gave_up = false;
    bool done = false;  // acknowledged stop_after_bundles bundles
    int attempts = 0;   // failed attempts of the current request
  };
  using Done = std::function<void(bool ok)>;

  std::string SourceAddress(size_t i) const {
    if (options_.source_addresses.empty()) return "";
    return options_.source_addresses[(slots_.empty() ? i : slots_[0].index + i) % options_.source_addresses.size()];
  }

  Status PinKeys(const std::vector<std::string>& pems) {
    if (verifier_) {
      if (pems != keys_pem_) return Status::FailedPrecondition("the server handed out different policy keys");
      return Status::Ok();
    }
    std::vector<policy::PublicKey> keys;
    for (const std::string& pem : pems) {
      APPBAN_ASSIGN_OR_RETURN(policy::PublicKey key, policy::ParsePublicKeyPem(pem));
      keys.push_back(std::move(key));
    }
    keys_pem_ = pems;
    verifier_.emplace(std::move(keys));
    return Status::Ok();
  }

  void Error(const std::string& kind) { ++summary_.errors[kind]; }

  // Runs `again` after a randomized back-off, unless stopping.
  void After(milliseconds delay, std::function<void()> again) {
    if (stopping_) return;
    auto timer = std::make_shared<asio::steady_timer>(io_, delay);
    timer->async_wait([this, timer, again = std::move(again)](const boost::system::error_code& ec) {
      if (!ec && !stopping_) again();
    });
  }
  milliseconds Backoff(int attempts) {
    int64_t ceiling = std::min<int64_t>(5000, 250LL << std::min(attempts, 5));
    return milliseconds(std::uniform_int_distribution<int64_t>(ceiling / 2, ceiling)(rng_));
  }
  milliseconds RetryAfter(const net::ClientResponse& response) {
    int64_t seconds = 1;
    if (auto wait = net::ParseRetryAfter(response.retry_after, std::time(nullptr))) {
      seconds = std::clamp<int64_t>(wait->count(), 1, 60);
    }
    return milliseconds(seconds * 1000 + std::uniform_int_distribution<int64_t>(0, 500)(rng_));
  }

  // A failed request: retry (transport errors, 5xx, 429) or give up (other 4xx, too many tries).
  void Retry(Slot& slot, const Status& status, const net::ClientResponse& response, std::function<void()> again,
             const Done& done) {
    if (!status.ok()) {
      Error(std::string(net::FailureKind(status)));
    } else {
      Error(HttpErrorKind(response));
    }
    if (status.ok() && response.status == 429) return After(RetryAfter(response), std::move(again));
    bool retriable = !status.ok() || response.status >= 500;
    if (!retriable || ++slot.attempts >= kMaxAttempts) {
      slot.gave_up = true;
      Error("device_gave_up");
      MarkDone(slot);
      return done(false);
    }
    After(Backoff(slot.attempts), std::move(again));
  }

  void Enroll(size_t i, net::AsyncConnection& connection, Done done) {
    Slot& slot = slots_[i];
    protocol::EnrollRequest request{slot.token, "sim-" + std::to_string(slot.index), "linux",
                                    std::string(kAgentVersion)};
    auto bytes = std::make_shared<const std::string>(net::SerializeRequest(
        "POST", protocol::kEnrollPath, net::HostHeader(target_->url), "", protocol::ToJson(request).dump()));
    connection.Send(bytes, kRequestTimeout, [this, i, &connection, done](Status status, net::ClientResponse response) {
      Slot& slot = slots_[i];
      auto again = [this, i, &connection, done] { Enroll(i, connection, done); };
      if (!status.ok() || response.status != 201) return Retry(slot, status, response, again, done);
      auto answer = protocol::ParseEnrollResponse(response.body);
      if (!answer.ok()) {
        Error("bad_enroll_answer");
        slot.gave_up = true;
        MarkDone(slot);
        return done(false);
      }
      if (Status pinned = PinKeys(answer->policy_keys_pem); !pinned.ok()) {
        Error("policy_keys_differ");
        slot.gave_up = true;
        MarkDone(slot);
        return done(false);
      }
      slot.attempts = 0;
      DeviceIdentity identity{slot.index, answer->device_id, answer->credential, answer->group};
      summary_.new_devices.push_back({{"index", slot.index},
                                      {"device_id", identity.device_id},
                                      {"credential", identity.credential},
                                      {"group", identity.group}});
      ++summary_.enrolled_now;
      summary_.longpoll_timeout = answer->longpoll_timeout;
      summary_.checkin_interval = answer->checkin_interval;
      slot.device.emplace(std::move(identity), catalog_.DeviceApps(slot.index), catalog_);
      slot.token.clear();
      done(true);
    });
  }

  // Applies a bundle from a check-in or poll answer. True when the device now has something to
  // report (applied, or refused with an event queued).
  bool TakeBundle(Slot& slot, const std::string& envelope, const std::vector<std::string>& key_rotations) {
    BundleOutcome outcome = slot.device->ApplyBundle(envelope, *verifier_, catalog_, NowSeconds(), key_rotations);
    if (outcome.kind == BundleOutcome::Kind::kRefused) {
      Error("bundle_refused_" + std::string(StatusCodeName(outcome.refusal.code())));
      return true;
    }
    if (outcome.kind != BundleOutcome::Kind::kApplied) return false;
    BundleTimeline& timeline = summary_.bundles[outcome.version];
    int64_t now = NowMs();
    if (timeline.first_received_ms == 0 || now < timeline.first_received_ms) timeline.first_received_ms = now;
    ++timeline.received;
    timeline.received_ms.push_back(now);
    slot.pending_ack_version = outcome.version;
    return true;
  }

  void Checkin(size_t i, net::AsyncConnection& connection, Done done) {
    Slot& slot = slots_[i];
    std::string body = protocol::CheckinRequestBody(slot.device->NextCheckin(catalog_));
    auto bytes = std::make_shared<const std::string>(net::SerializeRequest(
        "POST", protocol::kCheckinPath, net::HostHeader(target_->url), slot.device->identity().credential, body));
    int64_t reported_version = slot.pending_ack_version;
    connection.Send(bytes, kRequestTimeout,
                    [this, i, &connection, done, reported_version](Status status, net::ClientResponse response) {
                      Slot& slot = slots_[i];
                      auto again = [this, i, &connection, done] { Checkin(i, connection, done); };
                      if (!status.ok() || response.status != 200) return Retry(slot, status, response, again, done);
                      auto answer = protocol::ParseCheckinResponse(response.body);
                      if (!answer.ok()) {
                        Error("bad_checkin_answer");
                        return Retry(slot, Status::Unavailable("response: " + answer.status().message()), response,
                                     again, done);
                      }
                      slot.attempts = 0;
                      ++summary_.checkins;
                      slot.device->OnCheckinAnswer(*answer);
                      ScheduleNextPeriodic(slot, answer->checkin_interval);
                      if (reported_version != 0 && slot.pending_ack_version == reported_version) {
                        // The server answered the check-in that reported the applied bundle (and its removals):
                        // the device is compliant with it as far as the server can tell.
                        summary_.bundles[reported_version].acked_ms.push_back(NowMs());
                        slot.pending_ack_version = 0;
                        if (options_.stop_after_bundles > 0 && ++slot.acked_bundles == options_.stop_after_bundles)
                          MarkDone(slot);
                      }
                      if (answer->bundle && TakeBundle(slot, *answer->bundle, answer->key_rotations))
                        return Checkin(i, connection, done);
                      done(true);
                    });
  }

  // Every waiting device receives the same answer to one publish: parsed once per process (the
  // simulator must not be what the propagation benchmark measures). nullptr when malformed.
  const protocol::PollResponse* ParsedPoll(const std::string& body) {
    if (!last_poll_ || body != last_poll_body_) {
      auto parsed = protocol::ParsePollResponse(body);
      if (!parsed.ok()) return nullptr;
      last_poll_ = std::move(*parsed);
      last_poll_body_ = body;
    }
    return &*last_poll_;
  }

  // The device needs nothing more from this run (acknowledged enough bundles, or gave up).
  void MarkDone(Slot& slot) {
    if (options_.stop_after_bundles == 0 || options_.mode != SimulationMode::kFleet || slot.done) return;
    slot.done = true;
    if (++devices_done_ == slots_.size()) Stop();
  }

  void ScheduleNextPeriodic(Slot& slot, int64_t interval_seconds) {
    int64_t interval_ms = std::max<int64_t>(10, interval_seconds) * 1000;
    int64_t jitter = std::uniform_int_distribution<int64_t>(-interval_ms / 10, interval_ms / 10)(rng_);
    slot.next_periodic = Clock::now() + milliseconds(interval_ms + jitter);
  }

  // --- fleet mode ---------------------------------------------------------------------------

  void StartNext() {
    if (stopping_ || next_to_start_ >= slots_.size()) return;
    size_t i = next_to_start_++;
    Slot& slot = slots_[i];
    net::AsyncConnection& connection = *slot.connection;
    auto after_checkin = [this, i](bool ok) {
      if (!ok) return DeviceStarted(i, false);
      DeviceStarted(i, true);
      Poll(i);
    };
    if (slot.device) return Checkin(i, connection, after_checkin);
    Enroll(i, connection, [this, i, after_checkin](bool ok) {
      if (!ok) return DeviceStarted(i, false);
      Checkin(i, *slots_[i].connection, after_checkin);
    });
  }

  void DeviceStarted(size_t i, bool ok) {
    (void)i;
    if (ok) ++devices_polling_;
    if (++devices_started_ == slots_.size() && !options_.quiet) {
      double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
      std::cerr << "appban simulate: " << devices_polling_ << " of " << slots_.size() << " devices long-polling after "
                << seconds << " s (pid " << getpid() << ")\n";
    }
    StartNext();
  }

  void Poll(size_t i) {
    if (stopping_) return;
    Slot& slot = slots_[i];
    net::AsyncConnection& connection = *slot.connection;
    if (Clock::now() >= slot.next_periodic) {
      return Checkin(i, connection, [this, i](bool ok) {
        if (ok) Poll(i);
      });
    }
    std::string target =
        std::string(protocol::kPollPath) + "?version=" + std::to_string(slot.device->applied_version());
    auto bytes = std::make_shared<const std::string>(
        net::SerializeRequest("GET", target, net::HostHeader(target_->url), slot.device->identity().credential, ""));
    int64_t longpoll = std::max<int64_t>(summary_.longpoll_timeout, 60);
    ++summary_.polls;
    connection.Send(bytes, milliseconds((longpoll + 30) * 1000),
                    [this, i](Status status, net::ClientResponse response) {
                      if (stopping_) return;
                      Slot& slot = slots_[i];
                      auto again = [this, i] { Poll(i); };
                      auto give_up = [](bool) {};
                      if (status.ok() && response.status == 204) {
                        slot.attempts = 0;
                        return Poll(i);
                      }
                      if (!status.ok() || response.status != 200) return Retry(slot, status, response, again, give_up);
                      const protocol::PollResponse* answer = ParsedPoll(response.body);
                      if (answer == nullptr)
                        return Retry(slot, Status::Unavailable("response: bad poll answer"), response, again, give_up);
                      slot.attempts = 0;
                      if (answer->bundle && TakeBundle(slot, *answer->bundle, answer->key_rotations)) {
                        bool refused = slot.pending_ack_version == 0;
                        return Checkin(i, *slot.connection, [this, i, refused](bool ok) {
                          if (!ok) return;
                          // A refused bundle would be offered again at once: wait before asking again.
                          if (refused) return After(milliseconds(5000), [this, i] { Poll(i); });
                          Poll(i);
                        });
                      }
                      Poll(i);
                    });
  }

  void Stop() {
    if (stopping_) return;
    stopping_ = true;
    duration_timer_.cancel();
    // Connections stay open until the ProcessRun is destroyed, after the parent released every
    // process (ChildChannel): tearing them down now would load the machine others measure on.
    io_.stop();
  }

  // --- steady mode --------------------------------------------------------------------------

  void SetupNext(size_t lane) {
    if (next_to_start_ >= slots_.size()) return;
    size_t i = next_to_start_++;
    net::AsyncConnection& connection = *lanes_[lane];
    auto next = [this, lane](bool) { SetupNext(lane); };
    if (slots_[i].device) return Checkin(i, connection, next);
    Enroll(i, connection, [this, i, lane, next](bool ok) {
      if (!ok) return next(false);
      Checkin(i, *lanes_[lane], next);
    });
  }

  void SendSteady(size_t lane, size_t request_index) {
    if (Clock::now() >= steady_deadline_) return;  // the lane goes idle; io_.run() returns when all are
    auto sent = Clock::now();
    lanes_[lane]->Send(steady_requests_[request_index % steady_requests_.size()], kRequestTimeout,
                       [this, lane, sent](Status status, net::ClientResponse response) {
                         auto now = Clock::now();
                         if (status.ok() && response.status == 200) {
                           if (now <= steady_deadline_) {
                             ++summary_.requests;
                             summary_.latency.Record(static_cast<uint64_t>(
                                 std::chrono::duration_cast<std::chrono::microseconds>(now - sent).count()));
                           }
                           return SendSteady(lane, next_steady_++);
                         }
                         Error(status.ok() ? HttpErrorKind(response) : std::string(net::FailureKind(status)));
                         After(Backoff(1), [this, lane] { SendSteady(lane, next_steady_++); });
                       });
  }

  Result<ProcessSummary> Finish() {
    for (const Slot& slot : slots_) {
      if (slot.connection) summary_.connections_opened += slot.connection->connections_opened();
    }
    for (const auto& lane : lanes_) summary_.connections_opened += lane->connections_opened();
    for (auto& [version, timeline] : summary_.bundles) {
      std::sort(timeline.received_ms.begin(), timeline.received_ms.end());
      std::sort(timeline.acked_ms.begin(), timeline.acked_ms.end());
    }
    if (verifier_) summary_.bundle_verifications = verifier_->full_verifications();
    summary_.policy_keys_pem = keys_pem_;
    return std::move(summary_);
  }

  const SimulationOptions& options_;
  asio::io_context io_{1};  // one thread: no locking anywhere in the simulator
  std::shared_ptr<net::ClientTarget> target_;
  AppCatalog catalog_;
  std::mt19937_64 rng_;
  std::optional<BundleVerifier> verifier_;
  std::vector<std::string> keys_pem_;
  std::vector<Slot> slots_;
  std::vector<std::shared_ptr<net::AsyncConnection>> lanes_;
  std::vector<std::shared_ptr<const std::string>> steady_requests_;
  size_t next_steady_ = 0;
  Clock::time_point steady_deadline_;
  asio::steady_timer duration_timer_{io_};
  Clock::time_point started_;
  size_t next_to_start_ = 0;
  size_t devices_started_ = 0;
  size_t devices_polling_ = 0;
  size_t devices_done_ = 0;
  bool stopping_ = false;
  ProcessSummary summary_;
  std::string last_poll_body_;
  std::optional<protocol::PollResponse> last_poll_;
};

// A child's summary: one line. Read in chunks (it can be megabytes); the child writes nothing
// after it until released, so nothing beyond the line is consumed. False at EOF before a newline
// (a child that died).
// How a read of one line from a child's pipe ended.
enum class LineRead { kLine, kClosed, kTimedOut };

// Reads from a child's pipe until what was read ends in a newline, the pipe closes or fails, or
// `deadline` passes (nullopt: waits as long as it takes). `one_byte_at_a_time` reads nothing past
// the newline (the "ready" line: the summary follows on the same pipe).
LineRead ReadLineFromChild(int fd, std::string& out, std::optional<std::chrono::steady_clock::time_point> deadline,
                           bool one_byte_at_a_time) {
  char buffer[65536];
  for (;;) {
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return LineRead::kTimedOut;
      pollfd readable{fd, POLLIN, 0};
      int ready = poll(&readable, 1, static_cast<int>(std::min<int64_t>(left.count(), 60'000)));
      if (ready < 0 && errno != EINTR) return LineRead::kClosed;
      if (ready <= 0) continue;
    }
    ssize_t n = read(fd, buffer, one_byte_at_a_time ? 1 : sizeof buffer);
    if (n == 0) return LineRead::kClosed;
    if (n < 0) {
      if (errno == EINTR) continue;
      return LineRead::kClosed;
    }
    out.append(buffer, static_cast<size_t>(n));
    if (out.back() == '\n') return LineRead::kLine;
  }
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

Result<uint64_t> RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return Status::Internal(std::string("getrlimit: ") + strerror(errno));
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return Status::Internal(std::string("setrlimit: ") + strerror(errno));
  return static_cast<uint64_t>(limit.rlim_cur);
}

Result<ProcessSummary> RunProcess(const SimulationOptions& options, uint64_t first, uint64_t count,
                                  const ChildChannel& channel) {
  APPBAN_ASSIGN_OR_RETURN(std::shared_ptr<net::ClientTarget> target, MakeTarget(options));
  APPBAN_ASSIGN_OR_RETURN(AppCatalog catalog, AppCatalog::Make(options.inventory));
  ProcessRun run(options, std::move(target), std::move(catalog));
  Status prepared = run.Prepare(first, count);
  if (!prepared.ok()) {
    // Keep the parent's barrier from waiting forever on a child that cannot start.
    if (channel.ready_fd >= 0) WriteAll(channel.ready_fd, "ready\n");
    return prepared;
  }
  Result<ProcessSummary> summary =
      options.mode == SimulationMode::kSteady ? run.RunSteady(channel.ready_fd, channel.start_fd) : run.RunFleet();
  // Reported while `run` (and its connections) is still alive.
  if (channel.report_and_wait) channel.report_and_wait(summary);
  return summary;
}

Result<ProcessSummary> RunForked(uint32_t processes, bool synchronize_start, const ChildWork& work,
                                 std::chrono::milliseconds report_within) {
  struct Child {
    pid_t pid = -1;
    int result_fd = -1;
    int start_fd = -1;
  };
  std::vector<Child> children;
  auto close_all = [&] {
    for (Child& c : children) {
      if (c.result_fd >= 0) close(c.result_fd);
      if (c.start_fd >= 0) close(c.start_fd);
      c.result_fd = c.start_fd = -1;
    }
  };
  std::cout.flush();
  std::cerr.flush();
  for (uint32_t index = 0; index < processes; ++index) {
    int result_pipe[2], start_pipe[2];
    if (pipe2(result_pipe, O_CLOEXEC) != 0) return Status::Internal(std::string("pipe: ") + strerror(errno));
    if (pipe2(start_pipe, O_CLOEXEC) != 0) return Status::Internal(std::string("pipe: ") + strerror(errno));
    pid_t pid = fork();
    if (pid < 0) return Status::Internal(std::string("fork: ") + strerror(errno));
    if (pid == 0) {
      // A child must not outlive its parent (killed benchmark script): it would hold thousands of
      // connections to the server.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      close(result_pipe[0]);
      close(start_pipe[1]);
      for (Child& c : children) {  // siblings' pipes: the parent's business
        close(c.result_fd);
        close(c.start_fd);
      }
      bool reported = false;
      bool written = false;
      ChildChannel channel;
      channel.ready_fd = synchronize_start ? result_pipe[1] : -1;
      channel.start_fd = start_pipe[0];
      channel.report_and_wait = [&](const Result<ProcessSummary>& summary) {
        if (reported) return;
        reported = true;
        std::string out;
        if (summary.ok()) {
          out = summary->ToJson().dump() + "\n";  // one line: dump() writes no newline
        } else {
          // Said at once: the parent reports it only after every other child has finished.
          std::cerr << "appban simulate: process " << index << " failed: " << summary.status().ToString() << "\n";
          out = Json{{"child_error", summary.status().ToString()}}.dump() + "\n";
        }
        written = WriteAll(result_pipe[1], out);
        std::cout.flush();
        std::cerr.flush();
        char release = 0;
        (void)!read(start_pipe[0], &release, 1);  // a byte, or EOF when the parent is gone
      };
      Result<ProcessSummary> summary = work(index, channel);
      channel.report_and_wait(summary);
      _exit(written ? 0 : 1);  // no atexit handlers or static destructors of the parent's copy
    }
    close(result_pipe[1]);
    close(start_pipe[0]);
    children.push_back({pid, result_pipe[0], start_pipe[1]});
  }
  // A child that never reports (hung: a fork of a process whose other threads held a lock, a
  // server that stopped answering) is killed once `report_within` has passed, rather than keeping
  // the parent, and whoever waits for it, waiting for ever.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (report_within.count() > 0) deadline = std::chrono::steady_clock::now() + report_within;
  auto kill_hung = [&](size_t index) -> Status {
    for (Child& c : children) kill(c.pid, SIGKILL);
    for (Child& c : children) waitpid(c.pid, nullptr, 0);
    close_all();
    char seconds[32];
    snprintf(seconds, sizeof seconds, "%.1f", static_cast<double>(report_within.count()) / 1000);
    return Status::Unavailable("simulator process " + std::to_string(index) + " (pid " +
                               std::to_string(children[index].pid) + ") reported nothing within " + seconds +
                               " s; every process was killed");
  };
  Status failure;
  if (synchronize_start) {
    for (size_t index = 0; index < children.size(); ++index) {
      std::string line;
      LineRead read = ReadLineFromChild(children[index].result_fd, line, deadline, /*one_byte_at_a_time=*/true);
      if (read == LineRead::kTimedOut) return kill_hung(index);
      if (read != LineRead::kLine || line != "ready\n") {
        failure =
            Status::Unavailable("simulator process " + std::to_string(children[index].pid) + " failed during setup");
      }
    }
    for (Child& c : children) WriteAll(c.start_fd, "g");
  }
  // Every summary first (a child waits for the release after writing its line), then the release,
  // then the exits.
  std::vector<std::string> texts(children.size());
  std::vector<bool> reads_ok(children.size());
  for (size_t index = 0; index < children.size(); ++index) {
    LineRead read = ReadLineFromChild(children[index].result_fd, texts[index], deadline, /*one_byte_at_a_time=*/false);
    if (read == LineRead::kTimedOut) return kill_hung(index);
    reads_ok[index] = read == LineRead::kLine;
  }
  for (Child& c : children) {
    WriteAll(c.start_fd, "x");
    close(c.start_fd);
    c.start_fd = -1;
  }
  ProcessSummary merged;
  for (size_t index = 0; index < children.size(); ++index) {
    Child& c = children[index];
    std::string& text = texts[index];
    bool read_ok = reads_ok[index];
    int wstatus = 0;
    waitpid(c.pid, &wstatus, 0);
    std::string who = "simulator process " + std::to_string(index) + " (pid " + std::to_string(c.pid) + ")";
    if (!failure.ok()) continue;
    if (!read_ok || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
      failure = Status::Unavailable(who + " died (" +
                                    (WIFSIGNALED(wstatus) ? "signal " + std::to_string(WTERMSIG(wstatus))
                                                          : "exit " + std::to_string(WEXITSTATUS(wstatus))) +
                                    ")");
      continue;
    }
    Json json = Json::parse(text, nullptr, false);
    if (json.is_discarded()) {
      failure = Status::Corruption(who + " wrote an unreadable summary");
      continue;
    }
    if (json.is_object() && json.contains("child_error")) {
      failure = Status::Unavailable(who + ": " + json["child_error"].dump());
      continue;
    }
    auto summary = ProcessSummary::FromJson(json);
    if (!summary.ok()) {
      failure = summary.status().WithContext(who);
      continue;
    }
    merged.MergeFrom(*summary);
  }
  close_all();
  if (!failure.ok()) return failure;
  return merged;
}

Result<ProcessSummary> RunSimulation(const SimulationOptions& options) {
  if (options.devices == 0) return Status::InvalidArgument("--devices must be at least 1");
  if (options.processes == 0 || options.processes > options.devices) {
    return Status::InvalidArgument("--processes must be between 1 and the number of devices");
  }
  APPBAN_RETURN_IF_ERROR(net::ParseUrl(options.server_url).status());
  APPBAN_RETURN_IF_ERROR(RaiseDescriptorLimit().status());
  uint64_t per_process = options.devices / options.processes;
  uint64_t remainder = options.devices % options.processes;
  auto slice = [&](uint32_t child) {
    uint64_t first = options.first_device_index + child * per_process + std::min<uint64_t>(child, remainder);
    uint64_t count = per_process + (child < remainder ? 1 : 0);
    return std::pair{first, count};
  };
  Result<ProcessSummary> summary = Status::Internal("not run");
  if (options.processes == 1) {
    summary = RunProcess(options, options.first_device_index, options.devices, ChildChannel{});
  } else {
    // A fleet run stops itself after `duration`; its processes get two more minutes to report
    // (minting tokens before, closing connections after) before they count as hung. A steady
    // run's set-up has no bound to add one to.
    std::chrono::milliseconds report_within{0};
    if (options.mode == SimulationMode::kFleet && options.duration.count() > 0) {
      report_within = options.duration + std::chrono::minutes(2);
    }
    summary = RunForked(
        options.processes, options.mode == SimulationMode::kSteady,
        [&](uint32_t child, const ChildChannel& channel) {
          auto [first, count] = slice(child);
          return RunProcess(options, first, count, channel);
        },
        report_within);
  }
  if (!summary.ok()) return summary;
  if (!options.state_file.empty() && !summary->new_devices.empty()) {
    APPBAN_ASSIGN_OR_RETURN(StateFile state, LoadState(options.state_file));
    if (state.policy_keys_pem.empty()) state.policy_keys_pem = summary->policy_keys_pem;
    for (const auto& d : summary->new_devices) {
      DeviceIdentity identity{d["index"].get<uint64_t>(), d["device_id"].get<std::string>(),
                              d["credential"].get<std::string>(), d["group"].get<std::string>()};
      state.devices[identity.index] = std::move(identity);
    }
    APPBAN_RETURN_IF_ERROR(SaveState(options.state_file, state));
  }
  return summary;
}

Json ReportJson(const SimulationOptions& options, const ProcessSummary& summary) {
  Json report{{"mode", options.mode == SimulationMode::kFleet ? "fleet" : "steady"},
              {"server", options.server_url},
              {"devices", summary.devices},
              {"processes", options.processes},
              {"source_addresses", options.source_addresses.size()},
              {"enrolled_now", summary.enrolled_now},
              {"loaded_from_state", summary.loaded_from_state},
              {"connections_opened", summary.connections_opened},
              {"checkins", summary.checkins},
              {"errors", summary.errors}};
  auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
  if (options.mode == SimulationMode::kSteady) {
    double rate = summary.measured_seconds > 0 ? static_cast<double>(summary.requests) / summary.measured_seconds : 0;
    report["steady"] = {{"target", options.target == SteadyTarget::kHealthz ? "healthz" : "checkin"},
                        {"concurrency_per_process", options.concurrency},
                        {"measured_seconds", summary.measured_seconds},
                        {"requests", summary.requests},
                        {"requests_per_second", std::round(rate)},
                        {"latency_ms",
                         {{"p50", ms(summary.latency.Quantile(0.5))},
                          {"p99", ms(summary.latency.Quantile(0.99))},
                          {"max", ms(summary.latency.max())}}}};
    return report;
  }
  Json bundles = Json::array();
  for (const auto& entry : summary.bundles) {
    // Named references, not a structured binding: clang 14 cannot capture bindings in a lambda.
    const auto& version = entry.first;
    const auto& timeline = entry.second;
    int64_t reference = options.publish_at_ms.value_or(timeline.first_received_ms);
    auto seconds = [&](double fraction) -> Json {
      auto value = SecondsToFraction(timeline.acked_ms, summary.devices, fraction, reference);
      return value ? Json(*value) : Json(nullptr);
    };
    auto received_seconds = [&](double fraction) -> Json {
      auto value = SecondsToFraction(timeline.received_ms, summary.devices, fraction, reference);
      return value ? Json(*value) : Json(nullptr);
    };
    bundles.push_back({{"version", version},
                       {"reference", options.publish_at_ms ? "publish_at" : "first_received"},
                       {"first_received_unix_ms", timeline.first_received_ms},
                       {"received", timeline.received},
                       {"acknowledged", timeline.acked_ms.size()},
                       {"seconds_to_50_percent", seconds(0.5)},
                       {"seconds_to_99_percent", seconds(0.99)},
                       {"seconds_to_100_percent", seconds(1.0)},
                       // When devices HAD the bundle (before reporting): delivery vs acknowledgement.
                       {"received_seconds_to_50_percent", received_seconds(0.5)},
                       {"received_seconds_to_99_percent", received_seconds(0.99)}});
  }
  report["polls"] = summary.polls;
  report["bundle_verifications"] = summary.bundle_verifications;
  report["bundles"] = bundles;
  return report;
}

std::string ReportText(const Json& report) {
  std::ostringstream out;
  out << "appban simulate (" << report["mode"].get<std::string>() << "): " << report["devices"] << " devices in "
      << report["processes"] << " process(es) against " << report["server"].get<std::string>() << "\n";
  out << "  enrolled now " << report["enrolled_now"] << ", from state " << report["loaded_from_state"]
      << ", connections opened " << report["connections_opened"] << ", check-ins " << report["checkins"] << "\n";
  if (report.contains("steady")) {
    const Json& s = report["steady"];
    out << "  " << s["target"].get<std::string>() << ": " << s["requests"] << " requests in " << s["measured_seconds"]
        << " s = " << s["requests_per_second"] << " /s; latency p50 " << s["latency_ms"]["p50"] << " ms, p99 "
        << s["latency_ms"]["p99"] << " ms, max " << s["latency_ms"]["max"] << " ms\n";
  }
  if (report.contains("bundles")) {
    for (const auto& b : report["bundles"]) {
      out << "  bundle v" << b["version"] << ": received by " << b["received"] << ", acknowledged by "
          << b["acknowledged"] << "; seconds from " << b["reference"].get<std::string>() << " to 50% "
          << b["seconds_to_50_percent"] << ", 99% " << b["seconds_to_99_percent"] << ", 100% "
          << b["seconds_to_100_percent"] << " (had it: 50% " << b["received_seconds_to_50_percent"] << ", 99% "
          << b["received_seconds_to_99_percent"] << ")\n";
    }
  }
  if (report["errors"].empty()) {
    out << "  errors: none\n";
  } else {
    out << "  errors:";
    for (const auto& [kind, n] : report["errors"].items()) out << " " << kind << "=" << n;
    out << "\n";
  }
  return out.str();
}

}  // namespace appban::sim
