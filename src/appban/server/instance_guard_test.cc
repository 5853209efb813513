#include "appban/server/instance_guard.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

namespace appban::server {
namespace {

namespace fs = std::filesystem;

class LockDir {
 public:
  LockDir() {
    std::string pattern = (fs::temp_directory_path() / "appban-guard-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~LockDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(DataDirLock, SecondHolderIsRefusedWithTheFirstOnesPid) {
  LockDir dir;
  auto first = DataDirLock::Acquire(dir.path());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // A second server is another process: flock locks belong to open files, so try from a child.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto second = DataDirLock::Acquire(dir.path());
    bool refused = !second.ok() && second.status().code() == StatusCode::kFailedPrecondition &&
                   second.status().message().find("pid " + std::to_string(getppid())) != std::string::npos;
    _exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the second server was not refused";
  // Within one process a second open of the lock file conflicts too (flock is per open file).
  EXPECT_EQ(DataDirLock::Acquire(dir.path()).status().code(), StatusCode::kFailedPrecondition);
}

TEST(DataDirLock, ReleasedWhenTheHolderGoesAway) {
  LockDir dir;
  { ASSERT_TRUE(DataDirLock::Acquire(dir.path()).ok()); }
  EXPECT_TRUE(DataDirLock::Acquire(dir.path()).ok());
}

TEST(CheckPortFree, ARunningListenerEvenWithReusePortIsDetected) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  uint16_t port = ntohs(address.sin_port);

  Status busy = CheckPortFree("127.0.0.1", port);
  EXPECT_EQ(busy.code(), StatusCode::kFailedPrecondition) << busy.ToString();
  EXPECT_NE(busy.message().find(std::to_string(port)), std::string::npos);
  // The wildcard address of the same port is taken too.
  EXPECT_EQ(CheckPortFree("0.0.0.0", port).code(), StatusCode::kFailedPrecondition);
  close(fd);
  EXPECT_TRUE(CheckPortFree("127.0.0.1", port).ok());
  EXPECT_TRUE(CheckPortFree("127.0.0.1", 0).ok());
}

}  // namespace
}  // namespace appban::server
