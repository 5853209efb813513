// Fuzzes assess::ParseTrackers (Exodus tracker JSON) and everything it hands on to: each loaded
// signature's patterns are compiled by SignaturePattern and run, through TrackerMatcher and
// HostMatchesTracker, against a fixed set of class names and hosts (plain, hostile-long and
// empty), so the matcher's index and NFA see whatever patterns the parser let through.
// Matching costs O(pattern atoms x text length) per pattern, by design; a 1 MB file of long
// patterns makes that minutes of work under ASan, so inputs whose regex patterns total more than
// kMaxPatternBytes are only parsed (see the report: no such budget exists in ParseTrackers yet).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "appban/assess/analysis.h"
#include "appban/assess/detectors.h"
#include "appban/assess/pattern.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto trackers =
      appban::assess::ParseTrackers(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz-trackers.json");
  if (!trackers.ok()) return 0;
  constexpr size_t kMaxPatternBytes = 4 << 10;
  size_t pattern_bytes = 0;
  for (const auto& tracker : trackers->trackers) {
    for (const auto& source : tracker.code_patterns) pattern_bytes += source.size();
    for (const auto& source : tracker.network_patterns) pattern_bytes += source.size();
  }
  if (pattern_bytes > kMaxPatternBytes) return 0;

  const std::string long_name(5000, 'a');  // longer than SignaturePattern::kMaxTextLength
  const std::vector<std::string> class_names = {"com.appsflyer.AppsFlyerLib",
                                                "com.google.firebase.analytics.FirebaseAnalytics",
                                                "com.facebook.ads.AdView",
                                                "a.b",
                                                "",
                                                ".",
                                                "com.tealium.core.Tealium",
                                                long_name};
  const std::vector<std::string> hosts = {"app-measurement.com", "t.appsflyer.com", "krxd.net", "x.y.estimote.com", "",
                                          "localhost",           long_name};

  appban::assess::TrackerMatcher matcher(*trackers);
  std::vector<size_t> matched;
  size_t total = 0;
  for (const auto& name : class_names) {
    matcher.Match(name, &matched);
    for (size_t index : matched) {
      if (index >= trackers->trackers.size()) __builtin_trap();  // indices must be into the set
    }
    total += matched.size();
  }
  std::vector<appban::assess::ClassName> classes;
  for (const auto& name : class_names) classes.push_back({name, "classes.dex"});
  total += appban::assess::DetectTrackers(classes, *trackers).size();

  for (const auto& tracker : trackers->trackers) {
    for (const auto& host : hosts) total += appban::assess::HostMatchesTracker(host, tracker);
    // Every pattern the parser kept must compile: it promised to reject the rest with an error.
    for (const auto* patterns : {&tracker.code_patterns, &tracker.network_patterns}) {
      for (const auto& source : *patterns) {
        auto pattern = appban::assess::SignaturePattern::Compile(source);
        if (!pattern.ok()) __builtin_trap();
        for (const auto& name : class_names) total += pattern->Search(name);
      }
    }
  }
  return total == 0xdeadbeef;  // keep `total` observable
}
