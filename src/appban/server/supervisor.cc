#include "appban/server/supervisor.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <ostream>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "appban/common/file.h"
#include "appban/server/bootstrap.h"
#include "appban/server/metrics.h"
#include "appban/server/worker.h"

namespace appban::server {
namespace {

// A worker that keeps dying is not restarted faster than this.
constexpr auto kRestartBackoff = std::chrono::seconds(1);

void ConfigureLogging(const ServerConfig& config) {
  auto logger = spdlog::stderr_color_mt("appban");
  spdlog::set_default_logger(logger);
  if (config.log.format == LogFormat::kJson) {
    // One JSON object per line for log shippers; spdlog escapes nothing, so messages we log never
    // carry client-controlled text unquoted (ids are validated identifiers).
    spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","pid":%P,"message":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [%P] %v", spdlog::pattern_time_type::utc);
  }
  switch (config.log.level) {
    case LogLevel::kTrace:
      spdlog::set_level(spdlog::level::trace);
      break;
    case LogLevel::kDebug:
      spdlog::set_level(spdlog::level::debug);
      break;
    case LogLevel::kInfo:
      spdlog::set_level(spdlog::level::info);
      break;
    case LogLevel::kWarn:
      spdlog::set_level(spdlog::level::warn);
      break;
    case LogLevel::kError:
      spdlog::set_level(spdlog::level::err);
      break;
  }
}

uint64_t RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

struct Listener {
  int fd = -1;
  uint16_t port = 0;
};

Result<Listener> Bind(const std::string& address, uint16_t port, bool reuse_port) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (int error = getaddrinfo(address.c_str(), service.c_str(), &hints, &found); error != 0) {
    return Status::InvalidArgument("listen.address \"" + address + "\": " + gai_strerror(error));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, freeaddrinfo);
  int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
    int error = errno;
    close(fd);
    return Status::Unavailable("cannot listen on " + address + ":" + service + ": " + std::strerror(error));
  }
  // A deep backlog: a fleet reconnecting after a restart arrives all at once.
  if (listen(fd, 65535) != 0) {
    int error = errno;
    close(fd);
    return Status::Internal(std::string("listen: ") + std::strerror(error));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  uint16_t actual = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return Listener{fd, actual};
}

std::string UrlFor(const ServerConfig& config, uint16_t port) {
  std::string host = config.listen.address;
  if (host == "0.0.0.0" || host == "::") {
    auto names = config.ServerNames();
    host = names.empty() ? "127.0.0.1" : names.front();
  }
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(config.listen.tls ? "https" : "http") + "://" + host + ":" + std::to_string(port);
}

}  // namespace

int RunServer(const ServerConfig& config, std::ostream& out) {
  ConfigureLogging(config);
  if (auto valid = ValidateConfig(config); !valid.ok()) {
    spdlog::error("configuration: {}", valid.message());
    return 2;
  }
  uint64_t descriptors = RaiseDescriptorLimit();
  uint32_t cores = std::max(1u, std::thread::hardware_concurrency());
  uint32_t workers = WorkerCount(config, cores, descriptors);
  // One listening socket per worker on the same port (SO_REUSEPORT): the kernel spreads new
  // connections evenly over the workers, so none fills up while others idle. The supervisor
  // keeps them all open, and a restarted worker takes over its predecessor's socket.
  std::vector<Listener> listeners;
  auto listener = Bind(config.listen.address, config.listen.port, true);
  if (!listener.ok()) {
    spdlog::error("{}", listener.status().message());
    return 1;
  }
  listeners.push_back(*listener);
  for (uint32_t i = 1; i < workers; ++i) {
    auto another = Bind(config.listen.address, listener->port, true);
    if (!another.ok()) {
      spdlog::error("{}", another.status().message());
      return 1;
    }
    listeners.push_back(*another);
  }
  std::string url = UrlFor(config, listener->port);
  // First start: data directory, certificate, policy key, one-time admin token. The database
  // connections bootstrap opens are closed again before any worker is forked.
  auto prepared = Bootstrap(config, url);
  if (!prepared.ok()) {
    spdlog::error("preparing {}: {}", config.data_dir, prepared.status().ToString());
    return 1;
  }
  std::string certificate_pem;
  std::string key_pem;
  if (config.listen.tls) {
    auto certificate = ReadFileToString(prepared->certificate_path, 1 << 20);
    auto key = ReadFileToString(prepared->key_path, 1 << 20);
    if (!certificate.ok() || !key.ok()) {
      spdlog::error("reading the TLS certificate or key: {}",
                    (!certificate.ok() ? certificate.status() : key.status()).ToString());
      return 1;
    }
    certificate_pem = std::move(*certificate);
    key_pem = std::move(*key);
  }

  auto region = MetricsRegion::Create(workers);
  if (!region.ok()) {
    spdlog::error("metrics: {}", region.status().ToString());
    return 1;
  }
  auto generations = DeviceGenerations::Create();
  if (!generations.ok()) {
    spdlog::error("{}", generations.status().ToString());
    return 1;
  }
  out << FirstStartBanner(*prepared);
  out << "appban server listening on " << url << " with " << workers << " worker process" << (workers == 1 ? "" : "es")
      << " (data: " << config.data_dir << ")" << std::endl;

  // Signals are taken synchronously (sigwait) by the supervisor; workers unblock them again and
  // handle them in their io_context.
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGCHLD);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &handled, &previous);

  WorkerInputs inputs;
  inputs.metrics = &*region;
  inputs.generations = &*generations;
  inputs.certificate_pem = certificate_pem;
  inputs.private_key_pem = key_pem;
  std::map<pid_t, int> running;  // pid -> worker index
  std::map<int, std::chrono::steady_clock::time_point> last_start;
  const pid_t supervisor = getpid();
  auto spawn = [&](int index) -> bool {
    last_start[index] = std::chrono::steady_clock::now();
    out.flush();
    pid_t pid = fork();
    if (pid < 0) {
      spdlog::error("fork: {}", std::strerror(errno));
      return false;
    }
    if (pid == 0) {
      // A worker must not outlive its supervisor (it would keep serving on the shared socket).
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != supervisor) _exit(1);
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      inputs.worker_index = index;
      inputs.listening_fd = listeners[static_cast<size_t>(index)].fd;
      int status = RunWorker(config, inputs);
      spdlog::default_logger()->flush();
      _exit(status);
    }
    running[pid] = index;
    return true;
  };
  for (uint32_t i = 0; i < workers; ++i) {
    if (!spawn(static_cast<int>(i))) return 1;
  }

  bool stopping = false;
  int exit_status = 0;
  while (!running.empty()) {
    int signal_number = 0;
    sigwait(&handled, &signal_number);
    if (signal_number == SIGTERM || signal_number == SIGINT) {
      if (!stopping) spdlog::info("stopping: finishing in-flight requests");
      stopping = true;
      for (const auto& [pid, index] : running) kill(pid, SIGTERM);
      continue;
    }
    // SIGCHLD: reap every worker that ended.
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      auto it = running.find(pid);
      if (it == running.end()) continue;
      int index = it->second;
      running.erase(it);
      bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (stopping) {
        if (!clean) exit_status = 1;
        continue;
      }
      // It may have committed device writes it did not get to announce.
      generations->BumpEpoch();
      spdlog::error("worker {} (pid {}) ended unexpectedly ({}); restarting it", index, pid,
                    WIFSIGNALED(status) ? std::string("signal ") + std::to_string(WTERMSIG(status))
                                        : "exit " + std::to_string(WEXITSTATUS(status)));
      auto since = std::chrono::steady_clock::now() - last_start[index];
      if (since < kRestartBackoff) std::this_thread::sleep_for(kRestartBackoff - since);
      if (!spawn(index)) exit_status = 1;
    }
  }
  for (const Listener& socket : listeners) close(socket.fd);
  spdlog::info("stopped");
  return exit_status;
}

}  // namespace appban::server
