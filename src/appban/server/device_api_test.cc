#include "appban/server/device_api.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "appban/decide/admin.h"
#include "appban/policy/keys.h"
#include "appban/protocol/messages.h"
#include "appban/server/admin_api.h"
#include "appban/server/bundle_hub.h"
#include "appban/server/checkin_writer.h"
#include "appban/server/config.h"
#include "appban/server/metrics.h"
#include "appban/store/fleet.h"
#include "appban/store/store.h"

namespace appban::server {
namespace {

namespace fs = std::filesystem;

constexpr UnixSeconds kStart = 1'800'000'000;

// Stands in for a connection: keeps the one response it is given.
class CapturingSink : public net::detail::ResponseSink {
 public:
  void Complete(uint64_t, net::HttpResponse response) override { response_ = std::move(response); }
  bool ClientConnected() const override { return true; }
  const std::optional<net::HttpResponse>& response() const { return response_; }

 private:
  std::optional<net::HttpResponse> response_;
};

class DeviceApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "appban-device-api-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    std::string db = dir_ + "/appban.db";
    auto store = store::OpenSqliteStore(db);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto fleet = store::OpenSqliteFleetStore(db);
    ASSERT_TRUE(fleet.ok());
    fleet_ = std::move(*fleet);
    auto writer_fleet = store::OpenSqliteFleetStore(db);
    ASSERT_TRUE(writer_fleet.ok());
    auto key = policy::SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    key_ = std::make_unique<policy::SigningKey>(std::move(*key));
    hub_ = std::make_unique<BundleHub>(*store_, std::vector<policy::PublicKey>{key_->public_key()});
    auto region = MetricsRegion::Create(1);
    ASSERT_TRUE(region.ok());
    region_ = std::make_unique<MetricsRegion>(std::move(*region));
    slot_ = std::make_unique<MetricsSlot>(region_->Slot(0));
    config_.data_dir = dir_;

    context_.config = &config_;
    context_.store = store_.get();
    context_.fleet = fleet_.get();
    context_.signing_key = key_.get();
    context_.metrics = slot_.get();
    context_.clock = [this] { return now_; };
    context_.latest_bundle = [this]() -> const verify::PublishedBundle& { return hub_->latest(); };
    context_.data_dir = dir_;
    auto generations = DeviceGenerations::Create();
    ASSERT_TRUE(generations.ok());
    generations_ = std::make_unique<DeviceGenerations>(std::move(*generations));
    context_.generations = generations_.get();

    writer_ = std::make_unique<CheckinWriter>(io_, std::move(*writer_fleet), *generations_);
    DeviceApiSettings settings;
    settings.enrollment_burst = 3;
    settings.enrollment_per_minute = 1;
    api_ = std::make_unique<DeviceApi>(context_, *hub_, *writer_, settings, [] {});
  }
  void TearDown() override {
    api_.reset();
    writer_.reset();
    hub_.reset();
    fleet_.reset();
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::vector<std::string> MakeTokens(size_t count, const std::string& group = "", UnixSeconds ttl = 3600) {
    store::AuditRecord audit{"alice", "", "", nullptr, nullptr, now_};
    auto created = fleet_->CreateEnrollmentTokens(group, now_ + ttl, "", count, audit);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    std::vector<std::string> presented;
    if (created.ok()) {
      for (const auto& token : *created) presented.push_back(token.presented);
    }
    return presented;
  }

  // Starts POST /v1/enroll; the answer arrives when the io_context runs the writer's completion.
  std::shared_ptr<CapturingSink> StartEnroll(const std::string& body, const std::string& address) {
    auto sink = std::make_shared<CapturingSink>();
    net::HttpRequest request;
    request.method = "POST";
    request.path = "/v1/enroll";
    request.body = body;
    request.remote_address = address;
    api_->Enroll(request, net::Responder(sink, 1));
    return sink;
  }
  static std::string EnrollBody(const std::string& token, const std::string& hostname = "host") {
    protocol::EnrollRequest request{token, hostname, "linux", "1.0"};
    return protocol::ToJson(request).dump();
  }
  // Runs the io_context until every sink has its answer (or 10 s passed).
  void RunUntilAnswered(const std::vector<std::shared_ptr<CapturingSink>>& sinks) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    auto answered = [&] {
      for (const auto& sink : sinks) {
        if (!sink->response()) return false;
      }
      return true;
    };
    while (!answered() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
  }
  net::HttpResponse Enroll(const std::string& body, const std::string& address = "192.0.2.1") {
    auto sink = StartEnroll(body, address);
    RunUntilAnswered({sink});
    EXPECT_TRUE(sink->response().has_value());
    return sink->response().value_or(net::HttpResponse{});
  }
  // Another worker process in miniature: its own connections, writer and DeviceApi (so its own
  // device cache), sharing the database and the device generations with the first.
  struct OtherWorker {
    std::unique_ptr<store::FleetStore> fleet;
    std::unique_ptr<CheckinWriter> writer;
    WorkerContext context;
    std::unique_ptr<DeviceApi> api;
  };
  std::unique_ptr<OtherWorker> StartOtherWorker() {
    auto other = std::make_unique<OtherWorker>();
    auto fleet = store::OpenSqliteFleetStore(dir_ + "/appban.db");
    auto writer_fleet = store::OpenSqliteFleetStore(dir_ + "/appban.db");
    EXPECT_TRUE(fleet.ok() && writer_fleet.ok());
    other->fleet = std::move(*fleet);
    other->writer = std::make_unique<CheckinWriter>(io_, std::move(*writer_fleet), *generations_);
    other->context = context_;
    other->context.fleet = other->fleet.get();
    other->api = std::make_unique<DeviceApi>(other->context, *hub_, *other->writer, DeviceApiSettings{}, [] {});
    return other;
  }
  net::HttpResponse SendCheckin(DeviceApi& api, const std::string& credential,
                                const protocol::CheckinRequest& checkin) {
    auto sink = std::make_shared<CapturingSink>();
    net::HttpRequest request;
    request.method = "POST";
    request.path = "/v1/checkin";
    request.body = protocol::ToJson(checkin).dump();
    request.headers.emplace_back("authorization", "Bearer " + credential);
    api.Checkin(request, net::Responder(sink, 1));
    RunUntilAnswered({sink});
    return sink->response().value_or(net::HttpResponse{});
  }
  // A fresh device whose first check-in (empty inventory, events first_seq..last_seq) was answered.
  protocol::EnrollResponse EnrolledAndCheckedIn(int64_t first_seq, int64_t last_seq) {
    auto enrolled = protocol::ParseEnrollResponse(Enroll(EnrollBody(MakeTokens(1)[0])).body);
    EXPECT_TRUE(enrolled.ok());
    if (!enrolled.ok()) return {};
    protocol::CheckinRequest first = EventsCheckin(first_seq, last_seq);
    first.inventory = std::vector<policy::InstalledApp>{};
    EXPECT_EQ(SendCheckin(*api_, enrolled->credential, first).status, 200);
    return *enrolled;
  }
  static protocol::CheckinRequest EventsCheckin(int64_t first_seq, int64_t last_seq) {
    protocol::CheckinRequest checkin;
    checkin.inventory_hash = protocol::InventoryHash({});
    for (int64_t seq = first_seq; seq <= last_seq; ++seq) {
      protocol::DeviceEvent event;
      event.seq = seq;
      event.at = kStart;
      event.kind = protocol::EventKind::kRemoved;
      event.platform = "deb";
      event.app = "example-app";
      checkin.events.push_back(event);
    }
    return checkin;
  }
  static Json BodyOf(const net::HttpResponse& response) {
    Json json = Json::parse(response.body, nullptr, false);
    EXPECT_FALSE(json.is_discarded()) << response.body;
    return json;
  }
  static std::string ErrorCode(const net::HttpResponse& response) {
    Json json = BodyOf(response);
    return json.contains("error") ? json["error"].value("code", "") : "";
  }
  static std::string ErrorMessage(const net::HttpResponse& response) {
    Json json = BodyOf(response);
    return json.contains("error") ? json["error"].value("message", "") : "";
  }
  uint64_t Enrollments(EnrollmentResult result) const {
    return region_->slot_data(0).enrollments[static_cast<size_t>(result)].load();
  }

  std::string dir_;
  UnixSeconds now_ = kStart;
  ServerConfig config_;
  boost::asio::io_context io_{1};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::FleetStore> fleet_;
  std::unique_ptr<policy::SigningKey> key_;
  std::unique_ptr<BundleHub> hub_;
  std::unique_ptr<MetricsRegion> region_;
  std::unique_ptr<MetricsSlot> slot_;
  std::unique_ptr<DeviceGenerations> generations_;
  WorkerContext context_;
  std::unique_ptr<CheckinWriter> writer_;
  std::unique_ptr<DeviceApi> api_;
};

TEST_F(DeviceApiTest, EnrolmentIsCommittedByTheWriterAndAnsweredAfterwards) {
  auto tokens = MakeTokens(1);
  auto sink = StartEnroll(EnrollBody(tokens[0], "laptop-1"), "192.0.2.1");
  // The handler returned without answering: the commit happens on the writer thread and the
  // answer comes back through the io_context.
  EXPECT_FALSE(sink->response().has_value());
  RunUntilAnswered({sink});
  ASSERT_TRUE(sink->response().has_value());
  EXPECT_EQ(sink->response()->status, 201) << sink->response()->body;
  auto answer = protocol::ParseEnrollResponse(sink->response()->body);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  // Durable before the answer: another connection sees the device and its credential works.
  auto other = store::OpenSqliteFleetStore(dir_ + "/appban.db");
  ASSERT_TRUE(other.ok());
  auto device = (*other)->AuthenticateDevice(answer->credential, now_);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  EXPECT_EQ(device->id, answer->device_id);
  EXPECT_EQ(device->hostname, "laptop-1");
  EXPECT_EQ(Enrollments(EnrollmentResult::kEnrolled), 1u);
}

TEST_F(DeviceApiTest, RefusalsAre401NamingTheReasonAndCountedByKind) {
  auto tokens = MakeTokens(3);
  auto expiring = MakeTokens(1, "", 60);
  ASSERT_EQ(Enroll(EnrollBody(tokens[0]), "192.0.2.1").status, 201);
  store::AuditRecord audit{"alice", "", "", nullptr, nullptr, now_};
  ASSERT_TRUE(fleet_->RevokeEnrollmentToken(store::SplitPresented(tokens[1])->id, audit).ok());
  std::string unknown = store::JoinPresented("e-00000000000000aa", std::string(64, 'a'));

  auto used = Enroll(EnrollBody(tokens[0]), "192.0.2.2");
  EXPECT_EQ(used.status, 401);
  EXPECT_EQ(ErrorCode(used), "token_invalid");
  EXPECT_NE(ErrorMessage(used).find("already used"), std::string::npos) << ErrorMessage(used);
  auto revoked = Enroll(EnrollBody(tokens[1]), "192.0.2.3");
  EXPECT_EQ(revoked.status, 401);
  EXPECT_NE(ErrorMessage(revoked).find("revoked"), std::string::npos) << ErrorMessage(revoked);
  auto forged = Enroll(EnrollBody(unknown), "192.0.2.4");
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(ErrorCode(forged), "token_invalid");
  EXPECT_NE(ErrorMessage(forged).find("unknown"), std::string::npos) << ErrorMessage(forged);
  now_ += 60;
  auto expired = Enroll(EnrollBody(expiring[0]), "192.0.2.5");
  EXPECT_EQ(expired.status, 401);
  EXPECT_NE(ErrorMessage(expired).find("expired"), std::string::npos) << ErrorMessage(expired);
  auto bad = Enroll("{\"token\": 5}", "192.0.2.6");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorCode(bad), "bad_request");

  // The rate limit comes first: burst 3 from one address, the 4th is refused even with a good token.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Enroll("{}", "198.51.100.7").status, 400);
  auto refused = Enroll(EnrollBody(tokens[2]), "198.51.100.7");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(ErrorCode(refused), "rate_limited");

  EXPECT_EQ(Enrollments(EnrollmentResult::kEnrolled), 1u);
  EXPECT_EQ(Enrollments(EnrollmentResult::kTokenUsed), 2u);  // used + revoked
  EXPECT_EQ(Enrollments(EnrollmentResult::kTokenInvalid), 1u);
  EXPECT_EQ(Enrollments(EnrollmentResult::kTokenExpired), 1u);
  EXPECT_EQ(Enrollments(EnrollmentResult::kBadRequest), 4u);
  EXPECT_EQ(Enrollments(EnrollmentResult::kRateLimited), 1u);
  EXPECT_EQ(Enrollments(EnrollmentResult::kError), 0u);
}

TEST_F(DeviceApiTest, ManyEnrolmentsInFlightEachGetTheirOwnAnswerAndATokenWinsOnce) {
  auto tokens = MakeTokens(20);
  std::vector<std::shared_ptr<CapturingSink>> sinks;
  // All submitted before the io_context runs: they reach the writer together.
  for (size_t i = 0; i < tokens.size(); ++i) {
    sinks.push_back(StartEnroll(EnrollBody(tokens[i], "h" + std::to_string(i)), "203.0.113." + std::to_string(i)));
  }
  std::vector<std::shared_ptr<CapturingSink>> same;
  for (int i = 0; i < 5; ++i)
    same.push_back(StartEnroll(EnrollBody(tokens[0], "dup"), "198.51.100." + std::to_string(i)));
  std::vector<std::shared_ptr<CapturingSink>> all = sinks;
  all.insert(all.end(), same.begin(), same.end());
  RunUntilAnswered(all);
  std::set<std::string> device_ids;
  for (const auto& sink : sinks) {
    ASSERT_TRUE(sink->response().has_value());
    ASSERT_EQ(sink->response()->status, 201) << sink->response()->body;
    device_ids.insert(BodyOf(*sink->response())["device_id"].get<std::string>());
  }
  EXPECT_EQ(device_ids.size(), tokens.size());
  for (const auto& sink : same) {
    ASSERT_TRUE(sink->response().has_value());
    EXPECT_EQ(sink->response()->status, 401);
    EXPECT_NE(ErrorMessage(*sink->response()).find("already used"), std::string::npos);
  }
  EXPECT_EQ(*fleet_->CountDevices(), static_cast<int64_t>(tokens.size()));
  EXPECT_EQ(Enrollments(EnrollmentResult::kEnrolled), tokens.size());
  EXPECT_EQ(Enrollments(EnrollmentResult::kTokenUsed), 5u);
  auto verification = store_->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  EXPECT_TRUE(verification->ok());
}

TEST_F(DeviceApiTest, AGroupTokenListsTheDeviceInItsGroup) {
  decide::PolicyAdmin admin(*store_, "alice", [this] { return now_; });
  policy::Group group;
  group.name = "field-staff";
  ASSERT_TRUE(admin.CreateGroup(group).ok());
  auto tokens = MakeTokens(1, "field-staff");
  auto answer = Enroll(EnrollBody(tokens[0]));
  ASSERT_EQ(answer.status, 201) << answer.body;
  Json body = BodyOf(answer);
  EXPECT_EQ(body["group"], "field-staff");
  auto stored = store_->GetGroup("field-staff");
  ASSERT_TRUE(stored.ok());
  EXPECT_NE(std::find(stored->devices.begin(), stored->devices.end(), body["device_id"].get<std::string>()),
            stored->devices.end());
}

TEST_F(DeviceApiTest, StoredEventsAreCountedByKindAfterTheCommit) {
  auto tokens = MakeTokens(1);
  auto enrolled = protocol::ParseEnrollResponse(Enroll(EnrollBody(tokens[0])).body);
  ASSERT_TRUE(enrolled.ok());
  protocol::CheckinRequest checkin;
  checkin.inventory = std::vector<policy::InstalledApp>{};
  checkin.inventory_hash = protocol::InventoryHash(*checkin.inventory);
  for (int seq = 1; seq <= 3; ++seq) {
    protocol::DeviceEvent event;
    event.seq = seq;
    event.at = now_;
    event.kind = seq == 3 ? protocol::EventKind::kInstallRefused : protocol::EventKind::kRemoved;
    event.platform = "deb";
    event.app = "example-app";
    checkin.events.push_back(event);
  }
  auto send = [&] {
    auto sink = std::make_shared<CapturingSink>();
    net::HttpRequest request;
    request.method = "POST";
    request.path = "/v1/checkin";
    request.body = protocol::ToJson(checkin).dump();
    request.headers.emplace_back("authorization", "Bearer " + enrolled->credential);
    api_->Checkin(request, net::Responder(sink, 1));
    RunUntilAnswered({sink});
    return sink->response().value_or(net::HttpResponse{});
  };
  auto first = send();
  ASSERT_EQ(first.status, 200) << first.body;
  const WorkerSlotData& data = region_->slot_data(0);
  EXPECT_EQ(data.events[static_cast<size_t>(EventKind::kRemoved)].load(), 2u);
  EXPECT_EQ(data.events[static_cast<size_t>(EventKind::kInstallRefused)].load(), 1u);
  // The same events resent (a lost answer) are not stored again, nor counted again.
  ASSERT_EQ(send().status, 200);
  EXPECT_EQ(data.events[static_cast<size_t>(EventKind::kRemoved)].load(), 2u);
}

// Regression (hardening #15): a device that sent seq 2^63-1 made every later, lower seq look
// "already stored": seq 7 was acknowledged and dropped. A seq far above the highest stored one is
// refused, and a seq at or below it must carry the event stored under it, or the request fails.
TEST_F(DeviceApiTest, ASeqJumpIsRefusedAndAnAcknowledgedEventIsAlwaysStored) {
  protocol::EnrollResponse enrolled = EnrolledAndCheckedIn(1, 3);
  protocol::CheckinRequest jump = EventsCheckin(4, 4);
  jump.events[0].seq = std::numeric_limits<int64_t>::max();
  auto refused = SendCheckin(*api_, enrolled.credential, jump);
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(ErrorCode(refused), "bad_request");
  EXPECT_NE(ErrorMessage(refused).find("events[0].seq"), std::string::npos) << refused.body;
  EXPECT_NE(ErrorMessage(refused).find("more than 1000000 above"), std::string::npos) << refused.body;

  // A jump inside one batch counts from the event before it.
  protocol::CheckinRequest batch = EventsCheckin(4, 5);
  batch.events[1].seq = 4 + protocol::kProtocolLimits.max_event_seq_jump + 1;
  EXPECT_EQ(SendCheckin(*api_, enrolled.credential, batch).status, 400);

  // The later events are stored and acknowledged.
  auto later = SendCheckin(*api_, enrolled.credential, EventsCheckin(4, 7));
  ASSERT_EQ(later.status, 200) << later.body;
  EXPECT_EQ(BodyOf(later)["events_acked"], 7);
  auto stored = fleet_->ListEvents(enrolled.device_id, 100);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  std::vector<int64_t> seqs;
  for (const auto& event : *stored) seqs.push_back(event.seq);
  std::sort(seqs.begin(), seqs.end());
  EXPECT_EQ(seqs, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));

  // A queue resent after a lost answer is acknowledged again; a different event under a stored
  // seq (a device whose counter went back) is refused, not acknowledged and dropped.
  auto resent = SendCheckin(*api_, enrolled.credential, EventsCheckin(5, 7));
  ASSERT_EQ(resent.status, 200) << resent.body;
  EXPECT_EQ(BodyOf(resent)["events_acked"], 7);
  protocol::CheckinRequest reused = EventsCheckin(6, 8);
  reused.events[0].app = "another-app";
  auto conflict = SendCheckin(*api_, enrolled.credential, reused);
  EXPECT_EQ(conflict.status, 400) << conflict.body;
  EXPECT_NE(ErrorMessage(conflict).find("event seq 6: a different event is already stored"), std::string::npos)
      << conflict.body;
  stored = fleet_->ListEvents(enrolled.device_id, 100);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 7u);  // seq 8 of the refused request is not stored either
}

// Each worker keeps the devices it serves in memory (DeviceCache); a write committed by another
// worker makes its copy stale through the shared generations, so it reads the row again.
TEST_F(DeviceApiTest, AWorkerNoticesWhatAnotherWorkerCommittedForTheSameDevice) {
  auto enrolled = protocol::ParseEnrollResponse(Enroll(EnrollBody(MakeTokens(1)[0])).body);
  ASSERT_TRUE(enrolled.ok());
  auto other = StartOtherWorker();
  protocol::CheckinRequest first = EventsCheckin(1, 3);
  first.inventory = std::vector<policy::InstalledApp>{};
  auto answer = SendCheckin(*api_, enrolled->credential, first);
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(BodyOf(answer)["events_acked"], 3);
  // The device reconnects and lands on the other worker, which stores two more events.
  answer = SendCheckin(*other->api, enrolled->credential, EventsCheckin(4, 5));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(BodyOf(answer)["events_acked"], 5);
  // Back on the first worker: its copy said 3; it must answer from the database's 5.
  answer = SendCheckin(*api_, enrolled->credential, EventsCheckin(1, 0));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(BodyOf(answer)["events_acked"], 5);
  other->writer.reset();
}

// A cached device costs no database read: a change made behind the server's back (not announced
// through the generations) is not seen; an announced one is. Every change the server makes to a
// device is announced (check-in writer, revocation).
TEST_F(DeviceApiTest, ACachedDeviceIsServedFromMemoryUntilAChangeIsAnnounced) {
  protocol::EnrollResponse enrolled = EnrolledAndCheckedIn(1, 2);
  ASSERT_FALSE(enrolled.device_id.empty());
  store::AuditRecord audit{"alice", "", "", nullptr, nullptr, now_};
  ASSERT_TRUE(fleet_->RevokeDevice(enrolled.device_id, audit).ok());
  EXPECT_EQ(SendCheckin(*api_, enrolled.credential, EventsCheckin(1, 0)).status, 200)
      << "answered from the cache: the revocation was not announced";
  generations_->Bump(enrolled.device_id);  // what the worker's FleetNotifier::DeviceRevoked does
  auto refused = SendCheckin(*api_, enrolled.credential, EventsCheckin(1, 0));
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(ErrorCode(refused), "device_revoked");
}

TEST_F(DeviceApiTest, ACachedDeviceStillRefusesAWrongSecret) {
  protocol::EnrollResponse enrolled = EnrolledAndCheckedIn(1, 0);
  ASSERT_FALSE(enrolled.device_id.empty());
  std::string forged = enrolled.device_id + "." + std::string(64, 'a');
  auto refused = SendCheckin(*api_, forged, EventsCheckin(1, 0));
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(ErrorCode(refused), "unauthenticated");
  // ... and the genuine credential keeps working.
  EXPECT_EQ(SendCheckin(*api_, enrolled.credential, EventsCheckin(1, 0)).status, 200);
}

// A worker that died may have committed writes it never announced: the supervisor bumps the
// epoch, which makes every cached device stale in every worker.
TEST_F(DeviceApiTest, ANewEpochMakesEveryCachedDeviceStale) {
  protocol::EnrollResponse enrolled = EnrolledAndCheckedIn(1, 1);
  ASSERT_FALSE(enrolled.device_id.empty());
  store::AuditRecord audit{"alice", "", "", nullptr, nullptr, now_};
  ASSERT_TRUE(fleet_->RevokeDevice(enrolled.device_id, audit).ok());
  generations_->BumpEpoch();
  EXPECT_EQ(SendCheckin(*api_, enrolled.credential, EventsCheckin(1, 0)).status, 403);
}

// GET /v1/admin/compliance publishes its totals as the appban_compliance_devices gauges.
TEST_F(DeviceApiTest, ComplianceSummarySetsTheComplianceGauges) {
  for (const std::string& token : MakeTokens(3)) {
    ASSERT_EQ(Enroll(EnrollBody(token), "192.0.2." + std::to_string(token.size() + token.back())).status, 201);
  }
  store::AuditRecord audit{"setup", "", "", nullptr, nullptr, now_, nullptr};
  auto dave =
      fleet_->RecordSignIn(store::SignIn{"https://idp.test", "dave", "dave", store::Role::kAuditor, now_}, audit);
  ASSERT_TRUE(dave.ok());
  auto admin_token = fleet_->CreateApiToken(dave->id, "dave-token", store::Role::kAuditor, std::nullopt, audit);
  ASSERT_TRUE(admin_token.ok());
  net::HttpRequest request;
  request.method = "GET";
  request.path = "/v1/admin/compliance";
  request.remote_address = "127.0.0.1";
  request.headers.emplace_back("authorization", "Bearer " + admin_token->presented);
  // A value no 3-device fleet can have, so the assertions below prove the summary wrote the gauges.
  slot_->SetComplianceCounts({7, 7, 7, 7});
  // A compliance view answers before HandleAdminRequest returns.
  auto sink = std::make_shared<CapturingSink>();
  HandleAdminRequest(context_, request, net::Responder(sink, 1));
  ASSERT_TRUE(sink->response().has_value());
  const net::HttpResponse& response = *sink->response();
  ASSERT_EQ(response.status, 200) << response.body;
  Json totals = BodyOf(response)["totals"];
  EXPECT_EQ(totals["devices"], 3);
  const SharedGaugeData& shared = region_->shared();
  auto gauge = [&](DeviceCompliance state) {
    return static_cast<int64_t>(shared.compliance_devices[static_cast<size_t>(state)].load());
  };
  EXPECT_EQ(gauge(DeviceCompliance::kCompliant), totals["fully_compliant"].get<int64_t>());
  EXPECT_EQ(gauge(DeviceCompliance::kViolating), totals["violating_any"].get<int64_t>());
  EXPECT_EQ(gauge(DeviceCompliance::kPending),
            totals["pending_any"].get<int64_t>() - totals["stale_any"].get<int64_t>());
  EXPECT_EQ(gauge(DeviceCompliance::kStale), totals["stale_any"].get<int64_t>());
  EXPECT_EQ(gauge(DeviceCompliance::kMismatch), totals["mismatch_any"].get<int64_t>());
}

}  // namespace
}  // namespace appban::server
