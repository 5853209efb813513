// Static analysis of an opened APK: the detectors behind `appban assess`. Given an apk::Apk and
// the knowledge base (tracker signatures, capability map, vendor registry, packer signatures, all
// loaded from data files), produces structured results plus the Findings the risk model scores.
// Analyze is a pure function of its inputs; a KnowledgeBase is immutable after loading and may be
// shared by threads analysing different APKs at once.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "appban/apk/apk.h"
#include "appban/assess/finding.h"
#include "appban/common/status.h"

namespace appban::assess {

// ---- Knowledge base (data/) ----

// One tracker SDK in the Exodus Privacy format: code_signature is a regular expression over
// dotted class names ("com.appsflyer."), network_signature one over host names.
struct TrackerSignature {
  int id = 0;
  std::string name;
  std::string website;
  std::string code_signature;
  std::string network_signature;
  // Literal prefixes derived from code_signature's '|' alternatives when they are plain dotted
  // names (the common case), used for fast matching; empty when the signature needs the regex.
  std::vector<std::string> code_prefixes;
};

struct TrackerSet {
  std::vector<TrackerSignature> trackers;
  std::string source;  // file it was loaded from
  // Signatures skipped because they are too short to mean anything, with the reason.
  std::vector<std::string> skipped;
};

// Loads and validates a file of the Exodus tracker API shape
// {"trackers": {"<id>": {id, name, website, code_signature, network_signature}}}.
// Errors name the tracker and field at fault (bad regex, wrong type, missing field).
Result<TrackerSet> LoadTrackers(const std::string& path);
Result<TrackerSet> ParseTrackers(std::string_view json_text, std::string source);

// A sensitive capability: what Android permissions grant it and which framework APIs use it.
struct CapabilitySpec {
  std::string id;     // "location", "contacts", "sms", ...
  std::string title;  // "Precise location"
  Severity severity = Severity::kMedium;
  std::vector<std::string> permissions;  // any of these requested => requested
  // API references that prove use: "Landroid/location/LocationManager;->getLastKnownLocation" or a
  // class prefix "Landroid/location/LocationManager;->" (any method of it).
  std::vector<std::string> apis;
  // Manifest evidence (e.g. a service bound to BIND_ACCESSIBILITY_SERVICE) counts as requested.
  std::vector<std::string> service_permissions;
};

struct Vendor {
  std::string name;
  std::string country;  // ISO 3166-1 alpha-2 of jurisdiction
  std::vector<std::string> package_prefixes;     // "com.tencent."
  std::vector<std::string> signer_sha256;        // known signing certificates
  std::vector<std::string> certificate_organizations;  // O= values seen on its certificates
  std::string note;
};

struct PackerSignature {
  std::string name;  // "Jiagu (Qihoo 360)"
  std::vector<std::string> native_libraries;  // file names under lib/<abi>/
  std::vector<std::string> classes;           // class descriptor prefixes
  std::vector<std::string> assets;            // ZIP entry names/prefixes
};

struct KnowledgeBase {
  TrackerSet trackers;
  std::vector<CapabilitySpec> capabilities;
  std::vector<Vendor> vendors;
  std::vector<PackerSignature> packers;
};

// Loads every file under `data_dir` (trackers.json, capabilities.json, vendors.json,
// packers.json); `trackers_override` replaces the default tracker file when non-empty.
Result<KnowledgeBase> LoadKnowledgeBase(const std::string& data_dir, const std::string& trackers_override = "");

// ---- Results ----

struct TrackerMatch {
  int id = 0;
  std::string name;
  std::string website;
  std::vector<std::string> classes;  // matched class names (dotted), capped per tracker
  size_t class_count = 0;            // total matched classes
  std::vector<std::string> dex_files;  // which classes*.dex they were found in
  std::vector<std::string> hosts;    // endpoint hosts matching its network signature
};

struct Endpoints {
  std::vector<std::string> urls;   // sorted, deduplicated
  std::vector<std::string> hosts;  // sorted, deduplicated (from URLs and bare host-like strings)
  std::vector<std::string> ips;    // IPv4/IPv6 literals
  std::map<std::string, std::string> tracker_hosts;  // host -> tracker name
};

struct CapabilityResult {
  std::string id;
  std::string title;
  bool requested = false;
  bool used = false;
  std::vector<std::string> permissions;  // the requested permissions behind it
  std::vector<Evidence> evidence;        // API references (capped), manifest entries
};

struct Publisher {
  std::string organization;  // O= of the first signer
  std::string country;       // C= of the first signer
  std::string signer_sha256;
  bool v1_only = false;
  bool debug_certificate = false;
  std::optional<std::string> vendor;   // registry match
  std::string vendor_country;
  std::string matched_by;              // "signer", "package_prefix", "certificate_organization"
};

struct Analysis {
  std::vector<TrackerMatch> trackers;
  Endpoints endpoints;
  std::vector<CapabilityResult> capabilities;
  Publisher publisher;
  std::vector<std::string> packers;   // names of packers detected
  double obfuscated_class_ratio = 0;  // share of classes with short meaningless names
  std::vector<Finding> findings;      // everything above as scoreable findings, plus hygiene/anomalies
};

Analysis Analyze(const apk::Apk& apk, const KnowledgeBase& knowledge);

}  // namespace appban::assess
