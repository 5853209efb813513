#include "appban/agent/inventory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "appban/agent/agent_test_support.h"
#include "appban/protocol/messages.h"

namespace appban::agent {
namespace {

using testing::MakeTempDir;
using testing::MustRun;
using testing::ScratchRoot;
using testing::WriteText;

const InventoryEntry* Find(const LocalInventory& inventory, policy::Platform platform, const std::string& id) {
  for (const auto& entry : inventory.entries) {
    if (entry.app.platform == platform && entry.app.id == id) return &entry;
  }
  return nullptr;
}

// Real dpkg, real packages, scratch root: what dpkg installed is what the inventory lists.
TEST(Inventory, ListsDebsInstalledByRealDpkgInAScratchRoot) {
  ScratchRoot scratch;
  scratch.BuildDeb("banned");
  scratch.BuildDeb("unrelated", "Origin: Example\n");
  scratch.BuildDeb("coreish", "Essential: yes\nPriority: required\n");
  scratch.BuildDeb("dependent", "Depends: banned\n");
  auto installed = scratch.DpkgInstall({"banned", "unrelated", "coreish", "dependent"});
  ASSERT_TRUE(installed.ok()) << installed.Describe();

  auto inventory = CollectInventory(SystemPaths::UnderRoot(scratch.root()));
  ASSERT_TRUE(inventory.ok()) << inventory.status().ToString();
  ASSERT_EQ(inventory->entries.size(), 4u);
  for (const char* name : {"banned", "unrelated", "coreish", "dependent"}) {
    const auto* entry = Find(*inventory, policy::Platform::kDeb, name);
    ASSERT_NE(entry, nullptr) << name;
    EXPECT_EQ(entry->app.version, "1.0");
    EXPECT_EQ(entry->detail, "all");
    EXPECT_EQ(entry->protected_package, std::string(name) == "coreish") << name;
  }
  EXPECT_EQ(Find(*inventory, policy::Platform::kDeb, "unrelated")->origin, "Example");
  // The hash is the protocol's, over the same apps.
  auto apps = inventory->Apps();
  EXPECT_EQ(inventory->Hash(), protocol::InventoryHash(apps));

  // A removed package leaves the inventory (dpkg keeps a not-installed / config-files entry).
  auto removed = MustRun({"dpkg", "--root=" + scratch.root(), "--admindir=" + scratch.admindir(),
                          "--force-script-chrootless", "--remove", "unrelated"});
  ASSERT_TRUE(removed.ok()) << removed.Describe();
  auto after = CollectInventory(SystemPaths::UnderRoot(scratch.root()));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Find(*after, policy::Platform::kDeb, "unrelated"), nullptr);
  EXPECT_NE(after->Hash(), inventory->Hash());
}

TEST(Inventory, CorruptDpkgDatabaseIsAnErrorAbsentSourcesAreNot) {
  std::string dir = MakeTempDir("appban-inventory-");
  auto empty = CollectInventory(SystemPaths::UnderRoot(dir));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->entries.empty());

  WriteText(dir + "/var/lib/dpkg/status", " continuation first\n");
  auto corrupt = CollectInventory(SystemPaths::UnderRoot(dir));
  EXPECT_EQ(corrupt.status().code(), StatusCode::kCorruption);
  EXPECT_NE(corrupt.status().message().find("line 1"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// snapd is not available here: the layout is hand-built after snapd's documented state file and
// /snap mount layout.
TEST(Inventory, SnapsFromSnapdStateAndMountLinks) {
  std::string dir = MakeTempDir("appban-inventory-");
  WriteText(dir + "/var/lib/snapd/state.json",
            R"({"data":{"snaps":{"hello":{"active":true,"current":"38","tracking-channel":"latest/stable",)"
            R"("sequence":[{"name":"hello","revision":"38"}]},"core22":{"active":true,"current":"1033"}}}})");
  std::filesystem::create_directories(dir + "/snap/hello/38/meta");
  WriteText(dir + "/snap/hello/38/meta/snap.yaml", "name: hello\nversion: '2.10'\nsummary: x\n");
  std::filesystem::create_directory_symlink("38", dir + "/snap/hello/current");

  auto inventory = CollectInventory(SystemPaths::UnderRoot(dir));
  ASSERT_TRUE(inventory.ok()) << inventory.status().ToString();
  const auto* hello = Find(*inventory, policy::Platform::kSnap, "hello");
  ASSERT_NE(hello, nullptr);
  EXPECT_EQ(hello->app.version, "2.10");
  EXPECT_EQ(hello->origin, "latest/stable");
  EXPECT_EQ(hello->detail, "38");
  const auto* core = Find(*inventory, policy::Platform::kSnap, "core22");
  ASSERT_NE(core, nullptr);
  EXPECT_EQ(core->app.version, "1033");  // no snap.yaml: the revision

  // Without state.json the /snap/<name>/current links are the inventory.
  std::filesystem::remove(dir + "/var/lib/snapd/state.json");
  auto from_links = CollectInventory(SystemPaths::UnderRoot(dir));
  ASSERT_TRUE(from_links.ok());
  ASSERT_EQ(from_links->entries.size(), 1u);
  EXPECT_EQ(from_links->entries[0].app.id, "hello");
  EXPECT_EQ(from_links->entries[0].app.version, "2.10");
  std::filesystem::remove_all(dir);
}

TEST(Inventory, FlatpakDeployOriginRejectsBadFraming) {
  // "local\0" + padding + framing offset 6 (1-byte offsets: the tuple is under 256 bytes).
  std::string good("local\0xyz\x06", 10);
  auto origin = FlatpakDeployOrigin(good);
  ASSERT_TRUE(origin.ok()) << origin.status().ToString();
  EXPECT_EQ(*origin, "local");
  EXPECT_FALSE(FlatpakDeployOrigin(std::string("local\0xyz\x40", 10)).ok());   // beyond the data
  EXPECT_FALSE(FlatpakDeployOrigin(std::string("loc\0al\0xy\x06", 10)).ok());  // NUL inside
  EXPECT_FALSE(FlatpakDeployOrigin(std::string("\x00", 1)).ok());
  EXPECT_FALSE(FlatpakDeployOrigin("").ok());
}

}  // namespace
}  // namespace appban::agent
