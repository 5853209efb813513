#include "support/login_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <sstream>
#include <thread>

extern char** environ;

namespace appban::testing {
LoginProcess::LoginProcess(const std::vector<std::string>& argv, const std::filesystem::path& dir)
    : out_(dir / "login.out"), err_(dir / "login.err") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&actions);
}

LoginProcess::~LoginProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string LoginProcess::VerificationUri() const {
  for (int i = 0; i < 300; ++i) {
    std::istringstream lines(ReadWholeFile(out_));
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("  http")) return line.substr(2);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

CommandResult LoginProcess::Wait() {
  CommandResult result;
  for (int i = 0; i < 900 && pid_ > 0; ++i) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  result.out = ReadWholeFile(out_);
  result.err = ReadWholeFile(err_);
  return result;
}

}  // namespace appban::testing
