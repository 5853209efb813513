// Where the audit chain's signed checkpoint lives, private to the store part. The checkpoint
// protects the head of the chain independently of the database: whoever can write the database
// but not this directory can delete rows and the head row, yet not make the chain shorter than the
// checkpoint says, nor forge a checkpoint for a shorter one.
//
//   <dir>/                        mode 0700
//     checkpoint.key              Ed25519 private key, PKCS#8 PEM, mode 0600
//     checkpoint.pub              its public key (SubjectPublicKeyInfo PEM)
//     head                        the signed checkpoint (audit.h, SignAuditCheckpoint)
//     lock                        flock'ed while `head` is rewritten, across processes
//
// SQLite: <database>.audit/ beside the database file (it travels with it). The key is created
// when the database is created (or first migrated to schema 4).
// PostgreSQL: each node's own <data_dir>/audit-checkpoint/ (the database is shared; no place
// outside it is): the node's start creates the key (server/bootstrap.cc) and every connection the
// node opens signs the heads it commits. A node's checkpoint anchors what that node committed or
// saw at its start; docs/postgresql.md, "Audit chain".
// From then on an append without the key fails rather than starting a new, unanchored checkpoint.
// Functions are thread-compatible; concurrent writers in several processes are serialised by the
// lock and `head` never moves backwards.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "appban/common/status.h"
#include "appban/policy/keys.h"
#include "appban/store/audit.h"

namespace appban::store {

// The checkpoint directory of a SQLite database file.
std::string AuditCheckpointDir(const std::string& database_path);
// Loads the checkpoint key of `dir`; with `create`, makes it (and the directory) when missing.
// kFailedPrecondition when missing and not `create`.
Result<policy::SigningKey> LoadAuditCheckpointKey(const std::string& dir, bool create);
// Signs `head` and writes it unless `head` file already records a later entry.
Status WriteAuditCheckpoint(const std::string& dir, const policy::SigningKey& key, const AuditHead& head);
// Reads and checks the checkpoint with the directory's public key.
AuditCheckpointReading ReadAuditCheckpoint(const std::string& dir);

// What one connection needs to keep a checkpoint: the directory, its key, and the head appended by
// the transaction that is open, signed once it commits (a rollback forgets it).
class AuditCheckpointKeeper {
 public:
  // kFailedPrecondition when the directory holds no key.
  static Result<AuditCheckpointKeeper> Open(std::string dir);
  void SetPending(const AuditHead& head) { pending_ = head; }
  void ForgetPending() { pending_.reset(); }
  // Writes the pending head, if any, and forgets it. The error names the entry: the transaction
  // did commit, only its checkpoint is missing (the next commit's will cover it).
  Status WritePending();
  const std::string& dir() const { return dir_; }

 private:
  AuditCheckpointKeeper(std::string dir, policy::SigningKey key) : dir_(std::move(dir)), key_(std::move(key)) {}
  std::string dir_;
  policy::SigningKey key_;
  std::optional<AuditHead> pending_;
};

}  // namespace appban::store
