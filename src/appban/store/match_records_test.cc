#include "appban/store/match_records.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace appban::store {
namespace {

using policy::InstalledApp;
using policy::Platform;

std::vector<InstalledApp> Decode(std::string_view text, Status* status) {
  std::vector<InstalledApp> apps;
  *status = ForEachMatchRecord(text, [&](const MatchRecord& record) {
    apps.push_back(InstalledApp{record.platform, std::string(record.id), "", std::string(record.signer_sha256),
                                std::string(record.team_id)});
  });
  return apps;
}

TEST(MatchRecords, RoundTripKeepsEveryMatchingFieldAndDropsTheVersion) {
  std::vector<InstalledApp> apps = {
      {Platform::kDeb, "wechat", "3.0", "", ""},
      {Platform::kAndroid, "com.tencent.mm", "8.0.1", std::string(64, 'a'), ""},
      {Platform::kIos, "com.example.app", "1", "", "ABCDE12345"},
      // Separators and digits inside identifiers are data, not syntax.
      {Platform::kFlatpak, "12:34:odd\tname\n", "", "", ""},
      {Platform::kSnap, "\xc3\xa9t\xc3\xa9", "", "", ""},
  };
  std::string text = EncodeMatchRecords(apps);
  EXPECT_EQ(text.substr(0, 17), "3:deb6:wechat0:0:");
  Status status;
  std::vector<InstalledApp> decoded = Decode(text, &status);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(decoded.size(), apps.size());
  for (size_t i = 0; i < apps.size(); ++i) {
    EXPECT_EQ(decoded[i].platform, apps[i].platform) << i;
    EXPECT_EQ(decoded[i].id, apps[i].id) << i;
    EXPECT_EQ(decoded[i].signer_sha256, apps[i].signer_sha256) << i;
    EXPECT_EQ(decoded[i].team_id, apps[i].team_id) << i;
    EXPECT_TRUE(decoded[i].version.empty()) << "matching never reads the version";
  }
}

TEST(MatchRecords, EmptyTextIsAnEmptyInventory) {
  EXPECT_EQ(EncodeMatchRecords({}), "");
  Status status;
  EXPECT_TRUE(Decode("", &status).empty());
  EXPECT_TRUE(status.ok());
}

TEST(MatchRecords, MalformedTextIsCorruptionNamingTheProblem) {
  struct Case {
    std::string text;
    std::string message_part;
  };
  std::vector<Case> cases = {
      {"3:deb6:wechat0:", "team_id at offset 15: expected <length>:"},
      {"3:deb6:wech", "id at offset 5: runs past the end"},
      {"3:deb0:0:0:", "empty id"},
      {"3:xyz1:a0:0:", "unknown platform"},
      {"x:deb", "platform at offset 0: length is not a decimal number"},
      {"-1:a", "length is not a decimal number"},
      {"99999999:", "expected <length>:"},
      {"3:deb9999:a", "exceeds the limit of 4096"},
      {":deb", "platform at offset 0: expected <length>:"},
      {"03:deb1:a0:0:", "leading zero"},
  };
  for (const Case& c : cases) {
    Status status;
    Decode(c.text, &status);
    EXPECT_EQ(status.code(), StatusCode::kCorruption) << c.text;
    EXPECT_NE(status.message().find(c.message_part), std::string::npos) << c.text << " -> " << status.message();
  }
}

TEST(MatchRecords, RecordsBeforeTheDamageAreVisitedThenDecodingStops) {
  std::vector<InstalledApp> apps = {{Platform::kDeb, "vim", "", "", ""}, {Platform::kDeb, "wechat", "", "", ""}};
  std::string text = EncodeMatchRecords(apps);
  text.resize(text.size() - 3);
  Status status;
  std::vector<InstalledApp> decoded = Decode(text, &status);
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  ASSERT_EQ(decoded.size(), 1u);
  EXPECT_EQ(decoded[0].id, "vim");
}

TEST(MatchRecords, RecordCountIsBounded) {
  std::string text;
  for (size_t i = 0; i <= kMatchRecordLimits.max_records; ++i) text += "3:deb1:a0:0:";
  Status status;
  size_t visited = 0;
  status = ForEachMatchRecord(text, [&](const MatchRecord&) { ++visited; });
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("more than 20000 records"), std::string::npos) << status.message();
  EXPECT_EQ(visited, kMatchRecordLimits.max_records);
}

}  // namespace
}  // namespace appban::store
