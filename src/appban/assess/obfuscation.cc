// Obfuscation and packing: known packer/protector files and loader classes, the share of
// minified class names, and the parser's anomalies. All are reported as risk because an opaque
// app hides what it collects from exactly this kind of review.
#include <algorithm>
#include <cctype>
#include <map>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

std::string_view BaseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// "Lcom/stub/StubApp;" or "Lcom/stub/" -> "com.stub.StubApp" / "com.stub."
std::string DottedPrefix(std::string_view descriptor_prefix) {
  std::string out(descriptor_prefix.substr(1));
  if (!out.empty() && out.back() == ';') out.pop_back();
  std::replace(out.begin(), out.end(), '/', '.');
  return out;
}

}  // namespace

std::vector<PackerHit> DetectPackers(const std::vector<ClassName>& classes,
                                     const std::vector<std::string_view>& zip_entries,
                                     const std::vector<PackerSignature>& packers) {
  std::vector<PackerHit> out;
  for (const PackerSignature& packer : packers) {
    PackerHit hit;
    hit.packer = &packer;
    for (std::string_view entry : zip_entries) {
      if (hit.evidence.size() >= kMaxEvidencePerFinding) break;
      const bool in_native_dir = entry.substr(0, 4) == "lib/" || entry.substr(0, 7) == "assets/";
      bool matched = false;
      for (const std::string& library : packer.native_libraries) {
        matched = matched || (in_native_dir && GlobMatch(library, BaseName(entry)));
      }
      for (const std::string& asset : packer.assets) {
        matched = matched || (asset.back() == '/' ? entry.substr(0, asset.size()) == asset : GlobMatch(asset, entry));
      }
      if (matched) hit.evidence.push_back({"file", std::string(entry), std::string(entry), ""});
    }
    for (const std::string& descriptor_prefix : packer.classes) {
      const std::string prefix = DottedPrefix(descriptor_prefix);
      const bool exact = descriptor_prefix.back() == ';';
      for (const ClassName& cls : classes) {
        if (hit.evidence.size() >= kMaxEvidencePerFinding) break;
        if (exact ? cls.dotted == prefix : cls.dotted.compare(0, prefix.size(), prefix) == 0) {
          hit.evidence.push_back({"class", cls.dotted, cls.dex_file, ""});
        }
      }
    }
    if (!hit.evidence.empty()) out.push_back(std::move(hit));
  }
  return out;
}

ObfuscationStats MeasureObfuscation(const std::vector<ClassName>& classes) {
  ObfuscationStats stats;
  for (const ClassName& cls : classes) {
    std::string_view simple = cls.dotted;
    if (size_t dot = simple.rfind('.'); dot != std::string_view::npos) simple.remove_prefix(dot + 1);
    if (size_t dollar = simple.rfind('$'); dollar != std::string_view::npos) simple.remove_prefix(dollar + 1);
    if (simple.empty() ||
        std::all_of(simple.begin(), simple.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      continue;  // anonymous or synthetic: named by the compiler in every build
    }
    if (simple == "R") continue;  // the resource class is called R in every app
    ++stats.classes;
    if (simple.size() <= 2 &&
        std::all_of(simple.begin(), simple.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); })) {
      ++stats.short_named;
      if (stats.examples.size() < kMaxObfuscationExamples) stats.examples.push_back(cls);
    }
  }
  stats.ratio = stats.classes == 0 ? 0 : static_cast<double>(stats.short_named) / static_cast<double>(stats.classes);
  return stats;
}

std::vector<Finding> ObfuscationFindings(const std::vector<PackerHit>& packers, const ObfuscationStats& stats) {
  std::vector<Finding> out;
  for (const PackerHit& hit : packers) {
    out.push_back({"obfuscation.packer." + hit.packer->id, "obfuscation", Severity::kHigh,
                   "Packed or protected with " + hit.packer->name,
                   "The files or loader classes of a known packer/protector are present. Packers encrypt or hide the "
                   "real code until run time, so static review (this report included) cannot see what it does." +
                       (hit.packer->note.empty() ? "" : " " + hit.packer->note),
                   hit.evidence});
  }
  if (stats.classes >= kMinClassesForObfuscation && stats.ratio >= kObfuscationRatioThreshold) {
    const int percent = static_cast<int>(stats.ratio * 100 + 0.5);
    Finding finding{
        "obfuscation.renamed_classes",
        "obfuscation",
        Severity::kLow,
        std::to_string(percent) + "% of classes have minified names",
        std::to_string(stats.short_named) + " of " + std::to_string(stats.classes) +
            " named classes have one- or two-letter names (a, bq), as R8/ProGuard renaming produces. Common "
            "in release builds; it also makes the code much harder to review.",
        {}};
    for (const ClassName& example : stats.examples)
      finding.evidence.push_back({"class", example.dotted, example.dex_file, ""});
    out.push_back(std::move(finding));
  }
  return out;
}

std::vector<Finding> AnomalyFindings(const apk::Anomalies& anomalies) {
  std::map<std::string, Finding> by_code;
  for (const apk::Anomaly& anomaly : anomalies) {
    Finding& finding = by_code[anomaly.code];
    if (finding.id.empty()) {
      finding.id = "anomaly." + anomaly.code;
      finding.category = "anomaly";
      finding.severity = Severity::kMedium;
      finding.title = "Package anomaly: " + anomaly.code;
      // Whether Android installs such a package differs by code (docs/anomalies.md); the detail
      // says it where it refuses (a codename minSdkVersion, a duplicate ZIP entry, ...).
      finding.description = anomaly.detail +
                            " Normal build tools do not produce this; tricks like it are a known way to break "
                            "analysers (docs/anomalies.md says whether Android installs such a package).";
    }
    if (finding.evidence.size() < kMaxEvidencePerFinding) {
      finding.evidence.push_back({"anomaly", anomaly.detail, anomaly.where, ""});
    }
  }
  std::vector<Finding> out;
  for (auto& [code, finding] : by_code) out.push_back(std::move(finding));
  return out;
}

}  // namespace appban::assess
