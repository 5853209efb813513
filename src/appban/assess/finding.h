// Findings: the unit of evidence in an assessment. Every detector (trackers, endpoints,
// capabilities, publisher, obfuscation, hygiene, parser anomalies) emits Findings; the risk model
// scores them; every report (text, JSON, SARIF, HTML) prints them with their evidence. A finding's
// id is stable across versions so an organisation can tune its weight in the risk model file and
// a vendor can be told exactly which fact a verdict rests on.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace appban::assess {

enum class Severity { kInfo = 0, kLow = 1, kMedium = 2, kHigh = 3, kCritical = 4 };
std::string_view SeverityName(Severity severity);  // "info", "low", ...

// One fact a finding rests on, precise enough for someone else to check it in the APK.
struct Evidence {
  // "class" (DEX class descriptor, dotted), "method" (Lcls;->name reference), "string" (DEX
  // string), "manifest" (manifest path like /manifest/application/activity[@name=...]),
  // "permission", "host", "url", "ip", "file" (ZIP entry), "certificate", "anomaly".
  std::string kind;
  std::string value;
  std::string location;  // where it was found: "classes2.dex", "AndroidManifest.xml", "lib/arm64-v8a/libjiagu.so"
  std::string note;      // optional remark on this item ("tracker: AppsFlyer"), "" when none
};

struct Finding {
  std::string id;        // stable: "tracker.<exodus-id>", "capability.location", "hygiene.cleartext_traffic", ...
  std::string category;  // "tracker", "endpoint", "capability", "publisher", "obfuscation", "hygiene", "anomaly"
  Severity severity = Severity::kInfo;
  std::string title;        // one line
  std::string description;  // why it matters, in plain words
  std::vector<Evidence> evidence;
};

}  // namespace appban::assess
