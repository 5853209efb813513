#include "appban/store/audit.h"

#include <map>

#include "appban/common/crypto.h"

namespace appban::store {
namespace {

Result<std::string> HashOver(const std::string& prev_hash, const Json& content) {
  APPBAN_ASSIGN_OR_RETURN(std::string canonical, CanonicalJson(content));
  std::string message = prev_hash + canonical;
  return Sha256Hex(AsBytes(message));
}

// `identity` joins the hashed content only when the entry has one, so entries written before it
// existed (identity null) hash exactly as they did.
Json Content(const AuditEntry& entry, Json before, Json after, Json identity) {
  Json content{{"action", entry.action},          {"actor", entry.actor},        {"after", std::move(after)},
               {"at", FormatTimestamp(entry.at)}, {"before", std::move(before)}, {"object", entry.object}};
  if (!identity.is_null()) content["identity"] = std::move(identity);
  return content;
}

// The checkpoint is written after each commit, so it may lag the chain by what was committed just
// before a crash (or by a concurrent writer's entry); it must never be ahead of it.
void CheckAgainstCheckpoint(const std::vector<AuditEntry>& entries, const AuditCheckpointReading& checkpoint,
                            AuditVerification& result) {
  using State = AuditCheckpointReading::State;
  int64_t last = entries.empty() ? 0 : entries.back().seq;
  switch (checkpoint.state) {
    case State::kNotKept:
      return;
    case State::kAbsent:
      if (!entries.empty()) {
        result.problems.push_back({last, "the signed checkpoint is missing: the log's length cannot be confirmed (" +
                                             checkpoint.problem + ")"});
      }
      return;
    case State::kInvalid:
      result.problems.push_back({last, "the signed checkpoint cannot be trusted: " + checkpoint.problem});
      return;
    case State::kValid:
      break;
  }
  result.checkpoint_seq = checkpoint.head.seq;
  result.checkpoint_key_id = checkpoint.key_id;
  if (checkpoint.head.seq > last) {
    result.problems.push_back(
        {last + 1, "entries " + std::to_string(last + 1) + ".." + std::to_string(checkpoint.head.seq) +
                       " are missing: the log was truncated (the signed checkpoint records entry " +
                       std::to_string(checkpoint.head.seq) + ")"});
    return;
  }
  if (checkpoint.head.seq == 0) return;
  for (const auto& entry : entries) {
    if (entry.seq != checkpoint.head.seq) continue;
    if (entry.hash != checkpoint.head.hash) {
      result.problems.push_back({entry.seq, "entry " + std::to_string(entry.seq) +
                                                " is not the entry the signed checkpoint recorded (replaced)"});
    }
    return;
  }
  result.problems.push_back({checkpoint.head.seq, "entry " + std::to_string(checkpoint.head.seq) +
                                                      ", which the signed checkpoint records, is missing"});
}

}  // namespace

Json AuditIdentityJson(const AuditIdentity& identity) {
  Json json = Json::object();
  auto put = [&](const char* name, const std::string& value) {
    if (!value.empty()) json[name] = value;
  };
  put("user_id", identity.user_id);
  put("issuer", identity.issuer);
  put("subject", identity.subject);
  put("actor_name", identity.actor_name);
  put("method", identity.method);
  put("token_id", identity.token_id);
  put("certificate", identity.certificate);
  put("source", identity.source);
  put("channel", identity.channel);
  return json;
}

Result<AuditEntry> ChainEntry(const AuditRecord& record, int64_t seq, const std::string& prev_hash) {
  AuditEntry entry;
  entry.seq = seq;
  entry.at = record.at;
  entry.actor = record.actor;
  entry.action = record.action;
  entry.object = record.object;
  APPBAN_ASSIGN_OR_RETURN(entry.before_json, CanonicalJson(record.before));
  APPBAN_ASSIGN_OR_RETURN(entry.after_json, CanonicalJson(record.after));
  if (!record.identity.is_null() && !record.identity.is_object()) {
    return Status::InvalidArgument("audit identity must be an object or null");
  }
  APPBAN_ASSIGN_OR_RETURN(entry.identity_json, CanonicalJson(record.identity));
  entry.prev_hash = prev_hash;
  APPBAN_ASSIGN_OR_RETURN(entry.hash,
                          HashOver(prev_hash, Content(entry, record.before, record.after, record.identity)));
  return entry;
}

Result<std::string> ComputeEntryHash(const AuditEntry& entry) {
  Json before, after, identity;
  try {
    before = Json::parse(entry.before_json);
    after = Json::parse(entry.after_json);
    identity = Json::parse(entry.identity_json.empty() ? std::string("null") : entry.identity_json);
  } catch (const Json::exception&) {
    return Status::Corruption("entry " + std::to_string(entry.seq) + ": before/after/identity is not JSON");
  }
  // What is hashed is the canonical text; what readers (and json_extract) see is the stored text.
  // They must be the same bytes: a duplicate member, which the parser drops and SQLite reads, or
  // added whitespace would otherwise pass unnoticed.
  auto canonical_before = CanonicalJson(before);
  auto canonical_after = CanonicalJson(after);
  if (!canonical_before.ok() || !canonical_after.ok() || *canonical_before != entry.before_json ||
      *canonical_after != entry.after_json) {
    return Status::Corruption("entry " + std::to_string(entry.seq) + ": before/after is not the text that was hashed");
  }
  auto canonical_identity = CanonicalJson(identity);
  if (!canonical_identity.ok() || (!entry.identity_json.empty() && *canonical_identity != entry.identity_json) ||
      !(identity.is_null() || identity.is_object())) {
    return Status::Corruption("entry " + std::to_string(entry.seq) + ": identity is not the text that was hashed");
  }
  return HashOver(entry.prev_hash, Content(entry, std::move(before), std::move(after), std::move(identity)));
}

namespace {

std::string CheckpointMessage(const AuditHead& head) {
  std::string message(kAuditCheckpointContext);
  message += std::to_string(head.seq) + " " + head.hash;
  return message;
}

}  // namespace

Result<std::string> SignAuditCheckpoint(const AuditHead& head, const policy::SigningKey& key) {
  APPBAN_ASSIGN_OR_RETURN(std::string signature, key.Sign(CheckpointMessage(head)));
  return CanonicalJson(Json{{"format", kAuditCheckpointFormat},
                            {"hash", head.hash},
                            {"key_id", key.key_id()},
                            {"seq", head.seq},
                            {"signature", HexLower(AsBytes(signature))}});
}

Result<AuditHead> ParseAuditCheckpoint(std::string_view text, const policy::PublicKey& key) {
  auto malformed = [](const std::string& why) { return Status::Corruption("malformed audit checkpoint: " + why); };
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(text, 4096, 4, "audit checkpoint"));
  if (!json.is_object() || json.size() != 5) return malformed("expected exactly format, hash, key_id, seq, signature");
  for (const char* member : {"format", "hash", "key_id", "signature"}) {
    if (!json.contains(member) || !json[member].is_string()) return malformed(std::string(member) + " missing");
  }
  if (!json.contains("seq") || !json["seq"].is_number_integer()) return malformed("seq missing");
  if (json["format"] != kAuditCheckpointFormat)
    return malformed("format is not " + std::string(kAuditCheckpointFormat));
  AuditHead head{json["seq"].get<int64_t>(), json["hash"].get<std::string>()};
  if (json["key_id"] != key.key_id) {
    return Status::PermissionDenied("audit checkpoint is signed by key " + json["key_id"].get<std::string>() +
                                    ", not by the checkpoint key " + key.key_id);
  }
  const std::string& hex = json["signature"].get_ref<const std::string&>();
  if (hex.size() != 2 * policy::kEd25519SignatureBytes ||
      hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return malformed("signature is not 128 lowercase hex digits");
  }
  std::string raw(policy::kEd25519SignatureBytes, '\0');
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  if (!policy::VerifySignature(key, CheckpointMessage(head), raw)) {
    return Status::PermissionDenied("audit checkpoint signature does not verify: it was forged or altered");
  }
  return head;
}

AuditVerification VerifyAuditChain(const std::vector<AuditEntry>& entries, const std::optional<AuditHead>& head,
                                   const AuditCheckpointReading& checkpoint) {
  AuditVerification result;
  result.entries = static_cast<int64_t>(entries.size());
  result.head_hash = std::string(kAuditGenesisHash);
  std::map<std::string, int64_t> seq_by_hash;
  for (const auto& entry : entries) seq_by_hash.emplace(entry.hash, entry.seq);

  int64_t expected_seq = 1;
  std::string expected_prev(kAuditGenesisHash);
  for (const auto& entry : entries) {
    auto problem = [&](std::string what) { result.problems.push_back({entry.seq, std::move(what)}); };
    std::string label = "entry " + std::to_string(entry.seq);
    if (entry.seq > expected_seq) {
      problem(entry.seq - expected_seq == 1 ? "entry " + std::to_string(expected_seq) + " is missing (deleted)"
                                            : "entries " + std::to_string(expected_seq) + ".." +
                                                  std::to_string(entry.seq - 1) + " are missing (deleted)");
    }
    auto recomputed = ComputeEntryHash(entry);
    bool hash_ok = recomputed.ok() && *recomputed == entry.hash;
    bool link_ok = entry.prev_hash == expected_prev;
    if (!hash_ok) {
      problem(label + " was edited: its contents (" + entry.action + " " + entry.object + " by " + entry.actor +
              ") no longer match its hash");
    }
    if (!link_ok && entry.seq <= expected_seq) {
      auto linked = seq_by_hash.find(entry.prev_hash);
      if (linked != seq_by_hash.end()) {
        problem(label + " is out of order: it continues the chain from entry " + std::to_string(linked->second) +
                ", not from the entry before it (entries were reordered)");
      } else {
        problem(label + " does not link to the entry before it: an entry was deleted, replaced or reordered");
      }
    }
    expected_seq = entry.seq + 1;
    expected_prev = entry.hash;
  }
  if (!entries.empty()) result.head_hash = entries.back().hash;
  if (head) {
    int64_t last = entries.empty() ? 0 : entries.back().seq;
    if (head->seq > last) {
      result.problems.push_back({last + 1, "entries " + std::to_string(last + 1) + ".." + std::to_string(head->seq) +
                                               " are missing: the log was truncated (the head records entry " +
                                               std::to_string(head->seq) + ")"});
    } else if (head->seq == last && head->hash != result.head_hash) {
      result.problems.push_back({last, "entry " + std::to_string(last) + " is not the entry the head recorded"});
    } else if (head->seq < last) {
      result.problems.push_back({head->seq + 1, "entries after " + std::to_string(head->seq) +
                                                    " were added outside the store (the head records entry " +
                                                    std::to_string(head->seq) + ")"});
    }
  }
  CheckAgainstCheckpoint(entries, checkpoint, result);
  return result;
}

}  // namespace appban::store
