// GET /readyz of the real `appban server`, as a load balancer uses it: ready while the database
// answers at the schema version this binary serves; not ready (503, saying why) once a newer
// appban migrated the database, while /healthz keeps saying the process is alive.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

#include "appban/common/json.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using testing::ServerProcess;
using testing::TempDir;

// Sets the SQLite schema version directly, as a newer appban's migration would.
void SetSchemaVersion(const std::filesystem::path& db_path, int64_t version) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  std::string sql = "PRAGMA user_version = " + std::to_string(version);
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

TEST(ServerReadiness, ReadyAtTheCurrentSchemaAndNotReadyOnceANewerAppbanMigratedTheDatabase) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() / "data");
  ASSERT_TRUE(server.has_value()) << "server did not start";
  auto client = server->Client();

  // No credential: a load balancer has none.
  auto ready = client.Request("GET", "/readyz");
  ASSERT_TRUE(ready.ok()) << ready.status().ToString();
  EXPECT_EQ(ready->status, 200) << ready->body;
  Json body = Json::parse(ready->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << ready->body;
  EXPECT_EQ(body.value("status", ""), "ready");
  int64_t version = body.value("schema_version", int64_t{0});
  EXPECT_GT(version, 0) << ready->body;

  auto refused = client.Request("POST", "/readyz", "{}");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 405);

  SetSchemaVersion(dir.path() / "data" / "appban.db", version + 1);
  // Every worker reads the version on its own connection: whichever answers says not ready.
  for (int i = 0; i < 4; ++i) {
    auto not_ready = client.Request("GET", "/readyz");
    ASSERT_TRUE(not_ready.ok());
    EXPECT_EQ(not_ready->status, 503) << not_ready->body;
    Json error = Json::parse(not_ready->body, nullptr, false);
    std::string message = error.is_object() && error.contains("error") ? error["error"].value("message", "") : "";
    EXPECT_NE(message.find("schema version " + std::to_string(version + 1)), std::string::npos) << not_ready->body;
    EXPECT_NE(message.find("serves version " + std::to_string(version)), std::string::npos) << not_ready->body;
  }
  auto health = client.Request("GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200) << "the process is alive even when it may not serve";
}

}  // namespace
}  // namespace appban
