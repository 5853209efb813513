#include "appban/store/backup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "appban/common/file.h"
#include "appban/store/audit_checkpoint.h"
#include "appban/store/postgres.h"
#include "appban/store/postgres_store.h"
#include "appban/store/sqlite.h"

namespace appban::store {
namespace {

namespace fs = std::filesystem;

// The tables whose sizes a backup reports: what an operator compares with what they expect.
constexpr const char* kCountedTables[] = {"rules",   "waivers", "device_groups", "vendors",           "bundles",
                                          "devices", "users",   "api_tokens",    "enrollment_tokens", "audit"};
// A busy source (a writer checkpointing the WAL) is retried for this long before giving up.
constexpr int kBackupBusyRetries = 300;
constexpr auto kBackupBusyPause = std::chrono::milliseconds(100);
constexpr uint64_t kMaxCheckpointFileBytes = 64 * 1024;

// Opens a database that must already exist: Database::Open would create a missing one.
Result<sqlite::Database> OpenExisting(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return Status::NotFound("database " + path + ": " + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) return Status::FailedPrecondition("database " + path + " is not a regular file");
  APPBAN_ASSIGN_OR_RETURN(sqlite::Database db, sqlite::Database::Open(path));
  APPBAN_RETURN_IF_ERROR(db.Exec("PRAGMA busy_timeout=10000"));
  return db;
}

Result<bool> TableExists(sqlite::Database& db, const std::string& table) {
  APPBAN_ASSIGN_OR_RETURN(
      auto query, sqlite::Statement::Prepare(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1"));
  query.Bind(1, table);
  return query.Step();
}

Result<DatabaseSnapshot> Inspect(sqlite::Database& db) {
  DatabaseSnapshot snapshot;
  snapshot.supported_schema_version = sqlite::ExpectedSchemaVersion();
  APPBAN_ASSIGN_OR_RETURN(snapshot.schema_version, sqlite::ReadSchemaVersion(db));
  if (snapshot.schema_version > snapshot.supported_schema_version) {
    return Status::Unsupported(db.path() + ": database schema version " + std::to_string(snapshot.schema_version) +
                               " is newer than this appban understands (" +
                               std::to_string(snapshot.supported_schema_version) + "); use the appban that wrote it");
  }
  Status integrity = sqlite::CheckDatabaseIntegrity(db);
  if (!integrity.ok()) return Status::Corruption(db.path() + ": " + integrity.message());
  for (const char* table : kCountedTables) {
    APPBAN_ASSIGN_OR_RETURN(bool exists, TableExists(db, table));
    if (!exists) continue;
    // The name comes from the fixed list above, never from input.
    APPBAN_ASSIGN_OR_RETURN(auto count, sqlite::Statement::Prepare(db, std::string("SELECT count(*) FROM ") + table));
    APPBAN_ASSIGN_OR_RETURN(bool row, count.Step());
    snapshot.row_counts.emplace_back(table, row ? count.Int(0) : 0);
  }
  APPBAN_ASSIGN_OR_RETURN(snapshot.audit, sqlite::VerifyStoredAudit(db));
  if (snapshot.audit.entries > 0) snapshot.audit_head = AuditHead{snapshot.audit.entries, snapshot.audit.head_hash};
  return snapshot;
}

// Copies one file of the checkpoint directory, keeping it private.
Status CopyCheckpointFile(const std::string& from_dir, const std::string& to_dir, const std::string& name,
                          bool required) {
  std::error_code error;
  if (!fs::exists(from_dir + "/" + name, error)) {
    if (!required) return Status::Ok();
    return Status::FailedPrecondition(from_dir + "/" + name +
                                      " is missing: the audit chain's checkpoint key must travel with the database");
  }
  APPBAN_ASSIGN_OR_RETURN(std::string contents, ReadFileToString(from_dir + "/" + name, kMaxCheckpointFileBytes));
  return WriteFileAtomically(to_dir + "/" + name, contents, 0600);
}

Status CopyPages(sqlite::Database& source, sqlite::Database& destination) {
  sqlite3_backup* backup = sqlite3_backup_init(destination.handle(), "main", source.handle(), "main");
  if (backup == nullptr) return destination.Error("starting the online backup of " + source.path());
  int rc = SQLITE_OK;
  // -1: every page in one step, so the copy is one read snapshot of the source; WAL readers do not
  // stop the server's writers meanwhile.
  for (int attempt = 0; attempt < kBackupBusyRetries; ++attempt) {
    rc = sqlite3_backup_step(backup, -1);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    std::this_thread::sleep_for(kBackupBusyPause);
  }
  int finished = sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    return Status::Unavailable("copying " + source.path() + ": " + sqlite3_errstr(rc) +
                               (rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? " (the database stayed locked)" : ""));
  }
  if (finished != SQLITE_OK) return destination.Error("finishing the online backup into " + destination.path());
  return Status::Ok();
}

Result<DatabaseSnapshot> Snapshot(const std::string& source_path, const std::string& destination_path) {
  const std::string source_audit = AuditCheckpointDir(source_path);
  const std::string destination_audit = AuditCheckpointDir(destination_path);
  APPBAN_ASSIGN_OR_RETURN(sqlite::Database source, OpenExisting(source_path));
  std::error_code error;
  fs::create_directory(destination_audit, error);
  if (error) return Status::Unavailable("cannot create " + destination_audit + ": " + error.message());
  fs::permissions(destination_audit, fs::perms::owner_all, error);
  if (error) return Status::Unavailable("cannot restrict " + destination_audit + ": " + error.message());
  // The source's checkpoint before its pages: it can then only lag the copy, and the copy's chain
  // is checked against it exactly as `audit verify` checks the live one.
  APPBAN_RETURN_IF_ERROR(CopyCheckpointFile(source_audit, destination_audit, "checkpoint.key", true));
  APPBAN_RETURN_IF_ERROR(CopyCheckpointFile(source_audit, destination_audit, "checkpoint.pub", true));
  APPBAN_RETURN_IF_ERROR(CopyCheckpointFile(source_audit, destination_audit, "head", false));
  {
    APPBAN_ASSIGN_OR_RETURN(sqlite::Database destination, sqlite::Database::Open(destination_path));
    APPBAN_RETURN_IF_ERROR(CopyPages(source, destination));
  }
  APPBAN_ASSIGN_OR_RETURN(sqlite::Database copy, OpenExisting(destination_path));
  APPBAN_ASSIGN_OR_RETURN(DatabaseSnapshot snapshot, Inspect(copy));
  if (!snapshot.audit.ok()) {
    const AuditProblem& first = snapshot.audit.problems.front();
    return Status::Corruption("the audit chain of " + source_path + " does not verify (entry " +
                              std::to_string(first.seq) + ": " + first.what +
                              "); a backup would re-sign the damage: run `appban audit verify` and investigate first");
  }
  if (snapshot.audit_head) {
    APPBAN_ASSIGN_OR_RETURN(policy::SigningKey key,
                            LoadAuditCheckpointKey(AuditCheckpointDir(destination_path), false));
    APPBAN_RETURN_IF_ERROR(WriteAuditCheckpoint(AuditCheckpointDir(destination_path), key, *snapshot.audit_head));
    // Checked again as restore will check it: against the checkpoint now signed for this copy.
    APPBAN_ASSIGN_OR_RETURN(snapshot.audit, sqlite::VerifyStoredAudit(copy));
    if (!snapshot.audit.ok() || snapshot.audit.checkpoint_seq != snapshot.audit_head->seq) {
      return Status::Internal("the copy's audit checkpoint does not verify after signing it");
    }
  }
  fs::remove(destination_audit + "/lock", error);  // a lock file is not part of a backup
  return snapshot;
}

}  // namespace

Result<DatabaseSnapshot> SnapshotSqliteDatabase(const std::string& source_path, const std::string& destination_path) {
  std::error_code error;
  if (fs::exists(destination_path, error) || fs::exists(AuditCheckpointDir(destination_path), error)) {
    return Status::AlreadyExists(destination_path + " already exists; a backup never overwrites");
  }
  auto snapshot = Snapshot(source_path, destination_path);
  if (!snapshot.ok()) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(destination_path + suffix, error);
    fs::remove_all(AuditCheckpointDir(destination_path), error);
  }
  return snapshot;
}

Result<DatabaseSnapshot> InspectSqliteDatabase(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(sqlite::Database db, OpenExisting(path));
  return Inspect(db);
}

Result<std::pair<DatabaseSnapshot, PostgresIdentity>> InspectPostgresDatabase(const DatabaseTarget& target,
                                                                              bool migrate) {
  if (!target.IsPostgres()) return Status::InvalidArgument(target.Describe() + " is not a PostgreSQL URI");
  PostgresIdentity identity;
  identity.location = target.Describe();
  APPBAN_ASSIGN_OR_RETURN(PostgresSchemaState schema, ReadPostgresSchemaState(target.location, target.password));
  if (schema.current == 0) {
    return Status::NotFound("the database " + identity.location +
                            " holds no appban data (appban never created its tables there)");
  }
  if (schema.current > schema.expected) {
    return Status::Unsupported(identity.location + ": database schema version " + std::to_string(schema.current) +
                               " is newer than this appban understands (" + std::to_string(schema.expected) +
                               "); use the appban that wrote it");
  }
  // Opening migrates an older schema forward (as a server's start would) before it is read, unless
  // the caller must change nothing.
  if (migrate) APPBAN_RETURN_IF_ERROR(OpenPostgresStore(target.location, target.password).status());
  // Read as it is (migrated above when asked), the chain checked against the target's checkpoint
  // if it names one; nothing is appended through this store.
  APPBAN_ASSIGN_OR_RETURN(std::unique_ptr<Store> store,
                          OpenPostgresStoreAsIs(target.location, target.password, target.audit_checkpoint_dir));
  DatabaseSnapshot snapshot;
  snapshot.supported_schema_version = schema.expected;
  APPBAN_ASSIGN_OR_RETURN(postgres::Connection db, postgres::Connection::Open(target.location, target.password));
  {
    // The counts and the identity from one snapshot; the chain is verified by the store below.
    APPBAN_ASSIGN_OR_RETURN(postgres::Transaction snapshot_reads,
                            postgres::Transaction::Begin(db, postgres::Transaction::Mode::kRepeatableReadRO));
    APPBAN_ASSIGN_OR_RETURN(postgres::Rows about,
                            db.Query("SELECT current_database(), current_setting('server_version'), "
                                     "(SELECT MAX(version) FROM appban_schema_migrations), "
                                     "(SELECT hash FROM audit WHERE seq = 1)"));
    identity.database = about.Text(0, 0);
    identity.server_version = about.Text(0, 1);
    APPBAN_ASSIGN_OR_RETURN(snapshot.schema_version, about.Int(0, 2));
    if (!about.IsNull(0, 3)) identity.audit_first_hash = about.Text(0, 3);
    for (const char* table : kCountedTables) {
      // The name comes from the fixed list above, never from input.
      APPBAN_ASSIGN_OR_RETURN(postgres::Rows count, db.Query(std::string("SELECT COUNT(*) FROM ") + table));
      APPBAN_ASSIGN_OR_RETURN(int64_t rows, count.Int(0, 0));
      snapshot.row_counts.emplace_back(table, rows);
    }
    APPBAN_RETURN_IF_ERROR(snapshot_reads.Commit());
  }
  APPBAN_ASSIGN_OR_RETURN(snapshot.audit, store->VerifyAudit());
  if (snapshot.audit.entries > 0) snapshot.audit_head = AuditHead{snapshot.audit.entries, snapshot.audit.head_hash};
  return std::make_pair(std::move(snapshot), std::move(identity));
}

}  // namespace appban::store
