// MDM devices in the fleet store: imported beside enrolled agents, listed by source, never able to
// authenticate, and migration 7 keeping every enrolled device and what references it.
#include <gtest/gtest.h>

#include "appban/store/fleet_test_support.h"
#include "appban/store/store_backend_test_support.h"

namespace appban::store {
namespace {

using namespace fleet_testing;  // NOLINT: test helpers

// The tests below that hold on every backend (TEST_P); the migration test needs the SQLite file.
class FleetMdmContract : public FleetOnEveryBackend {};
INSTANTIATE_TEST_SUITE_P(Backends, FleetMdmContract, ::testing::Values("sqlite", "postgres"), BackendName);

Device MdmRow(const std::string& id) {
  Device device;
  device.id = id;
  device.hostname = "phone";
  device.platform = "android";
  device.source = "amapi";
  device.mdm_connector = "health";
  device.mdm_id = "enterprises/LC00emu/devices/" + id;
  device.mdm_groups = {"staff", "health"};
  device.last_seen = kNow - 60;
  device.mdm_synced_at = kNow - 60;
  device.mdm_compliant = false;
  return device;
}

MdmDeviceWrite Write(const std::string& id) {
  MdmDeviceWrite write;
  write.device = MdmRow(id);
  write.checkin.device_id = id;
  write.checkin.last_seen = kNow - 60;
  return write;
}

TEST_P(FleetMdmContract, ImportedBesideAgentsListedBySourceNeverAuthenticated) {
  auto fleet = OpenFleet();
  Enrollment agent = EnrollOne(*fleet, "ws-1");
  std::vector<MdmDeviceWrite> writes = {Write("m-000000000000000000000001"), Write("d-0000000000000001"),
                                        Write(agent.device.id)};
  auto outcomes = fleet->ImportMdmDevices(writes, kNow);
  ASSERT_TRUE(outcomes.ok()) << outcomes.status().ToString();
  EXPECT_TRUE((*outcomes)[0].status.ok()) << (*outcomes)[0].status.ToString();
  EXPECT_EQ((*outcomes)[1].status.code(), StatusCode::kInvalidArgument);  // not an "m-" id
  EXPECT_EQ((*outcomes)[2].status.code(), StatusCode::kInvalidArgument);  // an agent's id

  auto phone = fleet->GetDevice("m-000000000000000000000001");
  ASSERT_TRUE(phone.ok());
  EXPECT_EQ(phone->source, "amapi");
  EXPECT_EQ(phone->mdm_groups, (std::vector<std::string>{"staff", "health"}));
  EXPECT_EQ(phone->mdm_compliant, false);
  EXPECT_FALSE(phone->mdm_compliant_at.has_value());
  EXPECT_EQ(phone->enrollment_token_id, "");
  EXPECT_EQ(fleet->GetDevice(agent.device.id)->source, "agent");

  EXPECT_EQ(fleet->ListDevicesWhere({.source = "amapi"}, "", 10)->size(), 1u);
  EXPECT_EQ(fleet->ListDevicesWhere({.source = "agent", .platform = "linux"}, "", 10)->size(), 1u);
  auto counts = fleet->CountDevicesBySource();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->size(), 2u);
  // The credential form of an MDM id never authenticates.
  EXPECT_FALSE(fleet->AuthenticateDevice("m-000000000000000000000001." + std::string(64, '0'), kNow).ok());

  // Compliant from the MDM: the time is kept while it stays so.
  writes = {Write("m-000000000000000000000001")};
  writes[0].device.mdm_compliant = true;
  ASSERT_TRUE(fleet->ImportMdmDevices(writes, kNow + 10).ok());
  ASSERT_TRUE(fleet->ImportMdmDevices(writes, kNow + 20).ok());
  EXPECT_EQ(fleet->GetDevice("m-000000000000000000000001")->mdm_compliant_at, kNow + 10);
  // Not listed by the next complete import: gone, and cannot-enforce.
  EXPECT_EQ(*fleet->MarkMdmDevicesGone("health", kNow + 30, kNow + 30), 1);
  auto gone = fleet->GetDevice("m-000000000000000000000001");
  EXPECT_EQ(gone->mdm_gone_at, kNow + 30);
  EXPECT_FALSE(gone->cannot_enforce.empty());
}

TEST(FleetMdm, Migration7KeepsEnrolledDevicesAndWhatReferencesThem) {
  ScratchDir dir;
  std::string id;
  {
    auto fleet = OpenFleet(dir.db());
    Enrollment agent = EnrollOne(*fleet, "ws-1", "");
    id = agent.device.id;
    CheckinWrite write = Checkin(id, {Event(1)});
    write.inventory = InventoryUpdate{"h1", "[]", "", kNow};
    write.rule_states.push_back({id, "r1", ComplianceState::kCompliant, kNow, true, kNow, 1});
    ASSERT_TRUE(fleet->ApplyCheckins(std::vector<CheckinWrite>{write}).ok());
  }
  {
    // Run migrations 7 to 12 again over a populated devices table (rows referenced by
    // inventories, events and rule states): 7 and 9 rebuild it.
    RawDb raw(dir.db());
    ASSERT_EQ(raw.Exec("DROP TABLE device_apps; DROP INDEX devices_by_hostname;"
                       "DROP TABLE changes; ALTER TABLE enrollment_tokens DROP COLUMN uses;"
                       "ALTER TABLE enrollment_tokens DROP COLUMN max_uses; DROP INDEX users_by_person;"
                       "ALTER TABLE users DROP COLUMN person_id; DROP TABLE ended_sessions; DROP TABLE session_cutoffs;"
                       "PRAGMA user_version = 6"),
              SQLITE_OK);
  }
  auto fleet = OpenFleet(dir.db());
  ASSERT_NE(fleet, nullptr);
  auto device = fleet->GetDevice(id);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  EXPECT_EQ(device->source, "agent");
  EXPECT_EQ(device->inventory_hash, "h1");
  EXPECT_EQ(fleet->ListEvents(id, 10)->size(), 1u);
  EXPECT_EQ(fleet->ListDeviceRuleStates(id)->size(), 1u);
  RawDb raw(dir.db());
  EXPECT_EQ(raw.Scalar("PRAGMA user_version"), "13");
  EXPECT_EQ(raw.Scalar("PRAGMA foreign_key_check"), "");
  EXPECT_EQ(raw.Scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'devices_rules_hash_mismatch'"), "1");
  // Migration 9: the token that enrolled ws-1 counts as used once of once, and enrols no other.
  auto tokens = fleet->ListEnrollmentTokens();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].uses, 1);
  EXPECT_EQ((*tokens)[0].max_uses, 1);
  EXPECT_EQ(raw.Scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'devices_by_enrollment_token'"), "1");
}

// GET /v1/admin/mdm counts the fleet by source and platform: from the index alone (migration 13),
// not by reading every device's row.
TEST(FleetMdmSqlite, TheCountsBySourceAreAnsweredFromTheIndex) {
  ScratchDir dir;
  ASSERT_NE(OpenFleet(dir.db()), nullptr);
  RawDb raw(dir.db());
  std::string plan = raw.Plan(
      "SELECT source, platform, COUNT(*), SUM(CASE WHEN cannot_enforce != '' THEN 1 ELSE 0 END) FROM devices "
      "WHERE revoked_at IS NULL GROUP BY source, platform ORDER BY source, platform");
  EXPECT_NE(plan.find("USING COVERING INDEX devices_by_source"), std::string::npos) << plan;
}

}  // namespace
}  // namespace appban::store
