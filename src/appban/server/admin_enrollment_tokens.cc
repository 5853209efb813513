// Admin API: enrolment tokens — create a batch (single-use, or multi-use for a fleet image), list,
// revoke.
#include "appban/server/admin_handlers.h"

#include "appban/policy/model.h"

namespace appban::server::admin {
namespace {

std::string_view EnrollmentTokenState(const store::EnrollmentToken& token, UnixSeconds now) {
  if (token.revoked_at) return "revoked";
  if (token.Exhausted()) return "used";
  if (now >= token.expires_at) return "expired";
  return "active";
}

Json EnrollmentTokenJson(const store::EnrollmentToken& token, UnixSeconds now) {
  return Json{{"id", token.id},
              {"group", token.group},
              {"note", token.note},
              {"created_by", token.created_by},
              {"created_at", FormatTimestamp(token.created_at)},
              {"expires_at", FormatTimestamp(token.expires_at)},
              {"max_uses", token.max_uses},
              {"uses", token.uses},
              {"used_at", OptionalTime(token.used_at)},
              {"used_by_device", token.used_by_device.empty() ? Json(nullptr) : Json(token.used_by_device)},
              {"revoked_at", OptionalTime(token.revoked_at)},
              {"state", EnrollmentTokenState(token, now)}};
}

}  // namespace

HttpResponse CreateEnrollmentTokens(Call& call) {
  auto body = call.Body(true);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"group", "ttl_seconds", "note", "count", "max_uses"}, "body"); !s.ok())
    return ErrorFrom(s);
  auto group = StringMember(*body, "group", false, store::kFleetLimits.max_name_bytes);
  if (!group.ok()) return ErrorFrom(group.status());
  auto ttl = IntegerMember(*body, "ttl_seconds", kAdminLimits.min_ttl_seconds, kAdminLimits.max_enrollment_ttl_seconds);
  if (!ttl.ok()) return ErrorFrom(ttl.status());
  auto note = StringMember(*body, "note", false, store::kFleetLimits.max_note_bytes);
  if (!note.ok()) return ErrorFrom(note.status());
  auto count = IntegerMember(*body, "count", 1, kAdminLimits.max_enrollment_tokens);
  if (!count.ok()) return ErrorFrom(count.status());
  auto max_uses = IntegerMember(*body, "max_uses", 1, store::kFleetLimits.max_enrollment_token_uses);
  if (!max_uses.ok()) return ErrorFrom(max_uses.status());
  if (!group->empty()) {
    if (Status s = policy::ValidateIdentifier(*group, "group"); !s.ok()) return BadRequest(s.message());
    // Checked up front so a batch cannot stop half-way over a missing group.
    auto found = call.context.store->GetGroup(*group);
    if (!found.ok()) return ErrorFromBodyReference(found.status().WithContext("group"));
  }
  store::AuditRecord audit = call.Audit();
  UnixSeconds expires_at = audit.at + ttl->value_or(kAdminLimits.default_enrollment_ttl_seconds);
  // One transaction for the whole batch (one fsync, one audit entry per token): all or none.
  store::EnrollmentTokenSpec spec{*group, expires_at, *note, static_cast<size_t>(count->value_or(1)),
                                  max_uses->value_or(1)};
  auto created = call.context.fleet->IssueEnrollmentTokens(spec, audit);
  if (!created.ok()) return ErrorFromBodyReference(created.status());
  Json tokens = Json::array();
  for (const store::CreatedEnrollmentToken& token : *created) {
    Json json = EnrollmentTokenJson(token.token, audit.at);
    json["token"] = token.presented;
    tokens.push_back(std::move(json));
  }
  return JsonResponse(201, Json{{"tokens", tokens}});
}

HttpResponse ListEnrollmentTokens(Call& call) {
  auto page = ReadPageRequest(call.request, "enrollment-tokens", CursorKey::kIdentifier);
  if (!page.ok()) return ErrorFrom(page.status());
  auto tokens = call.context.fleet->ListEnrollmentTokensAfter(page->after, page->limit + 1);
  if (!tokens.ok()) return ErrorFrom(tokens.status());
  Json next =
      FinishPage("enrollment-tokens", *page, *tokens, [](const store::EnrollmentToken& token) { return token.id; });
  UnixSeconds now = call.Now();
  Json list = Json::array();
  for (const auto& token : *tokens) list.push_back(EnrollmentTokenJson(token, now));
  return JsonResponse(200, Json{{"tokens", list}, {"next_cursor", next}});
}

HttpResponse RevokeEnrollmentToken(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "enrollment token id"); !s.ok()) return ErrorFrom(s);
  if (!call.request.body.empty()) {
    auto body = call.Body(true);
    if (!body.ok()) return ErrorFrom(body.status());
    if (Status s = CheckMembers(*body, {}, "body"); !s.ok()) return ErrorFrom(s);
  }
  if (Status s = call.context.fleet->RevokeEnrollmentToken(id, call.Audit()); !s.ok()) return ErrorFrom(s);
  return JsonResponse(200, Json{{"revoked", id}});
}

}  // namespace appban::server::admin
