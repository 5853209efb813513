#include "appban/common/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace appban {
namespace {

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("appban-file-test-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(TempDirTest, AtomicWriteReplacesAFileWithTheRequestedMode) {
  std::string path = (dir_ / "report.json").string();
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "new contents", 0600).ok());
  auto text = ReadFileToString(path, 1024);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "new contents");
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), std::filesystem::directory_iterator()), 1);
}

TEST_F(TempDirTest, AtomicWriteToADeviceWritesInPlaceAndKeepsTheDevice) {
  ASSERT_TRUE(WriteFileAtomically("/dev/null", "discarded").ok());
  struct stat info {};
  ASSERT_EQ(::stat("/dev/null", &info), 0);
  EXPECT_TRUE(S_ISCHR(info.st_mode)) << "/dev/null was replaced by a regular file";
  Status directory = WriteFileAtomically(dir_.string(), "x");
  EXPECT_EQ(directory.code(), StatusCode::kInvalidArgument);
}

TEST_F(TempDirTest, ReadRefusesFilesOverTheLimitAndNamesMissingOnes) {
  std::string path = (dir_ / "big").string();
  ASSERT_TRUE(WriteFileAtomically(path, std::string(2048, 'x')).ok());
  auto big = ReadFileToString(path, 1024);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kLimitExceeded);
  auto missing = ReadFileToString((dir_ / "nope").string(), 1024);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto mapped = MappedFile::Open((dir_ / "nope").string());
  EXPECT_EQ(mapped.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace appban
