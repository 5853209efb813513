#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "appban/store/audit_checkpoint.h"
#include "appban/store/fleet.h"
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
  EXPECT_EQ(raw.Scalar("PRAGMA user_version"), "12");
  EXPECT_EQ(raw.Scalar("PRAGMA journal_mode"), "wal");
  // Reopening applies nothing twice.
  auto again = OpenSqliteStore(dir.db());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*again)->CheckIntegrity().ok());
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
