#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "appban/store/store.h"
#include "appban/store/store_test_support.h"

namespace appban::store {
namespace {

namespace fs = std::filesystem;

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "appban-store-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string db() const { return (path_ / "policy.db").string(); }
  std::string checkpoint_dir() const { return db() + ".audit"; }

 private:
  fs::path path_;
};

// A raw connection, as an attacker (or a curious administrator) with file access would use.
class RawDb {
 public:
  explicit RawDb(const std::string& path) { EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK); }
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

 private:
  sqlite3* db_ = nullptr;
};

policy::Rule SampleRule(const std::string& id) {
  policy::Rule rule;
  rule.id = id;
  rule.title = "ban " + id;
  rule.targets = {*policy::MakeTarget(policy::TargetKind::kAndroidPackage, "com.example." + id)};
  return rule;
}

// Fills a store with a short history: three proposals, an approval, a group.
void PopulateHistory(Store& store) {
  UnixSeconds t = 1700000000;
  ASSERT_TRUE(ProposeRuleAs(store, SampleRule("r1"), "alice", t++).ok());
  ASSERT_TRUE(ProposeRuleAs(store, SampleRule("r2"), "alice", t++).ok());
  ASSERT_TRUE(ApproveRuleAs(store, "r1", "bob", t++).ok());
  ASSERT_TRUE(CreateGroupAs(store, policy::Group{"ministers", "", {"phone-1"}, 0}, "alice", t++).ok());
  ASSERT_TRUE(ProposeRuleAs(store, SampleRule("r3"), "alice", t++).ok());
}

TEST(SqliteStore, SchemaVersionAndDurabilitySettings) {
  ScratchDir dir;
  {
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
  }
  RawDb raw(dir.db());
  // policy (1), fleet (2), match records (3), audit head triggers (4), rules hash mismatch (5)
  EXPECT_EQ(raw.Scalar("PRAGMA user_version"), "8");
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

TEST(SqliteStore, ConcurrentChangeIsRefusedNotOverwritten) {
  ScratchDir dir;
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(ProposeRuleAs(**store, SampleRule("r1"), "alice", 1).ok());
  auto first = (*store)->GetRule("r1");
  auto second = (*store)->GetRule("r1");
  ASSERT_TRUE(first.ok() && second.ok());
  AuditRecord audit{"bob", "test", "rule:r1", nullptr, nullptr, 1, nullptr};
  first->title = "first writer";
  ASSERT_TRUE((*store)->UpdateRule(*first, audit).ok());
  second->title = "second writer";
  EXPECT_EQ((*store)->UpdateRule(*second, audit).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*store)->GetRule("r1")->title, "first writer");
}

TEST(SqliteStore, FailedMutationLeavesNoAuditEntry) {
  ScratchDir dir;
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(ProposeRuleAs(**store, SampleRule("r1"), "alice", 1).ok());
  EXPECT_EQ(ProposeRuleAs(**store, SampleRule("r1"), "alice", 2).code(), StatusCode::kAlreadyExists);
  policy::Waiver orphan;
  orphan.id = "w1";
  orphan.rule_id = "no-such-rule";
  orphan.subject = "phone-1";
  orphan.justification = "x";
  orphan.approved_by = "alice";
  orphan.expires_at = 10;
  EXPECT_EQ((*store)
                ->CreateWaiver(orphan, AuditRecord{"alice", "waiver.add", "waiver:w1", nullptr, nullptr, 0, nullptr})
                .code(),
            StatusCode::kNotFound);
  auto entries = (*store)->ReadAudit();
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 1u);  // only the successful proposal
}

TEST(SqliteStore, AuditChainVerifiesAndTriggersRefuseEdits) {
  ScratchDir dir;
  {
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok());
    PopulateHistory(**store);
    auto verification = (*store)->VerifyAudit();
    ASSERT_TRUE(verification.ok());
    EXPECT_TRUE(verification->ok());
    EXPECT_EQ(verification->entries, 5);
  }
  RawDb raw(dir.db());
  EXPECT_NE(raw.Exec("UPDATE audit SET actor = 'mallory' WHERE seq = 2"), SQLITE_OK);
  EXPECT_NE(raw.Exec("DELETE FROM audit WHERE seq = 2"), SQLITE_OK);
}

// Tamper directly in SQLite (after dropping the append-only triggers) and check that verification
// names the entry.
class AuditTamper : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_.db());
    ASSERT_TRUE(store.ok());
    PopulateHistory(**store);
    raw_ = std::make_unique<RawDb>(dir_.db());
    ASSERT_EQ(raw_->Exec("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete"), SQLITE_OK);
  }
  AuditVerification Verify() {
    auto store = OpenSqliteStore(dir_.db());
    EXPECT_TRUE(store.ok());
    auto result = (*store)->VerifyAudit();
    EXPECT_TRUE(result.ok());
    return *result;
  }
  static std::string Describe(const AuditVerification& v) {
    std::string out;
    for (const auto& p : v.problems) out += "[" + std::to_string(p.seq) + "] " + p.what + "\n";
    return out;
  }
  ScratchDir dir_;
  std::unique_ptr<RawDb> raw_;
};

TEST_F(AuditTamper, EditedEntryIsNamed) {
  ASSERT_EQ(raw_->Exec("UPDATE audit SET actor = 'alice' WHERE seq = 3"), SQLITE_OK);  // the approval was bob's
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  ASSERT_EQ(v.problems.size(), 1u) << Describe(v);
  EXPECT_EQ(v.problems[0].seq, 3);
  EXPECT_NE(v.problems[0].what.find("edited"), std::string::npos) << Describe(v);
}

// Entries that record who acted (schema 6) chain with the entries before them, which have none.
TEST_F(AuditTamper, AnEditedIdentityIsNamedAndEntriesWithoutOneStillVerify) {
  {
    auto store = OpenSqliteStore(dir_.db());
    ASSERT_TRUE(store.ok());
    AuditIdentity who{"u-1234", "https://idp.example", "sub-bob", "Bob", "oidc", "", "127.0.0.1", "api"};
    AuditRecord record{"u-1234", "bundle.verify", "bundle:1", nullptr, nullptr, 10, AuditIdentityJson(who)};
    ASSERT_TRUE((*store)->AppendAudit(record).ok());
    auto entries = (*store)->ReadAudit();
    EXPECT_EQ(entries->front().identity_json, "null");
    EXPECT_EQ(entries->back().identity_json,
              R"({"actor_name":"Bob","channel":"api","issuer":"https://idp.example","method":"oidc",)"
              R"("source":"127.0.0.1","subject":"sub-bob","user_id":"u-1234"})");
  }
  EXPECT_TRUE(Verify().ok()) << Describe(Verify());
  ASSERT_EQ(raw_->Exec("UPDATE audit SET identity_json = replace(identity_json, 'sub-bob', 'sub-eve') "
                       "WHERE seq = (SELECT MAX(seq) FROM audit)"),
            SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.problems[0].what.find("edited"), std::string::npos) << Describe(v);
}

TEST_F(AuditTamper, EditedBeforeAfterIsNamed) {
  ASSERT_EQ(raw_->Exec("UPDATE audit SET after_json = replace(after_json, 'approved', 'published') WHERE seq = 3"),
            SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 3) << Describe(v);
}

TEST_F(AuditTamper, DeletedEntryIsNamed) {
  ASSERT_EQ(raw_->Exec("DELETE FROM audit WHERE seq = 3"), SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 4) << Describe(v);
  EXPECT_NE(v.problems[0].what.find("entry 3 is missing"), std::string::npos) << Describe(v);
}

TEST_F(AuditTamper, DeletedAndRenumberedEntryIsStillCaught) {
  ASSERT_EQ(raw_->Exec("DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq - 1 WHERE seq > 3"), SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok()) << "renumbering hid a deletion";
  EXPECT_EQ(v.problems[0].seq, 3) << Describe(v);
}

TEST_F(AuditTamper, ReorderedEntriesAreNamed) {
  ASSERT_EQ(raw_->Exec("UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; "
                       "UPDATE audit SET seq = 3 WHERE seq = -1"),
            SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 2) << Describe(v);
  EXPECT_NE(Describe(v).find("out of order"), std::string::npos) << Describe(v);
}

TEST_F(AuditTamper, TruncatedTailIsNamed) {
  ASSERT_EQ(raw_->Exec("DELETE FROM audit WHERE seq = 5"), SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 5) << Describe(v);
  EXPECT_NE(v.problems[0].what.find("truncated"), std::string::npos) << Describe(v);
}

// Hardening item 11: a duplicate member put in front of the stored JSON is read by json_extract
// (SQLite takes the first) but was dropped by the parser the hash was checked with (it takes the
// last). The stored bytes themselves must be what was hashed.
TEST_F(AuditTamper, DuplicateMemberPrefixedToStoredJsonIsNamed) {
  ASSERT_EQ(
      raw_->Exec("UPDATE audit SET after_json = '{\"state\":\"revoked\",' || substr(after_json, 2) WHERE seq = 3"),
      SQLITE_OK);
  ASSERT_EQ(raw_->Scalar("SELECT json_extract(after_json, '$.state') FROM audit WHERE seq = 3"), "revoked");
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok()) << "the forged state verified";
  EXPECT_EQ(v.problems[0].seq, 3) << Describe(v);
  EXPECT_NE(v.problems[0].what.find("edited"), std::string::npos) << Describe(v);
}

TEST_F(AuditTamper, WhitespaceAddedToStoredJsonIsNamed) {
  ASSERT_EQ(raw_->Exec("UPDATE audit SET before_json = ' ' || before_json WHERE seq = 3"), SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 3) << Describe(v);
}

TEST_F(AuditTamper, HeadRowIsGuardedByTriggers) {
  RawDb fresh(dir_.db());
  EXPECT_NE(fresh.Exec("DELETE FROM audit_head"), SQLITE_OK);
  EXPECT_NE(fresh.Exec("UPDATE audit_head SET seq = 3"), SQLITE_OK);
  EXPECT_EQ(fresh.Scalar("SELECT seq FROM audit_head"), "5");
}

TEST_F(AuditTamper, TruncatedTailWithHeadDeletedIsNamed) {
  raw_->Exec("DROP TRIGGER IF EXISTS audit_head_no_delete; DROP TRIGGER IF EXISTS audit_head_no_update");
  ASSERT_EQ(raw_->Exec("DELETE FROM audit_head; DELETE FROM audit WHERE seq >= 4"), SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok()) << "deleting the tail and the head went unnoticed";
  EXPECT_NE(Describe(v).find("truncated"), std::string::npos) << Describe(v);
}

TEST_F(AuditTamper, TruncatedTailWithHeadRewrittenIsNamed) {
  raw_->Exec("DROP TRIGGER IF EXISTS audit_head_no_delete; DROP TRIGGER IF EXISTS audit_head_no_update");
  ASSERT_EQ(raw_->Exec("DELETE FROM audit WHERE seq >= 4; "
                       "UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit WHERE seq = 3)"),
            SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok()) << "a consistent shorter chain with a rewritten head went unnoticed";
  EXPECT_NE(Describe(v).find("truncated"), std::string::npos) << Describe(v);
}

TEST_F(AuditTamper, ReplacedHeadIsNamed) {
  raw_->Exec("DROP TRIGGER IF EXISTS audit_head_no_update");
  ASSERT_EQ(raw_->Exec("UPDATE audit_head SET hash = (SELECT hash FROM audit WHERE seq = 2)"), SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 5) << Describe(v);
}

TEST_F(AuditTamper, EverythingDeletedIsNamed) {
  raw_->Exec("DROP TRIGGER IF EXISTS audit_head_no_delete");
  ASSERT_EQ(raw_->Exec("DELETE FROM audit_head; DELETE FROM audit"), SQLITE_OK);
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok()) << "an emptied log went unnoticed";
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
    ASSERT_EQ(raw.Exec("DROP TABLE changes; DROP INDEX users_by_owner; ALTER TABLE api_tokens DROP COLUMN user_id; "
                       "DROP TABLE users;"
                       "ALTER TABLE audit DROP COLUMN identity_json;"),
              SQLITE_OK);
    ASSERT_EQ(raw.Exec("DROP TRIGGER audit_head_no_delete; DROP TRIGGER audit_head_no_update;"
                       "DROP INDEX devices_rules_hash_mismatch; ALTER TABLE devices DROP COLUMN rules_hash_expected;"
                       "ALTER TABLE devices DROP COLUMN rules_hash_mismatch_since; PRAGMA user_version = 3"),
              SQLITE_OK);
  }
  fs::remove_all(dir.checkpoint_dir());
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(fs::exists(dir.checkpoint_dir() + "/head"));
  EXPECT_EQ(fs::status(dir.checkpoint_dir() + "/checkpoint.key").permissions() & fs::perms::all,
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
  fs::remove_all(dir.checkpoint_dir());
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
    std::ofstream out(dir.checkpoint_dir() + "/head", std::ios::trunc);
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
