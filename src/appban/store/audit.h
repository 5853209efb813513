// The audit chain. Every decision and action is an entry {seq, at, actor, action, object, before,
// after}; entry hashes chain them:
//
//   hash(entry) = SHA-256( prev_hash || canonical JSON of {"action","actor","after","at","before","object"} )
//
// and, for entries that record who acted and how (schema 6 on), the member "identity" joins that
// object: {"actor_name","channel","issuer","method","source","subject","token_id","user_id"} (what
// AuditIdentity below holds; empty members left out). Entries without one (every entry written
// before, and the server's own entries) hash exactly as before, so old chains still verify.
//
// with prev_hash the previous entry's hash as 64 lowercase hex characters (64 '0's for the first
// entry) and the result in lowercase hex. `before` and `after` are JSON values (null when absent).
// Editing an entry breaks its hash; deleting or reordering entries breaks the links (prev_hash)
// and the sequence; truncating the tail is caught against the stored head (last seq and hash) and
// against the signed checkpoint kept outside the database (audit_checkpoint.h), so deleting rows
// together with the head row is caught too. An entry's stored JSON must be exactly the canonical
// text that was hashed (a duplicate member, which SQLite's json_extract would read, is an edit).
// docs/policy.md explains what the chain does and does not prove. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/policy/keys.h"

namespace appban::store {

inline constexpr std::string_view kAuditGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// What a caller records.
struct AuditRecord {
  std::string actor;
  std::string action;  // "rule.propose", "rule.approve", "bundle.export", ...
  std::string object;  // "rule:ca-wechat-kaspersky-2023", "bundle:7", ...
  Json before;         // null when the object did not exist
  Json after;          // null when the object no longer exists
  UnixSeconds at = 0;
  // Who acted, how and through which channel (AuditIdentityJson); null for none.
  Json identity = nullptr;
};

// Who made a change: the identity (issuer, subject, display name, appban user id), how it
// authenticated and where the request came from.
struct AuditIdentity {
  std::string user_id;     // "u-…"; empty for break-glass and local actions without a user
  std::string issuer;      // the OpenID Connect issuer, or "appban:local" for appban's own accounts
  std::string subject;     // `sub` at that issuer
  std::string actor_name;  // display name
  std::string method;      // "oidc", "api-token", "client-certificate", "break-glass", "local", "device-credential"
  std::string token_id;    // the API token's id, when method is "api-token"
  std::string source;      // the client's address ("127.0.0.1"), or "local" on the host
  std::string channel;     // "api", "cli", "console", or "agent" (a device's own request)
  // Last, so positional initialisers written before it keep their meaning.
  std::string certificate;  // SHA-256 of the client certificate (hex), when method is "client-certificate"
};
Json AuditIdentityJson(const AuditIdentity& identity);

// What is stored.
struct AuditEntry {
  int64_t seq = 0;
  UnixSeconds at = 0;
  std::string actor;
  std::string action;
  std::string object;
  std::string before_json;  // canonical JSON text
  std::string after_json;
  std::string identity_json;  // canonical JSON; "null" when the entry records no identity
  std::string prev_hash;
  std::string hash;
};

// Builds the entry that follows `prev_hash` (hash and canonical texts filled in).
Result<AuditEntry> ChainEntry(const AuditRecord& record, int64_t seq, const std::string& prev_hash);
// Recomputes an entry's hash from its stored fields. kCorruption when before/after is not JSON or
// not exactly its canonical text (then the stored bytes are not what was hashed).
Result<std::string> ComputeEntryHash(const AuditEntry& entry);

struct AuditProblem {
  int64_t seq = 0;  // the entry where the chain breaks
  std::string what;
};
struct AuditVerification {
  int64_t entries = 0;
  std::string head_hash;  // hash of the last entry (genesis hash when empty)
  std::vector<AuditProblem> problems;
  // The signed checkpoint the chain was checked against (seq 0 when none was kept).
  int64_t checkpoint_seq = 0;
  std::string checkpoint_key_id;
  bool ok() const { return problems.empty(); }
};
struct AuditHead {
  int64_t seq = 0;
  std::string hash;
};

// The signed checkpoint: the head (seq, hash) signed with a key kept outside the database, as
// canonical JSON {"format":"appban.audit-checkpoint/1","hash":H,"key_id":K,"seq":N,"signature":S}
// with S = Ed25519 over kAuditCheckpointContext || "<seq> <hash>".
inline constexpr std::string_view kAuditCheckpointFormat = "appban.audit-checkpoint/1";
inline constexpr std::string_view kAuditCheckpointContext{"appban-audit-checkpoint-v1\0", 27};
Result<std::string> SignAuditCheckpoint(const AuditHead& head, const policy::SigningKey& key);
// kCorruption when malformed, kPermissionDenied when not signed by `key`.
Result<AuditHead> ParseAuditCheckpoint(std::string_view text, const policy::PublicKey& key);

// What was found of the checkpoint when verifying.
struct AuditCheckpointReading {
  enum class State {
    kNotKept,  // this store keeps no checkpoint: only the head row is checked
    kAbsent,   // kept, but the file is missing
    kInvalid,  // present, but malformed or not signed by the checkpoint key (`problem` says which)
    kValid,
  };
  State state = State::kNotKept;
  AuditHead head;
  std::string key_id;
  std::string problem;
};

// `entries` in stored seq order; `head` is the separately stored last (seq, hash), if any.
AuditVerification VerifyAuditChain(const std::vector<AuditEntry>& entries, const std::optional<AuditHead>& head,
                                   const AuditCheckpointReading& checkpoint = {});

}  // namespace appban::store
