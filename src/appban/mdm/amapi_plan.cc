#include "appban/mdm/amapi_plan.h"

#include <algorithm>
#include <set>

#include "appban/mdm/limits.h"

namespace appban::mdm {
namespace {

constexpr std::string_view kBlocked = "BLOCKED";

Json BlockedEntry(std::string_view package) { return Json{{"packageName", package}, {"installType", kBlocked}}; }

bool IsBlocked(const Json& entry) {
  auto type = entry.find("installType");
  return type != entry.end() && type->is_string() && *type == kBlocked;
}

// The entry exactly as appban writes it: anything else means someone changed it since.
bool IsAppbanEntry(const Json& entry, std::string_view package) { return entry == BlockedEntry(package); }

void AddSigner(BannedPackages& out, const std::string& rule_id, const policy::Target& target) {
  out.unenforceable.push_back(
      {rule_id, policy::TargetSpec(target),
       "AMAPI blocks apps by package name only; a publisher's other packages need their own android: targets"});
}

}  // namespace

BannedPackages CollectBannedPackages(const policy::Bundle& bundle) {
  BannedPackages out;
  auto add = [&out](const std::string& package, const std::string& rule_id) {
    auto& rules = out.packages[package];
    if (std::find(rules.begin(), rules.end(), rule_id) == rules.end()) rules.push_back(rule_id);
  };
  for (const policy::Rule& rule : bundle.rules) {
    for (const policy::Target& target : rule.targets) {
      switch (target.kind) {
        case policy::TargetKind::kAndroidPackage:
          add(target.value, rule.id);
          break;
        case policy::TargetKind::kAndroidSigner:
          AddSigner(out, rule.id, target);
          break;
        case policy::TargetKind::kVendor:
          for (const policy::Vendor& vendor : bundle.vendors) {
            if (vendor.name != target.value) continue;
            for (const policy::Target& identifier : vendor.identifiers) {
              if (identifier.kind == policy::TargetKind::kAndroidPackage) add(identifier.value, rule.id);
              if (identifier.kind == policy::TargetKind::kAndroidSigner) AddSigner(out, rule.id, identifier);
            }
          }
          break;
        default:
          break;  // other platforms: not this connector's business
      }
    }
  }
  for (auto& [package, rules] : out.packages) std::sort(rules.begin(), rules.end());
  return out;
}

Result<PolicyChange> PlanPolicy(const policy::PolicyIndex& index, const BannedPackages& banned,
                                const ManagedPolicy& managed, const Json& current, const OwnedEntries& owned,
                                UnixSeconds now) {
  PolicyChange change;
  change.policy = managed.name;
  if (auto version = current.find("version"); version != current.end() && version->is_string()) {
    change.policy_version = version->get<std::string>();
  }

  Json applications = Json::array();
  if (auto it = current.find("applications"); it != current.end()) {
    if (!it->is_array()) return Status::Corruption(managed.name + ": applications is not an array");
    if (it->size() > kMdmLimits.max_applications_per_policy) {
      return Status::LimitExceeded(managed.name + ": more than " +
                                   std::to_string(kMdmLimits.max_applications_per_policy) + " applications");
    }
    applications = *it;
  }
  // Where each package's entry is (the first one, should a policy hold duplicates).
  std::map<std::string, size_t, std::less<>> position;
  for (size_t i = 0; i < applications.size(); ++i) {
    const Json& entry = applications[i];
    if (!entry.is_object())
      return Status::Corruption(managed.name + ": applications[" + std::to_string(i) + "] is not an object");
    auto name = entry.find("packageName");
    if (name != entry.end() && name->is_string()) position.emplace(name->get<std::string>(), i);
  }

  // Which packages the bundle wants blocked on this policy's devices.
  const policy::DeviceContext device{"amapi:" + managed.name, managed.groups};
  std::set<std::string, std::less<>> wanted;
  for (const auto& [package, rules] : banned.packages) {
    policy::InstalledApp app;
    app.platform = policy::Platform::kAndroid;
    app.id = package;
    policy::AppDecision decision = index.Evaluate(app, device, now);
    if (decision.verdict == policy::Verdict::kRemove || decision.verdict == policy::Verdict::kBlockInstall) {
      wanted.insert(package);
    } else if (decision.verdict == policy::Verdict::kWaived) {
      change.waived.push_back(package);
    }
  }

  bool applications_changed = false;
  std::vector<size_t> erase;  // indexes to drop, applied at the end so positions stay valid
  change.owned_after = owned;

  for (const std::string& package : wanted) {
    auto at = position.find(package);
    const bool ours = owned.find(package) != owned.end();
    if (at == position.end()) {
      applications.push_back(BlockedEntry(package));
      position.emplace(package, applications.size() - 1);
      if (!ours) change.owned_after[package] = nullptr;
      change.block.push_back(package);
      applications_changed = true;
      continue;
    }
    Json& entry = applications[at->second];
    if (ours) {
      if (!IsAppbanEntry(entry, package)) {
        // Someone changed appban's entry while the ban is in force: the ban stands. What it
        // replaced the first time is still what a revocation restores.
        entry = BlockedEntry(package);
        change.block.push_back(package);
        applications_changed = true;
      }
      continue;
    }
    if (IsBlocked(entry)) {
      change.already_blocked.push_back(package);
      continue;
    }
    change.owned_after[package] = entry;
    entry = BlockedEntry(package);
    change.block.push_back(package);
    applications_changed = true;
  }

  for (const auto& [package, previous] : owned) {
    if (wanted.count(package)) continue;
    change.owned_after.erase(package);
    auto at = position.find(package);
    if (at == position.end() || !IsAppbanEntry(applications[at->second], package)) {
      change.released.push_back(package);
      continue;
    }
    if (previous.is_null()) {
      erase.push_back(at->second);
    } else {
      applications[at->second] = previous;
    }
    change.unblock.push_back(package);
    applications_changed = true;
  }
  std::sort(erase.rbegin(), erase.rend());
  for (size_t i : erase) applications.erase(applications.begin() + static_cast<std::ptrdiff_t>(i));

  std::vector<std::string> mask;
  if (applications_changed) {
    change.patch_body["applications"] = std::move(applications);
    mask.push_back("applications");
  }
  Json reporting = Json::object();
  if (auto it = current.find("statusReportingSettings"); it != current.end() && it->is_object()) reporting = *it;
  auto enabled = reporting.find("applicationReportsEnabled");
  if (enabled == reporting.end() || *enabled != true) {
    reporting["applicationReportsEnabled"] = true;
    change.enable_application_reports = true;
    change.patch_body["statusReportingSettings"] = std::move(reporting);
    mask.push_back("statusReportingSettings");
  }
  for (size_t i = 0; i < mask.size(); ++i) change.update_mask += (i ? "," : "") + mask[i];
  return change;
}

}  // namespace appban::mdm
