#include "appban/store/fleet.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "appban/store/admin.h"
#include "appban/store/store.h"

namespace appban::store {
namespace {

namespace fs = std::filesystem;

constexpr UnixSeconds kNow = 1'800'000'000;
constexpr UnixSeconds kDay = 86'400;

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "appban-fleet-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string db() const { return (path_ / "appban.db").string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A raw connection, as someone with file access would use.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close(db_); }
  int Exec(const std::string& sql) { return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr); }
  std::string Scalar(const std::string& sql) {
    sqlite3_stmt* statement = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(statement, 0);
      out = text ? reinterpret_cast<const char*>(text) : "";
    }
    sqlite3_finalize(statement);
    return out;
  }
  // The `detail` texts of EXPLAIN QUERY PLAN.
  std::string Plan(const std::string& query) {
    sqlite3_stmt* statement = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, ("EXPLAIN QUERY PLAN " + query).c_str(), -1, &statement, nullptr) != SQLITE_OK)
      return out;
    while (sqlite3_step(statement) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(statement, 3);
      out += text ? reinterpret_cast<const char*>(text) : "";
      out += "; ";
    }
    sqlite3_finalize(statement);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

AuditRecord By(const std::string& actor, UnixSeconds at = kNow) {
  AuditRecord record;
  record.actor = actor;
  record.at = at;
  return record;
}

std::unique_ptr<FleetStore> OpenFleet(const std::string& path) {
  auto store = OpenSqliteFleetStore(path);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

// Enrols a device through an admin-issued token; returns the enrolment.
Enrollment EnrollOne(FleetStore& fleet, const std::string& hostname, const std::string& group = "") {
  auto token = fleet.CreateEnrollmentToken(group, kNow + kDay, "test", By("alice"));
  EXPECT_TRUE(token.ok()) << token.status().ToString();
  auto enrolled = fleet.EnrollDevice(token->presented, hostname, "linux", "1.0", kNow);
  EXPECT_TRUE(enrolled.ok()) << enrolled.status().ToString();
  return enrolled.ok() ? *enrolled : Enrollment{};
}

DeviceEvent Event(int64_t seq, const std::string& rule_id = "r1") {
  DeviceEvent event;
  event.seq = seq;
  event.at = kNow + seq;
  event.kind = "removed";
  event.platform = "android";
  event.app = "com.example.banned";
  event.rule_id = rule_id;
  event.detail = "removed by the agent";
  event.received_at = kNow + seq;
  return event;
}

TEST(FleetSecrets, PresentedFormRoundTripsAndHashIsSha256OfTheSecretText) {
  auto secret = GenerateSecret();
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(secret->size(), 64u);
  auto other = GenerateSecret();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*secret, *other);
  auto parts = SplitPresented(JoinPresented("d-0123456789abcdef", *secret));
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  EXPECT_EQ(parts->id, "d-0123456789abcdef");
  EXPECT_EQ(parts->secret, *secret);
  // SHA-256("abc") from FIPS 180-2, appendix B.1.
  EXPECT_EQ(HashSecret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(SecretMatchesHash(*secret, HashSecret(*secret)));
  EXPECT_FALSE(SecretMatchesHash(*other, HashSecret(*secret)));
  EXPECT_FALSE(SecretMatchesHash(*secret, "short"));
  for (const std::string& bad :
       std::vector<std::string>{"", "nodot", "d-01.", ".abc", "D-0123.abc", "d-0123." + std::string(63, 'a'),
                                "d-0123." + std::string(64, 'A'), "d-01x3." + std::string(64, 'a')}) {
    EXPECT_EQ(SplitPresented(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(FleetStore, MigratesAVersion1Database) {
  ScratchDir dir;
  {
    // A database as the previous release left it: the policy schema (migration 1) with data.
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok());
    PolicyAdmin admin(**store, "alice", [] { return kNow; });
    policy::Group group;
    group.name = "field-staff";
    ASSERT_TRUE(admin.CreateGroup(group).ok());
  }
  {
    RawDb raw(dir.db());
    for (const char* table : {"api_tokens", "enrollment_tokens", "device_inventories", "device_events",
                              "device_rule_states", "assessments", "server_settings", "devices"}) {
      ASSERT_EQ(raw.Exec(std::string("DROP TABLE ") + table), SQLITE_OK) << table;
    }
    ASSERT_EQ(raw.Exec("DROP TRIGGER audit_head_no_delete; DROP TRIGGER audit_head_no_update"), SQLITE_OK);
    ASSERT_EQ(raw.Exec("PRAGMA user_version = 1"), SQLITE_OK);
    ASSERT_EQ(raw.Scalar("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'device_%' AND name != 'device_groups'"),
              "0");
  }
  auto fleet = OpenFleet(dir.db());
  ASSERT_NE(fleet, nullptr);
  {
    RawDb raw(dir.db());
    EXPECT_EQ(raw.Scalar("PRAGMA user_version"), "4");
  }
  // Old data is intact and usable by the new tables (a group-bound enrolment token).
  Enrollment enrolled = EnrollOne(*fleet, "host-1", "field-staff");
  EXPECT_EQ(enrolled.group, "field-staff");
  EXPECT_EQ(fleet->CreateEnrollmentToken("no-such-group", kNow + kDay, "", By("alice")).status().code(),
            StatusCode::kNotFound);
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->GetGroup("field-staff").ok());
  auto verification = (*store)->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  EXPECT_TRUE(verification->ok());
  EXPECT_EQ(verification->entries, 3);  // group.create, enrollment_token.create, device.enroll
  EXPECT_TRUE((*store)->CheckIntegrity().ok());
}

TEST(FleetStore, EnrollmentTokenIsSingleUse) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  auto token = fleet->CreateEnrollmentToken("", kNow + kDay, "laptop of bob", By("alice"));
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  auto first = fleet->EnrollDevice(token->presented, "bob-laptop", "linux", "1.0", kNow);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->device.id.starts_with("d-"));
  EXPECT_EQ(first->device.id.size(), 18u);
  auto second = fleet->EnrollDevice(token->presented, "mallory", "linux", "1.0", kNow);
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("already used"), std::string::npos) << second.status().message();
  auto tokens = fleet->ListEnrollmentTokens();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].used_by_device, first->device.id);
  EXPECT_EQ((*tokens)[0].used_at, kNow);
  EXPECT_EQ(*fleet->CountDevices(), 1);
}

TEST(FleetStore, EnrollmentRaceHasExactlyOneWinner) {
  ScratchDir dir;
  auto admin = OpenFleet(dir.db());
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    auto token = admin->CreateEnrollmentToken("", kNow + kDay, "", By("alice"));
    ASSERT_TRUE(token.ok());
    std::atomic<int> ready{0};
    std::atomic<int> winners{0};
    std::atomic<int> refused_as_used{0};
    auto racer = [&](std::string hostname) {
      auto fleet = OpenSqliteFleetStore(dir.db());  // its own connection, as a worker process has
      if (!fleet.ok()) return;
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      auto result = (*fleet)->EnrollDevice(token->presented, hostname, "linux", "1.0", kNow);
      if (result.ok()) {
        winners.fetch_add(1);
      } else if (result.status().code() == StatusCode::kFailedPrecondition &&
                 result.status().message().find("already used") != std::string::npos) {
        refused_as_used.fetch_add(1);
      }
    };
    std::thread a(racer, "a"), b(racer, "b");
    a.join();
    b.join();
    EXPECT_EQ(winners.load(), 1) << "round " << round;
    EXPECT_EQ(refused_as_used.load(), 1) << "round " << round;
  }
  EXPECT_EQ(*admin->CountDevices(), kRounds);
}

TEST(FleetStore, ExpiredRevokedUsedAndForgedTokensAreRefusedEachWithItsOwnMessage) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  auto expired = fleet->CreateEnrollmentToken("", kNow + 60, "", By("alice"));
  auto revoked = fleet->CreateEnrollmentToken("", kNow + kDay, "", By("alice"));
  auto used = fleet->CreateEnrollmentToken("", kNow + kDay, "", By("alice"));
  ASSERT_TRUE(expired.ok() && revoked.ok() && used.ok());
  ASSERT_TRUE(fleet->RevokeEnrollmentToken(revoked->token.id, By("alice")).ok());
  EXPECT_EQ(fleet->RevokeEnrollmentToken(revoked->token.id, By("alice")).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(fleet->EnrollDevice(used->presented, "h", "linux", "1", kNow).ok());

  auto expired_result = fleet->EnrollDevice(expired->presented, "h", "linux", "1", kNow + 60);
  EXPECT_EQ(expired_result.status().code(), StatusCode::kExpired);
  EXPECT_NE(expired_result.status().message().find("expired"), std::string::npos);
  auto revoked_result = fleet->EnrollDevice(revoked->presented, "h", "linux", "1", kNow);
  EXPECT_EQ(revoked_result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(revoked_result.status().message().find("revoked"), std::string::npos);
  auto used_result = fleet->EnrollDevice(used->presented, "h", "linux", "1", kNow);
  EXPECT_EQ(used_result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(used_result.status().message().find("already used"), std::string::npos);
  std::set<std::string> messages = {expired_result.status().message(), revoked_result.status().message(),
                                    used_result.status().message()};
  EXPECT_EQ(messages.size(), 3u);

  // The right id with a wrong secret, and an unknown id, give one answer (no oracle).
  auto parts = SplitPresented(used->presented);
  std::string wrong_secret = JoinPresented(parts->id, std::string(64, '0'));
  auto forged = fleet->EnrollDevice(wrong_secret, "h", "linux", "1", kNow);
  auto unknown = fleet->EnrollDevice(JoinPresented("e-00000000000000aa", parts->secret), "h", "linux", "1", kNow);
  EXPECT_EQ(forged.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(forged.status().ToString(), unknown.status().ToString());
  EXPECT_EQ(fleet->EnrollDevice("garbage", "h", "linux", "1", kNow).status().code(), StatusCode::kInvalidArgument);
  // Unusable device fields are refused before the token is consumed.
  auto fresh = fleet->CreateEnrollmentToken("", kNow + kDay, "", By("alice"));
  EXPECT_EQ(fleet->EnrollDevice(fresh->presented, "", "linux", "1", kNow).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(fleet->EnrollDevice(fresh->presented, "h\n", "linux", "1", kNow).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(fleet->EnrollDevice(fresh->presented, "h", "linux", "1", kNow).ok());
  EXPECT_EQ(fleet->CreateEnrollmentToken("", kNow, "", By("alice")).status().code(), StatusCode::kInvalidArgument);
}

TEST(FleetStore, DeviceCredentialAuthentication) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  Enrollment enrolled = EnrollOne(*fleet, "host-1");
  auto device = fleet->AuthenticateDevice(enrolled.credential, kNow);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  EXPECT_EQ(device->id, enrolled.device.id);
  EXPECT_EQ(device->hostname, "host-1");
  EXPECT_EQ(device->platform, "linux");

  auto parts = SplitPresented(enrolled.credential);
  ASSERT_TRUE(parts.ok());
  std::string flipped = parts->secret;
  flipped[0] = flipped[0] == 'a' ? 'b' : 'a';
  auto wrong = fleet->AuthenticateDevice(JoinPresented(parts->id, flipped), kNow);
  EXPECT_TRUE(IsNotAuthenticated(wrong.status())) << wrong.status().ToString();
  auto unknown = fleet->AuthenticateDevice(JoinPresented("d-ffffffffffffffff", parts->secret), kNow);
  EXPECT_TRUE(IsNotAuthenticated(unknown.status()));
  EXPECT_EQ(wrong.status().ToString(), unknown.status().ToString());
  // An enrolment token is not a device credential.
  auto token = fleet->CreateEnrollmentToken("", kNow + kDay, "", By("alice"));
  EXPECT_TRUE(IsNotAuthenticated(fleet->AuthenticateDevice(token->presented, kNow).status()));

  ASSERT_TRUE(fleet->RevokeDevice(enrolled.device.id, By("alice")).ok());
  auto revoked = fleet->AuthenticateDevice(enrolled.credential, kNow);
  EXPECT_EQ(revoked.status().code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(IsNotAuthenticated(revoked.status()));
  EXPECT_NE(revoked.status().message().find("revoked"), std::string::npos);
  auto shown = fleet->GetDevice(enrolled.device.id);
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ(shown->revoked_by, "alice");
  EXPECT_EQ(fleet->RevokeDevice(enrolled.device.id, By("alice")).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(fleet->RevokeDevice("d-0000000000000000", By("alice")).code(), StatusCode::kNotFound);

  // Secrets are never stored: neither the database nor its WAL contains the secret text.
  fleet.reset();
  for (const char* suffix : {"", "-wal"}) {
    std::ifstream file(dir.db() + suffix, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(parts->secret), std::string::npos) << suffix;
    EXPECT_EQ(bytes.find(SplitPresented(token->presented)->secret), std::string::npos) << suffix;
  }
}

TEST(FleetStore, ApiTokensAuthenticateWithRoleAndAreRefusedWhenRevokedOrExpired) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  EXPECT_FALSE(*fleet->HasAnyApiToken());
  auto first = fleet->CreateFirstApiToken("admin", Role::kAdmin, By("server"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(fleet->CreateFirstApiToken("admin2", Role::kAdmin, By("server")).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(*fleet->HasAnyApiToken());
  EXPECT_TRUE(first->token.id.starts_with("t-"));

  auto analyst = fleet->CreateApiToken("carol", Role::kAnalyst, kNow + kDay, By("admin"));
  ASSERT_TRUE(analyst.ok());
  auto who = fleet->AuthenticateApiToken(analyst->presented, kNow);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->name, "carol");
  EXPECT_EQ(who->role, Role::kAnalyst);
  EXPECT_EQ(who->created_by, "admin");

  auto expired = fleet->AuthenticateApiToken(analyst->presented, kNow + kDay);
  EXPECT_EQ(expired.status().code(), StatusCode::kExpired);
  EXPECT_TRUE(IsNotAuthenticated(expired.status()));
  auto parts = SplitPresented(analyst->presented);
  EXPECT_TRUE(
      IsNotAuthenticated(fleet->AuthenticateApiToken(JoinPresented(parts->id, std::string(64, 'e')), kNow).status()));
  ASSERT_TRUE(fleet->RevokeApiToken(analyst->token.id, By("admin")).ok());
  auto revoked = fleet->AuthenticateApiToken(analyst->presented, kNow);
  EXPECT_TRUE(IsNotAuthenticated(revoked.status()));
  EXPECT_NE(revoked.status().message().find("revoked"), std::string::npos);
  EXPECT_EQ(fleet->CreateApiToken("not a name", Role::kAuditor, std::nullopt, By("admin")).status().code(),
            StatusCode::kInvalidArgument);

  auto tokens = fleet->ListApiTokens();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 2u);
  for (const ApiToken& token : *tokens) {
    EXPECT_EQ(token.revoked_at.has_value(), token.id == analyst->token.id) << token.id;
  }
  for (Role role : {Role::kAdmin, Role::kAnalyst, Role::kAuditor}) EXPECT_EQ(*ParseRole(RoleName(role)), role);
  EXPECT_FALSE(ParseRole("root").ok());
}

CheckinWrite Checkin(const std::string& device_id, std::vector<DeviceEvent> events, UnixSeconds seen = kNow + 100) {
  CheckinWrite write;
  write.device_id = device_id;
  write.last_seen = seen;
  write.events = std::move(events);
  return write;
}

TEST(FleetStore, ApplyCheckinsStoresEventsOnceAndRefusesWritesIndividually) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
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

TEST(FleetStore, EvaluationInputReadsMatchRecordsOrOldJsonAndRuleStates) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
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
    RawDb raw(dir.db());
    ASSERT_EQ(raw.Exec("UPDATE device_inventories SET match_records = NULL WHERE device_id = '" + old.device.id + "'"),
              SQLITE_OK);
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

TEST(FleetStore, CheckinKeepsPolicyInventoryAndRuleStates) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
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
  // The per-rule queries are answered from the index alone (SQLite's own plan says so).
  RawDb raw(dir.db());
  for (const char* query : {"SELECT device_id, state, since, had_app, compliant_at, version FROM device_rule_states "
                            "WHERE rule_id = 'r1'",
                            "SELECT state, COUNT(*) FROM device_rule_states WHERE rule_id = 'r1' GROUP BY state"}) {
    std::string plan = raw.Plan(query);
    EXPECT_NE(plan.find("USING COVERING INDEX device_rule_states_by_rule"), std::string::npos) << plan;
  }
}

TEST(FleetStore, CommittedCheckinsAreVisibleFromASecondConnection) {
  ScratchDir dir;
  auto writer = OpenFleet(dir.db());
  auto reader = OpenFleet(dir.db());
  Enrollment a = EnrollOne(*writer, "a");
  ASSERT_TRUE(reader->GetDevice(a.device.id).ok());  // the reader has looked before the write
  std::vector<CheckinWrite> batch = {Checkin(a.device.id, {Event(1), Event(2)})};
  ASSERT_TRUE(writer->ApplyCheckins(batch).ok());
  EXPECT_EQ(reader->ListEvents(a.device.id, 10)->size(), 2u);
  EXPECT_EQ(reader->GetDevice(a.device.id)->last_event_seq, 2);
  // And after the writer is gone (its WAL is the only copy until a checkpoint).
  writer.reset();
  auto fresh = OpenFleet(dir.db());
  EXPECT_EQ(fresh->ListEvents(a.device.id, 10)->size(), 2u);
}

TEST(FleetStore, EveryAdministrativeChangeIsInTheVerifiedAuditChain) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  PolicyAdmin admin(**store, "alice", [] { return kNow; });
  policy::Group group;
  group.name = "ops";
  ASSERT_TRUE(admin.CreateGroup(group).ok());  // policy change
  auto api = fleet->CreateApiToken("bob", Role::kAuditor, std::nullopt, By("alice"));
  ASSERT_TRUE(api.ok());
  ASSERT_TRUE(fleet->RevokeApiToken(api->token.id, By("alice")).ok());
  auto enrol = fleet->CreateEnrollmentToken("ops", kNow + kDay, "", By("alice"));
  ASSERT_TRUE(enrol.ok());
  auto spare = fleet->CreateEnrollmentToken("", kNow + kDay, "", By("alice"));
  ASSERT_TRUE(fleet->RevokeEnrollmentToken(spare->token.id, By("alice")).ok());
  auto device = fleet->EnrollDevice(enrol->presented, "h", "linux", "1", kNow);
  ASSERT_TRUE(device.ok());
  std::vector<CheckinWrite> batch = {Checkin(device->device.id, {Event(1)})};
  ASSERT_TRUE(fleet->ApplyCheckins(batch).ok());  // a device report: not audited
  ASSERT_TRUE(fleet->RevokeDevice(device->device.id, By("alice")).ok());
  Assessment assessment;
  assessment.sha256 = std::string(64, 'a');
  assessment.package = "com.example";
  assessment.score = 0.7;
  assessment.band = "review";
  assessment.report_json = "{}";
  EXPECT_TRUE(*fleet->PutAssessment(assessment, By("carol")));
  EXPECT_FALSE(*fleet->PutAssessment(assessment, By("carol")));  // idempotent: no second entry
  ASSERT_TRUE(fleet->PutSetting("first_start_done", "1").ok());  // bookkeeping: not audited
  ASSERT_TRUE((*store)->AppendAudit(AuditRecord{"alice", "bundle.verify", "bundle:1", nullptr, nullptr, kNow}).ok());

  auto entries = (*store)->ReadAudit();
  ASSERT_TRUE(entries.ok());
  std::vector<std::string> actions;
  for (const auto& entry : *entries) actions.push_back(entry.action + " " + entry.actor);
  EXPECT_EQ(actions,
            (std::vector<std::string>{"group.create alice", "api_token.create alice", "api_token.revoke alice",
                                      "enrollment_token.create alice", "enrollment_token.create alice",
                                      "enrollment_token.revoke alice", "device.enroll enrollment:" + enrol->token.id,
                                      "device.revoke alice", "assessment.upload carol", "bundle.verify alice"}));
  for (const auto& entry : *entries) {
    for (const auto& presented : {api->presented, enrol->presented, device->credential}) {
      auto secret = SplitPresented(presented)->secret;
      EXPECT_EQ(entry.after_json.find(secret), std::string::npos);
      EXPECT_EQ(entry.before_json.find(secret), std::string::npos);
    }
  }
  auto verification = (*store)->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  EXPECT_TRUE(verification->ok());
  EXPECT_EQ(verification->entries, 10);
  auto stored = fleet->GetAssessment(assessment.sha256);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->uploaded_by, "carol");
  EXPECT_EQ(stored->report_json, "{}");
  EXPECT_TRUE(fleet->ListAssessments()->at(0).report_json.empty());
  EXPECT_EQ(**fleet->GetSetting("first_start_done"), "1");
  EXPECT_FALSE(fleet->GetSetting("other")->has_value());
}

// ---- Batches: many tokens / many enrolments in one transaction ----

std::vector<std::string> AuditActions(Store& store) {
  std::vector<std::string> actions;
  auto entries = store.ReadAudit();
  EXPECT_TRUE(entries.ok());
  if (entries.ok()) {
    for (const auto& entry : *entries) actions.push_back(entry.action + " " + entry.object);
  }
  return actions;
}

TEST(FleetStoreBatch, CreateEnrollmentTokensMakesDistinctTokensEachAuditedAndTheChainVerifies) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  PolicyAdmin admin(**store, "alice", [] { return kNow; });
  policy::Group group;
  group.name = "field-staff";
  ASSERT_TRUE(admin.CreateGroup(group).ok());

  constexpr size_t kCount = 200;
  auto created = fleet->CreateEnrollmentTokens("field-staff", kNow + kDay, "rollout", kCount, By("alice"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_EQ(created->size(), kCount);
  std::set<std::string> ids, presented;
  std::vector<std::string> expected_actions = {"group.create group:field-staff"};
  for (const auto& token : *created) {
    ids.insert(token.token.id);
    presented.insert(token.presented);
    EXPECT_TRUE(token.presented.starts_with(token.token.id + "."));
    EXPECT_EQ(token.token.group, "field-staff");
    EXPECT_EQ(token.token.note, "rollout");
    EXPECT_EQ(token.token.expires_at, kNow + kDay);
    expected_actions.push_back("enrollment_token.create enrollment_token:" + token.token.id);
  }
  EXPECT_EQ(ids.size(), kCount);
  EXPECT_EQ(presented.size(), kCount);
  EXPECT_EQ(fleet->ListEnrollmentTokens()->size(), kCount);
  // One entry per token, in creation order, chained after the group's entry.
  EXPECT_EQ(AuditActions(**store), expected_actions);
  auto verification = (*store)->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  EXPECT_TRUE(verification->ok());
  EXPECT_EQ(verification->entries, static_cast<int64_t>(kCount + 1));
  // Every batch-made token enrols (once).
  auto enrolled = fleet->EnrollDevice(created->back().presented, "h", "linux", "1", kNow);
  ASSERT_TRUE(enrolled.ok()) << enrolled.status().ToString();
  EXPECT_EQ(enrolled->group, "field-staff");

  // Refusals: nothing is created.
  EXPECT_EQ(fleet->CreateEnrollmentTokens("", kNow + kDay, "", 0, By("alice")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      fleet->CreateEnrollmentTokens("", kNow + kDay, "", kFleetLimits.max_enrollment_tokens_per_call + 1, By("alice"))
          .status()
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(fleet->CreateEnrollmentTokens("no-such-group", kNow + kDay, "", 5, By("alice")).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(fleet->CreateEnrollmentTokens("", kNow, "", 5, By("alice")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fleet->ListEnrollmentTokens()->size(), kCount);
}

TEST(FleetStoreBatch, CreateEnrollmentTokensIsAllOrNothing) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  // A trigger (someone else's constraint) refuses the 31st row: the 30 before it must vanish too.
  RawDb raw(dir.db());
  ASSERT_EQ(raw.Exec("CREATE TRIGGER refuse_31st BEFORE INSERT ON enrollment_tokens "
                     "WHEN (SELECT COUNT(*) FROM enrollment_tokens) >= 30 "
                     "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"),
            SQLITE_OK);
  auto created = fleet->CreateEnrollmentTokens("", kNow + kDay, "", 50, By("alice"));
  EXPECT_FALSE(created.ok());
  EXPECT_EQ(fleet->ListEnrollmentTokens()->size(), 0u);
  EXPECT_TRUE(AuditActions(**store).empty());
  ASSERT_EQ(raw.Exec("DROP TRIGGER refuse_31st"), SQLITE_OK);
  ASSERT_TRUE(fleet->CreateEnrollmentTokens("", kNow + kDay, "", 50, By("alice")).ok());
  EXPECT_EQ(fleet->ListEnrollmentTokens()->size(), 50u);
}

EnrollmentRequest Request(const std::string& presented, const std::string& hostname) {
  return EnrollmentRequest{presented, hostname, "linux", "1.0"};
}

TEST(FleetStoreBatch, EnrollDevicesGivesEachRequestItsOwnOutcomeAndATokenTwiceInABatchWinsOnce) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  auto tokens = fleet->CreateEnrollmentTokens("", kNow + kDay, "", 4, By("alice"));
  auto expiring = fleet->CreateEnrollmentToken("", kNow + 10, "", By("alice"));
  ASSERT_TRUE(tokens.ok() && expiring.ok());
  const auto& good = (*tokens)[0];
  const auto& twice = (*tokens)[1];
  const auto& revoked = (*tokens)[2];
  const auto& used_before = (*tokens)[3];
  ASSERT_TRUE(fleet->RevokeEnrollmentToken(revoked.token.id, By("alice")).ok());
  ASSERT_TRUE(fleet->EnrollDevice(used_before.presented, "earlier", "linux", "1", kNow).ok());
  auto parts = SplitPresented(good.presented);
  ASSERT_TRUE(parts.ok());

  std::vector<EnrollmentRequest> batch = {
      Request(twice.presented, "twice-first"),                            // 0: wins
      Request(JoinPresented(parts->id, std::string(64, '0')), "forged"),  // 1: wrong secret
      Request(revoked.presented, "revoked"),                              // 2
      Request(twice.presented, "twice-second"),                           // 3: loses to 0
      Request(used_before.presented, "used"),                             // 4
      Request(expiring->presented, "late"),                               // 5: expired at kNow + 10
      Request("garbage", "malformed"),                                    // 6
      Request(good.presented, "bad\nhost"),                               // 7: refused before the token
      Request(good.presented, "good"),                                    // 8: wins (7 did not consume it)
  };
  auto outcomes = fleet->EnrollDevices(batch, kNow + 10);
  ASSERT_TRUE(outcomes.ok()) << outcomes.status().ToString();
  ASSERT_EQ(outcomes->size(), batch.size());
  const auto& out = *outcomes;
  ASSERT_TRUE(out[0].ok()) << out[0].status().ToString();
  EXPECT_EQ(out[0]->device.hostname, "twice-first");
  EXPECT_EQ(out[1].status().code(), StatusCode::kNotFound);
  EXPECT_EQ(out[2].status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(out[2].status().message().find("revoked"), std::string::npos);
  EXPECT_EQ(out[3].status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(out[3].status().message().find("already used"), std::string::npos) << out[3].status().message();
  EXPECT_EQ(out[4].status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(out[4].status().message().find("already used"), std::string::npos);
  EXPECT_EQ(out[5].status().code(), StatusCode::kExpired);
  EXPECT_EQ(out[6].status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out[7].status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(out[8].ok()) << out[8].status().ToString();
  EXPECT_NE(out[0]->device.id, out[8]->device.id);

  // What was stored: the two winners (plus the earlier device), their tokens marked by them, and
  // each winner's credential authenticates.
  EXPECT_EQ(*fleet->CountDevices(), 3);
  std::map<std::string, EnrollmentToken> by_id;
  auto listed = fleet->ListEnrollmentTokens();
  ASSERT_TRUE(listed.ok());
  for (const auto& token : *listed) by_id[token.id] = token;
  EXPECT_EQ(by_id[twice.token.id].used_by_device, out[0]->device.id);
  EXPECT_EQ(by_id[twice.token.id].used_at, kNow + 10);
  EXPECT_EQ(by_id[good.token.id].used_by_device, out[8]->device.id);
  EXPECT_FALSE(by_id[expiring->token.id].used_at.has_value());
  EXPECT_FALSE(by_id[revoked.token.id].used_at.has_value());
  for (size_t winner : {size_t{0}, size_t{8}}) {
    auto device = fleet->AuthenticateDevice(out[winner]->credential, kNow + 10);
    ASSERT_TRUE(device.ok()) << device.status().ToString();
    EXPECT_EQ(device->hostname, batch[winner].hostname);
  }

  // One "device.enroll" entry per enrolled device, by the token, and the chain verifies.
  auto actions = AuditActions(**store);
  std::vector<std::string> tail(actions.end() - 2, actions.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"device.enroll device:" + out[0]->device.id,
                                            "device.enroll device:" + out[8]->device.id}));
  auto entries = (*store)->ReadAudit();
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->back().actor, "enrollment:" + good.token.id);
  auto verification = (*store)->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  EXPECT_TRUE(verification->ok());
  // 5 token creations, 1 revocation, 1 earlier enrolment, 2 enrolments in the batch.
  EXPECT_EQ(verification->entries, 9);

  // A batch of refusals only writes nothing and still answers each.
  std::vector<EnrollmentRequest> refused = {Request("garbage", "x"), Request(good.presented, "again")};
  auto refused_outcomes = fleet->EnrollDevices(refused, kNow + 10);
  ASSERT_TRUE(refused_outcomes.ok());
  EXPECT_EQ((*refused_outcomes)[0].status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*refused_outcomes)[1].status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(fleet->EnrollDevices({}, kNow)->empty());
  EXPECT_EQ(*fleet->CountDevices(), 3);
}

TEST(FleetStoreBatch, EnrollDevicesIsOneTransactionAllOrNothing) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  auto tokens = fleet->CreateEnrollmentTokens("", kNow + kDay, "", 10, By("alice"));
  ASSERT_TRUE(tokens.ok());
  std::vector<EnrollmentRequest> batch;
  for (const auto& token : *tokens) batch.push_back(Request(token.presented, "h"));
  RawDb raw(dir.db());
  // The 6th device row fails (database trouble, not a refusal): the batch reports the error and
  // none of the five before it, nor their token marks or audit entries, remain.
  ASSERT_EQ(raw.Exec("CREATE TRIGGER refuse_6th BEFORE INSERT ON devices "
                     "WHEN (SELECT COUNT(*) FROM devices) >= 5 "
                     "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"),
            SQLITE_OK);
  auto failed = fleet->EnrollDevices(batch, kNow);
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(*fleet->CountDevices(), 0);
  auto listed = fleet->ListEnrollmentTokens();
  ASSERT_TRUE(listed.ok());
  for (const auto& token : *listed) EXPECT_FALSE(token.used_at.has_value());
  EXPECT_EQ(AuditActions(**store).size(), 10u);
  ASSERT_EQ(raw.Exec("DROP TRIGGER refuse_6th"), SQLITE_OK);
  // The same tokens still work afterwards.
  auto retried = fleet->EnrollDevices(batch, kNow);
  ASSERT_TRUE(retried.ok());
  for (const auto& outcome : *retried) EXPECT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(*fleet->CountDevices(), 10);
  EXPECT_TRUE((*store)->VerifyAudit()->ok());
}

// Two connections (as two worker processes) enrol batches presenting the same tokens in opposite
// orders: every token is used exactly once overall.
TEST(FleetStoreBatch, BatchesFromTwoConnectionsUseEachTokenOnce) {
  ScratchDir dir;
  auto admin = OpenFleet(dir.db());
  constexpr size_t kTokens = 40;
  auto tokens = admin->CreateEnrollmentTokens("", kNow + kDay, "", kTokens, By("alice"));
  ASSERT_TRUE(tokens.ok());
  std::vector<EnrollmentRequest> forward, backward;
  for (const auto& token : *tokens) forward.push_back(Request(token.presented, "fwd"));
  backward.assign(forward.rbegin(), forward.rend());
  for (auto& request : backward) request.hostname = "bwd";
  std::atomic<int> ready{0};
  std::atomic<int> winners{0};
  std::atomic<int> refused_as_used{0};
  std::atomic<int> failures{0};
  auto racer = [&](const std::vector<EnrollmentRequest>* batch) {
    auto fleet = OpenSqliteFleetStore(dir.db());
    if (!fleet.ok()) return failures.fetch_add(1), void();
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();
    // Several smaller batches each, so the two writers interleave.
    for (size_t begin = 0; begin < batch->size(); begin += 8) {
      std::span<const EnrollmentRequest> part(batch->data() + begin, std::min<size_t>(8, batch->size() - begin));
      auto outcomes = (*fleet)->EnrollDevices(part, kNow);
      if (!outcomes.ok()) {
        failures.fetch_add(1);
        continue;
      }
      for (const auto& outcome : *outcomes) {
        if (outcome.ok()) {
          winners.fetch_add(1);
        } else if (outcome.status().message().find("already used") != std::string::npos) {
          refused_as_used.fetch_add(1);
        }
      }
    }
  };
  std::thread a(racer, &forward), b(racer, &backward);
  a.join();
  b.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(winners.load(), static_cast<int>(kTokens));
  EXPECT_EQ(refused_as_used.load(), static_cast<int>(kTokens));
  EXPECT_EQ(*admin->CountDevices(), static_cast<int64_t>(kTokens));
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

// Measurement, not a pass/fail check (run with --gtest_also_run_disabled_tests): check-in rows per
// second at batch sizes 1, 100 and 1000, one event each, synchronous=FULL, on this disk.
TEST(FleetStoreThroughput, DISABLED_ApplyCheckinsBatches) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  constexpr int kDevices = 1000;
  std::vector<std::string> ids;
  {
    // Devices inserted directly: enrolment speed is not what is measured.
    RawDb raw(dir.db());
    ASSERT_EQ(raw.Exec("BEGIN"), SQLITE_OK);
    for (int i = 0; i < kDevices; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "d-%016x", i);
      ids.push_back(id);
      std::string token = std::string("e-") + (id + 2);
      ASSERT_EQ(raw.Exec("INSERT INTO enrollment_tokens(id, group_name, secret_hash, created_by, created_at, "
                         "expires_at, note) VALUES('" +
                         token + "', '', 'x', 'a', 0, 1, '')"),
                SQLITE_OK);
      ASSERT_EQ(raw.Exec("INSERT INTO devices(id, secret_hash, hostname, platform, agent_version, group_name, "
                         "enrolled_at, enrollment_token_id, last_seen) VALUES('" +
                         std::string(id) + "', 'x', 'h', 'linux', '1', '', 0, '" + token + "', 0)"),
                SQLITE_OK);
    }
    ASSERT_EQ(raw.Exec("COMMIT"), SQLITE_OK);
  }
  int64_t seq = 0;
  for (int batch_size : {1, 100, 1000}) {
    int64_t rows = 0;
    std::clock_t cpu_start = std::clock();
    auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    while (elapsed() < 3.0) {
      ++seq;
      std::vector<CheckinWrite> batch;
      for (int i = 0; i < batch_size; ++i)
        batch.push_back(Checkin(ids[i % kDevices], {Event(seq * 10 + i / kDevices)}, kNow + seq));
      auto outcomes = fleet->ApplyCheckins(batch);
      ASSERT_TRUE(outcomes.ok()) << outcomes.status().ToString();
      rows += batch_size;
    }
    double seconds = elapsed();
    double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    std::printf(
        "batch %4d: %8lld check-ins in %.2f s = %9.0f check-ins/s (%.2f ms per transaction); "
        "CPU %.2f s = %.0f check-ins per CPU-second\n",
        batch_size, static_cast<long long>(rows), seconds, rows / seconds, 1000.0 * seconds / (rows / batch_size),
        cpu_seconds, rows / cpu_seconds);
  }
}

// Measurement (run by hand): one transaction per token / per enrolment versus one per batch.
TEST(FleetStoreThroughput, DISABLED_EnrollmentTokensAndEnrolmentsBatched) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  constexpr size_t kTokens = 1000;
  auto seconds_since = [](std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> singles;
  for (size_t i = 0; i < kTokens; ++i) {
    auto token = fleet->CreateEnrollmentToken("", kNow + kDay, "", By("alice"));
    ASSERT_TRUE(token.ok());
    singles.push_back(token->presented);
  }
  double one_by_one = seconds_since(start);
  start = std::chrono::steady_clock::now();
  auto batch = fleet->CreateEnrollmentTokens("", kNow + kDay, "", kTokens, By("alice"));
  ASSERT_TRUE(batch.ok());
  double batched = seconds_since(start);
  std::printf("%zu tokens: one transaction each %.3f s, one batch %.3f s\n", kTokens, one_by_one, batched);

  start = std::chrono::steady_clock::now();
  for (const std::string& token : singles) ASSERT_TRUE(fleet->EnrollDevice(token, "h", "linux", "1", kNow).ok());
  one_by_one = seconds_since(start);
  std::printf("%zu enrolments one transaction each: %.3f s = %.0f/s\n", kTokens, one_by_one, kTokens / one_by_one);
  for (size_t batch_size : {size_t{10}, size_t{100}, size_t{1000}}) {
    auto tokens = fleet->CreateEnrollmentTokens("", kNow + kDay, "", kTokens, By("alice"));
    ASSERT_TRUE(tokens.ok());
    start = std::chrono::steady_clock::now();
    for (size_t begin = 0; begin < kTokens; begin += batch_size) {
      std::vector<EnrollmentRequest> requests;
      for (size_t i = begin; i < begin + batch_size; ++i) requests.push_back(Request((*tokens)[i].presented, "h"));
      auto outcomes = fleet->EnrollDevices(requests, kNow);
      ASSERT_TRUE(outcomes.ok());
    }
    batched = seconds_since(start);
    std::printf("%zu enrolments in batches of %4zu: %.3f s = %.0f/s\n", kTokens, batch_size, batched,
                kTokens / batched);
  }
}

// Measurement: the compliance summary queries over 100,000 devices.
TEST(FleetStoreThroughput, DISABLED_RuleStatesOver100kDevices) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  constexpr int kDevices = 100000;
  std::vector<std::string> ids;
  {
    RawDb raw(dir.db());
    ASSERT_EQ(raw.Exec("BEGIN"), SQLITE_OK);
    for (int i = 0; i < kDevices; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "d-%016x", i);
      ids.push_back(id);
      std::string token = std::string("e-") + (id + 2);
      ASSERT_EQ(raw.Exec("INSERT INTO enrollment_tokens(id, group_name, secret_hash, created_by, created_at, "
                         "expires_at, note) VALUES('" +
                         token + "', '', 'x', 'a', 0, 1, '')"),
                SQLITE_OK);
      ASSERT_EQ(raw.Exec("INSERT INTO devices(id, secret_hash, hostname, platform, agent_version, group_name, "
                         "enrolled_at, enrollment_token_id, last_seen) VALUES('" +
                         std::string(id) + "', 'x', 'h', 'linux', '1', '', 0, '" + token + "', 0)"),
                SQLITE_OK);
    }
    ASSERT_EQ(raw.Exec("COMMIT"), SQLITE_OK);
  }
  // Ten rules, every device evaluated against each: 1,000,000 rule states.
  auto start = std::chrono::steady_clock::now();
  for (int first = 0; first < kDevices; first += 1000) {
    std::vector<CheckinWrite> batch;
    for (int i = first; i < first + 1000; ++i) {
      CheckinWrite write = Checkin(ids[i], {});
      for (int rule = 0; rule < 10; ++rule) {
        write.rule_states.push_back({ids[i], "rule-" + std::to_string(rule),
                                     i % 3 == 0 ? ComplianceState::kViolating : ComplianceState::kCompliant, kNow,
                                     i % 3 == 0, std::nullopt, 1});
      }
      batch.push_back(std::move(write));
    }
    ASSERT_TRUE(fleet->ApplyCheckins(batch).ok());
  }
  double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  start = std::chrono::steady_clock::now();
  auto states = fleet->ListRuleStates("rule-3");
  double list_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(states.ok());
  EXPECT_EQ(states->size(), static_cast<size_t>(kDevices));
  start = std::chrono::steady_clock::now();
  auto counts = fleet->CountRuleStates("rule-3");
  double count_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->violating, (kDevices + 2) / 3);
  std::printf(
      "1,000,000 rule states written in %.2f s (%.0f/s); ListRuleStates(100k devices) %.1f ms; "
      "CountRuleStates %.1f ms\n",
      load_seconds, 1e6 / load_seconds, 1000 * list_seconds, 1000 * count_seconds);
}

}  // namespace
}  // namespace appban::store
