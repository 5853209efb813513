// The store's backends for tests that must hold on every one of them (store_contract_test.cc):
// a StoreBackend opens stores on one fresh database (SQLite: a file in a scratch directory;
// PostgreSQL: a new database in the run's PostgresTestCluster, dropped afterwards) and gives raw access to it, as
// someone with direct access to the database would have, to tamper with what the store wrote.
// Test-only.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>

#include "appban/store/audit_checkpoint.h"
#include "appban/store/fleet_test_support.h"
#include "appban/store/postgres.h"
#include "appban/store/postgres_store.h"
#include "appban/store/postgres_test_cluster.h"
#include "appban/store/store.h"
#include "appban/store/store_test_support.h"

namespace appban::store {

// The fleet tests' scratch directory and raw SQLite connection serve here too.
using fleet_testing::RawDb;
using fleet_testing::ScratchDir;

class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  // A new store object (a new connection) on this backend's database.
  virtual Result<std::unique_ptr<Store>> Open() = 0;
  // A new fleet store (a new connection) on the same database. Safe to call from several threads.
  virtual Result<std::unique_ptr<FleetStore>> OpenFleet() const = 0;
  // Raw SQL on the database, bypassing the store; false when the database refused it.
  virtual bool Exec(const std::string& sql) = 0;
  // The first column of the first row ("" when none or on error).
  virtual std::string Scalar(const std::string& sql) = 0;
  // Drops a trigger of `table` (the append-only guards), as someone who owns the database can.
  virtual bool DropTrigger(const std::string& name, const std::string& table) = 0;
  // The database file, for the checks only SQLite can make (query plans); "" on other backends.
  virtual std::string SqlitePath() const { return ""; }
};

class SqliteBackend final : public StoreBackend {
 public:
  Result<std::unique_ptr<Store>> Open() override { return OpenSqliteStore(dir_.db()); }
  Result<std::unique_ptr<FleetStore>> OpenFleet() const override { return OpenSqliteFleetStore(dir_.db()); }
  bool Exec(const std::string& sql) override { return RawDb(dir_.db()).Exec(sql) == SQLITE_OK; }
  std::string Scalar(const std::string& sql) override { return RawDb(dir_.db()).Scalar(sql); }
  bool DropTrigger(const std::string& name, const std::string&) override { return Exec("DROP TRIGGER " + name); }
  std::string SqlitePath() const override { return dir_.db(); }

 private:
  ScratchDir dir_;
};

class PostgresBackend final : public StoreBackend {
 public:
  // Each backend is one node: its stores keep a signed audit checkpoint in a scratch directory of
  // their own, as a server node keeps one in its data directory (audit_checkpoint.h).
  PostgresBackend() {
    EXPECT_TRUE(LoadAuditCheckpointKey(checkpoint_dir(), true).ok());
    auto cluster = PostgresTestCluster::Shared();
    EXPECT_TRUE(cluster.ok()) << cluster.status().ToString();
    if (!cluster.ok()) return;
    auto url = (*cluster)->CreateDatabase();
    EXPECT_TRUE(url.ok()) << url.status().ToString();
    if (url.ok()) url_ = *url;
  }
  ~PostgresBackend() override {
    auto cluster = PostgresTestCluster::Shared();
    if (cluster.ok() && !url_.empty()) (void)(*cluster)->DropDatabase(PostgresTestCluster::DatabaseOf(url_));
  }
  Result<std::unique_ptr<Store>> Open() override { return OpenPostgresStore(url_, std::nullopt, checkpoint_dir()); }
  Result<std::unique_ptr<FleetStore>> OpenFleet() const override {
    return OpenPostgresFleetStore(url_, std::nullopt, checkpoint_dir());
  }
  bool Exec(const std::string& sql) override {
    auto raw = postgres::Connection::Open(url_);
    return raw.ok() && raw->ExecScript(sql).ok();
  }
  std::string Scalar(const std::string& sql) override {
    auto raw = postgres::Connection::Open(url_);
    if (!raw.ok()) return "";
    auto rows = raw->Query(sql);
    return rows.ok() && !rows->empty() && !rows->IsNull(0, 0) ? rows->Text(0, 0) : "";
  }
  bool DropTrigger(const std::string& name, const std::string& table) override {
    return Exec("DROP TRIGGER " + name + " ON " + table);
  }
  const std::string& url() const { return url_; }
  std::string checkpoint_dir() const { return (checkpoint_.path() / "audit-checkpoint").string(); }

 private:
  ScratchDir checkpoint_;
  std::string url_;
};

// The backends by name, for INSTANTIATE_TEST_SUITE_P.
inline std::unique_ptr<StoreBackend> MakeStoreBackend(const std::string& name) {
  if (name == "postgres") return std::make_unique<PostgresBackend>();
  return std::make_unique<SqliteBackend>();
}

// Tests of the fleet store that must hold on every backend: TEST_P over ("sqlite", "postgres").
// OpenFleet and OpenStore open a new connection each, like the fleet_testing helpers on a file.
class FleetOnEveryBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { backend_ = MakeStoreBackend(GetParam()); }
  StoreBackend& backend() { return *backend_; }
  std::unique_ptr<FleetStore> OpenFleet() const {
    auto fleet = backend_->OpenFleet();
    EXPECT_TRUE(fleet.ok()) << fleet.status().ToString();
    return fleet.ok() ? std::move(fleet).value() : nullptr;
  }
  Result<std::unique_ptr<Store>> OpenStore() { return backend_->Open(); }

 private:
  std::unique_ptr<StoreBackend> backend_;
};

inline std::string BackendName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

inline policy::Rule SampleRule(const std::string& id) {
  policy::Rule rule;
  rule.id = id;
  rule.title = "ban " + id;
  rule.targets = {*policy::MakeTarget(policy::TargetKind::kAndroidPackage, "com.example." + id)};
  return rule;
}

// Fills a store with a short history: three proposals, an approval, a group.
inline void PopulateHistory(Store& store) {
  UnixSeconds t = 1700000000;
  ASSERT_TRUE(ProposeRuleAs(store, SampleRule("r1"), "alice", t++).ok());
  ASSERT_TRUE(ProposeRuleAs(store, SampleRule("r2"), "alice", t++).ok());
  ASSERT_TRUE(ApproveRuleAs(store, "r1", "bob", t++).ok());
  ASSERT_TRUE(CreateGroupAs(store, policy::Group{"ministers", "", {"phone-1"}, 0}, "alice", t++).ok());
  ASSERT_TRUE(ProposeRuleAs(store, SampleRule("r3"), "alice", t++).ok());
}

}  // namespace appban::store
