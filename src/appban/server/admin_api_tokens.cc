// Admin API: API tokens — who am I, create, list, revoke.
#include "appban/server/admin_handlers.h"

#include <optional>

#include "appban/policy/model.h"

namespace appban::server::admin {

HttpResponse WhoAmI(Call& call) {
  Json body = ApiTokenJson(call.token);
  body["actor"] = call.token.name;
  return JsonResponse(200, body);
}

HttpResponse CreateApiToken(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"name", "role", "ttl_seconds"}, "body"); !s.ok()) return ErrorFrom(s);
  auto name = StringMember(*body, "name", true, store::kFleetLimits.max_name_bytes);
  if (!name.ok()) return ErrorFrom(name.status());
  if (Status s = policy::ValidateIdentifier(*name, "name"); !s.ok()) return BadRequest(s.message());
  auto role_name = StringMember(*body, "role", true, 32);
  if (!role_name.ok()) return ErrorFrom(role_name.status());
  auto role = store::ParseRole(*role_name);
  if (!role.ok()) return BadRequest("role: " + role.status().message());
  auto ttl = IntegerMember(*body, "ttl_seconds", kAdminLimits.min_ttl_seconds, kAdminLimits.max_api_token_ttl_seconds);
  if (!ttl.ok()) return ErrorFrom(ttl.status());
  store::AuditRecord audit = call.Audit();
  std::optional<UnixSeconds> expires_at;
  if (*ttl) expires_at = audit.at + **ttl;
  auto created = call.context.fleet->CreateApiToken(*name, *role, expires_at, audit);
  if (!created.ok()) return ErrorFrom(created.status());
  Json json = ApiTokenJson(created->token);
  json["token"] = created->presented;
  return JsonResponse(201, json);
}

HttpResponse ListApiTokens(Call& call) {
  auto page = ReadPageRequest(call.request, "tokens", CursorKey::kIdentifier);
  if (!page.ok()) return ErrorFrom(page.status());
  auto tokens = call.context.fleet->ListApiTokensAfter(page->after, page->limit + 1);
  if (!tokens.ok()) return ErrorFrom(tokens.status());
  Json next = FinishPage("tokens", *page, *tokens, [](const store::ApiToken& token) { return token.id; });
  Json list = Json::array();
  for (const auto& token : *tokens) list.push_back(ApiTokenJson(token));
  return JsonResponse(200, Json{{"tokens", list}, {"next_cursor", next}});
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
