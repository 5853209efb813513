#include "support/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "support/test_support.h"

namespace appban::testing {
std::optional<ServerProcess> ServerProcess::Start(const std::filesystem::path& data_dir,
                                                  const std::vector<std::string>& extra) {
  ServerProcess server;
  server.data_dir_ = data_dir;
  std::filesystem::create_directories(data_dir.parent_path());
  server.log_path_ = data_dir.string() + ".log";
  std::vector<std::string> argv = {AppbanBinary(), "server",    "--data-dir", data_dir.string(),
                                   "--address",    "127.0.0.1", "--port",     "0"};
  // Two workers: enough to exercise everything that crosses workers (a publish made by one
  // waking polls held by another), light enough for the sanitizer build.
  if (std::find(extra.begin(), extra.end(), "--workers") == extra.end()) {
    argv.insert(argv.end(), {"--workers", "2"});
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  // Truncated here, before the child exists, so the output of an earlier run is never read.
  std::ofstream(server.log_path_, std::ios::trunc).close();
  pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    int fd = open(server.log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    // Its own process group, so Stop() can reach the workers if the supervisor is killed.
    setpgid(0, 0);
    std::vector<char*> args;
    for (auto& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  server.pid_ = pid;
  std::regex listening(R"(listening on (https?://[0-9.]+:[0-9]+))");
  std::regex token(R"((t-[0-9a-f]{16}\.[0-9a-f]{64}))");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string output = ReadWholeFile(server.log_path_);
    std::smatch match;
    if (std::regex_search(output, match, listening)) {
      server.url_ = match[1];
      if (std::regex_search(output, match, token)) server.admin_token_ = match[1];
      // Workers accept as soon as they are forked; wait until one answers.
      auto client = server.Client();
      for (int i = 0; i < 200; ++i) {
        auto health = client.Request("GET", "/healthz");
        if (health.ok() && health->status == 200) return server;
        if (i == 199) std::fprintf(stderr, "server never answered /healthz: %s\n", health.status().ToString().c_str());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      std::fprintf(stderr, "server output:\n%s\n", ReadWholeFile(server.log_path_).c_str());
      return std::nullopt;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      server.pid_ = -1;
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

ServerProcess::ServerProcess(ServerProcess&& other) noexcept
    : pid_(other.pid_),
      data_dir_(std::move(other.data_dir_)),
      log_path_(std::move(other.log_path_)),
      url_(std::move(other.url_)),
      admin_token_(std::move(other.admin_token_)) {
  other.pid_ = -1;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

std::string ServerProcess::output() const { return ReadWholeFile(log_path_); }

std::string ServerProcess::ca_pem() const {
  if (url_.rfind("https://", 0) != 0) return "";
  // bootstrap writes the CA the administrator hands to devices somewhere in the data directory.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data_dir_)) {
    if (entry.path().filename() == "ca.pem") return ReadWholeFile(entry.path());
  }
  return "";
}

net::HttpClient ServerProcess::Client() const {
  net::ClientOptions options;
  options.pinned_ca_pem = ca_pem();
  options.read_timeout = std::chrono::seconds(120);
  return net::HttpClient(*net::ParseUrl(url_), options);
}

int ServerProcess::Stop(int signal, std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  // SIGKILL goes to the whole group, as `kill -9` of a crashed host would take every process.
  kill(signal == SIGKILL ? -pid_ : pid_, signal);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  int result = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (result < 0) {
    kill(-pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    result = 128 + SIGKILL;
  }
  // Workers of a killed supervisor: they share its process group.
  if (signal == SIGKILL) kill(-pid_, SIGKILL);
  pid_ = -1;
  return result;
}

}  // namespace appban::testing
