// The fleet store's listings, assessments, settings and schema state, on every backend: what the
// admin API pages through must come back in the same order, with the same values, from SQLite and
// from PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "appban/store/fleet.h"
#include "appban/store/fleet_test_support.h"
#include "appban/store/store_backend_test_support.h"

namespace appban::store {
namespace {

using namespace fleet_testing;  // NOLINT: test helpers

class FleetReadsContract : public FleetOnEveryBackend {};
INSTANTIATE_TEST_SUITE_P(Backends, FleetReadsContract, ::testing::Values("sqlite", "postgres"), BackendName);

Assessment SampleAssessment(char digit, UnixSeconds at, double score) {
  Assessment assessment;
  assessment.sha256 = std::string(64, digit);
  assessment.package = "com.example.app" + std::string(1, digit);
  assessment.version = "1.0";
  assessment.score = score;
  assessment.band = "REVIEW";
  assessment.report_json = R"({"score":)" + std::to_string(score) + "}";
  assessment.uploaded_by = "alice";
  assessment.uploaded_at = at;
  assessment.file_size = 12345;
  return assessment;
}

TEST_P(FleetReadsContract, AssessmentsAreStoredOnceAndPagedNewestFirst) {
  auto fleet = OpenFleet();
  // Two uploads in one second and one later: newest first, then by sha256 descending.
  for (auto [digit, at] : {std::pair{'a', kNow}, std::pair{'b', kNow}, std::pair{'c', kNow + 5}}) {
    auto put = fleet->PutAssessment(SampleAssessment(digit, at, 61.25), By("alice", at));
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    EXPECT_TRUE(*put);
  }
  auto again = fleet->PutAssessment(SampleAssessment('a', kNow + 9, 10), By("alice", kNow + 9));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "the same file is stored once";

  auto one = fleet->GetAssessment(std::string(64, 'a'));
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->score, 61.25);
  EXPECT_EQ(one->report_json, R"({"score":61.250000})");
  EXPECT_EQ(one->file_size, 12345);
  EXPECT_EQ(fleet->GetAssessment(std::string(64, 'f')).status().code(), StatusCode::kNotFound);

  auto first = fleet->ListAssessmentsAfter(std::nullopt, 2);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].sha256, std::string(64, 'c'));
  EXPECT_EQ((*first)[1].sha256, std::string(64, 'b'));
  EXPECT_TRUE((*first)[0].report_json.empty()) << "listings leave the report out";
  auto rest = fleet->ListAssessmentsAfter(AssessmentKey{kNow, std::string(64, 'b')}, 2);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].sha256, std::string(64, 'a'));
  EXPECT_EQ(fleet->ListAssessments()->size(), 3u);
}

TEST_P(FleetReadsContract, DevicesEventsAndUsersPageInKeyOrder) {
  auto fleet = OpenFleet();
  std::vector<std::string> ids;
  for (const char* host : {"Zulu", "alpha", "Mike"}) ids.push_back(EnrollOne(*fleet, host).device.id);
  std::sort(ids.begin(), ids.end());
  auto page = fleet->ListDevicesAfter("", 2);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, ids[0]);
  EXPECT_EQ((*page)[1].id, ids[1]);
  auto next = fleet->ListDevicesAfter((*page)[1].id, 2);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].id, ids[2]);
  EXPECT_EQ(*fleet->CountDevices(), 3);
  auto linux_agents = fleet->ListDevicesWhere({"agent", "linux"}, ids[0], 10);
  ASSERT_TRUE(linux_agents.ok());
  EXPECT_EQ(linux_agents->size(), 2u);

  std::vector<CheckinWrite> batch = {Checkin(ids[0], {Event(1, "r1"), Event(2, "r2")}),
                                     Checkin(ids[1], {Event(1, "r1")})};
  ASSERT_TRUE(fleet->ApplyCheckins(batch).ok());
  auto for_rule = fleet->ListEventsForRule("r1", 10);
  ASSERT_TRUE(for_rule.ok()) << for_rule.status().ToString();
  EXPECT_EQ(for_rule->size(), 2u);
  auto of_device = fleet->ListEvents(ids[0], 10);
  ASSERT_TRUE(of_device.ok());
  ASSERT_EQ(of_device->size(), 2u);
  EXPECT_EQ((*of_device)[0].detail, "removed by the agent");

  for (const char* subject : {"carol", "bob"}) {
    SignIn sign_in;
    sign_in.issuer = "https://idp.example";
    sign_in.subject = subject;
    sign_in.display_name = subject;
    sign_in.at = kNow;
    ASSERT_TRUE(fleet->RecordSignIn(sign_in, By("system")).ok());
  }
  auto users = fleet->ListUsersAfter("", 10);
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  ASSERT_EQ(users->size(), 2u);
  EXPECT_LT((*users)[0].id, (*users)[1].id);
}

TEST_P(FleetReadsContract, SettingsAndSchemaState) {
  auto fleet = OpenFleet();
  EXPECT_FALSE(*fleet->GetSetting("server.id"));
  ASSERT_TRUE(fleet->PutSetting("server.id", "first").ok());
  ASSERT_TRUE(fleet->PutSetting("server.id", "second").ok());
  EXPECT_EQ(*fleet->GetSetting("server.id"), "second");
  auto schema = fleet->ReadSchemaState();
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_TRUE(schema->Current());
  EXPECT_GT(schema->expected, 0);
}

}  // namespace
}  // namespace appban::store
