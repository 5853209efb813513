// Durability under SIGKILL: a child process streams acknowledged writes (each acknowledged id goes
// to a pipe only after the store returned OK), the parent kills it mid-stream, reopens the store
// and checks that it is consistent and that every acknowledged write is there.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include "appban/store/store.h"
#include "appban/store/store_test_support.h"

namespace appban::store {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void WriteForever(const std::string& db, int ack_fd) {
  auto store = OpenSqliteStore(db);
  if (!store.ok()) _exit(3);
  for (int i = 0; i < 1000000; ++i) {
    std::string name = "group-" + std::to_string(i);
    // Alternate two kinds of transaction so both document tables and the audit chain are hit.
    Status status;
    if (i % 2 == 0) {
      policy::Group group{name, "written before the crash", {"device-" + std::to_string(i)}, 0};
      status = CreateGroupAs(**store, std::move(group), "writer", i);
    } else {
      policy::Rule rule;
      rule.id = name;
      rule.title = "rule " + name;
      rule.targets = {*policy::MakeTarget(policy::TargetKind::kAndroidPackage, "com.example.app" + std::to_string(i))};
      status = ProposeRuleAs(**store, rule, "writer", i);
    }
    if (!status.ok()) _exit(4);
    std::string line = name + "\n";
    if (write(ack_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(5);
  }
  _exit(0);
}

TEST(StoreCrash, SigkillMidStreamLosesNothingAcknowledged) {
  std::string pattern = (fs::temp_directory_path() / "appban-crash-XXXXXX").string();
  fs::path dir = mkdtemp(pattern.data());
  std::string db = (dir / "policy.db").string();
  ASSERT_TRUE(OpenSqliteStore(db).ok());  // create the schema before the race starts

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    WriteForever(db, fds[1]);
  }
  close(fds[1]);
  FILE* acks = fdopen(fds[0], "r");
  ASSERT_NE(acks, nullptr);
  std::set<std::string> acknowledged;
  char line[128];
  // Kill after a number of acknowledgements: the child is then in the middle of its next write.
  constexpr size_t kKillAfter = 150;
  while (acknowledged.size() < kKillAfter && fgets(line, sizeof(line), acks) != nullptr) {
    std::string name(line);
    if (!name.empty() && name.back() == '\n') name.pop_back();
    acknowledged.insert(name);
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer ended on its own (exit " << WEXITSTATUS(status) << ")";
  // Acknowledgements already in the pipe were acknowledged too.
  while (fgets(line, sizeof(line), acks) != nullptr) {
    std::string name(line);
    if (!name.empty() && name.back() == '\n') name.pop_back();
    if (!name.empty()) acknowledged.insert(name);
  }
  fclose(acks);
  ASSERT_GE(acknowledged.size(), kKillAfter);

  auto store = OpenSqliteStore(db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE((*store)->CheckIntegrity().ok());
  auto audit = (*store)->VerifyAudit();
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->ok()) << (audit->problems.empty() ? "" : audit->problems[0].what);
  auto groups = (*store)->ListGroups();
  auto rules = (*store)->ListRules();
  ASSERT_TRUE(groups.ok() && rules.ok());
  std::set<std::string> present;
  for (const auto& g : *groups) present.insert(g.name);
  for (const auto& r : *rules) present.insert(r.id);
  for (const auto& name : acknowledged) EXPECT_EQ(present.count(name), 1u) << name << " was acknowledged but is lost";
  // Nothing half-written: every stored object has exactly one audit entry, in order.
  EXPECT_EQ(audit->entries, static_cast<int64_t>(present.size()));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace appban::store
