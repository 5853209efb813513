#include <gtest/gtest.h>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

TEST(Obfuscation, DetectsPackersByLibraryAssetAndLoaderClass) {
  auto packers = ParsePackers(R"({"packers": [
    {"id": "jiagu", "name": "Jiagu", "native_libraries": ["libjiagu*.so"], "classes": ["Lcom/stub/StubApp;"]},
    {"id": "dexprotector", "name": "DexProtector", "assets": ["assets/dp.*.so.dat"]},
    {"id": "bangcle", "name": "Bangcle", "native_libraries": ["libsecexe.so"], "classes": ["Lcom/secneo/apkwrapper/"]}]})",
                              "p.json");
  ASSERT_TRUE(packers.ok()) << packers.status().ToString();
  const std::vector<ClassName> classes = {
      {"com.stub.StubApp", "classes.dex"}, {"com.stub.StubAppX", "classes.dex"}, {"com.example.Main", "classes.dex"}};
  const std::vector<std::string_view> entries = {"lib/arm64-v8a/libjiagu_a64.so", "assets/libjiagu.so",
                                                 "res/libjiagu.so", "assets/dp.arm-v7.so.dat",
                                                 "lib/armeabi-v7a/libsecexe.so.bak"};
  const std::vector<PackerHit> hits = DetectPackers(classes, entries, *packers);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].packer->id, "jiagu");
  std::vector<std::string> values;
  for (const Evidence& e : hits[0].evidence) values.push_back(e.value);
  // res/ is not where a packer's loader can load a library from; the exact class only.
  EXPECT_EQ(values,
            (std::vector<std::string>{"lib/arm64-v8a/libjiagu_a64.so", "assets/libjiagu.so", "com.stub.StubApp"}));
  EXPECT_EQ(hits[1].packer->id, "dexprotector");
  const auto findings = ObfuscationFindings(hits, {});
  ASSERT_EQ(findings.size(), 2u);
  EXPECT_EQ(findings[0].id, "obfuscation.packer.jiagu");
  EXPECT_EQ(findings[0].severity, Severity::kHigh);
  EXPECT_EQ(findings[1].id, "obfuscation.packer.dexprotector");
}

TEST(Obfuscation, MeasuresShortClassNames) {
  std::vector<ClassName> classes;
  for (const char* name : {"a.a", "a.b", "a.ab", "a.b$a", "com.x.R", "com.x.R$layout", "com.x.Main$1", "com.x.Main",
                           "com.x.Io", "com.x.A1"}) {
    classes.push_back({name, "classes.dex"});
  }
  const ObfuscationStats stats = MeasureObfuscation(classes);
  // Counted: a.a a.b a.ab a.b$a R$layout Main Io A1 (R and $1 are skipped) = 8; short: a b ab a Io = 5.
  EXPECT_EQ(stats.classes, 8u);
  EXPECT_EQ(stats.short_named, 5u);
  EXPECT_DOUBLE_EQ(stats.ratio, 5.0 / 8.0);
  EXPECT_TRUE(ObfuscationFindings({}, stats).empty()) << "below kMinClassesForObfuscation";
  for (int i = 0; i < 60; ++i)
    classes.push_back({"o." + std::string(1, static_cast<char>('a' + i % 26)), "classes2.dex"});
  const auto findings = ObfuscationFindings({}, MeasureObfuscation(classes));
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].id, "obfuscation.renamed_classes");
  EXPECT_EQ(findings[0].evidence.size(), kMaxObfuscationExamples);
}

TEST(Obfuscation, EachAnomalyCodeBecomesOneFinding) {
  const apk::Anomalies anomalies = {{"zip.encryption_flag_ignored", "classes.dex", "bit 0 set"},
                                    {"axml.bad_chunk", "AndroidManifest.xml@0x40", "chunk size wrong"},
                                    {"zip.encryption_flag_ignored", "resources.arsc", "bit 0 set"}};
  const auto findings = AnomalyFindings(anomalies);
  ASSERT_EQ(findings.size(), 2u);
  EXPECT_EQ(findings[0].id, "anomaly.axml.bad_chunk");
  EXPECT_EQ(findings[1].id, "anomaly.zip.encryption_flag_ignored");
  ASSERT_EQ(findings[1].evidence.size(), 2u);
  EXPECT_EQ(findings[1].evidence[1].location, "resources.arsc");
}

}  // namespace
}  // namespace appban::assess
