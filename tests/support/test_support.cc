#include "support/test_support.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

extern char** environ;

namespace appban::testing {

std::filesystem::path FixtureDir() {
  const char* dir = std::getenv("APPBAN_FIXTURES");
  return dir != nullptr ? std::filesystem::path(dir) : std::filesystem::path("fixtures");
}

std::string Fixture(const std::string& name) {
  auto path = FixtureDir() / name;
  if (!std::filesystem::exists(path)) ADD_FAILURE() << "missing fixture " << path << " (run tests/fixtures/build.sh)";
  return path.string();
}

std::filesystem::path AndroguardExamples() { return "/usr/share/doc/androguard/examples"; }

std::string AppbanBinary() {
  // Another build's binary, to measure an older server with the same test (docs/benchmarks.md).
  if (const char* other = std::getenv("APPBAN_BINARY"); other != nullptr && *other != '\0') return other;
#ifdef APPBAN_BINARY
  return APPBAN_BINARY;
#else
  return "appban";
#endif
}

std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

CommandResult RunCommand(const std::vector<std::string>& argv) {
  TempDir capture;
  auto out_path = capture.path() / "out";
  auto err_path = capture.path() / "err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  CommandResult result;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    result.err = "spawn failed: " + std::string(strerror(rc));
    return result;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadWholeFile(out_path);
  result.err = ReadWholeFile(err_path);
  return result;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "appban-test-XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace appban::testing
