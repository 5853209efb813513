// Where the audit chain's signed checkpoint lives, private to the store part. The checkpoint
// protects the head of the chain independently of the database: whoever can write the database
// but not this directory can delete rows and the head row, yet not make the chain shorter than the
// checkpoint says, nor forge a checkpoint for a shorter one.
//
//   <database>.audit/             mode 0700, beside the database file (it travels with it)
//     checkpoint.key              Ed25519 private key, PKCS#8 PEM, mode 0600
//     checkpoint.pub              its public key (SubjectPublicKeyInfo PEM)
//     head                        the signed checkpoint (audit.h, SignAuditCheckpoint)
//     lock                        flock'ed while `head` is rewritten, across processes
//
// The key is created when the database is created (or first migrated to schema 4); from then on
// an append without the key fails rather than starting a new, unanchored checkpoint.
// Functions are thread-compatible; concurrent writers in several processes are serialised by the
// lock and `head` never moves backwards.
#pragma once

#include <string>

#include "appban/common/status.h"
#include "appban/policy/keys.h"
#include "appban/store/audit.h"

namespace appban::store {

std::string AuditCheckpointDir(const std::string& database_path);
// Loads the checkpoint key; with `create`, makes it (and the directory) when missing.
// kFailedPrecondition when missing and not `create`.
Result<policy::SigningKey> LoadAuditCheckpointKey(const std::string& database_path, bool create);
// Signs `head` and writes it unless `head` file already records a later entry.
Status WriteAuditCheckpoint(const std::string& database_path, const policy::SigningKey& key, const AuditHead& head);
// Reads and checks the checkpoint with the directory's public key.
AuditCheckpointReading ReadAuditCheckpoint(const std::string& database_path);

}  // namespace appban::store
