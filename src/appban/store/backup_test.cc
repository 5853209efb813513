// The database half of `appban server backup`: a snapshot taken while another connection keeps
// writing is one consistent state whose chain verifies against a checkpoint signed for it; a
// damaged chain is refused rather than re-signed; a copy is inspected without being changed.
#include "appban/store/backup.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "appban/store/audit_checkpoint.h"
#include "appban/store/fleet_test_support.h"
#include "appban/store/store_backend_test_support.h"

namespace appban::store {
namespace {

using fleet_testing::By;
using fleet_testing::EnrollOne;
using fleet_testing::OpenFleet;
using fleet_testing::RawDb;
using fleet_testing::ScratchDir;

int64_t RowsOf(const DatabaseSnapshot& snapshot, const std::string& table) {
  for (const auto& [name, count] : snapshot.row_counts) {
    if (name == table) return count;
  }
  return -1;
}

TEST(DatabaseBackup, ASnapshotTakenWhileAnotherConnectionWritesIsConsistentAndVerifies) {
  ScratchDir dir;
  auto fleet = OpenFleet(dir.db());
  ASSERT_NE(fleet, nullptr);
  for (int i = 0; i < 20; ++i) EnrollOne(*fleet, "host-" + std::to_string(i));
  auto store = OpenSqliteStore(dir.db());
  ASSERT_TRUE(store.ok());
  PopulateHistory(**store);

  // A writer appends audited changes for as long as the snapshots run.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    auto other = OpenSqliteStore(dir.db());
    ASSERT_TRUE(other.ok());
    for (int i = 0; !stop; ++i) {
      ASSERT_TRUE(
          CreateGroupAs(**other, policy::Group{"g" + std::to_string(i), "", {}, 0}, "alice", 1700000100 + i).ok());
      ++written;
    }
  });
  while (written < 5) std::this_thread::yield();
  for (int copy = 0; copy < 5; ++copy) {
    const std::string destination = (dir.path() / ("copy-" + std::to_string(copy) + ".db")).string();
    auto snapshot = SnapshotSqliteDatabase(dir.db(), destination);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    EXPECT_TRUE(snapshot->audit.ok());
    ASSERT_TRUE(snapshot->audit_head.has_value());
    // The checkpoint in the copy is signed for the copy's own head, not the live one.
    EXPECT_EQ(snapshot->audit.checkpoint_seq, snapshot->audit_head->seq);
    EXPECT_EQ(RowsOf(*snapshot, "devices"), 20);
    // Each group creation is one audit entry: the copy holds exactly the groups its chain records.
    RawDb raw(destination);
    EXPECT_EQ(raw.Scalar("SELECT count(*) FROM device_groups"),
              raw.Scalar("SELECT count(*) FROM audit WHERE action = 'group.create'"));
    EXPECT_FALSE(std::filesystem::exists(AuditCheckpointDir(destination) + "/lock"));
    // And a store opened on the copy sees the same verified chain.
    auto reopened = OpenSqliteStore(destination);
    ASSERT_TRUE(reopened.ok());
    auto verified = (*reopened)->VerifyAudit();
    ASSERT_TRUE(verified.ok());
    EXPECT_TRUE(verified->ok());
    EXPECT_EQ(verified->entries, snapshot->audit.entries);
  }
  stop = true;
  writer.join();
}

TEST(DatabaseBackup, ADamagedChainIsRefusedAndNothingIsLeftBehind) {
  ScratchDir dir;
  {
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok());
    PopulateHistory(**store);
  }
  RawDb raw(dir.db());
  ASSERT_EQ(raw.Exec("DROP TRIGGER audit_no_update"), SQLITE_OK);
  ASSERT_EQ(raw.Exec("UPDATE audit SET actor = 'mallory' WHERE seq = 2"), SQLITE_OK);
  const std::string destination = (dir.path() / "copy.db").string();
  auto snapshot = SnapshotSqliteDatabase(dir.db(), destination);
  ASSERT_FALSE(snapshot.ok());
  EXPECT_EQ(snapshot.status().code(), StatusCode::kCorruption);
  EXPECT_NE(snapshot.status().message().find("entry 2"), std::string::npos) << snapshot.status().message();
  EXPECT_NE(snapshot.status().message().find("audit verify"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(destination));
  EXPECT_FALSE(std::filesystem::exists(AuditCheckpointDir(destination)));
}

TEST(DatabaseBackup, ATruncatedChainIsCaughtByTheLiveCheckpointNotReSigned) {
  ScratchDir dir;
  {
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok());
    PopulateHistory(**store);
  }
  // Someone with the database but not the checkpoint directory removes the last entry and moves
  // the head row back: the chain is whole, only the live checkpoint knows it was longer.
  RawDb raw(dir.db());
  ASSERT_EQ(raw.Exec("DROP TRIGGER audit_no_delete"), SQLITE_OK);
  ASSERT_EQ(raw.Exec("DROP TRIGGER audit_head_no_update"), SQLITE_OK);
  std::string last = raw.Scalar("SELECT max(seq) FROM audit");
  ASSERT_EQ(raw.Exec("DELETE FROM audit WHERE seq = " + last), SQLITE_OK);
  ASSERT_EQ(raw.Exec("UPDATE audit_head SET seq = (SELECT max(seq) FROM audit), "
                     "hash = (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1)"),
            SQLITE_OK);
  auto snapshot = SnapshotSqliteDatabase(dir.db(), (dir.path() / "copy.db").string());
  ASSERT_FALSE(snapshot.ok()) << "a shortened chain must not be re-signed as a valid backup";
  EXPECT_EQ(snapshot.status().code(), StatusCode::kCorruption) << snapshot.status().ToString();
}

TEST(DatabaseBackup, MissingSourceAndExistingDestinationAreRefusedWithoutCreatingAnything) {
  ScratchDir dir;
  const std::string missing = (dir.path() / "nothing.db").string();
  auto none = SnapshotSqliteDatabase(missing, (dir.path() / "copy.db").string());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(missing)) << "opening must not create the source";
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "copy.db"));

  { ASSERT_TRUE(OpenSqliteStore(dir.db()).ok()); }
  const std::string taken = (dir.path() / "taken.db").string();
  { std::ofstream(taken) << "precious"; }
  auto refused = SnapshotSqliteDatabase(dir.db(), taken);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists);
  std::ifstream in(taken);
  std::string kept;
  in >> kept;
  EXPECT_EQ(kept, "precious");
}

TEST(DatabaseBackup, InspectReadsWithoutMigratingAndRefusesAFutureSchema) {
  ScratchDir dir;
  {
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok());
    PopulateHistory(**store);
  }
  auto inspected = InspectSqliteDatabase(dir.db());
  ASSERT_TRUE(inspected.ok()) << inspected.status().ToString();
  EXPECT_EQ(inspected->schema_version, inspected->supported_schema_version);
  EXPECT_EQ(RowsOf(*inspected, "rules"), 3);  // PopulateHistory proposes r1, r2 and r3
  EXPECT_TRUE(inspected->audit.ok());

  RawDb(dir.db()).Exec("PRAGMA user_version = 999");
  auto future = InspectSqliteDatabase(dir.db());
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(future.status().message().find("999"), std::string::npos);
  EXPECT_EQ(RawDb(dir.db()).Scalar("PRAGMA user_version"), "999") << "inspection changed the database";

  const std::string garbage = (dir.path() / "garbage.db").string();
  { std::ofstream(garbage) << std::string(8192, 'x'); }
  auto corrupt = InspectSqliteDatabase(garbage);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.status().code(), StatusCode::kCorruption) << corrupt.status().ToString();
}

TEST(DatabaseBackup, RootAppendingToAnotherUsersChainLeavesTheCheckpointReadableByThatUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (as `sudo appban server backup` runs)";
  ScratchDir dir;
  {
    auto store = OpenSqliteStore(dir.db());
    ASSERT_TRUE(store.ok());
    PopulateHistory(**store);
  }
  // The server's files belong to its own user (nobody here), as under systemd's DynamicUser.
  const uid_t server_user = 65534;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    ASSERT_EQ(::chown(entry.path().c_str(), server_user, server_user), 0) << entry.path();
  }
  ASSERT_EQ(::chown(dir.path().c_str(), server_user, server_user), 0);
  {
    auto store = OpenSqliteStore(dir.db());  // as root, like the backup's own audit entry
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->AppendAudit(By("server")).ok());
  }
  struct stat head {};
  ASSERT_EQ(::stat((AuditCheckpointDir(dir.db()) + "/head").c_str(), &head), 0);
  EXPECT_EQ(head.st_uid, server_user) << "the server could no longer read its own checkpoint";
  struct stat lock {};
  ASSERT_EQ(::stat((AuditCheckpointDir(dir.db()) + "/lock").c_str(), &lock), 0);
  EXPECT_EQ(lock.st_uid, server_user);
}

}  // namespace
}  // namespace appban::store
