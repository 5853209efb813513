#include "appban/sim/inventory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "appban/common/crypto.h"
#include "appban/protocol/messages.h"

namespace appban::sim {
namespace {

InventoryOptions Options(uint64_t seed, double banned_fraction) {
  InventoryOptions options;
  options.seed = seed;
  options.banned_fraction = banned_fraction;
  auto banned = ParseAppList("deb:wechat,deb:kesl");
  EXPECT_TRUE(banned.ok());
  options.banned = *banned;
  return options;
}

TEST(SimInventory, EmbeddedListHasAboutThreeHundredDistinctDebianNames) {
  auto names = CommonDebPackages();
  std::set<std::string_view> distinct(names.begin(), names.end());
  EXPECT_EQ(distinct.size(), names.size());
  EXPECT_GE(names.size(), 300u);
  for (std::string_view name : names) {
    // Debian policy 5.6.1: lower case letters, digits, + - . ; at least two characters, starting alphanumeric.
    ASSERT_GE(name.size(), 2u) << name;
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(name[0]))) << name;
    for (char c : name) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') << name;
    }
  }
}

TEST(SimInventory, SameSeedAndIndexGiveTheSameInventory) {
  auto a = AppCatalog::Make(Options(7, 0.3));
  auto b = AppCatalog::Make(Options(7, 0.3));
  ASSERT_TRUE(a.ok() && b.ok());
  for (uint64_t device = 0; device < 50; ++device) {
    auto apps_a = a->Materialize(a->DeviceApps(device));
    auto apps_b = b->Materialize(b->DeviceApps(device));
    EXPECT_EQ(protocol::InventoryHash(apps_a), protocol::InventoryHash(apps_b)) << device;
  }
  // Another seed gives other inventories.
  auto c = AppCatalog::Make(Options(8, 0.3));
  ASSERT_TRUE(c.ok());
  EXPECT_NE(protocol::InventoryHash(a->Materialize(a->DeviceApps(3))),
            protocol::InventoryHash(c->Materialize(c->DeviceApps(3))));
  // Devices differ from each other.
  std::set<std::string> hashes;
  for (uint64_t device = 0; device < 50; ++device)
    hashes.insert(protocol::InventoryHash(a->Materialize(a->DeviceApps(device))));
  EXPECT_EQ(hashes.size(), 50u);
}

TEST(SimInventory, HashIsTheSha256OfTheCanonicalListWhateverTheOrder) {
  auto catalog = AppCatalog::Make(Options(1, 0.5));
  ASSERT_TRUE(catalog.ok());
  auto apps = catalog->Materialize(catalog->DeviceApps(11));
  std::string canonical = protocol::CanonicalInventory(apps);
  std::string expected = Sha256Hex({reinterpret_cast<const uint8_t*>(canonical.data()), canonical.size()});
  EXPECT_EQ(protocol::InventoryHash(apps), expected);
  std::mt19937 rng(5);
  std::shuffle(apps.begin(), apps.end(), rng);
  EXPECT_EQ(protocol::InventoryHash(apps), expected);
}

TEST(SimInventory, SizesAndBannedShareFollowTheOptions) {
  auto catalog = AppCatalog::Make(Options(3, 0.25));
  ASSERT_TRUE(catalog.ok());
  const int kDevices = 4000;
  int with_banned = 0;
  for (int device = 0; device < kDevices; ++device) {
    auto apps = catalog->DeviceApps(device);
    size_t common = 0, banned = 0;
    for (AppIndex index : apps) (catalog->IsBanned(index) ? banned : common)++;
    EXPECT_GE(common, 60u);
    EXPECT_LE(common, 150u);
    EXPECT_LE(banned, 2u);
    if (banned > 0) ++with_banned;
    EXPECT_TRUE(std::is_sorted(apps.begin(), apps.end()));
    EXPECT_EQ(std::adjacent_find(apps.begin(), apps.end()), apps.end());
  }
  // Binomial(4000, 0.25): mean 1000, standard deviation ~27; 5 sigma either side.
  EXPECT_NEAR(with_banned, 1000, 140);
}

TEST(SimInventory, AppListParsingNamesWhatIsWrong) {
  auto apps = ParseAppList("deb:wechat,flatpak:com.example.App");
  ASSERT_TRUE(apps.ok());
  ASSERT_EQ(apps->size(), 2u);
  EXPECT_EQ((*apps)[1].platform, policy::Platform::kFlatpak);
  EXPECT_EQ((*apps)[1].id, "com.example.App");
  auto bad = ParseAppList("wechat");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("platform:identifier"), std::string::npos);
  EXPECT_FALSE(ParseAppList("nokia:snake").ok());
}

}  // namespace
}  // namespace appban::sim
