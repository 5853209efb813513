// `appban server migrate`: moves a SQLite installation's database into an empty PostgreSQL
// database, every table row for row, the audit chain byte for byte (docs/postgresql.md,
// "Moving from SQLite").
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "appban/common/status.h"
#include "appban/store/audit.h"
#include "appban/store/open.h"

namespace appban::store {

struct MigrationReport {
  std::vector<std::pair<std::string, int64_t>> tables;  // table, rows copied (in copy order)
  AuditVerification source_audit;                       // the chain as read from SQLite
  AuditVerification target_audit;                       // the chain in PostgreSQL after the move
  int64_t migration_audit_seq = 0;                      // the server.migrate entry appended after it
};

// Copies the SQLite database at `sqlite_path` (migrated to the current schema first) into
// `target`, which must be a PostgreSQL database holding no appban rows (its schema is created if
// missing). The source is read in one snapshot and must have a verifying audit chain
// (kFailedPrecondition otherwise: a broken chain is investigated where it broke, not moved). The
// target is written in one transaction: on any error nothing is left in it. After the commit the
// chain is verified in PostgreSQL and must end at the source's head; then `audit` (action
// server.migrate) is appended to it there. Row counts are compared table by table.
Result<MigrationReport> MigrateSqliteToPostgres(const std::string& sqlite_path, const DatabaseTarget& target,
                                                const AuditRecord& audit);

}  // namespace appban::store
