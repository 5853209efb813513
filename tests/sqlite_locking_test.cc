// Another process reading the server's SQLite database while the server runs: an operator's
// `sqlite3`, the CLI's read-only commands, a backup. It must see every write the server
// acknowledged, and it must never fold the WAL into the main file and delete it while the server
// still writes to it. That happened: opening a second connection closed a descriptor of the
// database file, which drops every POSIX lock the process held on it, so the other process believed
// it was alone, deleted the WAL, and from then on saw none of the server's writes.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "appban/common/json.h"
#include "appban/net/client.h"
#include "appban/store/sqlite.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::ServerProcess;
using testing::TempDir;

// What `sqlite3 DB SQL` prints, trimmed; fails the test when the tool fails.
std::string Sqlite3(const fs::path& db, const std::string& sql) {
  auto result = RunCommand({"sqlite3", db.string(), sql});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::string out = result.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

TEST(SqliteLockingTest, AnotherProcessSeesEveryWriteOfAProcessWithSeveralConnections) {
  TempDir dir;
  const fs::path db = dir.path() / "appban.db";
  auto first = store::sqlite::OpenStoreDatabase(db.string());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->Exec("CREATE TABLE notes(n INTEGER); INSERT INTO notes VALUES (1)").ok());
  // A second connection in the same process, as every server worker opens several.
  auto second = store::sqlite::OpenStoreDatabase(db.string());
  ASSERT_TRUE(second.ok()) << second.status().ToString();

  EXPECT_EQ(Sqlite3(db, "SELECT count(*) FROM notes"), "1");
  EXPECT_TRUE(fs::exists(db.string() + "-wal"))
      << "the other process deleted the WAL that this process's connections still write to";

  ASSERT_TRUE(first->Exec("INSERT INTO notes VALUES (2)").ok());
  ASSERT_TRUE(second->Exec("INSERT INTO notes VALUES (3)").ok());
  EXPECT_EQ(Sqlite3(db, "SELECT group_concat(n) FROM (SELECT n FROM notes ORDER BY n)"), "1,2,3");
}

TEST(SqliteLockingTest, AnOperatorsSqlite3SeesWhatTheRunningServerAcknowledged) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path(), {"--insecure-plain-http", "--workers", "2"});
  ASSERT_TRUE(server.has_value());
  const fs::path db = dir.path() / "appban.db";
  const std::vector<std::pair<std::string, std::string>> auth = {{"authorization", "Bearer " + server->admin_token()},
                                                                 {"content-type", "application/json"}};
  auto client = server->Client();

  // The operator looks while the server runs, then the server acknowledges new writes.
  const std::string before = Sqlite3(db, "SELECT count(*) FROM enrollment_tokens");
  ASSERT_EQ(before, "0");
  for (int round = 1; round <= 3; ++round) {
    auto issued = client.Request("POST", "/v1/admin/enrollment-tokens", R"({"count":5})", auth);
    ASSERT_TRUE(issued.ok()) << issued.status().ToString();
    ASSERT_EQ(issued->status, 201) << issued->body;
    EXPECT_EQ(Sqlite3(db, "SELECT count(*) FROM enrollment_tokens"), std::to_string(5 * round))
        << "an acknowledged write is missing from what another process reads";
    EXPECT_TRUE(fs::exists(db.string() + "-wal")) << "the WAL the server writes to was deleted under it";
  }
  // What the server itself reads agrees.
  auto listed = client.Request("GET", "/v1/admin/enrollment-tokens?limit=100", "", auth);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  auto json = nlohmann::json::parse(listed->body, nullptr, false);
  ASSERT_TRUE(json.is_object()) << listed->body;
  EXPECT_EQ(json["tokens"].size(), 15u);
}

}  // namespace
}  // namespace appban
