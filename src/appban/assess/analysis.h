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
  // Alternatives written with a leading dot (".tealium."): matched as a substring of the dotted
  // class name, as Exodus's regex search would.
  std::vector<std::string> code_infixes;
  // Alternatives that use regex syntax beyond literal dotted names; run by SignaturePattern.
  std::vector<std::string> code_patterns;
  // network_signature's plain alternatives ("krxd.net"): a host matches when it equals one or is a
  // subdomain of it; an alternative without a dot ("fidzup") matches a host label equal to it.
  std::vector<std::string> network_domains;
  // network_signature alternatives with regex syntax (".*.estimote.com"); run by SignaturePattern.
  std::vector<std::string> network_patterns;
};

struct TrackerSet {
  std::vector<TrackerSignature> trackers;
  std::string source;  // file it was loaded from
  // Which database this is, for a report's reader: "trackers.json: 427 signatures, SHA-256 1a2b…"
  // (the file has no version of its own; the digest pins the exact list an assessment used).
  std::string description;
  // Signatures skipped because they are too short to mean anything, with the reason.
  std::vector<std::string> skipped;
  // Signatures read leniently (e.g. "\\a" taken as the letter 'a'), with the tracker they belong to.
  std::vector<std::string> warnings;
};

// Loads and validates a file of the Exodus tracker API shape
// {"trackers": {"<id>": {id, name, website, code_signature, network_signature}}}.
// Errors name the tracker and field at fault (bad regex, wrong type, missing field).
Result<TrackerSet> LoadTrackers(const std::string& path);
// "<file name>: N signatures, SHA-256 <16 hex digits of the file>": how reports name a signature file.
std::string DescribeSignatureFile(const std::string& source, size_t signatures, std::string_view text);
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
  // Exact DEX strings that prove use ("content://sms"), and ZIP entry globs ("lib/*/*.so").
  std::vector<std::string> strings;
  std::vector<std::string> files;
  std::string description;  // why this capability matters, for the finding
};

struct Vendor {
  std::string id;  // stable slug used in finding ids: "bytedance"
  std::string name;
  std::string country;                                 // ISO 3166-1 alpha-2 of jurisdiction
  std::vector<std::string> package_prefixes;           // "com.tencent."
  std::vector<std::string> signer_sha256;              // known signing certificates
  std::vector<std::string> certificate_organizations;  // O= values seen on its certificates
  // Subset of package_prefixes whose attribution is believed but unverified in our sources ("B").
  std::vector<std::string> unverified_package_prefixes;
  std::string note;
  // Apple Team IDs (10 upper-case letters/digits, the OU of its Apple certificates), each listed
  // only with a public source in the data file (apple_team_id_sources).
  std::vector<std::string> apple_team_ids;
};

struct PackerSignature {
  std::string id;    // stable slug used in finding ids: "jiagu"
  std::string name;  // "Jiagu (Qihoo 360)"
  // File-name globs ("libjiagu*.so") matched against native libraries anywhere in the APK
  // (lib/<abi>/ and assets/, where some packers keep them).
  std::vector<std::string> native_libraries;
  std::vector<std::string> classes;  // class descriptor prefixes
  std::vector<std::string> assets;   // ZIP entry names/prefixes
  std::string note;
};

struct KnowledgeBase {
  TrackerSet trackers;
  std::vector<CapabilitySpec> capabilities;
  std::vector<Vendor> vendors;
  std::vector<PackerSignature> packers;
};

// Parsers of the other knowledge files ({"capabilities": [...]}, {"vendors": [...]},
// {"packers": [...]}); errors name the entry (index and id) and field at fault. `source` names the
// file in errors.
Result<std::vector<CapabilitySpec>> ParseCapabilities(std::string_view json_text, const std::string& source);
Result<std::vector<Vendor>> ParseVendors(std::string_view json_text, const std::string& source);
Result<std::vector<PackerSignature>> ParsePackers(std::string_view json_text, const std::string& source);

// Loads every file under `data_dir` (trackers.json, capabilities.json, vendors.json,
// packers.json); `trackers_override` replaces the default tracker file when non-empty.
Result<KnowledgeBase> LoadKnowledgeBase(const std::string& data_dir, const std::string& trackers_override = "");

// ---- Results ----

struct TrackerMatch {
  int id = 0;
  std::string name;
  std::string website;
  std::vector<std::string> classes;          // matched class names (dotted), capped per tracker
  std::vector<std::string> class_dex_files;  // the DEX entry of each of `classes` (parallel)
  size_t class_count = 0;                    // total matched classes
  std::vector<std::string> dex_files;        // which classes*.dex they were found in
  std::vector<std::string> hosts;            // endpoint hosts matching its network signature
};

struct Endpoints {
  std::vector<std::string> urls;                     // sorted, deduplicated
  std::vector<std::string> hosts;                    // sorted, deduplicated (from URLs and bare host-like strings)
  std::vector<std::string> ips;                      // IPv4/IPv6 literals
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
  std::optional<std::string> vendor;  // registry match
  std::string vendor_country;
  std::string matched_by;           // "signer", "package_prefix", "certificate_organization"
  std::string matched_value;        // the registry fingerprint, organisation or prefix that matched
  bool matched_unverified = false;  // the registry marks that identifier "believed, unverified"
  std::string package;              // manifest package the prefixes were matched against
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
