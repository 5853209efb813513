// The detectors behind Analyze, each a pure function over plain data so that it can be tested on
// hand-built inputs and reused on anything that yields class names, strings and method references.
// Analyze (analysis.cc) adapts an apk::Apk to these inputs. All functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/apk/manifest.h"
#include "appban/apk/signing.h"
#include "appban/assess/analysis.h"
#include "appban/assess/finding.h"

namespace appban::assess {

// ---- Shared limits on how much evidence one finding carries (the counts are always complete).
inline constexpr size_t kMaxClassesPerTracker = 20;
inline constexpr size_t kMaxEvidencePerFinding = 50;

// "Lcom/appsflyer/AppsFlyerLib;" -> "com.appsflyer.AppsFlyerLib". Returns "" for descriptors that
// are not classes (primitives, arrays, malformed).
std::string DottedClassName(std::string_view descriptor);

// ---- Trackers ----

// A class defined in a DEX file: its dotted name and the DEX entry it came from.
struct ClassName {
  std::string dotted;
  std::string dex_file;
};

// Matches dotted class names against a TrackerSet's code signatures (see docs/assessment.md):
// prefixes through an ordered index keyed at package boundaries, infixes by substring, the rest by
// SignaturePattern. Built once per TrackerSet; immutable and thread-safe afterwards.
class TrackerMatcher {
 public:
  explicit TrackerMatcher(const TrackerSet& trackers);
  ~TrackerMatcher();
  TrackerMatcher(TrackerMatcher&&) noexcept;
  TrackerMatcher& operator=(TrackerMatcher&&) noexcept;

  // Indices into trackers.trackers of every tracker whose code signature matches `dotted`,
  // ascending, without duplicates. `out` is cleared first.
  void Match(std::string_view dotted, std::vector<size_t>* out) const;

 private:
  struct Index;
  std::unique_ptr<Index> index_;
};

// Trackers found among `classes`, in tracker-id order, each with its matched classes (first
// kMaxClassesPerTracker in input order), total count and DEX files (in first-seen order).
std::vector<TrackerMatch> DetectTrackers(const std::vector<ClassName>& classes, const TrackerSet& trackers);

// Whether `host` (lower case) matches tracker network signature alternatives of `tracker`.
bool HostMatchesTracker(std::string_view host, const TrackerSignature& tracker);

// ---- Endpoints ----

// A string found in the app and where: "classes2.dex", "AndroidManifest.xml".
struct LocatedString {
  std::string_view text;
  std::string_view location;
};

// Host, URL or IP endpoint with the first place it was seen.
struct EndpointSighting {
  std::string value;
  std::string location;
};

struct EndpointScan {
  Endpoints endpoints;
  std::vector<EndpointSighting> url_sightings;   // sorted by value
  std::vector<EndpointSighting> host_sightings;  // sorted by value
  std::vector<EndpointSighting> ip_sightings;    // sorted by value
};

// Extracts URLs, host names and IP literals from `strings` (see docs/assessment.md for the
// validation rules) and maps hosts onto tracker network signatures. Fills `trackers[].hosts` for
// trackers already detected in code.
EndpointScan ScanEndpoints(const std::vector<LocatedString>& strings, const TrackerSet& tracker_set,
                           std::vector<TrackerMatch>* trackers);
// Whether `text` is a plausible DNS host name (lower case letters, digits, '-', at least two labels,
// the last one alphabetic); `require_known_tld` additionally requires the last label to be in the
// small list of top-level domains we accept for bare strings.
bool LooksLikeHost(std::string_view text, bool require_known_tld);
bool IsIpLiteral(std::string_view text);

// ---- Capabilities ----

// What the code refers to, as needed by the capability detector. The production implementation
// answers from DEX tables (O(log n) lookups); tests use PlainCodeView.
class CodeView {
 public:
  virtual ~CodeView() = default;
  // Method references matching `api` ("Lcls;->name", "Lcls;->" any method, "Lcls;" the type), as
  // evidence (kind "method" or "class", location = DEX entry), at most `max` of them.
  virtual std::vector<Evidence> FindApi(std::string_view api, size_t max) const = 0;
  // Places where the exact string `text` occurs.
  virtual std::vector<Evidence> FindString(std::string_view text, size_t max) const = 0;
  // ZIP entries matching the glob `pattern` ('*' matches within one path segment).
  virtual std::vector<Evidence> FindFiles(std::string_view pattern, size_t max) const = 0;
};

// A CodeView over explicit lists: methods as "Lcls;->name" with their DEX file, types referenced,
// strings and ZIP entry names.
class PlainCodeView : public CodeView {
 public:
  struct Located {
    std::string value;
    std::string location;
  };
  std::vector<Located> methods;  // "Landroid/location/LocationManager;->getLastKnownLocation"
  std::vector<Located> types;    // "Landroid/provider/ContactsContract$Contacts;"
  std::vector<Located> strings;
  std::vector<std::string> files;

  std::vector<Evidence> FindApi(std::string_view api, size_t max) const override;
  std::vector<Evidence> FindString(std::string_view text, size_t max) const override;
  std::vector<Evidence> FindFiles(std::string_view pattern, size_t max) const override;
};

// '*' matches any run of characters other than '/'; everything else is literal.
bool GlobMatch(std::string_view pattern, std::string_view text);

std::vector<CapabilityResult> DetectCapabilities(const apk::Manifest& manifest, const CodeView& code,
                                                 const std::vector<CapabilitySpec>& specs);

// ---- Publisher ----

Publisher DetectPublisher(const apk::SigningInfo& signing, std::string_view package,
                          const std::vector<Vendor>& vendors);

// ---- Obfuscation and packing ----

// Packers whose native library, class or asset signature matches. `classes` as for trackers;
// `zip_entries` are ZIP entry names.
struct PackerHit {
  const PackerSignature* packer = nullptr;
  std::vector<Evidence> evidence;
};
std::vector<PackerHit> DetectPackers(const std::vector<ClassName>& classes,
                                     const std::vector<std::string_view>& zip_entries,
                                     const std::vector<PackerSignature>& packers);

// Share of classes whose simple name (after the package and any outer class) is one or two letters,
// as minifiers like R8/ProGuard produce ("a", "bq"); anonymous classes ("$1") and R are not counted.
struct ObfuscationStats {
  size_t classes = 0;
  size_t short_named = 0;
  double ratio = 0;
  std::vector<ClassName> examples;  // at most kMaxObfuscationExamples
};
inline constexpr size_t kMaxObfuscationExamples = 10;
// Below this many classes the ratio says nothing; above kObfuscationRatioThreshold it is reported.
inline constexpr size_t kMinClassesForObfuscation = 50;
inline constexpr double kObfuscationRatioThreshold = 0.3;
ObfuscationStats MeasureObfuscation(const std::vector<ClassName>& classes);

// ---- Findings from each detector ----

std::vector<Finding> TrackerFindings(const std::vector<TrackerMatch>& trackers);
std::vector<Finding> EndpointFindings(const EndpointScan& scan);
std::vector<Finding> CapabilityFindings(const std::vector<CapabilityResult>& capabilities,
                                        const std::vector<CapabilitySpec>& specs);
std::vector<Finding> PublisherFindings(const Publisher& publisher, const apk::SigningInfo& signing,
                                       const std::vector<Vendor>& vendors);
std::vector<Finding> ObfuscationFindings(const std::vector<PackerHit>& packers, const ObfuscationStats& stats);
std::vector<Finding> AnomalyFindings(const apk::Anomalies& anomalies);
// `network_security_config`, when the app has one that could be read, decides cleartext and
// user-CA trust (it overrides android:usesCleartextTraffic on Android 7.0+).
std::vector<Finding> HygieneFindings(const apk::Manifest& manifest,
                                     const apk::NetworkSecurityConfig* network_security_config = nullptr);

// Findings order: severity (highest first), then category in the order above, then id.
void SortFindings(std::vector<Finding>* findings);

}  // namespace appban::assess
