#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "appban/store/audit_checkpoint.h"
#include "appban/store/fleet.h"
#include "appban/store/sqlite.h"
#include "appban/store/store.h"
#include "appban/store/store_backend_test_support.h"
#include "appban/store/store_test_support.h"

namespace appban::store {
namespace {

namespace fs = std::filesystem;

TEST(SqliteStore, SchemaVersionAndDurabilitySettings) {
  ScratchDir dir;
  {
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
  }
  RawDb raw(dir.db());
  // policy (1), fleet (2), match records (3), audit head triggers (4), rules hash mismatch (5)
  EXPECT_EQ(raw.Scalar("PRAGMA user_version"), "13");
  EXPECT_EQ(raw.Scalar("PRAGMA journal_mode"), "wal");
  // Reopening applies nothing twice.
  auto again = OpenSqliteStore(dir.db());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*again)->CheckIntegrity().ok());
}

// Readers whose snapshots overlap, so that at every moment one of them holds the log: what a
// server's workers do on a busy fleet. Each keeps a snapshot for `hold` before ending it.
class OverlappingReaders {
 public:
  OverlappingReaders(const std::string& path, std::chrono::milliseconds hold) {
    thread_ = std::thread([this, path, hold] {
      std::vector<sqlite::Database> readers;
      for (int i = 0; i < 2; ++i) {
        auto reader = sqlite::OpenStoreDatabase(path);
        if (!reader.ok()) return;  // the test's writer then sees no reader, and its count still holds
        readers.push_back(std::move(*reader));
      }
      bool open[2] = {false, false};
      for (size_t turn = 0; !stop_; ++turn) {
        size_t now = turn % 2, other = 1 - now;
        (void)readers[now].Exec("BEGIN; SELECT count(*) FROM server_settings;");
        open[now] = true;
        std::this_thread::sleep_for(hold);
        if (open[other]) (void)readers[other].Exec("COMMIT");
        open[other] = false;
      }
      for (int i = 0; i < 2; ++i)
        if (open[i]) (void)readers[i].Exec("COMMIT");
    });
  }
  ~OverlappingReaders() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

int64_t FileSize(const std::string& path) {
  std::error_code error;
  auto size = fs::file_size(path, error);
  return error ? 0 : static_cast<int64_t>(size);
}

// SQLite's passive checkpoint could never start the log again while readers overlapped, and the
// log grew without end (2.8 GiB in the console benchmark's fill). Past its bound, the committing
// connection now waits for the readers of older snapshots and empties it.
TEST(SqliteWal, StaysBoundedWhileReadersNeverStop) {
  ScratchDir dir;
  constexpr int64_t kBound = int64_t{1} << 20;
  auto writer = sqlite::OpenStoreDatabase(dir.db());
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  // Retried at the next commit after a wait runs out (the server waits 30 s): one slow moment on a
  // loaded machine must not leave the log unbounded for the rest of the test's second.
  ASSERT_TRUE(writer->BoundWal(kBound, 0).ok());
  ASSERT_TRUE(writer->Exec("CREATE TABLE filler(id INTEGER PRIMARY KEY, data BLOB NOT NULL)").ok());
  int64_t largest = 0;
  {
    OverlappingReaders readers(dir.db(), std::chrono::milliseconds(3));
    // 300 commits of 40 KiB: 12 MiB through the log, twelve times its bound.
    for (int commit = 0; commit < 300; ++commit) {
      ASSERT_TRUE(writer
                      ->Exec("BEGIN IMMEDIATE; INSERT INTO filler(data) SELECT randomblob(4096) FROM "
                             "(SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL "
                             "SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL "
                             "SELECT 9 UNION ALL SELECT 10); COMMIT")
                      .ok());
      largest = std::max(largest, FileSize(dir.db() + "-wal"));
    }
  }
  sqlite::WalResets resets = writer->wal_resets();
  std::cout << "largest log " << largest << " bytes, " << resets.done << " resets\n";
  EXPECT_GE(resets.done, 5) << "the log was emptied " << resets.done << " times, " << resets.busy << " waits ran out";
  // The bound plus what one commit adds before its hook runs (ten 4 KiB rows and their pages).
  EXPECT_LE(largest, kBound + (int64_t{256} << 10)) << "the log reached " << largest << " bytes";
  RawDb raw(dir.db());
  EXPECT_EQ(raw.Scalar("SELECT count(*) FROM filler"), "3000");
}

// A reader that keeps one snapshot past the wait: the reset gives up after kWalResetWaitMs, the
// commit that triggered it still stands, and the next try waits kWalResetRetryMs instead of
// stalling every commit.
TEST(SqliteWal, AReaderHoldingItsSnapshotDelaysTheResetButNoCommit) {
  ScratchDir dir;
  auto writer = sqlite::OpenStoreDatabase(dir.db());
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE(writer->BoundWal(64 << 10).ok());
  ASSERT_TRUE(writer->Exec("CREATE TABLE filler(id INTEGER PRIMARY KEY, data BLOB NOT NULL)").ok());
  auto reader = sqlite::OpenStoreDatabase(dir.db());
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(reader->Exec("BEGIN; SELECT count(*) FROM filler;").ok());
  // The schema's creation already passed the bound once, before the reader began.
  const sqlite::WalResets before = writer->wal_resets();
  for (int commit = 0; commit < 40; ++commit) {
    ASSERT_TRUE(writer->Exec("INSERT INTO filler(data) VALUES(randomblob(4096))").ok()) << "commit " << commit;
  }
  ASSERT_TRUE(reader->Exec("COMMIT").ok());
  sqlite::WalResets resets = writer->wal_resets();
  EXPECT_EQ(resets.done, before.done);
  EXPECT_EQ(resets.busy, before.busy + 1) << "one wait, then none until the retry interval passed";
  EXPECT_EQ(RawDb(dir.db()).Scalar("SELECT count(*) FROM filler"), "40");
}

TEST(SqliteStore, RefusesADatabaseFromTheFuture) {
  ScratchDir dir;
  ASSERT_TRUE(OpenSqliteStore(dir.db()).ok());
  {
    RawDb raw(dir.db());
    ASSERT_EQ(raw.Exec("PRAGMA user_version = 99"), SQLITE_OK);
  }
  EXPECT_EQ(OpenSqliteStore(dir.db()).status().code(), StatusCode::kUnsupported);
}

// Hardening item 11: a duplicate member put in front of the stored JSON is read by json_extract
// (SQLite takes the first) but was dropped by the parser the hash was checked with (it takes the
// last). The stored bytes themselves must be what was hashed. (The other tampering cases run on
// every backend: store_contract_test.cc.)
// What GET /readyz reads: current at open; once a newer appban migrated the file, the open
// connection sees the new version and says the schema is not the one it serves.
TEST(SqliteStore, TheFleetStoreReadsTheSchemaStateOnItsConnection) {
  ScratchDir dir;
  auto fleet = OpenSqliteFleetStore(dir.db());
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  auto state = (*fleet)->ReadSchemaState();
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_TRUE(state->Current());
  EXPECT_EQ(std::to_string(state->current), RawDb(dir.db()).Scalar("PRAGMA user_version"));
  ASSERT_EQ(RawDb(dir.db()).Exec("PRAGMA user_version = " + std::to_string(state->expected + 1)), SQLITE_OK);
  auto newer = (*fleet)->ReadSchemaState();
  ASSERT_TRUE(newer.ok()) << newer.status().ToString();
  EXPECT_EQ(newer->current, state->expected + 1);
  EXPECT_FALSE(newer->Current());
}

TEST(SqliteStore, DuplicateMemberPrefixedToStoredJsonIsNamed) {
  ScratchDir dir;
  {
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok());
    PopulateHistory(**store);
  }
  RawDb raw(dir.db());
  ASSERT_EQ(raw.Exec("DROP TRIGGER audit_no_update"), SQLITE_OK);
  ASSERT_EQ(raw.Exec("UPDATE audit SET after_json = '{\"state\":\"revoked\",' || substr(after_json, 2) WHERE seq = 3"),
            SQLITE_OK);
  ASSERT_EQ(raw.Scalar("SELECT json_extract(after_json, '$.state') FROM audit WHERE seq = 3"), "revoked");
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  auto v = (*store)->VerifyAudit();
  ASSERT_TRUE(v.ok());
  ASSERT_FALSE(v->ok()) << "the forged state verified";
  EXPECT_EQ(v->problems[0].seq, 3);
  EXPECT_NE(v->problems[0].what.find("edited"), std::string::npos) << v->problems[0].what;
}

TEST(AuditCheckpoint, AnUpgradedDatabaseGetsItsFirstCheckpoint) {
  ScratchDir dir;
  {
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok());
    PopulateHistory(**store);
  }
  {
    // As schema 3 left it: no head triggers, no rules-hash mismatch columns (5), no users or audit
    // identities (6), no checkpoint directory.
    RawDb raw(dir.db());
    ASSERT_EQ(raw.Exec("DROP TABLE device_apps; DROP INDEX devices_by_hostname; "
                       "DROP TABLE ended_sessions; DROP TABLE session_cutoffs; DROP TABLE changes; "
                       "DROP INDEX users_by_owner; ALTER TABLE api_tokens DROP COLUMN user_id; DROP TABLE users;"
                       "ALTER TABLE audit DROP COLUMN identity_json;"),
              SQLITE_OK);
    ASSERT_EQ(
        raw.Exec("DROP TRIGGER audit_head_no_delete; DROP TRIGGER audit_head_no_update;"
                 "DROP INDEX devices_rules_hash_mismatch; ALTER TABLE devices DROP COLUMN rules_hash_expected;"
                 "ALTER TABLE devices DROP COLUMN rules_hash_mismatch_since;"
                 "ALTER TABLE enrollment_tokens DROP COLUMN uses; ALTER TABLE enrollment_tokens DROP COLUMN max_uses;"
                 "PRAGMA user_version = 3"),
        SQLITE_OK);
  }
  fs::remove_all(AuditCheckpointDir(dir.db()));
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(fs::exists(AuditCheckpointDir(dir.db()) + "/head"));
  EXPECT_EQ(fs::status(AuditCheckpointDir(dir.db()) + "/checkpoint.key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto verification = (*store)->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  EXPECT_TRUE(verification->ok());
  EXPECT_EQ(verification->checkpoint_seq, 5);
}

TEST(AuditCheckpoint, WithoutTheKeyAppendsAreRefusedAndVerificationSaysSo) {
  ScratchDir dir;
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  PopulateHistory(**store);
  fs::remove_all(AuditCheckpointDir(dir.db()));
  auto fresh = OpenSqliteStore(dir.db());  // a new connection: the key is loaded at its first append
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(ProposeRuleAs(**fresh, SampleRule("r9"), "alice", 1700000100).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*fresh)->GetRule("r9").status().code(), StatusCode::kNotFound)
      << "the change committed without its audit anchor";
  auto verification = (*fresh)->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  ASSERT_FALSE(verification->ok());
  EXPECT_NE(verification->problems[0].what.find("checkpoint is missing"), std::string::npos);
}

TEST(AuditCheckpoint, AForgedCheckpointIsNamed) {
  ScratchDir dir;
  {
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok());
    PopulateHistory(**store);
  }
  // Someone without the key writes a checkpoint matching a truncated log.
  auto other = policy::SigningKey::Generate();
  ASSERT_TRUE(other.ok());
  RawDb raw(dir.db());
  ASSERT_EQ(
      raw.Exec("DROP TRIGGER audit_no_delete; DROP TRIGGER audit_head_no_delete; DELETE FROM audit WHERE seq >= 4; "
               "DELETE FROM audit_head"),
      SQLITE_OK);
  auto forged = SignAuditCheckpoint(AuditHead{3, raw.Scalar("SELECT hash FROM audit WHERE seq = 3")}, *other);
  ASSERT_TRUE(forged.ok());
  {
    std::ofstream out(AuditCheckpointDir(dir.db()) + "/head", std::ios::trunc);
    out << *forged << "\n";
  }
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  auto verification = (*store)->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  ASSERT_FALSE(verification->ok());
  EXPECT_NE(verification->problems[0].what.find("cannot be trusted"), std::string::npos)
      << verification->problems[0].what;
}

}  // namespace
}  // namespace appban::store
