#include "appban/server/instance_guard.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>

namespace appban::server {
namespace {

constexpr size_t kMaxPidText = 32;
// A server that was just killed may still have workers on their way out (they follow their
// supervisor through PR_SET_PDEATHSIG) holding the lock and the port for a moment: a restart
// waits this long for them before concluding that another server is running.
constexpr auto kHolderExitGrace = std::chrono::seconds(5);
constexpr auto kRetryPause = std::chrono::milliseconds(50);

}  // namespace

Result<DataDirLock> DataDirLock::Acquire(const std::string& data_dir) {
  const std::string path = data_dir + "/server.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Unavailable("cannot open " + path + ": " + std::strerror(errno));
  DataDirLock lock(fd);
  const auto give_up = std::chrono::steady_clock::now() + kHolderExitGrace;
  int rc = 0;
  while ((rc = ::flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EWOULDBLOCK &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(kRetryPause);
  }
  if (rc != 0) {
    if (errno != EWOULDBLOCK) return Status::Unavailable("cannot lock " + path + ": " + std::strerror(errno));
    char text[kMaxPidText] = {};
    ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    std::string holder = n > 0 ? std::string(text, static_cast<size_t>(n)) : std::string("?");
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return Status::FailedPrecondition("another appban server (pid " + holder + ") is using the data directory " +
                                      data_dir + "; stop it first, or give this server another data directory");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return Status::Unavailable("cannot write " + path + ": " + std::strerror(errno));
  }
  return lock;
}

DataDirLock::DataDirLock(DataDirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

DataDirLock& DataDirLock::operator=(DataDirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status CheckPortFree(const std::string& address, uint16_t port) {
  if (port == 0) return Status::Ok();
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int error = ::getaddrinfo(address.c_str(), service.c_str(), &hints, &found); error != 0) {
    return Status::InvalidArgument("listen.address \"" + address + "\": " + gai_strerror(error));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, freeaddrinfo);
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal(std::string("socket: ") + std::strerror(errno));
  // SO_REUSEADDR only so that connections of a previous run lingering in TIME_WAIT do not count
  // as "in use"; it never allows sharing a port that has a listener.
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const auto give_up = std::chrono::steady_clock::now() + kHolderExitGrace;
  int rc = 0;
  while ((rc = ::bind(fd, found->ai_addr, found->ai_addrlen)) != 0 && errno == EADDRINUSE &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(kRetryPause);
  }
  int error = errno;
  ::close(fd);
  if (rc == 0) return Status::Ok();
  if (error == EADDRINUSE) {
    return Status::FailedPrecondition("port " + service + " on " + address +
                                      " is already in use by another process (another appban server?); stop it "
                                      "or set listen.port");
  }
  return Status::Unavailable("cannot listen on " + address + ":" + service + ": " + std::strerror(error));
}

}  // namespace appban::server
