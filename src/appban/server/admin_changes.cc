// Admin API: changes that wait for a quorum of distinct people (docs/identity.md, "Quorum") —
// list, read, approve, withdraw; proposing a policy key rotation. Revoking a rule, a waiver and
// granting the admin role propose their change from their own routes (admin_rules.cc,
// admin_waivers.cc, admin_api_tokens.cc) and answer through ChangeAnswer.
#include <algorithm>

#include "appban/policy/keys.h"
#include "appban/server/admin_handlers.h"
#include "appban/server/config.h"

namespace appban::server::admin {

namespace {

constexpr std::string_view kKeyRotate = "key.rotate";
constexpr std::string_view kGrantAdmin = "user.grant-admin";

// Applies a change whose quorum is reached, as the caller (the approver who completed it).
Result<Json> ApplyChange(Call& call, decide::PolicyAdmin& admin, const store::Change& change) {
  if (decide::PolicyAdmin::IsPolicyChange(change.kind)) return admin.ApplyPolicyChange(change);
  if (change.kind == kGrantAdmin) {
    std::string user_id = StringOr(change.payload, "user_id");
    APPBAN_ASSIGN_OR_RETURN(store::User target, call.context.fleet->GetUser(user_id));
    if (target.kind != store::UserKind::kHuman) {
      return Status::PermissionDenied("a service account cannot be an administrator");
    }
    APPBAN_ASSIGN_OR_RETURN(store::User updated,
                            call.context.fleet->SetGrantedRole(user_id, store::Role::kAdmin, call.Audit()));
    return UserJson(updated);
  }
  if (change.kind == kKeyRotate) {
    APPBAN_ASSIGN_OR_RETURN(policy::SigningKey key, policy::CreateActiveKey(call.context.data_dir + "/keys", true));
    Json after{{"key_id", key.key_id()}, {"change", change.id}};
    APPBAN_RETURN_IF_ERROR(admin.Record("keys.rotate", "key:" + key.key_id(), after));
    if (call.context.refresh_keys) call.context.refresh_keys();
    return after;
  }
  return Status::Internal("change " + change.id + " has unknown kind " + change.kind);
}

Json ChangeView(const store::Change& change) {
  Json json = store::ChangeToJson(change);
  json["needs"] = std::max<int64_t>(0, change.quorum - change.People());
  return json;
}

}  // namespace

HttpResponse ChangeAnswer(Call& call, decide::PolicyAdmin& admin, const Result<store::Change>& change) {
  if (!change.ok()) return ErrorFrom(change.status());
  if (change->state == store::ChangeState::kApplied) {
    // Decided at once (a rule approval under quorum 2, a vendor merge that widens no rule in
    // force): there is no change row to show, only the object.
    if (change->kind == "vendor.merge") return JsonResponse(200, change->payload);
    auto rule = call.context.store->GetRule(StringOr(change->payload, "rule_id"));
    if (!rule.ok()) return ErrorFrom(rule.status());
    return JsonResponse(200, policy::RuleToJson(*rule, true));
  }
  if (!change->QuorumReached()) return JsonResponse(202, Json{{"change", ChangeView(*change)}});
  auto result = ApplyChange(call, admin, *change);
  if (!result.ok()) return ErrorFrom(result.status());
  auto closed = admin.CloseChange(*change, store::ChangeState::kApplied);
  if (!closed.ok()) return ErrorFrom(closed.status());
  return JsonResponse(200, Json{{"change", ChangeView(*closed)}, {"result", *result}});
}

HttpResponse ListChanges(Call& call) {
  return ListPage(
      call, "changes",
      [&](std::string_view after, size_t limit) { return call.context.store->ListChangesAfter(after, limit); },
      [](const store::Change& change) { return change.id; }, ChangeView);
}

HttpResponse GetChange(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "change id"); !s.ok()) return ErrorFrom(s);
  auto change = call.context.store->GetChange(id);
  if (!change.ok()) return ErrorFrom(change.status());
  return JsonResponse(200, ChangeView(*change));
}

namespace {

Result<std::string> OptionalNote(Call& call) {
  APPBAN_ASSIGN_OR_RETURN(Json body, call.Body(true));
  APPBAN_RETURN_IF_ERROR(CheckMembers(body, {"note"}, "body"));
  return StringMember(body, "note", false, store::ChangeLimits::kMaxNoteBytes);
}

}  // namespace

HttpResponse ApproveChange(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "change id"); !s.ok()) return ErrorFrom(s);
  auto note = OptionalNote(call);
  if (!note.ok()) return ErrorFrom(note.status());
  decide::PolicyAdmin admin = call.Admin();
  return ChangeAnswer(call, admin, admin.ApproveChange(id, *note));
}

HttpResponse WithdrawChange(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "change id"); !s.ok()) return ErrorFrom(s);
  auto note = OptionalNote(call);
  if (!note.ok()) return ErrorFrom(note.status());
  auto change = call.context.store->GetChange(id);
  if (!change.ok()) return ErrorFrom(change.status());
  auto closed = call.Admin().CloseChange(std::move(*change), store::ChangeState::kWithdrawn);
  if (!closed.ok()) return ErrorFrom(closed.status());
  return JsonResponse(200, ChangeView(*closed));
}

HttpResponse ProposeKeyRotation(Call& call) {
  auto note = OptionalNote(call);
  if (!note.ok()) return ErrorFrom(note.status());
  decide::PolicyAdmin admin = call.Admin();
  return ChangeAnswer(call, admin,
                      admin.ProposeChange(std::string(kKeyRotate), "key:policy", Json::object(),
                                          call.config().identity.KeyRotationQuorum(), *note));
}

HttpResponse ProposeAdminGrant(Call& call, const store::User& target) {
  decide::PolicyAdmin admin = call.Admin();
  return ChangeAnswer(call, admin,
                      admin.ProposeChange(std::string(kGrantAdmin), "user:" + target.id,
                                          Json{{"user_id", target.id}, {"display_name", target.display_name}},
                                          call.config().identity.quorum, ""));
}

}  // namespace appban::server::admin
