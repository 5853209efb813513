// `appban inspect` and `appban assess` in-process on a fixture APK ($APPBAN_FIXTURES, built by
// tests/fixtures/build.sh): what is printed for a readable package, and how unreadable inputs and
// wrong options are reported. The reports' contents are tested in tests/inspect_test.cc and
// tests/assess_cli_test.cc through the real binary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "appban/cli/cli_test_support.h"

namespace appban::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string FixturePath(const std::string& name) {
  const char* env = std::getenv("APPBAN_FIXTURES");
  const fs::path dir = env != nullptr ? fs::path(env) : fs::path(APPBAN_BINARY_DIR) / "fixtures";
  return (dir / name).string();
}

class ApkCommandsTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    minimal_ = FixturePath("minimal.apk");
    if (!fs::exists(minimal_)) GTEST_SKIP() << minimal_ << " not built";
  }
  std::string minimal_;
};

TEST_F(ApkCommandsTest, InspectPrintsTheFactsOfAReadablePackage) {
  auto text = RunCli({"inspect", minimal_});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(text.out.starts_with(minimal_ + "\n")) << text.out;
  EXPECT_TRUE(Contains(text.out, "  package        org.appban.fixture.minimal\n")) << text.out;
  EXPECT_TRUE(text.err.empty()) << text.err;

  auto json = RunCli({"inspect", "--json", minimal_});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  Json doc = Json::parse(json.out);
  EXPECT_EQ(doc["schema"], "appban.inspect/1");
  EXPECT_EQ(doc["app"]["package"], "org.appban.fixture.minimal");
  EXPECT_EQ(doc["file"]["path"], minimal_);
}

TEST_F(ApkCommandsTest, InspectReportsEachUnreadableInputAndStillPrintsTheOthers) {
  Write("notes.apk", "these are not the bytes of a ZIP archive");
  auto result = RunCli({"inspect", Path("missing.apk"), minimal_, Path("notes.apk")});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(Contains(result.out, "org.appban.fixture.minimal")) << result.out;
  EXPECT_TRUE(Contains(result.err, "appban: " + Path("missing.apk") + ": ")) << result.err;
  EXPECT_TRUE(Contains(result.err, "appban: " + Path("notes.apk") + ": ")) << result.err;
}

TEST_F(ApkCommandsTest, InspectSearchesDirectoriesForApks) {
  fs::create_directories(dir_ / "apks" / "nested");
  fs::copy_file(minimal_, dir_ / "apks" / "nested" / "one.apk");
  Write("apks/readme.txt", "not an apk, and not looked at");
  auto result = RunCli({"inspect", "--json", Path("apks")});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  Json doc = Json::parse(result.out);
  EXPECT_EQ(doc["file"]["path"], Path("apks/nested/one.apk"));

  auto none = RunCli({"inspect"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_TRUE(Contains(none.err, "files")) << none.err;
}

TEST_F(ApkCommandsTest, AssessWritesTheChosenFormat) {
  auto json = RunCli({"assess", "--format", "json", minimal_});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  Json doc = Json::parse(json.out);
  EXPECT_EQ(doc["schema"], "appban.assess/1");

  auto written = RunCli({"assess", "--format", "sarif", "-o", Path("report.sarif"), minimal_});
  ASSERT_EQ(written.exit_code, 0) << written.err;
  EXPECT_TRUE(written.out.empty()) << "the report went to the file: " << written.out;
  Json sarif = Json::parse(Read(Path("report.sarif")));
  EXPECT_EQ(sarif["version"], "2.1.0");
}

TEST_F(ApkCommandsTest, AssessRefusesUnknownOptionValuesWithStatus2) {
  auto format = RunCli({"assess", "--format", "pdf", minimal_});
  EXPECT_EQ(format.exit_code, 2);
  EXPECT_EQ(format.err, "appban: --format must be text, json, sarif or html\n");
  EXPECT_TRUE(format.out.empty());

  auto level = RunCli({"assess", "--fail-on", "catastrophic", minimal_});
  EXPECT_EQ(level.exit_code, 2);
  EXPECT_TRUE(Contains(level.err, "appban: --fail-on: ")) << level.err;

  auto data_dir = RunCli({"assess", "--data-files", Path("no-such-dir"), minimal_});
  EXPECT_EQ(data_dir.exit_code, 2);
  EXPECT_TRUE(Contains(data_dir.err, "no-such-dir")) << data_dir.err;
  // --data-dir names the server's data directory everywhere; the shipped data files are --data-files.
  auto confused = RunCli({"assess", "--data-dir", Path("no-such-dir"), minimal_});
  EXPECT_EQ(confused.exit_code, 2);
  EXPECT_TRUE(Contains(confused.err, "--data-dir")) << confused.err;
}

TEST_F(ApkCommandsTest, AssessFailOnGatesByRiskLevel) {
  // The minimal fixture is far from critical risk, and any app is at least low.
  auto passes = RunCli({"assess", "--format", "json", "--fail-on", "critical", minimal_});
  EXPECT_EQ(passes.exit_code, 0) << passes.err;
  auto gated = RunCli({"assess", "--format", "json", "--fail-on", "low", minimal_});
  EXPECT_EQ(gated.exit_code, 3) << gated.err;
  EXPECT_TRUE(Contains(gated.err, "is at or above --fail-on low")) << gated.err;
}

TEST_F(ApkCommandsTest, AssessReportsAnUnreadableFileWithStatus1) {
  auto result = RunCli({"assess", "--format", "json", Path("missing.apk")});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(Contains(result.err, "appban: " + Path("missing.apk") + ": ")) << result.err;
}

}  // namespace
}  // namespace appban::cli
