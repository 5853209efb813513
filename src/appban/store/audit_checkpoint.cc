#include "appban/store/audit_checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "appban/common/file.h"
#include "appban/common/json.h"

namespace appban::store {
namespace {

constexpr uint64_t kMaxCheckpointBytes = 4096;

class FileLock {
 public:
  static Result<FileLock> Take(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Status::Unavailable("cannot open " + path);
    FileLock lock(fd);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) return Status::Unavailable("cannot lock " + path);
    }
    return lock;
  }
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

// The seq the head file records, without checking its signature (0 when absent or unreadable):
// only used to keep the file from moving backwards.
int64_t RecordedSeq(const std::string& path) {
  auto text = ReadFileToString(path, kMaxCheckpointBytes);
  if (!text.ok()) return 0;
  auto json = ParseJsonBounded(*text, kMaxCheckpointBytes, 4, "audit checkpoint");
  if (!json.ok() || !json->is_object() || !json->contains("seq") || !(*json)["seq"].is_number_integer()) return 0;
  return (*json)["seq"].get<int64_t>();
}

// Root running a command on the host (`server backup`, `recover-admin`) appends to the chain of a
// server that runs as another user: the rewritten checkpoint must stay readable by that server,
// or its next `audit verify` would report the checkpoint unreadable. SQLite does the same for the
// -wal and -shm files it creates as root.
Status KeepOwner(const std::string& dir, const std::string& path) {
  if (::geteuid() != 0) return Status::Ok();
  struct stat owner {};
  if (::stat(dir.c_str(), &owner) != 0 || owner.st_uid == 0) return Status::Ok();
  if (::chown(path.c_str(), owner.st_uid, owner.st_gid) != 0) {
    return Status::Unavailable("cannot give " + path + " to the owner of " + dir + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

std::string AuditCheckpointDir(const std::string& database_path) { return database_path + ".audit"; }

Result<policy::SigningKey> LoadAuditCheckpointKey(const std::string& dir, bool create) {
  std::string key_path = dir + "/checkpoint.key";
  std::error_code error;
  if (std::filesystem::exists(key_path, error)) return policy::SigningKey::LoadPrivateKeyFile(key_path);
  if (!create) {
    return Status::FailedPrecondition("the audit checkpoint key " + key_path +
                                      " is missing: the audit log's head can no longer be anchored; restore the "
                                      "directory from a backup (docs/policy.md, Audit chain; on PostgreSQL a "
                                      "node's start makes a new key and records that in the chain)");
  }
  std::filesystem::create_directories(dir, error);
  if (error) return Status::Unavailable("cannot create " + dir + ": " + error.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, error);
  if (error) return Status::Unavailable("cannot restrict " + dir + ": " + error.message());
  APPBAN_ASSIGN_OR_RETURN(policy::SigningKey key, policy::SigningKey::Generate());
  APPBAN_RETURN_IF_ERROR(key.SavePrivateKeyFile(key_path));
  APPBAN_RETURN_IF_ERROR(policy::SavePublicKeyFile(key.public_key(), dir + "/checkpoint.pub"));
  return key;
}

Status WriteAuditCheckpoint(const std::string& dir, const policy::SigningKey& key, const AuditHead& head) {
  APPBAN_ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(dir + "/lock"));
  APPBAN_RETURN_IF_ERROR(KeepOwner(dir, dir + "/lock"));
  std::string path = dir + "/head";
  // Another process may have committed (and checkpointed) a later entry after ours.
  if (RecordedSeq(path) >= head.seq) return Status::Ok();
  APPBAN_ASSIGN_OR_RETURN(std::string text, SignAuditCheckpoint(head, key));
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(path, text + "\n", 0600));
  return KeepOwner(dir, path);
}

AuditCheckpointReading ReadAuditCheckpoint(const std::string& dir) {
  using State = AuditCheckpointReading::State;
  AuditCheckpointReading reading;
  auto key = policy::LoadPublicKeyFile(dir + "/checkpoint.pub");
  std::error_code error;
  bool head_exists = std::filesystem::exists(dir + "/head", error);
  if (!key.ok()) {
    reading.state = head_exists ? State::kInvalid : State::kAbsent;
    reading.problem = dir + "/checkpoint.pub: " + key.status().message();
    return reading;
  }
  reading.key_id = key->key_id;
  if (!head_exists) {
    reading.state = State::kAbsent;
    reading.problem = dir + "/head does not exist";
    return reading;
  }
  auto text = ReadFileToString(dir + "/head", kMaxCheckpointBytes);
  if (!text.ok()) {
    reading.state = State::kInvalid;
    reading.problem = text.status().message();
    return reading;
  }
  while (!text->empty() && text->back() == '\n') text->pop_back();
  auto head = ParseAuditCheckpoint(*text, *key);
  if (!head.ok()) {
    reading.state = State::kInvalid;
    reading.problem = head.status().message();
    return reading;
  }
  reading.state = State::kValid;
  reading.head = *head;
  return reading;
}

Result<AuditCheckpointKeeper> AuditCheckpointKeeper::Open(std::string dir) {
  APPBAN_ASSIGN_OR_RETURN(policy::SigningKey key, LoadAuditCheckpointKey(dir, false));
  return AuditCheckpointKeeper(std::move(dir), std::move(key));
}

Status AuditCheckpointKeeper::WritePending() {
  if (!pending_) return Status::Ok();
  AuditHead head = std::move(*pending_);
  pending_.reset();
  Status written = WriteAuditCheckpoint(dir_, key_, head);
  if (!written.ok()) {
    return Status::Unavailable("committed, but the signed audit checkpoint for entry " + std::to_string(head.seq) +
                               " could not be written in " + dir_ + ": " + written.message());
  }
  return Status::Ok();
}

}  // namespace appban::store
