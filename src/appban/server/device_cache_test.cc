#include "appban/server/device_cache.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace appban::server {
namespace {

store::Device MakeDevice(const std::string& id) {
  store::Device device;
  device.id = id;
  device.group = "field-staff";
  device.applied_version = 3;
  device.applied_rules_hash = "rules-3";
  device.inventory_hash = "inventory-a";
  device.evaluated_version = 3;
  device.evaluated_inventory_hash = "inventory-a";
  device.last_event_seq = 7;
  return device;
}

class DeviceCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = DeviceGenerations::Create();
    ASSERT_TRUE(created.ok());
    generations_ = std::make_unique<DeviceGenerations>(std::move(*created));
    cache_ = std::make_unique<DeviceCache>(*generations_, 4);
  }
  CachedDevice& Read(const std::string& id) { return cache_->Store(MakeDevice(id), Sha256Digest{}, cache_->Take(id)); }
  std::unique_ptr<DeviceGenerations> generations_;
  std::unique_ptr<DeviceCache> cache_;
};

TEST_F(DeviceCacheTest, AnEntryIsServedUntilItsDeviceIsBumped) {
  Read("d-1");
  Read("d-2");
  ASSERT_NE(cache_->Find("d-1"), nullptr);
  EXPECT_EQ(cache_->Find("d-1")->last_event_seq, 7);
  EXPECT_EQ(cache_->Find("d-1")->group, "field-staff");
  generations_->Bump("d-1");
  EXPECT_EQ(cache_->Find("d-1"), nullptr);
  EXPECT_NE(cache_->Find("d-2"), nullptr) << "another device's entry is untouched";
  EXPECT_EQ(cache_->size(), 1u) << "the stale entry is dropped";
}

TEST_F(DeviceCacheTest, ABumpBetweenTheSnapshotAndTheReadLeavesTheEntryStale) {
  DeviceCache::Snapshot before = cache_->Take("d-1");
  generations_->Bump("d-1");  // a commit lands while the row is being read
  cache_->Store(MakeDevice("d-1"), Sha256Digest{}, before);
  EXPECT_EQ(cache_->Find("d-1"), nullptr);
}

TEST_F(DeviceCacheTest, OwnWriteUpdatesTheEntryWhenNobodyElseWrote) {
  Read("d-1");
  store::CheckinWrite write;
  write.device_id = "d-1";
  write.applied = store::AppliedPolicy{4, "rules-4"};
  write.inventory = store::InventoryUpdate{"inventory-b", "[]", "", 0};
  write.evaluated = store::EvaluationMark{4, "inventory-b"};
  ASSERT_TRUE(ChangesCachedDevice(write));
  uint64_t before = generations_->Bump("d-1");  // the writer, after the commit
  cache_->AfterWrite(write, 9, before);
  CachedDevice* entry = cache_->Find("d-1");
  ASSERT_NE(entry, nullptr) << "updated in place, no read needed";
  EXPECT_EQ(entry->applied_version, 4);
  EXPECT_EQ(entry->applied_rules_hash, "rules-4");
  EXPECT_EQ(entry->inventory_hash, "inventory-b");
  EXPECT_EQ(entry->evaluated_version, 4);
  EXPECT_EQ(entry->evaluated_inventory_hash, "inventory-b");
  EXPECT_EQ(entry->last_event_seq, 9);
}

TEST_F(DeviceCacheTest, OwnWriteAfterSomeoneElsesDropsTheEntry) {
  Read("d-1");
  generations_->Bump("d-1");  // another worker committed first
  store::CheckinWrite write;
  write.device_id = "d-1";
  write.applied = store::AppliedPolicy{4, "rules-4"};
  uint64_t before = generations_->Bump("d-1");
  cache_->AfterWrite(write, 9, before);
  EXPECT_EQ(cache_->Find("d-1"), nullptr);
  EXPECT_EQ(cache_->size(), 0u);
}

TEST_F(DeviceCacheTest, TheEpochInvalidatesEverything) {
  Read("d-1");
  Read("d-2");
  generations_->BumpEpoch();
  EXPECT_EQ(cache_->Find("d-1"), nullptr);
  EXPECT_EQ(cache_->Find("d-2"), nullptr);
}

TEST_F(DeviceCacheTest, SizeIsBounded) {
  for (int i = 0; i < 4; ++i) Read("d-" + std::to_string(i));
  EXPECT_EQ(cache_->size(), 4u);
  Read("d-4");
  EXPECT_LE(cache_->size(), 4u);
  EXPECT_NE(cache_->Find("d-4"), nullptr);
}

TEST_F(DeviceCacheTest, LastSeenAloneIsNotACachedChange) {
  store::CheckinWrite write;
  write.device_id = "d-1";
  write.last_seen = 1000;
  EXPECT_FALSE(ChangesCachedDevice(write));
  write.events.push_back(store::DeviceEvent{});
  EXPECT_TRUE(ChangesCachedDevice(write));
}

// The workers are forked processes: a bump in one is seen by the others.
TEST_F(DeviceCacheTest, GenerationsAreSharedWithForkedProcesses) {
  Read("d-1");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    generations_->Bump("d-1");
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(cache_->Find("d-1"), nullptr);
}

}  // namespace
}  // namespace appban::server
