#include <gtest/gtest.h>

#include <chrono>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

TrackerSet Parse(const std::string& json) {
  auto set = ParseTrackers(json, "test.json");
  EXPECT_TRUE(set.ok()) << set.status().ToString();
  return set.ok() ? std::move(set).value() : TrackerSet{};
}

// Two trackers written the way Exodus writes them.
const char* kTwoTrackers = R"({"trackers": {
  "1": {"id": 1, "name": "AppsFlyer", "website": "https://appsflyer.com", "code_signature": "com.appsflyer.", "network_signature": "appsflyer.com"},
  "2": {"id": 2, "name": "Tune", "website": "", "code_signature": "com.tune|com.mobileapptracker", "network_signature": ""},
  "3": {"id": 3, "name": "Adobe", "website": "", "code_signature": "com.adobe.mobile.Analytics", "network_signature": ""},
  "4": {"id": 4, "name": "Tealium", "website": "", "code_signature": ".tealium.", "network_signature": ""},
  "5": {"id": 5, "name": "Rx", "website": "", "code_signature": "com.rx[0-9]+.sdk", "network_signature": ""}
}})";

TEST(Trackers, DottedClassNameConvertsDescriptors) {
  EXPECT_EQ(DottedClassName("Lcom/appsflyer/AppsFlyerLib;"), "com.appsflyer.AppsFlyerLib");
  EXPECT_EQ(DottedClassName("Lcom/a/B$C;"), "com.a.B$C");
  EXPECT_EQ(DottedClassName("I"), "");
  EXPECT_EQ(DottedClassName("[Lcom/a/B;"), "");
}

TEST(Trackers, MatchesPrefixesOnDottedNamesWithOneSeparatorConvention) {
  const TrackerSet set = Parse(kTwoTrackers);
  const TrackerMatcher matcher(set);
  std::vector<size_t> hits;
  auto ids = [&](std::string_view name) {
    matcher.Match(name, &hits);
    std::vector<int> out;
    for (size_t i : hits) out.push_back(set.trackers[i].id);
    return out;
  };
  EXPECT_EQ(ids("com.appsflyer.AppsFlyerLib"), std::vector<int>{1});
  EXPECT_EQ(ids("com.appsflyer.internal.a$b"), std::vector<int>{1});
  // A slash path or a lookalike package is not the SDK: dots are literal.
  EXPECT_EQ(ids("com/appsflyer/AppsFlyerLib"), std::vector<int>{});
  EXPECT_EQ(ids("comXappsflyer.Lib"), std::vector<int>{});
  EXPECT_EQ(ids("com.appsflyerx.Lib"), std::vector<int>{});
  // "com.tune" covers its package, not TuneIn's.
  EXPECT_EQ(ids("com.tune.Tune"), std::vector<int>{2});
  EXPECT_EQ(ids("com.tune$Inner"), std::vector<int>{2});
  EXPECT_EQ(ids("com.tunein.player.Main"), std::vector<int>{});
  EXPECT_EQ(ids("com.mobileapptracker.Tracker"), std::vector<int>{2});
  // A class-name stem matches classes starting with it in that package only.
  EXPECT_EQ(ids("com.adobe.mobile.Analytics"), std::vector<int>{3});
  EXPECT_EQ(ids("com.adobe.mobile.AnalyticsWorker$1"), std::vector<int>{3});
  EXPECT_EQ(ids("com.adobe.mobile.Config"), std::vector<int>{});
  EXPECT_EQ(ids("com.adobe.mobile.sub.AnalyticsX"), std::vector<int>{});
  // Infix and regex fallback.
  EXPECT_EQ(ids("com.tealium.library.Tealium"), std::vector<int>{4});
  EXPECT_EQ(ids("com.foo.tealiumx.A"), std::vector<int>{});
  EXPECT_EQ(ids("com.rx42.sdk.Main"), std::vector<int>{5});
  EXPECT_EQ(ids("com.rx.sdk.Main"), std::vector<int>{});
}

TEST(Trackers, ReportsClassesCountsAndDexFilesAcrossSplitDex) {
  const TrackerSet set = Parse(kTwoTrackers);
  std::vector<ClassName> classes = {
      {"com.example.MainActivity", "classes.dex"},
      {"com.appsflyer.AppsFlyerLib", "classes.dex"},
      {"com.tune.Tune", "classes.dex"},
      {"com.appsflyer.internal.Worker", "classes2.dex"},
  };
  for (int i = 0; i < 30; ++i) classes.push_back({"com.tune.c" + std::to_string(i), "classes3.dex"});
  const std::vector<TrackerMatch> found = DetectTrackers(classes, set);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].id, 1);
  EXPECT_EQ(found[0].name, "AppsFlyer");
  EXPECT_EQ(found[0].class_count, 2u);
  EXPECT_EQ(found[0].classes,
            (std::vector<std::string>{"com.appsflyer.AppsFlyerLib", "com.appsflyer.internal.Worker"}));
  EXPECT_EQ(found[0].class_dex_files, (std::vector<std::string>{"classes.dex", "classes2.dex"}));
  EXPECT_EQ(found[0].dex_files, (std::vector<std::string>{"classes.dex", "classes2.dex"}));
  EXPECT_EQ(found[1].id, 2);
  EXPECT_EQ(found[1].class_count, 31u);
  EXPECT_EQ(found[1].classes.size(), kMaxClassesPerTracker);
  EXPECT_EQ(found[1].dex_files, (std::vector<std::string>{"classes.dex", "classes3.dex"}));

  const std::vector<Finding> findings = TrackerFindings(found);
  ASSERT_EQ(findings.size(), 2u);
  EXPECT_EQ(findings[0].id, "tracker.1");
  EXPECT_EQ(findings[1].id, "tracker.2");
  EXPECT_EQ(findings[0].category, "tracker");
  EXPECT_EQ(findings[0].evidence[1].value, "com.appsflyer.internal.Worker");
  EXPECT_EQ(findings[0].evidence[1].location, "classes2.dex");
  EXPECT_NE(findings[1].evidence.back().note.find("11 more"), std::string::npos);
}

TEST(Trackers, ShippedSignaturesFindWellKnownSdks) {
  auto set = LoadTrackers(std::string(APPBAN_SOURCE_DIR) + "/data/trackers.json");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  const std::vector<ClassName> classes = {
      {"com.appsflyer.AppsFlyerLib", "classes.dex"},
      {"com.google.firebase.analytics.FirebaseAnalytics", "classes.dex"},
      {"com.facebook.ads.AdView", "classes2.dex"},
      {"androidx.core.app.NotificationCompat", "classes.dex"},
      {"com.example.app.MainActivity", "classes.dex"},
  };
  std::set<std::string> names;
  for (const TrackerMatch& match : DetectTrackers(classes, *set)) names.insert(match.name);
  EXPECT_TRUE(names.count("AppsFlyer"));
  // Names as the Exodus file spells them.
  EXPECT_TRUE(names.count("G. Firebase Analytics"));
  EXPECT_TRUE(names.count("FB. Ads"));
  for (const TrackerMatch& match : DetectTrackers(
           {{"androidx.core.app.NotificationCompat", "classes.dex"}, {"com.example.app.MainActivity", "classes.dex"}},
           *set)) {
    ADD_FAILURE() << "unexpected tracker " << match.name << " on framework/app classes";
  }
}

TEST(Trackers, MatchingFiftyThousandClassesIsFast) {
  auto set = LoadTrackers(std::string(APPBAN_SOURCE_DIR) + "/data/trackers.json");
  ASSERT_TRUE(set.ok());
  std::vector<ClassName> classes;
  for (int i = 0; i < 50'000; ++i) {
    classes.push_back(
        {"com.example.feature" + std::to_string(i % 97) + ".sub.Class" + std::to_string(i) + "$Inner", "classes.dex"});
  }
  const auto start = std::chrono::steady_clock::now();
  const auto found = DetectTrackers(classes, *set);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(found.empty());
  // Hang guard, not a timing goal (bench/ holds those): a per-signature regex scan would take minutes.
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 10000);
}

TEST(Trackers, HostsMatchNetworkSignaturesAsDomains) {
  const TrackerSet set = Parse(R"({"trackers": {
    "1": {"id": 1, "name": "K", "website": "", "code_signature": "", "network_signature": "krxd.net|fidzup|.*.estimote.com"}}})");
  const TrackerSignature& t = set.trackers[0];
  EXPECT_TRUE(HostMatchesTracker("krxd.net", t));
  EXPECT_TRUE(HostMatchesTracker("cdn.krxd.net", t));
  EXPECT_FALSE(HostMatchesTracker("notkrxd.net", t));
  EXPECT_FALSE(HostMatchesTracker("krxd.network.com", t));
  EXPECT_TRUE(HostMatchesTracker("api.fidzup.com", t));
  EXPECT_FALSE(HostMatchesTracker("fidzupx.com", t));
  EXPECT_TRUE(HostMatchesTracker("cloud.estimote.com", t));
}

}  // namespace
}  // namespace appban::assess
