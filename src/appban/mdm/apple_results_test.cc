#include "appban/mdm/apple_results.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "appban/common/file.h"
#include "appban/mdm/mdm_test_support.h"

namespace appban::mdm {
namespace {

std::string Event(std::string_view raw, std::string topic = "mdm.Connect") {
  return Json{
      {"topic", topic},
      {"event_id", "e1"},
      {"created_at", "2026-12-05T05:00:00Z"},
      {"acknowledge_event",
       {{"udid", "UDID-1"}, {"status", "Acknowledged"}, {"command_uuid", "C1"}, {"raw_payload", Base64Encode(raw)}}}}
      .dump();
}

constexpr char kAppList[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>CommandUUID</key><string>C1</string>
<key>InstalledApplicationList</key><array>
 <dict><key>Identifier</key><string>com.tencent.xin</string><key>Name</key><string>WeChat</string>
  <key>ShortVersion</key><string>8.0.50</string><key>Version</key><string>8.0.50.33</string></dict>
 <dict><key>Name</key><string>no identifier (macOS may omit it)</string></dict>
</array>
<key>Status</key><string>Acknowledged</string>
<key>UDID</key><string>UDID-1</string>
</dict></plist>)";

TEST(AppleResults, ParsesAWebhookEventWithAnAppList) {
  auto result = ParseWebhookEvent(Event(kAppList));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->enrollment_id, "UDID-1");
  EXPECT_EQ(result->command_uuid, "C1");
  EXPECT_EQ(result->status, "Acknowledged");
  auto apps = ParseInstalledApplicationList(result->payload);
  ASSERT_TRUE(apps.ok());
  ASSERT_EQ(apps->size(), 1u);
  EXPECT_EQ((*apps)[0].identifier, "com.tencent.xin");
  EXPECT_EQ((*apps)[0].version, "8.0.50");
}

TEST(AppleResults, ErrorChainsAreSummarised) {
  auto result = ParseCommandResult(R"(<plist version="1.0"><dict>
<key>CommandUUID</key><string>C2</string><key>Status</key><string>Error</string><key>UDID</key><string>U</string>
<key>ErrorChain</key><array><dict><key>ErrorCode</key><integer>12026</integer>
<key>ErrorDomain</key><string>MCInstallationErrorDomain</string>
<key>USEnglishDescription</key><string>The app is not managed.</string></dict></array>
</dict></plist>)");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->error, "12026 MCInstallationErrorDomain: The app is not managed.");
}

TEST(AppleResults, MalformedInputIsAClearError) {
  EXPECT_EQ(ParseWebhookEvent("not json").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseWebhookEvent(Event(kAppList, "mdm.TokenUpdate")).status().code(), StatusCode::kNotFound);
  std::string bad_base64 = Event(kAppList);
  bad_base64.replace(bad_base64.find("raw_payload\":\"") + 14, 1, "*");
  EXPECT_NE(ParseWebhookEvent(bad_base64).status().message().find("base64"), std::string::npos);
  EXPECT_NE(ParseWebhookEvent(Event(std::string(kAppList).substr(0, 200))).status().message().find("not a plist"),
            std::string::npos);
  EXPECT_NE(ParseWebhookEvent(Event("<plist version=\"1.0\"><array/></plist>"))
                .status()
                .message()
                .find("not a plist dictionary"),
            std::string::npos);
  EXPECT_NE(ParseCommandResult("<plist version=\"1.0\"><dict><key>CommandUUID</key><string>x</string></dict></plist>")
                .status()
                .message()
                .find("no Status"),
            std::string::npos);
  auto not_list = ParseCommandResult(
      "<plist version=\"1.0\"><dict><key>Status</key><string>Acknowledged</string><key>CommandUUID</key>"
      "<string>x</string><key>InstalledApplicationList</key><string>oops</string></dict></plist>");
  ASSERT_TRUE(not_list.ok());
  ResultsFile results;
  not_list->enrollment_id = "U";
  EXPECT_NE(RecordResult(results, *not_list, 1).message().find("no InstalledApplicationList array"), std::string::npos);
  EXPECT_TRUE(results.commands.empty()) << "a refused answer changes nothing";
  auto bad_info = ParseCommandResult(
      "<plist version=\"1.0\"><dict><key>Status</key><string>Acknowledged</string><key>CommandUUID</key>"
      "<string>x</string><key>QueryResponses</key><dict><key>IsSupervised</key><string>yes</string></dict>"
      "</dict></plist>");
  ASSERT_TRUE(bad_info.ok());
  EXPECT_NE(ParseDeviceInformation(bad_info->payload).status().message().find("IsSupervised is not a boolean"),
            std::string::npos);
}

// kAppList's answer to command `uuid`, from device `udid`.
std::string AppListEvent(const std::string& udid, const std::string& uuid) {
  std::string raw = kAppList;
  const std::string command = "<string>C1</string>";
  raw.replace(raw.find(command), command.size(), "<string>" + uuid + "</string>");
  Json event = Json::parse(Event(raw));
  event["acknowledge_event"]["udid"] = udid;
  return event.dump();
}

size_t Lines(const std::string& path) {
  auto text = ReadFileToString(path, 1 << 20);
  return text.ok() ? static_cast<size_t>(std::count(text->begin(), text->end(), '\n')) : 0;
}

TEST(AppleResults, EachAnswerIsAppendedToTheJournalNotARewrite) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/apple-ios-results.json";
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        RecordWebhookEvent(path, AppListEvent("UDID-" + std::to_string(i), "C" + std::to_string(i)), 100 + i).ok());
  }
  EXPECT_FALSE(ReadFileToString(path, 1 << 20).ok()) << "no snapshot written while the journal is small";
  EXPECT_EQ(Lines(ResultsJournalPath(path)), 3u);
  auto results = LoadResultsFile(path);
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->devices.size(), 3u);
  EXPECT_EQ(results->devices["UDID-2"].apps_at, 102);
  EXPECT_EQ((*results->devices["UDID-2"].apps)[0].identifier, "com.tencent.xin");
  EXPECT_EQ(results->commands["C1"].device, "UDID-1");
}

TEST(AppleResults, ARecordACrashCutShortIsSkippedAndFoldingTwiceChangesNothing) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/apple-ios-results.json";
  ASSERT_TRUE(RecordWebhookEvent(path, AppListEvent("UDID-1", "C1"), 100).ok());
  ASSERT_TRUE(RecordWebhookEvent(path, AppListEvent("UDID-1", "C2"), 200).ok());
  auto before = LoadResultsFile(path);
  ASSERT_TRUE(before.ok());
  const std::string journal = *ReadFileToString(ResultsJournalPath(path), 1 << 20);
  // The same records again (a compaction interrupted before the journal was emptied), older
  // first, and then half a record with no newline (the process died inside a write).
  std::ofstream(ResultsJournalPath(path), std::ios::app) << journal << journal.substr(0, journal.size() / 3);
  auto after = LoadResultsFile(path);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->devices["UDID-1"].apps_at, 200);
  EXPECT_EQ(after->devices["UDID-1"].last_seen, 200);
  EXPECT_EQ(after->commands.size(), before->commands.size());
  EXPECT_EQ(after->commands["C2"].at, 200);

  // A damaged record that is not the last one is corruption, said with its line.
  std::ofstream(ResultsJournalPath(path), std::ios::app) << "\n{\"format\": 1}\n";
  auto damaged = LoadResultsFile(path);
  EXPECT_EQ(damaged.status().code(), StatusCode::kCorruption);
  EXPECT_NE(damaged.status().message().find(".journal:"), std::string::npos) << damaged.status().ToString();
}

TEST(AppleResults, AFullJournalIsFoldedIntoTheSnapshot) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/apple-ios-results.json";
  // A limit of one byte: folded after every answer.
  ASSERT_TRUE(RecordWebhookEvent(path, AppListEvent("UDID-1", "C1"), 100, 1).ok());
  ASSERT_TRUE(RecordWebhookEvent(path, AppListEvent("UDID-2", "C2"), 200, 1).ok());
  EXPECT_EQ(Lines(ResultsJournalPath(path)), 0u);
  auto results = LoadResultsFile(path);
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  EXPECT_EQ(results->devices.size(), 2u);
  EXPECT_EQ(results->commands["C2"].at, 200);
}

TEST(AppleResults, Base64RoundTripsAndRefusesGarbage) {
  for (std::string text : {"", "a", "ab", "abc", "nanomdm:key"}) EXPECT_EQ(*Base64Decode(Base64Encode(text)), text);
  EXPECT_EQ(Base64Encode("nanomdm:key"), "bmFub21kbTprZXk=");
  EXPECT_FALSE(Base64Decode("abc").ok());
  EXPECT_FALSE(Base64Decode("ab c").ok());
}

TEST(AppleResults, OsVersionsCompareNumerically) {
  EXPECT_TRUE(OsVersionBefore("9.3", "15.0"));
  EXPECT_TRUE(OsVersionBefore("14.8.1", "15"));
  EXPECT_FALSE(OsVersionBefore("15.0", "15"));
  EXPECT_FALSE(OsVersionBefore("26.0.1", "26.0"));
  EXPECT_FALSE(ParseOsVersion("17.x").has_value());
  EXPECT_FALSE(ParseOsVersion("").has_value());
}

}  // namespace
}  // namespace appban::mdm
