// `appban audit list|verify` in-process: what an auditor sees for an intact chain and for one an
// operator edited behind appban's back with the sqlite3 shell.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>
#include <string>

#include "appban/cli/cli_test_support.h"

namespace appban::cli {
namespace {

using Json = nlohmann::json;

class AuditCommandTest : public CliTest {
 protected:
  // Runs SQL on the data directory's database directly, as someone with file access could.
  void ExecSql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((data() + "/appban.db").c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }
};

TEST_F(AuditCommandTest, AFreshDataDirectoryHasAnEmptyIntactChain) {
  auto verified = RunCli({"audit", "verify", "--data", data()});
  ASSERT_EQ(verified.exit_code, 0) << verified.err;
  EXPECT_TRUE(Contains(verified.out, "audit chain OK: 0 entries")) << verified.out;
  auto listed = RunCli({"audit", "list", "--data", data(), "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(Json::parse(listed.out).empty());
}

TEST_F(AuditCommandTest, EveryChangeIsListedWithItsActor) {
  ASSERT_EQ(
      BreakGlass("alice", {"rules", "add", "--id", "ban-x", "--title", "T", "--target", "android:com.x"}).exit_code, 0);
  ASSERT_EQ(BreakGlass("bob", {"groups", "add", "finance"}).exit_code, 0);

  auto listed = RunCli({"audit", "list", "--data", data(), "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  Json entries = Json::parse(listed.out);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0]["seq"], 1);
  EXPECT_EQ(entries[0]["actor"], "alice");
  EXPECT_EQ(entries[0]["action"], "rule.propose");
  EXPECT_EQ(entries[0]["object"], "rule:ban-x");
  EXPECT_TRUE(entries[0]["before"].is_null());
  EXPECT_EQ(entries[0]["after"]["id"], "ban-x");
  EXPECT_EQ(entries[1]["actor"], "bob");
  EXPECT_EQ(entries[1]["prev_hash"], entries[0]["hash"]) << "each entry names its predecessor's hash";

  auto text = RunCli({"audit", "list", "--data", data()});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(Contains(text.out, "  alice  rule.propose  rule:ban-x  ")) << text.out;

  auto verified = RunCli({"audit", "verify", "--data", data(), "--json"});
  ASSERT_EQ(verified.exit_code, 0) << verified.err;
  Json summary = Json::parse(verified.out);
  EXPECT_EQ(summary["ok"], true);
  EXPECT_EQ(summary["entries"], 2);
  EXPECT_EQ(summary["head_hash"], entries[1]["hash"]);
  EXPECT_TRUE(summary["problems"].empty());
}

TEST_F(AuditCommandTest, AnEditedEntryBreaksTheChainAndIsNamed) {
  ASSERT_EQ(
      BreakGlass("alice", {"rules", "add", "--id", "ban-x", "--title", "T", "--target", "android:com.x"}).exit_code, 0);
  ASSERT_EQ(BreakGlass("bob", {"groups", "add", "finance"}).exit_code, 0);
  // The triggers refuse edits; someone with the file drops them first.
  ExecSql("DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 1");

  auto verified = RunCli({"audit", "verify", "--data", data()});
  EXPECT_EQ(verified.exit_code, 1);
  EXPECT_TRUE(Contains(verified.out, "audit chain BROKEN")) << verified.out;
  EXPECT_TRUE(Contains(verified.out, "  entry 1: ")) << verified.out;

  auto json = RunCli({"audit", "verify", "--data", data(), "--json"});
  EXPECT_EQ(json.exit_code, 1);
  Json summary = Json::parse(json.out);
  EXPECT_EQ(summary["ok"], false);
  ASSERT_FALSE(summary["problems"].empty());
  EXPECT_EQ(summary["problems"][0]["seq"], 1);
}

TEST_F(AuditCommandTest, AuditNeedsASubcommand) {
  auto result = RunCli({"audit", "--data", data()});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(Contains(result.err, "subcommand")) << result.err;
  // There is no way to change the log: an unknown verb is refused (as a missing subcommand).
  auto unknown = RunCli({"audit", "erase", "--data", data()});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_TRUE(Contains(unknown.err, "A subcommand is required")) << unknown.err;
}

}  // namespace
}  // namespace appban::cli
