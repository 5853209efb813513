// What only the PostgreSQL backend has: the libpq wrapper's errors, versioned migrations under an
// advisory lock, the guards PostgreSQL adds (TRUNCATE), and several connections (nodes) writing
// one audit chain. The Store contract itself runs on both backends in store_contract_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "appban/store/audit_checkpoint.h"
#include "appban/store/postgres.h"
#include "appban/store/postgres_store.h"
#include "appban/store/store_backend_test_support.h"
#include "appban/store/store_test_support.h"

namespace appban::store {
namespace {

namespace fs = std::filesystem;
using postgres::Connection;
using postgres::P;

TEST(PostgresConnection, ParametersTravelApartFromTheStatementAndErrorsNameIt) {
  PostgresBackend backend;
  auto db = Connection::Open(backend.url());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  // A value that would be an injection if pasted into the text is just a value.
  auto rows = db->Query("SELECT $1::text, $2::bigint, $3::text IS NULL",
                        {P("x'); DROP TABLE y; --"), P(int64_t{-7}), std::nullopt});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->Text(0, 0), "x'); DROP TABLE y; --");
  EXPECT_EQ(*rows->Int(0, 1), -7);
  EXPECT_EQ(rows->Text(0, 2), "t");
  EXPECT_EQ(rows->Int(0, 0).status().code(), StatusCode::kCorruption);

  auto missing = db->Query("SELECT nothing FROM no_such_table");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("SELECT nothing FROM no_such_table"), std::string::npos)
      << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos) << missing.status().ToString();

  ASSERT_TRUE(db->ExecScript("CREATE TABLE t (k TEXT PRIMARY KEY)").ok());
  ASSERT_TRUE(db->Query("INSERT INTO t VALUES($1)", {P("a")}).ok());
  EXPECT_EQ(db->Query("INSERT INTO t VALUES($1)", {P("a")}).status().code(), StatusCode::kAlreadyExists);
}

TEST(PostgresConnection, ATransactionRollsBackUnlessCommitted) {
  PostgresBackend backend;
  auto db = Connection::Open(backend.url());
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->ExecScript("CREATE TABLE t (k TEXT PRIMARY KEY)").ok());
  {
    auto transaction = postgres::Transaction::Begin(*db);
    ASSERT_TRUE(transaction.ok());
    ASSERT_TRUE(db->Query("INSERT INTO t VALUES('dropped')").ok());
  }
  {
    auto transaction = postgres::Transaction::Begin(*db);
    ASSERT_TRUE(db->Query("INSERT INTO t VALUES('kept')").ok());
    ASSERT_TRUE(transaction->Commit().ok());
  }
  {
    // A failed statement aborts the transaction: COMMIT must not report success.
    auto transaction = postgres::Transaction::Begin(*db);
    ASSERT_FALSE(db->Query("INSERT INTO t VALUES('kept')").ok());
    EXPECT_FALSE(transaction->Commit().ok());
  }
  EXPECT_EQ(backend.Scalar("SELECT string_agg(k, ',') FROM t"), "kept");
}

TEST(PostgresConnection, AnUnreachableServerIsUnavailable) {
  auto cluster = PostgresTestCluster::Shared();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto db = Connection::Open("postgresql://appban@/postgres?host=" + (*cluster)->dir() + "/nowhere&connect_timeout=2");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(db.status().message().find("cannot connect"), std::string::npos) << db.status().ToString();
}

// A role that may only connect over TLS with its password (the cluster's pg_hba.conf). Tests in
// other processes sharing the cluster create it at the same time: whoever comes second finds it.
class PostgresOverTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        backend_.Exec("DO $$ BEGIN CREATE ROLE appban_node LOGIN PASSWORD 'correct horse battery'; "
                      "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"));
    auto cluster = PostgresTestCluster::Shared();
    ASSERT_TRUE(cluster.ok());
    cluster_ = *cluster;
    database_ = backend_.Scalar("SELECT current_database()");
    // As an installation would: the node's role owns the database (and so, on PostgreSQL 15, its
    // public schema), it is not a superuser.
    ASSERT_TRUE(backend_.Exec("ALTER DATABASE " + database_ + " OWNER TO appban_node"));
    password_file_ = dir_.db() + ".password";
  }
  std::string TlsUrl(const std::string& sslmode) const {
    return "postgresql://appban_node@127.0.0.1:" + std::to_string(cluster_->port()) + "/" + database_ +
           "?sslmode=" + sslmode + "&sslrootcert=" + cluster_->ca_file() + "&connect_timeout=5";
  }
  void WritePasswordFile(const std::string& text, fs::perms mode) {
    std::ofstream(password_file_, std::ios::trunc) << text;
    fs::permissions(password_file_, mode);
  }
  PostgresBackend backend_;
  ScratchDir dir_;
  PostgresTestCluster* cluster_ = nullptr;
  std::string database_;
  std::string password_file_;
};

TEST_F(PostgresOverTls, TheStoreOpensOverVerifiedTlsWithThePasswordFromAFile) {
  WritePasswordFile("correct horse battery\n", fs::perms::owner_read | fs::perms::owner_write);
  auto password = postgres::ReadPasswordFile(password_file_);
  ASSERT_TRUE(password.ok()) << password.status().ToString();
  EXPECT_EQ(*password, "correct horse battery");
  auto store = OpenPostgresStore(TlsUrl("verify-full"), *password);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(ProposeRuleAs(**store, SampleRule("r1"), "alice", 1).ok());
  auto db = Connection::Open(TlsUrl("verify-full"), *password);
  ASSERT_TRUE(db.ok());
  auto ssl = db->Query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  ASSERT_TRUE(ssl.ok());
  EXPECT_EQ(ssl->Text(0, 0), "t");
}

TEST_F(PostgresOverTls, AWrongPasswordOrNoTlsIsRefused) {
  auto wrong = Connection::Open(TlsUrl("verify-full"), std::string("tr0ub4dor"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(wrong.status().message().find("password authentication failed"), std::string::npos)
      << wrong.status().ToString();
  auto plain = Connection::Open(TlsUrl("disable"), std::string("correct horse battery"));
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.status().message().find("no encryption"), std::string::npos) << plain.status().ToString();
  // verify-full checks the name: the certificate is for 127.0.0.1, not localhost.
  std::string by_name = TlsUrl("verify-full");
  by_name.replace(by_name.find("127.0.0.1"), 9, "localhost");
  auto mismatch = Connection::Open(by_name, std::string("correct horse battery"));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("does not match host name"), std::string::npos)
      << mismatch.status().ToString();
}

TEST_F(PostgresOverTls, APasswordFileOthersCanReadIsRefused) {
  WritePasswordFile("correct horse battery\n", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_EQ(postgres::ReadPasswordFile(password_file_).status().code(), StatusCode::kPermissionDenied);
  WritePasswordFile("", fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(postgres::ReadPasswordFile(password_file_).status().code(), StatusCode::kInvalidArgument);
  WritePasswordFile(std::string(postgres::kMaxPasswordFileBytes + 1, 'x'), fs::perms::owner_read);
  EXPECT_EQ(postgres::ReadPasswordFile(password_file_).status().code(), StatusCode::kLimitExceeded);
  EXPECT_EQ(postgres::ReadPasswordFile(password_file_ + ".missing").status().code(), StatusCode::kNotFound);
}

TEST(PostgresStore, MigrationsRunOncePerClusterWhenNodesStartTogether) {
  PostgresBackend backend;
  auto before = ReadPostgresSchemaState(backend.url());
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(before->current, 0);
  std::atomic<int> opened{0};
  std::vector<std::thread> nodes;
  for (int i = 0; i < 4; ++i) {
    nodes.emplace_back([&] {
      auto store = backend.Open();
      EXPECT_TRUE(store.ok()) << store.status().ToString();
      if (store.ok()) ++opened;
    });
  }
  for (auto& node : nodes) node.join();
  EXPECT_EQ(opened.load(), 4);
  auto after = ReadPostgresSchemaState(backend.url());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->current, after->expected);
  EXPECT_EQ(backend.Scalar("SELECT count(*) FROM appban_schema_migrations"), std::to_string(after->expected));
  EXPECT_TRUE((*backend.Open())->CheckIntegrity().ok());
}

TEST(PostgresStore, RefusesADatabaseFromTheFuture) {
  PostgresBackend backend;
  ASSERT_TRUE(backend.Open().ok());
  ASSERT_TRUE(backend.Exec("INSERT INTO appban_schema_migrations(version) VALUES(99)"));
  auto store = backend.Open();
  EXPECT_EQ(store.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(store.status().message().find("99"), std::string::npos) << store.status().ToString();
}

TEST(PostgresStore, TruncateIsRefusedAndADroppedGuardIsReported) {
  PostgresBackend backend;
  auto store = backend.Open();
  ASSERT_TRUE(store.ok());
  PopulateHistory(**store);
  EXPECT_FALSE(backend.Exec("TRUNCATE audit"));
  EXPECT_FALSE(backend.Exec("TRUNCATE audit_head"));
  EXPECT_EQ(backend.Scalar("SELECT count(*) FROM audit"), "5");
  ASSERT_TRUE((*store)->CheckIntegrity().ok());
  ASSERT_TRUE(backend.Exec("ALTER TABLE audit DISABLE TRIGGER audit_no_delete"));
  Status integrity = (*store)->CheckIntegrity();
  EXPECT_EQ(integrity.code(), StatusCode::kCorruption);
  EXPECT_NE(integrity.message().find("audit_no_delete"), std::string::npos) << integrity.ToString();
}

// Two nodes appending at once: the advisory lock keeps the chain linear, nothing is lost.
TEST(PostgresStore, NodesWritingAtOnceKeepOneUnbrokenChain) {
  PostgresBackend backend;
  ASSERT_TRUE(backend.Open().ok());
  constexpr int kPerNode = 40;
  std::vector<std::thread> nodes;
  for (const char* node : {"node-a", "node-b"}) {
    nodes.emplace_back([&backend, node] {
      auto store = backend.Open();
      ASSERT_TRUE(store.ok());
      for (int i = 0; i < kPerNode; ++i) {
        AuditRecord record{node,           "bundle.verify", "bundle:" + std::to_string(i), nullptr, nullptr,
                           1700000000 + i, nullptr};
        ASSERT_TRUE((*store)->AppendAudit(record).ok());
      }
    });
  }
  for (auto& node : nodes) node.join();
  auto store = backend.Open();
  auto verification = (*store)->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  EXPECT_TRUE(verification->ok());
  EXPECT_EQ(verification->entries, 2 * kPerNode);
  // Both connections signed the one checkpoint directory, which ends at the last entry, whichever
  // of them committed it.
  EXPECT_EQ(verification->checkpoint_seq, 2 * kPerNode);
  EXPECT_EQ(ReadAuditCheckpoint(backend.checkpoint_dir()).head.hash, verification->head_hash);
}

// Every node keeps its own signed checkpoint (docs/postgresql.md, "Audit chain"): it vouches for
// the chain as far as that node committed it, so the tail another node wrote is anchored by that
// node's checkpoint, not this one's.
TEST(PostgresStore, EachNodeAnchorsTheChainAsFarAsItCommittedIt) {
  PostgresBackend backend;  // its own checkpoint directory: node A's
  fleet_testing::ScratchDir node_b_dir;
  const std::string node_b_checkpoint = (node_b_dir.path() / "audit-checkpoint").string();
  ASSERT_TRUE(LoadAuditCheckpointKey(node_b_checkpoint, true).ok());
  auto node_a = backend.Open();
  auto node_b = OpenPostgresStore(backend.url(), std::nullopt, node_b_checkpoint);
  ASSERT_TRUE(node_a.ok() && node_b.ok()) << node_b.status().ToString();
  auto append = [](Store& store, int i) {
    AuditRecord record{"alice",        "bundle.verify", "bundle:" + std::to_string(i), nullptr, nullptr,
                       1700000000 + i, nullptr};
    return store.AppendAudit(record);
  };
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(append(**node_a, i).ok());
  for (int i = 4; i <= 5; ++i) ASSERT_TRUE(append(**node_b, i).ok());
  EXPECT_EQ(ReadAuditCheckpoint(backend.checkpoint_dir()).head.seq, 3);
  EXPECT_EQ(ReadAuditCheckpoint(node_b_checkpoint).head.seq, 5);
  auto a_sees = (*node_a)->VerifyAudit();
  ASSERT_TRUE(a_sees.ok());
  EXPECT_TRUE(a_sees->ok());
  EXPECT_EQ(a_sees->checkpoint_seq, 3);
  EXPECT_FALSE(a_sees->checkpoint_key_id.empty());

  // Someone who owns the database drops the guards and cuts the chain back to entry 3, head row
  // and all: consistent in the database, and node A's checkpoint (entry 3) cannot tell.
  ASSERT_TRUE(backend.DropTrigger("audit_no_delete", "audit"));
  ASSERT_TRUE(backend.DropTrigger("audit_head_no_update", "audit_head"));
  ASSERT_TRUE(
      backend.Exec("DELETE FROM audit WHERE seq >= 4; "
                   "UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit WHERE seq = 3)"));
  a_sees = (*node_a)->VerifyAudit();
  ASSERT_TRUE(a_sees.ok());
  EXPECT_TRUE(a_sees->ok());
  auto b_sees = (*node_b)->VerifyAudit();
  ASSERT_TRUE(b_sees.ok());
  ASSERT_FALSE(b_sees->ok()) << "node B's checkpoint records entry 5: the cut must be named";
  std::string problems;
  for (const AuditProblem& problem : b_sees->problems)
    problems += "[" + std::to_string(problem.seq) + "] " + problem.what + "\n";
  EXPECT_NE(problems.find("[4] entries 4..5 are missing: the log was truncated"), std::string::npos) << problems;
}

TEST(PostgresStore, AStoreThatMustKeepACheckpointRefusesToOpenWithoutItsKey) {
  PostgresBackend backend;
  ASSERT_TRUE(backend.Open().ok());  // the tables, as a node's start makes them
  fleet_testing::ScratchDir empty;
  const std::string no_key = (empty.path() / "audit-checkpoint").string();
  auto store = OpenPostgresStore(backend.url(), std::nullopt, no_key);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find(no_key + "/checkpoint.key is missing"), std::string::npos)
      << store.status().ToString();
  EXPECT_EQ(OpenPostgresFleetStore(backend.url(), std::nullopt, no_key).status().code(),
            StatusCode::kFailedPrecondition);
  // Reading as it is needs no key: the checkpoint is only read, and there is none to read.
  auto as_is = OpenPostgresStoreAsIs(backend.url(), std::nullopt, no_key);
  ASSERT_TRUE(as_is.ok()) << as_is.status().ToString();
  auto verification = (*as_is)->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  EXPECT_EQ(verification->entries, 0);
}

}  // namespace
}  // namespace appban::store
