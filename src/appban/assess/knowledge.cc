// Loading and validating the knowledge base: tracker signatures (Exodus shape), the capability
// table, the vendor registry and packer signatures. Every file is untrusted (an organisation may
// supply its own), so each is size-bounded, parsed without exceptions escaping, and every error
// names the entry and field at fault.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "appban/assess/analysis.h"
#include "appban/assess/pattern.h"
#include "appban/common/crypto.h"
#include "appban/common/file.h"

namespace appban::assess {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kMaxKnowledgeFileBytes = 32ull << 20;
constexpr size_t kMaxTrackers = 20000;
constexpr size_t kMaxSignatureLength = 8192;
// Signatures that are not plain names fall back to the pattern matcher, whose cost per class name
// grows with the pattern's length. The shipped Exodus file needs ~1 KB of such patterns; 64 KiB
// keeps a hostile or careless file from turning one assessment into hours of matching.
constexpr size_t kMaxPatternBytes = 64 << 10;
// Shortest anchored code prefix worth matching: "com.a." would flag half of all apps.
constexpr size_t kMinCodePrefixChars = 6;
constexpr size_t kMinCodePrefixComponents = 2;
// Shortest infix (".tealium.") text, dots excluded.
constexpr size_t kMinCodeInfixChars = 6;
// Shortest network alternative ("a4.tl").
constexpr size_t kMinNetworkChars = 4;

Result<Json> ParseJsonText(std::string_view text, const std::string& source) {
  if (text.size() > kMaxKnowledgeFileBytes) {
    return Status::LimitExceeded(source + ": " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                                 std::to_string(kMaxKnowledgeFileBytes));
  }
  Json parsed = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Status::Corruption(source + ": not valid JSON");
  return parsed;
}

std::string_view JsonTypeName(const Json& value) { return value.type_name(); }

// Reads field `key` of `object` as a string; `where` prefixes errors ("tracker \"12\" (Ligatus)").
Result<std::string> StringField(const Json& object, const char* key, const std::string& where, bool required = true) {
  auto it = object.find(key);
  if (it == object.end()) {
    if (!required) return std::string();
    return Status::InvalidArgument(where + ": missing field \"" + key + "\"");
  }
  if (!it->is_string()) {
    return Status::InvalidArgument(where + ": field \"" + key + "\" must be a string, got " +
                                   std::string(JsonTypeName(*it)));
  }
  return it->get<std::string>();
}

Result<std::vector<std::string>> StringListField(const Json& object, const char* key, const std::string& where) {
  std::vector<std::string> out;
  auto it = object.find(key);
  if (it == object.end()) return out;
  if (!it->is_array()) {
    return Status::InvalidArgument(where + ": field \"" + key + "\" must be an array of strings, got " +
                                   std::string(JsonTypeName(*it)));
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& item = (*it)[i];
    if (!item.is_string() || item.get_ref<const std::string&>().empty()) {
      return Status::InvalidArgument(where + ": field \"" + key + "\" item " + std::to_string(i) +
                                     " must be a non-empty string");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<std::string> SplitAlternatives(std::string_view signature) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= signature.size()) {
    size_t bar = signature.find('|', start);
    if (bar == std::string_view::npos) bar = signature.size();
    std::string_view part = signature.substr(start, bar - start);
    while (!part.empty() && std::isspace(static_cast<unsigned char>(part.front()))) part.remove_prefix(1);
    while (!part.empty() && std::isspace(static_cast<unsigned char>(part.back()))) part.remove_suffix(1);
    if (!part.empty()) out.emplace_back(part);
    start = bar + 1;
  }
  return out;
}

bool IsRegexSyntax(char c) { return std::string_view("[]()*+?{}^$\\|").find(c) != std::string_view::npos; }

bool IsPlain(std::string_view text) { return std::none_of(text.begin(), text.end(), IsRegexSyntax); }

// Validates a regex alternative: Ok and true when it can be run; Ok and false (with `skipped`
// noted) when it is valid regex syntax we do not support; an error when it is malformed.
Result<bool> CheckPattern(const std::string& alternative, const std::string& where, const char* field,
                          TrackerSet* set) {
  std::vector<std::string> warnings;
  auto compiled = SignaturePattern::Compile(alternative, &warnings);
  if (!compiled.ok()) {
    if (compiled.status().code() == StatusCode::kUnsupported) {
      set->skipped.push_back(where + ": " + field + " alternative \"" + alternative +
                             "\" skipped: " + compiled.status().message());
      return false;
    }
    return Status::InvalidArgument(where + ": field \"" + field + "\": bad regular expression \"" + alternative +
                                   "\": " + compiled.status().message());
  }
  for (const std::string& warning : warnings) {
    set->warnings.push_back(where + ": " + field + " \"" + alternative + "\": " + warning);
  }
  return true;
}

Status ClassifyCodeSignature(TrackerSignature* tracker, const std::string& where, TrackerSet* set) {
  for (const std::string& alternative : SplitAlternatives(tracker->code_signature)) {
    if (!IsPlain(alternative)) {
      APPBAN_ASSIGN_OR_RETURN(bool usable, CheckPattern(alternative, where, "code_signature", set));
      if (usable) tracker->code_patterns.push_back(alternative);
      continue;
    }
    auto skip = [&](std::string why) {
      set->skipped.push_back(where + ": code_signature alternative \"" + alternative + "\" skipped: " + why);
    };
    std::string letters;
    std::copy_if(alternative.begin(), alternative.end(), std::back_inserter(letters), [](char c) { return c != '.'; });
    if (alternative.front() == '.') {
      if (letters.size() < kMinCodeInfixChars) {
        skip("infix shorter than " + std::to_string(kMinCodeInfixChars) + " characters");
      } else {
        tracker->code_infixes.push_back(alternative);
      }
      continue;
    }
    std::string_view body = alternative;
    if (body.back() == '.') body.remove_suffix(1);
    size_t components = 0;
    bool empty_component = false;
    size_t start = 0;
    while (start <= body.size()) {
      size_t dot = body.find('.', start);
      if (dot == std::string_view::npos) dot = body.size();
      if (dot == start) empty_component = true;
      ++components;
      start = dot + 1;
    }
    if (empty_component) {
      skip("empty package component");
    } else if (components < kMinCodePrefixComponents || alternative.size() < kMinCodePrefixChars) {
      skip("fewer than " + std::to_string(kMinCodePrefixComponents) + " package components or " +
           std::to_string(kMinCodePrefixChars) + " characters would match unrelated code");
    } else {
      tracker->code_prefixes.push_back(alternative);
    }
  }
  return Status::Ok();
}

Status ClassifyNetworkSignature(TrackerSignature* tracker, const std::string& where, TrackerSet* set) {
  for (const std::string& alternative : SplitAlternatives(tracker->network_signature)) {
    if (!IsPlain(alternative)) {
      APPBAN_ASSIGN_OR_RETURN(bool usable, CheckPattern(alternative, where, "network_signature", set));
      if (usable) tracker->network_patterns.push_back(alternative);
      continue;
    }
    std::string domain = alternative;
    std::transform(domain.begin(), domain.end(), domain.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    while (!domain.empty() && domain.front() == '.') domain.erase(domain.begin());
    while (!domain.empty() && domain.back() == '.') domain.pop_back();
    if (domain.size() < kMinNetworkChars) {
      set->skipped.push_back(where + ": network_signature alternative \"" + alternative + "\" skipped: shorter than " +
                             std::to_string(kMinNetworkChars) + " characters");
      continue;
    }
    tracker->network_domains.push_back(domain);
  }
  return Status::Ok();
}

Result<CapabilitySpec> ParseCapability(const Json& item, const std::string& where) {
  CapabilitySpec spec;
  APPBAN_ASSIGN_OR_RETURN(spec.id, StringField(item, "id", where));
  const std::string named = where + " (" + spec.id + ")";
  APPBAN_ASSIGN_OR_RETURN(spec.title, StringField(item, "title", named));
  APPBAN_ASSIGN_OR_RETURN(spec.description, StringField(item, "description", named, /*required=*/false));
  APPBAN_ASSIGN_OR_RETURN(std::string severity, StringField(item, "severity", named));
  bool known = false;
  for (Severity s : {Severity::kInfo, Severity::kLow, Severity::kMedium, Severity::kHigh, Severity::kCritical}) {
    if (SeverityName(s) == severity) {
      spec.severity = s;
      known = true;
    }
  }
  if (!known) return Status::InvalidArgument(named + ": field \"severity\": unknown severity \"" + severity + "\"");
  APPBAN_ASSIGN_OR_RETURN(spec.permissions, StringListField(item, "permissions", named));
  APPBAN_ASSIGN_OR_RETURN(spec.service_permissions, StringListField(item, "service_permissions", named));
  APPBAN_ASSIGN_OR_RETURN(spec.apis, StringListField(item, "apis", named));
  APPBAN_ASSIGN_OR_RETURN(spec.strings, StringListField(item, "strings", named));
  APPBAN_ASSIGN_OR_RETURN(spec.files, StringListField(item, "files", named));
  for (const std::string& api : spec.apis) {
    const bool is_type = api.size() > 2 && api.front() == 'L' && api.find(';') != std::string::npos;
    const size_t semicolon = api.find(';');
    const bool well_formed = is_type && (semicolon + 1 == api.size() || api.compare(semicolon + 1, 2, "->") == 0);
    if (!well_formed) {
      return Status::InvalidArgument(named + ": field \"apis\": \"" + api +
                                     "\" is not \"Lpkg/Class;\", \"Lpkg/Class;->\" or \"Lpkg/Class;->method\"");
    }
  }
  if (spec.apis.empty() && spec.strings.empty() && spec.files.empty() && spec.permissions.empty() &&
      spec.service_permissions.empty()) {
    return Status::InvalidArgument(named + ": no permissions, apis, strings or files: it could never be detected");
  }
  return spec;
}

Result<Vendor> ParseVendor(const Json& item, const std::string& where) {
  Vendor vendor;
  APPBAN_ASSIGN_OR_RETURN(vendor.id, StringField(item, "id", where));
  const std::string named = where + " (" + vendor.id + ")";
  APPBAN_ASSIGN_OR_RETURN(vendor.name, StringField(item, "name", named));
  APPBAN_ASSIGN_OR_RETURN(vendor.country, StringField(item, "country", named));
  APPBAN_ASSIGN_OR_RETURN(vendor.note, StringField(item, "note", named, /*required=*/false));
  APPBAN_ASSIGN_OR_RETURN(vendor.package_prefixes, StringListField(item, "package_prefixes", named));
  APPBAN_ASSIGN_OR_RETURN(vendor.unverified_package_prefixes,
                          StringListField(item, "unverified_package_prefixes", named));
  APPBAN_ASSIGN_OR_RETURN(vendor.signer_sha256, StringListField(item, "signer_sha256", named));
  APPBAN_ASSIGN_OR_RETURN(vendor.certificate_organizations, StringListField(item, "certificate_organizations", named));
  APPBAN_ASSIGN_OR_RETURN(vendor.apple_team_ids, StringListField(item, "apple_team_ids", named));
  APPBAN_ASSIGN_OR_RETURN(std::vector<std::string> team_sources, StringListField(item, "apple_team_id_sources", named));
  for (const std::string& team : vendor.apple_team_ids) {
    if (team.size() != 10 || !std::all_of(team.begin(), team.end(),
                                          [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); })) {
      return Status::InvalidArgument(named + ": field \"apple_team_ids\": \"" + team +
                                     "\" is not an Apple Team ID (10 upper-case letters and digits)");
    }
  }
  if (!vendor.apple_team_ids.empty() && team_sources.empty()) {
    return Status::InvalidArgument(named +
                                   ": \"apple_team_ids\" needs \"apple_team_id_sources\" (where each was published)");
  }
  for (std::string& fingerprint : vendor.signer_sha256) {
    std::string hex;
    for (char c : fingerprint) {
      if (c == ':') continue;
      if (!std::isxdigit(static_cast<unsigned char>(c))) hex.clear(), hex.push_back('!');
      hex.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    if (hex.size() != 64 || hex.find('!') != std::string::npos) {
      return Status::InvalidArgument(named + ": field \"signer_sha256\": \"" + fingerprint +
                                     "\" is not a SHA-256 fingerprint (64 hex digits)");
    }
    fingerprint = hex;
  }
  for (const std::string& unverified : vendor.unverified_package_prefixes) {
    if (std::find(vendor.package_prefixes.begin(), vendor.package_prefixes.end(), unverified) ==
        vendor.package_prefixes.end()) {
      return Status::InvalidArgument(named + ": field \"unverified_package_prefixes\": \"" + unverified +
                                     "\" is not one of package_prefixes");
    }
  }
  return vendor;
}

Result<PackerSignature> ParsePacker(const Json& item, const std::string& where) {
  PackerSignature packer;
  APPBAN_ASSIGN_OR_RETURN(packer.id, StringField(item, "id", where));
  const std::string named = where + " (" + packer.id + ")";
  APPBAN_ASSIGN_OR_RETURN(packer.name, StringField(item, "name", named));
  APPBAN_ASSIGN_OR_RETURN(packer.note, StringField(item, "note", named, /*required=*/false));
  APPBAN_ASSIGN_OR_RETURN(packer.native_libraries, StringListField(item, "native_libraries", named));
  APPBAN_ASSIGN_OR_RETURN(packer.classes, StringListField(item, "classes", named));
  APPBAN_ASSIGN_OR_RETURN(packer.assets, StringListField(item, "assets", named));
  for (const std::string& cls : packer.classes) {
    if (cls.front() != 'L') {
      return Status::InvalidArgument(named + ": field \"classes\": \"" + cls +
                                     "\" is not a DEX descriptor prefix (\"Lcom/stub/\")");
    }
  }
  if (packer.native_libraries.empty() && packer.classes.empty() && packer.assets.empty()) {
    return Status::InvalidArgument(named + ": no native_libraries, classes or assets: it could never be detected");
  }
  return packer;
}

// Parses {"<list_key>": [ {...}, ... ]} with `parse_one`, requiring unique ids.
template <typename T, typename ParseOne>
Result<std::vector<T>> ParseList(const Json& root, const char* list_key, const std::string& source,
                                 ParseOne parse_one) {
  if (!root.is_object()) return Status::InvalidArgument(source + ": top level must be a JSON object");
  auto list = root.find(list_key);
  if (list == root.end() || !list->is_array()) {
    return Status::InvalidArgument(source + ": missing array \"" + list_key + "\"");
  }
  std::vector<T> out;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string where = source + ": " + list_key + "[" + std::to_string(i) + "]";
    if (!(*list)[i].is_object()) return Status::InvalidArgument(where + ": must be an object");
    APPBAN_ASSIGN_OR_RETURN(T item, parse_one((*list)[i], where));
    for (const T& earlier : out) {
      if (earlier.id == item.id) return Status::InvalidArgument(where + ": duplicate id \"" + item.id + "\"");
    }
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace

std::string DescribeSignatureFile(const std::string& source, size_t signatures, std::string_view text) {
  std::string name = std::filesystem::path(source).filename().string();
  return (name.empty() ? source : name) + ": " + std::to_string(signatures) + " signatures, SHA-256 " +
         Sha256Hex(AsBytes(text)).substr(0, 16);
}

Result<TrackerSet> ParseTrackers(std::string_view json_text, std::string source) {
  APPBAN_ASSIGN_OR_RETURN(Json root, ParseJsonText(json_text, source));
  if (!root.is_object()) return Status::InvalidArgument(source + ": top level must be a JSON object");
  auto trackers = root.find("trackers");
  if (trackers == root.end() || !trackers->is_object()) {
    return Status::InvalidArgument(source +
                                   ": missing object \"trackers\" (Exodus shape {\"trackers\": {\"<id>\": {...}}})");
  }
  if (trackers->size() > kMaxTrackers) {
    return Status::LimitExceeded(source + ": " + std::to_string(trackers->size()) + " trackers exceeds the limit of " +
                                 std::to_string(kMaxTrackers));
  }
  TrackerSet set;
  set.source = source;
  size_t pattern_bytes = 0;
  for (auto it = trackers->begin(); it != trackers->end(); ++it) {
    std::string where = source + ": tracker \"" + it.key() + "\"";
    const Json& entry = it.value();
    if (!entry.is_object()) return Status::InvalidArgument(where + ": must be an object");
    TrackerSignature tracker;
    auto id = entry.find("id");
    if (id == entry.end()) return Status::InvalidArgument(where + ": missing field \"id\"");
    if (!id->is_number_integer() || id->get<int64_t>() < 0 || id->get<int64_t>() > 1'000'000'000) {
      return Status::InvalidArgument(where + ": field \"id\" must be a non-negative integer, got " + id->dump());
    }
    tracker.id = static_cast<int>(id->get<int64_t>());
    if (it.key() != std::to_string(tracker.id)) {
      return Status::InvalidArgument(where + ": field \"id\" is " + std::to_string(tracker.id) +
                                     " but the entry's key is \"" + it.key() + "\"");
    }
    APPBAN_ASSIGN_OR_RETURN(tracker.name, StringField(entry, "name", where));
    if (tracker.name.empty()) return Status::InvalidArgument(where + ": field \"name\" is empty");
    where += " (" + tracker.name + ")";
    APPBAN_ASSIGN_OR_RETURN(tracker.website, StringField(entry, "website", where, /*required=*/false));
    APPBAN_ASSIGN_OR_RETURN(tracker.code_signature, StringField(entry, "code_signature", where));
    APPBAN_ASSIGN_OR_RETURN(tracker.network_signature, StringField(entry, "network_signature", where));
    for (const auto* field : {&tracker.code_signature, &tracker.network_signature}) {
      if (field->size() > kMaxSignatureLength) {
        return Status::LimitExceeded(where + ": a signature of " + std::to_string(field->size()) +
                                     " characters exceeds the limit of " + std::to_string(kMaxSignatureLength));
      }
    }
    APPBAN_RETURN_IF_ERROR(ClassifyCodeSignature(&tracker, where, &set));
    APPBAN_RETURN_IF_ERROR(ClassifyNetworkSignature(&tracker, where, &set));
    for (const auto* patterns : {&tracker.code_patterns, &tracker.network_patterns}) {
      for (const std::string& pattern : *patterns) pattern_bytes += pattern.size();
    }
    if (pattern_bytes > kMaxPatternBytes) {
      return Status::LimitExceeded(where + ": regular-expression signatures add up to more than " +
                                   std::to_string(kMaxPatternBytes) +
                                   " bytes; write signatures as plain dotted prefixes (com.example.) where possible");
    }
    set.trackers.push_back(std::move(tracker));
  }
  std::sort(set.trackers.begin(), set.trackers.end(),
            [](const TrackerSignature& a, const TrackerSignature& b) { return a.id < b.id; });
  set.description = DescribeSignatureFile(source, set.trackers.size(), json_text);
  return set;
}

Result<TrackerSet> LoadTrackers(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxKnowledgeFileBytes));
  return ParseTrackers(text, path);
}

Result<std::vector<CapabilitySpec>> ParseCapabilities(std::string_view json_text, const std::string& source) {
  APPBAN_ASSIGN_OR_RETURN(Json root, ParseJsonText(json_text, source));
  return ParseList<CapabilitySpec>(root, "capabilities", source, ParseCapability);
}

Result<std::vector<Vendor>> ParseVendors(std::string_view json_text, const std::string& source) {
  APPBAN_ASSIGN_OR_RETURN(Json root, ParseJsonText(json_text, source));
  return ParseList<Vendor>(root, "vendors", source, ParseVendor);
}

Result<std::vector<PackerSignature>> ParsePackers(std::string_view json_text, const std::string& source) {
  APPBAN_ASSIGN_OR_RETURN(Json root, ParseJsonText(json_text, source));
  return ParseList<PackerSignature>(root, "packers", source, ParsePacker);
}

Result<KnowledgeBase> LoadKnowledgeBase(const std::string& data_dir, const std::string& trackers_override) {
  namespace fs = std::filesystem;
  auto read = [&](const char* name) {
    return ReadFileToString((fs::path(data_dir) / name).string(), kMaxKnowledgeFileBytes);
  };
  auto path_of = [&](const char* name) { return (fs::path(data_dir) / name).string(); };
  KnowledgeBase knowledge;
  if (trackers_override.empty()) {
    APPBAN_ASSIGN_OR_RETURN(knowledge.trackers, LoadTrackers(path_of("trackers.json")));
  } else {
    APPBAN_ASSIGN_OR_RETURN(knowledge.trackers, LoadTrackers(trackers_override));
  }
  APPBAN_ASSIGN_OR_RETURN(std::string capabilities, read("capabilities.json"));
  APPBAN_ASSIGN_OR_RETURN(knowledge.capabilities, ParseCapabilities(capabilities, path_of("capabilities.json")));
  APPBAN_ASSIGN_OR_RETURN(std::string vendors, read("vendors.json"));
  APPBAN_ASSIGN_OR_RETURN(knowledge.vendors, ParseVendors(vendors, path_of("vendors.json")));
  APPBAN_ASSIGN_OR_RETURN(std::string packers, read("packers.json"));
  APPBAN_ASSIGN_OR_RETURN(knowledge.packers, ParsePackers(packers, path_of("packers.json")));
  return knowledge;
}

}  // namespace appban::assess
