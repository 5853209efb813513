// An assessment of one APK (facts + analysis + risk) and its renderings: terminal text, JSON
// (schema "appban.assess/1", docs/formats/assess-json.md), SARIF 2.1.0 for CI pipelines, and a
// self-contained HTML page (no external assets) to attach to a decision. An Assessment keeps the
// rendered `app` facts rather than the Apk itself, so thousands can be held at once without the
// inflated DEX. Renderers are pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "appban/apk/apk.h"
#include "appban/assess/analysis.h"
#include "appban/assess/risk.h"
#include "appban/common/time.h"

namespace appban::assess {

inline constexpr const char* kAssessSchema = "appban.assess/1";

struct Assessment {
  nlohmann::ordered_json file;       // as in inspect: path, size, sha256, zip_entries
  nlohmann::ordered_json app;        // the `app` object of inspect, unchanged
  nlohmann::ordered_json anomalies;  // the inspect anomalies
  Analysis analysis;
  Risk risk;
  std::string risk_model;  // "<name> v<version>"
  // The tracker signature file used: "trackers.json: 427 signatures, SHA-256 …" (TrackerSet::description).
  std::string tracker_database;

  std::string path() const { return file.value("path", ""); }
  std::string package() const { return app.value("package", ""); }
  // The app's version string, "" when the package has none (the JSON member is then null).
  std::string version_name() const;
};

Assessment Assess(const apk::Apk& apk, const KnowledgeBase& knowledge, const RiskModel& model);

nlohmann::ordered_json AssessmentJson(const Assessment& assessment);
std::string RenderText(const Assessment& assessment, bool color);
// One SARIF log with one run covering every assessed file.
nlohmann::ordered_json RenderSarif(const std::vector<Assessment>& assessments, const std::string& tool_version);
// One HTML page; with several assessments, a summary table first and a section for each. The
// footer dates the page with `generated_at` and names the tracker database(s) used.
std::string RenderHtml(const std::vector<Assessment>& assessments, const std::string& tool_version,
                       UnixSeconds generated_at);

}  // namespace appban::assess
