// The risk model: turns findings into a score (0-100), a level and a verdict, with reasons that
// point at the findings behind them. The model is data (data/risk-model.toml) so an organisation
// can tune it to its risk appetite; docs/assessment.md explains the reasoning.
//
// Monotonic by construction: every finding contributes a weight w in [0, 1) and the score is a
// "noisy OR" of the weights, per category capped and then combined across categories:
//     category_c = min(cap_c, 1 - prod_{i in c} (1 - w_i));   score = 100 * (1 - prod_c (1 - category_c))
// then raised to the floor of any floor rule a finding triggers. Each step is non-decreasing in
// every weight and in the set of findings, so adding a finding can never lower the score (unlike
// ratio scores such as MobSF's, which drop when warnings are added). Pure; thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "appban/assess/finding.h"
#include "appban/common/status.h"

namespace appban::assess {

enum class RiskLevel { kLow = 0, kMedium = 1, kHigh = 2, kCritical = 3 };
enum class Verdict { kAcceptable = 0, kReview = 1, kUnacceptable = 2 };
std::string_view RiskLevelName(RiskLevel level);
std::string_view VerdictName(Verdict verdict);
// Parses "low|medium|high|critical"; used by --fail-on.
Result<RiskLevel> ParseRiskLevel(std::string_view text);

struct RiskModel {
  std::string name = "default";
  std::string version;
  std::string source;  // file it was loaded from
  // Weight of a finding by severity, unless a rule below names it.
  std::map<Severity, double> severity_weight;
  // Weight by finding id: exact ("hygiene.debuggable") or prefix with a trailing '*'
  // ("tracker.*"). The longest matching pattern wins. A weight of 0 makes a finding informational.
  std::vector<std::pair<std::string, double>> finding_weight;
  // Highest share (0-1] one category can reach, so that many small findings of one kind cannot on
  // their own make an app critical.
  std::map<std::string, double> category_cap;
  // A finding id pattern that lifts the score to at least `min_score` (e.g. a vendor in the
  // registry whose jurisdiction an organisation distrusts).
  struct Floor {
    std::string pattern;
    int min_score = 0;
    std::string why;
  };
  std::vector<Floor> floors;
  // Level thresholds (score >= value) and verdict thresholds.
  int medium_at = 25, high_at = 50, critical_at = 75;
  int review_at = 25, unacceptable_at = 60;

  double WeightOf(const Finding& finding) const;
};

Result<RiskModel> LoadRiskModel(const std::string& path);
Result<RiskModel> ParseRiskModel(std::string_view toml_text, std::string source);

struct RiskReason {
  std::string category;
  std::string text;  // "3 tracker SDKs: AppsFlyer, Facebook Ads, Google Firebase Analytics"
  int points = 0;    // how much the score would drop without this category
  std::vector<std::string> finding_ids;
};

struct Risk {
  int score = 0;  // 0-100
  RiskLevel level = RiskLevel::kLow;
  Verdict verdict = Verdict::kAcceptable;
  std::vector<RiskReason> reasons;  // most points first; floors first of all
};

Risk ScoreRisk(const std::vector<Finding>& findings, const RiskModel& model);

}  // namespace appban::assess
