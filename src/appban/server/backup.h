// `appban server backup` and `appban server restore` (docs/operations.md). A backup is a directory:
//
//   <backup>/MANIFEST.json                     every file with size, mode, SHA-256; the database's audit head
//   <backup>/database/appban.db                SQLite: one consistent snapshot of the database (online backup API)
//   <backup>/database/appban.db.audit/         SQLite: its audit checkpoint key and a checkpoint signed for the copy
//   <backup>/data/…                            the rest of the data directory: policy keys, TLS CA and
//                                              certificate, the console session key, MDM state
//
// On PostgreSQL the database is not in the backup: PostgreSQL's own tools copy it (pg_dump, base
// backups with WAL archiving), and the backup holds the data directory's files together with the
// database's identity and its audit head at that moment. A restore puts the files back only when
// the database the configuration names (restored by the operator beforehand) holds that head:
// keys and database then belong together.
//
// A backup is taken while the server runs, is written to a hidden sibling directory and renamed
// into place only when complete and checked, and is itself recorded in the live audit chain
// (action server.backup). A restore checks every file against the manifest and the whole audit
// chain before anything appears at the target, and records itself (server.restore) in the
// restored chain.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/server/config.h"
#include "appban/store/backup.h"

namespace appban::server {

// A SQLite backup is written as format 1 (older appban binaries restore it); a PostgreSQL backup as
// format 2, which adds database.backend, so that a binary that knows only format 1 refuses it rather
// than look for a database file it does not hold. Both are read.
inline constexpr std::string_view kBackupFormat = "appban.backup/1";
inline constexpr std::string_view kBackupFormatWithBackend = "appban.backup/2";
inline constexpr std::string_view kBackupManifestName = "MANIFEST.json";
// Bounds for reading a backup someone else may have handled.
inline constexpr uint64_t kMaxBackupManifestBytes = 16 * 1024 * 1024;
inline constexpr size_t kMaxBackupFiles = 100'000;
// A file of the data directory other than the database: keys, certificates, MDM state.
inline constexpr uint64_t kMaxBackupSideFileBytes = 256ull * 1024 * 1024;
inline constexpr uint64_t kMaxBackupDatabaseBytes = 1ull << 40;

struct BackupFile {
  std::string path;  // relative to the backup directory ("data/keys/active")
  uint64_t bytes = 0;
  std::string sha256;
  unsigned mode = 0600;
};

struct BackupLeftOut {
  std::string path;  // relative to the data directory
  std::string why;
};

struct BackupReport {
  std::string location;  // the backup directory
  UnixSeconds created_at = 0;
  std::string source_data_dir;
  // SQLite: the copy as checked. PostgreSQL: the database as found at backup time (schema, row
  // counts, the verified chain's head), which the backup does not hold.
  store::DatabaseSnapshot database;
  // Set when the database is PostgreSQL: which database the files belong with.
  std::optional<store::PostgresIdentity> postgres;
  std::string policy_key_id;  // keys/active, empty when none
  std::string ca_sha256;      // tls/ca.pem's certificate fingerprint, empty without a generated CA
  std::vector<BackupFile> files;
  std::vector<BackupLeftOut> left_out;
  uint64_t TotalBytes() const;
};

// Backs up the installation `config` describes into `destination` (which must not exist, and may
// not lie inside the data directory). The server may be running. On PostgreSQL only the data
// directory's files are copied; the database's chain must verify, and its head is recorded.
Result<BackupReport> BackupServer(const ServerConfig& config, const std::string& destination, UnixSeconds now);

struct RestoreReport {
  BackupReport backup;  // as read and checked from the backup
  std::string data_dir;
  std::string database_path;  // SQLite: the file; PostgreSQL: the URI without a password
  // PostgreSQL: the chain found in the configured database, which holds the backup's head.
  store::AuditVerification database_audit;
  int64_t restore_audit_seq = 0;  // the entry recording the restore; 0 with check_only
  bool check_only = false;
};

// Restores `location` into the data directory (and database path) `config` names. Both must be
// absent, or the data directory an empty directory: restore never overwrites an installation.
// With `check_only`, checks everything (manifest, hashes, database integrity, audit chain) in a
// temporary directory and writes nothing at the target.
//
// PostgreSQL: the database is restored by the operator first (pg_restore, or PITR); this restores
// the data directory's files, after checking that the configured database's chain verifies and
// holds the head the backup recorded (kFailedPrecondition naming what differs otherwise). The
// backup and the configuration must name the same backend (kFailedPrecondition).
Result<RestoreReport> RestoreServer(const ServerConfig& config, const std::string& location, UnixSeconds now,
                                    bool check_only);

// What the CLI prints: counts, the audit head (worth recording elsewhere: it is what proves a
// later restore was not an older backup), keys and what was left out.
std::string DescribeBackup(const BackupReport& report);

// PostgreSQL: the pg_dump command that pairs a dump with the backup at `location` (custom format,
// beside it as <location>.pgdump), and the pg_restore command that brings it back into an empty
// database; the password file, when configured, is passed through PGPASSWORD.
std::string PgDumpCommand(const ServerConfig& config, const std::string& location);
std::string PgRestoreCommand(const ServerConfig& config, const std::string& location);

}  // namespace appban::server
