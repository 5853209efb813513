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
  // `after` (a seq) is this list's first paging parameter, kept beside the cursor every list has.
  auto after = QueryInteger(call.request, "after", 0, INT64_C(1) << 53);
  if (!after.ok()) return ErrorFrom(after.status());
  auto page = ReadPageRequest(call.request, "audit", CursorKey::kSequence);
  if (!page.ok()) return ErrorFrom(page.status());
  if (after->has_value() && !page->after.empty()) return BadRequest("query: pass either after or cursor, not both");
  int64_t from = page->after.empty() ? after->value_or(0) : std::stoll(page->after);
  auto entries = call.context.store->ReadAuditAfter(from, page->limit + 1);
  if (!entries.ok()) return ErrorFrom(entries.status());
  Json next =
      FinishPage("audit", *page, *entries, [](const store::AuditEntry& entry) { return std::to_string(entry.seq); });
  bool more = !next.is_null();
  Json list = Json::array();
  int64_t last_seq = from;
  for (const auto& entry : *entries) {
    list.push_back(Json{{"seq", entry.seq},
                        {"at", FormatTimestamp(entry.at)},
                        {"actor", entry.actor},
                        {"action", entry.action},
                        {"object", entry.object},
                        {"before", StoredJson(entry.before_json)},
                        {"after", StoredJson(entry.after_json)},
                        {"identity", StoredJson(entry.identity_json.empty() ? "null" : entry.identity_json)},
                        {"prev_hash", entry.prev_hash},
                        {"hash", entry.hash}});
    last_seq = entry.seq;
  }
  return JsonResponse(200, Json{{"entries", list}, {"next_after", last_seq}, {"more", more}, {"next_cursor", next}});
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
