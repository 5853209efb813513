// appban catalog …: the built-in catalog of government app bans (data/catalog/), compared across
// jurisdictions and adopted as draft rules. Unverified identifiers (source status "B") are marked
// "(unverified)" in text output and "verified": false in JSON.
#include <iostream>
#include <memory>
#include <string>

#include "appban/cli/commands.h"
#include "appban/cli/policy_cli_support.h"
#include "appban/decide/admin.h"
#include "appban/policy/catalog.h"

namespace appban::cli {
namespace {

struct CatalogOptions {
  DataOptions data;
  ServerOptions server;
  std::string catalog_path;
  std::string id, ours, theirs, action = "remove";
  bool json = false;
};

Result<policy::Catalog> Load(const CatalogOptions& o) {
  std::string path = o.catalog_path;
  if (path.empty()) {
    APPBAN_ASSIGN_OR_RETURN(path, policy::DefaultCatalogPath());
  }
  return policy::LoadCatalogFile(path);
}

int List(const CatalogOptions& o) {
  auto catalog = Load(o);
  if (!catalog.ok()) return Fail(catalog.status());
  if (o.json) {
    Json out = Json::array();
    for (const auto& e : catalog->entries) out.push_back(policy::CatalogEntryToJson(e));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& e : catalog->entries) {
    std::string apps;
    for (const auto& app : e.apps) apps += (apps.empty() ? "" : ", ") + app.name;
    std::cout << e.id << "  " << e.jurisdiction << "  " << e.effective << "  " << apps << "\n";
  }
  return 0;
}

int Show(const CatalogOptions& o) {
  auto catalog = Load(o);
  if (!catalog.ok()) return Fail(catalog.status());
  const policy::CatalogEntry* e = catalog->Find(o.id);
  if (e == nullptr) return Fail(Status::NotFound("no catalog entry " + o.id));
  if (o.json) {
    std::cout << policy::CatalogEntryToJson(*e).dump(2) << "\n";
    return 0;
  }
  std::cout << e->id << "\n  jurisdiction  " << e->jurisdiction << "\n  authority     " << e->authority
            << "\n  instrument    " << e->instrument << "\n  scope         " << e->scope << "\n  announced     "
            << e->announced << "\n  effective     " << e->effective << "\n  rationale     " << e->rationale
            << "\n  source        " << e->source_url << "\n";
  for (const auto& app : e->apps) {
    std::cout << "  app           " << app.name << " — " << app.vendor
              << (app.vendor_country.empty() ? "" : " (" + app.vendor_country + ")")
              << "  [id status: " << app.id_status << "]\n";
    for (const auto& id : app.identifiers) {
      std::cout << "    " << policy::TargetKindName(id.kind) << ":" << id.value << (id.verified ? "" : "  (unverified)")
                << "\n";
    }
  }
  return 0;
}

int Diff(const CatalogOptions& o) {
  auto catalog = Load(o);
  if (!catalog.ok()) return Fail(catalog.status());
  auto diff = policy::DiffJurisdictions(*catalog, o.ours, o.theirs);
  if (!diff.ok()) return Fail(diff.status());
  auto to_json = [](const std::vector<policy::DiffApp>& apps) {
    Json out = Json::array();
    for (const auto& a : apps)
      out.push_back({{"app", a.name}, {"identifiers", a.identifiers}, {"entries", a.entry_ids}});
    return out;
  };
  if (o.json) {
    std::cout << Json{{"ours", o.ours},
                      {"theirs", o.theirs},
                      {"theirs_only", to_json(diff->theirs_only)},
                      {"ours_only", to_json(diff->ours_only)},
                      {"both", to_json(diff->both)}}
                     .dump(2)
              << "\n";
    return 0;
  }
  auto print = [](const std::string& heading, const std::vector<policy::DiffApp>& apps) {
    std::cout << heading << "\n";
    if (apps.empty()) std::cout << "  (none)\n";
    for (const auto& a : apps) {
      std::string entries;
      for (const auto& id : a.entry_ids) entries += (entries.empty() ? "" : ", ") + id;
      std::cout << "  " << a.name << "  [" << entries << "]\n";
    }
  };
  print(o.theirs + " bans, " + o.ours + " does not:", diff->theirs_only);
  print(o.ours + " bans, " + o.theirs + " does not:", diff->ours_only);
  print("Both ban:", diff->both);
  return 0;
}

int Adopt(const CatalogOptions& o) {
  auto catalog = Load(o);
  if (!catalog.ok()) return Fail(catalog.status());
  const policy::CatalogEntry* e = catalog->Find(o.id);
  if (e == nullptr) return Fail(Status::NotFound("no catalog entry " + o.id));
  auto action = policy::ParseAction(o.action);
  if (!action.ok()) return Fail(action.status());
  auto target = DecisionTargetFor(o.data, o.server, "appban catalog adopt");
  if (!target.ok()) return Fail(target.status());
  if (*target) {
    // Through the server, as the signed-in person: the entry's vendor records first (a merge
    // that widens a rule in force waits for more people, and Decide says so), then the draft.
    auto adoption = policy::AdoptEntry(*e, *action);
    if (!adoption.ok()) return Fail(adoption.status());
    for (const auto& vendor : adoption->vendors) {
      Json vendor_body = policy::VendorToJson(vendor);
      vendor_body["note"] = "adopted from catalog entry " + e->id;
      auto merged = Decide(**target, "POST", "vendors", &vendor_body);
      if (!merged.ok()) return Fail(merged.status(), "vendor " + vendor.name);
      if (*merged) std::cout << "vendor " << vendor.name << " recorded\n";
    }
    Json body = policy::RuleToJson(adoption->rule, false);
    body["note"] = "adopted from catalog entry " + e->id;
    auto reply = (*target)->Call("POST", "/v1/admin/rules", &body);
    if (!reply.ok()) return Fail(reply.status());
    std::cout << "proposed rule " << adoption->rule.id << " (draft, " << policy::ActionName(adoption->rule.action)
              << ") from catalog entry " << e->id << " on " << (*target)->server()
              << "; another person must approve it\n";
    for (const auto& t : adoption->rule.targets) std::cout << "  target " << policy::TargetSpec(t) << "\n";
    return 0;
  }
  auto store = OpenPolicyStore(o.data);
  if (!store.ok()) return Fail(store.status());
  decide::PolicyAdmin admin(**store, LocalActor(o.data));
  auto adopted = admin.AdoptCatalogEntry(*e, *action, store::ChangeLimits::kMinQuorum);
  if (!adopted.ok()) return Fail(adopted.status());
  for (const auto& change : adopted->pending_vendor_merges) PrintProposed(change);
  const policy::Rule& rule = adopted->rule;
  std::cout << "proposed rule " << rule.id << " (draft, " << policy::ActionName(rule.action) << ") from catalog entry "
            << e->id << "; another person must approve it\n";
  for (const auto& t : rule.targets) std::cout << "  target " << policy::TargetSpec(t) << "\n";
  return 0;
}

}  // namespace

void AddCatalogCommand(CLI::App& app, CommandAction* action) {
  auto o = std::make_shared<CatalogOptions>();
  CLI::App* catalog = app.add_subcommand("catalog", "The catalog of government app bans: list, compare, adopt");
  catalog->require_subcommand(1);
  catalog->add_option("--catalog", o->catalog_path, "Catalog file (default: the built-in data/catalog one)");
  AddDataDirOption(catalog, &o->data.data_dir, "Data directory for adopt (default: $APPBAN_DATA, else ./appban-data)");
  catalog->add_option("--user", o->data.user, "Acting user for adopt with --break-glass (default: $APPBAN_USER)");
  catalog->add_flag("--break-glass", o->data.break_glass,
                    "Adopt into the host's database while the server is down, recorded as break-glass");
  AddServerOptions(catalog, &o->server);
  auto bind = [action, o](CLI::App* cmd, int (*run)(const CatalogOptions&)) {
    cmd->fallthrough();
    cmd->callback([action, o, run] { *action = [o, run] { return run(*o); }; });
  };
  CLI::App* list = catalog->add_subcommand("list", "List the catalog's decisions");
  list->add_flag("--json", o->json, "Print JSON");
  bind(list, List);
  CLI::App* show = catalog->add_subcommand("show", "Show one decision");
  show->add_option("id", o->id, "Entry id")->required();
  show->add_flag("--json", o->json, "Print JSON");
  bind(show, Show);
  CLI::App* diff = catalog->add_subcommand("diff", "Compare two jurisdictions' bans, by app");
  diff->add_option("--ours", o->ours, "Our jurisdiction: ISO code (CA) or name prefix (Canada)")->required();
  diff->add_option("--theirs", o->theirs, "Their jurisdiction")->required();
  diff->add_flag("--json", o->json, "Print JSON");
  bind(diff, Diff);
  CLI::App* adopt = catalog->add_subcommand("adopt", "Propose a draft rule from a decision (needs approval)");
  adopt->add_option("id", o->id, "Entry id")->required();
  adopt->add_option("--action", o->action, "One of remove (default), block or report");
  bind(adopt, Adopt);
}

}  // namespace appban::cli
