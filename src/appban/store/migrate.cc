#include "appban/store/migrate.h"

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/store/postgres.h"
#include "appban/store/postgres_store.h"
#include "appban/store/sqlite.h"

namespace appban::store {
namespace {

// Every table of the schema (SQLite 11 = PostgreSQL 3), parents before the rows that reference
// them; `order` keeps a self-reference (a service account's owner) satisfied.
struct TableCopy {
  std::string_view name;
  std::string_view order;
};
constexpr TableCopy kTables[] = {
    {"rules", "id"},
    {"waivers", "id"},
    {"device_groups", "name"},
    {"vendors", "name"},
    {"changes", "name"},
    {"bundles", "version"},
    {"audit", "seq"},
    {"audit_head", "id"},
    {"users", "owner_id IS NOT NULL, id"},
    {"api_tokens", "id"},
    {"enrollment_tokens", "id"},
    {"devices", "id"},
    {"device_inventories", "device_id"},
    {"device_events", "device_id, seq"},
    {"device_rule_states", "device_id, rule_id"},
    {"assessments", "sha256"},
    {"server_settings", "key"},
    {"ended_sessions", "id"},
    {"session_cutoffs", "user_id"},
};

// Rows per INSERT: one statement per batch, well under PostgreSQL's 65,535 parameters.
constexpr size_t kMaxRowsPerInsert = 500;
constexpr size_t kMaxParametersPerInsert = 30'000;

std::string ValueText(const sqlite::Statement& row, int column) {
  if (!row.IsFloat(column)) return row.Text(column);
  // SQLite's own text for a REAL keeps 15 digits; the shortest round-trip form keeps the value.
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, row.Double(column));
  return error == std::errc() ? std::string(buffer, end) : row.Text(column);
}

Status FlushRows(postgres::Connection& target, std::string_view table, const std::vector<std::string>& columns,
                 std::vector<postgres::Param>& params) {
  if (params.empty()) return Status::Ok();
  std::string sql = "INSERT INTO " + std::string(table) + "(";
  for (size_t i = 0; i < columns.size(); ++i) sql += (i ? ", " : "") + columns[i];
  sql += ") VALUES ";
  size_t rows = params.size() / columns.size();
  for (size_t row = 0, n = 1; row < rows; ++row) {
    sql += row ? ", (" : "(";
    for (size_t i = 0; i < columns.size(); ++i, ++n) sql += (i ? ", $" : "$") + std::to_string(n);
    sql += ")";
  }
  APPBAN_RETURN_IF_ERROR(target.Query(sql, params).status());
  params.clear();
  return Status::Ok();
}

Result<int64_t> CopyTable(sqlite::Database& source, postgres::Connection& target, const TableCopy& table) {
  APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(source, "SELECT * FROM " + std::string(table.name) +
                                                                             " ORDER BY " + std::string(table.order)));
  std::vector<std::string> columns;
  std::vector<postgres::Param> params;
  int64_t copied = 0;
  while (true) {
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    if (columns.empty()) {
      for (int i = 0; i < query.ColumnCount(); ++i) columns.push_back(query.ColumnName(i));
    }
    for (int i = 0; i < query.ColumnCount(); ++i) {
      params.push_back(query.IsNull(i) ? std::nullopt : postgres::Param(ValueText(query, i)));
    }
    ++copied;
    if (params.size() / columns.size() >= kMaxRowsPerInsert ||
        params.size() + columns.size() > kMaxParametersPerInsert) {
      APPBAN_RETURN_IF_ERROR(FlushRows(target, table.name, columns, params));
    }
  }
  APPBAN_RETURN_IF_ERROR(FlushRows(target, table.name, columns, params));
  return copied;
}

Result<int64_t> CountPostgresRows(postgres::Connection& db, std::string_view table) {
  APPBAN_ASSIGN_OR_RETURN(postgres::Rows rows, db.Query("SELECT COUNT(*) FROM " + std::string(table)));
  return rows.Int(0, 0);
}

}  // namespace

Result<MigrationReport> MigrateSqliteToPostgres(const std::string& sqlite_path, const DatabaseTarget& target,
                                                const AuditRecord& audit) {
  if (!target.IsPostgres()) {
    return Status::InvalidArgument("the target must be a PostgreSQL URI (postgresql://...), not " + target.location);
  }
  MigrationReport report;
  APPBAN_ASSIGN_OR_RETURN(sqlite::Database source, sqlite::OpenStoreDatabase(sqlite_path));
  // Creates the schema in the target (or checks it is not newer than this appban's).
  APPBAN_RETURN_IF_ERROR(OpenPostgresStore(target.location, target.password).status());
  APPBAN_ASSIGN_OR_RETURN(postgres::Connection destination,
                          postgres::Connection::Open(target.location, target.password));

  {
    // One snapshot of the source; one transaction in the target, holding the write lock so that
    // no node writes beside the copy.
    APPBAN_ASSIGN_OR_RETURN(report.source_audit, sqlite::VerifyStoredAudit(source));  // its own snapshot
    if (!report.source_audit.ok()) {
      return Status::FailedPrecondition(sqlite_path + ": the audit chain does not verify (" +
                                        report.source_audit.problems.front().what + " at entry " +
                                        std::to_string(report.source_audit.problems.front().seq) +
                                        "); run `appban audit verify` and settle it before moving the database");
    }
    APPBAN_ASSIGN_OR_RETURN(sqlite::Transaction snapshot, sqlite::Transaction::BeginRead(source));
    {
      // The copy's snapshot must hold the chain just verified (a writer may have appended since).
      APPBAN_ASSIGN_OR_RETURN(auto head, sqlite::Statement::Prepare(source, "SELECT seq, hash FROM audit_head"));
      APPBAN_ASSIGN_OR_RETURN(bool row, head.Step());
      int64_t seq = row ? head.Int(0) : 0;
      if (seq != report.source_audit.entries || (row && head.Text(1) != report.source_audit.head_hash)) {
        return Status::Unavailable(sqlite_path + " is being written to: stop the server that uses it and run again");
      }
    }
    APPBAN_ASSIGN_OR_RETURN(postgres::Transaction transaction, postgres::Transaction::Begin(destination));
    APPBAN_RETURN_IF_ERROR(
        destination.Query("SELECT pg_advisory_xact_lock($1)", {postgres::P(postgres::kWriteLock)}).status());
    for (const TableCopy& table : kTables) {
      APPBAN_ASSIGN_OR_RETURN(postgres::Rows any,
                              destination.Query("SELECT 1 FROM " + std::string(table.name) + " LIMIT 1"));
      if (!any.empty()) {
        return Status::AlreadyExists(target.Describe() + " already holds appban data (table " +
                                     std::string(table.name) + "): migrate into an empty database");
      }
    }
    for (const TableCopy& table : kTables) {
      auto copied = CopyTable(source, destination, table);
      if (!copied.ok()) {
        return Status(copied.status().code(),
                      "copying table " + std::string(table.name) + ": " + std::string(copied.status().message()));
      }
      report.tables.emplace_back(table.name, *copied);
    }
    APPBAN_RETURN_IF_ERROR(transaction.Commit());
    APPBAN_RETURN_IF_ERROR(snapshot.Commit());
  }

  for (const auto& [table, copied] : report.tables) {
    APPBAN_ASSIGN_OR_RETURN(int64_t stored, CountPostgresRows(destination, table));
    if (stored != copied) {
      return Status::Corruption("table " + table + ": " + std::to_string(copied) + " rows copied, " +
                                std::to_string(stored) + " in " + target.Describe());
    }
  }
  APPBAN_ASSIGN_OR_RETURN(std::unique_ptr<Store> moved, OpenPostgresStore(target.location, target.password));
  APPBAN_ASSIGN_OR_RETURN(AuditVerification copied_chain, moved->VerifyAudit());
  if (!copied_chain.ok() || copied_chain.entries != report.source_audit.entries ||
      copied_chain.head_hash != report.source_audit.head_hash) {
    return Status::Corruption("the audit chain in " + target.Describe() + " (" + std::to_string(copied_chain.entries) +
                              " entries, head " + copied_chain.head_hash + ") is not the source's (" +
                              std::to_string(report.source_audit.entries) + " entries, head " +
                              report.source_audit.head_hash + ")");
  }
  APPBAN_RETURN_IF_ERROR(moved->AppendAudit(audit));
  APPBAN_ASSIGN_OR_RETURN(report.target_audit, moved->VerifyAudit());
  if (!report.target_audit.ok()) return Status::Corruption("the audit chain does not verify after the migration entry");
  report.migration_audit_seq = report.target_audit.entries;
  return report;
}

}  // namespace appban::store
