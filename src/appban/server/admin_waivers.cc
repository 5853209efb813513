// Admin API: waivers — list (with whether each is active now), request (a change others approve),
// revoke (tightens enforcement again, so one administrator may).
#include "appban/server/admin_handlers.h"

#include "appban/policy/model.h"
#include "appban/server/config.h"

namespace appban::server::admin {

HttpResponse ListWaivers(Call& call) {
  UnixSeconds now = call.Now();
  return ListPage(
      call, "waivers",
      [&](std::string_view after, size_t limit) { return call.context.store->ListWaiversAfter(after, limit); },
      [](const policy::Waiver& waiver) { return waiver.id; },
      [now](const policy::Waiver& waiver) {
        Json json = policy::WaiverToJson(waiver, true);
        json["active"] = waiver.ActiveAt(now);
        return json;
      });
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
  // The caller requests the waiver; it is granted when the quorum of other people approves it
  // (POST /v1/admin/changes/{id}/approve). The approver and creation time are set then.
  Json json = *body;
  json["approved_by"] = call.principal.user.id;
  json["created_at"] = FormatTimestamp(call.Now());
  auto waiver = policy::WaiverFromJson(json);
  if (!waiver.ok()) return BadRequest(waiver.status().message());
  if (!waiver->requested_by.empty() && waiver->requested_by != call.principal.user.id) {
    return BadRequest("requested_by: a waiver is requested by the person who proposes it (" + call.principal.user.id +
                      "); leave requested_by out");
  }
  if (waiver->subject_kind == policy::WaiverSubject::kDevice) {
    auto device = call.context.fleet->GetDevice(waiver->subject);
    if (!device.ok()) {
      if (device.status().code() != StatusCode::kNotFound) return ErrorFrom(device.status());
      return BadRequest("waiver " + waiver->id + ": subject: no enrolled device " + waiver->subject);
    }
  }
  decide::PolicyAdmin admin = call.Admin();
  auto proposed = admin.ProposeWaiver(std::move(*waiver), call.config().identity.quorum);
  if (!proposed.ok()) return ErrorFromBodyReference(proposed.status());
  return ChangeAnswer(call, admin, proposed);
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
