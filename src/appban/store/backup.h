// Consistent copies of the SQLite store database for `appban server backup` and `restore`
// (docs/operations.md). The copy is taken with SQLite's online backup API while servers keep
// writing, travels with its audit checkpoint directory, and is checked — integrity, foreign keys,
// the whole audit chain — without being changed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "appban/common/status.h"
#include "appban/store/audit.h"

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

}  // namespace appban::store
