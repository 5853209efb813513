// Runs the appban command line in-process (cli::Run) for the CLI's unit tests and captures what a
// user would see: the exit status, standard output and standard error. Each test gets its own
// temporary directory for data directories, bundles and inventories.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "appban/cli/app.h"

namespace appban::cli {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// `appban ARGS...`, as the shell would run it.
inline CliResult RunCli(const std::vector<std::string>& args) {
  std::vector<std::string> storage = {"appban"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  CliResult result;
  result.exit_code = Run(static_cast<int>(storage.size()), argv.data());
  result.out = ::testing::internal::GetCapturedStdout();
  result.err = ::testing::internal::GetCapturedStderr();
  return result;
}

inline bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A fresh temporary directory per test, and no data directory or acting user from the
// environment, so every test says which it uses.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "appban-cli-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    unsetenv("APPBAN_DATA");
    unsetenv("APPBAN_USER");
    // No server and no saved sign-in unless a test makes one: decisions go local only with --break-glass.
    unsetenv("APPBAN_SERVER");
    unsetenv("APPBAN_TOKEN_FILE");
    setenv("APPBAN_CREDENTIALS", (dir_ / "credentials.json").c_str(), 1);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::string data() const { return Path("data"); }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  std::string Read(const std::string& path) const {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
  }

  // `appban policy --data DATA --user USER ARGS...`
  CliResult Policy(const std::string& user, std::initializer_list<std::string> args) const {
    std::vector<std::string> full = {"policy", "--data", data(), "--user", user};
    full.insert(full.end(), args.begin(), args.end());
    return RunCli(full);
  }
  // `appban policy --data DATA --user USER --break-glass ARGS...`: a decision on the local
  // database, as on the server host while the server is down (without a server there is no other way).
  CliResult BreakGlass(const std::string& user, std::initializer_list<std::string> args) const {
    std::vector<std::string> full = {"policy", "--data", data(), "--user", user, "--break-glass"};
    full.insert(full.end(), args.begin(), args.end());
    return RunCli(full);
  }

  std::filesystem::path dir_;
};

}  // namespace appban::cli
