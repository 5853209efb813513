// The fleet store's listings, assessments, settings and schema state, on every backend: what the
// admin API pages through must come back in the same order, with the same values, from SQLite and
// from PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "appban/store/fleet.h"
#include "appban/store/fleet_test_support.h"
#include "appban/store/match_records.h"
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
  auto linux_agents = fleet->ListDevicesWhere({.source = "agent", .platform = "linux"}, ids[0], 10);
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

// An inventory of the given apps, as the server stores one from a check-in.
CheckinWrite WithInventory(const std::string& device_id, std::vector<std::string> app_ids, UnixSeconds at) {
  std::vector<policy::InstalledApp> apps;
  std::string json = "[";
  for (const std::string& id : app_ids) {
    apps.push_back({policy::Platform::kAndroid, id, "1", "", ""});
    json += std::string(json.size() > 1 ? "," : "") + R"({"id":")" + id + R"(","platform":"android"})";
  }
  CheckinWrite write = Checkin(device_id, {}, at);
  write.inventory = InventoryUpdate{"inventory-" + std::to_string(at), json + "]", EncodeMatchRecords(apps), at};
  return write;
}

// The host names of a listing, in its order.
std::vector<std::string> Hostnames(const Result<std::vector<Device>>& devices) {
  std::vector<std::string> names;
  EXPECT_TRUE(devices.ok()) << devices.status().ToString();
  if (!devices.ok()) return names;
  const std::vector<Device>& listed = *devices;
  for (const Device& device : listed) names.push_back(device.hostname);
  return names;
}

std::vector<std::string> SearchHostnames(FleetStore& fleet, const DeviceFilter& filter) {
  return Hostnames(fleet.ListDevicesWhere(filter, "", 100));
}

TEST_P(FleetReadsContract, DeviceSearchByHostnamePrefixIgnoresCaseAndTakesWildcardsLiterally) {
  auto fleet = OpenFleet();
  for (const char* host : {"laptop-0042", "LAPTOP-0043", "desktop-laptop-1", "lab_01", "labx01", "100%-ready",
                           "1000-ready", "back\\slash"}) {
    EnrollOne(*fleet, host);
  }
  auto found = [&](const std::string& prefix) {
    std::vector<std::string> names = SearchHostnames(*fleet, {.hostname_prefix = prefix});
    std::sort(names.begin(), names.end());
    return names;
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(found("Laptop-"), (Names{"LAPTOP-0043", "laptop-0042"})) << "a prefix, not a substring";
  EXPECT_EQ(found("laptop-0042"), (Names{"laptop-0042"}));
  EXPECT_EQ(found("lab_"), (Names{"lab_01"})) << "_ is not a wildcard";
  EXPECT_EQ(found("100%"), (Names{"100%-ready"})) << "% is not a wildcard";
  EXPECT_EQ(found("back\\"), (Names{"back\\slash"}));
  EXPECT_EQ(found("%"), Names{});
  EXPECT_EQ(found("tablet"), Names{});
}

TEST_P(FleetReadsContract, DeviceSearchByInstalledAppFollowsTheLatestInventory) {
  auto fleet = OpenFleet();
  std::string chat = EnrollOne(*fleet, "chat-user").device.id;
  std::string both = EnrollOne(*fleet, "both-apps").device.id;
  std::string other = EnrollOne(*fleet, "other-apps").device.id;
  EnrollOne(*fleet, "never-reported");
  std::vector<CheckinWrite> batch = {WithInventory(chat, {"com.tencent.mm"}, kNow + 1),
                                     WithInventory(both, {"com.tencent.mm", "org.example.notes"}, kNow + 1),
                                     WithInventory(other, {"com.tencent.mmx", "org.example.notes"}, kNow + 1)};
  ASSERT_TRUE(fleet->ApplyCheckins(batch).ok());
  auto found = [&](const std::string& app) {
    std::vector<std::string> names = SearchHostnames(*fleet, {.app = app});
    std::sort(names.begin(), names.end());
    return names;
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(found("com.tencent.mm"), (Names{"both-apps", "chat-user"})) << "the whole app id, not a prefix";
  EXPECT_EQ(found("org.example.notes"), (Names{"both-apps", "other-apps"}));
  EXPECT_EQ(found("com.tencent.m_"), Names{});

  // The app is removed: the device is no longer found by it.
  std::vector<CheckinWrite> removal = {WithInventory(chat, {"org.example.notes"}, kNow + 2)};
  ASSERT_TRUE(fleet->ApplyCheckins(removal).ok());
  EXPECT_EQ(found("com.tencent.mm"), (Names{"both-apps"}));
  EXPECT_EQ(found("org.example.notes"), (Names{"both-apps", "chat-user", "other-apps"}));
  // Combined with the host name: both must match.
  EXPECT_EQ(SearchHostnames(*fleet, {.hostname_prefix = "OTHER", .app = "org.example.notes"}), (Names{"other-apps"}));
  EXPECT_EQ(SearchHostnames(*fleet, {.hostname_prefix = "other", .app = "com.tencent.mm"}), Names{});
}

TEST_P(FleetReadsContract, DeviceSearchPagesByIdAcrossAPageBoundary) {
  auto fleet = OpenFleet();
  std::vector<std::string> kiosks;
  for (int i = 0; i < 5; ++i) {
    kiosks.push_back(EnrollOne(*fleet, "kiosk-" + std::to_string(i)).device.id);
    EnrollOne(*fleet, "office-" + std::to_string(i));
  }
  std::sort(kiosks.begin(), kiosks.end());
  std::vector<CheckinWrite> batch;
  for (const std::string& id : kiosks) batch.push_back(WithInventory(id, {"org.example.kiosk"}, kNow + 1));
  ASSERT_TRUE(fleet->ApplyCheckins(batch).ok());

  for (const DeviceFilter& filter :
       {DeviceFilter{.hostname_prefix = "kiosk-"}, DeviceFilter{.app = "org.example.kiosk"}}) {
    std::vector<std::string> paged;
    std::string after;
    for (int pages = 0; pages < 10; ++pages) {
      auto page = fleet->ListDevicesWhere(filter, after, 2);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      const std::vector<Device>& devices = *page;
      for (const Device& device : devices) paged.push_back(device.id);
      if (devices.size() < 2) break;
      after = devices.back().id;
    }
    EXPECT_EQ(paged, kiosks) << "each match once, in id order, none from the other devices";
  }

  // By id prefix: the first device's id up to its last character finds it (and any other device
  // sharing that prefix, which the ids' 16 random hex digits make unlikely in a test).
  std::string prefix = kiosks[0].substr(0, kiosks[0].size() - 1);
  auto by_id = fleet->ListDevicesWhere({.id_prefix = prefix}, "", 10);
  ASSERT_TRUE(by_id.ok()) << by_id.status().ToString();
  ASSERT_GE(by_id->size(), 1u);
  EXPECT_EQ((*by_id)[0].id, kiosks[0]);
  EXPECT_EQ(fleet->ListDevicesWhere({.id_prefix = "d-%"}, "", 10)->size(), 0u);
  EXPECT_EQ(fleet->ListDevicesWhere({.id_prefix = "d-"}, "", 100)->size(), 10u);
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
