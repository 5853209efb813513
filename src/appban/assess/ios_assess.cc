#include "appban/assess/ios_assess.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "appban/apk/signing.h"
#include "appban/assess/detectors.h"
#include "appban/common/file.h"
#include "appban/ios/report_json.h"

namespace appban::assess {

using Json = nlohmann::ordered_json;

namespace {

constexpr size_t kMaxEvidence = 20;

Result<std::vector<std::string>> Strings(const Json& item, const char* key, const std::string& where) {
  std::vector<std::string> out;
  auto it = item.find(key);
  if (it == item.end()) return out;
  if (!it->is_array()) return Status::InvalidArgument(where + ": field \"" + key + "\" must be an array of strings");
  for (const Json& value : *it) {
    if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
      return Status::InvalidArgument(where + ": field \"" + key + "\" must hold non-empty strings");
    }
    out.push_back(value.get<std::string>());
  }
  return out;
}

Result<std::string> Text(const Json& item, const char* key, const std::string& where) {
  auto it = item.find(key);
  if (it == item.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument(where + ": field \"" + key + "\" must be a non-empty string");
  }
  return it->get<std::string>();
}

std::string Stem(std::string_view path) {
  if (path.ends_with("/")) path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash != std::string_view::npos) path.remove_prefix(slash + 1);
  return std::string(path.substr(0, path.find('.')));
}

// Everything the detectors look at, gathered over the app and its nested bundles.
struct Facts {
  std::map<std::string, std::string> frameworks;  // name -> where (embedded bundle or linked library)
  std::map<std::string, std::string> classes;     // ObjC class (defined or imported) -> where
  std::map<std::string, std::string> selectors;   // ObjC selector (__objc_methname) -> where
  std::map<std::string, std::string> cstrings;    // __cstring text -> where (ld64.lld puts selectors there)
  std::map<std::string, std::string> functions;   // imported C function, without the leading '_' -> where
  std::map<std::string, std::string> swift_modules;
  std::vector<std::pair<std::string, std::string>> strings;  // text, where
  std::map<std::string, std::string> declared_hosts;         // privacy-manifest tracking domains -> manifest
};

Facts Gather(const ios::IosApp& app) {
  Facts facts;
  for (const ios::Bundle& bundle : app.bundles()) {
    if (bundle.kind == "framework") facts.frameworks.emplace(Stem(bundle.path), bundle.path);
    if (bundle.privacy_manifest) {
      for (const auto& domain : bundle.privacy_manifest->tracking_domains) {
        facts.declared_hosts.emplace(domain, bundle.privacy_manifest->path);
      }
    }
    if (!bundle.macho) continue;
    const std::string where = bundle.executable_path;
    for (const ios::MachOSlice& slice : bundle.macho->slices) {
      for (const auto& library : slice.libraries) {
        size_t dot = library.path.find(".framework/");
        if (dot != std::string::npos) facts.frameworks.emplace(Stem(library.path.substr(0, dot + 10)), where);
      }
      for (const auto& name : slice.objc_classes) facts.classes.emplace(name, where);
      for (const auto& symbol : slice.imported_symbols) {
        if (symbol.starts_with("_OBJC_CLASS_$_")) {
          facts.classes.emplace(symbol.substr(14), where);
        } else if (symbol.starts_with("_") && !symbol.starts_with("_OBJC_")) {
          facts.functions.emplace(symbol.substr(1), where);
        }
      }
      for (const auto& selector : slice.objc_selectors) facts.selectors.emplace(selector, where);
      for (const auto& module : slice.swift_modules) facts.swift_modules.emplace(module, where);
      for (const auto& text : slice.strings) {
        facts.strings.emplace_back(text, where);
        facts.cstrings.emplace(text, where + " (__cstring)");
      }
    }
  }
  return facts;
}

bool HostMatches(std::string_view host, std::string_view domain) {
  return host == domain ||
         (host.size() > domain.size() && host.ends_with(domain) && host[host.size() - domain.size() - 1] == '.');
}

std::vector<Finding> IosTrackerFindings(const Facts& facts, const EndpointScan& scan, const IosKnowledge& knowledge,
                                        std::vector<TrackerMatch>* matches) {
  std::vector<Finding> out;
  for (const IosTrackerSignature& tracker : knowledge.trackers) {
    std::vector<Evidence> evidence;
    TrackerMatch match;
    match.name = tracker.name;
    match.website = tracker.website;
    for (const auto& name : tracker.frameworks) {
      if (auto it = facts.frameworks.find(name); it != facts.frameworks.end()) {
        evidence.push_back({"framework", name, it->second, ""});
      }
    }
    for (const auto& [name, where] : facts.classes) {
      for (const auto& prefix : tracker.class_prefixes) {
        if (name.starts_with(prefix)) {
          ++match.class_count;
          if (match.classes.size() < kMaxEvidence) {
            match.classes.push_back(name);
            evidence.push_back({"class", name, where, ""});
          }
          break;
        }
      }
    }
    for (const auto& name : tracker.swift_modules) {
      if (auto it = facts.swift_modules.find(name); it != facts.swift_modules.end()) {
        evidence.push_back({"swift_module", name, it->second, ""});
      }
    }
    std::set<std::string> hosts;
    for (const auto& [host, where] : facts.declared_hosts) {
      for (const auto& domain : tracker.hosts) {
        if (HostMatches(host, domain) && hosts.insert(host).second) {
          evidence.push_back({"host", host, where, "declared tracking domain"});
        }
      }
    }
    for (const auto& sighting : scan.host_sightings) {
      for (const auto& domain : tracker.hosts) {
        if (HostMatches(sighting.value, domain) && hosts.insert(sighting.value).second) {
          evidence.push_back({"host", sighting.value, sighting.location, "endpoint of " + tracker.name});
        }
      }
    }
    if (evidence.empty()) continue;
    match.hosts.assign(hosts.begin(), hosts.end());
    if (tracker.finding_id.starts_with("tracker.") && tracker.finding_id.size() > 8 &&
        std::all_of(tracker.finding_id.begin() + 8, tracker.finding_id.end(), ::isdigit)) {
      match.id = std::stoi(tracker.finding_id.substr(8));
    }
    matches->push_back(match);
    Finding finding;
    finding.id = tracker.finding_id;
    finding.category = "tracker";
    finding.severity = Severity::kMedium;
    finding.title = "Tracker SDK: " + tracker.name;
    finding.description = "The app ships the " + tracker.name +
                          " SDK (found by framework, class, Swift module or host name). Tracker SDKs collect usage "
                          "and device data and send it to their operator." +
                          (tracker.website.empty() ? "" : " See " + tracker.website + ".");
    finding.evidence = std::move(evidence);
    out.push_back(std::move(finding));
  }
  return out;
}

std::vector<Finding> IosCapabilityFindings(const ios::IosApp& app, const Facts& facts, const IosKnowledge& knowledge,
                                           std::vector<CapabilityResult>* results) {
  std::vector<Finding> out;
  const ios::Bundle& main = app.main();
  std::map<std::string, std::string> usage;
  if (main.info) usage.insert(main.info->usage_descriptions.begin(), main.info->usage_descriptions.end());
  const plist::Value* entitlements = main.signature && main.signature->entitlements ? &*main.signature->entitlements
                                     : main.profile && main.profile->entitlements   ? &*main.profile->entitlements
                                                                                    : nullptr;
  for (const IosCapabilitySpec& spec : knowledge.capabilities) {
    CapabilityResult result;
    result.id = spec.id;
    result.title = spec.title;
    for (const auto& key : spec.usage_keys) {
      if (auto it = usage.find(key); it != usage.end()) {
        result.requested = true;
        result.permissions.push_back(key);
        result.evidence.push_back({"usage_description", key, "Info.plist", it->second});
      }
    }
    for (const auto& key : spec.entitlements) {
      if (entitlements != nullptr && entitlements->Find(key) != nullptr) {
        result.requested = true;
        result.permissions.push_back(key);
        result.evidence.push_back({"entitlement", key, "code signature", ""});
      }
    }
    auto uses = [&result](const char* kind, const std::vector<std::string>& names,
                          const std::map<std::string, std::string>& found) {
      for (const auto& name : names) {
        if (auto it = found.find(name); it != found.end()) {
          result.used = true;
          result.evidence.push_back({kind, name, it->second, ""});
        }
      }
    };
    uses("class", spec.classes, facts.classes);
    uses("selector", spec.selectors, facts.selectors);
    // A linker that merges method names into __cstring (ld64.lld), or a selector built at run time
    // (NSSelectorFromString): the exact selector text in __cstring counts too.
    if (std::none_of(result.evidence.begin(), result.evidence.end(),
                     [](const Evidence& e) { return e.kind == "selector"; })) {
      uses("selector", spec.selectors, facts.cstrings);
    }
    uses("function", spec.functions, facts.functions);
    if (!result.requested && !result.used) continue;
    const bool needs_request = !spec.usage_keys.empty() || !spec.entitlements.empty();
    Finding finding;
    finding.category = "capability";
    finding.evidence = result.evidence;
    if (result.used && (result.requested || !needs_request)) {
      finding.id = "capability." + spec.id + ".used";
      finding.severity = spec.severity;
      finding.title = spec.title + (needs_request ? ": requested and used" : ": used");
      finding.description =
          "The app declares it (usage description or entitlement) and its code refers to the "
          "framework classes, selectors or functions behind it.";
    } else if (result.requested) {
      finding.id = "capability." + spec.id + ".requested";
      finding.severity =
          spec.severity == Severity::kInfo ? Severity::kInfo : Severity(static_cast<int>(spec.severity) - 1);
      finding.title = spec.title + ": requested";
      finding.description =
          "The app declares it (usage description or entitlement); no reference to the classes, "
          "selectors or functions behind it was found (they may be reached dynamically or from an encrypted binary).";
    } else {
      finding.id = "capability." + spec.id + ".code_only";
      finding.severity = Severity::kInfo;
      finding.title = spec.title + ": code present, not declared";
      finding.description =
          "The code refers to the classes, selectors or functions behind it but the app does not declare the usage "
          "description iOS requires, so the calls fail or are never reached as shipped.";
    }
    results->push_back(std::move(result));
    out.push_back(std::move(finding));
  }
  return out;
}

std::vector<Finding> IosHygieneFindings(const ios::IosApp& app, const Facts& facts,
                                        const std::vector<TrackerMatch>& trackers) {
  std::vector<Finding> out;
  const ios::Bundle& main = app.main();
  if (main.info && main.info->ats && main.info->ats->arbitrary_loads) {
    out.push_back({"hygiene.ats_arbitrary_loads",
                   "hygiene",
                   Severity::kMedium,
                   "App Transport Security disabled (NSAllowsArbitraryLoads)",
                   "The app may talk plain HTTP to any host, so its traffic can be read and altered on the network.",
                   {{"manifest", "NSAppTransportSecurity/NSAllowsArbitraryLoads", main.path + "/Info.plist", ""}}});
  }
  if (main.info && main.info->ats) {
    for (const auto& domain : main.info->ats->exception_domains) {
      if (!domain.allows_insecure_http) continue;
      out.push_back({"hygiene.ats_insecure_domain",
                     "hygiene",
                     Severity::kLow,
                     "Plain HTTP allowed to " + domain.domain,
                     "An App Transport Security exception lets the app use unencrypted HTTP with this domain.",
                     {{"host", domain.domain, main.path + "/Info.plist", "NSExceptionAllowsInsecureHTTPLoads"}}});
    }
  }
  const plist::Value* entitlements =
      main.signature && main.signature->entitlements ? &*main.signature->entitlements : nullptr;
  if (entitlements != nullptr && entitlements->FindBoolean("get-task-allow").value_or(false) &&
      (!main.profile || main.profile->type != "development")) {
    out.push_back({"hygiene.get_task_allow",
                   "hygiene",
                   Severity::kHigh,
                   "Debuggable build (get-task-allow)",
                   "The signature grants get-task-allow outside a development profile: any debugger on the device "
                   "can attach to the app and read its memory.",
                   {{"entitlement", "get-task-allow", main.executable_path, ""}}});
  }
  if (main.profile && main.profile->type == "enterprise") {
    out.push_back({"hygiene.enterprise_provisioning",
                   "hygiene",
                   Severity::kHigh,
                   "Enterprise (in-house) provisioning profile",
                   "The app is provisioned for any device (ProvisionsAllDevices): it is distributed outside the App "
                   "Store and its review, the way sideloaded and repackaged apps are.",
                   {{"file", "embedded.mobileprovision", main.path, main.profile->team_name}}});
  }
  if (main.profile && main.profile->expired) {
    out.push_back({"hygiene.expired_provisioning",
                   "hygiene",
                   Severity::kLow,
                   "Provisioning profile expired",
                   "iOS refuses to launch the app with this profile since " + main.profile->expiration_date + ".",
                   {{"file", "embedded.mobileprovision", main.path, main.profile->expiration_date}}});
  }
  if (!main.privacy_manifest && !trackers.empty()) {
    out.push_back({"hygiene.missing_privacy_manifest",
                   "hygiene",
                   Severity::kLow,
                   "No privacy manifest",
                   "The app embeds tracker SDKs but has no PrivacyInfo.xcprivacy, which Apple requires since "
                   "May 2024 for apps using such SDKs.",
                   {{"file", "PrivacyInfo.xcprivacy", main.path, "absent"}}});
  }
  for (const ios::Bundle& bundle : app.bundles()) {
    if (!bundle.macho) continue;
    for (const auto& slice : bundle.macho->slices) {
      if (!slice.encrypted()) continue;
      std::string hidden;
      for (const auto& section : slice.unreadable_sections) hidden += (hidden.empty() ? "" : ", ") + section;
      out.push_back({"hygiene.encrypted_binary",
                     "hygiene",
                     Severity::kInfo,
                     "Encrypted executable (App Store)",
                     "The " + slice.arch + " code is FairPlay-encrypted, so strings, class names and selectors (" +
                         (hidden.empty() ? "none" : hidden) +
                         ") could not be read; imports, libraries and the signature could. Findings may be missing.",
                     {{"file", bundle.executable_path, slice.arch, "cryptid " + std::to_string(slice.crypt_id)}}});
      break;
    }
  }
  (void)facts;
  return out;
}

std::vector<Finding> IosPublisherFindings(const ios::IosApp& app, const std::vector<Vendor>& vendors,
                                          Publisher* publisher) {
  std::vector<Finding> out;
  const ios::Bundle& main = app.main();
  publisher->package = main.info ? main.info->bundle_id : "";
  if (!main.signature) {
    out.push_back({"publisher.unsigned",
                   "publisher",
                   Severity::kHigh,
                   "Not signed",
                   "The executable carries no code signature; iOS does not run it as is.",
                   {}});
    return out;
  }
  const ios::CodeSignature& s = *main.signature;
  publisher->organization = s.organization;
  if (!s.certificates.empty()) {
    publisher->signer_sha256 = s.certificates.front().sha256;
    // The signer's country (C=), read from the certificate as for an APK's signer.
    const std::string& der = s.certificates.front().der;
    auto certificate = apk::ParseCertificate(Bytes(reinterpret_cast<const uint8_t*>(der.data()), der.size()));
    if (certificate.ok()) publisher->country = certificate->subject_country;
  }
  if (!s.has_cms) {
    out.push_back({"publisher.adhoc_signature",
                   "publisher",
                   Severity::kMedium,
                   "Ad hoc signature (no signer)",
                   "The code is signed without a certificate: nobody vouches for it, and a stock iPhone runs it "
                   "only when jailbroken or in development.",
                   {{"certificate", "ad hoc", main.executable_path, ""}}});
  } else {
    out.push_back({"publisher.signer",
                   "publisher",
                   Severity::kInfo,
                   "Signed by " + (s.organization.empty() ? std::string("unknown organisation") : s.organization) +
                       " (Team ID " + (s.team_id.empty() ? std::string("-") : s.team_id) + ")",
                   "The signing certificate's organisation and Team ID, as the CMS signature carries them; chain to "
                   "Apple's root: " +
                       s.chain_note + ".",
                   {{"certificate", s.certificates.empty() ? "" : s.certificates.front().subject, main.executable_path,
                     s.certificate_kind}}});
  }
  for (const Vendor& vendor : vendors) {
    // A Team ID counts only from a certificate Apple's root vouches for: anyone can write any Team
    // ID into an ad hoc CodeDirectory or a self-made certificate's OU.
    const bool by_team =
        s.chain_verified && !s.team_id.empty() &&
        std::find(vendor.apple_team_ids.begin(), vendor.apple_team_ids.end(), s.team_id) != vendor.apple_team_ids.end();
    bool by_prefix = false;
    for (const auto& prefix : vendor.package_prefixes) {
      if (!publisher->package.empty() && (publisher->package + ".").starts_with(prefix)) by_prefix = true;
    }
    if (!by_team && !by_prefix) continue;
    publisher->vendor = vendor.name;
    publisher->vendor_country = vendor.country;
    publisher->matched_by = by_team ? "apple_team_id" : "package_prefix";
    publisher->matched_value = by_team ? s.team_id : publisher->package;
    out.push_back({"publisher.vendor." + vendor.id,
                   "publisher",
                   Severity::kInfo,
                   "Publisher: " + vendor.name,
                   "The app belongs to a vendor in the registry (matched by " + publisher->matched_by + ").",
                   {{by_team ? "team_id" : "package", publisher->matched_value, "", vendor.note}}});
    break;
  }
  return out;
}

}  // namespace

Result<IosKnowledge> ParseIosKnowledge(std::string_view json_text, const std::string& source) {
  Json doc = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Status::InvalidArgument(source + ": not a JSON object");
  IosKnowledge out;
  const Json& trackers = doc["trackers"];
  if (!trackers.is_array()) return Status::InvalidArgument(source + ": \"trackers\" must be an array");
  for (size_t i = 0; i < trackers.size(); ++i) {
    const Json& item = trackers[i];
    const std::string where = source + ": trackers[" + std::to_string(i) + "]";
    IosTrackerSignature t;
    APPBAN_ASSIGN_OR_RETURN(t.name, Text(item, "name", where));
    if (item.contains("website") && item["website"].is_string()) t.website = item["website"].get<std::string>();
    if (item.contains("exodus_id") && item["exodus_id"].is_number_integer()) {
      t.finding_id = "tracker." + std::to_string(item["exodus_id"].get<int64_t>());
    } else {
      APPBAN_ASSIGN_OR_RETURN(std::string slug, Text(item, "slug", where + " (no exodus_id)"));
      t.finding_id = "tracker.ios." + slug;
    }
    APPBAN_ASSIGN_OR_RETURN(t.frameworks, Strings(item, "frameworks", where));
    APPBAN_ASSIGN_OR_RETURN(t.class_prefixes, Strings(item, "class_prefixes", where));
    APPBAN_ASSIGN_OR_RETURN(t.swift_modules, Strings(item, "swift_modules", where));
    APPBAN_ASSIGN_OR_RETURN(t.hosts, Strings(item, "hosts", where));
    for (const auto& prefix : t.class_prefixes) {
      if (prefix.size() < 3)
        return Status::InvalidArgument(where + ": class prefix \"" + prefix + "\" is too short to mean anything");
    }
    out.trackers.push_back(std::move(t));
  }
  const Json& capabilities = doc["capabilities"];
  if (!capabilities.is_array()) return Status::InvalidArgument(source + ": \"capabilities\" must be an array");
  for (size_t i = 0; i < capabilities.size(); ++i) {
    const Json& item = capabilities[i];
    const std::string where = source + ": capabilities[" + std::to_string(i) + "]";
    IosCapabilitySpec c;
    APPBAN_ASSIGN_OR_RETURN(c.id, Text(item, "id", where));
    APPBAN_ASSIGN_OR_RETURN(c.title, Text(item, "title", where));
    APPBAN_ASSIGN_OR_RETURN(std::string severity, Text(item, "severity", where));
    static const std::map<std::string, Severity> kSeverities = {{"info", Severity::kInfo},
                                                                {"low", Severity::kLow},
                                                                {"medium", Severity::kMedium},
                                                                {"high", Severity::kHigh},
                                                                {"critical", Severity::kCritical}};
    auto it = kSeverities.find(severity);
    if (it == kSeverities.end()) return Status::InvalidArgument(where + ": unknown severity \"" + severity + "\"");
    c.severity = it->second;
    APPBAN_ASSIGN_OR_RETURN(c.usage_keys, Strings(item, "usage_keys", where));
    APPBAN_ASSIGN_OR_RETURN(c.entitlements, Strings(item, "entitlements", where));
    APPBAN_ASSIGN_OR_RETURN(c.classes, Strings(item, "classes", where));
    APPBAN_ASSIGN_OR_RETURN(c.selectors, Strings(item, "selectors", where));
    APPBAN_ASSIGN_OR_RETURN(c.functions, Strings(item, "functions", where));
    out.capabilities.push_back(std::move(c));
  }
  out.tracker_description = DescribeSignatureFile(source, out.trackers.size(), json_text);
  return out;
}

Result<IosKnowledge> LoadIosKnowledge(const std::string& data_dir) {
  const std::string path = data_dir + "/ios-trackers.json";
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 4u << 20));
  return ParseIosKnowledge(text, path);
}

Assessment AssessIos(const ios::IosApp& app, const KnowledgeBase& knowledge, const IosKnowledge& ios_knowledge,
                     const RiskModel& model) {
  Assessment a;
  a.file = ios::FileJson(app);
  a.app = ios::AppJson(app);
  // The members the shared renderers print for every app, filled with their iOS counterparts.
  const ios::Bundle& main = app.main();
  // Absent is null, as for an APK (docs/formats/assess-json.md).
  auto text_or_null = [](const std::string& text) { return text.empty() ? Json(nullptr) : Json(text); };
  a.app["label"] = !main.info                         ? Json(nullptr)
                   : !main.info->display_name.empty() ? Json(main.info->display_name)
                                                      : text_or_null(main.info->name);
  a.app["version_name"] = main.info ? text_or_null(main.info->short_version) : Json(nullptr);
  a.app["min_sdk"] = main.info ? text_or_null(main.info->minimum_os) : Json(nullptr);
  a.app["target_sdk"] = nullptr;
  a.app["signers"] = Json::array();
  a.app["permissions"] = Json::array();
  if (main.info) {
    for (const auto& [key, text] : main.info->usage_descriptions) a.app["permissions"].push_back({{"name", key}});
  }
  a.app["dex"] = {{"classes", 0}, {"files", Json::array()}};
  a.anomalies = ios::AnomaliesJson(app);

  Analysis& analysis = a.analysis;
  Facts facts = Gather(app);
  std::vector<LocatedString> strings;
  strings.reserve(facts.strings.size());
  for (const auto& [text, where] : facts.strings) strings.push_back({text, where});
  EndpointScan scan = ScanEndpoints(strings, TrackerSet{}, nullptr);
  analysis.endpoints = scan.endpoints;
  auto add = [&](std::vector<Finding> findings) {
    for (auto& f : findings) analysis.findings.push_back(std::move(f));
  };
  add(IosTrackerFindings(facts, scan, ios_knowledge, &analysis.trackers));
  for (const auto& t : analysis.trackers) {
    for (const auto& host : t.hosts) analysis.endpoints.tracker_hosts[host] = t.name;
  }
  add(EndpointFindings(scan));
  add(IosCapabilityFindings(app, facts, ios_knowledge, &analysis.capabilities));
  add(IosPublisherFindings(app, knowledge.vendors, &analysis.publisher));
  add(IosHygieneFindings(app, facts, analysis.trackers));
  add(AnomalyFindings(app.anomalies()));
  SortFindings(&analysis.findings);
  a.risk = ScoreRisk(analysis.findings, model);
  a.risk_model = model.name + (model.version.empty() ? "" : " v" + model.version);
  a.tracker_database = ios_knowledge.tracker_description;
  return a;
}

}  // namespace appban::assess
