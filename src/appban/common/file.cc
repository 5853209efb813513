#include "appban/common/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

namespace appban {
namespace {

std::string ErrnoText(int error) { return std::strerror(error); }

// Closes a file descriptor on scope exit.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Status OpenError(const std::string& path, int error) {
  if (error == ENOENT) return Status::NotFound(path + ": no such file");
  if (error == EACCES) return Status::PermissionDenied(path + ": permission denied");
  return Status::Unavailable(path + ": " + ErrnoText(error));
}

}  // namespace

Result<MappedFile> MappedFile::Open(const std::string& path) {
  FdGuard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return OpenError(path, errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return Status::Unavailable(path + ": " + ErrnoText(errno));
  if (S_ISDIR(info.st_mode)) return Status::InvalidArgument(path + ": is a directory");
  if (!S_ISREG(info.st_mode)) return Status::InvalidArgument(path + ": not a regular file");
  size_t size = static_cast<size_t>(info.st_size);
  if (size == 0) return MappedFile(path, nullptr, 0);
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (data == MAP_FAILED) return Status::Unavailable(path + ": mmap: " + ErrnoText(errno));
  return MappedFile(path, data, size);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Reset();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { Reset(); }

void MappedFile::ReleasePages(uint64_t offset, uint64_t length) const {
  if (data_ == nullptr || offset >= size_) return;
  length = std::min<uint64_t>(length, size_ - offset);
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t begin = (offset + page - 1) / page * page;
  uint64_t end = (offset + length) / page * page;
  if (end <= begin) return;
  // Advice only: failure changes nothing but memory use.
  ::madvise(static_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
}

void MappedFile::Reset() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

Result<std::string> ReadFileToString(const std::string& path, uint64_t max_bytes) {
  FdGuard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return OpenError(path, errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return Status::Unavailable(path + ": " + ErrnoText(errno));
  if (S_ISDIR(info.st_mode)) return Status::InvalidArgument(path + ": is a directory");
  if (static_cast<uint64_t>(info.st_size) > max_bytes) {
    return Status::LimitExceeded(path + ": " + std::to_string(info.st_size) + " bytes exceeds the limit of " +
                                 std::to_string(max_bytes));
  }
  std::string out;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable(path + ": read: " + ErrnoText(errno));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return Status::LimitExceeded(path + ": grew past the limit of " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

// Writes to an existing device or pipe (-o /dev/stdout, a FIFO) in place.
Status WriteInPlace(const std::string& path, std::string_view contents) {
  FdGuard fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) return OpenError(path, errno);
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd.get(), contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable(path + ": write: " + ErrnoText(errno));
    }
    written += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view contents, unsigned mode) {
  // Renaming over a device node (as root, -o /dev/null) would replace it with a regular file.
  struct stat existing {};
  if (::stat(path.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode)) {
    if (S_ISDIR(existing.st_mode)) return Status::InvalidArgument(path + ": is a directory");
    return WriteInPlace(path, contents);
  }
  std::filesystem::path target(path);
  std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : ".";
  std::string temp = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  FdGuard fd(::mkstemp(temp.data()));
  if (fd.get() < 0) return Status::Unavailable(temp + ": " + ErrnoText(errno));
  auto fail = [&](const char* what) {
    int error = errno;
    ::unlink(temp.c_str());
    return Status::Unavailable(path + ": " + what + ": " + ErrnoText(error));
  };
  if (::fchmod(fd.get(), mode) != 0) return fail("chmod");
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd.get(), contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync");
  if (::close(fd.release()) != 0) return fail("close");
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail("rename");
  FdGuard dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) ::fsync(dir_fd.get());
  return Status::Ok();
}

}  // namespace appban
