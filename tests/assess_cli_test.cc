// End-to-end tests of `appban assess` as a CI pipeline and an analyst use it: report formats
// (JSON fields, SARIF validated against the official 2.1.0 schema, HTML rendered in headless
// Chromium), exit statuses (--fail-on, unreadable files), many files with a summary table, and
// tracker files.
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "support/test_support.h"

namespace appban::testing {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteAll(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

Json AssessJson(const std::string& apk) {
  CommandResult run = RunCommand({AppbanBinary(), "assess", "--format", "json", apk});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  return Json::parse(run.out);
}

std::vector<std::string> TrackerNames(const Json& doc) {
  std::vector<std::string> names;
  for (const Json& t : doc["trackers"]) names.push_back(t["name"]);
  return names;
}

TEST(AssessCliTest, JsonReportCarriesRiskFindingsTrackersEndpointsAndAppFacts) {
  Json doc = AssessJson(Fixture("multidex.apk"));
  EXPECT_EQ(doc["schema"], "appban.assess/1");
  EXPECT_EQ(doc["app"]["package"], "org.appban.fixture.multidex");
  const Json& risk = doc["risk"];
  EXPECT_GE(risk["score"].get<int>(), 0);
  EXPECT_LE(risk["score"].get<int>(), 100);
  EXPECT_TRUE(risk["level"] == "low" || risk["level"] == "medium" || risk["level"] == "high" ||
              risk["level"] == "critical");
  EXPECT_TRUE(risk["verdict"] == "acceptable" || risk["verdict"] == "review" || risk["verdict"] == "unacceptable");
  // Two trackers, one of them (AppsFlyer) split across classes.dex and classes2.dex.
  std::vector<std::string> names = TrackerNames(doc);
  EXPECT_NE(std::find(names.begin(), names.end(), "AppsFlyer"), names.end()) << doc["trackers"].dump();
  EXPECT_NE(std::find(names.begin(), names.end(), "FB. Ads"), names.end()) << doc["trackers"].dump();
  for (const Json& t : doc["trackers"]) {
    if (t["name"] == "AppsFlyer") {
      EXPECT_EQ(t["dex_files"], Json({"classes.dex", "classes2.dex"}));
    }
  }
  // Every reason points at findings that exist in the report.
  std::set<std::string> ids;
  for (const Json& f : doc["findings"]) {
    ids.insert(f["id"].get<std::string>());
    EXPECT_FALSE(f["title"].get<std::string>().empty());
    EXPECT_TRUE(f.contains("evidence"));
  }
  ASSERT_FALSE(risk["reasons"].empty());
  for (const Json& reason : risk["reasons"]) {
    for (const Json& id : reason["findings"]) EXPECT_TRUE(ids.count(id.get<std::string>())) << id;
  }
  EXPECT_TRUE(doc["endpoints"].contains("hosts"));
}

TEST(AssessCliTest, NetworkSecurityConfigIsReadFromThePackage) {
  // rich.apk's res/xml/network_security_config.xml (compiled by aapt2): cleartext permitted by the
  // base config, refused for *.fixture.appban.org.
  Json doc = AssessJson(Fixture("rich.apk"));
  const Json& config = doc["app"]["network_security_config"];
  ASSERT_TRUE(config.is_object()) << doc["app"].dump();
  EXPECT_EQ(config["path"], "res/xml/network_security_config.xml");
  EXPECT_EQ(config["base_cleartext_permitted"], true);
  ASSERT_EQ(config["domain_configs"].size(), 1u);
  EXPECT_EQ(config["domain_configs"][0]["domains"], Json({"*.fixture.appban.org"}));
  EXPECT_EQ(config["domain_configs"][0]["cleartext_permitted"], false);
  bool cleartext_from_config = false;
  for (const Json& finding : doc["findings"]) {
    if (finding["id"] == "hygiene.cleartext_traffic") {
      cleartext_from_config = finding["evidence"][0]["location"] == "res/xml/network_security_config.xml";
    }
  }
  EXPECT_TRUE(cleartext_from_config) << doc["findings"].dump();
}

TEST(AssessCliTest, SarifValidatesAgainstTheOfficialSchema) {
  TempDir dir;
  fs::path sarif = dir.path() / "report.sarif";
  CommandResult run = RunCommand({AppbanBinary(), "assess", "--format", "sarif", "-o", sarif.string(),
                                  Fixture("rich.apk"), Fixture("multidex.apk")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Json log = Json::parse(ReadAll(sarif));
  EXPECT_EQ(log["version"], "2.1.0");
  ASSERT_EQ(log["runs"].size(), 1u);
  EXPECT_EQ(log["runs"][0]["artifacts"].size(), 2u);
  EXPECT_FALSE(log["runs"][0]["results"].empty());

  CommandResult schema = RunCommand(
      {std::string(APPBAN_SOURCE_DIR) + "/tests/tools/sarif_schema.sh", (FixtureDir() / "schemas").string()});
  ASSERT_EQ(schema.exit_code, 0) << schema.err;
  std::string schema_path = schema.out.substr(0, schema.out.find('\n'));
  CommandResult valid = RunCommand(
      {std::string(APPBAN_SOURCE_DIR) + "/tests/tools/validate_json_schema.py", schema_path, sarif.string()});
  EXPECT_EQ(valid.exit_code, 0) << valid.out << valid.err;
  EXPECT_NE(valid.out.find("0 schema errors"), std::string::npos) << valid.out;
}

// An analyst justifying a ban needs the iOS build's evidence through the same commands: the IPA
// and its unpacked .app (tests/fixtures/ios/build.sh) are recognised by content and read the same;
// assess gives the iOS findings in every format, and the SARIF log of an IPA and an APK together
// validates against the official schema.
TEST(AssessCliTest, IpaAndAppBundleThroughInspectAndEveryAssessFormat) {
  CommandResult inspect = RunCommand({AppbanBinary(), "inspect", "--json", Fixture("ios/Demo.ipa")});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  Json facts = Json::parse(inspect.out);
  EXPECT_EQ(facts["schema"], "appban.inspect.ios/1");
  EXPECT_EQ(facts["platform"], "ios");
  EXPECT_EQ(facts["file"]["kind"], "ipa");
  EXPECT_EQ(facts["app"]["bundle_id"], "com.example.demo");
  EXPECT_EQ(facts["app"]["team_id"], "ABCDE12345");

  Json ipa = AssessJson(Fixture("ios/Demo.ipa"));
  Json bundle = AssessJson(Fixture("ios/Demo.app"));
  EXPECT_EQ(ipa["app"]["platform"], "ios");
  EXPECT_EQ(ipa["app"]["package"], "com.example.demo");
  EXPECT_EQ(bundle["app"]["package"], "com.example.demo");
  EXPECT_EQ(ipa["risk"]["score"], bundle["risk"]["score"]) << "the .app and its IPA are the same app";
  // The fixture's profile is signed by the test CA, not by Apple's provisioning service: a profile
  // iOS refuses, so a made-up or altered package, on top of the hygiene findings.
  EXPECT_EQ(ipa["risk"]["verdict"], "unacceptable");
  std::vector<std::string> codes;
  for (const Json& finding : ipa["findings"]) codes.push_back(finding.value("id", ""));
  for (const char* expected :
       {"hygiene.enterprise_provisioning", "hygiene.get_task_allow", "hygiene.ats_arbitrary_loads",
        "capability.location.used", "anomaly.ios.profile_not_signed_by_apple"}) {
    EXPECT_NE(std::find(codes.begin(), codes.end(), expected), codes.end()) << expected;
  }
  EXPECT_EQ(TrackerNames(ipa), std::vector<std::string>{"Facebook Analytics"});

  CommandResult text = RunCommand({AppbanBinary(), "assess", Fixture("ios/Demo.app")});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("com.example.demo 2.4.1 (Demo App)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Enterprise (in-house) provisioning profile"), std::string::npos) << text.out;
  // The signer's organisation and country, from its certificate (C=US), as for an APK's signer.
  EXPECT_NE(text.out.find("O=Example Corp C=US"), std::string::npos) << text.out;

  TempDir dir;
  fs::path html = dir.path() / "report.html";
  ASSERT_EQ(RunCommand({AppbanBinary(), "assess", "--format", "html", "-o", html.string(), Fixture("ios/Demo.ipa")})
                .exit_code,
            0);
  EXPECT_NE(ReadAll(html).find("com.example.demo"), std::string::npos);

  fs::path sarif = dir.path() / "mixed.sarif";
  CommandResult mixed = RunCommand({AppbanBinary(), "assess", "--format", "sarif", "-o", sarif.string(),
                                    Fixture("ios/Demo.ipa"), Fixture("rich.apk")});
  ASSERT_EQ(mixed.exit_code, 0) << mixed.err;
  EXPECT_EQ(Json::parse(ReadAll(sarif))["runs"][0]["artifacts"].size(), 2u);
  CommandResult schema = RunCommand(
      {std::string(APPBAN_SOURCE_DIR) + "/tests/tools/sarif_schema.sh", (FixtureDir() / "schemas").string()});
  ASSERT_EQ(schema.exit_code, 0) << schema.err;
  CommandResult valid = RunCommand({std::string(APPBAN_SOURCE_DIR) + "/tests/tools/validate_json_schema.py",
                                    schema.out.substr(0, schema.out.find('\n')), sarif.string()});
  EXPECT_NE(valid.out.find("0 schema errors"), std::string::npos) << valid.out << valid.err;
}

TEST(AssessCliTest, HtmlReportIsDatedNamesItsTrackerDatabaseAndSaysWhenASectionIsEmpty) {
  TempDir dir;
  fs::path html = dir.path() / "report.html";
  int64_t before = static_cast<int64_t>(std::time(nullptr));
  CommandResult run =
      RunCommand({AppbanBinary(), "assess", "--format", "html", "-o", html.string(), Fixture("minimal.apk")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string page = ReadAll(html);
  Json doc = AssessJson(Fixture("minimal.apk"));
  ASSERT_TRUE(doc["trackers"].empty()) << "the fixture is meant to have no trackers";
  ASSERT_TRUE(doc["endpoints"]["hosts"].empty()) << "the fixture is meant to have no endpoints";

  // The same database the JSON names, with its signature count and digest, in the footer.
  std::string database = doc["tracker_database"];
  EXPECT_NE(database.find("trackers.json: 427 signatures, SHA-256 "), std::string::npos) << database;
  size_t footer = page.find("<footer>");
  ASSERT_NE(footer, std::string::npos);
  EXPECT_NE(page.find(database, footer), std::string::npos);
  // Dated: the footer carries today's UTC date as the page was made.
  char today[16];
  std::time_t now = static_cast<std::time_t>(before);
  std::strftime(today, sizeof today, "%Y-%m-%d", std::gmtime(&now));
  EXPECT_NE(page.find(std::string(" on ") + today, footer), std::string::npos) << page.substr(footer);

  // Empty sections say so instead of showing a table with only its header row.
  EXPECT_NE(page.find("No tracker signature of the database matched"), std::string::npos);
  EXPECT_EQ(page.find("<th>host</th>"), std::string::npos);
  EXPECT_NE(page.find("0 hosts, 0 URLs, 0 IP literals."), std::string::npos);
}

TEST(AssessCliTest, HtmlReportIsSelfContainedAndRendersInChromium) {
  TempDir dir;
  fs::path html = dir.path() / "report.html";
  CommandResult run =
      RunCommand({AppbanBinary(), "assess", "--format", "html", "-o", html.string(), Fixture("rich.apk")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string page = ReadAll(html);
  // Self-contained: no external scripts, stylesheets or images.
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("src=\"http"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  Json doc = AssessJson(Fixture("rich.apk"));
  EXPECT_NE(page.find(doc["risk"]["verdict"].get<std::string>()), std::string::npos);
  EXPECT_NE(page.find(doc["app"]["signers"][0]["sha256"].get<std::string>()), std::string::npos);

  fs::path profile = dir.path() / "profile";
  fs::path screenshot = dir.path() / "report.png";
  std::vector<std::string> chromium = {"chromium",
                                       "--headless",
                                       "--no-sandbox",
                                       "--disable-gpu",
                                       "--disable-quic",
                                       "--no-first-run",
                                       "--disable-background-networking",
                                       "--disable-component-update",
                                       "--disable-sync",
                                       "--user-data-dir=" + profile.string()};
  std::vector<std::string> dump = chromium;
  dump.push_back("--dump-dom");
  dump.push_back("file://" + html.string());
  CommandResult dom = RunCommand(dump);
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  // The browser parsed the page into the same sections the analyst reads.
  for (const char* heading : {"Reasons", "Signer and publisher", "Trackers", "Capabilities and permissions",
                              "Network endpoints", "Findings"}) {
    EXPECT_NE(dom.out.find(heading), std::string::npos) << heading;
  }
  std::vector<std::string> shot = chromium;
  shot.push_back("--window-size=1200,1600");
  shot.push_back("--screenshot=" + screenshot.string());
  shot.push_back("file://" + html.string());
  CommandResult png = RunCommand(shot);
  ASSERT_EQ(png.exit_code, 0) << png.err;
  ASSERT_TRUE(fs::exists(screenshot));
  EXPECT_GT(fs::file_size(screenshot), 20'000u);  // a rendered page, not a blank one
}

TEST(AssessCliTest, FailOnGatesCiByRiskLevel) {
  Json doc = AssessJson(Fixture("rich.apk"));
  std::string level = doc["risk"]["level"];
  // At the app's own level the gate trips (exit 3); above it, it does not.
  CommandResult at = RunCommand({AppbanBinary(), "assess", "--fail-on", level, Fixture("rich.apk")});
  EXPECT_EQ(at.exit_code, 3) << at.err;
  EXPECT_NE(at.err.find("at or above --fail-on " + level), std::string::npos) << at.err;
  if (level != "critical") {
    const char* higher = level == "low" ? "medium" : level == "medium" ? "high" : "critical";
    EXPECT_EQ(RunCommand({AppbanBinary(), "assess", "--fail-on", higher, Fixture("rich.apk")}).exit_code, 0);
  }
  CommandResult bad = RunCommand({AppbanBinary(), "assess", "--fail-on", "severe", Fixture("rich.apk")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown risk level 'severe'"), std::string::npos) << bad.err;
}

TEST(AssessCliTest, DirectoryOfManyFilesEndsWithASummaryAndReportsUnreadableOnes) {
  TempDir dir;
  for (const char* name : {"rich.apk", "multidex.apk", "v1only.apk", "truncated.apk"}) {
    fs::copy_file(Fixture(name), dir.path() / name);
  }
  CommandResult run = RunCommand({AppbanBinary(), "assess", "-j", "2", dir.path().string()});
  EXPECT_EQ(run.exit_code, 1);  // truncated.apk cannot be read
  EXPECT_NE(run.out.find("SCORE"), std::string::npos) << run.out;
  // The closing line accounts for every file: the three readable ones by verdict, the broken one
  // as unreadable, adding up to the four given.
  std::smatch counts;
  ASSERT_TRUE(std::regex_search(
      run.out, counts,
      std::regex(R"((\d+) file\(s\): (\d+) unacceptable, (\d+) review, (\d+) acceptable, (\d+) unreadable)")))
      << run.out;
  EXPECT_EQ(counts[1], "4");
  EXPECT_EQ(counts[5], "1");
  EXPECT_EQ(std::stoi(counts[2]) + std::stoi(counts[3]) + std::stoi(counts[4]), 3) << run.out;
  EXPECT_NE(run.err.find("truncated.apk"), std::string::npos) << run.err;
  EXPECT_NE(run.out.find("org.appban.fixture.multidex"), std::string::npos);
}

TEST(AssessCliTest, TrackerFilesAreCheckedAndANewerFileIsUsed) {
  TempDir dir;
  CommandResult shipped =
      RunCommand({AppbanBinary(), "trackers", "check", std::string(APPBAN_SOURCE_DIR) + "/data/trackers.json"});
  EXPECT_EQ(shipped.exit_code, 0) << shipped.err;
  EXPECT_NE(shipped.out.find("427 tracker signatures valid"), std::string::npos) << shipped.out;

  // A user's newer file of the same shape with one tracker of their own.
  fs::path mine = dir.path() / "mine.json";
  WriteAll(mine, R"({"trackers": {"9001": {"id": 9001, "name": "Fixture Analytics", "website": "https://example.org",
                     "code_signature": "org.appban.fixture.rich.", "network_signature": ""}}})");
  CommandResult checked = RunCommand({AppbanBinary(), "trackers", "check", mine.string()});
  EXPECT_EQ(checked.exit_code, 0) << checked.err;
  CommandResult run =
      RunCommand({AppbanBinary(), "assess", "--format", "json", "--trackers", mine.string(), Fixture("rich.apk")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(TrackerNames(Json::parse(run.out)), std::vector<std::string>{"Fixture Analytics"});

  fs::path broken = dir.path() / "broken.json";
  WriteAll(
      broken,
      R"({"trackers": {"7": {"id": 7, "name": "Bad", "website": "", "code_signature": 12, "network_signature": ""}}})");
  CommandResult bad = RunCommand({AppbanBinary(), "trackers", "check", broken.string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("code_signature"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace appban::testing
