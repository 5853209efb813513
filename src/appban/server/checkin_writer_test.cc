// CheckinWriter against a real SQLite database in a temporary directory: what accumulates while a
// commit is in progress goes into the next one, every caller is answered on the io_context after
// the commit, and a failed commit fails exactly the requests it carried. Database failures are
// real ones: another connection holds the write lock, or a trigger aborts the writer's statements.
#include "appban/server/checkin_writer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "appban/store/store.h"

namespace appban::server {
namespace {

namespace fs = std::filesystem;

constexpr UnixSeconds kStart = 1'800'000'000;

// A plain SQLite connection to the same file, standing in for another worker process or an
// operator with the sqlite3 shell.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawConnection() { sqlite3_close(db_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  void Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error != nullptr ? error : "");
    sqlite3_free(error);
  }

 private:
  sqlite3* db_ = nullptr;
};

// One check-in's answer as the io_context thread receives it.
struct Answer {
  store::CheckinWrite write;
  store::CheckinOutcome outcome;
  std::optional<uint64_t> generation_before;
  std::thread::id thread;
};

class CheckinWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "appban-checkin-writer-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    db_ = dir_ + "/appban.db";
    // The store creates the schema; the fleet connections below use it.
    auto store = store::OpenSqliteStore(db_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto fleet = store::OpenSqliteFleetStore(db_);
    ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
    fleet_ = std::move(*fleet);
    auto generations = DeviceGenerations::Create();
    ASSERT_TRUE(generations.ok());
    generations_ = std::make_unique<DeviceGenerations>(std::move(*generations));
    StartWriter();
  }
  void TearDown() override {
    writer_.reset();
    fleet_.reset();
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  void StartWriter() {
    auto writer_fleet = store::OpenSqliteFleetStore(db_, store::FleetConnection::kBatchWriter);
    ASSERT_TRUE(writer_fleet.ok()) << writer_fleet.status().ToString();
    writer_ = std::make_unique<CheckinWriter>(io_, std::move(*writer_fleet), *generations_);
  }

  std::vector<std::string> MakeTokens(size_t count, UnixSeconds expires_at = kStart + 3600) {
    store::AuditRecord audit{"alice", "", "", nullptr, nullptr, kStart};
    auto created = fleet_->CreateEnrollmentTokens("", expires_at, "", count, audit);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    std::vector<std::string> presented;
    if (created.ok()) {
      for (const auto& token : *created) presented.push_back(token.presented);
    }
    return presented;
  }
  // Enrols a device directly (not through the writer) and returns its id.
  std::string EnrolledDevice(const std::string& hostname) {
    auto enrolled = fleet_->EnrollDevice(MakeTokens(1)[0], hostname, "linux", "1.0", kStart);
    EXPECT_TRUE(enrolled.ok()) << enrolled.status().ToString();
    return enrolled.ok() ? enrolled->device.id : "";
  }

  static store::CheckinWrite EventsWrite(const std::string& device_id, int64_t first_seq, int64_t last_seq) {
    store::CheckinWrite write;
    write.device_id = device_id;
    write.last_seen = kStart + 60;
    for (int64_t seq = first_seq; seq <= last_seq; ++seq) {
      store::DeviceEvent event;
      event.seq = seq;
      event.at = kStart;
      event.kind = "removed";
      event.platform = "deb";
      event.app = "example-app";
      event.received_at = kStart + 60;
      write.events.push_back(event);
    }
    return write;
  }

  // Submits `write`; its answer lands in answers_ when the io_context runs.
  void Submit(store::CheckinWrite write) {
    writer_->Submit(std::move(write), [this](const store::CheckinWrite& written, store::CheckinOutcome outcome,
                                             std::optional<uint64_t> generation_before) {
      answers_.push_back(Answer{written, std::move(outcome), generation_before, std::this_thread::get_id()});
    });
  }
  // Runs the io_context until `done` holds (or 10 s passed).
  void RunUntil(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
  }
  // Waits (without running the io_context) until the writer took everything queued.
  void WaitUntilTaken() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (writer_->queued() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  std::vector<store::DeviceEvent> StoredEvents(const std::string& device_id) {
    auto events = fleet_->ListEvents(device_id, 100);
    EXPECT_TRUE(events.ok()) << events.status().ToString();
    return events.ok() ? *events : std::vector<store::DeviceEvent>{};
  }

  std::string dir_;
  std::string db_;
  boost::asio::io_context io_{1};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::FleetStore> fleet_;
  std::unique_ptr<DeviceGenerations> generations_;
  std::unique_ptr<CheckinWriter> writer_;
  std::vector<Answer> answers_;
};

TEST_F(CheckinWriterTest, ACheckinIsAnsweredOnTheIoThreadAfterItsEventsAreDurable) {
  std::string device = EnrolledDevice("laptop-1");
  uint64_t generation = generations_->Current(device);
  Submit(EventsWrite(device, 1, 3));
  // Nobody is answered from the writer thread: only running the io_context delivers the answer.
  writer_->Flush();
  EXPECT_TRUE(answers_.empty());
  RunUntil([&] { return answers_.size() == 1; });
  ASSERT_EQ(answers_.size(), 1u);
  const Answer& answer = answers_[0];
  EXPECT_EQ(answer.thread, std::this_thread::get_id());
  ASSERT_TRUE(answer.outcome.status.ok()) << answer.outcome.status.ToString();
  EXPECT_EQ(answer.outcome.device_id, device);
  EXPECT_EQ(answer.outcome.highest_seq, 3);
  EXPECT_EQ(answer.write.events.size(), 3u) << "the committed write comes back with its answer";
  // The writer bumped the device's generation after the commit, so other workers re-read it.
  ASSERT_TRUE(answer.generation_before.has_value());
  EXPECT_EQ(*answer.generation_before, generation);
  EXPECT_EQ(generations_->Current(device), generation + 1);
  // Another connection sees the events: they were committed before the answer.
  EXPECT_EQ(StoredEvents(device).size(), 3u);
}

TEST_F(CheckinWriterTest, ALastSeenOnlyCheckinLeavesTheDeviceGenerationAlone) {
  std::string device = EnrolledDevice("laptop-1");
  uint64_t generation = generations_->Current(device);
  store::CheckinWrite write;
  write.device_id = device;
  write.last_seen = kStart + 120;
  Submit(write);
  writer_->Flush();
  RunUntil([&] { return answers_.size() == 1; });
  ASSERT_EQ(answers_.size(), 1u);
  EXPECT_TRUE(answers_[0].outcome.status.ok()) << answers_[0].outcome.status.ToString();
  EXPECT_FALSE(answers_[0].generation_before.has_value());
  EXPECT_EQ(generations_->Current(device), generation);
  auto stored = fleet_->GetDevice(device);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->last_seen, kStart + 120);
}

TEST_F(CheckinWriterTest, CheckinsArrivingDuringACommitGoIntoTheNextOne) {
  std::vector<std::string> devices;
  for (int i = 0; i < 6; ++i) devices.push_back(EnrolledDevice("host-" + std::to_string(i)));

  // Another process holds the database's write lock, so the writer's first commit waits.
  RawConnection other(db_);
  other.Exec("BEGIN IMMEDIATE");
  Submit(EventsWrite(devices[0], 1, 1));
  WaitUntilTaken();
  EXPECT_EQ(writer_->queued(), 0u) << "the writer took the first check-in and is committing it";
  for (size_t i = 1; i < devices.size(); ++i) Submit(EventsWrite(devices[i], 1, 2));
  EXPECT_EQ(writer_->queued(), 5u) << "the others wait for the next commit";
  other.Exec("COMMIT");

  RunUntil([&] { return answers_.size() == devices.size(); });
  ASSERT_EQ(answers_.size(), devices.size());
  for (const Answer& answer : answers_) {
    EXPECT_TRUE(answer.outcome.status.ok()) << answer.outcome.device_id << ": " << answer.outcome.status.ToString();
  }
  EXPECT_EQ(answers_[0].outcome.device_id, devices[0]);
  EXPECT_EQ(writer_->queued(), 0u);
  for (size_t i = 1; i < devices.size(); ++i) EXPECT_EQ(StoredEvents(devices[i]).size(), 2u);
}

TEST_F(CheckinWriterTest, AnUnknownOrRevokedDeviceFailsOnlyItsOwnCheckin) {
  std::string good = EnrolledDevice("good");
  std::string revoked = EnrolledDevice("revoked");
  store::AuditRecord audit{"alice", "", "", nullptr, nullptr, kStart};
  ASSERT_TRUE(fleet_->RevokeDevice(revoked, audit).ok());

  RawConnection other(db_);
  other.Exec("BEGIN IMMEDIATE");  // so all three go into one batch
  Submit(EventsWrite(good, 1, 1));
  WaitUntilTaken();
  Submit(EventsWrite("d-nosuchdevice", 1, 1));
  Submit(EventsWrite(revoked, 1, 1));
  Submit(EventsWrite(good, 2, 2));
  other.Exec("COMMIT");

  RunUntil([&] { return answers_.size() == 4; });
  ASSERT_EQ(answers_.size(), 4u);
  EXPECT_TRUE(answers_[0].outcome.status.ok());
  EXPECT_EQ(answers_[1].outcome.status.code(), StatusCode::kNotFound) << answers_[1].outcome.status.ToString();
  EXPECT_FALSE(answers_[1].generation_before.has_value());
  EXPECT_EQ(answers_[2].outcome.status.code(), StatusCode::kPermissionDenied) << answers_[2].outcome.status.ToString();
  EXPECT_TRUE(answers_[3].outcome.status.ok()) << answers_[3].outcome.status.ToString();
  EXPECT_EQ(answers_[3].outcome.highest_seq, 2);
  EXPECT_EQ(StoredEvents(good).size(), 2u);
  EXPECT_TRUE(StoredEvents(revoked).empty());
}

TEST_F(CheckinWriterTest, AFailedCommitFailsEveryCheckinInItAndTheWriterCarriesOn) {
  std::string first = EnrolledDevice("first");
  std::string second = EnrolledDevice("second");
  uint64_t generation = generations_->Current(first);
  RawConnection other(db_);
  other.Exec("CREATE TRIGGER refuse_events BEFORE INSERT ON device_events BEGIN SELECT RAISE(ABORT, 'disk full'); END");
  other.Exec("BEGIN IMMEDIATE");
  Submit(EventsWrite(first, 1, 1));
  WaitUntilTaken();
  Submit(EventsWrite(first, 2, 2));
  Submit(EventsWrite(second, 1, 1));
  other.Exec("COMMIT");
  RunUntil([&] { return answers_.size() == 3; });
  ASSERT_EQ(answers_.size(), 3u);
  for (const Answer& answer : answers_) {
    EXPECT_FALSE(answer.outcome.status.ok()) << answer.outcome.device_id;
    EXPECT_FALSE(answer.generation_before.has_value()) << "nothing committed, nothing to announce";
  }
  EXPECT_EQ(answers_[2].outcome.device_id, second) << "a failed outcome still names its device";
  EXPECT_EQ(generations_->Current(first), generation);
  EXPECT_TRUE(StoredEvents(first).empty());

  // Once the database accepts writes again, so does the writer.
  other.Exec("DROP TRIGGER refuse_events");
  answers_.clear();
  Submit(EventsWrite(second, 1, 1));
  RunUntil([&] { return answers_.size() == 1; });
  ASSERT_EQ(answers_.size(), 1u);
  EXPECT_TRUE(answers_[0].outcome.status.ok()) << answers_[0].outcome.status.ToString();
  EXPECT_EQ(StoredEvents(second).size(), 1u);
}

TEST_F(CheckinWriterTest, DestroyingTheWriterCommitsWhatIsQueued) {
  std::string device = EnrolledDevice("laptop-1");
  RawConnection other(db_);
  other.Exec("BEGIN IMMEDIATE");
  Submit(EventsWrite(device, 1, 1));
  WaitUntilTaken();
  Submit(EventsWrite(device, 2, 5));
  other.Exec("COMMIT");
  writer_.reset();  // shutdown: commits the queue, then joins
  EXPECT_EQ(StoredEvents(device).size(), 5u);
  // The answers were handed to the io_context and still arrive.
  RunUntil([&] { return answers_.size() == 2; });
  ASSERT_EQ(answers_.size(), 2u);
  EXPECT_TRUE(answers_[1].outcome.status.ok());
  EXPECT_EQ(answers_[1].outcome.highest_seq, 5);
}

TEST_F(CheckinWriterTest, EnrolmentsAreJudgedAtTheTimeEachRequestArrived) {
  auto lasting = MakeTokens(2);
  auto expiring = MakeTokens(1, kStart + 10);
  std::vector<std::optional<Result<store::Enrollment>>> outcomes(3);
  auto submit = [&](size_t index, const std::string& token, UnixSeconds now) {
    store::EnrollmentRequest request{token, "host-" + std::to_string(index), "linux", "1.0"};
    writer_->SubmitEnrollment(
        request, now, [&outcomes, index](Result<store::Enrollment> outcome) { outcomes[index] = std::move(outcome); });
  };
  RawConnection other(db_);
  other.Exec("BEGIN IMMEDIATE");  // all three reach the writer in one batch
  Submit(EventsWrite("d-nosuchdevice", 1, 1));
  WaitUntilTaken();
  submit(0, lasting[0], kStart);
  submit(1, expiring[0], kStart + 5);  // before its expiry: enrolled
  submit(2, lasting[0], kStart + 20);  // the same token again, later: already used
  EXPECT_EQ(writer_->queued(), 3u);
  other.Exec("COMMIT");
  RunUntil([&] { return outcomes[0] && outcomes[1] && outcomes[2]; });
  ASSERT_TRUE(outcomes[0] && outcomes[1] && outcomes[2]);
  ASSERT_TRUE(outcomes[0]->ok()) << outcomes[0]->status().ToString();
  EXPECT_EQ((*outcomes[0])->device.hostname, "host-0");
  EXPECT_EQ((*outcomes[0])->device.enrolled_at, kStart);
  ASSERT_TRUE(outcomes[1]->ok()) << outcomes[1]->status().ToString();
  EXPECT_EQ((*outcomes[1])->device.enrolled_at, kStart + 5);
  EXPECT_FALSE(outcomes[2]->ok()) << "a used token enrols one device only";
  // The enrolled devices authenticate from another connection: committed before the answer.
  auto device = fleet_->AuthenticateDevice((*outcomes[0])->credential, kStart + 30);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  EXPECT_EQ(device->hostname, "host-0");
}

TEST_F(CheckinWriterTest, AFailedEnrolmentCommitFailsItsRequestsAndLeavesTheTokensUnused) {
  auto tokens = MakeTokens(2);
  RawConnection other(db_);
  other.Exec("CREATE TRIGGER refuse_devices BEFORE INSERT ON devices BEGIN SELECT RAISE(ABORT, 'disk full'); END");
  std::vector<std::optional<Result<store::Enrollment>>> outcomes(2);
  for (size_t i = 0; i < tokens.size(); ++i) {
    writer_->SubmitEnrollment(store::EnrollmentRequest{tokens[i], "host", "linux", "1.0"}, kStart,
                              [&outcomes, i](Result<store::Enrollment> outcome) { outcomes[i] = std::move(outcome); });
  }
  RunUntil([&] { return outcomes[0] && outcomes[1]; });
  ASSERT_TRUE(outcomes[0] && outcomes[1]);
  EXPECT_FALSE(outcomes[0]->ok());
  EXPECT_FALSE(outcomes[1]->ok());

  // The failed transaction used nothing up: the same token enrols once the database is well.
  other.Exec("DROP TRIGGER refuse_devices");
  std::optional<Result<store::Enrollment>> retried;
  writer_->SubmitEnrollment(store::EnrollmentRequest{tokens[0], "host", "linux", "1.0"}, kStart + 1,
                            [&retried](Result<store::Enrollment> outcome) { retried = std::move(outcome); });
  RunUntil([&] { return retried.has_value(); });
  ASSERT_TRUE(retried.has_value());
  EXPECT_TRUE(retried->ok()) << retried->status().ToString();
}

}  // namespace
}  // namespace appban::server
