#include "appban/assess/risk.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "appban/assess/detectors.h"  // GlobMatch (finding ids contain no '/')
#include "appban/common/toml.h"

namespace appban::assess {
namespace {

constexpr double kMaxWeight = 0.99;               // a weight of 1 would make every other finding irrelevant
constexpr uint64_t kMaxRiskModelBytes = 1 << 20;  // a model file is a few KB

// toml++ recurses once per part of a dotted key, and a key of tens of thousands of parts (about
// 100 KB, well inside kMaxRiskModelBytes) overflows the stack inside the library; a model needs
// two-part keys at most, and a number or date-time has one dot (TomlLimits::max_key_dots).
constexpr TomlLimits kTomlLimits{.max_bytes = kMaxRiskModelBytes, .max_key_dots = 15};

// Literal characters in a pattern: the more specific pattern wins.
size_t Specificity(std::string_view pattern) {
  return static_cast<size_t>(std::count_if(pattern.begin(), pattern.end(), [](char c) { return c != '*'; }));
}

double Combine(const std::vector<double>& weights) {
  double keep = 1.0;
  for (double w : weights) keep *= (1.0 - w);
  return 1.0 - keep;
}

struct Categorised {
  std::map<std::string, std::vector<double>> weights;
  std::map<std::string, std::vector<const Finding*>> findings;
};

double ScoreOf(const Categorised& input, const RiskModel& model, const std::string& without_category) {
  std::vector<double> categories;
  for (const auto& [category, weights] : input.weights) {
    if (category == without_category) continue;
    double value = Combine(weights);
    auto cap = model.category_cap.find(category);
    if (cap != model.category_cap.end()) value = std::min(value, cap->second);
    categories.push_back(value);
  }
  return 100.0 * Combine(categories);
}

std::string CategoryLabel(const std::string& category, size_t count) {
  static const std::map<std::string, std::pair<std::string, std::string>> kLabels = {
      {"tracker", {"tracker SDK", "tracker SDKs"}},
      {"endpoint", {"network endpoint finding", "network endpoint findings"}},
      {"capability", {"sensitive capability", "sensitive capabilities"}},
      {"publisher", {"publisher finding", "publisher findings"}},
      {"obfuscation", {"obfuscation/packing finding", "obfuscation/packing findings"}},
      {"hygiene", {"transport/storage hygiene issue", "transport/storage hygiene issues"}},
      {"anomaly", {"package anomaly", "package anomalies"}},
  };
  auto it = kLabels.find(category);
  if (it == kLabels.end()) return category + (count == 1 ? " finding" : " findings");
  return count == 1 ? it->second.first : it->second.second;
}

// "Tracker SDK: AppsFlyer" reads "AppsFlyer" inside "2 tracker SDKs: ..."; a title whose prefix
// before ": " names the category loses that prefix in reasons.
std::string ShortTitle(const std::string& title, const std::string& category) {
  size_t colon = title.find(": ");
  if (colon == std::string::npos) return title;
  std::string prefix = title.substr(0, colon);
  for (char& c : prefix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return prefix.find(category) != std::string::npos ? title.substr(colon + 2) : title;
}

Status CheckWeight(double weight, const std::string& where) {
  if (!(weight >= 0.0 && weight <= kMaxWeight)) {
    return Status::InvalidArgument(where + ": weight " + std::to_string(weight) + " is outside [0, 0.99]");
  }
  return Status::Ok();
}

Result<Severity> ParseSeverity(std::string_view name) {
  for (Severity s : {Severity::kInfo, Severity::kLow, Severity::kMedium, Severity::kHigh, Severity::kCritical}) {
    if (SeverityName(s) == name) return s;
  }
  return Status::InvalidArgument("unknown severity '" + std::string(name) + "' (info, low, medium, high, critical)");
}

}  // namespace

std::string_view RiskLevelName(RiskLevel level) {
  switch (level) {
    case RiskLevel::kLow:
      return "low";
    case RiskLevel::kMedium:
      return "medium";
    case RiskLevel::kHigh:
      return "high";
    case RiskLevel::kCritical:
      return "critical";
  }
  return "low";
}

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kAcceptable:
      return "acceptable";
    case Verdict::kReview:
      return "review";
    case Verdict::kUnacceptable:
      return "unacceptable";
  }
  return "review";
}

Result<RiskLevel> ParseRiskLevel(std::string_view text) {
  for (RiskLevel level : {RiskLevel::kLow, RiskLevel::kMedium, RiskLevel::kHigh, RiskLevel::kCritical}) {
    if (RiskLevelName(level) == text) return level;
  }
  return Status::InvalidArgument("unknown risk level '" + std::string(text) + "' (low, medium, high, critical)");
}

double RiskModel::WeightOf(const Finding& finding) const {
  const std::pair<std::string, double>* best = nullptr;
  for (const auto& rule : finding_weight) {
    if (!GlobMatch(rule.first, finding.id)) continue;
    if (best == nullptr || Specificity(rule.first) > Specificity(best->first)) best = &rule;
  }
  if (best != nullptr) return best->second;
  auto it = severity_weight.find(finding.severity);
  return it == severity_weight.end() ? 0.0 : it->second;
}

namespace {

// Values are read leniently on purpose (a missing or mistyped name or version falls back to its
// default, keys the model does not know are ignored): what a model file may say is documented in
// docs/risk-model.md, and tightening it would refuse files that load today.
Result<RiskModel> RiskModelFromToml(const toml::table& table, const std::string& source) {
  RiskModel model;
  model.source = source;
  model.name = table["name"].value_or(std::string("unnamed"));
  model.version = table["version"].value_or(std::string());

  if (auto* thresholds = table["thresholds"].as_table()) {
    auto read = [&](const char* key, int* out) -> Status {
      if (auto node = (*thresholds)[key]) {
        auto value = node.value<int64_t>();
        if (!value || *value < 0 || *value > 100) {
          return Status::InvalidArgument(source + ": thresholds." + key + " must be an integer 0-100");
        }
        *out = static_cast<int>(*value);
      }
      return Status::Ok();
    };
    APPBAN_RETURN_IF_ERROR(read("medium", &model.medium_at));
    APPBAN_RETURN_IF_ERROR(read("high", &model.high_at));
    APPBAN_RETURN_IF_ERROR(read("critical", &model.critical_at));
    APPBAN_RETURN_IF_ERROR(read("review", &model.review_at));
    APPBAN_RETURN_IF_ERROR(read("unacceptable", &model.unacceptable_at));
  }
  if (!(model.medium_at <= model.high_at && model.high_at <= model.critical_at)) {
    return Status::InvalidArgument(source + ": thresholds must satisfy medium <= high <= critical");
  }
  if (model.review_at > model.unacceptable_at) {
    return Status::InvalidArgument(source + ": thresholds must satisfy review <= unacceptable");
  }

  if (auto* weights = table["severity_weight"].as_table()) {
    for (const auto& [key, node] : *weights) {
      APPBAN_ASSIGN_OR_RETURN(Severity severity, ParseSeverity(key.str()));
      auto value = node.value<double>();
      std::string where = source + ": severity_weight." + std::string(key.str());
      if (!value) return Status::InvalidArgument(where + " must be a number");
      APPBAN_RETURN_IF_ERROR(CheckWeight(*value, where));
      model.severity_weight[severity] = *value;
    }
  }
  if (auto* caps = table["category_cap"].as_table()) {
    for (const auto& [key, node] : *caps) {
      auto value = node.value<double>();
      if (!value || !(*value > 0.0 && *value <= 1.0)) {
        return Status::InvalidArgument(source + ": category_cap." + std::string(key.str()) + " must be in (0, 1]");
      }
      model.category_cap[std::string(key.str())] = *value;
    }
  }
  if (auto* rules = table["finding"].as_array()) {
    size_t index = 0;
    for (const auto& node : *rules) {
      std::string where = source + ": finding[" + std::to_string(index++) + "]";
      const auto* rule = node.as_table();
      if (rule == nullptr) return Status::InvalidArgument(where + " must be a table");
      auto id = (*rule)["id"].value<std::string>();
      auto weight = (*rule)["weight"].value<double>();
      if (!id || id->empty()) return Status::InvalidArgument(where + ".id is missing");
      if (!weight) return Status::InvalidArgument(where + ".weight is missing or not a number");
      APPBAN_RETURN_IF_ERROR(CheckWeight(*weight, where));
      model.finding_weight.emplace_back(*id, *weight);
    }
  }
  if (auto* floors = table["floor"].as_array()) {
    size_t index = 0;
    for (const auto& node : *floors) {
      std::string where = source + ": floor[" + std::to_string(index++) + "]";
      const auto* rule = node.as_table();
      if (rule == nullptr) return Status::InvalidArgument(where + " must be a table");
      RiskModel::Floor floor;
      floor.pattern = (*rule)["id"].value_or(std::string());
      auto min_score = (*rule)["min_score"].value<int64_t>();
      floor.why = (*rule)["why"].value_or(std::string());
      if (floor.pattern.empty()) return Status::InvalidArgument(where + ".id is missing");
      if (!min_score || *min_score < 0 || *min_score > 100) {
        return Status::InvalidArgument(where + ".min_score must be an integer 0-100");
      }
      floor.min_score = static_cast<int>(*min_score);
      model.floors.push_back(std::move(floor));
    }
  }
  return model;
}

}  // namespace

Result<RiskModel> ParseRiskModel(std::string_view toml_text, std::string source) {
  APPBAN_ASSIGN_OR_RETURN(toml::table table, ParseToml(toml_text, source, kTomlLimits));
  return RiskModelFromToml(table, source);
}

Result<RiskModel> LoadRiskModel(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(toml::table table, ReadTomlFile(path, kTomlLimits));
  return RiskModelFromToml(table, path);
}

Risk ScoreRisk(const std::vector<Finding>& findings, const RiskModel& model) {
  Categorised input;
  for (const Finding& finding : findings) {
    double weight = std::clamp(model.WeightOf(finding), 0.0, kMaxWeight);
    if (weight <= 0.0) continue;
    input.weights[finding.category].push_back(weight);
    input.findings[finding.category].push_back(&finding);
  }
  double raw = ScoreOf(input, model, "");
  Risk risk;
  risk.score = static_cast<int>(std::lround(std::floor(raw + 1e-9)));

  // Floors come first among the reasons: they are the decisive ones when they apply.
  for (const RiskModel::Floor& floor : model.floors) {
    std::set<std::string> matched;
    for (const Finding& finding : findings) {
      if (GlobMatch(floor.pattern, finding.id)) matched.insert(finding.id);
    }
    if (matched.empty()) continue;
    std::vector<std::string> ids(matched.begin(), matched.end());
    int lifted = std::max(0, floor.min_score - risk.score);
    risk.score = std::max(risk.score, floor.min_score);
    risk.reasons.push_back({"floor", "at least " + std::to_string(floor.min_score) + ": " + floor.why, lifted, ids});
  }

  std::vector<RiskReason> category_reasons;
  for (const auto& [category, members] : input.findings) {
    int without = static_cast<int>(std::floor(ScoreOf(input, model, category) + 1e-9));
    RiskReason reason;
    reason.category = category;
    reason.points = static_cast<int>(std::floor(raw + 1e-9)) - without;
    std::vector<const Finding*> sorted = members;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [&](const Finding* a, const Finding* b) { return model.WeightOf(*a) > model.WeightOf(*b); });
    std::string titles;
    std::set<std::string> seen;
    size_t shown = 0;
    for (const Finding* finding : sorted) {
      reason.finding_ids.push_back(finding->id);
      std::string title = ShortTitle(finding->title, category);
      if (shown < 4 && seen.insert(title).second) {
        titles += (shown++ ? "; " : "") + title;
      }
    }
    if (sorted.size() > shown) titles += "; and " + std::to_string(sorted.size() - shown) + " more";
    reason.text = std::to_string(sorted.size()) + " " + CategoryLabel(category, sorted.size()) + ": " + titles;
    category_reasons.push_back(std::move(reason));
  }
  std::stable_sort(category_reasons.begin(), category_reasons.end(),
                   [](const RiskReason& a, const RiskReason& b) { return a.points > b.points; });
  for (auto& reason : category_reasons) risk.reasons.push_back(std::move(reason));

  risk.score = std::clamp(risk.score, 0, 100);
  if (risk.score >= model.critical_at) {
    risk.level = RiskLevel::kCritical;
  } else if (risk.score >= model.high_at) {
    risk.level = RiskLevel::kHigh;
  } else if (risk.score >= model.medium_at) {
    risk.level = RiskLevel::kMedium;
  }
  if (risk.score >= model.unacceptable_at) {
    risk.verdict = Verdict::kUnacceptable;
  } else if (risk.score >= model.review_at) {
    risk.verdict = Verdict::kReview;
  }
  return risk;
}

}  // namespace appban::assess
