// Admin API: the catalog of government app bans (data/catalog/, policy/catalog.h) side by side with
// our rules — what allies ban that we do not — and each decision's draft rule, ready to propose
// through POST /v1/admin/rules. The catalog is the file the CLI reads (policy::DefaultCatalogPath);
// it is read on each call, on the worker's admin reader thread, so an updated package is seen
// without a restart.
#include <algorithm>

#include "appban/policy/catalog.h"
#include "appban/server/admin_handlers.h"

namespace appban::server::admin {
namespace {

// Enough for any jurisdiction's name ("Canada (federal)") or code.
constexpr size_t kMaxJurisdictionBytes = 128;
// Rules are read from the store a page at a time.
constexpr size_t kRulesPerRead = 1000;

Result<std::vector<policy::Rule>> AllRules(store::Store& store) {
  std::vector<policy::Rule> rules;
  std::string after;
  while (true) {
    APPBAN_ASSIGN_OR_RETURN(std::vector<policy::Rule> page, store.ListRulesAfter(after, kRulesPerRead));
    bool last = page.size() < kRulesPerRead;
    for (auto& rule : page) rules.push_back(std::move(rule));
    if (last || rules.empty()) return rules;
    after = rules.back().id;
  }
}

Json MatchesJson(const std::vector<policy::RuleMatch>& matches) {
  Json out = Json::array();
  for (const auto& match : matches)
    out.push_back({{"id", match.rule_id}, {"state", policy::RuleStateName(match.state)}});
  return out;
}

bool AnyPublished(const std::vector<policy::RuleMatch>& matches) {
  for (const auto& match : matches) {
    if (match.state == policy::RuleState::kPublished) return true;
  }
  return false;
}

// One decision: the entry as the CLI prints it, each app with the rules of ours that ban it,
// whether we ban all of it now, and the draft rule adopting it.
Json EntryView(const policy::EntryCoverage& coverage) {
  const policy::CatalogEntry& entry = *coverage.entry;
  Json json = policy::CatalogEntryToJson(entry);
  bool banned_here = !entry.apps.empty();
  std::vector<policy::RuleMatch> all;
  for (size_t i = 0; i < entry.apps.size(); ++i) {
    const auto& matches = coverage.apps[i];
    json["apps"][i]["rules"] = MatchesJson(matches);
    json["apps"][i]["banned_here"] = AnyPublished(matches);
    banned_here = banned_here && AnyPublished(matches);
    for (const auto& match : matches) {
      if (std::find(all.begin(), all.end(), match) == all.end()) all.push_back(match);
    }
  }
  json["banned_here"] = banned_here;
  json["rules"] = MatchesJson(all);
  json["adopted_as"] = MatchesJson(coverage.adopted_as);
  auto adoption = policy::AdoptEntry(entry, policy::Action::kRemove);
  if (adoption.ok()) {
    json["draft"] = policy::RuleToJson(adoption->rule, false);
    json["draft"]["note"] = "adopted from catalog entry " + entry.id;
  } else {
    json["draft"] = nullptr;
    json["draft_problem"] = adoption.status().message();
  }
  return json;
}

}  // namespace

HttpResponse ListCatalog(Call& call) {
  std::optional<std::string> jurisdiction = call.request.QueryParam("jurisdiction");
  if (jurisdiction && (jurisdiction->empty() || jurisdiction->size() > kMaxJurisdictionBytes)) {
    return BadRequest("query parameter jurisdiction: 1 to " + std::to_string(kMaxJurisdictionBytes) + " bytes");
  }
  auto path = policy::DefaultCatalogPath();
  if (!path.ok()) {
    return ErrorResponse(503, "unavailable",
                         "the catalog of government app bans is not installed: " + path.status().message());
  }
  auto catalog = policy::LoadCatalogFile(*path);
  if (!catalog.ok()) {
    return ErrorResponse(503, "unavailable",
                         "the catalog of government app bans cannot be read: " + catalog.status().message());
  }
  std::vector<const policy::CatalogEntry*> entries;
  if (jurisdiction) {
    entries = policy::EntriesFor(*catalog, *jurisdiction);
  } else {
    for (const auto& entry : catalog->entries) entries.push_back(&entry);
  }
  auto rules = AllRules(*call.context.store);
  if (!rules.ok()) return ErrorFrom(rules.status());
  Json out = Json::array();
  for (const auto& coverage : policy::CoverageByRules(entries, *rules)) out.push_back(EntryView(coverage));
  return JsonResponse(200, Json{{"entries", std::move(out)}});
}

}  // namespace appban::server::admin
