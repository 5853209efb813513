// Network endpoints from the strings of an app: URLs (by their "scheme://"), whole strings that
// are host names or IP literals. Validation is deliberately strict for bare strings — DEX string
// tables are full of dotted Java names ("R.layout", "com.example.app") that look like host names.
#include <arpa/inet.h>
#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <set>

#include "appban/assess/detectors.h"
#include "appban/assess/pattern.h"
#include "appban/common/text.h"

namespace appban::assess {
namespace {

constexpr size_t kMaxUrlLength = 2048;
constexpr size_t kMaxHostLength = 253;

// Schemes whose authority is a network host (content://, file://, app-specific schemes are not).
constexpr std::array<std::string_view, 12> kNetworkSchemes = {"http", "https", "ws",    "wss",  "ftp",  "ftps",
                                                              "sftp", "rtmp",  "rtmps", "rtsp", "mqtt", "mqtts"};
constexpr std::array<std::string_view, 3> kCleartextSchemes = {"http", "ws", "ftp"};

// Top-level domains accepted for a bare string to count as a host. Small on purpose: gTLDs like
// .app, .dev, .google or .so collide with Java package names and file names.
constexpr std::array<std::string_view, 62> kBareHostTlds = {
    "com", "net", "org",  "edu", "gov", "mil", "int", "io", "co",  "cn",  "ru",   "de",    "uk",   "fr", "jp", "kr",
    "in",  "br",  "au",   "ca",  "es",  "it",  "nl",  "se", "no",  "fi",  "dk",   "ch",    "at",   "be", "cz", "tr",
    "ua",  "ir",  "il",   "sg",  "hk",  "tw",  "vn",  "id", "th",  "my",  "ph",   "nz",    "za",   "mx", "ar", "cl",
    "us",  "eu",  "info", "biz", "tv",  "me",  "cc",  "ly", "xyz", "top", "site", "cloud", "tech", "ai"};

// First labels of Java/Kotlin package names: a bare "com.foo.net" is a package, not a host.
constexpr std::array<std::string_view, 12> kJavaRoots = {"com",  "org",   "net",    "io",      "android", "androidx",
                                                         "java", "javax", "kotlin", "kotlinx", "dalvik",  "sun"};

template <size_t N>
bool OneOf(const std::array<std::string_view, N>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool IsUrlTerminator(unsigned char c) {
  return c <= 0x20 || c >= 0x7f ||
         std::string_view("\"'<>`\\^{}|").find(static_cast<char>(c)) != std::string_view::npos;
}

bool IsPublicIp(std::string_view ip) {
  const std::string text(ip);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    const uint32_t a = ntohl(v4.s_addr);
    const uint8_t first = a >> 24, second = (a >> 16) & 0xff;
    if (first == 0 || first == 10 || first == 127 || first >= 224) return false;
    if (first == 169 && second == 254) return false;
    if (first == 172 && second >= 16 && second <= 31) return false;
    if (first == 192 && second == 168) return false;
    if (first == 100 && second >= 64 && second <= 127) return false;  // carrier-grade NAT
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    static const in6_addr kAny{};
    if (IN6_IS_ADDR_LOOPBACK(&v6) ||
        std::equal(std::begin(v6.s6_addr), std::end(v6.s6_addr), std::begin(kAny.s6_addr)) ||
        IN6_IS_ADDR_LINKLOCAL(&v6) || (v6.s6_addr[0] & 0xfe) == 0xfc) {
      return false;
    }
    return true;
  }
  return false;
}

struct Collector {
  std::map<std::string, std::string> urls, hosts, ips;  // value -> first location
  void Add(std::map<std::string, std::string>& into, std::string value, std::string_view location) {
    into.emplace(std::move(value), std::string(location));
  }
};

// Reads the URL whose "://" is at `separator` in `text`; records it with its host or IP.
// URLs that name an XML namespace or schema rather than a place the app connects to
// ("http://schemas.android.com/apk/res/android" is in every app that inflates layouts in code).
// Reporting them as cleartext endpoints would put a false finding in front of every analyst.
bool IsIdentifierUrl(std::string_view host, std::string_view path) {
  static constexpr std::array<std::string_view, 8> kNamespaceHosts = {
      "schemas.android.com",        "www.w3.org", "ns.adobe.com", "xmlpull.org", "schemas.xmlsoap.org",
      "schemas.openxmlformats.org", "purl.org",   "xml.org"};
  if (OneOf(kNamespaceHosts, host)) return true;
  return host == "java.sun.com" && path.starts_with("/xml/ns");
}

void TakeUrl(std::string_view text, size_t separator, std::string_view location, Collector* out) {
  size_t scheme_start = separator;
  while (scheme_start > 0) {
    const unsigned char c = static_cast<unsigned char>(text[scheme_start - 1]);
    if (!(std::isalnum(c) || c == '+' || c == '-' || c == '.')) break;
    --scheme_start;
  }
  while (scheme_start < separator && !std::isalpha(static_cast<unsigned char>(text[scheme_start]))) ++scheme_start;
  const std::string scheme = AsciiLower(text.substr(scheme_start, separator - scheme_start));
  if (!OneOf(kNetworkSchemes, scheme)) return;
  size_t end = separator + 3;
  while (end < text.size() && !IsUrlTerminator(static_cast<unsigned char>(text[end]))) ++end;
  std::string_view url = text.substr(scheme_start, end - scheme_start);
  while (!url.empty() && std::string_view(".,;:)]").find(url.back()) != std::string_view::npos) url.remove_suffix(1);
  if (url.size() > kMaxUrlLength) return;
  const std::string_view rest = url.substr(scheme.size() + 3);  // after "://"
  const size_t authority_length = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, authority_length);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string host;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return;
    host = AsciiLower(authority.substr(1, close - 1));
  } else {
    host = AsciiLower(authority.substr(0, authority.find(':')));
  }
  while (!host.empty() && host.back() == '.') host.pop_back();
  if (IsIdentifierUrl(host, rest.substr(authority_length))) return;
  if (IsIpLiteral(host)) {
    out->Add(out->ips, host, location);
  } else if (LooksLikeHost(host, /*require_known_tld=*/false)) {
    out->Add(out->hosts, host, location);
  } else {
    return;  // "https://%s/api", "http://localhost": no network host to report
  }
  // Scheme and authority are case-insensitive; keep the path as written.
  out->Add(out->urls,
           scheme + "://" + AsciiLower(rest.substr(0, authority_length)) + std::string(rest.substr(authority_length)),
           location);
}

std::vector<EndpointSighting> ToSightings(const std::map<std::string, std::string>& values) {
  std::vector<EndpointSighting> out;
  for (const auto& [value, location] : values) out.push_back({value, location});
  return out;
}

}  // namespace

bool LooksLikeHost(std::string_view text, bool require_known_tld) {
  if (text.empty() || text.size() > kMaxHostLength || text.find('.') == std::string_view::npos) return false;
  std::vector<std::string_view> labels;
  size_t start = 0;
  while (start <= text.size()) {
    size_t dot = text.find('.', start);
    if (dot == std::string_view::npos) dot = text.size();
    std::string_view label = text.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (!(std::islower(u) || std::isdigit(u) || c == '-' || c == '_')) return false;
    }
    labels.push_back(label);
    start = dot + 1;
  }
  if (labels.size() < 2) return false;
  const std::string_view tld = labels.back();
  if (tld.size() < 2 ||
      !std::all_of(tld.begin(), tld.end(), [](char c) { return std::islower(static_cast<unsigned char>(c)); })) {
    return false;
  }
  if (!require_known_tld) return true;
  if (std::find(text.begin(), text.end(), '_') != text.end()) return false;
  return OneOf(kBareHostTlds, tld) && !OneOf(kJavaRoots, labels.front());
}

bool IsIpLiteral(std::string_view text) {
  if (text.empty() || text.size() > 45) return false;
  // Cheap rejection before inet_pton (and its copy): most strings are not addresses.
  if (!std::all_of(text.begin(), text.end(),
                   [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':'; })) {
    return false;
  }
  const std::string copy(text);
  in_addr v4{};
  if (inet_pton(AF_INET, copy.c_str(), &v4) == 1) return true;
  in6_addr v6{};
  // Require at least two colons and one hex digit so that "::" alone is not an "address".
  return std::count(copy.begin(), copy.end(), ':') >= 2 &&
         std::any_of(copy.begin(), copy.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }) &&
         inet_pton(AF_INET6, copy.c_str(), &v6) == 1;
}

EndpointScan ScanEndpoints(const std::vector<LocatedString>& strings, const TrackerSet& tracker_set,
                           std::vector<TrackerMatch>* trackers) {
  Collector collected;
  for (const LocatedString& located : strings) {
    std::string_view text = located.text;
    for (size_t at = text.find("://"); at != std::string_view::npos; at = text.find("://", at + 3)) {
      TakeUrl(text, at, located.location, &collected);
    }
    if (text.size() < 4 || text.size() > kMaxHostLength) continue;
    if (IsIpLiteral(text)) {
      collected.Add(collected.ips, std::string(text), located.location);
    } else if (LooksLikeHost(text, /*require_known_tld=*/true)) {
      collected.Add(collected.hosts, std::string(text), located.location);
    }
  }
  EndpointScan scan;
  scan.url_sightings = ToSightings(collected.urls);
  scan.host_sightings = ToSightings(collected.hosts);
  scan.ip_sightings = ToSightings(collected.ips);
  for (const auto& s : scan.url_sightings) scan.endpoints.urls.push_back(s.value);
  for (const auto& s : scan.host_sightings) scan.endpoints.hosts.push_back(s.value);
  for (const auto& s : scan.ip_sightings) scan.endpoints.ips.push_back(s.value);

  for (const std::string& host : scan.endpoints.hosts) {
    for (const TrackerSignature& tracker : tracker_set.trackers) {
      if (!HostMatchesTracker(host, tracker)) continue;
      scan.endpoints.tracker_hosts.emplace(host, tracker.name);
      if (trackers != nullptr) {
        for (TrackerMatch& match : *trackers) {
          if (match.id == tracker.id) match.hosts.push_back(host);
        }
      }
      break;  // one owner per host: the lowest tracker id
    }
  }
  return scan;
}

std::vector<Finding> EndpointFindings(const EndpointScan& scan) {
  std::vector<Finding> out;
  const Endpoints& endpoints = scan.endpoints;
  auto location_of = [](const std::vector<EndpointSighting>& sightings, const std::string& value) {
    auto it = std::lower_bound(sightings.begin(), sightings.end(), value,
                               [](const EndpointSighting& s, const std::string& v) { return s.value < v; });
    return it != sightings.end() && it->value == value ? it->location : std::string();
  };
  if (!endpoints.tracker_hosts.empty()) {
    Finding finding{"endpoint.tracker_hosts",
                    "endpoint",
                    Severity::kMedium,
                    std::to_string(endpoints.tracker_hosts.size()) + " tracker host" +
                        (endpoints.tracker_hosts.size() == 1 ? "" : "s") + " in the app",
                    "The app names hosts that belong to tracker networks (Exodus network signatures); data sent "
                    "there reaches the tracker's operator.",
                    {}};
    for (const auto& [host, tracker] : endpoints.tracker_hosts) {
      if (finding.evidence.size() == kMaxEvidencePerFinding) break;
      finding.evidence.push_back({"host", host, location_of(scan.host_sightings, host), "tracker: " + tracker});
    }
    out.push_back(std::move(finding));
  }
  std::vector<const EndpointSighting*> cleartext;
  for (const EndpointSighting& url : scan.url_sightings) {
    const std::string scheme = url.value.substr(0, url.value.find(':'));
    if (OneOf(kCleartextSchemes, scheme)) cleartext.push_back(&url);
  }
  if (!cleartext.empty()) {
    Finding finding{"endpoint.cleartext_urls",
                    "endpoint",
                    Severity::kLow,
                    std::to_string(cleartext.size()) + " cleartext URL" + (cleartext.size() == 1 ? "" : "s"),
                    "The app contains http://, ws:// or ftp:// URLs: anything sent to them can be read and altered on "
                    "the network unless the platform blocks cleartext traffic.",
                    {}};
    for (const EndpointSighting* url : cleartext) {
      if (finding.evidence.size() == kMaxEvidencePerFinding) break;
      finding.evidence.push_back({"url", url->value, url->location, ""});
    }
    out.push_back(std::move(finding));
  }
  std::vector<const EndpointSighting*> public_ips;
  for (const EndpointSighting& ip : scan.ip_sightings) {
    if (IsPublicIp(ip.value)) public_ips.push_back(&ip);
  }
  if (!public_ips.empty()) {
    Finding finding{
        "endpoint.ip_literals",
        "endpoint",
        Severity::kLow,
        std::to_string(public_ips.size()) + " hard-coded public IP address" + (public_ips.size() == 1 ? "" : "es"),
        "Hard-coded addresses bypass DNS-based filtering and name-based review of where data goes. "
        "(Version strings shaped like an address are a known source of false matches.)",
        {}};
    for (const EndpointSighting* ip : public_ips) {
      if (finding.evidence.size() == kMaxEvidencePerFinding) break;
      finding.evidence.push_back({"ip", ip->value, ip->location, ""});
    }
    out.push_back(std::move(finding));
  }
  if (!endpoints.hosts.empty()) {
    Finding finding{"endpoint.hosts",
                    "endpoint",
                    Severity::kInfo,
                    std::to_string(endpoints.hosts.size()) + " network host" +
                        (endpoints.hosts.size() == 1 ? "" : "s") + " named in the app",
                    "Host names found in code strings and the manifest: where the app may connect.",
                    {}};
    for (const EndpointSighting& host : scan.host_sightings) {
      if (finding.evidence.size() == kMaxEvidencePerFinding) break;
      auto tracker = endpoints.tracker_hosts.find(host.value);
      finding.evidence.push_back({"host", host.value, host.location,
                                  tracker == endpoints.tracker_hosts.end() ? "" : "tracker: " + tracker->second});
    }
    out.push_back(std::move(finding));
  }
  return out;
}

}  // namespace appban::assess
