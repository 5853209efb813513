#include "appban/store/fleet.h"

#include <gtest/gtest.h>

#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "appban/store/fleet_test_support.h"
#include "appban/store/store.h"
#include "appban/store/store_backend_test_support.h"
#include "appban/store/store_test_support.h"

// FleetStore batches: many enrolment tokens or enrolments in one transaction, all or nothing, and
// tokens used once across connections.
namespace appban::store {
namespace {

using namespace fleet_testing;  // the shared fixtures

// The tests below that hold on every backend (TEST_P); the ones that need the SQLite file itself
// (its migrations, query plans, bytes on disk, triggers in SQLite's syntax) stay TEST.
class FleetBatchContract : public FleetOnEveryBackend {};
INSTANTIATE_TEST_SUITE_P(Backends, FleetBatchContract, ::testing::Values("sqlite", "postgres"), BackendName);

// ---- Batches: many tokens / many enrolments in one transaction ----

TEST_P(FleetBatchContract, CreateEnrollmentTokensMakesDistinctTokensEachAuditedAndTheChainVerifies) {
  auto fleet = OpenFleet();
  auto store = OpenStore();
  ASSERT_TRUE(store.ok());
  policy::Group group;
  group.name = "field-staff";
  ASSERT_TRUE(CreateGroupAs(**store, group, "alice", kNow).ok());

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

TEST_P(FleetBatchContract, EnrollDevicesGivesEachRequestItsOwnOutcomeAndATokenTwiceInABatchWinsOnce) {
  auto fleet = OpenFleet();
  auto store = OpenStore();
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
TEST_P(FleetBatchContract, BatchesFromTwoConnectionsUseEachTokenOnce) {
  auto admin = OpenFleet();
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
    auto fleet = backend().OpenFleet();
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

}  // namespace
}  // namespace appban::store
