// A pending change: a decision that relaxes or widens enforcement (revoking a rule, a waiver,
// rotating the policy key, granting the admin role, approving a rule under a quorum above two)
// waits here until enough distinct people have approved it (docs/identity.md, "Quorum").
//
// The proposer counts as one person unless they acted through break-glass; each approval counts
// one more. Who may approve is decided in decide/admin.h (PolicyAdmin::ApproveChange); this file
// only holds the value and its JSON form, which is what the store keeps and the API shows.
// Pure values and functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"

namespace appban::store {

struct ChangeLimits {
  static constexpr int64_t kMinQuorum = 2;
  static constexpr int64_t kMaxQuorum = 9;
  static constexpr size_t kMaxPayloadBytes = 64 * 1024;
  static constexpr size_t kMaxNoteBytes = 4096;
};

enum class ChangeState { kPending, kApplied, kWithdrawn };
std::string_view ChangeStateName(ChangeState state);

struct ChangeApproval {
  std::string user_id;       // the approver (decide::Actor::id)
  std::string display_name;  // shown, never compared
  UnixSeconds at = 0;
  std::string note;
};

struct Change {
  std::string id;      // "c-" + 16 hex digits
  std::string kind;    // "rule.approve", "rule.revoke", "waiver.add", "key.rotate", "user.grant-admin"
  std::string object;  // "rule:<id>", "waiver:<id>", "key:policy", "user:<id>"
  Json payload;        // what is applied once the quorum is reached (an object)
  int64_t quorum = ChangeLimits::kMinQuorum;  // distinct people needed, the proposer included
  std::string proposed_by;                    // user id (or the typed name of a break-glass proposer)
  std::string proposer_name;
  bool proposer_counts = true;  // false when proposed through break-glass: it counts as nobody
  std::string note;             // the proposer's reason
  std::vector<ChangeApproval> approvals;
  ChangeState state = ChangeState::kPending;
  UnixSeconds created_at = 0;
  std::optional<UnixSeconds> closed_at;
  std::string closed_by;
  int64_t revision = 0;  // store revision (not part of the JSON document)

  // Distinct people who have agreed so far.
  int64_t People() const;
  bool QuorumReached() const { return People() >= quorum; }
};

Json ChangeToJson(const Change& change);
// Strict: unknown or missing members, a bad state or quorum are InvalidArgument (the store's own
// documents are read with it too, so a hand-edited row is refused, not trusted).
Result<Change> ChangeFromJson(const Json& json);
// A new change id ("c-" and random hex) from the system's random source.
Result<std::string> NewChangeId();

}  // namespace appban::store
