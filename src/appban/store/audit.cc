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

Json Content(const AuditEntry& entry, Json before, Json after) {
  return Json{{"action", entry.action},          {"actor", entry.actor},        {"after", std::move(after)},
              {"at", FormatTimestamp(entry.at)}, {"before", std::move(before)}, {"object", entry.object}};
}

}  // namespace

Result<AuditEntry> ChainEntry(const AuditRecord& record, int64_t seq, const std::string& prev_hash) {
  AuditEntry entry;
  entry.seq = seq;
  entry.at = record.at;
  entry.actor = record.actor;
  entry.action = record.action;
  entry.object = record.object;
  APPBAN_ASSIGN_OR_RETURN(entry.before_json, CanonicalJson(record.before));
  APPBAN_ASSIGN_OR_RETURN(entry.after_json, CanonicalJson(record.after));
  entry.prev_hash = prev_hash;
  APPBAN_ASSIGN_OR_RETURN(entry.hash, HashOver(prev_hash, Content(entry, record.before, record.after)));
  return entry;
}

Result<std::string> ComputeEntryHash(const AuditEntry& entry) {
  Json before, after;
  try {
    before = Json::parse(entry.before_json);
    after = Json::parse(entry.after_json);
  } catch (const Json::exception&) {
    return Status::Corruption("entry " + std::to_string(entry.seq) + ": before/after is not JSON");
  }
  return HashOver(entry.prev_hash, Content(entry, std::move(before), std::move(after)));
}

AuditVerification VerifyAuditChain(const std::vector<AuditEntry>& entries, const std::optional<AuditHead>& head) {
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
  return result;
}

}  // namespace appban::store
