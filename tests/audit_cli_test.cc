// Hardening item 11 through the real binary: build a short history with `appban policy`, tamper
// with the SQLite file the way someone with write access to it would (dropping the append-only
// triggers first), and check that `appban audit verify` fails and says why.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace appban::testing {
namespace {

namespace fs = std::filesystem;

class AuditCli : public ::testing::Test {
 protected:
  void SetUp() override {
    // What is under test is the chain, not who decided: the history is made on the host with
    // --break-glass (there is no server here), so approving is left out.
    Policy("alice", {"rules", "add", "--id", "r1", "--title", "ban one", "--target", "android:com.example.one"});
    Policy("alice", {"rules", "add", "--id", "r2", "--title", "ban two", "--target", "android:com.example.two"});
    Policy("bob", {"groups", "add", "ministers", "--device", "phone-1"});
    Policy("bob", {"rules", "revoke", "r2", "--reason", "duplicate"});
    Policy("alice", {"groups", "add-devices", "ministers", "phone-2"});
    auto chain = Verify();
    ASSERT_EQ(chain.exit_code, 0) << chain.out << chain.err;
    ASSERT_NE(chain.out.find("audit chain OK: 5 entries"), std::string::npos) << chain.out;
  }
  void Policy(const std::string& user, std::vector<std::string> args) {
    std::vector<std::string> full = {AppbanBinary(), "policy", "--data", data(), "--user", user, "--break-glass"};
    full.insert(full.end(), args.begin(), args.end());
    auto result = RunCommand(full);
    ASSERT_EQ(result.exit_code, 0) << result.err;
  }
  CommandResult Verify() { return RunCommand({AppbanBinary(), "audit", "verify", "--data", data()}); }
  // Runs SQL on the database file with a plain connection, as an attacker would.
  void Tamper(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((fs::path(data()) / "appban.db").c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc =
        sqlite3_exec(db,
                     ("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; "
                      "DROP TRIGGER IF EXISTS audit_head_no_update; DROP TRIGGER IF EXISTS audit_head_no_delete; " +
                      sql)
                         .c_str(),
                     nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }
  void ExpectBroken(const std::string& says) {
    auto chain = Verify();
    EXPECT_EQ(chain.exit_code, 1) << chain.out << chain.err;
    EXPECT_NE(chain.out.find("audit chain BROKEN"), std::string::npos) << chain.out << chain.err;
    EXPECT_NE(chain.out.find(says), std::string::npos) << chain.out << chain.err;
  }
  std::string data() const { return (dir_.path() / "data").string(); }
  TempDir dir_;
};

TEST_F(AuditCli, ForgedJsonBytesAreCaught) {
  // SQLite's json_extract reads the first of two equal members: the forged "revoked".
  Tamper("UPDATE audit SET after_json = '{\"state\":\"revoked\",' || substr(after_json, 2) WHERE seq = 4");
  ExpectBroken("entry 4 was edited");
}

TEST_F(AuditCli, DeletedTailIsCaught) {
  Tamper("DELETE FROM audit WHERE seq >= 4");
  ExpectBroken("truncated");
}

TEST_F(AuditCli, DeletedTailAndHeadAreCaught) {
  Tamper("DELETE FROM audit WHERE seq >= 4; DELETE FROM audit_head");
  ExpectBroken("truncated");
}

TEST_F(AuditCli, ReplacedHeadIsCaught) {
  Tamper(
      "DELETE FROM audit WHERE seq >= 4; UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit WHERE seq = 3)");
  ExpectBroken("truncated");
}

TEST_F(AuditCli, HeadRowIsGuardedInTheDatabase) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((fs::path(data()) / "appban.db").c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM audit_head", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE audit_head SET seq = 1", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto chain = Verify();
  EXPECT_EQ(chain.exit_code, 0) << chain.out << chain.err;
}

}  // namespace
}  // namespace appban::testing
