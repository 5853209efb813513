// STUB: replaced by the real implementation.
#include "appban/assess/analysis.h"
namespace appban::assess {
Result<TrackerSet> LoadTrackers(const std::string&) { return Status::Unsupported("trackers"); }
Result<TrackerSet> ParseTrackers(std::string_view, std::string) { return Status::Unsupported("trackers"); }
Result<KnowledgeBase> LoadKnowledgeBase(const std::string&, const std::string&) { return KnowledgeBase{}; }
Analysis Analyze(const apk::Apk&, const KnowledgeBase&) { return {}; }
}  // namespace appban::assess
