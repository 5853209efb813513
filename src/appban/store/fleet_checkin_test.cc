#include "appban/store/fleet.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "appban/store/fleet_test_support.h"
#include "appban/store/store.h"
#include "appban/store/store_backend_test_support.h"

// FleetStore check-ins: events stored once, inventories with their match records, rule states,
// visibility across connections and processes.
namespace appban::store {
namespace {

using namespace fleet_testing;  // the shared fixtures

// The tests below that hold on every backend (TEST_P); the ones that need the SQLite file itself
// (its migrations, query plans, bytes on disk, triggers in SQLite's syntax) stay TEST.
class FleetCheckinContract : public FleetOnEveryBackend {};
INSTANTIATE_TEST_SUITE_P(Backends, FleetCheckinContract, ::testing::Values("sqlite", "postgres"), BackendName);

TEST_P(FleetCheckinContract, ApplyCheckinsStoresEventsOnceAndRefusesWritesIndividually) {
  auto fleet = OpenFleet();
  Enrollment one = EnrollOne(*fleet, "one");
  Enrollment revoked = EnrollOne(*fleet, "revoked");
  ASSERT_TRUE(fleet->RevokeDevice(revoked.device.id, By("alice")).ok());

  std::vector<CheckinWrite> batch = {Checkin(one.device.id, {Event(1), Event(2), Event(3)}),
                                     Checkin("d-0000000000000000", {Event(1)}), Checkin(revoked.device.id, {Event(1)}),
                                     Checkin(one.device.id, {Event(0)})};
  auto outcomes = fleet->ApplyCheckins(batch);
  ASSERT_TRUE(outcomes.ok()) << outcomes.status().ToString();
  ASSERT_EQ(outcomes->size(), 4u);
  EXPECT_TRUE((*outcomes)[0].status.ok());
  EXPECT_EQ((*outcomes)[0].highest_seq, 3);
  EXPECT_EQ((*outcomes)[1].status.code(), StatusCode::kNotFound);
  EXPECT_EQ((*outcomes)[2].status.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*outcomes)[3].status.code(), StatusCode::kInvalidArgument);

  // A retried check-in (2, 3 again) plus a new event: each (device, seq) stored once.
  std::vector<CheckinWrite> retry = {Checkin(one.device.id, {Event(2), Event(3), Event(4)}, kNow + 200)};
  outcomes = fleet->ApplyCheckins(retry);
  ASSERT_TRUE(outcomes.ok());
  EXPECT_EQ((*outcomes)[0].highest_seq, 4);
  auto events = fleet->ListEvents(one.device.id, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 4u);
  EXPECT_EQ((*events)[0].seq, 4);  // newest first
  EXPECT_EQ((*events)[3].seq, 1);
  EXPECT_EQ((*events)[3].device_id, one.device.id);
  EXPECT_EQ((*events)[3].app, "com.example.banned");
  EXPECT_EQ(fleet->ListEvents("d-0000000000000000", 10)->size(), 0u);
  EXPECT_EQ(fleet->ListEvents(revoked.device.id, 10)->size(), 0u);
  auto for_rule = fleet->ListEventsForRule("r1", 2);
  ASSERT_TRUE(for_rule.ok());
  EXPECT_EQ(for_rule->size(), 2u);
  auto device = fleet->GetDevice(one.device.id);
  EXPECT_EQ(device->last_seen, kNow + 200);
  EXPECT_EQ(device->last_event_seq, 4);
  EXPECT_EQ(fleet->ListEvents(one.device.id, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(FleetCheckinContract, EvaluationInputReadsMatchRecordsOrOldJsonAndRuleStates) {
  auto fleet = OpenFleet();
  Enrollment fresh = EnrollOne(*fleet, "fresh");
  Enrollment never = EnrollOne(*fleet, "never");
  Enrollment old = EnrollOne(*fleet, "old");

  CheckinWrite write = Checkin(fresh.device.id, {});
  write.inventory = InventoryUpdate{"inv-1", R"([{"id":"wechat","platform":"deb"}])", "3:deb6:wechat0:0:", kNow};
  write.rule_states = {{fresh.device.id, "r2", ComplianceState::kCompliant, kNow, true, kNow, 3},
                       {fresh.device.id, "r1", ComplianceState::kViolating, kNow, true, std::nullopt, 3}};
  CheckinWrite write_old = Checkin(old.device.id, {});
  write_old.inventory = InventoryUpdate{"inv-2", R"([{"id":"vim","platform":"deb"}])", "3:deb3:vim0:0:", kNow};
  std::vector<CheckinWrite> batch = {write, write_old};
  ASSERT_TRUE(fleet->ApplyCheckins(batch).ok());
  {
    // An inventory stored before schema 3 has JSON only.
    ASSERT_TRUE(
        backend().Exec("UPDATE device_inventories SET match_records = NULL WHERE device_id = '" + old.device.id + "'"));
  }

  auto input = fleet->GetEvaluationInput(fresh.device.id, true);
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  EXPECT_EQ(input->match_records, "3:deb6:wechat0:0:");
  EXPECT_FALSE(input->inventory_json) << "the JSON is not read when match records exist";
  ASSERT_EQ(input->rule_states.size(), 2u);
  EXPECT_EQ(input->rule_states[0].rule_id, "r1");
  EXPECT_EQ(input->rule_states[0].state, ComplianceState::kViolating);
  EXPECT_EQ(input->rule_states[1].rule_id, "r2");

  auto legacy = fleet->GetEvaluationInput(old.device.id, true);
  ASSERT_TRUE(legacy.ok());
  EXPECT_FALSE(legacy->match_records);
  EXPECT_EQ(legacy->inventory_json, R"([{"id":"vim","platform":"deb"}])");

  auto none = fleet->GetEvaluationInput(never.device.id, true);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->match_records);
  EXPECT_FALSE(none->inventory_json);
  EXPECT_TRUE(none->rule_states.empty());

  auto without_states = fleet->GetEvaluationInput(fresh.device.id, false);
  ASSERT_TRUE(without_states.ok());
  EXPECT_EQ(without_states->match_records, "3:deb6:wechat0:0:");
  EXPECT_TRUE(without_states->rule_states.empty());
  EXPECT_EQ(fleet->GetEvaluationInput("d-0000000000000000", true).status().code(), StatusCode::kNotFound);
}

TEST_P(FleetCheckinContract, CheckinKeepsPolicyInventoryAndRuleStates) {
  auto fleet = OpenFleet();
  Enrollment a = EnrollOne(*fleet, "a");
  Enrollment b = EnrollOne(*fleet, "b");

  CheckinWrite write = Checkin(a.device.id, {});
  write.applied = AppliedPolicy{7, "rules-hash-7"};
  write.inventory = InventoryUpdate{"inv-1", R"({"apps":["com.example.banned"]})", "3:deb6:wechat0:0:", kNow + 100};
  write.evaluated = EvaluationMark{7, "inv-1"};
  DeviceRuleState violating{a.device.id, "r1", ComplianceState::kViolating, kNow + 100, true, std::nullopt, 7};
  DeviceRuleState other{a.device.id, "r2", ComplianceState::kWaived, kNow + 100, true, std::nullopt, 7};
  write.rule_states = {violating, other};
  CheckinWrite write_b = Checkin(b.device.id, {});
  write_b.rule_states = {{b.device.id, "r1", ComplianceState::kCompliant, kNow + 100, false, kNow + 100, 7}};
  std::vector<CheckinWrite> batch = {write, write_b};
  ASSERT_TRUE(fleet->ApplyCheckins(batch).ok());

  auto device = fleet->GetDevice(a.device.id);
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(device->applied_version, 7);
  EXPECT_EQ(device->applied_rules_hash, "rules-hash-7");
  EXPECT_EQ(device->inventory_hash, "inv-1");
  EXPECT_EQ(device->inventory_json, R"({"apps":["com.example.banned"]})");
  EXPECT_EQ(device->inventory_at, kNow + 100);
  EXPECT_EQ(device->evaluated_version, 7);
  EXPECT_EQ(device->evaluated_inventory_hash, "inv-1");
  auto listed = fleet->ListDevices(0, 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_TRUE((*listed)[0].inventory_json.empty());
  EXPECT_LT((*listed)[0].id, (*listed)[1].id);
  EXPECT_EQ(fleet->ListDevices(1, 10)->size(), 1u);

  auto counts = fleet->CountRuleStates("r1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->violating, 1);
  EXPECT_EQ(counts->compliant, 1);
  EXPECT_EQ(counts->waived, 0);

  // Later: the app is removed; a check-in without policy/inventory fields leaves them as they were.
  CheckinWrite later = Checkin(a.device.id, {Event(1, "r1")}, kNow + 300);
  DeviceRuleState compliant = violating;
  compliant.state = ComplianceState::kCompliant;
  compliant.since = compliant.compliant_at.emplace(kNow + 300);
  later.rule_states = {compliant};
  later.cleared_rule_ids = {"r2"};
  std::vector<CheckinWrite> second = {later};
  ASSERT_TRUE(fleet->ApplyCheckins(second).ok());
  device = fleet->GetDevice(a.device.id);
  EXPECT_EQ(device->applied_version, 7);
  EXPECT_EQ(device->inventory_hash, "inv-1");
  EXPECT_EQ(device->last_seen, kNow + 300);

  auto states = fleet->ListDeviceRuleStates(a.device.id);
  ASSERT_TRUE(states.ok());
  ASSERT_EQ(states->size(), 1u);
  EXPECT_EQ((*states)[0].rule_id, "r1");
  EXPECT_EQ((*states)[0].state, ComplianceState::kCompliant);
  EXPECT_TRUE((*states)[0].had_app);
  EXPECT_EQ((*states)[0].compliant_at, kNow + 300);
  auto by_rule = fleet->ListRuleStates("r1");
  ASSERT_TRUE(by_rule.ok());
  ASSERT_EQ(by_rule->size(), 2u);
  std::set<std::string> devices;
  for (const auto& state : *by_rule) {
    devices.insert(state.device_id);
    EXPECT_EQ(state.state, ComplianceState::kCompliant);
  }
  EXPECT_EQ(devices, (std::set<std::string>{a.device.id, b.device.id}));
  EXPECT_EQ(fleet->CountRuleStates("r1")->compliant, 2);
  // The per-rule queries are answered from the index alone (SQLite's own plan says so; PostgreSQL
  // chooses by its statistics, and on a table this small reads the table).
  if (GetParam() != "sqlite") return;
  RawDb raw(backend().SqlitePath());
  for (const char* query : {"SELECT device_id, state, since, had_app, compliant_at, version FROM device_rule_states "
                            "WHERE rule_id = 'r1'",
                            "SELECT state, COUNT(*) FROM device_rule_states WHERE rule_id = 'r1' GROUP BY state"}) {
    std::string plan = raw.Plan(query);
    EXPECT_NE(plan.find("USING COVERING INDEX device_rule_states_by_rule"), std::string::npos) << plan;
  }
}

// Fleet-wide compliance reads every stored state in ranges of devices: each device's rows
// together, in (device id, rule id) order, with every field, and only the range asked for.
TEST_P(FleetCheckinContract, ScanRuleStatesPassesARangeOfDevicesInKeyOrder) {
  auto fleet = OpenFleet();
  std::vector<std::string> ids;
  for (const char* name : {"a", "b", "c", "d"}) ids.push_back(EnrollOne(*fleet, name).device.id);
  std::sort(ids.begin(), ids.end());
  std::vector<CheckinWrite> batch;
  for (size_t i = 0; i < ids.size(); ++i) {
    CheckinWrite write = Checkin(ids[i], {});
    // Written out of order; the device without rows (the last) must simply pass no rows.
    if (i + 1 == ids.size()) continue;
    write.rule_states = {{ids[i], "r2", ComplianceState::kCompliant, kNow, i == 0, kNow + 10 * int64_t(i), 7},
                         {ids[i], "r1", ComplianceState::kViolating, kNow, true, std::nullopt, 7}};
    if (i == 1) write.rule_states.push_back({ids[i], "r0", ComplianceState::kWaived, kNow, false, std::nullopt, 7});
    batch.push_back(write);
  }
  ASSERT_TRUE(fleet->ApplyCheckins(batch).ok());

  std::vector<std::string> seen;
  std::vector<RuleStateRow> rows;
  std::vector<std::string> ids_of_rows;
  ASSERT_TRUE(fleet
                  ->ScanRuleStates(ids[0], ids[3],
                                   [&](const RuleStateRow& row) {
                                     seen.push_back(std::string(row.device_id) + "/" + std::string(row.rule_id));
                                     RuleStateRow copy = row;  // the views end with the visit
                                     copy.device_id = copy.rule_id = {};
                                     rows.push_back(copy);
                                   })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{ids[0] + "/r1", ids[0] + "/r2", ids[1] + "/r0", ids[1] + "/r1",
                                            ids[1] + "/r2", ids[2] + "/r1", ids[2] + "/r2"}));
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows[0].state, ComplianceState::kViolating);
  EXPECT_TRUE(rows[0].had_app);
  EXPECT_FALSE(rows[0].compliant_at.has_value());
  EXPECT_EQ(rows[1].state, ComplianceState::kCompliant);
  EXPECT_TRUE(rows[1].had_app);
  EXPECT_EQ(rows[1].compliant_at, kNow);
  EXPECT_EQ(rows[2].state, ComplianceState::kWaived);
  EXPECT_FALSE(rows[2].had_app);
  EXPECT_EQ(rows[6].compliant_at, kNow + 20);
  EXPECT_FALSE(rows[6].had_app);

  // Only the range: its bounds included, nothing outside.
  seen.clear();
  ASSERT_TRUE(fleet
                  ->ScanRuleStates(ids[1], ids[1],
                                   [&](const RuleStateRow& row) {
                                     seen.push_back(std::string(row.device_id) + "/" + std::string(row.rule_id));
                                   })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{ids[1] + "/r0", ids[1] + "/r1", ids[1] + "/r2"}));
  seen.clear();
  ASSERT_TRUE(fleet->ScanRuleStates(ids[3], ids[3], [&](const RuleStateRow&) { seen.push_back("row"); }).ok());
  EXPECT_TRUE(seen.empty());
}

TEST_P(FleetCheckinContract, RulesHashMismatchIsRecordedKeptAndCleared) {
  auto fleet = OpenFleet();
  Enrollment liar = EnrollOne(*fleet, "liar");
  Enrollment revoked = EnrollOne(*fleet, "revoked");
  const std::string issued(64, 'a');

  CheckinWrite lie = Checkin(liar.device.id, {});
  lie.applied = AppliedPolicy{3, std::string(64, 'f')};
  lie.rules_hash = RulesHashUpdate{RulesHashMismatch{issued, kNow}};
  CheckinWrite other = Checkin(revoked.device.id, {});
  other.rules_hash = RulesHashUpdate{RulesHashMismatch{"", kNow}};
  ASSERT_TRUE(fleet->ApplyCheckins(std::vector<CheckinWrite>{lie, other}).ok());
  ASSERT_TRUE(fleet->RevokeDevice(revoked.device.id, By("alice")).ok());
  auto device = fleet->GetDevice(liar.device.id);
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(device->applied_version, 3);
  EXPECT_EQ(device->applied_rules_hash, std::string(64, 'f'));
  ASSERT_TRUE(device->rules_hash_mismatch);
  EXPECT_EQ(*device->rules_hash_mismatch, (RulesHashMismatch{issued, kNow}));
  EXPECT_EQ(*fleet->CountRulesHashMismatches(), 1) << "revoked devices are not counted";

  // A check-in that does not change the verdict leaves it alone; the list shows it too.
  ASSERT_TRUE(fleet->ApplyCheckins(std::vector<CheckinWrite>{Checkin(liar.device.id, {}, kNow + 60)}).ok());
  auto listed = fleet->ListDevices(0, 10);
  ASSERT_TRUE(listed.ok());
  auto it = std::find_if(listed->begin(), listed->end(), [&](const Device& d) { return d.id == liar.device.id; });
  ASSERT_NE(it, listed->end());
  EXPECT_EQ(it->rules_hash_mismatch, (RulesHashMismatch{issued, kNow}));

  CheckinWrite honest = Checkin(liar.device.id, {}, kNow + 120);
  honest.applied = AppliedPolicy{3, issued};
  honest.rules_hash = RulesHashUpdate{std::nullopt};
  ASSERT_TRUE(fleet->ApplyCheckins(std::vector<CheckinWrite>{honest}).ok());
  EXPECT_FALSE(fleet->GetDevice(liar.device.id)->rules_hash_mismatch);
  EXPECT_EQ(*fleet->CountRulesHashMismatches(), 0);
}

TEST_P(FleetCheckinContract, CommittedCheckinsAreVisibleFromASecondConnection) {
  auto writer = OpenFleet();
  auto reader = OpenFleet();
  Enrollment a = EnrollOne(*writer, "a");
  ASSERT_TRUE(reader->GetDevice(a.device.id).ok());  // the reader has looked before the write
  std::vector<CheckinWrite> batch = {Checkin(a.device.id, {Event(1), Event(2)})};
  ASSERT_TRUE(writer->ApplyCheckins(batch).ok());
  EXPECT_EQ(reader->ListEvents(a.device.id, 10)->size(), 2u);
  EXPECT_EQ(reader->GetDevice(a.device.id)->last_event_seq, 2);
  // And after the writer is gone (its WAL is the only copy until a checkpoint).
  writer.reset();
  auto fresh = OpenFleet();
  EXPECT_EQ(fresh->ListEvents(a.device.id, 10)->size(), 2u);
}

// Two worker processes (fork), each with its own connection, write check-ins for 2 s at once.
TEST(FleetStore, TwoProcessesWriteCheckinsConcurrentlyWithoutErrors) {
  ScratchDir dir;
  std::vector<std::string> device_ids;
  {
    auto fleet = OpenFleet(dir.db());
    for (int i = 0; i < 2; ++i) device_ids.push_back(EnrollOne(*fleet, "worker-" + std::to_string(i)).device.id);
  }
  std::vector<pid_t> children;
  for (const std::string& device_id : device_ids) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Child: no gtest assertions; the exit code reports.
      auto fleet = OpenSqliteFleetStore(dir.db());
      if (!fleet.ok()) _exit(2);
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      int64_t seq = 0;
      while (std::chrono::steady_clock::now() < deadline) {
        std::vector<CheckinWrite> batch;
        for (int i = 0; i < 10; ++i) batch.push_back(Checkin(device_id, {Event(++seq)}));
        auto outcomes = (*fleet)->ApplyCheckins(batch);
        if (!outcomes.ok()) {
          std::fprintf(stderr, "child: %s\n", outcomes.status().ToString().c_str());
          _exit(3);
        }
        for (const auto& outcome : *outcomes) {
          if (!outcome.status.ok()) _exit(4);
        }
      }
      // The last acknowledged seq, for the parent to compare with what it reads.
      std::ofstream(dir.path() / (device_id + ".acked")) << seq;
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child exit status " << status;
  }
  auto fleet = OpenFleet(dir.db());
  for (const std::string& device_id : device_ids) {
    auto device = fleet->GetDevice(device_id);
    ASSERT_TRUE(device.ok());
    EXPECT_GT(device->last_event_seq, 0);
    // Every event the child wrote (seq 1..N, N = last acknowledged) is present.
    auto events = fleet->ListEvents(device_id, kFleetLimits.max_list_limit);
    ASSERT_TRUE(events.ok());
    EXPECT_EQ(static_cast<int64_t>(events->size()), device->last_event_seq) << device_id;
    int64_t acked = 0;
    std::ifstream(dir.path() / (device_id + ".acked")) >> acked;
    EXPECT_EQ(device->last_event_seq, acked) << device_id;
    std::printf("%s: %lld events written by its process in 2 s\n", device_id.c_str(), static_cast<long long>(acked));
  }
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->CheckIntegrity().ok());
}

}  // namespace
}  // namespace appban::store
