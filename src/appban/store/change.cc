#include "appban/store/change.h"

#include <set>

#include "appban/store/fleet_tables.h"

namespace appban::store {

namespace {

constexpr size_t kMaxIdBytes = 128;
constexpr size_t kMaxNameBytes = 256;
constexpr size_t kMaxApprovals = ChangeLimits::kMaxQuorum;

Result<std::string> Text(const Json& json, std::string_view key, size_t max_bytes, bool required) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) {
    if (required) return Status::InvalidArgument("change: member \"" + std::string(key) + "\" is required");
    return std::string();
  }
  if (!it->is_string()) return Status::InvalidArgument("change: member \"" + std::string(key) + "\" must be a string");
  std::string text = it->get<std::string>();
  if (text.size() > max_bytes) {
    return Status::InvalidArgument("change: member \"" + std::string(key) + "\" is longer than " +
                                   std::to_string(max_bytes) + " bytes");
  }
  if (required && text.empty()) return Status::InvalidArgument("change: member \"" + std::string(key) + "\" is empty");
  return text;
}

Result<UnixSeconds> Time(const Json& json, std::string_view key) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, Text(json, key, 64, true));
  auto at = ParseTimestamp(text);
  if (!at.ok()) return at.status().WithContext("change: " + std::string(key));
  return *at;
}

Status Members(const Json& json, std::initializer_list<std::string_view> allowed, std::string_view what) {
  if (!json.is_object()) return Status::InvalidArgument(std::string(what) + " must be an object");
  for (auto it = json.begin(); it != json.end(); ++it) {
    bool known = false;
    for (auto name : allowed) known = known || it.key() == name;
    if (!known) return Status::InvalidArgument(std::string(what) + ": unknown member \"" + it.key() + "\"");
  }
  return Status::Ok();
}

}  // namespace

std::string_view ChangeStateName(ChangeState state) {
  switch (state) {
    case ChangeState::kPending:
      return "pending";
    case ChangeState::kApplied:
      return "applied";
    case ChangeState::kWithdrawn:
      return "withdrawn";
  }
  return "pending";
}

int64_t Change::People() const { return static_cast<int64_t>(approvals.size()) + (proposer_counts ? 1 : 0); }

Json ChangeToJson(const Change& change) {
  Json approvals = Json::array();
  for (const auto& approval : change.approvals) {
    approvals.push_back(Json{{"user_id", approval.user_id},
                             {"display_name", approval.display_name},
                             {"at", FormatTimestamp(approval.at)},
                             {"note", approval.note}});
  }
  return Json{{"id", change.id},
              {"kind", change.kind},
              {"object", change.object},
              {"payload", change.payload},
              {"quorum", change.quorum},
              {"proposed_by", change.proposed_by},
              {"proposer_name", change.proposer_name},
              {"proposer_counts", change.proposer_counts},
              {"note", change.note},
              {"approvals", approvals},
              {"people", change.People()},
              {"state", std::string(ChangeStateName(change.state))},
              {"created_at", FormatTimestamp(change.created_at)},
              {"closed_at", change.closed_at ? Json(FormatTimestamp(*change.closed_at)) : Json(nullptr)},
              {"closed_by", change.closed_by.empty() ? Json(nullptr) : Json(change.closed_by)}};
}

Result<Change> ChangeFromJson(const Json& json) {
  APPBAN_RETURN_IF_ERROR(
      Members(json,
              {"id", "kind", "object", "payload", "quorum", "proposed_by", "proposer_name", "proposer_counts", "note",
               "approvals", "people", "state", "created_at", "closed_at", "closed_by"},
              "change"));
  Change change;
  APPBAN_ASSIGN_OR_RETURN(change.id, Text(json, "id", kMaxIdBytes, true));
  APPBAN_ASSIGN_OR_RETURN(change.kind, Text(json, "kind", kMaxIdBytes, true));
  APPBAN_ASSIGN_OR_RETURN(change.object, Text(json, "object", kMaxIdBytes + 16, true));
  APPBAN_ASSIGN_OR_RETURN(change.proposed_by, Text(json, "proposed_by", kMaxIdBytes, true));
  APPBAN_ASSIGN_OR_RETURN(change.proposer_name, Text(json, "proposer_name", kMaxNameBytes, false));
  APPBAN_ASSIGN_OR_RETURN(change.note, Text(json, "note", ChangeLimits::kMaxNoteBytes, false));
  APPBAN_ASSIGN_OR_RETURN(change.closed_by, Text(json, "closed_by", kMaxIdBytes, false));
  auto payload = json.find("payload");
  if (payload == json.end() || !payload->is_object()) {
    return Status::InvalidArgument("change: member \"payload\" must be an object");
  }
  if (payload->dump().size() > ChangeLimits::kMaxPayloadBytes) {
    return Status::InvalidArgument("change: payload is larger than " + std::to_string(ChangeLimits::kMaxPayloadBytes) +
                                   " bytes");
  }
  change.payload = *payload;
  auto quorum = json.find("quorum");
  if (quorum == json.end() || !quorum->is_number_integer() || quorum->get<int64_t>() < ChangeLimits::kMinQuorum ||
      quorum->get<int64_t>() > ChangeLimits::kMaxQuorum) {
    return Status::InvalidArgument("change: quorum must be an integer from " +
                                   std::to_string(ChangeLimits::kMinQuorum) + " to " +
                                   std::to_string(ChangeLimits::kMaxQuorum));
  }
  change.quorum = quorum->get<int64_t>();
  auto counts = json.find("proposer_counts");
  if (counts == json.end() || !counts->is_boolean()) {
    return Status::InvalidArgument("change: member \"proposer_counts\" must be true or false");
  }
  change.proposer_counts = counts->get<bool>();
  APPBAN_ASSIGN_OR_RETURN(std::string state, Text(json, "state", 16, true));
  if (state == "pending") {
    change.state = ChangeState::kPending;
  } else if (state == "applied") {
    change.state = ChangeState::kApplied;
  } else if (state == "withdrawn") {
    change.state = ChangeState::kWithdrawn;
  } else {
    return Status::InvalidArgument("change: state must be pending, applied or withdrawn, not " + state);
  }
  APPBAN_ASSIGN_OR_RETURN(change.created_at, Time(json, "created_at"));
  if (auto closed = json.find("closed_at"); closed != json.end() && !closed->is_null()) {
    APPBAN_ASSIGN_OR_RETURN(change.closed_at, Time(json, "closed_at"));
  }
  auto approvals = json.find("approvals");
  if (approvals == json.end() || !approvals->is_array()) {
    return Status::InvalidArgument("change: member \"approvals\" must be an array");
  }
  if (approvals->size() > kMaxApprovals) {
    return Status::InvalidArgument("change: more than " + std::to_string(kMaxApprovals) + " approvals");
  }
  std::set<std::string> seen{change.proposed_by};
  for (const auto& item : *approvals) {
    APPBAN_RETURN_IF_ERROR(Members(item, {"user_id", "display_name", "at", "note"}, "change: approval"));
    ChangeApproval approval;
    APPBAN_ASSIGN_OR_RETURN(approval.user_id, Text(item, "user_id", kMaxIdBytes, true));
    APPBAN_ASSIGN_OR_RETURN(approval.display_name, Text(item, "display_name", kMaxNameBytes, false));
    APPBAN_ASSIGN_OR_RETURN(approval.note, Text(item, "note", ChangeLimits::kMaxNoteBytes, false));
    APPBAN_ASSIGN_OR_RETURN(approval.at, Time(item, "at"));
    if (!seen.insert(approval.user_id).second) {
      return Status::InvalidArgument("change: " + approval.user_id + " is counted twice");
    }
    change.approvals.push_back(std::move(approval));
  }
  return change;
}

Result<std::string> NewChangeId() { return internal::NewId("c-"); }

}  // namespace appban::store
