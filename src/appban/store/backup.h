// Consistent copies of the SQLite store database for `appban server backup` and `restore`
// (docs/operations.md). The copy is taken with SQLite's online backup API while servers keep
// writing, travels with its audit checkpoint directory, and is checked — integrity, foreign keys,
// the whole audit chain — without being changed. A PostgreSQL database is not copied (pg_dump and
// base backups do that, docs/postgresql.md): it is only inspected, so that a backup of the files
// beside it can name the database and audit head it belongs with.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "appban/common/status.h"
#include "appban/store/audit.h"
#include "appban/store/open.h"

namespace appban::store {

// What a database copy holds, as read from it.
struct DatabaseSnapshot {
  int64_t schema_version = 0;            // PRAGMA user_version of the copy
  int64_t supported_schema_version = 0;  // the newest this binary understands
  std::optional<AuditHead> audit_head;
  AuditVerification audit;
  // Rows per table of interest (rules, waivers, devices, users, …), in a fixed order; a table an
  // older schema lacks is left out.
  std::vector<std::pair<std::string, int64_t>> row_counts;
};

// Copies the database at `source_path` (which a running server may be writing) to
// `destination_path`, which must not exist, with its audit checkpoint directory
// (<destination>.audit/: key, public key, and a checkpoint signed for the copy's own head). The
// copy is one read snapshot of the source. Refuses (kCorruption) to copy a chain that does not
// verify against the source's checkpoint: re-signing it would hide the damage.
// Errors name the file; nothing is left at `destination_path` on failure.
Result<DatabaseSnapshot> SnapshotSqliteDatabase(const std::string& source_path, const std::string& destination_path);

// Reads `path` (an existing database not in use by a server) without migrating it: integrity and
// foreign-key checks (kCorruption), schema version (kUnsupported when newer than this binary),
// row counts and the audit chain against its checkpoint (problems are in `audit`, not an error).
Result<DatabaseSnapshot> InspectSqliteDatabase(const std::string& path);

// Which PostgreSQL database a backup of the data directory belongs with. The chain's first entry
// names the installation (a dump restored into another cluster keeps it); the rest says where it
// was.
struct PostgresIdentity {
  std::string location;          // the URI without a password (DatabaseTarget::Describe)
  std::string database;          // current_database()
  std::string server_version;    // server_version, e.g. "15.8 (Debian 15.8-0+deb12u1)"
  std::string audit_first_hash;  // the hash of audit entry 1, empty when the chain is empty
};

// Reads the PostgreSQL database `target` names, as a backup records it and a restore checks it:
// the schema version, row counts of the same tables as a SQLite snapshot, and the whole audit
// chain verified (problems are in `audit`, not an error). A database appban never migrated is
// kNotFound (nothing was restored into it), a schema newer than this binary kUnsupported; an older
// one is migrated forward first, as the server's start would, unless `migrate` is false (a check
// that must write nothing: the schema_version then says how old it is). Errors name the database.
Result<std::pair<DatabaseSnapshot, PostgresIdentity>> InspectPostgresDatabase(const DatabaseTarget& target,
                                                                              bool migrate = true);

}  // namespace appban::store
