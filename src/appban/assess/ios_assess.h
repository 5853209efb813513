// The assessment of an iOS app (ios::IosApp): the same findings, risk model and reports as for an
// APK, from iOS evidence. Trackers by framework name, Objective-C class prefix, Swift module and
// host (data/ios-trackers.json, which reuses the Exodus ids so an SDK scores the same on both
// platforms); capabilities requested (usage descriptions, entitlements) and used (imported
// classes); endpoints from __cstring strings; hygiene (ATS arbitrary loads, get-task-allow,
// enterprise or expired provisioning, tracking SDKs without a privacy manifest, ad hoc
// signature); the publisher's Team ID against the vendor registry; parser anomalies. Pure;
// thread-safe (the knowledge is read-only).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "appban/assess/finding.h"
#include "appban/assess/report.h"
#include "appban/common/status.h"
#include "appban/ios/app.h"

namespace appban::assess {

struct IosTrackerSignature {
  std::string finding_id;  // "tracker.<exodus id>" or "tracker.ios.<slug>"
  std::string name, website;
  std::vector<std::string> frameworks, class_prefixes, swift_modules, hosts;
};
struct IosCapabilitySpec {
  std::string id, title;
  Severity severity = Severity::kMedium;
  // Requested by a usage-description key or an entitlement; used when the code refers to one of
  // the classes (imported or defined), Objective-C selectors (__objc_methname) or C functions
  // (imported symbols, without the leading underscore) behind it.
  std::vector<std::string> usage_keys, entitlements, classes, selectors, functions;
};
struct IosKnowledge {
  std::vector<IosTrackerSignature> trackers;
  std::vector<IosCapabilitySpec> capabilities;
  std::string tracker_description;  // DescribeSignatureFile of ios-trackers.json
};

// Parses data/ios-trackers.json; errors name the entry and field at fault.
Result<IosKnowledge> ParseIosKnowledge(std::string_view json_text, const std::string& source);
// Loads <data_dir>/ios-trackers.json.
Result<IosKnowledge> LoadIosKnowledge(const std::string& data_dir);

// `knowledge` supplies the vendor registry (matched on the bundle id's prefixes) and the risk
// model's shared parts; `ios_knowledge` the iOS signatures.
Assessment AssessIos(const ios::IosApp& app, const KnowledgeBase& knowledge, const IosKnowledge& ios_knowledge,
                     const RiskModel& model);

}  // namespace appban::assess
