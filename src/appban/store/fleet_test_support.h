// Fixtures shared by the fleet store's tests (fleet_test.cc, fleet_checkin_test.cc,
// fleet_batch_test.cc, fleet_throughput_test.cc): a scratch directory, a raw SQLite connection
// "as someone with file access would use", and builders for audit records, enrolments, events and
// check-ins. Test-only; inline so that each test file may use any subset of them.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "appban/store/fleet.h"
#include "appban/store/store.h"

namespace appban::store::fleet_testing {

namespace fs = std::filesystem;

constexpr UnixSeconds kNow = 1'800'000'000;
constexpr UnixSeconds kDay = 86'400;

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "appban-fleet-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string db() const { return (path_ / "appban.db").string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A raw connection, as someone with file access would use.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close(db_); }
  int Exec(const std::string& sql) { return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr); }
  std::string Scalar(const std::string& sql) {
    sqlite3_stmt* statement = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(statement, 0);
      out = text ? reinterpret_cast<const char*>(text) : "";
    }
    sqlite3_finalize(statement);
    return out;
  }
  // The `detail` texts of EXPLAIN QUERY PLAN.
  std::string Plan(const std::string& query) {
    sqlite3_stmt* statement = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, ("EXPLAIN QUERY PLAN " + query).c_str(), -1, &statement, nullptr) != SQLITE_OK)
      return out;
    while (sqlite3_step(statement) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(statement, 3);
      out += text ? reinterpret_cast<const char*>(text) : "";
      out += "; ";
    }
    sqlite3_finalize(statement);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

inline AuditRecord By(const std::string& actor, UnixSeconds at = kNow) {
  AuditRecord record;
  record.actor = actor;
  record.at = at;
  return record;
}

inline std::unique_ptr<FleetStore> OpenFleet(const std::string& path) {
  auto store = OpenSqliteFleetStore(path);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

// Enrols a device through an admin-issued token; returns the enrolment.
inline Enrollment EnrollOne(FleetStore& fleet, const std::string& hostname, const std::string& group = "") {
  auto token = fleet.CreateEnrollmentToken(group, kNow + kDay, "test", By("alice"));
  EXPECT_TRUE(token.ok()) << token.status().ToString();
  auto enrolled = fleet.EnrollDevice(token->presented, hostname, "linux", "1.0", kNow);
  EXPECT_TRUE(enrolled.ok()) << enrolled.status().ToString();
  return enrolled.ok() ? *enrolled : Enrollment{};
}

inline DeviceEvent Event(int64_t seq, const std::string& rule_id = "r1") {
  DeviceEvent event;
  event.seq = seq;
  event.at = kNow + seq;
  event.kind = "removed";
  event.platform = "android";
  event.app = "com.example.banned";
  event.rule_id = rule_id;
  event.detail = "removed by the agent";
  event.received_at = kNow + seq;
  return event;
}

inline CheckinWrite Checkin(const std::string& device_id, std::vector<DeviceEvent> events,
                            UnixSeconds seen = kNow + 100) {
  CheckinWrite write;
  write.device_id = device_id;
  write.last_seen = seen;
  write.events = std::move(events);
  return write;
}

// "<action> <object>" of every audit entry, oldest first.
inline std::vector<std::string> AuditActions(Store& store) {
  std::vector<std::string> actions;
  auto entries = store.ReadAudit();
  EXPECT_TRUE(entries.ok());
  if (entries.ok()) {
    for (const auto& entry : *entries) actions.push_back(entry.action + " " + entry.object);
  }
  return actions;
}

inline EnrollmentRequest Request(const std::string& presented, const std::string& hostname) {
  return EnrollmentRequest{presented, hostname, "linux", "1.0"};
}

}  // namespace appban::store::fleet_testing
