// The README's tour runs as printed (issue 18, rough edge 2): every shell session in README.md
// whose command reads files only — `appban inspect`, `appban assess`, `appban catalog list/show/diff` — is run
// with the same command line, in a directory holding the files it names (androguard's
// TestActivity.apk, the iOS fixtures), and the output printed under it must appear in what the
// command prints, line by line and in order. A line "..." stands for lines left out; "…" inside a
// line for text left out. Hashes and times that change with each fixture build (a hex run of 16
// or more digits, an ISO 8601 time) match any such run. Sessions that need a running server or a
// device (curl, login, policy, agent) are run by the tests of those commands instead.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace appban {
namespace {

namespace fs = std::filesystem;
using testing::AppbanBinary;
using testing::RunCommand;
using testing::TempDir;

struct Session {
  int line = 0;         // in README.md, 1-based
  std::string command;  // after "$ "
  std::vector<std::string> printed;
};

std::string RightTrimmed(std::string text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
  return text;
}

// Every "$ command" in a fenced block, with the lines printed under it.
std::vector<Session> ReadSessions(const fs::path& readme) {
  std::ifstream in(readme);
  std::vector<Session> sessions;
  bool in_block = false;
  Session* current = nullptr;  // the session whose output the block's next lines are
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.starts_with("```")) {
      in_block = !in_block;
      current = nullptr;
      continue;
    }
    if (!in_block) continue;
    if (line.starts_with("$ ")) {
      sessions.push_back({number, line.substr(2), {}});
      current = &sessions.back();
    } else if (current != nullptr) {
      current->printed.push_back(RightTrimmed(line));
    }
  }
  return sessions;
}

bool RunsLocally(const std::string& command) {
  static const std::regex kLocal(R"(^appban (inspect|assess|catalog (list|show|diff)) )");
  return std::regex_search(command, kLocal);
}

// A printed line as a pattern: "…" is any text, long hex runs and ISO times any such run.
std::regex LinePattern(const std::string& printed) {
  static const std::regex kSpecial(R"([.^$|()\[\]{}*+?\\])");
  std::string pattern;
  size_t start = 0;
  const std::string ellipsis = "…";
  while (true) {
    size_t at = printed.find(ellipsis, start);
    std::string piece = std::regex_replace(printed.substr(start, at - start), kSpecial, "\\$&");
    piece = std::regex_replace(piece, std::regex("[0-9a-f]{16,}"), "[0-9a-f]{16,}");
    piece = std::regex_replace(piece, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"),
                               R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
    pattern += piece;
    if (at == std::string::npos) break;
    pattern += ".*";
    start = at + ellipsis.size();
  }
  return std::regex(pattern);
}

// Empty when every printed line (but "...") matches an output line, in order.
std::string Mismatch(const std::vector<std::string>& printed, const std::string& output) {
  std::vector<std::string> actual;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) actual.push_back(RightTrimmed(line));
  size_t next = 0;
  for (const std::string& expected : printed) {
    std::string trimmed = expected.substr(
        expected.find_first_not_of(' ') == std::string::npos ? expected.size() : expected.find_first_not_of(' '));
    if (trimmed == "..." || expected.empty()) continue;
    std::regex pattern = LinePattern(expected);
    while (next < actual.size() && !std::regex_match(actual[next], pattern)) ++next;
    if (next == actual.size()) return "the printed line\n  " + expected + "\nis not in the output (in order)";
    ++next;
  }
  return "";
}

TEST(ReadmeSessions, EveryLocalSessionPrintsWhatTheReadmeShows) {
  fs::path apk = testing::AndroguardExamples() / "android/TestsAndroguard/bin/TestActivity.apk";
  if (!fs::exists(apk)) GTEST_SKIP() << "androguard's examples are not installed";
  TempDir dir;
  fs::copy_file(apk, dir.path() / "TestActivity.apk");
  for (const char* name : {"Demo.ipa", "DemoEncrypted"}) {
    fs::copy_file(testing::Fixture(std::string("ios/") + name), dir.path() / name);
  }
  std::ofstream(dir.path() / "notes.txt") << "minutes of the meeting\n";

  auto sessions = ReadSessions(fs::path(APPBAN_SOURCE_DIR) / "README.md");
  // `appban` is this build's binary, found through PATH as a user's shell finds it.
  std::string path = fs::path(AppbanBinary()).parent_path().string() + ":" + std::getenv("PATH");
  int run = 0;
  for (const Session& session : sessions) {
    if (!RunsLocally(session.command)) continue;
    ++run;
    auto result = RunCommand({"/usr/bin/env", "PATH=" + path, "NO_COLOR=1", "bash", "-c",
                              "cd '" + dir.path().string() + "' && { " + session.command + "; } 2>&1"});
    std::string mismatch = Mismatch(session.printed, result.out);
    EXPECT_TRUE(mismatch.empty()) << "README.md:" << session.line << ": $ " << session.command << "\n"
                                  << mismatch << "\nthe command printed:\n"
                                  << result.out;
  }
  // inspect (text, --json, a failure), iOS inspect (ipa, encrypted), assess (iOS, APK), catalog diff.
  EXPECT_GE(run, 8) << "the README lost sessions this test runs";
}

TEST(ReadmeSessions, TheComparisonCatchesAChangedLineAndAllowsElidedText) {
  std::string output = "alpha 1\nbeta 2  (+20)\nsha 3bb32dd50129690bce850124ea120aa334e708ea\ngamma\n";
  EXPECT_EQ(Mismatch({"alpha 1", "...", "gamma"}, output), "");
  EXPECT_EQ(Mismatch({"beta …(+20)"}, output), "");
  EXPECT_EQ(Mismatch({"sha 0123456789abcdef0123456789abcdef01234567"}, output), "");
  EXPECT_NE(Mismatch({"beta 3  (+20)"}, output), "");
  EXPECT_NE(Mismatch({"gamma", "alpha 1"}, output), "") << "order matters";
}

}  // namespace
}  // namespace appban
