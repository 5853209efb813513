#include "appban/assess/risk.h"

#include <gtest/gtest.h>

#include <random>

#include "appban/common/file.h"

namespace appban::assess {
namespace {

Finding MakeFinding(std::string id, std::string category, Severity severity, std::string title = "") {
  Finding finding;
  finding.id = std::move(id);
  finding.category = std::move(category);
  finding.severity = severity;
  finding.title = title.empty() ? finding.id : std::move(title);
  return finding;
}

RiskModel ShippedModel() {
  auto model = LoadRiskModel(std::string(APPBAN_SOURCE_DIR) + "/data/risk-model.toml");
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? *model : RiskModel{};
}

// A pool of findings of every category and severity, as the detectors produce them.
std::vector<Finding> FindingPool() {
  std::vector<Finding> pool;
  const char* categories[] = {"tracker", "endpoint", "capability", "publisher", "obfuscation", "hygiene", "anomaly"};
  Severity severities[] = {Severity::kInfo, Severity::kLow, Severity::kMedium, Severity::kHigh, Severity::kCritical};
  int n = 0;
  for (const char* category : categories) {
    for (Severity severity : severities) {
      pool.push_back(MakeFinding(std::string(category) + ".f" + std::to_string(n++), category, severity));
    }
  }
  pool.push_back(MakeFinding("tracker.17", "tracker", Severity::kMedium));
  pool.push_back(MakeFinding("capability.location.used", "capability", Severity::kHigh));
  pool.push_back(MakeFinding("capability.sms.requested", "capability", Severity::kMedium));
  pool.push_back(MakeFinding("publisher.jurisdiction.cn", "publisher", Severity::kInfo));
  pool.push_back(MakeFinding("obfuscation.packer.jiagu", "obfuscation", Severity::kHigh));
  return pool;
}

TEST(RiskTest, ShippedModelLoadsWithDocumentedThresholds) {
  RiskModel model = ShippedModel();
  EXPECT_EQ(model.medium_at, 25);
  EXPECT_EQ(model.high_at, 50);
  EXPECT_EQ(model.critical_at, 75);
  EXPECT_EQ(model.unacceptable_at, 60);
  EXPECT_DOUBLE_EQ(model.WeightOf(MakeFinding("tracker.5", "tracker", Severity::kLow)), 0.15);
  EXPECT_DOUBLE_EQ(model.WeightOf(MakeFinding("capability.sms.used", "capability", Severity::kHigh)), 0.09);
  EXPECT_DOUBLE_EQ(model.WeightOf(MakeFinding("hygiene.debuggable", "hygiene", Severity::kHigh)), 0.18);
}

TEST(RiskTest, TwoTrackerSdksAloneCallForReview) {
  RiskModel model = ShippedModel();
  Risk one = ScoreRisk({MakeFinding("tracker.11", "tracker", Severity::kMedium)}, model);
  EXPECT_EQ(one.verdict, Verdict::kAcceptable);
  Risk two = ScoreRisk({MakeFinding("tracker.11", "tracker", Severity::kMedium),
                        MakeFinding("tracker.66", "tracker", Severity::kMedium)},
                       model);
  EXPECT_EQ(two.score, 27);  // 100 * (1 - 0.85^2), rounded down
  EXPECT_EQ(two.verdict, Verdict::kReview);
}

TEST(RiskTest, NoFindingsIsLowAndAcceptable) {
  Risk risk = ScoreRisk({}, ShippedModel());
  EXPECT_EQ(risk.score, 0);
  EXPECT_EQ(risk.level, RiskLevel::kLow);
  EXPECT_EQ(risk.verdict, Verdict::kAcceptable);
  EXPECT_TRUE(risk.reasons.empty());
}

TEST(RiskTest, ScoreIsTheNoisyOrOfWeightsWithinCaps) {
  RiskModel model;
  model.severity_weight[Severity::kHigh] = 0.5;
  model.category_cap["tracker"] = 0.6;
  // Two high findings in one category: 1 - 0.5*0.5 = 0.75, capped at 0.6 -> 60.
  Risk risk = ScoreRisk(
      {MakeFinding("tracker.a", "tracker", Severity::kHigh), MakeFinding("tracker.b", "tracker", Severity::kHigh)},
      model);
  EXPECT_EQ(risk.score, 60);
  // A third category-less high finding: 1 - (1-0.6)*(1-0.5) = 0.8 -> 80.
  risk = ScoreRisk(
      {MakeFinding("tracker.a", "tracker", Severity::kHigh), MakeFinding("tracker.b", "tracker", Severity::kHigh),
       MakeFinding("hygiene.x", "hygiene", Severity::kHigh)},
      model);
  EXPECT_EQ(risk.score, 80);
  EXPECT_EQ(risk.level, RiskLevel::kCritical);
  EXPECT_EQ(risk.verdict, Verdict::kUnacceptable);
  ASSERT_EQ(risk.reasons.size(), 2u);
  EXPECT_EQ(risk.reasons[0].category, "tracker");  // removing trackers costs 30 points, hygiene 20
  EXPECT_EQ(risk.reasons[0].points, 30);
  EXPECT_EQ(risk.reasons[0].finding_ids, (std::vector<std::string>{"tracker.a", "tracker.b"}));
  EXPECT_EQ(risk.reasons[1].points, 20);
}

TEST(RiskTest, FloorLiftsTheScoreAndComesFirstAmongReasons) {
  RiskModel model = ShippedModel();
  Risk risk = ScoreRisk({MakeFinding("publisher.jurisdiction.cn", "publisher", Severity::kInfo)}, model);
  EXPECT_EQ(risk.score, 60);
  EXPECT_EQ(risk.verdict, Verdict::kUnacceptable);
  ASSERT_FALSE(risk.reasons.empty());
  EXPECT_EQ(risk.reasons[0].category, "floor");
  EXPECT_EQ(risk.reasons[0].finding_ids, (std::vector<std::string>{"publisher.jurisdiction.cn"}));
  // A packer floors at 50 whatever else is found; a jurisdiction outside the list adds nothing.
  risk = ScoreRisk({MakeFinding("obfuscation.packer.jiagu", "obfuscation", Severity::kHigh)}, model);
  EXPECT_EQ(risk.score, 50);
  EXPECT_EQ(ScoreRisk({MakeFinding("publisher.jurisdiction.se", "publisher", Severity::kInfo)}, model).score, 0);
}

// The monotonicity requirement: for random subsets of findings, adding one never lowers
// the score (nor the level or the verdict).
TEST(RiskTest, AddingAFindingNeverLowersTheRisk) {
  RiskModel model = ShippedModel();
  std::vector<Finding> pool = FindingPool();
  std::mt19937 random(20261127);
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<Finding> subset;
    for (const Finding& finding : pool) {
      if (random() % 3 == 0) subset.push_back(finding);
    }
    Risk before = ScoreRisk(subset, model);
    const Finding& added = pool[random() % pool.size()];
    subset.insert(subset.begin() + static_cast<long>(random() % (subset.size() + 1)), added);
    Risk after = ScoreRisk(subset, model);
    ASSERT_GE(after.score, before.score) << "adding " << added.id << " lowered the score";
    ASSERT_GE(after.level, before.level);
    ASSERT_GE(after.verdict, before.verdict);
  }
}

TEST(RiskTest, ModelFileErrorsNameTheProblem) {
  auto bad_weight = ParseRiskModel("[[finding]]\nid = \"tracker.*\"\nweight = 1.5\n", "model.toml");
  ASSERT_FALSE(bad_weight.ok());
  EXPECT_NE(bad_weight.status().message().find("finding[0]: weight 1.5"), std::string::npos)
      << bad_weight.status().message();
  auto bad_order = ParseRiskModel("[thresholds]\nmedium = 60\nhigh = 50\n", "model.toml");
  ASSERT_FALSE(bad_order.ok());
  EXPECT_NE(bad_order.status().message().find("medium <= high"), std::string::npos);
  auto bad_syntax = ParseRiskModel("name = \n", "model.toml");
  ASSERT_FALSE(bad_syntax.ok());
  EXPECT_NE(bad_syntax.status().message().find("model.toml:1"), std::string::npos) << bad_syntax.status().message();
  auto bad_severity = ParseRiskModel("[severity_weight]\nsevere = 0.1\n", "model.toml");
  ASSERT_FALSE(bad_severity.ok());
  EXPECT_NE(bad_severity.status().message().find("unknown severity 'severe'"), std::string::npos);
}

// Regression: a dotted key with 100,000 parts (200 KB, under the 1 MiB file limit) made toml++
// recurse until the stack overflowed. It is now refused before parsing, naming the line, while
// dots inside strings and comments, numbers and ordinary two-part keys are still accepted.
TEST(RiskTest, RefusesKeysNestedTooDeeplyInsteadOfOverflowingTheStack) {
  std::string deep_key = "a";
  for (int i = 0; i < 100000; ++i) deep_key += ".a";
  auto deep = ParseRiskModel("name = \"x\"\n" + deep_key + " = 1\n", "model.toml");
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("model.toml:2"), std::string::npos) << deep.status().message();
  EXPECT_NE(deep.status().message().find("dotted parts"), std::string::npos) << deep.status().message();
  EXPECT_FALSE(ParseRiskModel("[" + deep_key + "]\n", "model.toml").ok());

  const std::string many_dots(200, '.');
  // Comment, basic string, literal multi-line string, a two-part dotted key, and a multi-line basic
  // string holding an escaped quote and ending with a quote of its own ("""...\"""""): all valid.
  const std::string text = "# " + many_dots + "\nname = \"" + many_dots + "\"\nversion = '''" + many_dots +
                           "'''\nseverity_weight.low = 0.25\n[[floor]]\nid = \"a.b\"\nmin_score = 10\nwhy = \"\"\"" +
                           many_dots + "\\\"\"\"\"\"\n";
  auto fine = ParseRiskModel(text, "model.toml");
  ASSERT_TRUE(fine.ok()) << fine.status().message();
  EXPECT_EQ(fine->name, many_dots);
  EXPECT_EQ(fine->version, many_dots);
  EXPECT_EQ(fine->severity_weight.at(Severity::kLow), 0.25);
  ASSERT_EQ(fine->floors.size(), 1u);
  EXPECT_EQ(fine->floors[0].why, many_dots + "\"\"");
}

TEST(RiskTest, ParsesFailOnLevels) {
  EXPECT_EQ(*ParseRiskLevel("high"), RiskLevel::kHigh);
  EXPECT_FALSE(ParseRiskLevel("severe").ok());
}

}  // namespace
}  // namespace appban::assess
