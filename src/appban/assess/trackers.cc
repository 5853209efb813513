// Tracker SDK detection from class names. One separator convention: DEX descriptors are turned
// into dotted names and signatures are matched on dotted names, with a signature's '.' meaning a
// literal dot (the Exodus regexes, compared naively against "com/appsflyer/...", let '.' match any
// character and over-match). See docs/assessment.md for the exact prefix rules.
#include <algorithm>
#include <cctype>
#include <map>
#include <unordered_map>

#include "appban/assess/detectors.h"
#include "appban/assess/pattern.h"

namespace appban::assess {

std::string DottedClassName(std::string_view descriptor) {
  if (descriptor.size() < 3 || descriptor.front() != 'L' || descriptor.back() != ';') return "";
  std::string dotted(descriptor.substr(1, descriptor.size() - 2));
  std::replace(dotted.begin(), dotted.end(), '/', '.');
  return dotted;
}

namespace {

enum class PrefixKind {
  kPackage,    // "com.appsflyer.": everything inside the package
  kComponent,  // "com.tune": the name itself or anything under it ('.' or '$' follows)
  kClassStem,  // "com.adobe.mobile.Analytics": class names starting with it in that package
};

struct PrefixEntry {
  PrefixKind kind;
  std::string full;  // for kClassStem, the whole prefix
  size_t tracker;
};

// Lets the index be probed with string_views cut from a class name without allocating.
struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

bool IsClassLike(std::string_view component) {
  return !component.empty() && std::isupper(static_cast<unsigned char>(component.front()));
}

}  // namespace

struct TrackerMatcher::Index {
  // Keyed by a dotted name cut at a package boundary: "com.appsflyer" for both "com.appsflyer."
  // and "com.appsflyer", "com.adobe.mobile" for the stem "com.adobe.mobile.Analytics".
  std::unordered_map<std::string, std::vector<PrefixEntry>, TransparentHash, std::equal_to<>> prefixes;
  std::vector<std::pair<std::string, size_t>> infixes;
  std::vector<std::pair<SignaturePattern, size_t>> patterns;
};

TrackerMatcher::TrackerMatcher(const TrackerSet& trackers) : index_(std::make_unique<Index>()) {
  for (size_t t = 0; t < trackers.trackers.size(); ++t) {
    const TrackerSignature& tracker = trackers.trackers[t];
    for (const std::string& prefix : tracker.code_prefixes) {
      std::string_view body = prefix;
      if (body.empty()) continue;
      if (body.back() == '.') {
        body.remove_suffix(1);
        index_->prefixes[std::string(body)].push_back({PrefixKind::kPackage, prefix, t});
        continue;
      }
      const size_t last_dot = body.rfind('.');
      const std::string_view last = last_dot == std::string_view::npos ? body : body.substr(last_dot + 1);
      if (IsClassLike(last) && last_dot != std::string_view::npos) {
        index_->prefixes[std::string(body.substr(0, last_dot))].push_back({PrefixKind::kClassStem, prefix, t});
      } else {
        index_->prefixes[std::string(body)].push_back({PrefixKind::kComponent, prefix, t});
      }
    }
    for (const std::string& infix : tracker.code_infixes) index_->infixes.emplace_back(infix, t);
    for (const std::string& pattern : tracker.code_patterns) {
      // ParseTrackers validated the pattern; a hand-built set with a bad one just never matches.
      auto compiled = SignaturePattern::Compile(pattern);
      if (compiled.ok()) index_->patterns.emplace_back(std::move(compiled).value(), t);
    }
  }
}

TrackerMatcher::~TrackerMatcher() = default;
TrackerMatcher::TrackerMatcher(TrackerMatcher&&) noexcept = default;
TrackerMatcher& TrackerMatcher::operator=(TrackerMatcher&&) noexcept = default;

void TrackerMatcher::Match(std::string_view dotted, std::vector<size_t>* out) const {
  out->clear();
  // Cut the name at every '.' and '$' (and at its end); each cut is a candidate key.
  for (size_t cut = 0; cut <= dotted.size(); ++cut) {
    const bool boundary = cut == dotted.size() || dotted[cut] == '.' || dotted[cut] == '$';
    if (!boundary || cut == 0) continue;
    auto found = index_->prefixes.find(dotted.substr(0, cut));
    if (found == index_->prefixes.end()) continue;
    const bool at_dot = cut < dotted.size() && dotted[cut] == '.';
    for (const PrefixEntry& entry : found->second) {
      bool hit = false;
      switch (entry.kind) {
        case PrefixKind::kPackage:
          hit = at_dot;
          break;
        case PrefixKind::kComponent:
          hit = true;
          break;
        case PrefixKind::kClassStem:
          hit = at_dot && dotted.substr(0, entry.full.size()) == entry.full;
          break;
      }
      if (hit) out->push_back(entry.tracker);
    }
  }
  for (const auto& [infix, tracker] : index_->infixes) {
    if (dotted.find(infix) != std::string_view::npos) out->push_back(tracker);
  }
  for (const auto& [pattern, tracker] : index_->patterns) {
    if (pattern.Search(dotted)) out->push_back(tracker);
  }
  std::sort(out->begin(), out->end());
  out->erase(std::unique(out->begin(), out->end()), out->end());
}

std::vector<TrackerMatch> DetectTrackers(const std::vector<ClassName>& classes, const TrackerSet& trackers) {
  const TrackerMatcher matcher(trackers);
  std::map<size_t, TrackerMatch> found;
  std::vector<size_t> hits;
  for (const ClassName& cls : classes) {
    matcher.Match(cls.dotted, &hits);
    for (size_t t : hits) {
      TrackerMatch& match = found[t];
      if (match.class_count == 0) {
        const TrackerSignature& signature = trackers.trackers[t];
        match.id = signature.id;
        match.name = signature.name;
        match.website = signature.website;
      }
      ++match.class_count;
      if (match.classes.size() < kMaxClassesPerTracker) {
        match.classes.push_back(cls.dotted);
        match.class_dex_files.push_back(cls.dex_file);
      }
      if (std::find(match.dex_files.begin(), match.dex_files.end(), cls.dex_file) == match.dex_files.end()) {
        match.dex_files.push_back(cls.dex_file);
      }
    }
  }
  std::vector<TrackerMatch> out;
  for (auto& [index, match] : found) out.push_back(std::move(match));
  std::stable_sort(out.begin(), out.end(), [](const TrackerMatch& a, const TrackerMatch& b) { return a.id < b.id; });
  return out;
}

bool HostMatchesTracker(std::string_view host, const TrackerSignature& tracker) {
  for (const std::string& domain : tracker.network_domains) {
    if (domain.find('.') == std::string::npos) {
      // A bare word ("fidzup"): any whole label.
      size_t start = 0;
      while (start <= host.size()) {
        size_t dot = host.find('.', start);
        if (dot == std::string_view::npos) dot = host.size();
        if (host.substr(start, dot - start) == domain) return true;
        start = dot + 1;
      }
      continue;
    }
    if (host == domain) return true;
    if (host.size() > domain.size() && host.substr(host.size() - domain.size()) == domain &&
        host[host.size() - domain.size() - 1] == '.') {
      return true;
    }
  }
  for (const std::string& pattern : tracker.network_patterns) {
    auto compiled = SignaturePattern::Compile(pattern);
    if (compiled.ok() && compiled->Search(host)) return true;
  }
  return false;
}

std::vector<Finding> TrackerFindings(const std::vector<TrackerMatch>& trackers) {
  std::vector<Finding> out;
  for (const TrackerMatch& tracker : trackers) {
    Finding finding;
    finding.id = "tracker." + std::to_string(tracker.id);
    finding.category = "tracker";
    finding.severity = Severity::kMedium;
    finding.title = "Tracker SDK: " + tracker.name;
    finding.description = "The app contains the code of the " + tracker.name + " tracker SDK (" +
                          std::to_string(tracker.class_count) + " class" + (tracker.class_count == 1 ? "" : "es") +
                          " in " + std::to_string(tracker.dex_files.size()) + " DEX file" +
                          (tracker.dex_files.size() == 1 ? "" : "s") +
                          "). Tracker SDKs collect usage and device data and send it to their operator." +
                          (tracker.website.empty() ? "" : " See " + tracker.website + ".");
    for (size_t i = 0; i < tracker.classes.size(); ++i) {
      const std::string location = i < tracker.class_dex_files.size() ? tracker.class_dex_files[i] : "";
      finding.evidence.push_back({"class", tracker.classes[i], location, ""});
    }
    if (tracker.class_count > tracker.classes.size()) {
      finding.evidence.back().note =
          "and " + std::to_string(tracker.class_count - tracker.classes.size()) + " more matching classes";
    }
    for (const std::string& host : tracker.hosts) {
      finding.evidence.push_back({"host", host, "", "endpoint of " + tracker.name});
    }
    out.push_back(std::move(finding));
  }
  return out;
}

}  // namespace appban::assess
