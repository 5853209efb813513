// Admin API: waivers — list (with whether each is active now), add, revoke.
#include "appban/server/admin_handlers.h"

#include "appban/policy/model.h"

namespace appban::server::admin {

HttpResponse ListWaivers(Call& call) {
  auto page = ReadPageRequest(call.request, "waivers", CursorKey::kIdentifier);
  if (!page.ok()) return ErrorFrom(page.status());
  auto waivers = call.context.store->ListWaiversAfter(page->after, page->limit + 1);
  if (!waivers.ok()) return ErrorFrom(waivers.status());
  Json next = FinishPage("waivers", *page, *waivers, [](const policy::Waiver& waiver) { return waiver.id; });
  UnixSeconds now = call.Now();
  Json list = Json::array();
  for (const auto& waiver : *waivers) {
    Json json = policy::WaiverToJson(waiver, true);
    json["active"] = waiver.ActiveAt(now);
    list.push_back(std::move(json));
  }
  return JsonResponse(200, Json{{"waivers", list}, {"next_cursor", next}});
}

HttpResponse AddWaiver(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  for (std::string_view server_set : {"approved_by", "created_at", "revoked_at", "revoked_by", "revision"}) {
    if (body->contains(server_set)) {
      return BadRequest("waiver: member \"" + std::string(server_set) + "\" is set by the server");
    }
  }
  if (Status s = CheckMembers(
          *body, {"id", "rule_id", "subject_kind", "subject", "justification", "requested_by", "expires_at"}, "waiver");
      !s.ok()) {
    return ErrorFrom(s);
  }
  // The approver is the caller and the creation time is now; WaiverFromJson checks the rest.
  Json json = *body;
  json["approved_by"] = call.principal.user.id;
  json["created_at"] = FormatTimestamp(call.Now());
  auto waiver = policy::WaiverFromJson(json);
  if (!waiver.ok()) return BadRequest(waiver.status().message());
  if (waiver->subject_kind == policy::WaiverSubject::kDevice) {
    auto device = call.context.fleet->GetDevice(waiver->subject);
    if (!device.ok()) {
      if (device.status().code() != StatusCode::kNotFound) return ErrorFrom(device.status());
      return BadRequest("waiver " + waiver->id + ": subject: no enrolled device " + waiver->subject);
    }
  }
  // The requester, when named, is a person known to appban, named by user id: PolicyAdmin::AddWaiver
  // then refuses the same identity as approver (the two-person rule compares identities).
  if (!waiver->requested_by.empty()) {
    auto requester = call.context.fleet->GetUser(waiver->requested_by);
    if (!requester.ok()) {
      return BadRequest("requested_by: no user " + Quoted(waiver->requested_by) +
                        "; name the person who asked for the waiver by user id (GET /v1/admin/users)");
    }
    if (requester->kind != store::UserKind::kHuman) {
      return BadRequest("requested_by: " + waiver->requested_by +
                        " is a service account; a waiver is requested by a person");
    }
  }
  auto added = call.Admin().AddWaiver(std::move(*waiver));
  if (!added.ok()) return ErrorFromBodyReference(added.status());
  return JsonResponse(201, policy::WaiverToJson(*added, true));
}

HttpResponse RevokeWaiver(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "waiver id"); !s.ok()) return ErrorFrom(s);
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"reason"}, "body"); !s.ok()) return ErrorFrom(s);
  auto reason = StringMember(*body, "reason", true, store::kFleetLimits.max_note_bytes);
  if (!reason.ok()) return ErrorFrom(reason.status());
  auto waiver = call.Admin().RevokeWaiver(id, *reason);
  if (!waiver.ok()) return ErrorFrom(waiver.status());
  return JsonResponse(200, policy::WaiverToJson(*waiver, true));
}

}  // namespace appban::server::admin
