#include "appban/store/postgres.h"

#include "appban/store/audit_checkpoint.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <strings.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace appban::store::postgres {
namespace {

// How much of a statement an error message quotes: enough to recognise it.
constexpr size_t kQuotedStatementChars = 80;

std::string Quote(std::string_view sql) {
  std::string text(sql.substr(0, kQuotedStatementChars));
  for (char& c : text) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return sql.size() > kQuotedStatementChars ? text + "..." : text;
}

std::string TrimmedMessage(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// NOTICEs (e.g. "relation already exists, skipping") are not errors: keep them off stderr.
void IgnoreNotice(void*, const char*) {}

}  // namespace

void Rows::Clearer::operator()(pg_result* result) const { PQclear(result); }

int Rows::size() const { return PQntuples(result_.get()); }

int64_t Rows::affected() const {
  const char* count = PQcmdTuples(result_.get());
  int64_t value = 0;
  std::from_chars(count, count + std::char_traits<char>::length(count), value);
  return value;
}

std::string Rows::Text(int row, int column) const { return std::string(TextView(row, column)); }

std::string_view Rows::TextView(int row, int column) const {
  return std::string_view(PQgetvalue(result_.get(), row, column),
                          static_cast<size_t>(PQgetlength(result_.get(), row, column)));
}

std::string Rows::command() const { return PQcmdStatus(result_.get()); }

bool Rows::IsNull(int row, int column) const { return PQgetisnull(result_.get(), row, column) == 1; }

Result<int64_t> Rows::Int(int row, int column) const {
  std::string text = Text(row, column);
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Status::Corruption("column " + std::string(PQfname(result_.get(), column)) + " is not an integer: '" +
                              text.substr(0, 40) + "'");
  }
  return value;
}

void Connection::Finisher::operator()(pg_conn* conn) const { PQfinish(conn); }

Result<Connection> Connection::Open(const std::string& url, const std::optional<std::string>& password) {
  // expand_dbname = 1: "dbname" holds the whole URI or key=value string; the password given
  // separately comes after it and so takes precedence.
  const char* keywords[] = {"dbname", password ? "password" : nullptr, nullptr};
  const char* values[] = {url.c_str(), password ? password->c_str() : nullptr, nullptr};
  pg_conn* raw = PQconnectdbParams(keywords, values, 1);
  if (raw == nullptr) return Status::Unavailable("postgresql: out of memory opening a connection");
  Connection connection(raw, "");
  if (PQstatus(raw) != CONNECTION_OK) {
    return Status::Unavailable("cannot connect to PostgreSQL: " + TrimmedMessage(PQerrorMessage(raw)));
  }
  PQsetNoticeProcessor(raw, IgnoreNotice, nullptr);
  const char* host = PQhost(raw);
  connection.description_ = std::string("database ") + PQdb(raw) + " on " + (host ? host : "?");
  return connection;
}

Status Connection::Error(pg_result* result, std::string_view sql) const {
  std::string message = TrimmedMessage(result ? PQresultErrorMessage(result) : PQerrorMessage(conn_.get()));
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string sqlstate = state ? state : "";
  std::string text = "postgresql (" + Quote(sql) + "): " + message;
  if (PQstatus(conn_.get()) != CONNECTION_OK || sqlstate.starts_with("08") || sqlstate.starts_with("57P")) {
    return Status::Unavailable(text);
  }
  if (sqlstate == "23505") return Status::AlreadyExists(text);
  if (sqlstate == "23503") return Status::NotFound(text);
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03") return Status::Unavailable(text);
  if (sqlstate.starts_with("23")) return Status::FailedPrecondition(text);
  // RAISE EXCEPTION in the schema's own triggers (the append-only audit log), or a privilege the
  // role lacks: a refused write.
  if (sqlstate == "P0001" || sqlstate == "42501") return Status::PermissionDenied(text);
  return Status::Internal(text);
}

Status Connection::ReconnectIfLost() {
  // A server that ends an idle session (a restart, a failover, pg_terminate_backend) says so and
  // closes the socket; reading what is waiting, without blocking, notices it before a statement is
  // sent into the dead session. Two reads: the goodbye message, then the end of the stream. Only
  // outside a transaction: inside one, a lost session must fail the statement instead.
  for (int read = 0; read < 2 && !in_transaction_ && PQstatus(conn_.get()) == CONNECTION_OK; ++read) {
    if (PQconsumeInput(conn_.get()) == 0) break;
  }
  if (PQstatus(conn_.get()) != CONNECTION_BAD) return Status::Ok();
  if (in_transaction_) {
    return Status::Unavailable("postgresql: the connection to the " + description_ +
                               " was lost inside a transaction; it rolled back");
  }
  PQreset(conn_.get());
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    return Status::Unavailable("cannot reconnect to PostgreSQL (" + description_ +
                               "): " + TrimmedMessage(PQerrorMessage(conn_.get())));
  }
  ++reconnects_;
  return Status::Ok();
}

bool Connection::RetryableAfterLoss(std::string_view sql) const {
  if (in_transaction_ || PQstatus(conn_.get()) != CONNECTION_BAD) return false;
  while (!sql.empty() && (sql.front() == ' ' || sql.front() == '\n')) sql.remove_prefix(1);
  return sql.size() >= 6 && strncasecmp(sql.data(), "SELECT", 6) == 0;
}

Result<Rows> Connection::Query(std::string_view sql, const std::vector<Param>& params) {
  APPBAN_RETURN_IF_ERROR(ReconnectIfLost());
  std::string text(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& param : params) values.push_back(param ? param->c_str() : nullptr);
  auto run = [&] {
    return Rows(PQexecParams(conn_.get(), text.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                             nullptr, nullptr, 0));
  };
  Rows rows = run();
  ExecStatusType status = rows.result_ ? PQresultStatus(rows.result_.get()) : PGRES_FATAL_ERROR;
  // The session died under a read (the server was going down as it was sent): a read outside a
  // transaction changes nothing, so it is sent once more on a new session.
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && RetryableAfterLoss(sql) && ReconnectIfLost().ok()) {
    rows = run();
    status = rows.result_ ? PQresultStatus(rows.result_.get()) : PGRES_FATAL_ERROR;
  }
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return Error(rows.result_.get(), sql);
  return rows;
}

Result<Rows> Connection::QueryPrepared(std::string& name, std::string_view sql, const std::vector<Param>& params) {
  auto rows = QueryPreparedOnce(name, sql, params);
  if (rows.ok() || !RetryableAfterLoss(sql)) return rows;
  return QueryPreparedOnce(name, sql, params);  // a read on a session that died: as in Query
}

Result<Rows> Connection::QueryPreparedOnce(std::string& name, std::string_view sql, const std::vector<Param>& params) {
  APPBAN_RETURN_IF_ERROR(ReconnectIfLost());
  // A name from before a reconnect names nothing on the new session: prepare again.
  const std::string session = "appban_" + std::to_string(reconnects_) + "_";
  if (!name.starts_with(session)) {
    std::string candidate = session + std::to_string(++prepared_);
    std::string text(sql);
    Rows prepared(PQprepare(conn_.get(), candidate.c_str(), text.c_str(), 0, nullptr));
    ExecStatusType status = prepared.result_ ? PQresultStatus(prepared.result_.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK) return Error(prepared.result_.get(), sql);
    name = std::move(candidate);
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& param : params) values.push_back(param ? param->c_str() : nullptr);
  Rows rows(
      PQexecPrepared(conn_.get(), name.c_str(), static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0));
  ExecStatusType status = rows.result_ ? PQresultStatus(rows.result_.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return Error(rows.result_.get(), sql);
  return rows;
}

Status Connection::ExecScript(std::string_view sql) {
  APPBAN_RETURN_IF_ERROR(ReconnectIfLost());
  std::string text(sql);
  Rows rows(PQexec(conn_.get(), text.c_str()));
  ExecStatusType status = rows.result_ ? PQresultStatus(rows.result_.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return Error(rows.result_.get(), sql);
  return Status::Ok();
}

int Connection::ServerVersion() const { return PQserverVersion(conn_.get()); }

Status Connection::Listen(std::string_view channel) {
  bool plain = !channel.empty() && channel.size() <= 63 &&
               std::all_of(channel.begin(), channel.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
  if (!plain) return Status::InvalidArgument("postgresql: LISTEN channel must be lower-case letters and _");
  return Query("LISTEN " + std::string(channel)).status();
}

int Connection::Socket() const { return PQsocket(conn_.get()); }

Result<std::vector<Connection::Notification>> Connection::TakeNotifications() {
  if (PQconsumeInput(conn_.get()) == 0 || PQstatus(conn_.get()) != CONNECTION_OK) {
    return Status::Unavailable("postgresql: the listening connection to the " + description_ +
                               " was lost: " + TrimmedMessage(PQerrorMessage(conn_.get())));
  }
  std::vector<Notification> arrived;
  while (PGnotify* notify = PQnotifies(conn_.get())) {
    arrived.push_back(Notification{notify->relname ? notify->relname : "", notify->extra ? notify->extra : ""});
    PQfreemem(notify);
  }
  return arrived;
}

namespace {

// SQLite's ?N parameters as PostgreSQL's $N; a bare ? takes the number after the highest so far,
// as in SQLite. Quoted literals and identifiers are copied as they are.
std::string PostgresPlaceholders(std::string_view sql, int& highest) {
  std::string out;
  out.reserve(sql.size() + 8);
  highest = 0;
  char quote = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
      out += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c == '?') {
      size_t end = i + 1;
      while (end < sql.size() && sql[end] >= '0' && sql[end] <= '9') ++end;
      int number = 0;
      if (end > i + 1) {
        std::from_chars(sql.data() + i + 1, sql.data() + end, number);
      } else {
        number = highest + 1;
      }
      highest = std::max(highest, number);
      out += '$' + std::to_string(number);
      i = end - 1;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Result<Statement> Statement::Prepare(Connection& db, std::string_view sql) {
  int parameters = 0;
  std::string text = PostgresPlaceholders(sql, parameters);
  return Statement(&db, std::move(text), parameters);
}

Statement& Statement::Bind(int index, std::string_view text) {
  if (index >= 1) {
    if (params_.size() < static_cast<size_t>(index)) params_.resize(static_cast<size_t>(index));
    params_[static_cast<size_t>(index - 1)] = std::string(text);
  }
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) { return Bind(index, std::to_string(value)); }

Statement& Statement::BindDouble(int index, double value) {
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return Bind(index, error == std::errc() ? std::string_view(buffer, static_cast<size_t>(end - buffer)) : "NaN");
}

Statement& Statement::BindNull(int index) {
  if (index >= 1) {
    if (params_.size() < static_cast<size_t>(index)) params_.resize(static_cast<size_t>(index));
    params_[static_cast<size_t>(index - 1)] = std::nullopt;
  }
  return *this;
}

void Statement::Reset() {
  params_.clear();
  rows_.reset();
  next_row_ = 0;
}

Status Statement::Execute() {
  if (params_.size() < static_cast<size_t>(parameters_)) params_.resize(static_cast<size_t>(parameters_));
  APPBAN_ASSIGN_OR_RETURN(
      Rows rows, keep_prepared_ ? db_->QueryPrepared(prepared_name_, sql_, params_) : db_->Query(sql_, params_));
  rows_.emplace(std::move(rows));
  next_row_ = 0;
  return Status::Ok();
}

Result<bool> Statement::Step() {
  if (!rows_) APPBAN_RETURN_IF_ERROR(Execute());
  if (next_row_ >= rows_->size()) return false;
  ++next_row_;
  return true;
}

Status Statement::Run() { return Execute(); }

int64_t Statement::Changes() const { return rows_ ? rows_->affected() : 0; }

std::string Statement::Text(int column) const { return rows_->Text(next_row_ - 1, column); }

std::string_view Statement::TextView(int column) const { return rows_->TextView(next_row_ - 1, column); }

int64_t Statement::Int(int column) const {
  std::string text = Text(column);
  if (text == "t") return 1;
  if (text == "f") return 0;
  int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

double Statement::Double(int column) const {
  std::string text = Text(column);
  double value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

bool Statement::IsNull(int column) const { return rows_->IsNull(next_row_ - 1, column); }

std::optional<int64_t> Statement::OptionalInt(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Int(column);
}

Result<Transaction> Transaction::Begin(Connection& db, Mode mode) {
  const char* sql = mode == Mode::kRepeatableReadRO ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN";
  auto begun = db.Query(sql);
  // A session the server ended since the last statement (a restart, a failover) is only noticed
  // by this one; nothing ran in it yet, so open the connection again and begin once more.
  if (!begun.ok() && PQstatus(db.conn_.get()) == CONNECTION_BAD) begun = db.Query(sql);
  APPBAN_RETURN_IF_ERROR(begun.status());
  db.in_transaction_ = true;
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ == nullptr) return;
  db_->in_transaction_ = false;
  if (db_->audit_checkpoint_) db_->audit_checkpoint_->ForgetPending();
  // A lost connection rolled the transaction back already; the next statement reconnects.
  if (PQstatus(db_->conn_.get()) == CONNECTION_OK) (void)db_->Query("ROLLBACK");
}

Status Transaction::Commit() {
  Connection* db = db_;
  db_ = nullptr;
  // Still inside the transaction while COMMIT is sent: a connection lost by now must fail the
  // COMMIT, not reconnect and send it to a new session (where it would answer COMMIT too).
  auto done = db->Query("COMMIT");
  db->in_transaction_ = false;
  // COMMIT of a transaction in which a statement failed answers ROLLBACK, not an error.
  const bool committed = done.ok() && done->command() == "COMMIT";
  if (db->audit_checkpoint_ && !committed) db->audit_checkpoint_->ForgetPending();
  APPBAN_RETURN_IF_ERROR(done.status());
  if (!committed) return Status::Internal("postgresql: the transaction was rolled back, not committed");
  // A COMMIT whose answer was lost may have committed: the head is then not signed here, and the
  // next commit's checkpoint covers it (a checkpoint may lag the chain; it never leads it).
  return db->audit_checkpoint_ ? db->audit_checkpoint_->WritePending() : Status::Ok();
}

Result<std::string> ReadPasswordFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::NotFound("cannot open the database password file " + path + ": " + std::strerror(errno));
  struct stat info {};
  std::string text;
  Status status = Status::Ok();
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    status = Status::InvalidArgument("the database password file " + path + " is not a regular file");
  } else if ((info.st_mode & 077) != 0) {
    status = Status::PermissionDenied("the database password file " + path +
                                      " is readable by others: make it mode 0600 (chmod 600)");
  } else {
    char buffer[kMaxPasswordFileBytes + 1];
    ssize_t got = 0;
    while (text.size() <= kMaxPasswordFileBytes && (got = ::read(fd, buffer, sizeof buffer)) > 0) {
      text.append(buffer, static_cast<size_t>(got));
    }
    if (got < 0) status = Status::Unavailable("cannot read " + path + ": " + std::strerror(errno));
    if (text.size() > kMaxPasswordFileBytes) {
      status = Status::LimitExceeded("the database password file " + path + " is longer than " +
                                     std::to_string(kMaxPasswordFileBytes) + " bytes");
    }
  }
  ::close(fd);
  APPBAN_RETURN_IF_ERROR(status);
  if (text.ends_with('\n')) text.pop_back();
  if (text.ends_with('\r')) text.pop_back();
  if (text.empty() || text.find('\n') != std::string::npos) {
    return Status::InvalidArgument("the database password file " + path + " must hold exactly one non-empty line");
  }
  return text;
}

bool IsPostgresUrl(std::string_view url) { return url.starts_with("postgresql://") || url.starts_with("postgres://"); }

}  // namespace appban::store::postgres
