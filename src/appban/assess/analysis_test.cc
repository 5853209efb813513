// Analyze end to end on real APKs: androguard's examples (checked against dexdump's view of the
// same files) and the fixtures built by tests/fixtures/build.sh from sources whose content we
// control, so every expected finding is traceable to a line of a fixture source.
#include "appban/assess/analysis.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

namespace fs = std::filesystem;

const KnowledgeBase& Knowledge() {
  static const KnowledgeBase* knowledge = [] {
    auto loaded = LoadKnowledgeBase(std::string(APPBAN_SOURCE_DIR) + "/data");
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    return new KnowledgeBase(loaded.ok() ? std::move(loaded).value() : KnowledgeBase{});
  }();
  return *knowledge;
}

std::string FixturePath(const std::string& name) {
  const char* env = std::getenv("APPBAN_FIXTURES");
  const fs::path dir = env != nullptr ? fs::path(env) : fs::path(APPBAN_BINARY_DIR) / "fixtures";
  return (dir / name).string();
}

std::set<std::string> Ids(const Analysis& analysis) {
  std::set<std::string> ids;
  for (const Finding& f : analysis.findings) ids.insert(f.id);
  return ids;
}

// Runs a command and returns its standard output (tests only; arguments are fixed paths).
std::string RunCommandOutput(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return out;
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) out.append(buffer.data(), n);
  return out;
}

#define OPEN_OR_SKIP(var, path)                                       \
  if (!fs::exists(path)) GTEST_SKIP() << path << " not built";        \
  auto var##_result = apk::Apk::Open(path);                           \
  ASSERT_TRUE(var##_result.ok()) << var##_result.status().ToString(); \
  const apk::Apk& var = *var##_result

TEST(Analyze, TrackerClassesAgreeWithDexdump) {
  const std::string path = "/usr/share/doc/androguard/examples/tests/com.example.android.wearable.wear.weardrawers.apk";
  OPEN_OR_SKIP(apk, path);
  // dexdump's own listing: "Opened '...:classes2.dex'" then "Class descriptor : 'L...;'".
  std::set<std::pair<std::string, std::string>> expected;  // (dex, dotted class) under the G. Ads signature
  std::string current_dex;
  const std::string listing = RunCommandOutput("dexdump '" + path + "' 2>/dev/null");
  if (listing.empty()) GTEST_SKIP() << "dexdump not available";
  size_t pos = 0;
  while (pos < listing.size()) {
    size_t end = listing.find('\n', pos);
    if (end == std::string::npos) end = listing.size();
    const std::string line = listing.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("Opened '", 0) == 0) {
      const size_t colon = line.rfind(':', line.find("', DEX"));
      current_dex = line.substr(colon + 1, line.find("', DEX") - colon - 1);
    } else if (const size_t at = line.find("Class descriptor  : 'L"); at != std::string::npos) {
      std::string descriptor = line.substr(at + 21, line.size() - at - 22);
      if (descriptor.rfind("Lcom/google/android/gms/ads/identifier/", 0) == 0) {
        expected.insert({current_dex, DottedClassName(descriptor)});
      }
    }
  }
  ASSERT_FALSE(expected.empty());
  const Analysis analysis = Analyze(apk, Knowledge());
  ASSERT_EQ(analysis.trackers.size(), 1u);
  const TrackerMatch& match = analysis.trackers[0];
  EXPECT_EQ(match.name, "G. Ads");  // code_signature "com.google.android.gms.ads.identifier"
  EXPECT_EQ(match.class_count, expected.size());
  std::set<std::pair<std::string, std::string>> got;
  for (size_t i = 0; i < match.classes.size(); ++i) got.insert({match.class_dex_files[i], match.classes[i]});
  EXPECT_EQ(got, expected);
  EXPECT_TRUE(Ids(analysis).count("tracker.67"));
}

// rich.apk (tests/fixtures/apps/rich): every expected id is traced to the fixture's sources.
TEST(Analyze, RichFixtureHasExactlyTheFindingsItsSourcesImply) {
  OPEN_OR_SKIP(apk, FixturePath("rich.apk"));
  const Analysis analysis = Analyze(apk, Knowledge());
  EXPECT_EQ(Ids(analysis), (std::set<std::string>{
                               "tracker.11",                // smali/com/appsflyer/AppsFlyerLib
                               "tracker.46",                // smali/com/google/firebase/analytics/FirebaseAnalytics
                               "capability.location.used",  // ACCESS_FINE_LOCATION + getLastKnownLocation
                               "capability.contacts.used",  // READ_CONTACTS + ContactsContract$Contacts
                               "capability.phone_identifiers.used",  // READ_PHONE_STATE + getDeviceId
                               "capability.camera.requested",        // uses-permission-sdk-23 CAMERA, no camera call
                               "capability.external_storage.requested",  // WRITE_EXTERNAL_STORAGE only
                               "capability.native_code.used",            // lib/*/libfoo.so
                               "publisher.signer",
                               "publisher.debug_certificate",  // signed with the "Android Debug" key
                               "hygiene.debuggable",
                               "hygiene.cleartext_traffic",  // usesCleartextTraffic="true"
                               "hygiene.allow_backup",
                               "hygiene.exported_components",  // DeepLinkActivity, BootReceiver, DataProvider
                               "endpoint.hosts",               // <data android:host="fixture.appban.org">
                           }));
  ASSERT_EQ(analysis.trackers.size(), 2u);
  EXPECT_EQ(analysis.trackers[0].name, "AppsFlyer");
  EXPECT_EQ(analysis.trackers[1].name, "G. Firebase Analytics");
  EXPECT_EQ(analysis.endpoints.hosts, std::vector<std::string>{"fixture.appban.org"});
  EXPECT_TRUE(analysis.publisher.debug_certificate);
  EXPECT_EQ(analysis.publisher.organization, "Android");
  for (const Finding& f : analysis.findings) {
    if (f.id == "hygiene.exported_components") {
      EXPECT_EQ(f.evidence.size(), 3u);
    }
  }
  // Findings are ordered: severity first, so the report leads with what matters most.
  for (size_t i = 1; i < analysis.findings.size(); ++i) {
    EXPECT_GE(analysis.findings[i - 1].severity, analysis.findings[i].severity);
  }
}

// multidex.apk: AppsFlyer split across classes.dex and classes2.dex, Facebook Ads in classes2.dex.
TEST(Analyze, MultidexFixtureFindsTheTrackerSplitAcrossDexFiles) {
  OPEN_OR_SKIP(apk, FixturePath("multidex.apk"));
  const Analysis analysis = Analyze(apk, Knowledge());
  EXPECT_EQ(Ids(analysis),
            (std::set<std::string>{"tracker.11", "tracker.61", "hygiene.allow_backup", "publisher.signer"}));
  ASSERT_EQ(analysis.trackers.size(), 2u);
  EXPECT_EQ(analysis.trackers[0].name, "AppsFlyer");
  EXPECT_EQ(analysis.trackers[0].class_count, 3u);  // AppsFlyerLib, internal/AFEvent, share/ShareInviteHelper
  EXPECT_EQ(analysis.trackers[0].dex_files, (std::vector<std::string>{"classes.dex", "classes2.dex"}));
  EXPECT_EQ(analysis.trackers[1].name, "FB. Ads");
  EXPECT_EQ(analysis.trackers[1].dex_files, std::vector<std::string>{"classes2.dex"});
  EXPECT_EQ(analysis.publisher.organization, "Appban Fixture Signers");
  EXPECT_EQ(analysis.publisher.country, "DE");
}

TEST(Analyze, SigningAndAnomalyFixtures) {
  {
    OPEN_OR_SKIP(apk, FixturePath("v1only.apk"));
    EXPECT_EQ(Ids(Analyze(apk, Knowledge())),
              (std::set<std::string>{"publisher.signer", "publisher.v1_only_signature"}));
  }
  {
    OPEN_OR_SKIP(apk, FixturePath("tamper_encryption_flag.apk"));
    EXPECT_EQ(Ids(Analyze(apk, Knowledge())),
              (std::set<std::string>{"publisher.unsigned", "anomaly.zip.encryption_flag_ignored"}));
  }
}

// A packer-like app: the unsigned minimal fixture plus Jiagu's and Ijiami's file names.
TEST(Analyze, PackerFilesAreReported) {
  const std::string base = FixturePath("minimal.apk");
  if (!fs::exists(base)) GTEST_SKIP() << base << " not built";
  const fs::path dir = fs::temp_directory_path() / ("appban-assess-packer-" + std::to_string(::getpid()));
  fs::create_directories(dir / "lib/arm64-v8a");
  fs::create_directories(dir / "assets");
  fs::copy_file(base, dir / "packed.apk", fs::copy_options::overwrite_existing);
  for (const char* file : {"lib/arm64-v8a/libjiagu_a64.so", "assets/ijiami.dat"}) {
    std::FILE* f = std::fopen((dir / file).c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("x", f);
    std::fclose(f);
  }
  const int rc = std::system(
      ("cd '" + dir.string() + "' && zip -q packed.apk lib/arm64-v8a/libjiagu_a64.so assets/ijiami.dat").c_str());
  if (rc != 0) {
    fs::remove_all(dir);
    GTEST_SKIP() << "zip not available";
  }
  auto apk = apk::Apk::Open((dir / "packed.apk").string());
  fs::remove_all(dir);
  ASSERT_TRUE(apk.ok()) << apk.status().ToString();
  const Analysis analysis = Analyze(*apk, Knowledge());
  const std::set<std::string> ids = Ids(analysis);
  EXPECT_TRUE(ids.count("obfuscation.packer.jiagu"));
  EXPECT_TRUE(ids.count("obfuscation.packer.ijiami"));
  EXPECT_EQ(analysis.packers, (std::vector<std::string>{"Jiagu (Qihoo 360)", "Ijiami"}));
}

// Analyze's cost next to Apk::Open's on the largest DEX at hand (the benchmark's APK when present).
TEST(Analyze, CostRelativeToOpen) {
  std::string path = std::string(APPBAN_SOURCE_DIR) + "/build/bench-data/settings_apk-debug.apk";
  if (const char* env = std::getenv("APPBAN_LARGE_APK")) path = env;
  if (!fs::exists(path)) path = "/usr/share/doc/androguard/examples/tests/com.example.android.tvleanback.apk";
  if (!fs::exists(path)) GTEST_SKIP();
  using Clock = std::chrono::steady_clock;
  double open_ms = 1e9, analyze_ms = 1e9;
  for (int round = 0; round < 3; ++round) {
    const auto t0 = Clock::now();
    auto apk = apk::Apk::Open(path);
    const auto t1 = Clock::now();
    ASSERT_TRUE(apk.ok()) << apk.status().ToString();
    const Analysis analysis = Analyze(*apk, Knowledge());
    const auto t2 = Clock::now();
    open_ms = std::min(open_ms, std::chrono::duration<double, std::milli>(t1 - t0).count());
    analyze_ms = std::min(analyze_ms, std::chrono::duration<double, std::milli>(t2 - t1).count());
    if (round == 0) {
      std::printf("%s: %llu classes, %llu strings, %zu findings\n", path.c_str(),
                  static_cast<unsigned long long>(apk->total_dex_classes()),
                  static_cast<unsigned long long>(apk->total_dex_strings()), analysis.findings.size());
    }
  }
  std::printf("Apk::Open %.1f ms, Analyze %.1f ms (%.2fx of open)\n", open_ms, analyze_ms, analyze_ms / open_ms);
  RecordProperty("open_ms", std::to_string(open_ms));
  RecordProperty("analyze_ms", std::to_string(analyze_ms));
}

}  // namespace
}  // namespace appban::assess
