#include "appban/server/backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/common/json.h"
#include "appban/net/tls.h"
#include "appban/store/audit_checkpoint.h"
#include "appban/store/store.h"

namespace appban::server {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDatabaseDir = "database";
constexpr std::string_view kDataDir = "data";
constexpr std::string_view kDatabaseName = "appban.db";
constexpr size_t kCopyChunkBytes = 1 << 20;

class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

Status SyncPath(const std::string& path) {
  Descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::Unavailable(Errno("cannot open " + path + " to sync it"));
  if (::fsync(fd.get()) != 0) return Status::Unavailable(Errno("cannot sync " + path));
  return Status::Ok();
}

// Reads `from` in chunks, hashing it and, when `to` is not empty, writing a copy (mode `mode`,
// synced). Refuses files larger than `max_bytes` and anything but a regular file.
Result<BackupFile> CopyHashing(const std::string& from, const std::string& to, unsigned mode, uint64_t max_bytes) {
  Descriptor in(::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (in.get() < 0) return Status::Unavailable(Errno("cannot read " + from));
  struct stat info {};
  if (::fstat(in.get(), &info) != 0) return Status::Unavailable(Errno("cannot stat " + from));
  if (!S_ISREG(info.st_mode)) return Status::FailedPrecondition(from + " is not a regular file");
  if (static_cast<uint64_t>(info.st_size) > max_bytes) {
    return Status::LimitExceeded(from + " is " + std::to_string(info.st_size) + " bytes, more than the limit of " +
                                 std::to_string(max_bytes));
  }
  Descriptor out(to.empty() ? -1 : ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!to.empty() && out.get() < 0) return Status::Unavailable(Errno("cannot create " + to));
  if (!to.empty() && ::fchmod(out.get(), mode) != 0) return Status::Unavailable(Errno("cannot chmod " + to));
  Sha256Hasher hasher;
  std::string buffer(kCopyChunkBytes, '\0');
  BackupFile file;
  file.mode = mode;
  while (true) {
    ssize_t got = ::read(in.get(), buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Status::Unavailable(Errno("cannot read " + from));
    if (got == 0) break;
    file.bytes += static_cast<uint64_t>(got);
    if (file.bytes > max_bytes)
      return Status::LimitExceeded(from + " grew past the limit of " + std::to_string(max_bytes));
    hasher.Update(Bytes(reinterpret_cast<const uint8_t*>(buffer.data()), static_cast<size_t>(got)));
    for (ssize_t written = 0; !to.empty() && written < got;) {
      ssize_t n = ::write(out.get(), buffer.data() + written, static_cast<size_t>(got - written));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::Unavailable(Errno("cannot write " + to));
      written += n;
    }
  }
  if (!to.empty() && ::fsync(out.get()) != 0) return Status::Unavailable(Errno("cannot sync " + to));
  file.sha256 = HexLower(hasher.Finish());
  return file;
}

Status MakePrivateDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0) return Status::Unavailable(Errno("cannot create " + path));
  if (::chmod(path.c_str(), 0700) != 0) return Status::Unavailable(Errno("cannot chmod " + path));
  return Status::Ok();
}

// Removes a staging directory on every path that does not hand it over.
class StagingDirectory {
 public:
  explicit StagingDirectory(std::string path) : path_(std::move(path)) {}
  StagingDirectory(const StagingDirectory&) = delete;
  StagingDirectory& operator=(const StagingDirectory&) = delete;
  ~StagingDirectory() {
    if (path_.empty()) return;
    std::error_code error;
    fs::remove_all(path_, error);
  }
  const std::string& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

std::string HiddenSibling(const std::string& path, std::string_view purpose) {
  fs::path target = fs::absolute(fs::path(path)).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  return (target.parent_path() /
          ("." + target.filename().string() + "." + std::string(purpose) + "-" + std::to_string(::getpid())))
      .string();
}

// `path` relative to `root` when it lies inside it ("" when it is `root`, nullopt when outside).
std::optional<std::string> RelativeInside(const std::string& path, const std::string& root) {
  fs::path a = fs::weakly_canonical(fs::absolute(path));
  fs::path b = fs::weakly_canonical(fs::absolute(root));
  fs::path relative = a.lexically_relative(b);
  if (relative.empty() || *relative.begin() == "..") return std::nullopt;
  return relative == "." ? std::string() : relative.string();
}

bool IsAtomicWriteLeftover(const std::string& name) {
  return name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos;
}

std::string ModeText(unsigned mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode & 07777);
  return text;
}

Json ManifestJson(const BackupReport& report) {
  Json files = Json::array();
  for (const BackupFile& file : report.files) {
    files.push_back(
        {{"path", file.path}, {"bytes", file.bytes}, {"sha256", file.sha256}, {"mode", ModeText(file.mode)}});
  }
  Json left_out = Json::array();
  for (const BackupLeftOut& item : report.left_out) left_out.push_back({{"path", item.path}, {"why", item.why}});
  Json rows = Json::object();
  for (const auto& [table, count] : report.database.row_counts) rows[table] = count;
  Json database = {{"path", std::string(kDatabaseDir) + "/" + std::string(kDatabaseName)},
                   {"schema_version", report.database.schema_version},
                   {"audit_entries", report.database.audit.entries},
                   {"audit_head", report.database.audit.head_hash},
                   {"rows", rows}};
  return {{"format", kBackupFormat},
          {"created_at", FormatTimestamp(report.created_at)},
          {"source_data_dir", report.source_data_dir},
          {"database", database},
          {"policy_key_id", report.policy_key_id},
          {"ca_sha256", report.ca_sha256},
          {"files", files},
          {"left_out", left_out}};
}

// A manifest member, with the error naming it.
template <typename T>
Result<T> Member(const Json& object, const char* name, const std::string& where) {
  if (!object.is_object() || !object.contains(name)) return Status::Corruption(where + ": missing \"" + name + "\"");
  try {
    return object.at(name).get<T>();
  } catch (const Json::exception&) {
    return Status::Corruption(where + ": \"" + name + "\" has the wrong type");
  }
}

// A path from the manifest: relative, inside database/ or data/, no "..", no empty or dot parts.
Status CheckManifestPath(const std::string& path) {
  fs::path p(path);
  if (path.empty() || p.is_absolute() || path.find('\0') != std::string::npos || path.size() > 4096)
    return Status::Corruption("manifest path \"" + path + "\" is not a relative path");
  std::string first = p.begin()->string();
  if (first != kDatabaseDir && first != kDataDir)
    return Status::Corruption("manifest path \"" + path + "\" is outside database/ and data/");
  for (const fs::path& part : p) {
    if (part == ".." || part == "." || part.empty())
      return Status::Corruption("manifest path \"" + path + "\" has a \"" + part.string() + "\" component");
  }
  return Status::Ok();
}

Result<BackupReport> ParseManifest(const std::string& location) {
  const std::string manifest_path = location + "/" + std::string(kBackupManifestName);
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(manifest_path, kMaxBackupManifestBytes));
  APPBAN_ASSIGN_OR_RETURN(Json manifest, ParseJsonBounded(text, kMaxBackupManifestBytes, 8, manifest_path));
  APPBAN_ASSIGN_OR_RETURN(std::string format, Member<std::string>(manifest, "format", manifest_path));
  if (format != kBackupFormat) {
    return Status::Unsupported(manifest_path + ": format \"" + format + "\" is not " + std::string(kBackupFormat));
  }
  BackupReport report;
  report.location = location;
  APPBAN_ASSIGN_OR_RETURN(std::string created, Member<std::string>(manifest, "created_at", manifest_path));
  APPBAN_ASSIGN_OR_RETURN(report.created_at, ParseTimestamp(created));
  APPBAN_ASSIGN_OR_RETURN(report.source_data_dir, Member<std::string>(manifest, "source_data_dir", manifest_path));
  APPBAN_ASSIGN_OR_RETURN(report.policy_key_id, Member<std::string>(manifest, "policy_key_id", manifest_path));
  APPBAN_ASSIGN_OR_RETURN(report.ca_sha256, Member<std::string>(manifest, "ca_sha256", manifest_path));
  APPBAN_ASSIGN_OR_RETURN(Json database, Member<Json>(manifest, "database", manifest_path));
  APPBAN_ASSIGN_OR_RETURN(report.database.audit.entries, Member<int64_t>(database, "audit_entries", manifest_path));
  APPBAN_ASSIGN_OR_RETURN(report.database.audit.head_hash, Member<std::string>(database, "audit_head", manifest_path));
  APPBAN_ASSIGN_OR_RETURN(Json files, Member<Json>(manifest, "files", manifest_path));
  if (!files.is_array()) return Status::Corruption(manifest_path + ": \"files\" is not a list");
  if (files.size() > kMaxBackupFiles) {
    return Status::LimitExceeded(manifest_path + ": more than " + std::to_string(kMaxBackupFiles) + " files");
  }
  for (const Json& entry : files) {
    BackupFile file;
    APPBAN_ASSIGN_OR_RETURN(file.path, Member<std::string>(entry, "path", manifest_path));
    APPBAN_RETURN_IF_ERROR(CheckManifestPath(file.path));
    APPBAN_ASSIGN_OR_RETURN(file.bytes, Member<uint64_t>(entry, "bytes", manifest_path));
    APPBAN_ASSIGN_OR_RETURN(file.sha256, Member<std::string>(entry, "sha256", manifest_path));
    APPBAN_ASSIGN_OR_RETURN(std::string mode, Member<std::string>(entry, "mode", manifest_path));
    char* end = nullptr;
    unsigned long parsed = std::strtoul(mode.c_str(), &end, 8);
    if (mode.empty() || *end != '\0' || parsed > 0777) {
      return Status::Corruption(manifest_path + ": " + file.path + ": mode \"" + mode + "\" is not an octal file mode");
    }
    // The manifest is not signed: whatever it says, a restored file is its owner's only (the data
    // directory is 0700 anyway) and never executable, so a key cannot come back readable by others.
    file.mode = static_cast<unsigned>(parsed) & 0600;
    report.files.push_back(std::move(file));
  }
  if (manifest.contains("left_out") && manifest["left_out"].is_array()) {
    for (const Json& entry : manifest["left_out"]) {
      BackupLeftOut item;
      APPBAN_ASSIGN_OR_RETURN(item.path, Member<std::string>(entry, "path", manifest_path));
      APPBAN_ASSIGN_OR_RETURN(item.why, Member<std::string>(entry, "why", manifest_path));
      report.left_out.push_back(std::move(item));
    }
  }
  return report;
}

// Every file in the backup directory is listed in the manifest with its size and hash, and
// nothing else is there: a backup someone added a file to, or edited, is refused whole.
Status CheckFilesAgainstManifest(const BackupReport& report) {
  std::map<std::string, const BackupFile*> listed;
  for (const BackupFile& file : report.files) {
    if (!listed.emplace(file.path, &file).second) {
      return Status::Corruption(report.location + ": the manifest lists " + file.path + " twice");
    }
  }
  const std::string database_file = std::string(kDatabaseDir) + "/" + std::string(kDatabaseName);
  if (!listed.contains(database_file)) {
    return Status::Corruption(report.location + ": the manifest does not list " + database_file);
  }
  std::error_code error;
  size_t seen = 0;
  for (fs::recursive_directory_iterator it(report.location, error), end; !error && it != end; it.increment(error)) {
    const std::string relative = it->path().lexically_relative(report.location).string();
    if (relative == kBackupManifestName) continue;
    if (it->is_symlink()) return Status::Corruption(report.location + ": " + relative + " is a symbolic link");
    if (it->is_directory()) continue;
    if (++seen > kMaxBackupFiles) return Status::LimitExceeded(report.location + ": too many files");
    auto found = listed.find(relative);
    if (found == listed.end()) {
      return Status::Corruption(report.location + ": " + relative +
                                " is not in the manifest (added after the backup?)");
    }
    uint64_t limit = relative == database_file ? kMaxBackupDatabaseBytes : kMaxBackupSideFileBytes;
    APPBAN_ASSIGN_OR_RETURN(BackupFile actual, CopyHashing(it->path().string(), "", 0600, limit));
    if (actual.bytes != found->second->bytes || actual.sha256 != found->second->sha256) {
      return Status::Corruption(report.location + ": " + relative + " does not match the manifest (" +
                                std::to_string(actual.bytes) + " bytes, SHA-256 " + actual.sha256.substr(0, 16) +
                                "… where the manifest says " + std::to_string(found->second->bytes) + " bytes, " +
                                found->second->sha256.substr(0, 16) + "…): the backup was changed or damaged");
    }
    listed.erase(found);
  }
  if (error) return Status::Unavailable("cannot read " + report.location + ": " + error.message());
  if (!listed.empty()) {
    return Status::Corruption(report.location + ": " + listed.begin()->first +
                              " is in the manifest but missing from the backup");
  }
  return Status::Ok();
}

Result<std::string> ActivePolicyKeyId(const std::string& data_dir) {
  std::error_code error;
  if (!fs::exists(data_dir + "/keys/active", error)) return std::string();
  APPBAN_ASSIGN_OR_RETURN(std::string id, ReadFileToString(data_dir + "/keys/active", 1024));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

Result<std::string> CaFingerprint(const std::string& data_dir) {
  std::error_code error;
  const std::string ca = data_dir + "/tls/ca.pem";
  if (!fs::exists(ca, error)) return std::string();
  APPBAN_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(ca, kMaxBackupSideFileBytes));
  return net::CertificateSha256Fingerprint(pem);
}

store::AuditIdentity HostIdentity(std::string actor_name) {
  store::AuditIdentity who;
  who.method = "local";  // on the host, by whoever can read the data directory
  who.channel = "cli";
  who.source = "local";
  who.actor_name = std::move(actor_name);
  return who;
}

Result<int64_t> RecordInAudit(const std::string& database_path, const std::string& action, const std::string& object,
                              Json after, const std::string& actor_name, UnixSeconds now) {
  APPBAN_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, store::OpenSqliteStore(database_path));
  store::AuditRecord audit;
  audit.actor = "server";
  audit.action = action;
  audit.object = object;
  audit.after = std::move(after);
  audit.at = now;
  audit.identity = store::AuditIdentityJson(HostIdentity(actor_name));
  APPBAN_RETURN_IF_ERROR(store->AppendAudit(audit));
  APPBAN_ASSIGN_OR_RETURN(store::AuditVerification verification, store->VerifyAudit());
  return verification.entries;
}

// Copies the data directory, less what a backup must not or need not hold, into `staging`/data.
Status CopyDataDirectory(const ServerConfig& config, const std::string& staging, BackupReport& report) {
  const std::string data_dir = config.data_dir;
  const std::optional<std::string> database_inside = RelativeInside(config.DatabasePath(), data_dir);
  const std::optional<std::string> token_file_inside =
      config.first_admin_token_file.empty() ? std::nullopt : RelativeInside(config.first_admin_token_file, data_dir);
  APPBAN_RETURN_IF_ERROR(MakePrivateDirectory(staging + "/" + std::string(kDataDir)));
  std::error_code error;
  fs::recursive_directory_iterator it(data_dir, error);
  if (error) return Status::Unavailable("cannot read " + data_dir + ": " + error.message());
  for (fs::recursive_directory_iterator end; it != end; it.increment(error)) {
    if (error) return Status::Unavailable("cannot read " + data_dir + ": " + error.message());
    const std::string relative = it->path().lexically_relative(data_dir).string();
    const std::string name = it->path().filename().string();
    auto leave_out = [&](std::string why) {
      report.left_out.push_back({relative, std::move(why)});
      if (it->is_directory(error)) it.disable_recursion_pending();
    };
    if (relative == "server.lock") continue;  // the running server's lock, meaningless elsewhere
    if (database_inside && (relative == *database_inside || relative == *database_inside + "-wal" ||
                            relative == *database_inside + "-shm" || relative == *database_inside + "-journal" ||
                            relative == store::AuditCheckpointDir(*database_inside))) {
      if (it->is_directory(error)) it.disable_recursion_pending();
      continue;  // in database/, as a consistent snapshot
    }
    if (token_file_inside && relative == *token_file_inside) {
      leave_out("the first start's one-time admin token: issue a new one with `appban server recover-admin`");
      continue;
    }
    if (IsAtomicWriteLeftover(name)) continue;  // a file being written this moment
    if (it->is_symlink(error)) {
      return Status::FailedPrecondition(it->path().string() +
                                        " is a symbolic link; appban's data directory holds none: replace it with "
                                        "what it points to before backing up");
    }
    const std::string target = staging + "/" + std::string(kDataDir) + "/" + relative;
    if (it->is_directory(error)) {
      APPBAN_RETURN_IF_ERROR(MakePrivateDirectory(target));
      continue;
    }
    if (!it->is_regular_file(error)) {
      leave_out("not a regular file");
      continue;
    }
    if (report.files.size() >= kMaxBackupFiles) {
      return Status::LimitExceeded(data_dir + " holds more than " + std::to_string(kMaxBackupFiles) + " files");
    }
    struct stat info {};
    if (::lstat(it->path().c_str(), &info) != 0) {
      if (errno == ENOENT) continue;  // removed while we walked (a rotated file)
      return Status::Unavailable(Errno("cannot stat " + it->path().string()));
    }
    auto copied = CopyHashing(it->path().string(), target, info.st_mode & 0777, kMaxBackupSideFileBytes);
    if (!copied.ok()) {
      std::error_code gone;
      if (fs::exists(it->path(), gone) || gone) return copied.status();
      fs::remove(target, gone);  // replaced or removed by the server while we copied: not state to keep
      continue;
    }
    BackupFile file = std::move(*copied);
    file.path = std::string(kDataDir) + "/" + relative;
    report.files.push_back(std::move(file));
  }
  return Status::Ok();
}

// Lists the database copy and its checkpoint files in the manifest.
Status ListDatabaseFiles(const std::string& staging, BackupReport& report) {
  const std::string dir = staging + "/" + std::string(kDatabaseDir);
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    if (!it->is_regular_file()) continue;
    APPBAN_ASSIGN_OR_RETURN(BackupFile file, CopyHashing(it->path().string(), "", 0600, kMaxBackupDatabaseBytes));
    file.path = it->path().lexically_relative(staging).string();
    report.files.push_back(std::move(file));
  }
  if (error) return Status::Unavailable("cannot read " + dir + ": " + error.message());
  return Status::Ok();
}

Status SyncTree(const std::string& root) {
  std::error_code error;
  for (fs::recursive_directory_iterator it(root, error), end; !error && it != end; it.increment(error)) {
    if (it->is_directory()) APPBAN_RETURN_IF_ERROR(SyncPath(it->path().string()));
  }
  if (error) return Status::Unavailable("cannot read " + root + ": " + error.message());
  return SyncPath(root);
}

// The target of a restore: absent, or an empty directory (which rename(2) replaces).
Status CheckRestoreTarget(const std::string& path, bool directory) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::Unavailable(Errno("cannot stat " + path));
  }
  std::error_code error;
  if (directory && S_ISDIR(info.st_mode) && fs::is_empty(path, error)) return Status::Ok();
  return Status::AlreadyExists(path + " already exists" + (directory ? " and is not empty" : "") +
                               "; restore never overwrites an installation: restore into a new data directory "
                               "(--data-dir), or move this one away first");
}

Status CopyFromBackup(const BackupReport& backup, const BackupFile& file, const std::string& target) {
  std::error_code error;
  std::vector<fs::path> missing;  // parents the manifest implies, outermost last
  for (fs::path dir = fs::path(target).parent_path(); !dir.empty() && !fs::exists(dir, error); dir = dir.parent_path())
    missing.push_back(dir);
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) APPBAN_RETURN_IF_ERROR(MakePrivateDirectory(*it));
  const std::string database_file = std::string(kDatabaseDir) + "/" + std::string(kDatabaseName);
  uint64_t limit = file.path == database_file ? kMaxBackupDatabaseBytes : kMaxBackupSideFileBytes;
  APPBAN_ASSIGN_OR_RETURN(BackupFile copied, CopyHashing(backup.location + "/" + file.path, target, file.mode, limit));
  if (copied.sha256 != file.sha256) {
    return Status::Corruption(backup.location + "/" + file.path + " changed while it was being restored");
  }
  return Status::Ok();
}

}  // namespace

uint64_t BackupReport::TotalBytes() const {
  uint64_t total = 0;
  for (const BackupFile& file : files) total += file.bytes;
  return total;
}

// PostgreSQL keeps its own backups; this command's copy of a SQLite file has no counterpart there.
Status RefusePostgres(const ServerConfig& config, std::string_view verb) {
  if (!config.UsesPostgres()) return Status::Ok();
  return Status::Unsupported("the database is PostgreSQL (" + store::DatabaseTarget{config.database, {}}.Describe() +
                             "): " + std::string(verb) +
                             " it with pg_dump or a base backup, and the data directory's keys and TLS files with "
                             "a copy (docs/postgresql.md, \"Backup and restore\"); appban server backup and "
                             "restore handle SQLite installations");
}

Result<BackupReport> BackupServer(const ServerConfig& config, const std::string& destination, UnixSeconds now) {
  APPBAN_RETURN_IF_ERROR(RefusePostgres(config, "back up"));
  std::error_code error;
  if (destination.empty()) return Status::InvalidArgument("the backup needs a destination directory");
  if (fs::exists(fs::symlink_status(destination, error))) {
    return Status::AlreadyExists(destination + " already exists; a backup never overwrites: name a new directory");
  }
  if (RelativeInside(destination, config.data_dir)) {
    return Status::InvalidArgument(destination + " lies inside the data directory " + config.data_dir +
                                   "; put backups elsewhere (another disk, ideally)");
  }
  if (!fs::is_directory(config.data_dir, error)) {
    return Status::NotFound("no data directory at " + config.data_dir + ": nothing to back up");
  }
  BackupReport report;
  report.created_at = now;
  report.source_data_dir = fs::absolute(config.data_dir).lexically_normal().string();
  APPBAN_ASSIGN_OR_RETURN(report.policy_key_id, ActivePolicyKeyId(config.data_dir));
  APPBAN_ASSIGN_OR_RETURN(report.ca_sha256, CaFingerprint(config.data_dir));

  const fs::path parent = fs::absolute(destination).lexically_normal().parent_path();
  fs::create_directories(parent, error);
  if (error) return Status::Unavailable("cannot create " + parent.string() + ": " + error.message());
  StagingDirectory staging(HiddenSibling(destination, "partial"));
  APPBAN_RETURN_IF_ERROR(MakePrivateDirectory(staging.path()));
  APPBAN_RETURN_IF_ERROR(MakePrivateDirectory(staging.path() + "/" + std::string(kDatabaseDir)));
  const std::string database_copy = staging.path() + "/" + std::string(kDatabaseDir) + "/" + std::string(kDatabaseName);
  APPBAN_ASSIGN_OR_RETURN(report.database, store::SnapshotSqliteDatabase(config.DatabasePath(), database_copy));
  APPBAN_RETURN_IF_ERROR(ListDatabaseFiles(staging.path(), report));
  APPBAN_RETURN_IF_ERROR(CopyDataDirectory(config, staging.path(), report));
  std::sort(report.files.begin(), report.files.end(),
            [](const BackupFile& a, const BackupFile& b) { return a.path < b.path; });
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(staging.path() + "/" + std::string(kBackupManifestName),
                                             ManifestJson(report).dump(2) + "\n", 0600));
  APPBAN_RETURN_IF_ERROR(SyncTree(staging.path()));
  // Recorded before it appears: every backup that exists is in the chain (it holds the keys).
  Json after = {{"destination", fs::absolute(destination).lexically_normal().string()},
                {"audit_entries", report.database.audit.entries},
                {"audit_head", report.database.audit.head_hash}};
  APPBAN_RETURN_IF_ERROR(RecordInAudit(config.DatabasePath(), "server.backup", "backup:" + FormatTimestamp(now),
                                       std::move(after), "backup on the server host", now)
                             .status());
  if (::rename(staging.path().c_str(), destination.c_str()) != 0) {
    return Status::Unavailable(Errno("cannot rename " + staging.path() + " to " + destination));
  }
  staging.Release();
  APPBAN_RETURN_IF_ERROR(SyncPath(parent.string()));
  report.location = destination;
  return report;
}

Result<RestoreReport> RestoreServer(const ServerConfig& config, const std::string& location, UnixSeconds now,
                                    bool check_only) {
  APPBAN_RETURN_IF_ERROR(RefusePostgres(config, "restore"));
  RestoreReport result;
  result.check_only = check_only;
  APPBAN_ASSIGN_OR_RETURN(result.backup, ParseManifest(location));
  APPBAN_RETURN_IF_ERROR(CheckFilesAgainstManifest(result.backup));

  // Where the files go: beside the target, renamed into place at the end; for a check, a
  // temporary directory.
  result.data_dir = config.data_dir;
  result.database_path = config.DatabasePath();
  const std::optional<std::string> database_inside = RelativeInside(result.database_path, result.data_dir);
  if (!check_only) {
    APPBAN_RETURN_IF_ERROR(CheckRestoreTarget(result.data_dir, true));
    if (!database_inside) APPBAN_RETURN_IF_ERROR(CheckRestoreTarget(result.database_path, false));
  }
  std::error_code error;
  std::string staging_path;
  if (check_only) {
    std::string pattern = (fs::temp_directory_path(error) / "appban-restore-check-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return Status::Unavailable(Errno("cannot create a temporary directory"));
    staging_path = pattern + "/data";
  } else {
    const fs::path parent = fs::absolute(result.data_dir).lexically_normal().parent_path();
    fs::create_directories(parent, error);
    if (error) return Status::Unavailable("cannot create " + parent.string() + ": " + error.message());
    staging_path = HiddenSibling(result.data_dir, "restoring");
  }
  StagingDirectory staging(check_only ? fs::path(staging_path).parent_path().string() : staging_path);
  APPBAN_RETURN_IF_ERROR(MakePrivateDirectory(staging_path));
  // The database beside the data directory's staging when it belongs inside it, else beside its
  // own target (renamed separately).
  std::string staged_database;
  if (database_inside && !check_only) {
    staged_database = staging_path + "/" + *database_inside;
  } else if (check_only) {
    staged_database = staging_path + "/" + std::string(kDatabaseName);
  } else {
    staged_database = HiddenSibling(result.database_path, "restoring");
  }
  StagingDirectory staged_database_file(database_inside || check_only ? "" : staged_database);
  StagingDirectory staged_database_audit(database_inside || check_only ? ""
                                                                       : store::AuditCheckpointDir(staged_database));
  const std::string database_prefix = std::string(kDatabaseDir) + "/" + std::string(kDatabaseName);
  for (const BackupFile& file : result.backup.files) {
    std::string target;
    if (file.path.starts_with(std::string(kDataDir) + "/")) {
      target = staging_path + "/" + file.path.substr(kDataDir.size() + 1);
    } else if (file.path.starts_with(database_prefix)) {
      target = staged_database + file.path.substr(database_prefix.size());  // "" or ".audit/…"
    } else {
      return Status::Corruption(location + ": manifest path " + file.path + " belongs nowhere");
    }
    APPBAN_RETURN_IF_ERROR(CopyFromBackup(result.backup, file, target));
  }

  // The copy is checked as the server will read it: integrity, schema, the whole chain against the
  // checkpoint that came with it, and the head the manifest recorded.
  APPBAN_ASSIGN_OR_RETURN(store::DatabaseSnapshot restored, store::InspectSqliteDatabase(staged_database));
  if (!restored.audit.ok()) {
    const store::AuditProblem& first = restored.audit.problems.front();
    return Status::Corruption(location + ": the audit chain does not verify (entry " + std::to_string(first.seq) +
                              ": " + first.what + ")");
  }
  if (restored.audit.entries != result.backup.database.audit.entries ||
      restored.audit.head_hash != result.backup.database.audit.head_hash) {
    return Status::Corruption(
        location + ": the database's audit head (entry " + std::to_string(restored.audit.entries) +
        ") is not the one the manifest recorded (entry " + std::to_string(result.backup.database.audit.entries) + ")");
  }
  result.backup.database = restored;
  if (check_only) return result;

  Json after = {{"backup", fs::absolute(location).lexically_normal().string()},
                {"backup_created_at", FormatTimestamp(result.backup.created_at)},
                {"restored_audit_entries", restored.audit.entries},
                {"restored_audit_head", restored.audit.head_hash}};
  APPBAN_ASSIGN_OR_RETURN(result.restore_audit_seq, RecordInAudit(staged_database, "server.restore",
                                                                  "backup:" + FormatTimestamp(result.backup.created_at),
                                                                  std::move(after), "restore on the server host", now));
  if (!database_inside) {
    APPBAN_RETURN_IF_ERROR(SyncPath(store::AuditCheckpointDir(staged_database)));
    if (::rename(staged_database.c_str(), result.database_path.c_str()) != 0)
      return Status::Unavailable(Errno("cannot rename " + staged_database + " to " + result.database_path));
    staged_database_file.Release();
    const std::string audit_target = store::AuditCheckpointDir(result.database_path);
    if (::rename(store::AuditCheckpointDir(staged_database).c_str(), audit_target.c_str()) != 0)
      return Status::Unavailable(Errno("cannot rename the audit checkpoint directory to " + audit_target));
    staged_database_audit.Release();
    APPBAN_RETURN_IF_ERROR(SyncPath(fs::absolute(result.database_path).parent_path().string()));
  }
  APPBAN_RETURN_IF_ERROR(SyncTree(staging_path));
  if (::rename(staging_path.c_str(), result.data_dir.c_str()) != 0) {
    return Status::Unavailable(Errno("cannot rename " + staging_path + " to " + result.data_dir));
  }
  staging.Release();
  APPBAN_RETURN_IF_ERROR(SyncPath(fs::absolute(result.data_dir).lexically_normal().parent_path().string()));
  return result;
}

std::string DescribeBackup(const BackupReport& report) {
  // The tables as an operator names them (one, several); audit has its own line.
  static const std::map<std::string, std::pair<std::string, std::string>> kLabels = {
      {"rules", {"rule", "rules"}},
      {"waivers", {"waiver", "waivers"}},
      {"device_groups", {"group", "groups"}},
      {"vendors", {"vendor", "vendors"}},
      {"bundles", {"bundle", "bundles"}},
      {"devices", {"device", "devices"}},
      {"users", {"user", "users"}},
      {"api_tokens", {"API token", "API tokens"}},
      {"enrollment_tokens", {"enrolment token", "enrolment tokens"}}};
  std::ostringstream out;
  out << "  created         " << FormatTimestamp(report.created_at) << " from " << report.source_data_dir << "\n";
  out << "  database        schema " << report.database.schema_version;
  for (const auto& [table, count] : report.database.row_counts) {
    auto label = kLabels.find(table);
    if (label != kLabels.end())
      out << ", " << count << " " << (count == 1 ? label->second.first : label->second.second);
  }
  out << "\n";
  const store::AuditVerification& audit = report.database.audit;
  out << "  audit chain     " << audit.entries << (audit.entries == 1 ? " entry" : " entries") << ", head "
      << (audit.head_hash.empty() ? std::string(store::kAuditGenesisHash) : audit.head_hash)
      << (audit.ok() ? " (verified" : " (NOT verified") << ", checkpoint at entry " << audit.checkpoint_seq << ")\n";
  if (!report.policy_key_id.empty()) out << "  policy key      " << report.policy_key_id << "\n";
  if (!report.ca_sha256.empty()) out << "  TLS CA          SHA-256 " << report.ca_sha256 << "\n";
  out << "  files           " << report.files.size() << " (" << report.TotalBytes() << " bytes)\n";
  for (const BackupLeftOut& item : report.left_out)
    out << "  left out        " << item.path << ": " << item.why << "\n";
  return out.str();
}

}  // namespace appban::server
