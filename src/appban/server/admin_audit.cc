// Admin API: reading and verifying the hash-chained audit log.
#include "appban/server/admin_handlers.h"

#include "appban/policy/model.h"

namespace appban::server::admin {

namespace {

Json StoredJson(const std::string& text) {
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? Json(text) : parsed;
}

}  // namespace

HttpResponse ReadAuditLog(Call& call) {
  auto after = QueryInteger(call.request, "after", 0, INT64_C(1) << 53);
  if (!after.ok()) return ErrorFrom(after.status());
  auto limit = QueryInteger(call.request, "limit", 1, kAdminLimits.max_page);
  if (!limit.ok()) return ErrorFrom(limit.status());
  auto entries = call.context.store->ReadAudit();
  if (!entries.ok()) return ErrorFrom(entries.status());
  int64_t from = after->value_or(0);
  auto want = static_cast<size_t>(limit->value_or(kAdminLimits.default_page));
  Json list = Json::array();
  int64_t last_seq = from;
  bool more = false;
  for (const auto& entry : *entries) {
    if (entry.seq <= from) continue;
    if (list.size() == want) {
      more = true;
      break;
    }
    list.push_back(Json{{"seq", entry.seq},
                        {"at", FormatTimestamp(entry.at)},
                        {"actor", entry.actor},
                        {"action", entry.action},
                        {"object", entry.object},
                        {"before", StoredJson(entry.before_json)},
                        {"after", StoredJson(entry.after_json)},
                        {"prev_hash", entry.prev_hash},
                        {"hash", entry.hash}});
    last_seq = entry.seq;
  }
  return JsonResponse(200, Json{{"entries", list}, {"next_after", last_seq}, {"more", more}});
}

HttpResponse VerifyAuditLog(Call& call) {
  auto verification = call.context.store->VerifyAudit();
  if (!verification.ok()) return ErrorFrom(verification.status());
  Json problems = Json::array();
  for (const auto& problem : verification->problems)
    problems.push_back(Json{{"seq", problem.seq}, {"what", problem.what}});
  return JsonResponse(200, Json{{"ok", verification->ok()},
                                {"entries", verification->entries},
                                {"head_hash", verification->head_hash},
                                {"checkpoint_seq", verification->checkpoint_seq},
                                {"checkpoint_key_id", verification->checkpoint_key_id},
                                {"problems", problems}});
}

}  // namespace appban::server::admin
