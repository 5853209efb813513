#include "appban/agent/state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/common/json.h"

namespace appban::agent {
namespace {

constexpr std::string_view kLockFile = "lock";
constexpr std::string_view kEventLog = "events.log";
constexpr std::string_view kAckedFile = "events.acked";
constexpr std::string_view kBundleMeta = "bundle_meta.json";
constexpr std::string_view kCheckpoints = "checkpoints.json";
constexpr std::string_view kIntentFile = "intent.json";

std::string_view ItemFile(StateItem item) {
  switch (item) {
    case StateItem::kCredential:
      return "credential";
    case StateItem::kServerCa:
      return "server_ca.pem";
    case StateItem::kPolicyKeys:
      return "policy_keys.pem";
    case StateItem::kBundle:
      return "bundle.json";
  }
  return "unknown";
}

Status Errno(std::string_view what, const std::string& path) {
  return Status::Unavailable(std::string(what) + " " + path + ": " + std::strerror(errno));
}

// A log record: "<sha256 of json, first 16 hex> <json>\n". The digest detects a record torn by a
// crash (or a flipped byte) so it is dropped rather than misread.
std::string EventRecord(const protocol::DeviceEvent& event) {
  std::string json = protocol::EventToJson(event).dump();
  return Sha256Hex(AsBytes(json)).substr(0, 16) + " " + json + "\n";
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Result<std::optional<std::string>> ReadOptional(const std::string& path, uint64_t max_bytes) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Errno("stat", path);
  }
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, max_bytes));
  return std::optional<std::string>(std::move(text));
}

}  // namespace

AgentState::AgentState(AgentState&& other) noexcept { *this = std::move(other); }

AgentState& AgentState::operator=(AgentState&& other) noexcept {
  if (this != &other) {
    if (log_fd_ >= 0) ::close(log_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    directory_ = std::move(other.directory_);
    limits_ = other.limits_;
    lock_fd_ = std::exchange(other.lock_fd_, -1);
    log_fd_ = std::exchange(other.log_fd_, -1);
    bundle_version_ = other.bundle_version_;
    acked_ = other.acked_;
    last_seq_ = other.last_seq_;
    pending_ = std::move(other.pending_);
    checkpoints_ = std::move(other.checkpoints_);
    intent_ = std::move(other.intent_);
  }
  return *this;
}

AgentState::~AgentState() {
  if (log_fd_ >= 0) ::close(log_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<AgentState> AgentState::Open(const std::string& directory, const StateLimits& limits) {
  if (directory.empty()) return Status::InvalidArgument("agent state directory is empty");
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) return Errno("mkdir", directory);
  AgentState state;
  state.directory_ = directory;
  state.limits_ = limits;
  std::string lock_path = state.PathOf(kLockFile);
  state.lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (state.lock_fd_ < 0) return Errno("open", lock_path);
  if (::flock(state.lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::FailedPrecondition("agent state " + directory + " is in use by another process");
    }
    return Errno("flock", lock_path);
  }
  APPBAN_RETURN_IF_ERROR(state.LoadMeta());
  APPBAN_RETURN_IF_ERROR(state.LoadEvents());
  APPBAN_RETURN_IF_ERROR(state.LoadIntent());
  return state;
}

Status AgentState::LoadMeta() {
  APPBAN_ASSIGN_OR_RETURN(auto meta, ReadOptional(PathOf(kBundleMeta), limits_.max_small_file_bytes));
  if (meta) {
    APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(*meta, limits_.max_small_file_bytes, 4, kBundleMeta));
    if (!json.is_object() || !json.contains("version") || !json["version"].is_number_integer()) {
      return Status::Corruption(PathOf(kBundleMeta) + ": no integer \"version\"");
    }
    bundle_version_ = json["version"].get<int64_t>();
  }
  APPBAN_ASSIGN_OR_RETURN(auto checkpoints, ReadOptional(PathOf(kCheckpoints), limits_.max_small_file_bytes));
  if (checkpoints) {
    APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(*checkpoints, limits_.max_small_file_bytes, 4, kCheckpoints));
    if (!json.is_object()) return Status::Corruption(PathOf(kCheckpoints) + ": not an object");
    for (const auto& [name, value] : json.items()) {
      if (value.is_number_integer()) checkpoints_.emplace_back(name, value.get<int64_t>());
    }
  }
  APPBAN_ASSIGN_OR_RETURN(auto acked, ReadOptional(PathOf(kAckedFile), limits_.max_small_file_bytes));
  if (acked) {
    errno = 0;
    char* end = nullptr;
    long long value = std::strtoll(acked->c_str(), &end, 10);
    if (errno != 0 || end == acked->c_str() || value < 0) {
      return Status::Corruption(PathOf(kAckedFile) + ": not a sequence number");
    }
    acked_ = value;
  }
  last_seq_ = acked_;
  return Status::Ok();
}

Status AgentState::LoadEvents() {
  std::string path = PathOf(kEventLog);
  APPBAN_ASSIGN_OR_RETURN(auto log, ReadOptional(path, limits_.max_event_log_bytes));
  bool torn = false;
  if (log) {
    std::string_view rest(*log);
    while (!rest.empty()) {
      size_t newline = rest.find('\n');
      if (newline == std::string_view::npos) {  // the crash hit mid-record: never acknowledged
        torn = true;
        break;
      }
      std::string_view line = rest.substr(0, newline);
      rest.remove_prefix(newline + 1);
      size_t space = line.find(' ');
      std::string_view json_text = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
      if (space != 16 || Sha256Hex(AsBytes(json_text)).substr(0, 16) != line.substr(0, 16)) {
        torn = true;
        continue;
      }
      auto json = ParseJsonBounded(json_text, limits_.max_small_file_bytes, 8, kEventLog);
      if (!json.ok()) {
        torn = true;
        continue;
      }
      auto event = protocol::EventFromJson(*json, kEventLog);
      if (!event.ok()) {
        torn = true;
        continue;
      }
      last_seq_ = std::max(last_seq_, event->seq);
      if (event->seq > acked_) pending_.push_back(std::move(*event));
    }
  }
  // Start from a clean file (without torn records) so later appends never follow garbage.
  if (torn) APPBAN_RETURN_IF_ERROR(RewriteLog());
  log_fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log_fd_ < 0) return Errno("open", path);
  return Status::Ok();
}

Status AgentState::RewriteLog() {
  std::string contents;
  for (const auto& event : pending_) contents += EventRecord(event);
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(PathOf(kEventLog), contents, 0600));
  if (log_fd_ >= 0) {
    ::close(log_fd_);
    std::string path = PathOf(kEventLog);
    log_fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd_ < 0) return Errno("open", path);
  }
  return Status::Ok();
}

Status AgentState::Write(StateItem item, std::string_view contents) {
  uint64_t max = item == StateItem::kBundle ? limits_.max_bundle_bytes : limits_.max_small_file_bytes;
  if (contents.size() > max) {
    return Status::LimitExceeded(std::string(ItemFile(item)) + " is " + std::to_string(contents.size()) +
                                 " bytes, limit " + std::to_string(max));
  }
  return WriteFileAtomically(PathOf(ItemFile(item)), contents, 0600);
}

Result<std::optional<std::string>> AgentState::Read(StateItem item) const {
  uint64_t max = item == StateItem::kBundle ? limits_.max_bundle_bytes : limits_.max_small_file_bytes;
  return ReadOptional(PathOf(ItemFile(item)), max);
}

Status AgentState::SetBundleVersion(int64_t version, int64_t verified_at) {
  Json json = {{"version", version}, {"verified_at", verified_at}};
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(PathOf(kBundleMeta), json.dump(), 0600));
  bundle_version_ = version;
  return Status::Ok();
}

Status AgentState::SetCheckpoint(const std::string& name, int64_t value) {
  auto updated = checkpoints_;
  bool found = false;
  for (auto& [key, stored] : updated) {
    if (key == name) {
      stored = value;
      found = true;
    }
  }
  if (!found) updated.emplace_back(name, value);
  Json json = Json::object();
  for (const auto& [key, stored] : updated) json[key] = stored;
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(PathOf(kCheckpoints), json.dump(), 0600));
  checkpoints_ = std::move(updated);
  return Status::Ok();
}

std::optional<int64_t> AgentState::Checkpoint(const std::string& name) const {
  for (const auto& [key, value] : checkpoints_) {
    if (key == name) return value;
  }
  return std::nullopt;
}

Status AgentState::LoadIntent() {
  std::string path = PathOf(kIntentFile);
  APPBAN_ASSIGN_OR_RETURN(auto text, ReadOptional(path, limits_.max_small_file_bytes));
  if (!text) return Status::Ok();
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(*text, limits_.max_small_file_bytes, 4, kIntentFile));
  auto string_member = [&](const char* name) {
    return json.is_object() && json.contains(name) && json[name].is_string() ? json[name].get<std::string>() : "";
  };
  Intent intent{string_member("platform"), string_member("app"), string_member("rule"), 0};
  if (json.is_object() && json.contains("at") && json["at"].is_number_integer()) intent.at = json["at"].get<int64_t>();
  if (intent.platform.empty() || intent.app.empty()) return Status::Corruption(path + ": no platform or app");
  intent_ = std::move(intent);
  return Status::Ok();
}

Status AgentState::ReserveEventSpace() {
  std::string path = PathOf(kEventLog);
  struct stat info;
  if (::fstat(log_fd_, &info) != 0) return Errno("fstat", path);
  auto reserve = static_cast<off_t>(limits_.event_log_reserve_bytes);
  if (::fallocate(log_fd_, FALLOC_FL_KEEP_SIZE, info.st_size, reserve) == 0) return Status::Ok();
  if (errno != EOPNOTSUPP) return Errno("reserving space at the end of", path);
  // A file system without fallocate: at least make sure the space is there now.
  struct statvfs fs;
  if (::fstatvfs(log_fd_, &fs) != 0) return Errno("fstatvfs", path);
  if (static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < limits_.event_log_reserve_bytes) {
    errno = ENOSPC;
    return Errno("reserving space at the end of", path);
  }
  return Status::Ok();
}

Status AgentState::RecordIntent(const Intent& intent) {
  Json json = {{"platform", intent.platform}, {"app", intent.app}, {"rule", intent.rule_id}, {"at", intent.at}};
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(PathOf(kIntentFile), json.dump(), 0600));
  intent_ = intent;
  return Status::Ok();
}

Status AgentState::ClearIntent() {
  std::string path = PathOf(kIntentFile);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("unlink", path);
  int dir_fd = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  intent_.reset();
  return Status::Ok();
}

Result<int64_t> AgentState::Append(protocol::DeviceEvent event) {
  if (pending_.size() >= limits_.max_pending_events) {
    return Status::LimitExceeded("event queue holds " + std::to_string(pending_.size()) +
                                 " unacknowledged events, limit " + std::to_string(limits_.max_pending_events));
  }
  if (event.detail.size() > protocol::kProtocolLimits.max_detail) {
    event.detail.resize(protocol::kProtocolLimits.max_detail - 3);
    event.detail += "...";
  }
  event.seq = last_seq_ + 1;
  std::string record = EventRecord(event);
  std::string path = PathOf(kEventLog);
  struct stat before;
  if (::fstat(log_fd_, &before) != 0) return Errno("fstat", path);
  Status written = WriteAll(log_fd_, record, path);
  if (written.ok() && ::fdatasync(log_fd_) != 0) written = Errno("fdatasync", path);
  if (!written.ok()) {
    // A partial record (a full disk) would swallow the next one appended after it: cut it off.
    (void)::ftruncate(log_fd_, before.st_size);
    return written;
  }
  last_seq_ = event.seq;
  pending_.push_back(std::move(event));
  return last_seq_;
}

std::vector<protocol::DeviceEvent> AgentState::Pending(size_t max_count) const {
  size_t count = std::min(max_count, pending_.size());
  return {pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(count)};
}

Status AgentState::Acknowledge(int64_t acked) {
  if (acked <= acked_) return Status::Ok();
  if (acked > last_seq_) {
    return Status::InvalidArgument("server acknowledged seq " + std::to_string(acked) + " but the last event is " +
                                   std::to_string(last_seq_));
  }
  // The acked mark first: if we crash before the log is rewritten, reopening skips the acked ones.
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(PathOf(kAckedFile), std::to_string(acked), 0600));
  acked_ = acked;
  std::erase_if(pending_, [acked](const protocol::DeviceEvent& event) { return event.seq <= acked; });
  return RewriteLog();
}

}  // namespace appban::agent
