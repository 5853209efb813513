// Fuzzes assess::ParseRiskModel (the TOML subset of data/risk-model.toml) and then ScoreRisk with
// the parsed model on a fixed set of findings covering every severity and category, plus ids the
// model's prefix rules and floors may or may not name. Whatever the model says, the score must
// stay within 0..100 and each weight within [0, 1).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "appban/assess/finding.h"
#include "appban/assess/risk.h"

namespace {

std::vector<appban::assess::Finding> FixedFindings() {
  using appban::assess::Severity;
  struct Spec {
    const char* id;
    const char* category;
    Severity severity;
  };
  const Spec specs[] = {
      {"tracker.appsflyer", "tracker", Severity::kMedium},
      {"tracker.facebook_ads", "tracker", Severity::kMedium},
      {"endpoint.cleartext", "endpoint", Severity::kLow},
      {"capability.location", "capability", Severity::kHigh},
      {"capability.sms", "capability", Severity::kCritical},
      {"publisher.vendor.bytedance", "publisher", Severity::kHigh},
      {"obfuscation.packer", "obfuscation", Severity::kMedium},
      {"hygiene.debuggable", "hygiene", Severity::kHigh},
      {"anomaly.zip", "anomaly", Severity::kInfo},
      {"", "", Severity::kInfo},
      {"unknown.category", "somewhere-else", Severity::kLow},
  };
  std::vector<appban::assess::Finding> findings;
  for (const auto& spec : specs) {
    appban::assess::Finding finding;
    finding.id = spec.id;
    finding.category = spec.category;
    finding.severity = spec.severity;
    finding.title = spec.id;
    findings.push_back(finding);
  }
  return findings;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model =
      appban::assess::ParseRiskModel(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz-risk.toml");
  if (!model.ok()) return 0;
  const auto findings = FixedFindings();
  for (const auto& finding : findings) {
    double weight = model->WeightOf(finding);
    if (!(weight >= 0.0 && weight < 1.0)) __builtin_trap();
  }
  // All findings, none, and each prefix: the score must also never drop when a finding is added.
  int previous = -1;
  for (size_t count = 0; count <= findings.size(); ++count) {
    std::vector<appban::assess::Finding> subset(findings.begin(), findings.begin() + static_cast<long>(count));
    auto risk = appban::assess::ScoreRisk(subset, *model);
    if (risk.score < 0 || risk.score > 100) __builtin_trap();
    if (risk.score < previous) __builtin_trap();  // risk.h promises monotonicity
    previous = risk.score;
  }
  return 0;
}
