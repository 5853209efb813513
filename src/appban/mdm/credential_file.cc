#include "appban/mdm/credential_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace appban::mdm {

Result<std::string> ReadCredentialFile(const std::string& path, uint64_t max_bytes, std::string_view what) {
  const std::string name(what);
  // Open first, then check the descriptor: the file checked is the file read.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::NotFound(path + ": cannot open " + name + " file");
  struct stat info {};
  std::string text;
  Status status;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    status = Status::PermissionDenied(path + ": " + name + " is not a regular file");
  } else if ((info.st_mode & 077) != 0) {
    status = Status::PermissionDenied(path + ": " + name + " file must be mode 0600 (readable by its owner only)");
  } else if (static_cast<uint64_t>(info.st_size) > max_bytes) {
    status = Status::LimitExceeded(path + ": larger than " + name + " file may be (" + std::to_string(max_bytes) +
                                   " bytes)");
  } else {
    text.resize(static_cast<size_t>(info.st_size));
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::read(fd, text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    if (done != text.size()) status = Status::Unavailable(path + ": short read");
  }
  ::close(fd);
  APPBAN_RETURN_IF_ERROR(status);
  return text;
}

Status EnsurePrivateDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::Unavailable("cannot create " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace appban::mdm
