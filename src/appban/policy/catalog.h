// The catalog of government app bans (data/catalog/government-app-bans.json): public decisions by
// Canada and allied governments, each with its authority, instrument, rationale, source and the
// apps it names. Users list it, compare jurisdictions, and adopt an entry as draft rules.
//
// Identifier status: the source marks each app "V" (identifier seen in a public source) or "B"
// (believed, unverified), possibly with exceptions ("V except com.kaspersky.security.cloud (B)",
// "V except iOS bundle (B)"). Parsing resolves that per identifier; an unverified identifier stays
// marked (Target::unverified) in adopted rules and in every listing. A status text we cannot
// parse marks every identifier of that app unverified, never the reverse.
//
// Other platforms: a decision names the apps where its scope lies (phones, usually), but a banned
// app often exists elsewhere too — WeChat's Linux packages, Kaspersky Endpoint Security for Linux.
// An app may list them in "other_platforms": [{"platform": "deb"|"flatpak"|"snap", "id": …,
// "status": "V"|"B", "source": "https://…"}], each with its own status and the public source that
// names it. They are adopted like the others (a rule then applies to Linux devices too) and their
// sources join the rule's references.
//
// Jurisdiction matching (catalog diff): a two-letter code matches entries whose id starts with
// that code and '-' ("ca" -> ca-tiktok-2023; GB is accepted for the "uk-" entries); anything
// longer matches jurisdictions starting with that text, case-insensitively ("Canada").
// Pure functions over parsed values; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/policy/model.h"

namespace appban::policy {

struct CatalogIdentifier {
  TargetKind kind = TargetKind::kAndroidPackage;
  std::string value;
  bool verified = true;
  std::string source;  // the public source naming it (other_platforms entries); empty: the entry's
};

struct CatalogApp {
  std::string name;
  std::string vendor;
  std::string vendor_country;
  std::vector<CatalogIdentifier> identifiers;  // android packages, iOS bundle ids, then other platforms
  std::vector<std::string> app_store_ids;
  std::string id_status;  // the source's own text
};

struct CatalogEntry {
  std::string id;
  std::string jurisdiction;
  std::string authority;
  std::string instrument;
  std::vector<CatalogApp> apps;
  std::string scope;
  std::string announced;
  std::string effective;  // free text; a leading YYYY-MM-DD is the effective date
  std::string rationale;
  std::string source_url;
};

struct Catalog {
  std::vector<CatalogEntry> entries;
  const CatalogEntry* Find(std::string_view id) const;
};

Result<Catalog> ParseCatalog(std::string_view json_text);
Result<Catalog> LoadCatalogFile(const std::string& path);

// The default catalog file: $APPBAN_CATALOG, else <binary dir>/../share/appban/catalog/…, else
// data/catalog/… in the source tree found by walking up from the binary's directory.
Result<std::string> DefaultCatalogPath();

bool JurisdictionMatches(const CatalogEntry& entry, std::string_view query);
std::vector<const CatalogEntry*> EntriesFor(const Catalog& catalog, std::string_view jurisdiction);

// One app in a diff: the apps are grouped across entries by their identifiers (two entries name
// the same app when they share an identifier) or, lacking identifiers, by name.
struct DiffApp {
  std::string name;
  std::vector<std::string> identifiers;
  std::vector<std::string> entry_ids;  // the entries on that side that ban it
};
struct CatalogDiff {
  std::vector<DiffApp> theirs_only;  // they ban it, we do not
  std::vector<DiffApp> ours_only;    // we ban it, they do not
  std::vector<DiffApp> both;
};
Result<CatalogDiff> DiffJurisdictions(const Catalog& catalog, std::string_view ours, std::string_view theirs);

// Our rules against the catalog (the console's side-by-side view): for each entry, which of our
// rules ban each of its apps. The sameness is the diff's: an app is the one a rule bans when the
// rule targets one of its identifiers (by value, as AppGroups groups apps across entries). A rule
// adopted from the entry (Rule::source) covers it too. Revoked rules ban nothing and are left out;
// vendor targets are not expanded (that needs the vendor records, which the caller holds).
struct RuleMatch {
  std::string rule_id;
  RuleState state = RuleState::kDraft;
  friend bool operator==(const RuleMatch&, const RuleMatch&) = default;
};
struct EntryCoverage {
  const CatalogEntry* entry = nullptr;
  std::vector<std::vector<RuleMatch>> apps;  // one list per entry->apps[i], in rule id order
  std::vector<RuleMatch> adopted_as;         // rules whose source is this entry
};
std::vector<EntryCoverage> CoverageByRules(const std::vector<const CatalogEntry*>& entries,
                                           const std::vector<Rule>& rules);

// The JSON of an entry as `appban catalog list --json` prints it: identifiers carry "verified".
Json CatalogEntryToJson(const CatalogEntry& entry);

// Draft rule from one catalog entry: every app's identifiers as targets (unverified ones marked),
// rationale, authority, instrument, effective date and source filled in. The rule id is the entry
// id; it still needs proposing, approval and publishing. Vendor records (one per vendor named)
// come alongside so vendor targets can be added later.
struct Adoption {
  Rule rule;
  std::vector<Vendor> vendors;
};
Result<Adoption> AdoptEntry(const CatalogEntry& entry, Action action);

}  // namespace appban::policy
