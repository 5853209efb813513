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
#include "appban/store/open.h"
#include "appban/store/postgres_store.h"
#include "appban/store/store.h"

namespace appban::server {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDatabaseDir = "database";
constexpr std::string_view kDataDir = "data";
constexpr std::string_view kDatabaseName = "appban.db";
constexpr size_t kCopyChunkBytes = 1 << 20;
// The manifest's database.backend.
constexpr std::string_view kBackendSqlite = "sqlite";
constexpr std::string_view kBackendPostgres = "postgresql";

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
  Json database = {{"schema_version", report.database.schema_version},
                   {"audit_entries", report.database.audit.entries},
                   {"audit_head", report.database.audit.head_hash},
                   {"rows", rows}};
  if (report.postgres) {
    database["backend"] = kBackendPostgres;
    database["location"] = report.postgres->location;
    database["name"] = report.postgres->database;
    database["server_version"] = report.postgres->server_version;
    database["audit_first_hash"] = report.postgres->audit_first_hash;
  } else {
    database["backend"] = kBackendSqlite;
    database["path"] = std::string(kDatabaseDir) + "/" + std::string(kDatabaseName);
  }
  return {{"format", report.postgres ? kBackupFormatWithBackend : kBackupFormat},
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
  if (format != kBackupFormat && format != kBackupFormatWithBackend) {
    return Status::Unsupported(manifest_path + ": format \"" + format + "\" is neither " + std::string(kBackupFormat) +
                               " nor " + std::string(kBackupFormatWithBackend) +
                               " (a backup by a newer appban? restore it with that one)");
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
  // Format 1 knew only SQLite; format 2 names the backend.
  std::string backend(kBackendSqlite);
  if (format == kBackupFormatWithBackend) {
    APPBAN_ASSIGN_OR_RETURN(backend, Member<std::string>(database, "backend", manifest_path));
  } else if (database.contains("backend")) {
    APPBAN_ASSIGN_OR_RETURN(backend, Member<std::string>(database, "backend", manifest_path));
    if (backend != kBackendSqlite) {
      return Status::Corruption(manifest_path + ": database.backend \"" + backend + "\" in a " +
                                std::string(kBackupFormat) + " manifest, which holds SQLite backups only");
    }
  }
  if (backend == kBackendPostgres) {
    store::PostgresIdentity identity;
    APPBAN_ASSIGN_OR_RETURN(identity.location, Member<std::string>(database, "location", manifest_path));
    APPBAN_ASSIGN_OR_RETURN(identity.database, Member<std::string>(database, "name", manifest_path));
    APPBAN_ASSIGN_OR_RETURN(identity.server_version, Member<std::string>(database, "server_version", manifest_path));
    APPBAN_ASSIGN_OR_RETURN(identity.audit_first_hash,
                            Member<std::string>(database, "audit_first_hash", manifest_path));
    report.postgres = std::move(identity);
    // Not in the backup, so not read back from it: what the database held, as recorded.
    APPBAN_ASSIGN_OR_RETURN(report.database.schema_version, Member<int64_t>(database, "schema_version", manifest_path));
    APPBAN_ASSIGN_OR_RETURN(Json rows, Member<Json>(database, "rows", manifest_path));
    if (!rows.is_object()) return Status::Corruption(manifest_path + ": database.rows is not an object");
    for (const auto& [table, count] : rows.items()) {
      if (!count.is_number_integer())
        return Status::Corruption(manifest_path + ": database.rows." + table + " is not a count");
      report.database.row_counts.emplace_back(table, count.get<int64_t>());
    }
  } else if (backend != kBackendSqlite) {
    return Status::Unsupported(manifest_path + ": database.backend \"" + backend + "\" is neither " +
                               std::string(kBackendSqlite) + " nor " + std::string(kBackendPostgres));
  }
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
  if (!report.postgres && !listed.contains(database_file)) {
    return Status::Corruption(report.location + ": the manifest does not list " + database_file);
  }
  if (report.postgres) {
    for (const BackupFile& file : report.files) {
      if (!file.path.starts_with(std::string(kDataDir) + "/")) {
        return Status::Corruption(report.location + ": the manifest lists " + file.path +
                                  ", but a backup of a PostgreSQL installation holds only data/");
      }
    }
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

Result<int64_t> RecordInAudit(const store::DatabaseTarget& database, const std::string& action,
                              const std::string& object, Json after, const std::string& actor_name, UnixSeconds now) {
  APPBAN_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, store::OpenStore(database));
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
  const std::optional<std::string> database_inside =
      config.UsesPostgres() ? std::nullopt : RelativeInside(config.DatabasePath(), data_dir);
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

// The backup's audit head must be in the chain of the database a restore puts the files beside:
// otherwise the keys, CA and MDM state would come back with a database from before them (devices
// enrolled after the dump hold credentials it never issued, bundles signed with keys it does not
// know) or with another installation's database.
Status CheckDatabaseHoldsBackupHead(const BackupReport& backup, const store::DatabaseSnapshot& found,
                                    const store::PostgresIdentity& found_identity, store::Store& database) {
  const std::string where = "the database " + found_identity.location;
  // Said first when it applies: another installation's database, or one older than the backup,
  // also fails the check against the backup's signed checkpoint, which explains less.
  auto chain_verifies = [&] {
    if (found.audit.ok()) return Status::Ok();
    const store::AuditProblem& first = found.audit.problems.front();
    return Status::Corruption(where + ": the audit chain does not verify (entry " + std::to_string(first.seq) + ": " +
                              first.what + "); investigate it (appban audit verify) before putting keys beside it");
  };
  const int64_t seq = backup.database.audit.entries;
  const std::string& hash = backup.database.audit.head_hash;
  if (seq == 0) return chain_verifies();  // the backup was taken of an empty chain: anything follows it
  const std::string missing = where +
                              ": the database's audit chain does not contain the head recorded in the backup (entry " +
                              std::to_string(seq) + ", " + hash.substr(0, 16) + "…): ";
  const std::string& recorded_first = backup.postgres ? backup.postgres->audit_first_hash : std::string();
  if (!recorded_first.empty() && found_identity.audit_first_hash != recorded_first) {
    return Status::FailedPrecondition(
        missing + "its first entry is " +
        (found_identity.audit_first_hash.empty() ? std::string("missing")
                                                 : found_identity.audit_first_hash.substr(0, 16) + "…") +
        " where the backup recorded " + recorded_first.substr(0, 16) +
        "…: the database is another installation's; restore the dump taken with this backup");
  }
  if (found.audit.entries < seq) {
    return Status::FailedPrecondition(missing + "its chain ends at entry " + std::to_string(found.audit.entries) +
                                      ": the database was restored from a dump older than the keys, or from another "
                                      "installation; restore a dump taken after the backup");
  }
  APPBAN_RETURN_IF_ERROR(chain_verifies());
  APPBAN_ASSIGN_OR_RETURN(std::vector<store::AuditEntry> entries, database.ReadAuditAfter(seq - 1, 1));
  if (entries.empty() || entries.front().seq != seq || entries.front().hash != hash) {
    return Status::FailedPrecondition(
        missing + "its entry " + std::to_string(seq) + " is " +
        (entries.empty() ? std::string("missing") : entries.front().hash.substr(0, 16) + "…") +
        ": the database was restored from another installation, or its chain was rewritten");
  }
  return Status::Ok();
}

// Single quotes for a shell, for the commands the CLI prints.
std::string ShellQuoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string PasswordPrefix(const ServerConfig& config) {
  return config.database_password_file.empty()
             ? std::string()
             : "PGPASSWORD=\"$(cat " + ShellQuoted(config.database_password_file) + ")\" ";
}

}  // namespace

uint64_t BackupReport::TotalBytes() const {
  uint64_t total = 0;
  for (const BackupFile& file : files) total += file.bytes;
  return total;
}

std::string PgDumpCommand(const ServerConfig& config, const std::string& location) {
  return PasswordPrefix(config) + "pg_dump --format=custom --file=" + ShellQuoted(location + ".pgdump") +
         " --dbname=" + ShellQuoted(store::DatabaseTarget{config.database}.Describe());
}

std::string PgRestoreCommand(const ServerConfig& config, const std::string& location) {
  return PasswordPrefix(config) + "pg_restore --no-owner --exit-on-error --dbname=" +
         ShellQuoted(store::DatabaseTarget{config.database}.Describe()) + " " + ShellQuoted(location + ".pgdump");
}

Result<BackupReport> BackupServer(const ServerConfig& config, const std::string& destination, UnixSeconds now) {
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
  APPBAN_ASSIGN_OR_RETURN(store::DatabaseTarget database, config.Database());
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
  if (database.IsPostgres()) {
    // The head is read before the files are copied: a dump taken after this command holds it, and
    // whatever the files gained meanwhile (a rotated key) is at least as new as that head.
    APPBAN_ASSIGN_OR_RETURN(auto inspected, store::InspectPostgresDatabase(database));
    auto& [snapshot, identity] = inspected;
    if (!snapshot.audit.ok()) {
      const store::AuditProblem& first = snapshot.audit.problems.front();
      return Status::Corruption("the audit chain of " + identity.location + " does not verify (entry " +
                                std::to_string(first.seq) + ": " + first.what +
                                "); a backup would pair the keys with the damage: run appban audit verify and "
                                "investigate first");
    }
    report.database = std::move(snapshot);
    report.postgres = std::move(identity);
  } else {
    APPBAN_RETURN_IF_ERROR(MakePrivateDirectory(staging.path() + "/" + std::string(kDatabaseDir)));
    const std::string database_copy =
        staging.path() + "/" + std::string(kDatabaseDir) + "/" + std::string(kDatabaseName);
    APPBAN_ASSIGN_OR_RETURN(report.database, store::SnapshotSqliteDatabase(config.DatabasePath(), database_copy));
    APPBAN_RETURN_IF_ERROR(ListDatabaseFiles(staging.path(), report));
  }
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
  if (report.postgres) after["database"] = report.postgres->location;
  APPBAN_RETURN_IF_ERROR(RecordInAudit(database, "server.backup", "backup:" + FormatTimestamp(now), std::move(after),
                                       "backup on the server host", now)
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
  RestoreReport result;
  result.check_only = check_only;
  APPBAN_ASSIGN_OR_RETURN(result.backup, ParseManifest(location));
  APPBAN_ASSIGN_OR_RETURN(store::DatabaseTarget database, config.Database());
  if (result.backup.postgres && !database.IsPostgres()) {
    return Status::FailedPrecondition(
        location + " is a backup of a PostgreSQL installation (" + result.backup.postgres->location +
        "): it holds no database; configure database = \"postgresql://…\" naming the database restored from its "
        "dump (docs/postgresql.md, \"Backup and restore\")");
  }
  if (!result.backup.postgres && database.IsPostgres()) {
    return Status::FailedPrecondition(
        location + " is a backup of a SQLite installation, and the configuration names the PostgreSQL database " +
        database.Describe() +
        ": restore it with a SQLite configuration, then move it with appban server migrate (docs/postgresql.md)");
  }
  APPBAN_RETURN_IF_ERROR(CheckFilesAgainstManifest(result.backup));

  // Where the files go: beside the target, renamed into place at the end; for a check, a
  // temporary directory.
  result.data_dir = config.data_dir;
  result.database_path = database.IsPostgres() ? database.Describe() : config.DatabasePath();
  const std::optional<std::string> database_inside =
      database.IsPostgres() ? std::nullopt : RelativeInside(result.database_path, result.data_dir);
  if (!check_only) {
    APPBAN_RETURN_IF_ERROR(CheckRestoreTarget(result.data_dir, true));
    if (!database_inside && !database.IsPostgres())
      APPBAN_RETURN_IF_ERROR(CheckRestoreTarget(result.database_path, false));
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
  // own target (renamed separately). PostgreSQL's is restored by the operator, not from here.
  std::string staged_database;
  if (!database.IsPostgres()) {
    if (check_only) {
      staged_database = staging_path + "/" + std::string(kDatabaseName);
    } else if (database_inside) {
      staged_database = staging_path + "/" + *database_inside;
    } else {
      staged_database = HiddenSibling(result.database_path, "restoring");
    }
  }
  const bool database_renamed_separately = !database.IsPostgres() && !database_inside && !check_only;
  StagingDirectory staged_database_file(database_renamed_separately ? staged_database : "");
  StagingDirectory staged_database_audit(database_renamed_separately ? store::AuditCheckpointDir(staged_database) : "");
  const std::string database_prefix = std::string(kDatabaseDir) + "/" + std::string(kDatabaseName);
  for (const BackupFile& file : result.backup.files) {
    std::string target;
    if (file.path.starts_with(std::string(kDataDir) + "/")) {
      target = staging_path + "/" + file.path.substr(kDataDir.size() + 1);
    } else if (!database.IsPostgres() && file.path.starts_with(database_prefix)) {
      target = staged_database + file.path.substr(database_prefix.size());  // "" or ".audit/…"
    } else {
      return Status::Corruption(location + ": manifest path " + file.path + " belongs nowhere");
    }
    APPBAN_RETURN_IF_ERROR(CopyFromBackup(result.backup, file, target));
  }

  if (database.IsPostgres()) {
    // The database was restored beforehand (pg_restore, PITR): it must hold the backup's head.
    // A check writes nothing, not even a migration of an older schema: the server's start does that.
    // The node's signed audit checkpoint is the backup's copy, staged above: the restored chain must
    // reach it, and the restore's own entry advances it. A backup from before nodes kept one has
    // none; the server's next start makes a new key (docs/postgresql.md, "Audit chain").
    const std::string staged_checkpoint = staging_path + "/" + std::string(kAuditCheckpointDirName);
    database.audit_checkpoint_dir = fs::exists(staged_checkpoint + "/checkpoint.key", error) ? staged_checkpoint : "";
    auto inspected = store::InspectPostgresDatabase(database, !check_only);
    if (!inspected.ok() && inspected.status().code() == StatusCode::kNotFound) {
      return Status::FailedPrecondition(inspected.status().message() +
                                        ": restore the database first from the dump taken with this backup (" +
                                        PgRestoreCommand(config, location) + "), then run this again");
    }
    APPBAN_RETURN_IF_ERROR(inspected.status());
    const auto& [found, identity] = *inspected;
    APPBAN_ASSIGN_OR_RETURN(
        std::unique_ptr<store::Store> store,
        check_only ? store::OpenPostgresStoreAsIs(database.location, database.password) : store::OpenStore(database));
    APPBAN_RETURN_IF_ERROR(CheckDatabaseHoldsBackupHead(result.backup, found, identity, *store));
    result.database_audit = found.audit;
    if (check_only) return result;
    Json after = {{"backup", fs::absolute(location).lexically_normal().string()},
                  {"backup_created_at", FormatTimestamp(result.backup.created_at)},
                  {"backup_audit_entries", result.backup.database.audit.entries},
                  {"backup_audit_head", result.backup.database.audit.head_hash},
                  {"data_dir", fs::absolute(result.data_dir).lexically_normal().string()}};
    APPBAN_RETURN_IF_ERROR(SyncTree(staging_path));
    // Recorded before the files appear, as a backup is: a restore that exists is in the chain.
    APPBAN_ASSIGN_OR_RETURN(
        result.restore_audit_seq,
        RecordInAudit(database, "server.restore", "backup:" + FormatTimestamp(result.backup.created_at),
                      std::move(after), "restore on the server host", now));
  } else {
    // The copy is checked as the server will read it: integrity, schema, the whole chain against
    // the checkpoint that came with it, and the head the manifest recorded.
    APPBAN_ASSIGN_OR_RETURN(store::DatabaseSnapshot restored, store::InspectSqliteDatabase(staged_database));
    if (!restored.audit.ok()) {
      const store::AuditProblem& first = restored.audit.problems.front();
      return Status::Corruption(location + ": the audit chain does not verify (entry " + std::to_string(first.seq) +
                                ": " + first.what + ")");
    }
    if (restored.audit.entries != result.backup.database.audit.entries ||
        restored.audit.head_hash != result.backup.database.audit.head_hash) {
      return Status::Corruption(location + ": the database's audit head (entry " +
                                std::to_string(restored.audit.entries) +
                                ") is not the one the manifest recorded (entry " +
                                std::to_string(result.backup.database.audit.entries) + ")");
    }
    result.backup.database = restored;
    if (check_only) return result;

    Json after = {{"backup", fs::absolute(location).lexically_normal().string()},
                  {"backup_created_at", FormatTimestamp(result.backup.created_at)},
                  {"restored_audit_entries", restored.audit.entries},
                  {"restored_audit_head", restored.audit.head_hash}};
    APPBAN_ASSIGN_OR_RETURN(result.restore_audit_seq,
                            RecordInAudit(store::DatabaseTarget{staged_database}, "server.restore",
                                          "backup:" + FormatTimestamp(result.backup.created_at), std::move(after),
                                          "restore on the server host", now));
  }
  if (database_renamed_separately) {
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
  // The tables as an operator names them (one, several), in the order they are printed; audit has
  // its own line. The order is fixed here because a manifest read back lists its rows sorted.
  struct TableLabel {
    const char* table;
    const char* one;
    const char* several;
  };
  static constexpr TableLabel kLabels[] = {{"rules", "rule", "rules"},
                                           {"waivers", "waiver", "waivers"},
                                           {"device_groups", "group", "groups"},
                                           {"vendors", "vendor", "vendors"},
                                           {"bundles", "bundle", "bundles"},
                                           {"devices", "device", "devices"},
                                           {"users", "user", "users"},
                                           {"api_tokens", "API token", "API tokens"},
                                           {"enrollment_tokens", "enrolment token", "enrolment tokens"}};
  std::ostringstream out;
  out << "  created         " << FormatTimestamp(report.created_at) << " from " << report.source_data_dir << "\n";
  if (report.postgres) {
    out << "  database        PostgreSQL " << report.postgres->database << " at " << report.postgres->location
        << " (not in the backup: pg_dump or a base backup holds it)\n";
  }
  out << "  database        schema " << report.database.schema_version;
  for (const TableLabel& label : kLabels) {
    auto counted = std::find_if(report.database.row_counts.begin(), report.database.row_counts.end(),
                                [&](const auto& row) { return row.first == label.table; });
    if (counted == report.database.row_counts.end()) continue;
    out << ", " << counted->second << " " << (counted->second == 1 ? label.one : label.several);
  }
  out << "\n";
  const store::AuditVerification& audit = report.database.audit;
  out << "  audit chain     " << audit.entries << (audit.entries == 1 ? " entry" : " entries") << ", head "
      << (audit.head_hash.empty() ? std::string(store::kAuditGenesisHash) : audit.head_hash)
      << (audit.ok() ? " (verified" : " (NOT verified");
  if (report.postgres) {
    out << " in PostgreSQL)\n";
  } else {
    out << ", checkpoint at entry " << audit.checkpoint_seq << ")\n";
  }
  if (!report.policy_key_id.empty()) out << "  policy key      " << report.policy_key_id << "\n";
  if (!report.ca_sha256.empty()) out << "  TLS CA          SHA-256 " << report.ca_sha256 << "\n";
  out << "  files           " << report.files.size() << " (" << report.TotalBytes() << " bytes)\n";
  for (const BackupLeftOut& item : report.left_out)
    out << "  left out        " << item.path << ": " << item.why << "\n";
  return out.str();
}

}  // namespace appban::server
