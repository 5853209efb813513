// Admin API: rules — list, propose, read, and the lifecycle steps approve, publish, revoke.
#include "appban/server/admin_handlers.h"

#include "appban/policy/model.h"
#include "appban/server/config.h"

namespace appban::server::admin {

HttpResponse ListRules(Call& call) {
  return ListPage(
      call, "rules",
      [&](std::string_view after, size_t limit) { return call.context.store->ListRulesAfter(after, limit); },
      [](const policy::Rule& rule) { return rule.id; },
      [](const policy::Rule& rule) { return policy::RuleToJson(rule, true); });
}

namespace {

Status CheckProposalShape(const Json& body) {
  for (std::string_view lifecycle : {"state", "proposed_by", "history", "revision"}) {
    if (body.contains(lifecycle)) {
      return Status::InvalidArgument("rule: member \"" + std::string(lifecycle) +
                                     "\" is set by the server; a proposal carries no lifecycle");
    }
  }
  // A proposal is the rule without its lifecycle, plus the proposer's note.
  APPBAN_RETURN_IF_ERROR(
      CheckMembers(body,
                   {"id", "title", "targets", "action", "scope_groups", "effective_at", "effective_note", "rationale",
                    "authority", "instrument", "references", "assessments", "source", "note"},
                   "rule"));
  if (auto it = body.find("targets"); it != body.end() && it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      if ((*it)[i].is_object()) {
        APPBAN_RETURN_IF_ERROR(
            CheckMembers((*it)[i], {"kind", "value", "unverified"}, "rule: targets[" + std::to_string(i) + "]"));
      }
    }
  }
  if (auto it = body.find("assessments"); it != body.end() && it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      if ((*it)[i].is_object()) {
        APPBAN_RETURN_IF_ERROR(
            CheckMembers((*it)[i], {"apk_sha256", "report"}, "rule: assessments[" + std::to_string(i) + "]"));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

HttpResponse ProposeRule(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  Status shape = CheckProposalShape(*body);
  if (!shape.ok()) return ErrorFrom(shape);
  auto note = StringMember(*body, "note", false, store::kFleetLimits.max_note_bytes);
  if (!note.ok()) return ErrorFrom(note.status().WithContext("rule"));
  Json rule_json = *body;
  rule_json.erase("note");
  auto rule = policy::RuleFromJson(rule_json);
  if (!rule.ok()) return BadRequest(rule.status().message());
  // A rule may cite only assessments the server holds; the citation then points at the report.
  for (size_t i = 0; i < rule->assessments.size(); ++i) {
    auto& cited = rule->assessments[i];
    auto held = call.context.fleet->GetAssessment(cited.apk_sha256);
    if (!held.ok()) {
      if (held.status().code() != StatusCode::kNotFound) return ErrorFrom(held.status());
      return BadRequest("rule: assessments[" + std::to_string(i) + "].apk_sha256: the server holds no assessment of " +
                        cited.apk_sha256 + "; upload the APK first (POST /v1/admin/assessments)");
    }
    cited.report = AssessmentPath(cited.apk_sha256);
  }
  auto proposed = call.Admin().ProposeRule(std::move(*rule), *note);
  if (!proposed.ok()) return ErrorFromBodyReference(proposed.status());
  return JsonResponse(201, policy::RuleToJson(*proposed, true));
}

HttpResponse GetRule(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "rule id"); !s.ok()) return ErrorFrom(s);
  auto rule = call.context.store->GetRule(id);
  if (!rule.ok()) return ErrorFrom(rule.status());
  return JsonResponse(200, policy::RuleToJson(*rule, true));
}

namespace {

enum class RuleStep { kApprove, kPublish, kRevoke };

HttpResponse RuleTransition(Call& call, RuleStep step) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "rule id"); !s.ok()) return ErrorFrom(s);
  bool revoke = step == RuleStep::kRevoke;
  auto body = call.Body(!revoke);
  if (!body.ok()) return ErrorFrom(body.status());
  const char* member = revoke ? "reason" : "note";
  if (Status s = CheckMembers(*body, {member}, "body"); !s.ok()) return ErrorFrom(s);
  auto text = StringMember(*body, member, revoke, store::kFleetLimits.max_note_bytes);
  if (!text.ok()) return ErrorFrom(text.status());
  decide::PolicyAdmin admin = call.Admin();
  // Approving widens enforcement and revoking relaxes it: they need the configured quorum of people
  // (docs/identity.md, "Quorum"); publishing an approved rule does not.
  if (step == RuleStep::kApprove) {
    return ChangeAnswer(call, admin, admin.ApproveRuleWithQuorum(id, *text, call.config().identity.quorum));
  }
  if (step == RuleStep::kRevoke) {
    // Only a published rule is enforced; withdrawing a draft or an approved rule relaxes nothing.
    auto current = call.context.store->GetRule(id);
    if (!current.ok()) return ErrorFrom(current.status());
    if (current->state == policy::RuleState::kPublished) {
      return ChangeAnswer(call, admin, admin.ProposeRuleRevocation(id, *text, call.config().identity.quorum));
    }
  }
  auto rule = step == RuleStep::kRevoke ? admin.RevokeRule(id, *text) : admin.PublishRule(id, *text);
  if (!rule.ok()) return ErrorFrom(rule.status());
  return JsonResponse(200, policy::RuleToJson(*rule, true));
}

}  // namespace

HttpResponse ApproveRule(Call& call) { return RuleTransition(call, RuleStep::kApprove); }
HttpResponse PublishRule(Call& call) { return RuleTransition(call, RuleStep::kPublish); }
HttpResponse RevokeRule(Call& call) { return RuleTransition(call, RuleStep::kRevoke); }

}  // namespace appban::server::admin
