#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "appban/assess/analysis.h"
#include "appban/common/file.h"

namespace appban::assess {
namespace {

const std::string kDataDir = std::string(APPBAN_SOURCE_DIR) + "/data";

std::string OneTracker(const std::string& fields) { return R"({"trackers": {"7": {)" + fields + "}}}"; }

TEST(Knowledge, ShippedDataLoadsAndHoldsEveryExodusSignature) {
  auto knowledge = LoadKnowledgeBase(kDataDir);
  ASSERT_TRUE(knowledge.ok()) << knowledge.status().ToString();
  // Count independently from the file with a plain JSON parse.
  auto text = ReadFileToString(kDataDir + "/trackers.json", 1 << 24);
  ASSERT_TRUE(text.ok());
  const size_t in_file = nlohmann::json::parse(*text)["trackers"].size();
  EXPECT_EQ(in_file, 427u);
  EXPECT_EQ(knowledge->trackers.trackers.size(), in_file);
  EXPECT_GE(knowledge->capabilities.size(), 19u);
  EXPECT_FALSE(knowledge->vendors.empty());
  EXPECT_FALSE(knowledge->packers.empty());
  // The shipped file has one typo escape ("data.\altbeacon.org"): read leniently, reported.
  ASSERT_EQ(knowledge->trackers.warnings.size(), 1u);
  EXPECT_NE(knowledge->trackers.warnings[0].find("altbeacon"), std::string::npos);
}

TEST(Knowledge, VendorRegistryUsesOnlyIdentifiersFromTheBansFile) {
  auto knowledge = LoadKnowledgeBase(kDataDir);
  ASSERT_TRUE(knowledge.ok());
  // The project's own copy of the catalog of bans (adopted from the shared reference data).
  auto bans_text = ReadFileToString(std::string(APPBAN_SOURCE_DIR) + "/data/catalog/government-app-bans.json", 1 << 24);
  ASSERT_TRUE(bans_text.ok()) << bans_text.status().ToString();
  std::set<std::string> packages;
  for (const auto& ban : nlohmann::json::parse(*bans_text)) {
    for (const auto& app : ban["apps"]) {
      for (const auto& package : app["android_packages"]) packages.insert(package.get<std::string>());
    }
  }
  size_t listed = 0;
  for (const Vendor& vendor : knowledge->vendors) {
    EXPECT_TRUE(vendor.signer_sha256.empty()) << vendor.id << ": the source has no fingerprints";
    for (const std::string& prefix : vendor.package_prefixes) {
      EXPECT_TRUE(packages.count(prefix)) << vendor.id << ": " << prefix << " is not in the bans file";
      ++listed;
    }
  }
  EXPECT_EQ(listed, packages.size());
}

TEST(Knowledge, ClassifiesCodeSignatureAlternatives) {
  auto set = ParseTrackers(OneTracker(R"("id": 7, "name": "T", "website": "",
      "code_signature": "com.appsflyer.|com.tune|.tealium.|.abc.|com.|ab.cd|com.x[0-9]+y", "network_signature": "")"),
                           "t.json");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  const TrackerSignature& t = set->trackers.at(0);
  EXPECT_EQ(t.code_prefixes, (std::vector<std::string>{"com.appsflyer.", "com.tune"}));
  EXPECT_EQ(t.code_infixes, (std::vector<std::string>{".tealium."}));
  EXPECT_EQ(t.code_patterns, (std::vector<std::string>{"com.x[0-9]+y"}));
  // ".abc." (3 letters), "com." (one component) and "ab.cd" (5 characters) are too short.
  ASSERT_EQ(set->skipped.size(), 3u);
  EXPECT_NE(set->skipped[0].find("\".abc.\""), std::string::npos);
  EXPECT_NE(set->skipped[1].find("\"com.\""), std::string::npos);
  EXPECT_NE(set->skipped[2].find("\"ab.cd\""), std::string::npos);
  EXPECT_NE(set->skipped[0].find("tracker \"7\" (T)"), std::string::npos);
}

TEST(Knowledge, RegexSignaturesHaveATotalBudget) {
  // 80 trackers, each with a 1,000-character pattern that needs the regex matcher: 80 KB > 64 KiB.
  std::string json = R"({"trackers": {)";
  for (int id = 1; id <= 80; ++id) {
    std::string pattern = "com.x[0-9]+" + std::string(989, 'a');
    json += (id > 1 ? "," : "") +
            ("\"" + std::to_string(id) + "\": {\"id\": " + std::to_string(id) +
             R"(, "name": "T", "website": "", "code_signature": ")" + pattern + R"(", "network_signature": ""})");
  }
  json += "}}";
  auto set = ParseTrackers(json, "big.json");
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kLimitExceeded);
  EXPECT_NE(set.status().message().find("regular-expression signatures add up to more than 65536 bytes"),
            std::string::npos)
      << set.status().message();
}

TEST(Knowledge, ClassifiesNetworkSignatureAlternatives) {
  auto set = ParseTrackers(
      OneTracker(
          R"("id": 7, "name": "T", "website": "", "code_signature": "", "network_signature": "Krxd.NET|fidzup|.*.estimote.com|a.b")"),
      "t.json");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->trackers[0].network_domains, (std::vector<std::string>{"krxd.net", "fidzup"}));
  EXPECT_EQ(set->trackers[0].network_patterns, (std::vector<std::string>{".*.estimote.com"}));
  EXPECT_EQ(set->skipped.size(), 1u);  // "a.b"
}

TEST(Knowledge, UnsupportedRegexIsSkippedNotFatal) {
  auto set = ParseTrackers(
      OneTracker(R"("id": 7, "name": "T", "website": "", "code_signature": "com.(foo|bar).", "network_signature": "")"),
      "t.json");
  // '|' splits first: "com.(foo" is malformed (unclosed group is read as a group: unsupported).
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_TRUE(set->trackers[0].code_patterns.empty());
  EXPECT_EQ(set->skipped.size(), 2u);
}

TEST(Knowledge, ErrorsNameTheTrackerAndField) {
  struct Case {
    std::string json;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {OneTracker(R"("id": 7, "name": "Foo", "code_signature": 3, "network_signature": "")"),
       R"(tracker "7" (Foo): field "code_signature" must be a string, got number)"},
      {OneTracker(R"("id": 7, "name": "Foo", "code_signature": "")"),
       R"(tracker "7" (Foo): missing field "network_signature")"},
      {OneTracker(R"("id": 7, "name": "Foo", "code_signature": "com.foo[", "network_signature": "")"),
       R"(tracker "7" (Foo): field "code_signature": bad regular expression "com.foo[")"},
      {OneTracker(R"("id": 8, "name": "Foo", "code_signature": "", "network_signature": "")"),
       R"(tracker "7": field "id" is 8 but the entry's key is "7")"},
      {OneTracker(R"("id": "7", "name": "Foo", "code_signature": "", "network_signature": "")"),
       R"(tracker "7": field "id" must be a non-negative integer)"},
      {R"({"trackers": []})", "missing object \"trackers\""},
      {"{", "not valid JSON"},
  };
  for (const Case& c : cases) {
    auto set = ParseTrackers(c.json, "new.json");
    ASSERT_FALSE(set.ok()) << c.json;
    EXPECT_NE(set.status().message().find(c.expected), std::string::npos)
        << "got: " << set.status().message() << "\nwant: " << c.expected;
    EXPECT_EQ(set.status().message().rfind("new.json", 0), 0u) << "errors start with the file name";
  }
}

TEST(Knowledge, OtherFilesValidateTheirEntries) {
  auto caps = ParseCapabilities(
      R"({"capabilities": [{"id": "x", "title": "X", "severity": "severe", "apis": ["Lx;"]}]})", "c.json");
  ASSERT_FALSE(caps.ok());
  EXPECT_NE(caps.status().message().find("capabilities[0] (x): field \"severity\": unknown severity \"severe\""),
            std::string::npos)
      << caps.status().message();
  caps = ParseCapabilities(R"({"capabilities": [{"id": "x", "title": "X", "severity": "low", "apis": ["x.y.Z"]}]})",
                           "c.json");
  ASSERT_FALSE(caps.ok());
  EXPECT_NE(caps.status().message().find("\"x.y.Z\" is not"), std::string::npos);
  auto vendors =
      ParseVendors(R"({"vendors": [{"id": "v", "name": "V", "country": "CN", "signer_sha256": ["ab:cd"]}]})", "v.json");
  ASSERT_FALSE(vendors.ok());
  EXPECT_NE(vendors.status().message().find("vendors[0] (v): field \"signer_sha256\""), std::string::npos);
  vendors = ParseVendors(R"({"vendors": [{"id": "v", "name": "V", "country": "CN", "signer_sha256": [")" +
                             std::string(32, 'A') + ":" + std::string(32, 'b') + R"("]}]})",
                         "v.json");
  ASSERT_TRUE(vendors.ok()) << vendors.status().ToString();
  EXPECT_EQ((*vendors)[0].signer_sha256[0], std::string(32, 'a') + std::string(32, 'b'));
  // Apple Team IDs: 10 upper-case letters and digits, and never without a source.
  vendors = ParseVendors(
      R"({"vendors": [{"id": "v", "name": "V", "country": "CN", "apple_team_ids": ["88l2q4487u"],
                       "apple_team_id_sources": ["s"]}]})",
      "v.json");
  ASSERT_FALSE(vendors.ok());
  EXPECT_NE(vendors.status().message().find("is not an Apple Team ID"), std::string::npos);
  vendors = ParseVendors(
      R"({"vendors": [{"id": "v", "name": "V", "country": "CN", "apple_team_ids": ["88L2Q4487U"]}]})", "v.json");
  ASSERT_FALSE(vendors.ok());
  EXPECT_NE(vendors.status().message().find("needs \"apple_team_id_sources\""), std::string::npos);
  auto packers = ParsePackers(R"({"packers": [{"id": "p", "name": "P"}]})", "p.json");
  ASSERT_FALSE(packers.ok());
  EXPECT_NE(packers.status().message().find("could never be detected"), std::string::npos);
  auto duplicate = ParsePackers(
      R"({"packers": [{"id": "p", "name": "P", "assets": ["a"]}, {"id": "p", "name": "Q", "assets": ["b"]}]})",
      "p.json");
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.status().message().find("duplicate id \"p\""), std::string::npos);
}

TEST(Knowledge, LoadTrackersReportsAMissingFile) {
  auto set = LoadTrackers("/nonexistent/trackers.json");
  EXPECT_FALSE(set.ok());
}

}  // namespace
}  // namespace appban::assess
