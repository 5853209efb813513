// Admin API: who am I; users and service accounts; API tokens — create, list, revoke.
// A token belongs to a user: minted by a person for themself, or for a service account they own;
// names are labels, never identities (docs/identity.md).
#include <algorithm>
#include <optional>

#include "appban/common/time.h"
#include "appban/policy/model.h"
#include "appban/server/admin_handlers.h"

namespace appban::server::admin {

HttpResponse WhoAmI(Call& call) {
  const Principal& who = call.principal;
  Json body{{"user", UserJson(who.user)},
            {"actor", who.user.id},
            {"display_name", who.user.display_name},
            {"role", std::string(store::RoleName(who.role))},
            {"method", who.method},
            {"token_id", who.token_id.empty() ? Json(nullptr) : Json(who.token_id)},
            {"certificate", who.certificate.empty() ? Json(nullptr) : Json(who.certificate)},
            {"provider", who.provider.empty() ? Json(nullptr) : Json(who.provider)}};
  return JsonResponse(200, body);
}

HttpResponse CreateApiToken(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"name", "role", "ttl_seconds", "service_account"}, "body"); !s.ok()) {
    return ErrorFrom(s);
  }
  auto request = ReadNamedRole(*body);
  if (!request.ok()) return ErrorFrom(request.status());
  auto ttl = IntegerMember(*body, "ttl_seconds", kAdminLimits.min_ttl_seconds, kAdminLimits.max_api_token_ttl_seconds);
  if (!ttl.ok()) return ErrorFrom(ttl.status());
  auto service_account = StringMember(*body, "service_account", false, store::kFleetLimits.max_name_bytes);
  if (!service_account.ok()) return ErrorFrom(service_account.status());
  // A token never carries more than the caller has, and a service account mints none.
  if (auto refused = RefuseToConfer(call, request->role, "a token")) return *refused;
  // Whose token: the caller's own, or a service account the caller owns. Never another person's.
  store::User holder = call.principal.user;
  if (!service_account->empty()) {
    auto account = call.context.fleet->GetUser(*service_account);
    if (!account.ok()) return ErrorFromBodyReference(account.status());
    if (account->kind != store::UserKind::kService || account->owner_id != call.principal.user.id) {
      return ErrorResponse(403, "forbidden",
                           "service_account: " + *service_account +
                               " is not a service account you own; a token is minted for yourself or for a service "
                               "account you own");
    }
    holder = std::move(*account);
  }
  store::AuditRecord audit = call.Audit();
  std::optional<UnixSeconds> expires_at;
  if (*ttl) expires_at = audit.at + **ttl;
  auto created = call.context.fleet->CreateApiToken(holder.id, request->name, request->role, expires_at, audit);
  if (!created.ok()) return ErrorFrom(created.status());
  Json json = ApiTokenJson(created->token);
  json["token"] = created->presented;
  return JsonResponse(201, json);
}

HttpResponse ListUsers(Call& call) {
  return ListPage(
      call, "users",
      [&](std::string_view after, size_t limit) { return call.context.fleet->ListUsersAfter(after, limit); },
      [](const store::User& user) { return user.id; }, UserJson);
}

HttpResponse CreateServiceAccount(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"name", "role"}, "body"); !s.ok()) return ErrorFrom(s);
  auto request = ReadNamedRole(*body);
  if (!request.ok()) return ErrorFrom(request.status());
  // A service account is owned by a person, and holds no more than its owner.
  if (auto refused = RefuseToConfer(call, request->role, "a service account")) return *refused;
  auto created =
      call.context.fleet->CreateServiceAccount(request->name, call.principal.user.id, request->role, call.Audit());
  if (!created.ok()) return ErrorFrom(created.status());
  return JsonResponse(201, UserJson(*created));
}

HttpResponse GrantUserRole(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "user id"); !s.ok()) return ErrorFrom(s);
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"role"}, "body"); !s.ok()) return ErrorFrom(s);
  if (!body->contains("role") || !((*body)["role"].is_null() || (*body)["role"].is_string())) {
    return BadRequest("role: required, a role name or null (withdraw the granted role)");
  }
  std::optional<store::Role> role;
  if ((*body)["role"].is_string()) {
    auto parsed = store::ParseRole((*body)["role"].get<std::string>());
    if (!parsed.ok()) return BadRequest("role: " + parsed.status().message());
    role = *parsed;
  }
  if (call.principal.user.kind != store::UserKind::kHuman) {
    return ErrorResponse(409, "two_person_rule", "a service account cannot grant roles; a person must");
  }
  const auto& mine = call.principal.same_person;
  if (id == call.principal.user.id || std::find(mine.begin(), mine.end(), id) != mine.end()) {
    return ErrorResponse(409, "two_person_rule",
                         "two-person rule: " + call.principal.user.display_name +
                             " cannot change their own role (on any of their accounts); another administrator must");
  }
  auto target = call.context.fleet->GetUser(id);
  if (!target.ok()) return ErrorFrom(target.status());
  if (role == store::Role::kAdmin && target->kind != store::UserKind::kHuman) {
    return ErrorResponse(409, "two_person_rule", "a service account cannot be an administrator");
  }
  // Granting the admin role widens who may decide: it needs the quorum (admin_changes.cc).
  if (role == store::Role::kAdmin) return ProposeAdminGrant(call, *target);
  auto updated = call.context.fleet->SetGrantedRole(id, role, call.Audit());
  if (!updated.ok()) return ErrorFrom(updated.status());
  return JsonResponse(200, UserJson(*updated));
}

HttpResponse LinkUser(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "user id"); !s.ok()) return ErrorFrom(s);
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"same_as"}, "body"); !s.ok()) return ErrorFrom(s);
  auto same_as = StringMember(*body, "same_as", true, 64);
  if (!same_as.ok()) return ErrorFrom(same_as.status());
  if (Status s = CheckPathIdentifier(*same_as, "same_as"); !s.ok()) return ErrorFrom(s);
  // Linking makes the two-person rule stricter (two accounts count once), so one administrator
  // may; a link is never undone, which would make it laxer.
  auto linked = call.context.fleet->LinkUser(id, *same_as, call.Audit());
  if (!linked.ok()) return ErrorFrom(linked.status());
  return JsonResponse(200, UserJson(*linked));
}

// Ends every console session of a user issued up to now (docs/console.md): a stolen laptop, a
// person who left, "sign out everywhere". The user's API tokens are not touched (revoke them apart).
HttpResponse EndUserSessions(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "user id"); !s.ok()) return ErrorFrom(s);
  if (!call.request.body.empty()) {
    auto body = call.Body(true);
    if (!body.ok()) return ErrorFrom(body.status());
    if (Status s = CheckMembers(*body, {}, "body"); !s.ok()) return ErrorFrom(s);
  }
  const auto& mine = call.principal.same_person;
  const bool own = id == call.principal.user.id || std::find(mine.begin(), mine.end(), id) != mine.end();
  if (!own && !Allows(call.principal.role, Need::kAdmin)) {
    return ErrorResponse(403, "forbidden", "ending another user's sessions needs the admin role");
  }
  // Sessions issued in this very second are ended too (issue times are whole seconds).
  const UnixSeconds not_before = call.Now() + 1;
  if (Status s = call.context.fleet->EndSessionsOfUser(id, not_before, call.Audit()); !s.ok()) return ErrorFrom(s);
  return JsonResponse(200, Json{{"user_id", id}, {"sessions_issued_before", FormatTimestamp(not_before)}});
}

HttpResponse ListApiTokens(Call& call) {
  return ListPage(
      call, "tokens",
      [&](std::string_view after, size_t limit) { return call.context.fleet->ListApiTokensAfter(after, limit); },
      [](const store::ApiToken& token) { return token.id; }, ApiTokenJson);
}

HttpResponse RevokeApiToken(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "token id"); !s.ok()) return ErrorFrom(s);
  if (!call.request.body.empty()) {
    auto body = call.Body(true);
    if (!body.ok()) return ErrorFrom(body.status());
    if (Status s = CheckMembers(*body, {}, "body"); !s.ok()) return ErrorFrom(s);
  }
  if (Status s = call.context.fleet->RevokeApiToken(id, call.Audit()); !s.ok()) return ErrorFrom(s);
  return JsonResponse(200, Json{{"revoked", id}});
}

}  // namespace appban::server::admin
