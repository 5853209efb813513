// Packages built to make an analyser give up must still be reported: a corrupt secondary DEX is an
// anomaly, not a reason to refuse the whole report.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace appban::testing {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

TEST(InspectRobustness, CorruptSecondaryDexIsAnAnomalyAndTheRestIsReported) {
  TempDir dir;
  fs::path apk = dir.path() / "broken-dex.apk";
  fs::copy_file(Fixture("minimal.apk"), apk);
  {
    std::ofstream junk(dir.path() / "classes2.dex", std::ios::binary);
    junk << "dex\n035" << std::string(1, '\0') << "this is not a DEX file, only its magic";
  }
  CommandResult zip =
      RunCommand({"sh", "-c", "cd '" + dir.path().string() + "' && zip -q broken-dex.apk classes2.dex"});
  ASSERT_EQ(zip.exit_code, 0) << zip.err;

  CommandResult run = RunCommand({AppbanBinary(), "inspect", "--json", apk.string()});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  Json doc = Json::parse(run.out);
  EXPECT_EQ(doc["app"]["package"], "org.appban.fixture.minimal");
  ASSERT_EQ(doc["app"]["dex"]["files"].size(), 1u);
  EXPECT_EQ(doc["app"]["dex"]["files"][0]["name"], "classes.dex");
  bool reported = false;
  for (const Json& anomaly : doc["anomalies"]) {
    if (anomaly["code"] == "dex.unreadable" && anomaly["where"] == "classes2.dex") reported = true;
  }
  EXPECT_TRUE(reported) << doc["anomalies"].dump();

  // The assessment scores it like any other anomaly.
  CommandResult assess = RunCommand({AppbanBinary(), "assess", "--format", "json", apk.string()});
  ASSERT_EQ(assess.exit_code, 0) << assess.err;
  bool scored = false;
  Json report = Json::parse(assess.out);
  for (const Json& finding : report["findings"]) {
    if (finding["id"] == "anomaly.dex.unreadable") scored = true;
  }
  EXPECT_TRUE(scored);
}

}  // namespace
}  // namespace appban::testing
