// Hardening: the database holds device credential hashes, API token hashes and the audit chain.
// It used to be created mode 0644 (with its -wal and -shm) when the data directory was 0755.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "appban/store/fleet.h"
#include "appban/store/store.h"

namespace appban::store {
namespace {

namespace fs = std::filesystem;

mode_t ModeOf(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

class PermissionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "appban-perm-XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
    fs::permissions(dir_, fs::perms(0755));
    saved_umask_ = ::umask(0);  // the laxest umask there is
  }
  void TearDown() override {
    ::umask(saved_umask_);
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  fs::path dir_;
  mode_t saved_umask_ = 0;
};

TEST_F(PermissionsTest, NewDatabaseAndItsWalAndShmAreOwnerOnly) {
  std::string db = (dir_ / "appban.db").string();
  auto store = OpenSqliteStore(db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto fleet = OpenSqliteFleetStore(db);
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  for (const char* name : {"appban.db", "appban.db-wal", "appban.db-shm"}) {
    ASSERT_TRUE(fs::exists(dir_ / name)) << name;
    EXPECT_EQ(ModeOf(dir_ / name), 0600u) << name;
  }
}

TEST_F(PermissionsTest, ExistingWorldReadableFilesAreTightenedOnOpen) {
  for (const char* name : {"appban.db", "appban.db-wal"}) {
    std::ofstream(dir_ / name).flush();
    fs::permissions(dir_ / name, fs::perms(0644));
  }
  auto store = OpenSqliteStore((dir_ / "appban.db").string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(ModeOf(dir_ / "appban.db"), 0600u);
  EXPECT_EQ(ModeOf(dir_ / "appban.db-wal"), 0600u);
}

TEST_F(PermissionsTest, ADatabasePathThatIsASymbolicLinkIsRefused) {
  std::ofstream(dir_ / "elsewhere.db").flush();
  fs::create_symlink(dir_ / "elsewhere.db", dir_ / "appban.db");
  auto store = OpenSqliteStore((dir_ / "appban.db").string());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("symbolic link"), std::string::npos) << store.status().ToString();
}

}  // namespace
}  // namespace appban::store
