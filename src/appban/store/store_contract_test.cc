// The Store contract (store.h) on every backend: each TEST_P runs once on SQLite and once on
// PostgreSQL (store_backend_test_support.h). Backend-specific behaviour (schema versions, file
// modes, the signed checkpoint file) is tested in sqlite_store_test.cc and postgres_store_test.cc.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "appban/store/store.h"
#include "appban/store/store_backend_test_support.h"
#include "appban/store/store_test_support.h"

namespace appban::store {
namespace {

class StoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = MakeStoreBackend(GetParam());
    auto store = backend_->Open();
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  std::unique_ptr<StoreBackend> backend_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContract, ConcurrentChangeIsRefusedNotOverwritten) {
  ASSERT_TRUE(ProposeRuleAs(*store_, SampleRule("r1"), "alice", 1).ok());
  auto first = store_->GetRule("r1");
  // The second writer is another connection (on PostgreSQL: as if on another node).
  auto other = backend_->Open();
  ASSERT_TRUE(other.ok());
  auto second = (*other)->GetRule("r1");
  ASSERT_TRUE(first.ok() && second.ok());
  AuditRecord audit{"bob", "test", "rule:r1", nullptr, nullptr, 1, nullptr};
  first->title = "first writer";
  ASSERT_TRUE(store_->UpdateRule(*first, audit).ok());
  second->title = "second writer";
  EXPECT_EQ((*other)->UpdateRule(*second, audit).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->GetRule("r1")->title, "first writer");
  EXPECT_EQ(store_->GetRule("r1")->revision, 2);
}

TEST_P(StoreContract, FailedMutationLeavesNoAuditEntry) {
  ASSERT_TRUE(ProposeRuleAs(*store_, SampleRule("r1"), "alice", 1).ok());
  EXPECT_EQ(ProposeRuleAs(*store_, SampleRule("r1"), "alice", 2).code(), StatusCode::kAlreadyExists);
  policy::Waiver orphan;
  orphan.id = "w1";
  orphan.rule_id = "no-such-rule";
  orphan.subject = "phone-1";
  orphan.justification = "x";
  orphan.approved_by = "alice";
  orphan.expires_at = 10;
  EXPECT_EQ(store_->CreateWaiver(orphan, AuditRecord{"alice", "waiver.add", "waiver:w1", nullptr, nullptr, 0, nullptr})
                .code(),
            StatusCode::kNotFound);
  auto entries = store_->ReadAudit();
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 1u);  // only the successful proposal
  // The store is still usable after the refused statements (PostgreSQL aborts the transaction).
  EXPECT_TRUE(ProposeRuleAs(*store_, SampleRule("r2"), "alice", 3).ok());
}

TEST_P(StoreContract, WaiversGroupsVendorsAndBundlesRoundTrip) {
  ASSERT_TRUE(ProposeRuleAs(*store_, SampleRule("r1"), "alice", 1).ok());
  AuditRecord audit{"alice", "test", "x", nullptr, nullptr, 2, nullptr};
  policy::Waiver waiver;
  waiver.id = "w1";
  waiver.rule_id = "r1";
  waiver.subject = "phone-1";
  waiver.justification = "the minister's phone";
  waiver.approved_by = "bob";
  waiver.expires_at = 2000000000;
  ASSERT_TRUE(store_->CreateWaiver(waiver, audit).ok());
  EXPECT_EQ(waiver.revision, 1);
  waiver.justification = "renewed";
  ASSERT_TRUE(store_->UpdateWaiver(waiver, audit).ok());
  EXPECT_EQ(store_->GetWaiver("w1")->justification, "renewed");
  EXPECT_EQ(store_->GetWaiver("w1")->revision, 2);
  EXPECT_EQ(store_->GetWaiver("w2").status().code(), StatusCode::kNotFound);

  for (const char* name : {"b-group", "a-group", "c-group"}) {
    ASSERT_TRUE(CreateGroupAs(*store_, policy::Group{name, "", {"phone-1"}, 0}, "alice", 3).ok());
  }
  EXPECT_EQ(CreateGroupAs(*store_, policy::Group{"a-group", "", {}, 0}, "alice", 3).code(), StatusCode::kAlreadyExists);
  auto page = store_->ListGroupsAfter("a-group", 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ(page->front().name, "b-group");
  ASSERT_TRUE(store_->DeleteGroup("b-group", audit).ok());
  EXPECT_EQ(store_->DeleteGroup("b-group", audit).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ListGroups()->size(), 2u);

  policy::Vendor vendor;
  vendor.name = "example-vendor";
  ASSERT_TRUE(store_->PutVendor(vendor, audit).ok());
  EXPECT_EQ(vendor.revision, 1);
  ASSERT_EQ(store_->ListVendors()->size(), 1u);

  EXPECT_EQ(*store_->LatestBundleVersion(), 0);
  BundleRecord bundle{3, 1700000000, std::string(64, 'a'), "key-1", "{\"envelope\":true}"};
  ASSERT_TRUE(store_->RecordBundle(bundle, audit).ok());
  EXPECT_EQ(store_->RecordBundle(bundle, audit).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store_->LatestBundleVersion(), 3);
  auto read = store_->GetBundle(3);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->issued_at, 1700000000);
  EXPECT_EQ(read->envelope, "{\"envelope\":true}");
  EXPECT_EQ(store_->GetBundle(2).status().code(), StatusCode::kNotFound);

  auto verification = store_->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  EXPECT_TRUE(verification->ok());
  EXPECT_EQ(verification->entries, 9);  // the proposal, 2 waiver, 3 groups, 1 deletion, 1 vendor, 1 bundle
  EXPECT_TRUE(store_->CheckIntegrity().ok());
}

TEST_P(StoreContract, RulesPageInIdOrder) {
  for (const char* id : {"r3", "r1", "r2"}) ASSERT_TRUE(ProposeRuleAs(*store_, SampleRule(id), "alice", 1).ok());
  auto first = store_->ListRulesAfter("", 2);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id, "r1");
  EXPECT_EQ((*first)[1].id, "r2");
  auto rest = store_->ListRulesAfter("r2", 2);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ(rest->front().id, "r3");
  auto audit_page = store_->ReadAuditAfter(1, 1);
  ASSERT_EQ(audit_page->size(), 1u);
  EXPECT_EQ(audit_page->front().seq, 2);
}

TEST_P(StoreContract, AuditChainVerifiesAndTheDatabaseRefusesEdits) {
  PopulateHistory(*store_);
  auto verification = store_->VerifyAudit();
  ASSERT_TRUE(verification.ok());
  EXPECT_TRUE(verification->ok());
  EXPECT_EQ(verification->entries, 5);
  EXPECT_FALSE(backend_->Exec("UPDATE audit SET actor = 'mallory' WHERE seq = 2"));
  EXPECT_FALSE(backend_->Exec("DELETE FROM audit WHERE seq = 2"));
  EXPECT_EQ(backend_->Scalar("SELECT actor FROM audit WHERE seq = 2"), "alice");
}

// Tamper directly in the database (after dropping the append-only triggers) and check that
// verification names the entry.
class AuditTamper : public StoreContract {
 protected:
  void SetUp() override {
    StoreContract::SetUp();
    PopulateHistory(*store_);
    ASSERT_TRUE(backend_->DropTrigger("audit_no_update", "audit"));
    ASSERT_TRUE(backend_->DropTrigger("audit_no_delete", "audit"));
  }
  bool Exec(const std::string& sql) { return backend_->Exec(sql); }
  AuditVerification Verify() {
    auto store = backend_->Open();
    EXPECT_TRUE(store.ok());
    auto result = (*store)->VerifyAudit();
    EXPECT_TRUE(result.ok());
    return *result;
  }
  static std::string Describe(const AuditVerification& v) {
    std::string out;
    for (const auto& p : v.problems) out += "[" + std::to_string(p.seq) + "] " + p.what + "\n";
    return out;
  }
};

TEST_P(AuditTamper, EditedEntryIsNamed) {
  ASSERT_TRUE(Exec("UPDATE audit SET actor = 'alice' WHERE seq = 3"));  // the approval was bob's
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  ASSERT_EQ(v.problems.size(), 1u) << Describe(v);
  EXPECT_EQ(v.problems[0].seq, 3);
  EXPECT_NE(v.problems[0].what.find("edited"), std::string::npos) << Describe(v);
}

// Entries that record who acted (schema 6) chain with the entries before them, which have none.
TEST_P(AuditTamper, AnEditedIdentityIsNamedAndEntriesWithoutOneStillVerify) {
  {
    auto store = backend_->Open();
    ASSERT_TRUE(store.ok());
    AuditIdentity who{"u-1234", "https://idp.example", "sub-bob", "Bob", "oidc", "", "127.0.0.1", "api", ""};
    AuditRecord record{"u-1234", "bundle.verify", "bundle:1", nullptr, nullptr, 10, AuditIdentityJson(who)};
    ASSERT_TRUE((*store)->AppendAudit(record).ok());
    auto entries = (*store)->ReadAudit();
    EXPECT_EQ(entries->front().identity_json, "null");
    EXPECT_EQ(entries->back().identity_json,
              R"({"actor_name":"Bob","channel":"api","issuer":"https://idp.example","method":"oidc",)"
              R"("source":"127.0.0.1","subject":"sub-bob","user_id":"u-1234"})");
  }
  EXPECT_TRUE(Verify().ok()) << Describe(Verify());
  ASSERT_TRUE(
      Exec("UPDATE audit SET identity_json = replace(identity_json, 'sub-bob', 'sub-eve') "
           "WHERE seq = (SELECT MAX(seq) FROM audit)"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.problems[0].what.find("edited"), std::string::npos) << Describe(v);
}

TEST_P(AuditTamper, EditedBeforeAfterIsNamed) {
  ASSERT_TRUE(Exec("UPDATE audit SET after_json = replace(after_json, 'approved', 'published') WHERE seq = 3"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 3) << Describe(v);
}

TEST_P(AuditTamper, DeletedEntryIsNamed) {
  ASSERT_TRUE(Exec("DELETE FROM audit WHERE seq = 3"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 4) << Describe(v);
  EXPECT_NE(v.problems[0].what.find("entry 3 is missing"), std::string::npos) << Describe(v);
}

TEST_P(AuditTamper, DeletedAndRenumberedEntryIsStillCaught) {
  // Renumbered through negative numbers: PostgreSQL checks the primary key row by row.
  ASSERT_TRUE(
      Exec("DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = -seq WHERE seq > 3; "
           "UPDATE audit SET seq = -seq - 1 WHERE seq < 0"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok()) << "renumbering hid a deletion";
  EXPECT_EQ(v.problems[0].seq, 3) << Describe(v);
}

TEST_P(AuditTamper, ReorderedEntriesAreNamed) {
  ASSERT_TRUE(
      Exec("UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; "
           "UPDATE audit SET seq = 3 WHERE seq = -1"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 2) << Describe(v);
  EXPECT_NE(Describe(v).find("out of order"), std::string::npos) << Describe(v);
}

TEST_P(AuditTamper, TruncatedTailIsNamed) {
  ASSERT_TRUE(Exec("DELETE FROM audit WHERE seq = 5"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 5) << Describe(v);
  EXPECT_NE(v.problems[0].what.find("truncated"), std::string::npos) << Describe(v);
}

TEST_P(AuditTamper, WhitespaceAddedToStoredJsonIsNamed) {
  ASSERT_TRUE(Exec("UPDATE audit SET before_json = ' ' || before_json WHERE seq = 3"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 3) << Describe(v);
}

TEST_P(AuditTamper, HeadRowIsGuardedByTriggers) {
  EXPECT_FALSE(Exec("DELETE FROM audit_head"));
  EXPECT_FALSE(Exec("UPDATE audit_head SET seq = 3"));
  EXPECT_EQ(backend_->Scalar("SELECT seq FROM audit_head"), "5");
}

TEST_P(AuditTamper, ReplacedHeadIsNamed) {
  ASSERT_TRUE(backend_->DropTrigger("audit_head_no_update", "audit_head"));
  ASSERT_TRUE(Exec("UPDATE audit_head SET hash = (SELECT hash FROM audit WHERE seq = 2)"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.problems[0].seq, 5) << Describe(v);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::Values("sqlite", "postgres"), BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, AuditTamper, ::testing::Values("sqlite", "postgres"), BackendName);

// Deleting the tail together with the head row is caught only against the signed checkpoint kept
// outside the database: beside the SQLite file, in the node's own directory on PostgreSQL.
class AuditTamperBeyondTheDatabase : public AuditTamper {};

TEST_P(AuditTamperBeyondTheDatabase, TruncatedTailWithHeadDeletedIsNamed) {
  backend_->DropTrigger("audit_head_no_delete", "audit_head");
  backend_->DropTrigger("audit_head_no_update", "audit_head");
  ASSERT_TRUE(Exec("DELETE FROM audit_head; DELETE FROM audit WHERE seq >= 4"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok()) << "deleting the tail and the head went unnoticed";
  EXPECT_NE(Describe(v).find("truncated"), std::string::npos) << Describe(v);
}

TEST_P(AuditTamperBeyondTheDatabase, TruncatedTailWithHeadRewrittenIsNamed) {
  backend_->DropTrigger("audit_head_no_delete", "audit_head");
  backend_->DropTrigger("audit_head_no_update", "audit_head");
  ASSERT_TRUE(
      Exec("DELETE FROM audit WHERE seq >= 4; "
           "UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit WHERE seq = 3)"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok()) << "a consistent shorter chain with a rewritten head went unnoticed";
  EXPECT_NE(Describe(v).find("truncated"), std::string::npos) << Describe(v);
}

TEST_P(AuditTamperBeyondTheDatabase, EverythingDeletedIsNamed) {
  backend_->DropTrigger("audit_head_no_delete", "audit_head");
  ASSERT_TRUE(Exec("DELETE FROM audit_head; DELETE FROM audit"));
  AuditVerification v = Verify();
  ASSERT_FALSE(v.ok()) << "an emptied log went unnoticed";
}

INSTANTIATE_TEST_SUITE_P(Backends, AuditTamperBeyondTheDatabase, ::testing::Values("sqlite", "postgres"), BackendName);

}  // namespace
}  // namespace appban::store
