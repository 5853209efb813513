// Running the package tools (dpkg, apt-get, dpkg-deb, flatpak, snap) as child processes: argv
// only (never a shell), bounded output, a deadline after which the child is killed. Each call is
// independent; safe to use from any thread.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "appban/common/status.h"

namespace appban::agent {

struct CommandLimits {
  // stdout and stderr are each kept up to this many bytes; the rest is read and dropped.
  size_t max_output_bytes = 1u << 20;
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};

struct CommandResult {
  int exit_code = -1;  // the exit status, or 128 + signal number when the child was killed
  std::string stdout_text;
  std::string stderr_text;
  bool ok() const { return exit_code == 0; }
  // "exit 100: E: Unable to locate package x" — stderr trimmed to its last few lines for reports.
  std::string Describe() const;
};

// Runs argv[0] (looked up in PATH when it has no slash) with argv, the current environment plus
// `extra_env` ("NAME=value"), `stdin_text` on its stdin. Fails only when the program cannot be
// started or the deadline passes (the child is then killed); a non-zero exit is a CommandResult.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {},
                                 const std::string& stdin_text = "", const CommandLimits& limits = {});

}  // namespace appban::agent
