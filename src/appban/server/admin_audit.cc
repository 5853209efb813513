// Admin API: reading and verifying the hash-chained audit log.
#include "appban/server/admin_handlers.h"

#include <optional>
#include <string>
#include <string_view>

#include "appban/policy/model.h"

namespace appban::server::admin {

namespace {

Json StoredJson(const std::string& text) {
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? Json(text) : parsed;
}

}  // namespace

HttpResponse ReadAuditLog(Call& call) {
  // `order=newest` reads from the head back (the console's view: the latest first); the default,
  // oldest first, is the order a client follows the chain in.
  std::optional<std::string> order = call.request.QueryParam("order");
  if (order && *order != "oldest" && *order != "newest") {
    return BadRequest("query parameter order: " + Quoted(*order) + " is neither oldest nor newest");
  }
  bool newest_first = order == "newest";
  // `after` (a seq) is this list's first paging parameter, kept beside the cursor every list has.
  auto after = QueryInteger(call.request, "after", 0, INT64_C(1) << 53);
  if (!after.ok()) return ErrorFrom(after.status());
  // Each order has its own cursors, so a cursor of one never pages the other.
  std::string_view list_name = newest_first ? "audit-newest" : "audit";
  auto page = ReadPageRequest(call.request, list_name, CursorKey::kSequence);
  if (!page.ok()) return ErrorFrom(page.status());
  if (after->has_value() && !page->after.empty()) return BadRequest("query: pass either after or cursor, not both");
  if (after->has_value() && newest_first) {
    return BadRequest("query parameter after: pages oldest first; with order=newest pass the cursor");
  }
  int64_t start = newest_first ? INT64_MAX : after->value_or(0);
  int64_t from = page->after.empty() ? start : std::stoll(page->after);
  auto entries = newest_first ? call.context.store->ReadAuditBefore(from, page->limit + 1)
                              : call.context.store->ReadAuditAfter(from, page->limit + 1);
  if (!entries.ok()) return ErrorFrom(entries.status());
  Json next =
      FinishPage(list_name, *page, *entries, [](const store::AuditEntry& entry) { return std::to_string(entry.seq); });
  bool more = !next.is_null();
  Json list = Json::array();
  int64_t last_seq = newest_first ? 0 : from;  // newest first: the oldest entry of the page
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
