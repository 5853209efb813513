#include "appban/policy/catalog.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "appban/common/file.h"
#include "appban/common/text.h"
#include "appban/policy/limits.h"

namespace appban::policy {
namespace {

namespace fs = std::filesystem;
constexpr std::string_view kCatalogFile = "government-app-bans.json";

// Applies the source's id_status text to an app's identifiers (see catalog.h).
void ApplyIdStatus(CatalogApp& app) {
  std::string status = app.id_status;
  auto mark_all = [&](bool verified) {
    for (auto& identifier : app.identifiers) identifier.verified = verified;
  };
  if (status == "V") return mark_all(true);
  if (status == "B") return mark_all(false);
  const std::string prefix = "V except ";
  const std::string suffix = " (B)";
  if (status.size() > prefix.size() + suffix.size() && status.starts_with(prefix) && status.ends_with(suffix)) {
    std::string what = status.substr(prefix.size(), status.size() - prefix.size() - suffix.size());
    std::optional<TargetKind> kind;
    if (AsciiLower(what) == "ios bundle") kind = TargetKind::kIosBundle;
    if (AsciiLower(what) == "android package") kind = TargetKind::kAndroidPackage;
    bool matched = false;
    for (auto& identifier : app.identifiers) {
      bool excepted = kind ? identifier.kind == *kind : identifier.value == what;
      identifier.verified = !excepted;
      matched = matched || excepted;
    }
    if (matched) return;
  }
  mark_all(false);  // unknown wording: err on the side of "unverified"
}

Result<std::string> Text(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Status::InvalidArgument(std::string("field \"") + key + "\" must be a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> Texts(const Json& object, const char* key) {
  std::vector<std::string> out;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_array()) return Status::InvalidArgument(std::string("field \"") + key + "\" must be an array");
  for (const auto& element : *it) {
    if (!element.is_string()) return Status::InvalidArgument(std::string("field \"") + key + "\" must hold strings");
    out.push_back(element.get<std::string>());
  }
  return out;
}

// "other_platforms": identifiers of the same app on platforms the decision did not name.
Status ParseOtherPlatforms(const Json& json, CatalogApp& app) {
  auto others = json.find("other_platforms");
  if (others == json.end() || others->is_null()) return Status::Ok();
  if (!others->is_array()) return Status::InvalidArgument("field \"other_platforms\" must be an array");
  for (const auto& element : *others) {
    if (!element.is_object()) return Status::InvalidArgument("other_platforms: each entry must be an object");
    APPBAN_ASSIGN_OR_RETURN(std::string platform, Text(element, "platform"));
    APPBAN_ASSIGN_OR_RETURN(std::string id, Text(element, "id"));
    APPBAN_ASSIGN_OR_RETURN(std::string status, Text(element, "status"));
    APPBAN_ASSIGN_OR_RETURN(std::string source, Text(element, "source"));
    std::optional<TargetKind> kind;
    if (platform == "deb") kind = TargetKind::kDebPackage;
    if (platform == "flatpak") kind = TargetKind::kFlatpakApp;
    if (platform == "snap") kind = TargetKind::kSnapName;
    if (!kind) {
      return Status::InvalidArgument("other_platforms: platform \"" + platform + "\" of " + id +
                                     " is not one appban enforces (deb, flatpak, snap)");
    }
    if (status != "V" && status != "B") {
      return Status::InvalidArgument("other_platforms: " + id + " has status \"" + status + "\"; use V or B");
    }
    if (!source.starts_with("https://")) {
      return Status::InvalidArgument("other_platforms: " + id + " needs an https:// source naming it");
    }
    APPBAN_RETURN_IF_ERROR(MakeTarget(*kind, id).status());
    app.identifiers.push_back({*kind, id, status == "V", source});
  }
  return Status::Ok();
}

Result<CatalogApp> ParseApp(const Json& json) {
  if (!json.is_object()) return Status::InvalidArgument("app must be an object");
  CatalogApp app;
  APPBAN_ASSIGN_OR_RETURN(app.name, Text(json, "name"));
  APPBAN_ASSIGN_OR_RETURN(app.vendor, Text(json, "vendor"));
  APPBAN_ASSIGN_OR_RETURN(app.vendor_country, Text(json, "vendor_country"));
  APPBAN_ASSIGN_OR_RETURN(app.id_status, Text(json, "id_status"));
  APPBAN_ASSIGN_OR_RETURN(app.app_store_ids, Texts(json, "app_store_ids"));
  APPBAN_ASSIGN_OR_RETURN(auto android, Texts(json, "android_packages"));
  APPBAN_ASSIGN_OR_RETURN(auto ios, Texts(json, "ios_bundle_ids"));
  for (const auto& value : android) {
    APPBAN_RETURN_IF_ERROR(MakeTarget(TargetKind::kAndroidPackage, value).status());
    app.identifiers.push_back({TargetKind::kAndroidPackage, value, true, ""});
  }
  for (const auto& value : ios) {
    APPBAN_RETURN_IF_ERROR(MakeTarget(TargetKind::kIosBundle, value).status());
    app.identifiers.push_back({TargetKind::kIosBundle, value, true, ""});
  }
  if (app.name.empty()) return Status::InvalidArgument("app has no name");
  ApplyIdStatus(app);
  // After ApplyIdStatus: each of these carries its own status, which the app's text does not cover.
  APPBAN_RETURN_IF_ERROR(ParseOtherPlatforms(json, app));
  return app;
}

Result<CatalogEntry> ParseEntry(const Json& json) {
  if (!json.is_object()) return Status::InvalidArgument("entry must be an object");
  CatalogEntry entry;
  APPBAN_ASSIGN_OR_RETURN(entry.id, Text(json, "id"));
  APPBAN_RETURN_IF_ERROR(ValidateIdentifier(entry.id, "catalog entry id"));
  APPBAN_ASSIGN_OR_RETURN(entry.jurisdiction, Text(json, "jurisdiction"));
  APPBAN_ASSIGN_OR_RETURN(entry.authority, Text(json, "authority"));
  APPBAN_ASSIGN_OR_RETURN(entry.instrument, Text(json, "instrument"));
  APPBAN_ASSIGN_OR_RETURN(entry.scope, Text(json, "scope"));
  APPBAN_ASSIGN_OR_RETURN(entry.announced, Text(json, "announced"));
  APPBAN_ASSIGN_OR_RETURN(entry.effective, Text(json, "effective"));
  APPBAN_ASSIGN_OR_RETURN(entry.rationale, Text(json, "rationale"));
  APPBAN_ASSIGN_OR_RETURN(entry.source_url, Text(json, "source_url"));
  auto apps = json.find("apps");
  if (apps == json.end() || !apps->is_array())
    return Status::InvalidArgument("entry " + entry.id + " has no apps array");
  for (const auto& element : *apps) {
    auto app = ParseApp(element);
    if (!app.ok()) return app.status().WithContext("entry " + entry.id);
    entry.apps.push_back(std::move(*app));
  }
  return entry;
}

// Groups apps across entries: returns a key per app; apps sharing an identifier share a key.
struct AppGroups {
  std::map<std::string, std::string> key_of_identifier;
  std::map<std::string, DiffApp> apps;  // by key
  std::string KeyFor(const CatalogApp& app) {
    for (const auto& identifier : app.identifiers) {
      auto it = key_of_identifier.find(identifier.value);
      if (it != key_of_identifier.end()) return it->second;
    }
    std::string key = app.identifiers.empty() ? "name:" + AsciiLower(app.name) : "id:" + app.identifiers.front().value;
    for (const auto& identifier : app.identifiers) key_of_identifier.emplace(identifier.value, key);
    return key;
  }
};

}  // namespace

const CatalogEntry* Catalog::Find(std::string_view id) const {
  for (const auto& entry : entries) {
    if (entry.id == id) return &entry;
  }
  return nullptr;
}

Result<Catalog> ParseCatalog(std::string_view json_text) {
  APPBAN_ASSIGN_OR_RETURN(
      Json json, ParseJsonBounded(json_text, kPolicyLimits.max_catalog_bytes, kPolicyLimits.max_json_depth, "catalog"));
  if (!json.is_array()) return Status::InvalidArgument("catalog must be a JSON array of decisions");
  Catalog catalog;
  std::set<std::string> ids;
  for (const auto& element : json) {
    APPBAN_ASSIGN_OR_RETURN(CatalogEntry entry, ParseEntry(element));
    if (!ids.insert(entry.id).second) return Status::InvalidArgument("catalog lists entry " + entry.id + " twice");
    catalog.entries.push_back(std::move(entry));
  }
  return catalog;
}

Result<Catalog> LoadCatalogFile(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kPolicyLimits.max_catalog_bytes));
  auto catalog = ParseCatalog(text);
  if (!catalog.ok()) return catalog.status().WithContext(path);
  return catalog;
}

Result<std::string> DefaultCatalogPath() {
  if (const char* explicit_path = std::getenv("APPBAN_CATALOG"); explicit_path != nullptr && *explicit_path != '\0') {
    return std::string(explicit_path);
  }
  std::error_code error;
  fs::path binary = fs::read_symlink("/proc/self/exe", error);
  if (error) return Status::NotFound("cannot locate the running binary to find the catalog; pass --catalog FILE");
  fs::path installed = binary.parent_path().parent_path() / "share" / "appban" / "catalog" / kCatalogFile;
  if (fs::is_regular_file(installed, error)) return installed.string();
  // A build tree sits inside (or beside) the source tree: look upwards for data/catalog/.
  for (fs::path dir = binary.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    fs::path candidate = dir / "data" / "catalog" / kCatalogFile;
    if (fs::is_regular_file(candidate, error)) return candidate.string();
  }
  return Status::NotFound(
      "no catalog found next to the binary or in a source tree above it; pass --catalog FILE or set "
      "APPBAN_CATALOG");
}

bool JurisdictionMatches(const CatalogEntry& entry, std::string_view query) {
  std::string wanted = AsciiLower(query);
  if (wanted.size() == 2) {
    if (wanted == "gb") wanted = "uk";
    return entry.id.size() > 3 && AsciiLower(entry.id.substr(0, 3)) == wanted + "-";
  }
  return !wanted.empty() && AsciiLower(entry.jurisdiction).starts_with(wanted);
}

std::vector<const CatalogEntry*> EntriesFor(const Catalog& catalog, std::string_view jurisdiction) {
  std::vector<const CatalogEntry*> out;
  for (const auto& entry : catalog.entries) {
    if (JurisdictionMatches(entry, jurisdiction)) out.push_back(&entry);
  }
  return out;
}

Result<CatalogDiff> DiffJurisdictions(const Catalog& catalog, std::string_view ours, std::string_view theirs) {
  auto our_entries = EntriesFor(catalog, ours);
  auto their_entries = EntriesFor(catalog, theirs);
  if (our_entries.empty()) return Status::NotFound("no catalog entries for jurisdiction \"" + std::string(ours) + "\"");
  if (their_entries.empty())
    return Status::NotFound("no catalog entries for jurisdiction \"" + std::string(theirs) + "\"");
  AppGroups groups;
  std::map<std::string, DiffApp> our_apps, their_apps;
  auto collect = [&](const std::vector<const CatalogEntry*>& entries, std::map<std::string, DiffApp>& side) {
    for (const CatalogEntry* entry : entries) {
      for (const auto& app : entry->apps) {
        std::string key = groups.KeyFor(app);
        DiffApp& diff_app = side[key];
        if (diff_app.name.empty()) diff_app.name = app.name;
        for (const auto& identifier : app.identifiers) {
          if (std::find(diff_app.identifiers.begin(), diff_app.identifiers.end(), identifier.value) ==
              diff_app.identifiers.end()) {
            diff_app.identifiers.push_back(identifier.value);
          }
        }
        if (std::find(diff_app.entry_ids.begin(), diff_app.entry_ids.end(), entry->id) == diff_app.entry_ids.end()) {
          diff_app.entry_ids.push_back(entry->id);
        }
      }
    }
  };
  collect(our_entries, our_apps);
  collect(their_entries, their_apps);
  CatalogDiff diff;
  for (auto& [key, app] : their_apps) {
    auto ours_it = our_apps.find(key);
    if (ours_it == our_apps.end()) {
      diff.theirs_only.push_back(app);
    } else {
      DiffApp both = ours_it->second;
      for (const auto& id : app.entry_ids) both.entry_ids.push_back(id);
      diff.both.push_back(std::move(both));
    }
  }
  for (auto& [key, app] : our_apps) {
    if (their_apps.count(key) == 0) diff.ours_only.push_back(app);
  }
  return diff;
}

std::vector<EntryCoverage> CoverageByRules(const std::vector<const CatalogEntry*>& entries,
                                           const std::vector<Rule>& rules) {
  // Each target is an app of its own on our side, grouped with the diff's AppGroups: a catalog app
  // is then ours when one of its identifiers falls in a group our rules made.
  AppGroups groups;
  std::map<std::string, std::vector<RuleMatch>> rules_by_key;
  std::map<std::string, std::vector<RuleMatch>> rules_by_source;
  for (const Rule& rule : rules) {
    if (rule.state == RuleState::kRevoked) continue;
    RuleMatch match{rule.id, rule.state};
    if (!rule.source.empty()) rules_by_source[rule.source].push_back(match);
    for (const Target& target : rule.targets) {
      if (target.kind == TargetKind::kVendor) continue;
      CatalogApp ours;
      ours.name = rule.id;
      ours.identifiers.push_back({target.kind, target.value, !target.unverified, ""});
      std::vector<RuleMatch>& matches = rules_by_key[groups.KeyFor(ours)];
      if (std::find(matches.begin(), matches.end(), match) == matches.end()) matches.push_back(match);
    }
  }
  auto by_id = [](const RuleMatch& a, const RuleMatch& b) { return a.rule_id < b.rule_id; };
  std::vector<EntryCoverage> out;
  for (const CatalogEntry* entry : entries) {
    EntryCoverage coverage;
    coverage.entry = entry;
    for (const CatalogApp& app : entry->apps) {
      std::vector<RuleMatch> matches;
      for (const CatalogIdentifier& identifier : app.identifiers) {
        auto key = groups.key_of_identifier.find(identifier.value);
        if (key == groups.key_of_identifier.end()) continue;
        for (const RuleMatch& match : rules_by_key[key->second]) {
          if (std::find(matches.begin(), matches.end(), match) == matches.end()) matches.push_back(match);
        }
      }
      std::sort(matches.begin(), matches.end(), by_id);
      coverage.apps.push_back(std::move(matches));
    }
    if (auto adopted = rules_by_source.find(entry->id); adopted != rules_by_source.end()) {
      coverage.adopted_as = adopted->second;
      std::sort(coverage.adopted_as.begin(), coverage.adopted_as.end(), by_id);
    }
    out.push_back(std::move(coverage));
  }
  return out;
}

Json CatalogEntryToJson(const CatalogEntry& entry) {
  Json apps = Json::array();
  for (const CatalogApp& app : entry.apps) {
    Json ids = Json::array();
    for (const auto& id : app.identifiers) {
      ids.push_back({{"kind", TargetKindName(id.kind)}, {"value", id.value}, {"verified", id.verified}});
    }
    apps.push_back(Json{{"name", app.name},
                        {"vendor", app.vendor},
                        {"vendor_country", app.vendor_country},
                        {"identifiers", ids},
                        {"app_store_ids", app.app_store_ids},
                        {"id_status", app.id_status}});
  }
  return Json{{"id", entry.id},
              {"jurisdiction", entry.jurisdiction},
              {"authority", entry.authority},
              {"instrument", entry.instrument},
              {"apps", apps},
              {"scope", entry.scope},
              {"announced", entry.announced},
              {"effective", entry.effective},
              {"rationale", entry.rationale},
              {"source_url", entry.source_url}};
}

Result<Adoption> AdoptEntry(const CatalogEntry& entry, Action action) {
  Adoption adoption;
  Rule& rule = adoption.rule;
  rule.id = entry.id;
  std::string names;
  for (const auto& app : entry.apps) names += (names.empty() ? "" : ", ") + app.name;
  rule.title = "Ban " + names + " (" + entry.jurisdiction + ")";
  rule.action = action;
  rule.rationale = entry.rationale;
  rule.authority = entry.authority;
  rule.instrument = entry.instrument;
  rule.source = entry.id;
  if (!entry.source_url.empty()) rule.references.push_back(entry.source_url);
  if (entry.effective.size() >= 10) {
    if (auto date = ParseTimestamp(entry.effective.substr(0, 10)); date.ok()) rule.effective_at = *date;
  }
  if (!rule.effective_at || entry.effective.size() != 10) rule.effective_note = entry.effective;
  std::map<std::string, Vendor> vendors;
  for (const auto& app : entry.apps) {
    Vendor* vendor = nullptr;
    if (!app.vendor.empty()) {
      vendor = &vendors[app.vendor];
      vendor->name = app.vendor;
      vendor->country = app.vendor_country;
    }
    for (const auto& identifier : app.identifiers) {
      APPBAN_ASSIGN_OR_RETURN(Target target, MakeTarget(identifier.kind, identifier.value, !identifier.verified));
      if (std::find(rule.targets.begin(), rule.targets.end(), target) == rule.targets.end())
        rule.targets.push_back(target);
      if (!identifier.source.empty() &&
          std::find(rule.references.begin(), rule.references.end(), identifier.source) == rule.references.end())
        rule.references.push_back(identifier.source);
      if (vendor != nullptr) vendor->identifiers.push_back(target);
    }
  }
  for (auto& [name, vendor] : vendors) adoption.vendors.push_back(std::move(vendor));
  APPBAN_RETURN_IF_ERROR(ValidateRule(rule));
  return adoption;
}

}  // namespace appban::policy
