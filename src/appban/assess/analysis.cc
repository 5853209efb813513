// Analyze: adapts an opened APK to the detectors' plain inputs (class names, strings, method
// references through DEX lookups, manifest, signers, ZIP entries) and gathers their findings.
#include "appban/assess/analysis.h"

#include <algorithm>
#include <array>
#include <set>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

// Answers capability queries from the DEX tables: type and method lookups are O(log n) on a
// well-formed DEX (see DexFile), so the cost does not grow with the number of capabilities x
// methods the app has.
class DexCodeView : public CodeView {
 public:
  explicit DexCodeView(const apk::Apk& apk) : apk_(apk) {}

  std::vector<Evidence> FindApi(std::string_view api, size_t max) const override {
    std::vector<Evidence> out;
    const size_t arrow = api.find("->");
    const std::string_view descriptor = api.substr(0, arrow);
    const std::string_view method = arrow == std::string_view::npos ? std::string_view() : api.substr(arrow + 2);
    for (const apk::DexFile& dex : apk_.dex_files()) {
      if (out.size() >= max) break;
      const std::optional<uint32_t> type = dex.FindType(descriptor);
      if (!type) continue;
      if (arrow == std::string_view::npos) {
        out.push_back({"class", DottedClassName(descriptor), dex.name(), ""});
        continue;
      }
      std::set<std::string> seen;
      for (uint32_t index : dex.MethodsOfType(*type)) {
        if (out.size() >= max) break;
        const apk::MethodRef ref = dex.Method(index);
        if (!method.empty() && ref.name != method) continue;
        std::string value = std::string(descriptor) + "->" + std::string(ref.name) + dex.MethodPrototype(index);
        if (seen.insert(value).second) out.push_back({"method", std::move(value), dex.name(), ""});
      }
    }
    return out;
  }

  std::vector<Evidence> FindString(std::string_view text, size_t max) const override {
    std::vector<Evidence> out;
    for (const apk::DexFile& dex : apk_.dex_files()) {
      if (out.size() >= max) break;
      if (dex.FindString(text)) out.push_back({"string", std::string(text), dex.name(), ""});
    }
    return out;
  }

  std::vector<Evidence> FindFiles(std::string_view pattern, size_t max) const override {
    std::vector<Evidence> out;
    for (const apk::ZipEntry& entry : apk_.zip().entries()) {
      if (out.size() >= max) break;
      if (GlobMatch(pattern, entry.name)) out.push_back({"file", entry.name, entry.name, ""});
    }
    return out;
  }

 private:
  const apk::Apk& apk_;
};

int CategoryRank(std::string_view category) {
  static constexpr std::array<std::string_view, 7> kOrder = {"tracker",     "endpoint", "capability", "publisher",
                                                             "obfuscation", "hygiene",  "anomaly"};
  auto it = std::find(kOrder.begin(), kOrder.end(), category);
  return static_cast<int>(it - kOrder.begin());
}

}  // namespace

void SortFindings(std::vector<Finding>* findings) {
  std::stable_sort(findings->begin(), findings->end(), [](const Finding& a, const Finding& b) {
    if (a.severity != b.severity) return a.severity > b.severity;
    const int rank_a = CategoryRank(a.category), rank_b = CategoryRank(b.category);
    if (rank_a != rank_b) return rank_a < rank_b;
    return a.id < b.id;
  });
}

Analysis Analyze(const apk::Apk& apk, const KnowledgeBase& knowledge) {
  Analysis analysis;

  std::vector<ClassName> classes;
  classes.reserve(apk.total_dex_classes());
  for (const apk::DexFile& dex : apk.dex_files()) {
    for (uint32_t i = 0; i < dex.class_count(); ++i) {
      std::string dotted = DottedClassName(dex.ClassDescriptor(i));
      if (!dotted.empty()) classes.push_back({std::move(dotted), dex.name()});
    }
  }
  analysis.trackers = DetectTrackers(classes, knowledge.trackers);

  std::vector<LocatedString> strings;
  strings.reserve(apk.total_dex_strings());
  for (const apk::DexFile& dex : apk.dex_files()) {
    for (uint32_t i = 0; i < dex.string_count(); ++i) strings.push_back({dex.String(i), dex.name()});
  }
  for (const apk::Component& component : apk.manifest().components) {
    for (const apk::IntentFilter& filter : component.intent_filters) {
      for (const std::string& data : filter.data) strings.push_back({data, "AndroidManifest.xml"});
    }
  }
  const EndpointScan endpoints = ScanEndpoints(strings, knowledge.trackers, &analysis.trackers);
  analysis.endpoints = endpoints.endpoints;

  const DexCodeView code(apk);
  analysis.capabilities = DetectCapabilities(apk.manifest(), code, knowledge.capabilities);

  analysis.publisher = DetectPublisher(apk.signing(), apk.manifest().package, knowledge.vendors);

  std::vector<std::string_view> entries;
  entries.reserve(apk.zip().entries().size());
  for (const apk::ZipEntry& entry : apk.zip().entries()) entries.push_back(entry.name);
  const std::vector<PackerHit> packers = DetectPackers(classes, entries, knowledge.packers);
  for (const PackerHit& hit : packers) analysis.packers.push_back(hit.packer->name);
  const ObfuscationStats obfuscation = MeasureObfuscation(classes);
  analysis.obfuscated_class_ratio = obfuscation.ratio;

  auto append = [&](std::vector<Finding> more) {
    for (Finding& finding : more) analysis.findings.push_back(std::move(finding));
  };
  append(TrackerFindings(analysis.trackers));
  append(EndpointFindings(endpoints));
  append(CapabilityFindings(analysis.capabilities, knowledge.capabilities));
  append(PublisherFindings(analysis.publisher, apk.signing(), knowledge.vendors));
  append(ObfuscationFindings(packers, obfuscation));
  append(HygieneFindings(apk.manifest(), apk.network_security_config() ? &*apk.network_security_config() : nullptr));
  append(AnomalyFindings(apk.anomalies()));
  SortFindings(&analysis.findings);
  return analysis;
}

}  // namespace appban::assess
