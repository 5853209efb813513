// Thin RAII wrappers over libpq, private to the store part (the PostgreSQL twin of sqlite.h).
// A Connection owns one PGconn; every statement is parameterised (values travel apart from the SQL
// text, in libpq's text format) and answers with a Rows value that owns its PGresult; a
// Transaction rolls back unless committed. Errors are Status values whose message names the
// statement that failed and PostgreSQL's own message; SQLSTATE classes map to status codes
// (unique violation: kAlreadyExists, foreign key: kNotFound, serialization failure or deadlock:
// kUnavailable, connection lost: kUnavailable, a missing privilege or the schema's own guards:
// kPermissionDenied).
// A connection the server dropped (a database restart, a failover, an administrator ending it) is
// opened again by the next statement sent outside a transaction, so a long-running server recovers
// by itself; a read (SELECT) outside a transaction that finds the session dead is sent once more
// on a new one. A statement inside a transaction never reconnects, since what ran before the loss
// is gone (the caller sees kUnavailable and starts over), and neither does a lone write, which may
// have been applied before the session died.
// Not thread-safe: one connection per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"

struct pg_conn;
struct pg_result;

namespace appban::store {
class AuditCheckpointKeeper;  // audit_checkpoint.h
}  // namespace appban::store

namespace appban::store::postgres {

// One statement parameter in text format; nullopt is SQL NULL.
using Param = std::optional<std::string>;
inline Param P(std::string_view text) { return std::string(text); }
inline Param P(const char* text) { return std::string(text); }
inline Param P(int64_t value) { return std::to_string(value); }
inline Param P(int value) { return std::to_string(value); }
inline Param P(const std::optional<int64_t>& value) { return value ? P(*value) : std::nullopt; }

// The rows a statement returned (none for a command). Values are read as text, the way libpq
// delivers them; Int parses a 64-bit integer column and reports anything else as kCorruption.
class Rows {
 public:
  int size() const;
  bool empty() const { return size() == 0; }
  // Rows changed by an INSERT/UPDATE/DELETE.
  int64_t affected() const;
  std::string Text(int row, int column) const;
  // The same without a copy: valid while these Rows live.
  std::string_view TextView(int row, int column) const;
  bool IsNull(int row, int column) const;
  Result<int64_t> Int(int row, int column) const;
  // The command tag ("COMMIT", "INSERT 0 1", ...).
  std::string command() const;

 private:
  friend class Connection;
  struct Clearer {
    void operator()(pg_result* result) const;
  };
  explicit Rows(pg_result* result) : result_(result) {}
  std::unique_ptr<pg_result, Clearer> result_;
};

class Connection {
 public:
  // `url`: a libpq connection URI ("postgresql://user@host:5432/db?sslmode=verify-full&...") or
  // key=value string; every libpq option (sslmode, sslrootcert, sslcert, sslkey, service,
  // passfile, connect_timeout, ...) passes through unchanged. `password`, when given, overrides
  // any password in the URL (it comes from a password file; docs/postgresql.md).
  static Result<Connection> Open(const std::string& url, const std::optional<std::string>& password = std::nullopt);

  // One statement with $1..$n parameters.
  Result<Rows> Query(std::string_view sql, const std::vector<Param>& params = {});
  // The same, through a statement prepared on the server once per connection under `*name`
  // (assigned at the first call, "" before): the hot paths skip parsing and planning.
  Result<Rows> QueryPrepared(std::string& name, std::string_view sql, const std::vector<Param>& params);
  // Runs SQL text that may hold several statements and takes no parameters: migrations only.
  Status ExecScript(std::string_view sql);
  // The server's version as libpq reports it (150018 for 15.18).
  int ServerVersion() const;

  // LISTEN/NOTIFY (docs/postgresql.md "Several nodes"). Listen subscribes this connection to
  // `channel` (a plain identifier). Socket is the descriptor to wait on for readability, -1 when
  // the connection is lost; TakeNotifications reads what arrived without blocking and answers
  // kUnavailable once the connection is lost (the caller opens a new one and catches up, since
  // notifications sent meanwhile are gone).
  Status Listen(std::string_view channel);
  int Socket() const;
  struct Notification {
    std::string channel;
    std::string payload;
  };
  Result<std::vector<Notification>> TakeNotifications();
  // Times this connection was opened again after a loss (0 for a connection never lost).
  int64_t reconnects() const { return reconnects_; }
  // An identifier for logs and errors: the database name and host, never the password.
  const std::string& description() const { return description_; }

  // The signed audit checkpoint this connection keeps (audit_checkpoint.h: a node's own directory):
  // an append records the chain's new head in it, and Transaction::Commit signs it after COMMIT;
  // a rollback forgets it. Null (the default) keeps none.
  void KeepAuditCheckpoint(std::shared_ptr<AuditCheckpointKeeper> keeper) { audit_checkpoint_ = std::move(keeper); }
  AuditCheckpointKeeper* audit_checkpoint() const { return audit_checkpoint_.get(); }

 private:
  struct Finisher {
    void operator()(pg_conn* conn) const;
  };
  Connection(pg_conn* conn, std::string description) : conn_(conn), description_(std::move(description)) {}
  friend class Transaction;
  // The Status for a failed result (or a null one: out of memory, connection lost).
  Status Error(pg_result* result, std::string_view sql) const;
  // Before a statement: a lost connection is opened again unless a transaction is open on it.
  Status ReconnectIfLost();
  // After a failed statement: true when the session is gone and the statement was a read outside
  // a transaction, which may safely be sent again on a new one.
  bool RetryableAfterLoss(std::string_view sql) const;
  Result<Rows> QueryPreparedOnce(std::string& name, std::string_view sql, const std::vector<Param>& params);
  std::unique_ptr<pg_conn, Finisher> conn_;
  std::string description_;
  int64_t prepared_ = 0;    // statements prepared on this connection, for their names
  int64_t reconnects_ = 0;  // prepared statements die with the session: names carry this
  bool in_transaction_ = false;
  std::shared_ptr<AuditCheckpointKeeper> audit_checkpoint_;
};

// A statement with the cursor interface of sqlite::Statement (Bind, Step, Text, Int...), so that
// code written once over either backend (store/fleet_tables.h) runs on both. The SQL may number
// its parameters the SQLite way (?1, ?2...): Prepare turns them into $1, $2... (outside quoted
// literals). Nothing reaches the server until the first Step or Run, which sends the statement
// with its parameters and keeps every row it answers; Reset forgets them and the parameters.
class Statement {
 public:
  static Result<Statement> Prepare(Connection& db, std::string_view sql);
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, int64_t value);
  Statement& BindDouble(int index, double value);
  Statement& BindNull(int index);
  Statement& Bind(int index, const std::optional<int64_t>& value) {
    return value ? Bind(index, *value) : BindNull(index);
  }
  void Reset();
  // Prepares it on the server at its first run and reuses that from then on: for statements a
  // store keeps for the life of its connection (FleetTables' statement cache).
  void KeepPrepared() { keep_prepared_ = true; }
  // true: a row is available; false: done.
  Result<bool> Step();
  // Runs the statement; rows it answers are ignored.
  Status Run();
  // Rows the last run inserted, updated or deleted.
  int64_t Changes() const;
  std::string Text(int column) const;
  // The same without a copy: valid until the next Step, Reset or run.
  std::string_view TextView(int column) const;
  // A boolean column reads as 1 or 0; anything unreadable as 0 (columns read with Int are
  // integers in the schema).
  int64_t Int(int column) const;
  double Double(int column) const;
  bool IsNull(int column) const;
  std::optional<int64_t> OptionalInt(int column) const;
  const std::string& sql() const { return sql_; }

 private:
  Statement(Connection* db, std::string sql, int parameters) : db_(db), sql_(std::move(sql)), parameters_(parameters) {}
  Status Execute();
  Connection* db_;
  std::string sql_;
  int parameters_;  // the highest $N in sql_: unbound ones are sent as NULL, as in SQLite
  bool keep_prepared_ = false;
  std::string prepared_name_;  // once prepared on the server
  std::vector<Param> params_;
  std::optional<Rows> rows_;
  int next_row_ = 0;  // the row Step returns next; the current one is next_row_ - 1
};

class Transaction {
 public:
  enum class Mode {
    kReadCommitted,     // PostgreSQL's default: each statement sees what committed before it
    kRepeatableReadRO,  // one snapshot for every read, read only: reads that must agree
  };
  static Result<Transaction> Begin(Connection& db, Mode mode = Mode::kReadCommitted);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Connection* db) : db_(db) {}
  Connection* db_;
};

// The transaction-scoped advisory lock every write takes first (postgres_store.cc): one writer at a
// time across all nodes, as SQLite's write lock on one machine. "appban" + 2.
inline constexpr int64_t kWriteLock = 0x617070620002;

// The longest password file read (a password, maybe a newline).
inline constexpr size_t kMaxPasswordFileBytes = 1024;
// Reads the database password from `path`: one line, the trailing newline dropped. The file must be
// a regular file readable by its owner only (mode 0600 or 0400): kPermissionDenied otherwise, as
// for the server's other secrets; kLimitExceeded past kMaxPasswordFileBytes.
Result<std::string> ReadPasswordFile(const std::string& path);

// True when `url` names a PostgreSQL database rather than a SQLite file.
bool IsPostgresUrl(std::string_view url);

}  // namespace appban::store::postgres
