// `appban server backup` / `restore` on a bootstrapped data directory: what comes back is the
// same installation (keys, CA, devices, audit chain, plus one entry recording the restore); a
// backup someone changed is refused whole and nothing appears at the target; restore never
// overwrites.
#include "appban/server/backup.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "appban/common/crypto.h"
#include "appban/common/json.h"
#include "appban/server/bootstrap.h"
#include "appban/store/fleet_test_support.h"

namespace appban::server {
namespace {

namespace fs = std::filesystem;
using store::fleet_testing::EnrollOne;
using store::fleet_testing::OpenFleet;
using store::fleet_testing::ScratchDir;

constexpr UnixSeconds kBackupTime = 1'800'000'500;
constexpr UnixSeconds kRestoreTime = 1'800'000'900;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every file under `dir` but the database (compared through the store) and the server's lock.
std::map<std::string, std::string> FilesOf(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const std::string relative = entry.path().lexically_relative(dir).string();
    if (relative.starts_with("appban.db") || relative == "server.lock" || !entry.is_regular_file()) continue;
    files[relative] = ReadAll(entry.path());
  }
  return files;
}

class ServerBackup : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.data_dir = (scratch_.path() / "data").string();
    config_.listen.address = "127.0.0.1";
    config_.listen.server_names = {"appban.test.example", "127.0.0.1"};
    ASSERT_TRUE(ValidateConfig(config_).ok());
    auto bootstrapped = Bootstrap(config_, "https://appban.test.example:8443");
    ASSERT_TRUE(bootstrapped.ok()) << bootstrapped.status().ToString();
    auto fleet = OpenFleet(config_.DatabasePath());
    ASSERT_NE(fleet, nullptr);
    for (int i = 0; i < 3; ++i) EnrollOne(*fleet, "laptop-" + std::to_string(i));
  }
  ServerConfig RestoreConfig(const std::string& name) const {
    ServerConfig config = config_;
    config.data_dir = (scratch_.path() / name).string();
    return config;
  }
  std::string Backup(const std::string& name = "backup") {
    const std::string destination = (scratch_.path() / name).string();
    auto report = BackupServer(config_, destination, kBackupTime);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return destination;
  }
  // The restore fails with `code`, names `what`, and leaves nothing at the target or beside it.
  void ExpectRefused(const std::string& backup, StatusCode code, const std::string& what) {
    ServerConfig target = RestoreConfig("restored");
    auto restored = RestoreServer(target, backup, kRestoreTime, false);
    ASSERT_FALSE(restored.ok()) << "a changed backup was restored";
    EXPECT_EQ(restored.status().code(), code) << restored.status().ToString();
    EXPECT_NE(restored.status().message().find(what), std::string::npos) << restored.status().message();
    EXPECT_FALSE(fs::exists(target.data_dir));
    for (const auto& entry : fs::directory_iterator(scratch_.path())) {
      EXPECT_EQ(entry.path().filename().string().find("restoring"), std::string::npos) << entry.path();
    }
  }

  ScratchDir scratch_;
  ServerConfig config_;
};

TEST_F(ServerBackup, ARestoredBackupIsTheSameInstallationWithTheRestoreRecorded) {
  const std::string backup = Backup();
  auto before = FilesOf(config_.data_dir);
  ASSERT_TRUE(before.contains("keys/active"));
  ASSERT_TRUE(before.contains("tls/ca.pem"));
  ASSERT_TRUE(before.contains("tls/ca.key"));

  // The live chain records that the backup was taken.
  auto live = store::OpenSqliteStore(config_.DatabasePath());
  ASSERT_TRUE(live.ok());
  auto live_audit = (*live)->ReadAudit();
  ASSERT_TRUE(live_audit.ok());
  EXPECT_EQ(live_audit->back().action, "server.backup");

  ServerConfig target = RestoreConfig("restored");
  auto restored = RestoreServer(target, backup, kRestoreTime, false);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(FilesOf(target.data_dir), before) << "keys, certificates or the CA key differ after the restore";
  struct stat info {};
  ASSERT_EQ(::stat(target.data_dir.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((target.data_dir + "/tls/ca.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  auto fleet = OpenFleet(target.DatabasePath());
  ASSERT_NE(fleet, nullptr);
  auto devices = fleet->ListDevices(0, 100);
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(devices->size(), 3u);
  auto store = store::OpenSqliteStore(target.DatabasePath());
  ASSERT_TRUE(store.ok());
  auto verified = (*store)->VerifyAudit();
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok());
  // The backup's chain (which ends before its own server.backup entry) plus the restore.
  EXPECT_EQ(verified->entries, static_cast<int64_t>(live_audit->size()));
  EXPECT_EQ(restored->restore_audit_seq, verified->entries);
  auto entries = (*store)->ReadAudit();
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->back().action, "server.restore");
  EXPECT_EQ(entries->back().at, kRestoreTime);
  EXPECT_EQ(restored->backup.database.audit.entries, verified->entries - 1);
}

TEST_F(ServerBackup, ACheckWritesNothing) {
  const std::string backup = Backup();
  ServerConfig target = RestoreConfig("restored");
  auto checked = RestoreServer(target, backup, kRestoreTime, true);
  ASSERT_TRUE(checked.ok()) << checked.status().ToString();
  EXPECT_TRUE(checked->check_only);
  EXPECT_TRUE(checked->backup.database.audit.ok());
  EXPECT_FALSE(fs::exists(target.data_dir));
}

TEST_F(ServerBackup, AChangedAddedOrMissingFileRefusesTheWholeBackup) {
  const std::string backup = Backup();
  const std::string pristine = (scratch_.path() / "pristine").string();
  fs::copy(backup, pristine, fs::copy_options::recursive);
  auto reset = [&] {
    fs::remove_all(backup);
    fs::copy(pristine, backup, fs::copy_options::recursive);
  };

  { std::ofstream(backup + "/data/keys/active", std::ios::app) << "x"; }
  ExpectRefused(backup, StatusCode::kCorruption, "data/keys/active does not match the manifest");
  reset();
  { std::ofstream(backup + "/data/tls/extra.pem") << "-----BEGIN CERTIFICATE-----\n"; }
  ExpectRefused(backup, StatusCode::kCorruption, "data/tls/extra.pem is not in the manifest");
  reset();
  fs::remove(backup + "/data/tls/ca.key");
  ExpectRefused(backup, StatusCode::kCorruption, "data/tls/ca.key is in the manifest but missing");
  reset();
  {
    // One byte of the database flipped.
    std::fstream db(backup + "/database/appban.db", std::ios::in | std::ios::out | std::ios::binary);
    db.seekp(5000);
    db.put('\x5a');
  }
  ExpectRefused(backup, StatusCode::kCorruption, "database/appban.db does not match the manifest");
  reset();
  // A manifest edited to match a changed file still cannot smuggle a path out of the target.
  Json manifest = Json::parse(ReadAll(backup + "/MANIFEST.json"));
  manifest["files"][0]["path"] = "data/../../escaped";
  { std::ofstream(backup + "/MANIFEST.json", std::ios::trunc) << manifest.dump(); }
  ExpectRefused(backup, StatusCode::kCorruption, "\"..\" component");
  EXPECT_FALSE(fs::exists(scratch_.path().parent_path() / "escaped"));
  reset();
  // Modes from the manifest are capped to the owner's: a key cannot come back readable by others.
  manifest = Json::parse(ReadAll(backup + "/MANIFEST.json"));
  for (Json& file : manifest["files"]) file["mode"] = "0777";
  { std::ofstream(backup + "/MANIFEST.json", std::ios::trunc) << manifest.dump(); }
  {
    ServerConfig loose = RestoreConfig("loose");
    auto restored = RestoreServer(loose, backup, kRestoreTime, false);
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    struct stat info {};
    ASSERT_EQ(::stat((loose.data_dir + "/tls/ca.key").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u) << "a manifest asking for 0777 got it";
  }
  reset();
  // A SQLite backup stays format 1 (older binaries restore it) and says its backend; format 1 with
  // another backend is not a manifest any appban wrote.
  manifest = Json::parse(ReadAll(backup + "/MANIFEST.json"));
  EXPECT_EQ(manifest["format"], "appban.backup/1");
  EXPECT_EQ(manifest["database"]["backend"], "sqlite");
  manifest["database"]["backend"] = "postgresql";
  { std::ofstream(backup + "/MANIFEST.json", std::ios::trunc) << manifest.dump(); }
  ExpectRefused(backup, StatusCode::kCorruption, "holds SQLite backups only");
  reset();
  {
    // A SQLite backup does not go beside a PostgreSQL database (appban server migrate moves one).
    ServerConfig on_postgres = RestoreConfig("on-postgres");
    on_postgres.database = "postgresql://appban@127.0.0.1:1/appban";
    auto restored = RestoreServer(on_postgres, backup, kRestoreTime, false);
    ASSERT_FALSE(restored.ok());
    EXPECT_EQ(restored.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(restored.status().message().find("is a backup of a SQLite installation"), std::string::npos)
        << restored.status().message();
    EXPECT_FALSE(fs::exists(on_postgres.data_dir));
  }
  // A PostgreSQL backup (format 2) holds no database: a SQLite configuration cannot restore it.
  manifest = Json::parse(ReadAll(backup + "/MANIFEST.json"));
  manifest["format"] = "appban.backup/2";
  manifest["database"] = {{"backend", "postgresql"},
                          {"location", "postgresql://appban@db/appban"},
                          {"name", "appban"},
                          {"server_version", "15.8"},
                          {"schema_version", 3},
                          {"audit_entries", 1},
                          {"audit_head", std::string(64, 'a')},
                          {"audit_first_hash", std::string(64, 'a')},
                          {"rows", Json::object()}};
  { std::ofstream(backup + "/MANIFEST.json", std::ios::trunc) << manifest.dump(); }
  ExpectRefused(backup, StatusCode::kFailedPrecondition, "is a backup of a PostgreSQL installation");
  reset();
  { std::ofstream(backup + "/MANIFEST.json", std::ios::trunc) << "{\"format\": \"appban.backup/9\"}"; }
  ExpectRefused(backup, StatusCode::kUnsupported, "appban.backup/9");
  reset();
  fs::remove(backup + "/MANIFEST.json");
  ExpectRefused(backup, StatusCode::kNotFound, "MANIFEST.json");
}

TEST_F(ServerBackup, ADatabaseWhoseChainWasRewrittenToMatchTheManifestIsStillRefused) {
  const std::string backup = Backup();
  // Someone with the backup rewrites its database and updates the manifest's hash and size to
  // match: the chain (checked against the checkpoint signed at backup time) gives it away.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((backup + "/database/appban.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 1",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  Json manifest = Json::parse(ReadAll(backup + "/MANIFEST.json"));
  for (Json& file : manifest["files"]) {
    if (file["path"] != "database/appban.db") continue;
    std::string bytes = ReadAll(backup + "/database/appban.db");
    file["bytes"] = bytes.size();
    file["sha256"] = Sha256Hex(Bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }
  { std::ofstream(backup + "/MANIFEST.json", std::ios::trunc) << manifest.dump(); }
  ExpectRefused(backup, StatusCode::kCorruption, "the audit chain does not verify (entry 1");
}

TEST_F(ServerBackup, RestoreNeverOverwritesAnInstallation) {
  const std::string backup = Backup();
  auto refused = RestoreServer(config_, backup, kRestoreTime, false);  // onto the live data directory
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(refused.status().message().find("never overwrites"), std::string::npos);

  ServerConfig empty = RestoreConfig("empty");
  fs::create_directory(empty.data_dir);  // an empty directory (a fresh mount point) is fine
  auto restored = RestoreServer(empty, backup, kRestoreTime, false);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_TRUE(fs::exists(empty.data_dir + "/keys/active"));
}

TEST_F(ServerBackup, BackupRefusesToOverwriteOrToLiveInsideTheDataDirectory) {
  const std::string backup = Backup();
  auto again = BackupServer(config_, backup, kBackupTime);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  auto inside = BackupServer(config_, config_.data_dir + "/backups/one", kBackupTime);
  ASSERT_FALSE(inside.ok());
  EXPECT_EQ(inside.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(config_.data_dir + "/backups"));

  fs::create_symlink("/etc/passwd", config_.data_dir + "/linked");
  auto linked = BackupServer(config_, (scratch_.path() / "linked-backup").string(), kBackupTime);
  ASSERT_FALSE(linked.ok());
  EXPECT_NE(linked.status().message().find("symbolic link"), std::string::npos);
  EXPECT_FALSE(fs::exists(scratch_.path() / "linked-backup"));
  for (const auto& entry : fs::directory_iterator(scratch_.path())) {
    EXPECT_EQ(entry.path().filename().string().find("partial"), std::string::npos) << entry.path();
  }
}

TEST_F(ServerBackup, TheOneTimeAdminTokenFileIsLeftOutAndSaidSo) {
  config_.first_admin_token_file = config_.data_dir + "/first-admin-token";
  { std::ofstream(config_.first_admin_token_file) << "t-secret\n"; }
  auto report = BackupServer(config_, (scratch_.path() / "backup").string(), kBackupTime);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(fs::exists(scratch_.path() / "backup/data/first-admin-token"));
  ASSERT_EQ(report->left_out.size(), 1u);
  EXPECT_EQ(report->left_out[0].path, "first-admin-token");
  EXPECT_NE(DescribeBackup(*report).find("left out        first-admin-token"), std::string::npos);
}

TEST_F(ServerBackup, ADatabaseOutsideTheDataDirectoryGoesBackWhereTheConfigurationSays) {
  // Move the database (and its checkpoint directory) out of the data directory.
  const std::string elsewhere = (scratch_.path() / "db" / "fleet.db").string();
  fs::create_directories(scratch_.path() / "db");
  fs::rename(config_.DatabasePath(), elsewhere);
  fs::rename(config_.DatabasePath() + ".audit", elsewhere + ".audit");
  config_.database = elsewhere;
  const std::string backup = Backup();
  EXPECT_TRUE(fs::exists(backup + "/database/appban.db"));
  EXPECT_FALSE(fs::exists(backup + "/data/appban.db"));

  ServerConfig target = RestoreConfig("restored");
  target.database = (scratch_.path() / "db2" / "fleet.db").string();
  fs::create_directories(scratch_.path() / "db2");
  auto restored = RestoreServer(target, backup, kRestoreTime, false);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_FALSE(fs::exists(target.data_dir + "/appban.db"));
  auto store = store::OpenSqliteStore(target.database);
  ASSERT_TRUE(store.ok());
  auto verified = (*store)->VerifyAudit();
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok());
  EXPECT_EQ(verified->checkpoint_seq, verified->entries);
}

}  // namespace
}  // namespace appban::server
