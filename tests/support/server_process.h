// Runs the real `appban server` for integration tests: a child process on a loopback port in a
// temporary data directory, its output captured, stopped (SIGTERM, then SIGKILL) on destruction.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "appban/net/client.h"

namespace appban::testing {

class ServerProcess {
 public:
  // Starts `appban server --data-dir DIR --address 127.0.0.1 --port 0 <extra>` and waits until it
  // prints the URL it listens on. TLS unless `extra` asks for plain HTTP.
  static std::optional<ServerProcess> Start(const std::filesystem::path& data_dir,
                                            const std::vector<std::string>& extra = {});
  ServerProcess(ServerProcess&& other) noexcept;
  ServerProcess& operator=(ServerProcess&&) = delete;
  ~ServerProcess();

  const std::string& url() const { return url_; }
  // The one-time admin token printed on first start ("" on later starts).
  const std::string& admin_token() const { return admin_token_; }
  std::string output() const;  // stdout + stderr so far
  std::string ca_pem() const;  // the CA certificate clients pin ("" for plain HTTP)
  pid_t pid() const { return pid_; }

  // A client for this server (pinned to its CA when TLS).
  net::HttpClient Client() const;

  // Sends `signal` and waits for the process (and its workers) to end; returns its exit status
  // (128+signal when killed).
  int Stop(int signal, std::chrono::seconds timeout = std::chrono::seconds(30));

 private:
  ServerProcess() = default;
  pid_t pid_ = -1;
  std::filesystem::path data_dir_;
  std::filesystem::path log_path_;
  std::string url_;
  std::string admin_token_;
};

}  // namespace appban::testing
