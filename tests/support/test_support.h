// Helpers shared by integration tests: locating fixtures, running commands, temporary dirs.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace appban::testing {

// Directory holding the APKs built by tests/fixtures/build.sh ($APPBAN_FIXTURES).
std::filesystem::path FixtureDir();
// Path of a fixture APK; fails the current test (ADD_FAILURE) when it is missing.
std::string Fixture(const std::string& name);
// The examples that Debian's androguard package ships.
std::filesystem::path AndroguardExamples();
// The appban binary under test: this build's, or $APPBAN_BINARY when set (to measure another).
std::string AppbanBinary();

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs argv (no shell) and captures stdout and stderr.
CommandResult RunCommand(const std::vector<std::string>& argv);

// The whole of a file the test itself wrote or a child process logs to ("" when it cannot be
// read): test-only, unbounded.
std::string ReadWholeFile(const std::filesystem::path& path);

// A fresh temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace appban::testing
