#include "appban/store/sqlite.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "appban/store/audit_checkpoint.h"

namespace appban::store::sqlite {
namespace {

// The database holds device credential hashes, tokens and the audit chain: only its owner may read
// it, whatever the umask and the directory's mode. SQLite gives the -wal, -shm and -journal files
// it creates the main file's mode, so creating that one 0600 covers them; files left by an older
// version (or created under a lax umask) are tightened here too.
//
// Never by opening and closing the database file itself: closing any descriptor of a file drops
// every POSIX lock this process holds on it, the locks of the SQLite connections already open
// here among them. Another process (the CLI, sqlite3, a backup) then believed it was alone, folded
// the WAL into the main file and deleted it while the server went on writing to the deleted WAL,
// and saw none of the server's later writes. Only a file this call creates is opened, and no
// connection can hold a lock on a file that did not exist; an existing one is changed by name.
Status RestrictToOwner(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.starts_with("file:")) return Status::Ok();
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno != ENOENT) return Status::Unavailable("cannot open database " + path + ": " + std::strerror(errno));
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST) {  // EEXIST: another process created it first
      return Status::Unavailable("cannot create database " + path + ": " + std::strerror(errno));
    }
    if (fd >= 0) ::close(fd);
    if (::lstat(path.c_str(), &info) != 0) {
      return Status::Unavailable("cannot open database " + path + ": " + std::strerror(errno));
    }
  }
  if (S_ISLNK(info.st_mode))
    return Status::Unavailable("database " + path + " is a symbolic link; refusing to follow it");
  if (!S_ISREG(info.st_mode)) return Status::Unavailable("database " + path + " is not a regular file");
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::string file = path + suffix;
    if (::lstat(file.c_str(), &info) != 0 || !S_ISREG(info.st_mode) || (info.st_mode & 077) == 0) continue;
    if (::chmod(file.c_str(), 0600) != 0) {
      return Status::Unavailable("cannot make " + file + " private (mode 0600): " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Database> Database::Open(const std::string& path) {
  APPBAN_RETURN_IF_ERROR(RestrictToOwner(path));
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Database db(raw, path);  // owns the handle even when opening failed
  if (rc != SQLITE_OK) {
    return Status::Unavailable("cannot open database " + path + ": " +
                               (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Status Database::Exec(std::string_view sql) {
  std::string text(sql);
  char* message = nullptr;
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return Status::Ok();
  sqlite3_free(message);  // the same text is available from sqlite3_errmsg
  return Error("sqlite (" + text.substr(0, 60) + ")");
}

Status Database::Run(Verb verb) {
  static constexpr const char* kText[] = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"};
  auto& slot = verbs_[static_cast<int>(verb)];
  const char* text = kText[static_cast<int>(verb)];
  if (!slot) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db_.get(), text, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
      return Error(std::string("preparing ") + text);
    }
    slot.reset(raw);
  }
  int rc = sqlite3_step(slot.get());
  (void)sqlite3_reset(slot.get());  // repeats the step's error code, reported below
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Error(std::string("sqlite (") + text + ")");
  if (verb == Verb::kRollback) pending_audit_head_.reset();
  if (verb == Verb::kCommit && pending_audit_head_) {
    AuditHead head = std::move(*pending_audit_head_);
    pending_audit_head_.reset();
    Status written = WriteAuditCheckpoint(AuditCheckpointDir(path_), *checkpoint_key_, head);
    if (!written.ok()) {
      return Status::Unavailable("committed, but the signed audit checkpoint for entry " + std::to_string(head.seq) +
                                 " could not be written: " + written.message());
    }
  }
  return Status::Ok();
}

struct Database::WalBound {
  int64_t reset_frames = 0;
  int busy_timeout_ms = 0;  // restored after the shorter wait of a reset
  int64_t retry_ms = kWalResetRetryMs;
  std::chrono::steady_clock::time_point next_try{};
  WalResets resets;
};

int Database::WalHook(void* arg, sqlite3* db, const char* name, int frames) {
  auto* bound = static_cast<WalBound*>(arg);
  auto now = std::chrono::steady_clock::now();
  if (frames >= bound->reset_frames && now >= bound->next_try) {
    sqlite3_busy_timeout(db, kWalResetWaitMs);
    int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_busy_timeout(db, bound->busy_timeout_ms);
    if (rc == SQLITE_OK) {
      ++bound->resets.done;
      return SQLITE_OK;
    }
    // BUSY: a reader held an older snapshot through the wait; the copy still happened. Any other
    // error is SQLite's to report at the next statement; the commit itself stands either way.
    ++bound->resets.busy;
    bound->next_try = now + std::chrono::milliseconds(bound->retry_ms);
    return SQLITE_OK;
  }
  if (frames >= kWalPassiveFrames)
    (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  return SQLITE_OK;
}

Status Database::BoundWal(int64_t reset_bytes, int64_t retry_ms) {
  APPBAN_ASSIGN_OR_RETURN(auto page_size, Statement::Prepare(*this, "PRAGMA page_size"));
  APPBAN_ASSIGN_OR_RETURN(bool row, page_size.Step());
  int64_t page = row && page_size.Int(0) > 0 ? page_size.Int(0) : 4096;
  auto bound = std::make_shared<WalBound>();
  bound->reset_frames = std::max<int64_t>(1, reset_bytes / page);
  bound->retry_ms = retry_ms;
  // The connection's busy timeout, to restore after a reset: sqlite3 has no getter but the pragma.
  APPBAN_ASSIGN_OR_RETURN(auto timeout, Statement::Prepare(*this, "PRAGMA busy_timeout"));
  APPBAN_ASSIGN_OR_RETURN(bool has_timeout, timeout.Step());
  bound->busy_timeout_ms = has_timeout ? static_cast<int>(timeout.Int(0)) : 0;
  wal_bound_ = std::move(bound);
  sqlite3_wal_hook(db_.get(), &Database::WalHook, wal_bound_.get());
  return Status::Ok();
}

WalResets Database::wal_resets() const { return wal_bound_ ? wal_bound_->resets : WalResets{}; }

Status Database::SetPendingAuditHead(const AuditHead& head) {
  if (!checkpoint_key_) {
    APPBAN_ASSIGN_OR_RETURN(policy::SigningKey key, LoadAuditCheckpointKey(AuditCheckpointDir(path_), false));
    checkpoint_key_.emplace(std::move(key));
  }
  pending_audit_head_ = head;
  return Status::Ok();
}

Status Database::Error(std::string_view context) const {
  int code = sqlite3_extended_errcode(db_.get());
  std::string message = std::string(context) + ": " + sqlite3_errmsg(db_.get());
  switch (code & 0xff) {
    case SQLITE_CONSTRAINT:
      if (code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE)
        return Status::AlreadyExists(message);
      if (code == SQLITE_CONSTRAINT_FOREIGNKEY) return Status::NotFound(message);
      return Status::FailedPrecondition(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
      return Status::Unavailable(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(message);
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return Status::PermissionDenied(message);
    default:
      return Status::Internal(message);
  }
}

Result<Statement> Statement::Prepare(const Database& db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
  if (rc != SQLITE_OK) return db.Error("preparing " + std::string(sql.substr(0, 60)));
  return Statement(&db, raw);
}

Statement& Statement::Bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text(statement_.get(), index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) bind_error_ = rc;
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(statement_.get(), index, value);
  if (rc != SQLITE_OK) bind_error_ = rc;
  return *this;
}

Result<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK)
    return Status::Internal(std::string("sqlite bind failed: ") + sqlite3_errstr(bind_error_));
  int rc = sqlite3_step(statement_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error("executing " + std::string(sqlite3_sql(statement_.get())).substr(0, 60));
}

Status Statement::Run() {
  APPBAN_ASSIGN_OR_RETURN(bool row, Step());
  if (row) return Status::Internal("statement unexpectedly returned rows");
  return Status::Ok();
}

std::string Statement::Text(int column) const { return std::string(TextView(column)); }

std::string_view Statement::TextView(int column) const {
  const unsigned char* text = sqlite3_column_text(statement_.get(), column);
  int bytes = sqlite3_column_bytes(statement_.get(), column);
  return text ? std::string_view(reinterpret_cast<const char*>(text), static_cast<size_t>(bytes)) : std::string_view();
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(statement_.get(), column); }

double Statement::Double(int column) const { return sqlite3_column_double(statement_.get(), column); }

bool Statement::IsNull(int column) const { return sqlite3_column_type(statement_.get(), column) == SQLITE_NULL; }

std::optional<int64_t> Statement::OptionalInt(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Int(column);
}

Statement& Statement::BindDouble(int index, double value) {
  int rc = sqlite3_bind_double(statement_.get(), index, value);
  if (rc != SQLITE_OK) bind_error_ = rc;
  return *this;
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(statement_.get(), index);
  if (rc != SQLITE_OK) bind_error_ = rc;
  return *this;
}

void Statement::Reset() {
  // sqlite3_reset repeats the last step's error code, which Step already reported.
  (void)sqlite3_reset(statement_.get());
  (void)sqlite3_clear_bindings(statement_.get());
  bind_error_ = SQLITE_OK;
}

Result<Transaction> Transaction::Begin(Database& db) {
  APPBAN_RETURN_IF_ERROR(db.Run(Database::Verb::kBeginImmediate));
  return Transaction(&db);
}

Result<Transaction> Transaction::BeginRead(Database& db) {
  APPBAN_RETURN_IF_ERROR(db.Run(Database::Verb::kBegin));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->Run(Database::Verb::kRollback);
}

Status Transaction::Commit() {
  Database* db = db_;
  db_ = nullptr;
  if (db == nullptr) return Status::Internal("transaction already finished");
  Status status = db->Run(Database::Verb::kCommit);
  if (!status.ok()) (void)db->Run(Database::Verb::kRollback);
  return status;
}

}  // namespace appban::store::sqlite
