// `appban server backup` and `appban server restore` for the embedded SQLite installation
// (docs/operations.md). A backup is a directory:
//
//   <backup>/MANIFEST.json                     format appban.backup/1: every file with size, mode, SHA-256
//   <backup>/database/appban.db                one consistent snapshot of the database (online backup API)
//   <backup>/database/appban.db.audit/         its audit checkpoint key and a checkpoint signed for the copy
//   <backup>/data/…                            the rest of the data directory: policy keys, TLS CA and
//                                              certificate, the console session key, MDM state
//
// A backup is taken while the server runs, is written to a hidden sibling directory and renamed
// into place only when complete and checked, and is itself recorded in the live audit chain
// (action server.backup). A restore checks every file against the manifest and the whole audit
// chain before anything appears at the target, and records itself (server.restore) in the
// restored chain.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/server/config.h"
#include "appban/store/backup.h"

namespace appban::server {

inline constexpr std::string_view kBackupFormat = "appban.backup/1";
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
  store::DatabaseSnapshot database;
  std::string policy_key_id;  // keys/active, empty when none
  std::string ca_sha256;      // tls/ca.pem's certificate fingerprint, empty without a generated CA
  std::vector<BackupFile> files;
  std::vector<BackupLeftOut> left_out;
  uint64_t TotalBytes() const;
};

// Backs up the installation `config` describes into `destination` (which must not exist, and may
// not lie inside the data directory). The server may be running.
Result<BackupReport> BackupServer(const ServerConfig& config, const std::string& destination, UnixSeconds now);

struct RestoreReport {
  BackupReport backup;  // as read and checked from the backup
  std::string data_dir;
  std::string database_path;
  int64_t restore_audit_seq = 0;  // the entry recording the restore; 0 with check_only
  bool check_only = false;
};

// Restores `location` into the data directory (and database path) `config` names. Both must be
// absent, or the data directory an empty directory: restore never overwrites an installation.
// With `check_only`, checks everything (manifest, hashes, database integrity, audit chain) in a
// temporary directory and writes nothing at the target.
Result<RestoreReport> RestoreServer(const ServerConfig& config, const std::string& location, UnixSeconds now,
                                    bool check_only);

// What the CLI prints: counts, the audit head (worth recording elsewhere: it is what proves a
// later restore was not an older backup), keys and what was left out.
std::string DescribeBackup(const BackupReport& report);

}  // namespace appban::server
