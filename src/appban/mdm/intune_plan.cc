#include "appban/mdm/intune_plan.h"

#include <algorithm>

namespace appban::mdm {
namespace {

constexpr std::string_view kStateFormat = "appban.mdm-intune-state/1";
constexpr std::string_view kHiddenListType = "appsNotInListCompliant";

std::string AssignmentKey(const std::string& app, const std::string& group) { return app + "|" + group; }

Json SetToJson(const std::set<std::string>& values) {
  return Json(std::vector<std::string>(values.begin(), values.end()));
}

Result<std::set<std::string>> SetFromJson(const Json& json, const std::string& what) {
  if (!json.is_array()) return Status::Corruption(what + " is not an array");
  std::set<std::string> out;
  for (const Json& item : json) {
    if (!item.is_string()) return Status::Corruption(what + " holds a non-string");
    out.insert(item.get<std::string>());
  }
  return out;
}

Json SetMapToJson(const std::map<std::string, std::set<std::string>>& map) {
  Json out = Json::object();
  for (const auto& [key, values] : map) out[key] = SetToJson(values);
  return out;
}

Result<std::map<std::string, std::set<std::string>>> SetMapFromJson(const Json& json, const std::string& what) {
  if (!json.is_object()) return Status::Corruption(what + " is not an object");
  std::map<std::string, std::set<std::string>> out;
  for (const auto& [key, values] : json.items()) {
    APPBAN_ASSIGN_OR_RETURN(out[key], SetFromJson(values, what + "." + key));
  }
  return out;
}

bool Bans(const policy::PolicyIndex& index, policy::Platform platform, const std::string& id,
          const std::vector<std::string>& groups, UnixSeconds now) {
  policy::InstalledApp app;
  app.platform = platform;
  app.id = id;
  policy::AppDecision decision = index.Evaluate(app, policy::DeviceContext{"intune-target", groups}, now);
  return decision.verdict == policy::Verdict::kRemove || decision.verdict == policy::Verdict::kBlockInstall;
}

// The appId of an appListItem, "" when it has none.
std::string ListItemAppId(const Json& item) {
  if (!item.is_object()) return "";
  auto id = item.find("appId");
  return id != item.end() && id->is_string() ? id->get<std::string>() : "";
}

Json AppbanListItem(const std::string& app_id) { return Json{{"name", app_id}, {"appId", app_id}}; }

std::string Joined(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& value : values) out += (out.empty() ? "" : ", ") + value;
  return out;
}

// Plans one app list (restrictedApps or appsVisibilityList): keeps every item not appban's, adds
// the wanted ids missing, removes appban's items no longer wanted. `owned` is updated to the
// ownership after the change; returns the new list, or nullopt when nothing changes.
struct ListChange {
  Json list = Json::array();
  std::vector<std::string> add, remove;
  std::set<std::string> owned_after;
  bool changed = false;
};

ListChange PlanList(const Json& current, const std::set<std::string>& wanted, const std::set<std::string>& owned,
                    const std::string& object, std::vector<std::string>& notes) {
  ListChange change;
  std::set<std::string> present;
  for (const Json& item : current) {
    const std::string id = ListItemAppId(item);
    if (!id.empty()) present.insert(id);
    const bool ours = !id.empty() && owned.count(id);
    if (ours && !wanted.count(id)) {
      change.remove.push_back(id);
      change.changed = true;
      continue;
    }
    if (ours) change.owned_after.insert(id);
    if (!ours && wanted.count(id)) notes.push_back(object + ": " + id + " already listed by an administrator");
    change.list.push_back(item);
  }
  for (const std::string& id : wanted) {
    if (present.count(id)) continue;
    change.list.push_back(AppbanListItem(id));
    change.add.push_back(id);
    change.owned_after.insert(id);
    change.changed = true;
  }
  return change;
}

// Ownership recorded for a list, with a pending record adopted for the ids the live list shows.
std::set<std::string> ResolveList(const std::set<std::string>& owned, const std::set<std::string>* pending,
                                  const Json& current) {
  std::set<std::string> out;
  std::set<std::string> present;
  for (const Json& item : current) present.insert(ListItemAppId(item));
  for (const std::string& id : owned) {
    if (present.count(id)) out.insert(id);  // an item an administrator removed is forgotten
  }
  if (pending) {
    for (const std::string& id : *pending) {
      if (present.count(id)) out.insert(id);
    }
  }
  return out;
}

const Json& ListOf(const Json& object, std::string_view key) {
  static const Json kEmpty = Json::array();
  auto it = object.find(key);
  return it != object.end() && it->is_array() ? *it : kEmpty;
}

}  // namespace

Json IntuneStateToJson(const IntuneState& state) {
  Json assignments = Json::object();
  for (const auto& [key, id] : state.assignments) assignments[key] = id;
  return Json{{"format", kStateFormat},
              {"assignments", std::move(assignments)},
              {"pending_assignments", SetToJson(state.pending_assignments)},
              {"compliance", SetMapToJson(state.compliance)},
              {"configurations", SetMapToJson(state.configurations)},
              {"pending_lists", SetMapToJson(state.pending_lists)},
              {"list_type_set", SetToJson(state.list_type_set)},
              {"last_applied_bundle", state.last_applied_bundle},
              {"last_applied_at", state.last_applied_at}};
}

Result<IntuneState> IntuneStateFromJson(const Json& json) {
  if (!json.is_object() || StringOr(json, "format") != kStateFormat) {
    return Status::Corruption("not an " + std::string(kStateFormat) + " document");
  }
  for (const char* key : {"assignments", "pending_assignments", "compliance", "configurations", "pending_lists",
                          "list_type_set", "last_applied_bundle", "last_applied_at"}) {
    if (!json.contains(key)) return Status::Corruption(std::string(key) + " is missing");
  }
  IntuneState state;
  if (!json["assignments"].is_object()) return Status::Corruption("assignments is not an object");
  for (const auto& [key, id] : json["assignments"].items()) {
    if (!id.is_string()) return Status::Corruption("assignments." + key + " is not a string");
    state.assignments[key] = id.get<std::string>();
  }
  APPBAN_ASSIGN_OR_RETURN(state.pending_assignments, SetFromJson(json["pending_assignments"], "pending_assignments"));
  APPBAN_ASSIGN_OR_RETURN(state.compliance, SetMapFromJson(json["compliance"], "compliance"));
  APPBAN_ASSIGN_OR_RETURN(state.configurations, SetMapFromJson(json["configurations"], "configurations"));
  APPBAN_ASSIGN_OR_RETURN(state.pending_lists, SetMapFromJson(json["pending_lists"], "pending_lists"));
  APPBAN_ASSIGN_OR_RETURN(state.list_type_set, SetFromJson(json["list_type_set"], "list_type_set"));
  if (!json["last_applied_bundle"].is_number_integer() || !json["last_applied_at"].is_number_integer()) {
    return Status::Corruption("last_applied_bundle/last_applied_at are not integers");
  }
  state.last_applied_bundle = json["last_applied_bundle"].get<int64_t>();
  state.last_applied_at = json["last_applied_at"].get<int64_t>();
  return state;
}

IntuneBanned CollectIntuneBanned(const policy::Bundle& bundle) {
  IntuneBanned out;
  auto add = [](auto& map, const std::string& id, const std::string& rule) {
    auto& rules = map[id];
    if (std::find(rules.begin(), rules.end(), rule) == rules.end()) rules.push_back(rule);
  };
  auto take = [&](const policy::Target& target, const std::string& rule) {
    switch (target.kind) {
      case policy::TargetKind::kIosBundle:
        add(out.ios, target.value, rule);
        break;
      case policy::TargetKind::kAndroidPackage:
        add(out.android, target.value, rule);
        break;
      case policy::TargetKind::kAndroidSigner:
      case policy::TargetKind::kAppleTeam:
        out.unenforceable.push_back({rule, policy::TargetSpec(target),
                                     "Intune targets apps by bundle id / package only; a publisher's apps need their "
                                     "own ios: or android: targets"});
        break;
      default:
        break;  // desktop packaging systems: not Intune's
    }
  };
  for (const policy::Rule& rule : bundle.rules) {
    for (const policy::Target& target : rule.targets) {
      if (target.kind != policy::TargetKind::kVendor) {
        take(target, rule.id);
        continue;
      }
      for (const policy::Vendor& vendor : bundle.vendors) {
        if (vendor.name != target.value) continue;
        for (const policy::Target& identifier : vendor.identifiers) take(identifier, rule.id);
      }
    }
  }
  return out;
}

std::string IntuneOperation::Path() const {
  switch (kind) {
    case Kind::kCreateAssignment:
      return "/v1.0/deviceAppManagement/mobileApps/" + object + "/assignments";
    case Kind::kDeleteAssignment:
      return "/v1.0/deviceAppManagement/mobileApps/" + object + "/assignments/" + assignment_id;
    case Kind::kPatchCompliancePolicy:
      return "/beta/deviceManagement/deviceCompliancePolicies/" + object;
    case Kind::kPatchConfiguration:
      return "/v1.0/deviceManagement/deviceConfigurations/" + object;
  }
  return "";
}

std::string IntuneOperation::Describe() const {
  switch (kind) {
    case Kind::kCreateAssignment:
      return "+ mobileApps/" + object + " (" + label + "): assignment {intent: uninstall, group " + group + "}";
    case Kind::kDeleteAssignment:
      return "- mobileApps/" + object + " (" + label + "): appban's uninstall assignment to group " + group +
             " (ban lifted or waived)";
    case Kind::kPatchCompliancePolicy:
    case Kind::kPatchConfiguration: {
      std::string out = std::string(kind == Kind::kPatchCompliancePolicy ? "~ deviceCompliancePolicies/"
                                                                         : "~ deviceConfigurations/") +
                        object + (kind == Kind::kPatchCompliancePolicy ? " restrictedApps" : " appsVisibilityList");
      if (!add.empty()) out += " +[" + Joined(add) + "]";
      if (!remove.empty()) out += " -[" + Joined(remove) + "]";
      if (body.contains("appsVisibilityListType")) {
        out += " appsVisibilityListType=" + body["appsVisibilityListType"].get<std::string>();
      }
      return out;
    }
  }
  return "";
}

IntunePlan PlanIntune(const policy::PolicyIndex& index, const IntuneBanned& banned,
                      const std::vector<IntuneTarget>& targets, const IntuneSnapshot& snapshot,
                      const IntuneState& state, UnixSeconds now) {
  IntunePlan plan;
  plan.unenforceable = banned.unenforceable;
  plan.resolved = state;
  plan.resolved.pending_assignments.clear();
  plan.resolved.pending_lists.clear();
  for (const auto& [object, error] : snapshot.read_errors) plan.errors.push_back(object + ": " + error);

  // 1. Uninstall assignments.
  std::set<std::string> catalogued_ios, catalogued_android;
  for (const CatalogApp& app : snapshot.catalogue) {
    if (app.app_id.empty()) continue;
    const auto& ids = app.ios ? banned.ios : banned.android;
    const bool mentioned = ids.count(app.app_id) > 0;
    (app.ios ? catalogued_ios : catalogued_android).insert(app.app_id);
    auto assignments_it = snapshot.assignments.find(app.id);
    const bool have_assignments = assignments_it != snapshot.assignments.end();
    const std::string label = app.display_name + ", " + app.app_id;
    for (const IntuneTarget& target : targets) {
      const std::string key = AssignmentKey(app.id, target.entra_group_id);
      const bool recorded = state.assignments.count(key) || state.pending_assignments.count(key);
      if (!mentioned && !recorded) continue;
      if (!have_assignments) continue;  // read error reported above; ownership kept as it was
      // The live assignment of this app to this group, if any.
      const Json* live = nullptr;
      for (const Json& assignment : assignments_it->second) {
        const Json& t = assignment.contains("target") ? assignment["target"] : Json();
        if (t.is_object() && StringOr(t, "@odata.type") == kGroupTargetType &&
            StringOr(t, "groupId") == target.entra_group_id) {
          live = &assignment;
          break;
        }
      }
      std::string owned_id;
      if (auto it = state.assignments.find(key); it != state.assignments.end()) owned_id = it->second;
      const bool live_uninstall = live && StringOr(*live, "intent") == "uninstall";
      const std::string live_id = live ? StringOr(*live, "id") : "";
      if (!owned_id.empty() && (!live || live_id != owned_id || !live_uninstall)) {
        owned_id.clear();  // removed or changed by an administrator since: forgotten
      } else if (owned_id.empty() && state.pending_assignments.count(key) && live_uninstall) {
        owned_id = live_id;  // a create whose answer was lost: it landed
      }
      if (owned_id.empty()) {
        plan.resolved.assignments.erase(key);
      } else {
        plan.resolved.assignments[key] = owned_id;
      }
      const bool wanted = mentioned && Bans(index, app.ios ? policy::Platform::kIos : policy::Platform::kAndroid,
                                            app.app_id, target.groups, now);
      IntuneOperation op;
      op.object = app.id;
      op.group = target.entra_group_id;
      op.label = label;
      if (wanted && owned_id.empty()) {
        if (live_uninstall) {
          plan.notes.push_back("mobileApps/" + app.id + " (" + label + "): already assigned uninstall to group " +
                               target.entra_group_id + " by an administrator");
        } else if (live) {
          plan.notes.push_back("CONFLICT mobileApps/" + app.id + " (" + label +
                               "): an administrator assigns it to group " + target.entra_group_id + " with intent " +
                               StringOr(*live, "intent", "?") +
                               "; left alone (change that assignment to uninstall or remove it)");
        } else {
          op.kind = IntuneOperation::Kind::kCreateAssignment;
          op.add = {app.app_id};
          op.body = Json{{"@odata.type", "#microsoft.graph.mobileAppAssignment"},
                         {"intent", "uninstall"},
                         {"target", {{"@odata.type", kGroupTargetType}, {"groupId", target.entra_group_id}}}};
          plan.operations.push_back(std::move(op));
        }
      } else if (!wanted && !owned_id.empty()) {
        op.kind = IntuneOperation::Kind::kDeleteAssignment;
        op.assignment_id = owned_id;
        op.remove = {app.app_id};
        plan.operations.push_back(std::move(op));
      } else if (!wanted && mentioned) {
        plan.notes.push_back("mobileApps/" + app.id + " (" + label + "): not banned for group " +
                             target.entra_group_id + " (waived, report-only or not in scope)");
      }
    }
  }
  for (const auto& [id, rules] : banned.ios) {
    if (!catalogued_ios.count(id)) {
      plan.notes.push_back("ios:" + id +
                           " is not in Intune's app catalogue: no uninstall assignment possible "
                           "(Intune uninstalls only apps it manages)");
    }
  }
  for (const auto& [id, rules] : banned.android) {
    if (!catalogued_android.count(id)) {
      plan.notes.push_back("android:" + id +
                           " is not in Intune's app catalogue: no uninstall assignment possible "
                           "(Intune uninstalls only apps it manages)");
    }
  }

  // 2 and 3. The iOS lists, per object, wanting the union over the targets that name it.
  std::map<std::string, std::set<std::string>> compliance_wanted, configuration_wanted;
  for (const IntuneTarget& target : targets) {
    std::set<std::string> wanted;
    for (const auto& [id, rules] : banned.ios) {
      if (Bans(index, policy::Platform::kIos, id, target.groups, now)) wanted.insert(id);
    }
    if (!target.ios_compliance_policy_id.empty()) {
      compliance_wanted[target.ios_compliance_policy_id].insert(wanted.begin(), wanted.end());
    }
    if (!target.ios_device_configuration_id.empty()) {
      configuration_wanted[target.ios_device_configuration_id].insert(wanted.begin(), wanted.end());
    }
  }
  for (const auto& [id, wanted] : compliance_wanted) {
    auto live = snapshot.compliance_policies.find(id);
    if (live == snapshot.compliance_policies.end()) continue;  // read error reported above
    const std::string object = "deviceCompliancePolicies/" + id;
    if (StringOr(live->second, "@odata.type") != kIosCompliancePolicyType) {
      plan.errors.push_back(object + ": not an iosCompliancePolicy (" + StringOr(live->second, "@odata.type", "?") +
                            ")");
      continue;
    }
    const Json& current = ListOf(live->second, "restrictedApps");
    auto owned_it = state.compliance.find(id);
    auto pending_it = state.pending_lists.find("compliance:" + id);
    std::set<std::string> owned =
        ResolveList(owned_it == state.compliance.end() ? std::set<std::string>{} : owned_it->second,
                    pending_it == state.pending_lists.end() ? nullptr : &pending_it->second, current);
    ListChange change = PlanList(current, wanted, owned, object, plan.notes);
    if (change.list.size() > kMaxRestrictedApps) {
      plan.errors.push_back(object + ": restrictedApps would hold " + std::to_string(change.list.size()) +
                            " apps; Graph allows at most " + std::to_string(kMaxRestrictedApps));
      continue;
    }
    if (owned.empty()) {
      plan.resolved.compliance.erase(id);
    } else {
      plan.resolved.compliance[id] = owned;
    }
    if (!change.changed) continue;
    IntuneOperation op;
    op.kind = IntuneOperation::Kind::kPatchCompliancePolicy;
    op.object = id;
    op.add = change.add;
    op.remove = change.remove;
    op.owned_after = change.owned_after;
    op.body = Json{{"@odata.type", kIosCompliancePolicyType}, {"restrictedApps", change.list}};
    plan.operations.push_back(std::move(op));
  }
  for (const auto& [id, wanted] : configuration_wanted) {
    auto live = snapshot.configurations.find(id);
    if (live == snapshot.configurations.end()) continue;
    const std::string object = "deviceConfigurations/" + id;
    if (StringOr(live->second, "@odata.type") != kIosGeneralConfigurationType) {
      plan.errors.push_back(object + ": not an iosGeneralDeviceConfiguration (" +
                            StringOr(live->second, "@odata.type", "?") + ")");
      continue;
    }
    const Json& current = ListOf(live->second, "appsVisibilityList");
    const std::string list_type = StringOr(live->second, "appsVisibilityListType", "none");
    auto owned_it = state.configurations.find(id);
    auto pending_it = state.pending_lists.find("configuration:" + id);
    std::set<std::string> owned =
        ResolveList(owned_it == state.configurations.end() ? std::set<std::string>{} : owned_it->second,
                    pending_it == state.pending_lists.end() ? nullptr : &pending_it->second, current);
    const bool type_ours = state.list_type_set.count(id) > 0;
    if (list_type != kHiddenListType && !(list_type == "none" && current.empty())) {
      if (!wanted.empty() || !owned.empty()) {
        plan.notes.push_back("CONFLICT " + object + ": appsVisibilityListType is " + list_type +
                             " (an allow list): appban hides apps only in a hidden-apps list; left alone");
      }
      plan.resolved.configurations.erase(id);
      plan.resolved.list_type_set.erase(id);
      continue;
    }
    ListChange change = PlanList(current, wanted, owned, object, plan.notes);
    if (owned.empty()) {
      plan.resolved.configurations.erase(id);
    } else {
      plan.resolved.configurations[id] = owned;
    }
    IntuneOperation op;
    op.kind = IntuneOperation::Kind::kPatchConfiguration;
    op.object = id;
    op.list_type_set_after = type_ours;
    Json body{{"@odata.type", kIosGeneralConfigurationType}, {"appsVisibilityList", change.list}};
    if (list_type == "none" && !change.list.empty()) {
      body["appsVisibilityListType"] = kHiddenListType;  // an empty list of type none: appban makes it a hidden list
      op.list_type_set_after = true;
      change.changed = true;
    } else if (type_ours && change.list.empty() && list_type == kHiddenListType) {
      body["appsVisibilityListType"] = "none";  // back to how appban found it
      op.list_type_set_after = false;
      change.changed = true;
    }
    if (!type_ours && list_type == kHiddenListType) op.list_type_set_after = false;
    if (!change.changed) continue;
    op.add = change.add;
    op.remove = change.remove;
    op.owned_after = change.owned_after;
    op.body = std::move(body);
    plan.operations.push_back(std::move(op));
  }
  plan.state_changes = !(plan.resolved == state);
  return plan;
}

}  // namespace appban::mdm
