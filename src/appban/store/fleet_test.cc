#include "appban/store/fleet.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "appban/store/fleet_test_support.h"
#include "appban/store/store.h"
#include "appban/store/store_backend_test_support.h"
#include "appban/store/store_test_support.h"

namespace appban::store {
namespace {

using namespace fleet_testing;  // the shared fixtures

// The tests below that hold on every backend (TEST_P); the ones that need the SQLite file itself
// (its migrations, query plans, bytes on disk, triggers in SQLite's syntax) stay TEST.
class FleetContract : public FleetOnEveryBackend {};
INSTANTIATE_TEST_SUITE_P(Backends, FleetContract, ::testing::Values("sqlite", "postgres"), BackendName);

// The rate buckets every node shares (PostgreSQL); SQLite's server keeps its limit in shared memory,
// so there the store grants everything.
TEST_P(FleetContract, SharedRateBucketsGrantWhatTheyHoldAcrossConnections) {
  auto fleet = OpenFleet();
  if (GetParam() == "sqlite") {
    EXPECT_EQ(*fleet->TakeSharedRateTokens("enroll:192.0.2.1", 50, 3, 0), 50u);
    return;
  }
  // burst 3, no refill: 2 of 2, then 1 of 2, then none; another address has its own bucket.
  EXPECT_EQ(*fleet->TakeSharedRateTokens("enroll:192.0.2.1", 2, 3, 0), 2u);
  auto other_node = OpenFleet();
  EXPECT_EQ(*other_node->TakeSharedRateTokens("enroll:192.0.2.1", 2, 3, 0), 1u);
  EXPECT_EQ(*fleet->TakeSharedRateTokens("enroll:192.0.2.1", 1, 3, 0), 0u);
  EXPECT_EQ(*other_node->TakeSharedRateTokens("enroll:2001:db8::1", 5, 3, 0), 3u);
  // Connections taking at once from one bucket (burst 100) get 100 in all, never more.
  std::atomic<uint32_t> granted{0};
  std::vector<std::thread> takers;
  for (int t = 0; t < 4; ++t) {
    takers.emplace_back([&] {
      auto own = OpenFleet();
      for (int i = 0; i < 40; ++i) granted += *own->TakeSharedRateTokens("sign-in:198.51.100.7", 1, 100, 0);
    });
  }
  for (auto& taker : takers) taker.join();
  EXPECT_EQ(granted.load(), 100u);
  // Refill on the database's clock: 6,000 a minute is one token per 10 ms.
  EXPECT_EQ(*fleet->TakeSharedRateTokens("sign-in:203.0.113.9", 5, 5, 6000), 5u);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  const uint32_t refilled = *fleet->TakeSharedRateTokens("sign-in:203.0.113.9", 5, 5, 6000);
  EXPECT_GE(refilled, 4u);
  EXPECT_LE(refilled, 5u);
  // A bucket that has filled up again is forgotten now and then (by one call in a hundred), as a
  // missing bucket is a full one; one still being refilled is kept.
  EXPECT_EQ(*fleet->TakeSharedRateTokens("enroll:198.51.100.200", 1, 1, 6000), 1u);  // full again in 10 ms
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 0; i < 2000 && backend().Scalar("SELECT count(*) FROM rate_buckets WHERE bucket = "
                                               "'enroll:198.51.100.200'") == "1";
       ++i) {
    ASSERT_TRUE(fleet->TakeSharedRateTokens("enroll:192.0.2.99", 1, 100000, 1).ok());
  }
  EXPECT_EQ(backend().Scalar("SELECT count(*) FROM rate_buckets WHERE bucket = 'enroll:198.51.100.200'"), "0");
  EXPECT_EQ(backend().Scalar("SELECT count(*) FROM rate_buckets WHERE bucket = 'enroll:192.0.2.1'"), "1");
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

// Migration 12 builds the installed-app index from the inventories already stored, so a search by
// app finds devices that checked in before the upgrade.
TEST(FleetStore, Migration12IndexesTheInventoriesAlreadyStored) {
  ScratchDir dir;
  std::string device_id;
  {
    auto fleet = OpenFleet(dir.db());
    ASSERT_NE(fleet, nullptr);
    device_id = EnrollOne(*fleet, "Kiosk-1").device.id;
    EnrollOne(*fleet, "kiosk-2");
    CheckinWrite write = Checkin(device_id, {});
    write.inventory = InventoryUpdate{"inv-1",
                                      R"([{"id":"com.tencent.mm","platform":"android"},)"
                                      R"({"id":"com.tencent.mm","platform":"ios"}])",
                                      "7:android14:com.tencent.mm0:0:3:ios14:com.tencent.mm0:0:", kNow};
    std::vector<CheckinWrite> batch = {write};
    ASSERT_TRUE(fleet->ApplyCheckins(batch).ok());
  }
  {
    // As release 11 left it: no device_apps, no host-name index.
    RawDb raw(dir.db());
    ASSERT_EQ(raw.Exec("DROP TABLE device_apps; DROP INDEX devices_by_hostname; PRAGMA user_version = 11"), SQLITE_OK);
  }
  auto fleet = OpenFleet(dir.db());
  ASSERT_NE(fleet, nullptr);
  auto found = fleet->ListDevicesWhere({.hostname_prefix = "KIOSK", .app = "com.tencent.mm"}, "", 10);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].id, device_id);
  RawDb raw(dir.db());
  EXPECT_EQ(raw.Scalar("SELECT COUNT(*) FROM device_apps"), "1") << "the same id on two platforms is one row";
}

TEST(FleetStore, MigratesAVersion1Database) {
  ScratchDir dir;
  {
    // A database as the previous release left it: the policy schema (migration 1) with data.
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok());
    policy::Group group;
    group.name = "field-staff";
    ASSERT_TRUE(CreateGroupAs(**store, group, "alice", kNow).ok());
  }
  {
    RawDb raw(dir.db());
    ASSERT_EQ(raw.Exec("DROP TABLE ended_sessions; DROP TABLE session_cutoffs; DROP TABLE changes; DROP TABLE users; "
                       "ALTER TABLE audit DROP COLUMN identity_json"),
              SQLITE_OK);
    for (const char* table : {"device_apps", "api_tokens", "enrollment_tokens", "device_inventories", "device_events",
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
    EXPECT_EQ(raw.Scalar("PRAGMA user_version"), "13");
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

TEST_P(FleetContract, EnrollmentTokenIsSingleUse) {
  auto fleet = OpenFleet();
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

TEST_P(FleetContract, EnrollmentRaceHasExactlyOneWinner) {
  auto admin = OpenFleet();
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    auto token = admin->CreateEnrollmentToken("", kNow + kDay, "", By("alice"));
    ASSERT_TRUE(token.ok());
    std::atomic<int> ready{0};
    std::atomic<int> winners{0};
    std::atomic<int> refused_as_used{0};
    auto racer = [&](std::string hostname) {
      auto fleet = backend().OpenFleet();  // its own connection, as a worker process has
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

// A fleet image carries one token for a whole roll-out: it enrols up to max_uses devices, each
// its own device in the token's group with its own "device.enroll" entry, then refuses.
TEST_P(FleetContract, AMultiUseTokenEnrolsUpToItsCountEachUseAudited) {
  auto fleet = OpenFleet();
  {
    auto store = OpenStore();
    ASSERT_TRUE(store.ok());
    policy::Group group;
    group.name = "field-staff";
    ASSERT_TRUE(CreateGroupAs(**store, group, "alice", kNow).ok());
  }
  auto issued =
      fleet->IssueEnrollmentTokens(EnrollmentTokenSpec{"field-staff", kNow + kDay, "image 2026-12", 1, 3}, By("alice"));
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  ASSERT_EQ(issued->size(), 1u);
  const CreatedEnrollmentToken& token = issued->front();
  EXPECT_EQ(token.token.max_uses, 3);
  EXPECT_EQ(token.token.uses, 0);
  std::vector<std::string> device_ids;
  for (int i = 0; i < 3; ++i) {
    auto enrolled = fleet->EnrollDevice(token.presented, "ws-" + std::to_string(i), "linux", "1.0", kNow + i);
    ASSERT_TRUE(enrolled.ok()) << i << ": " << enrolled.status().ToString();
    EXPECT_EQ(enrolled->group, "field-staff");
    EXPECT_EQ(enrolled->device.enrollment_token_id, token.token.id);
    device_ids.push_back(enrolled->device.id);
  }
  EXPECT_NE(device_ids[0], device_ids[1]);
  auto fourth = fleet->EnrollDevice(token.presented, "ws-3", "linux", "1.0", kNow + 3);
  EXPECT_EQ(fourth.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(fourth.status().message().find("already used 3 times"), std::string::npos) << fourth.status().message();
  auto tokens = fleet->ListEnrollmentTokens();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].uses, 3);
  EXPECT_EQ((*tokens)[0].max_uses, 3);
  EXPECT_TRUE((*tokens)[0].Exhausted());
  EXPECT_EQ((*tokens)[0].used_by_device, device_ids[2]) << "the latest use";
  EXPECT_EQ((*tokens)[0].used_at, kNow + 2);
  EXPECT_EQ(*fleet->CountDevices(), 3);

  auto store = OpenStore();
  ASSERT_TRUE(store.ok());
  auto audit = (*store)->ReadAudit();
  ASSERT_TRUE(audit.ok());
  int enrolments = 0;
  for (const AuditEntry& entry : *audit) {
    if (entry.action != "device.enroll") continue;
    ++enrolments;
    EXPECT_EQ(entry.actor, "enrollment:" + token.token.id);
  }
  EXPECT_EQ(enrolments, 3);
}

TEST_P(FleetContract, AMultiUseTokenStopsEnrollingOnceRevokedOrExpiredAndItsCountIsBounded) {
  auto fleet = OpenFleet();
  auto issue = [&](int64_t max_uses, UnixSeconds expires_at) {
    return fleet->IssueEnrollmentTokens(EnrollmentTokenSpec{"", expires_at, "", 1, max_uses}, By("alice"));
  };
  EXPECT_EQ(issue(0, kNow + kDay).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(issue(kFleetLimits.max_enrollment_token_uses + 1, kNow + kDay).status().code(),
            StatusCode::kInvalidArgument);
  auto revoked = issue(100, kNow + kDay);
  auto expiring = issue(100, kNow + 60);
  ASSERT_TRUE(revoked.ok() && expiring.ok());
  ASSERT_TRUE(fleet->EnrollDevice(revoked->front().presented, "a", "linux", "1", kNow).ok());
  ASSERT_TRUE(fleet->RevokeEnrollmentToken(revoked->front().token.id, By("alice")).ok());
  auto after_revoke = fleet->EnrollDevice(revoked->front().presented, "b", "linux", "1", kNow);
  EXPECT_EQ(after_revoke.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(after_revoke.status().message().find("revoked"), std::string::npos);
  ASSERT_TRUE(fleet->EnrollDevice(expiring->front().presented, "c", "linux", "1", kNow + 59).ok());
  EXPECT_EQ(fleet->EnrollDevice(expiring->front().presented, "d", "linux", "1", kNow + 60).status().code(),
            StatusCode::kExpired);
  EXPECT_EQ(*fleet->CountDevices(), 2);
}

// Nodes and worker processes each hold their own connection: however many present one token at
// once, exactly max_uses enrol.
TEST_P(FleetContract, AMultiUseTokenEnrolsExactlyItsCountUnderARaceBetweenConnections) {
  auto admin = OpenFleet();
  constexpr int kRacers = 4;
  constexpr int kAttemptsEach = 10;
  constexpr int64_t kMaxUses = 25;
  auto issued = admin->IssueEnrollmentTokens(EnrollmentTokenSpec{"", kNow + kDay, "", 1, kMaxUses}, By("alice"));
  ASSERT_TRUE(issued.ok());
  const std::string presented = issued->front().presented;
  std::atomic<int> ready{0};
  std::atomic<int> winners{0};
  std::atomic<int> refused_as_used{0};
  auto racer = [&](int which) {
    auto fleet = backend().OpenFleet();
    if (!fleet.ok()) return;
    ready.fetch_add(1);
    while (ready.load() < kRacers) std::this_thread::yield();
    for (int i = 0; i < kAttemptsEach; ++i) {
      auto result = (*fleet)->EnrollDevice(presented, "h" + std::to_string(which * 100 + i), "linux", "1.0", kNow);
      if (result.ok()) {
        winners.fetch_add(1);
      } else if (result.status().code() == StatusCode::kFailedPrecondition &&
                 result.status().message().find("already used") != std::string::npos) {
        refused_as_used.fetch_add(1);
      }
    }
  };
  std::vector<std::thread> racers;
  for (int i = 0; i < kRacers; ++i) racers.emplace_back(racer, i);
  for (auto& thread : racers) thread.join();
  EXPECT_EQ(winners.load(), kMaxUses);
  EXPECT_EQ(refused_as_used.load(), kRacers * kAttemptsEach - kMaxUses);
  EXPECT_EQ(*admin->CountDevices(), kMaxUses);
  EXPECT_EQ((*admin->ListEnrollmentTokens())[0].uses, kMaxUses);
}

TEST_P(FleetContract, ExpiredRevokedUsedAndForgedTokensAreRefusedEachWithItsOwnMessage) {
  auto fleet = OpenFleet();
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

TEST_P(FleetContract, ApiTokensAuthenticateWithRoleAndAreRefusedWhenRevokedOrExpired) {
  auto fleet = OpenFleet();
  EXPECT_FALSE(*fleet->HasAnyApiToken());
  auto first = fleet->CreateFirstApiToken("admin", Role::kAdmin, By("server"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(fleet->CreateFirstApiToken("admin2", Role::kAdmin, By("server")).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(*fleet->HasAnyApiToken());
  EXPECT_TRUE(first->token.id.starts_with("t-"));

  const std::string admin_id = first->token.user_id;
  EXPECT_EQ(admin_id, UserIdFor(kLocalIssuer, kBootstrapSubject));
  auto admin = fleet->GetUser(admin_id);
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->kind, UserKind::kHuman);
  EXPECT_EQ(admin->EffectiveRole(), Role::kAdmin);

  auto analyst = fleet->CreateApiToken(admin_id, "ci-carol", Role::kAnalyst, kNow + kDay, By("admin"));
  ASSERT_TRUE(analyst.ok());
  auto who = fleet->AuthenticateApiToken(analyst->presented, kNow);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->name, "ci-carol");
  EXPECT_EQ(who->user_id, admin_id);
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
  EXPECT_EQ(fleet->CreateApiToken(admin_id, "not a name", Role::kAuditor, std::nullopt, By("admin")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(fleet->CreateApiToken("u-nobody", "orphan", Role::kAuditor, std::nullopt, By("admin")).status().code(),
            StatusCode::kNotFound);

  auto tokens = fleet->ListApiTokens();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 2u);
  for (const ApiToken& token : *tokens) {
    EXPECT_EQ(token.revoked_at.has_value(), token.id == analyst->token.id) << token.id;
  }
  for (Role role : {Role::kAdmin, Role::kAnalyst, Role::kAuditor}) EXPECT_EQ(*ParseRole(RoleName(role)), role);
  EXPECT_FALSE(ParseRole("root").ok());
}

TEST_P(FleetContract, UsersAreIdentitiesAndServiceAccountsHaveHumanOwners) {
  auto fleet = OpenFleet();
  SignIn alice{"https://idp.example", "0f3c-alice", "Alice Martin", Role::kAdmin, kNow};
  auto first = fleet->RecordSignIn(alice, By("x"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->id, UserIdFor(alice.issuer, alice.subject));
  EXPECT_TRUE(policy::ValidateIdentifier(first->id, "user id").ok());
  // The same subject at another issuer is another person; the same display name is not the same user.
  SignIn other = alice;
  other.issuer = "https://other-idp.example";
  auto second = fleet->RecordSignIn(other, By("x"));
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->id, first->id);
  // Signing in again changes nothing (no new audit entry) until the name or role claim changes.
  ASSERT_TRUE(fleet->RecordSignIn(alice, By("x")).ok());
  alice.display_name = "Alice Martin-Roy";
  alice.claim_role = Role::kAnalyst;
  auto renamed = fleet->RecordSignIn(alice, By("x"));
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->id, first->id);
  EXPECT_EQ(renamed->EffectiveRole(), Role::kAnalyst);

  auto robot = fleet->CreateServiceAccount("ci-pipeline", first->id, Role::kAnalyst, By(first->id));
  ASSERT_TRUE(robot.ok()) << robot.status().ToString();
  EXPECT_EQ(robot->kind, UserKind::kService);
  EXPECT_EQ(robot->owner_id, first->id);
  EXPECT_EQ(fleet->CreateServiceAccount("ci-pipeline", first->id, Role::kAnalyst, By(first->id)).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(fleet->CreateServiceAccount("sub-robot", robot->id, Role::kAuditor, By(first->id)).status().code(),
            StatusCode::kInvalidArgument);
  auto granted = fleet->SetGrantedRole(second->id, Role::kAuditor, By(first->id));
  ASSERT_TRUE(granted.ok());
  EXPECT_EQ(granted->EffectiveRole(), Role::kAdmin);  // the claim (admin) is stronger than the grant

  auto users = fleet->ListUsersAfter("", 10);
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users->size(), 3u);
  auto store = OpenStore();
  auto entries = (*store)->ReadAudit();
  std::vector<std::string> actions;
  for (const auto& entry : *entries) actions.push_back(entry.action);
  EXPECT_EQ(actions, (std::vector<std::string>{"user.create", "user.create", "user.update",
                                               "user.create-service-account", "user.grant-role"}));
}

TEST_P(FleetContract, RecoverAdminRevokesTheBootstrapTokensAndIssuesANewOne) {
  auto fleet = OpenFleet();
  auto first = fleet->CreateFirstApiToken("admin", Role::kAdmin, By("server"));
  ASSERT_TRUE(first.ok());
  auto recovered = fleet->RecoverAdmin(By("server"));
  ASSERT_TRUE(recovered.ok()) << recovered.status().ToString();
  EXPECT_EQ(recovered->token.user_id, first->token.user_id);
  EXPECT_TRUE(IsNotAuthenticated(fleet->AuthenticateApiToken(first->presented, kNow).status()));
  auto who = fleet->AuthenticateApiToken(recovered->presented, kNow);
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->role, Role::kAdmin);
  auto store = OpenStore();
  auto entries = (*store)->ReadAudit();
  ASSERT_FALSE(entries->empty());
  EXPECT_EQ(entries->back().action, "user.recover-admin");
  EXPECT_NE(entries->back().after_json.find(first->token.id), std::string::npos);
}

TEST_P(FleetContract, EveryAdministrativeChangeIsInTheVerifiedAuditChain) {
  auto fleet = OpenFleet();
  auto store = OpenStore();
  ASSERT_TRUE(store.ok());
  policy::Group group;
  group.name = "ops";
  ASSERT_TRUE(CreateGroupAs(**store, group, "alice", kNow).ok());  // policy change
  auto bob = fleet->RecordSignIn(SignIn{"https://idp.example", "bob-sub", "Bob", Role::kAuditor, kNow}, By("alice"));
  ASSERT_TRUE(bob.ok()) << bob.status().ToString();
  auto api = fleet->CreateApiToken(bob->id, "bob-laptop", Role::kAuditor, std::nullopt, By("alice"));
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
  ASSERT_TRUE(
      (*store)->AppendAudit(AuditRecord{"alice", "bundle.verify", "bundle:1", nullptr, nullptr, kNow, nullptr}).ok());

  auto entries = (*store)->ReadAudit();
  ASSERT_TRUE(entries.ok());
  std::vector<std::string> actions;
  for (const auto& entry : *entries) actions.push_back(entry.action + " " + entry.actor);
  EXPECT_EQ(actions, (std::vector<std::string>{"group.create alice", "user.create alice", "api_token.create alice",
                                               "api_token.revoke alice", "enrollment_token.create alice",
                                               "enrollment_token.create alice", "enrollment_token.revoke alice",
                                               "device.enroll enrollment:" + enrol->token.id, "device.revoke alice",
                                               "assessment.upload carol", "bundle.verify alice"}));
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
  EXPECT_EQ(verification->entries, 11);
  auto stored = fleet->GetAssessment(assessment.sha256);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->uploaded_by, "carol");
  EXPECT_EQ(stored->report_json, "{}");
  EXPECT_TRUE(fleet->ListAssessments()->at(0).report_json.empty());
  EXPECT_EQ(**fleet->GetSetting("first_start_done"), "1");
  EXPECT_FALSE(fleet->GetSetting("other")->has_value());
}

// One person, several accounts: a link joins an account (and what is linked to it) to the other's
// person, is audited, and is never undone by linking elsewhere.
TEST_P(FleetContract, LinkedAccountsAreOnePersonAndLinksArePermanent) {
  auto fleet = OpenFleet();
  ASSERT_NE(fleet, nullptr);
  auto sign_in = [&](const std::string& issuer, const std::string& subject) {
    auto user = fleet->RecordSignIn(SignIn{issuer, subject, subject, Role::kAdmin, kNow}, By("test"));
    EXPECT_TRUE(user.ok()) << user.status().ToString();
    return *user;
  };
  User card = sign_in("appban:client-certificate", "alice@dept.example");
  User keycloak = sign_in("https://login.example.gov/realms/gc", "alice");
  User entra = sign_in("https://login.microsoftonline.com/t/v2.0", "alice-oid");
  User bob = sign_in("https://login.example.gov/realms/gc", "bob");
  EXPECT_EQ(card.Person(), card.id);

  auto linked = fleet->LinkUser(card.id, keycloak.id, By("carol"));
  ASSERT_TRUE(linked.ok()) << linked.status().ToString();
  EXPECT_EQ(linked->Person(), keycloak.id);
  EXPECT_EQ(fleet->GetUser(card.id)->person_id, keycloak.id);
  // Linking the person's root to a third account carries the card along.
  ASSERT_TRUE(fleet->LinkUser(keycloak.id, entra.id, By("carol")).ok());
  EXPECT_EQ(fleet->GetUser(card.id)->Person(), entra.id);
  std::vector<std::string> expected = {card.id, entra.id, keycloak.id};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(*fleet->AccountsOfPerson(entra.id), expected);
  EXPECT_EQ(*fleet->AccountsOfPerson(bob.id), std::vector<std::string>{bob.id});

  // Moving an account to another person would split one: refused; so are repeats and robots.
  EXPECT_EQ(fleet->LinkUser(card.id, bob.id, By("carol")).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(fleet->LinkUser(card.id, keycloak.id, By("carol")).status().code(), StatusCode::kAlreadyExists);
  auto robot = fleet->CreateServiceAccount("ci", bob.id, Role::kAnalyst, By("bob"));
  ASSERT_TRUE(robot.ok()) << robot.status().ToString();
  EXPECT_EQ(fleet->LinkUser(robot->id, bob.id, By("carol")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fleet->LinkUser("u-000000000000000000000000", bob.id, By("carol")).status().code(), StatusCode::kNotFound);

  // Each link is in the audit chain.
  auto store = OpenStore();
  ASSERT_TRUE(store.ok());
  auto entries = (*store)->ReadAudit();
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  int links = 0;
  for (const auto& entry : *entries) links += entry.action == "user.link" ? 1 : 0;
  EXPECT_EQ(links, 2);
}

// Console sessions ended on the server: one signed out (its row pruned once the session would have
// ended anyway), or every session of a user issued before a time (audited).
TEST_P(FleetContract, EndedSessionsAreRefusedUntilTheyWouldHaveExpired) {
  auto fleet = OpenFleet();
  ASSERT_NE(fleet, nullptr);
  auto alice = fleet->RecordSignIn(SignIn{"https://idp.example", "alice", "Alice", Role::kAdmin, kNow}, By("test"));
  auto bob = fleet->RecordSignIn(SignIn{"https://idp.example", "bob", "Bob", Role::kAdmin, kNow}, By("test"));
  ASSERT_TRUE(alice.ok() && bob.ok());

  EXPECT_FALSE(*fleet->SessionEnded("s-1", alice->id, kNow));
  ASSERT_TRUE(fleet->EndSession("s-1", alice->id, kNow, kNow + 3600).ok());
  ASSERT_TRUE(fleet->EndSession("s-1", alice->id, kNow, kNow + 3600).ok());  // signing out twice is fine
  EXPECT_TRUE(*fleet->SessionEnded("s-1", alice->id, kNow));
  EXPECT_FALSE(*fleet->SessionEnded("s-2", alice->id, kNow));
  // A later sign-out prunes rows of sessions past their own end.
  ASSERT_TRUE(fleet->EndSession("s-3", alice->id, kNow + 7200, kNow + 9000).ok());
  EXPECT_FALSE(*fleet->SessionEnded("s-1", alice->id, kNow)) << "row kept past the session's end";
  EXPECT_TRUE(*fleet->SessionEnded("s-3", alice->id, kNow));

  // Every session of bob issued before kNow + 100: older ones end, later ones and alice's do not;
  // a second, earlier cut-off never brings ended sessions back.
  ASSERT_TRUE(fleet->EndSessionsOfUser(bob->id, kNow + 100, By("carol")).ok());
  EXPECT_TRUE(*fleet->SessionEnded("s-4", bob->id, kNow + 99));
  EXPECT_FALSE(*fleet->SessionEnded("s-5", bob->id, kNow + 100));
  EXPECT_FALSE(*fleet->SessionEnded("s-6", alice->id, kNow + 50));
  ASSERT_TRUE(fleet->EndSessionsOfUser(bob->id, kNow + 10, By("carol")).ok());
  EXPECT_TRUE(*fleet->SessionEnded("s-4", bob->id, kNow + 99));
  EXPECT_EQ(fleet->EndSessionsOfUser("u-000000000000000000000000", kNow, By("carol")).code(), StatusCode::kNotFound);

  auto store = OpenStore();
  ASSERT_TRUE(store.ok());
  auto entries = (*store)->ReadAudit();
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  int ends = 0;
  for (const auto& entry : *entries) ends += entry.action == "user.end-sessions" ? 1 : 0;
  EXPECT_EQ(ends, 2);
}

}  // namespace
}  // namespace appban::store
