// Thin RAII wrappers over the sqlite3 C API, private to the store part. A Database owns one
// connection; a Statement owns one prepared statement; a Transaction rolls back unless committed.
// Not thread-safe: one connection per thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "appban/common/status.h"
#include "appban/policy/keys.h"
#include "appban/store/audit.h"

namespace appban::store::sqlite {

// The write-ahead log's bound. SQLite's own checkpoint after each commit is PASSIVE: it copies the
// log into the database but can only start the log again from its beginning at a moment no reader
// holds a snapshot in it. A server's workers read all the time, so on a busy fleet that moment never
// came and the log grew without end (2.8 GiB while 100,000 devices enrolled, reads slowing from 5 s
// to over 35 s). Past kWalResetBytes the committing connection therefore checkpoints with TRUNCATE:
// it waits (at most kWalResetWaitMs, blocking other writers meanwhile) for the readers of older
// snapshots to finish, then empties the log. Readers that start after the copy read the database
// file and do not delay it. When readers outlast the wait, the next try comes kWalResetRetryMs later.
inline constexpr int64_t kWalResetBytes = int64_t{256} << 20;
inline constexpr int kWalResetWaitMs = 1000;
inline constexpr int64_t kWalResetRetryMs = 30000;
// SQLite's default autocheckpoint, kept: a PASSIVE checkpoint after each commit past this many frames.
inline constexpr int kWalPassiveFrames = 1000;

// What a connection's WAL hook did (for tests and diagnostics).
struct WalResets {
  int64_t done = 0;  // the log was emptied
  int64_t busy = 0;  // readers outlasted kWalResetWaitMs
};

class Database {
 public:
  static Result<Database> Open(const std::string& path);
  sqlite3* handle() const { return db_.get(); }
  // Runs SQL without results (may hold several statements).
  Status Exec(std::string_view sql);
  Status Error(std::string_view context) const;
  // The transaction verbs, prepared once per connection: hot paths begin and commit thousands of
  // transactions a second, and sqlite3_exec would parse the text every time.
  enum class Verb { kBegin, kBeginImmediate, kCommit, kRollback };
  // A COMMIT that appended audit entries then writes the signed audit checkpoint (its failure is
  // returned, although the transaction did commit); a ROLLBACK forgets them.
  Status Run(Verb verb);
  const std::string& path() const { return path_; }
  // Records the chain's new head, to be checkpointed when the open transaction commits.
  // kFailedPrecondition when the checkpoint key is missing (audit_checkpoint.h).
  Status SetPendingAuditHead(const AuditHead& head);
  // Installs the WAL bound above on this connection (OpenStoreDatabase does, after switching to
  // WAL); other `reset_bytes` and `retry_ms` only in tests.
  Status BoundWal(int64_t reset_bytes = kWalResetBytes, int64_t retry_ms = kWalResetRetryMs);
  WalResets wal_resets() const;

 private:
  struct WalBound;
  static int WalHook(void* bound, sqlite3* db, const char* name, int frames);
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  struct StatementFinalizer {
    void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
  };
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  // The WAL hook's argument: a stable address across moves, and declared before db_ so that it
  // outlives the connection.
  std::shared_ptr<WalBound> wal_bound_;
  std::unique_ptr<sqlite3, Closer> db_;
  std::string path_;
  std::optional<policy::SigningKey> checkpoint_key_;  // loaded at the first append
  std::optional<AuditHead> pending_audit_head_;
  // Declared after db_: finalized before the connection closes.
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> verbs_[4];
};

class Statement {
 public:
  static Result<Statement> Prepare(const Database& db, std::string_view sql);
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, int64_t value);
  Statement& BindDouble(int index, double value);
  Statement& BindNull(int index);
  // Binds the value or SQL NULL.
  Statement& Bind(int index, const std::optional<int64_t>& value) {
    return value ? Bind(index, *value) : BindNull(index);
  }
  // Makes a stepped statement reusable (bindings cleared) so hot paths prepare once.
  void Reset();
  // true: a row is available; false: done.
  Result<bool> Step();
  // Steps to completion, expecting no rows.
  Status Run();
  // Rows the last INSERT, UPDATE or DELETE on this connection changed.
  int64_t Changes() const { return sqlite3_changes64(db_->handle()); }
  std::string Text(int column) const;
  // The same without a copy: valid until the next Step, Reset or read of the column as another type.
  std::string_view TextView(int column) const;
  int64_t Int(int column) const;
  double Double(int column) const;
  bool IsNull(int column) const;
  std::optional<int64_t> OptionalInt(int column) const;
  // The result's shape, for code that copies rows whatever their table (store/migrate.cc).
  int ColumnCount() const { return sqlite3_column_count(statement_.get()); }
  std::string ColumnName(int column) const { return sqlite3_column_name(statement_.get(), column); }
  bool IsFloat(int column) const { return sqlite3_column_type(statement_.get(), column) == SQLITE_FLOAT; }

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
  };
  Statement(const Database* db, sqlite3_stmt* statement) : db_(db), statement_(statement) {}
  const Database* db_;
  std::unique_ptr<sqlite3_stmt, Finalizer> statement_;
  int bind_error_ = SQLITE_OK;
};

class Transaction {
 public:
  // BEGIN IMMEDIATE: takes the write lock up front so a read-then-write never deadlocks.
  static Result<Transaction> Begin(Database& db);
  // BEGIN (deferred): a read snapshot from the first read until Commit, for reads that must agree
  // with each other while other processes write.
  static Result<Transaction> BeginRead(Database& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

// The one database file holding the policy store and the fleet data (both in sqlite_store.cc,
// beside the migration list): opens it with the shared settings (WAL, synchronous=FULL, foreign
// keys, a busy timeout so concurrent writers from several processes wait instead of failing) and
// applies pending migrations.
// Creating the database (or migrating it to schema 4) creates the audit checkpoint key.
Result<Database> OpenStoreDatabase(const std::string& path);
// The schema version OpenStoreDatabase migrates to, and the one `db` is at (PRAGMA user_version).
int64_t ExpectedSchemaVersion();
Result<int64_t> ReadSchemaVersion(Database& db);
// Appends `audit` to the hash chain (entry + head).
// REQUIRES: a Transaction on `db` is open, so the entry commits with the change it records.
Status AppendAuditEntry(Database& db, const AuditRecord& audit);
// The chain and its head row as stored, read in one snapshot, checked against the signed
// checkpoint beside the file. Only reads: a backup's copy is checked as it is, without migrating.
Result<AuditVerification> VerifyStoredAudit(Database& db);
// PRAGMA integrity_check and foreign_key_check; kCorruption naming the first problem.
Status CheckDatabaseIntegrity(Database& db);

}  // namespace appban::store::sqlite
