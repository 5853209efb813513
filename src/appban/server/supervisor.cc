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
#include <utility>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "appban/common/file.h"
#include "appban/net/tls.h"
#include "appban/server/bootstrap.h"
#include "appban/server/instance_guard.h"
#include "appban/server/mdm_sync.h"
#include "appban/server/metrics.h"
#include "appban/server/shared_rate_limiter.h"
#include "appban/server/worker.h"

namespace appban::server {
namespace {

// A worker that keeps dying is not restarted faster than this.
constexpr auto kRestartBackoff = std::chrono::seconds(1);
// The index of the MDM sync process (mdm_sync.h) among the supervised children; workers are 0..n-1.
constexpr int kMdmSyncIndex = -1;

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

// A listening socket, closed when the Listener goes: every early return of RunServer (a port that
// binds for the first worker but not the next, a data directory that is locked, ...) releases
// the port at once instead of holding it until the process ends.
struct Listener {
  int fd = -1;
  uint16_t port = 0;

  Listener(int socket_fd, uint16_t bound_port) : fd(socket_fd), port(bound_port) {}
  Listener(Listener&& other) noexcept : fd(std::exchange(other.fd, -1)), port(other.port) {}
  Listener& operator=(Listener&& other) noexcept {
    if (this != &other) {
      if (fd >= 0) close(fd);
      fd = std::exchange(other.fd, -1);
      port = other.port;
    }
    return *this;
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener() {
    if (fd >= 0) close(fd);
  }
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

// One listening socket per worker on the same port (SO_REUSEPORT): the kernel spreads new
// connections evenly over the workers, so none fills up while others idle. The supervisor keeps
// them all open, and a restarted worker takes over its predecessor's socket.
Result<std::vector<Listener>> BindListeners(const ServerConfig& config, uint32_t workers) {
  // SO_REUSEPORT would let this server silently join another one's listening group.
  APPBAN_RETURN_IF_ERROR(CheckPortFree(config.listen.address, config.listen.port));
  std::vector<Listener> listeners;
  APPBAN_ASSIGN_OR_RETURN(Listener first, Bind(config.listen.address, config.listen.port, true));
  uint16_t port = first.port;
  listeners.push_back(std::move(first));
  // The others take the port the first one got, which matters when the configuration says 0.
  for (uint32_t i = 1; i < workers; ++i) {
    APPBAN_ASSIGN_OR_RETURN(Listener another, Bind(config.listen.address, port, true));
    listeners.push_back(std::move(another));
  }
  return listeners;
}

struct TlsMaterial {
  std::string certificate_pem;  // empty for plain HTTP
  std::string private_key_pem;
  std::string client_ca_pem;  // identity.client_certificates; empty: no mutual TLS
  std::string client_crl_pem;
};

// Read once by the supervisor so every worker (and every restart) serves the same certificate.
Result<TlsMaterial> ReadTlsMaterial(const ServerConfig& config, const BootstrapResult& prepared) {
  TlsMaterial material;
  if (!config.listen.tls) return material;
  auto certificate = ReadFileToString(prepared.certificate_path, 1 << 20);
  auto key = ReadFileToString(prepared.key_path, 1 << 20);
  if (!certificate.ok()) return certificate.status();
  if (!key.ok()) return key.status();
  material.certificate_pem = std::move(*certificate);
  material.private_key_pem = std::move(*key);
  const ClientCertificateConfig& clients = config.identity.client_certificates;
  if (!clients.enabled()) return material;
  auto ca = ReadFileToString(clients.ca_file, 1 << 20);
  if (!ca.ok()) return ca.status().WithContext("identity.client_certificates.ca_file");
  material.client_ca_pem = std::move(*ca);
  if (!clients.crl_file.empty()) {
    auto crl = ReadFileToString(clients.crl_file, 16 << 20);
    if (!crl.ok()) return crl.status().WithContext("identity.client_certificates.crl_file");
    material.client_crl_pem = std::move(*crl);
  }
  // Tried here, so a file that is not what it should be stops the start with its name, before any
  // worker runs.
  auto context = net::MakeServerContext(material.certificate_pem, material.private_key_pem);
  if (!context.ok()) return context.status();
  Status usable = net::RequestClientCertificates(**context, material.client_ca_pem, material.client_crl_pem);
  if (!usable.ok()) {
    return usable.WithContext("identity.client_certificates (" + clients.ca_file +
                              (clients.crl_file.empty() ? "" : ", " + clients.crl_file) + ")");
  }
  return material;
}

// Signals are taken synchronously (sigwait) by the supervisor; workers unblock them again and
// handle them in their io_context. Returns the set now blocked; `previous` receives the old mask.
sigset_t BlockSupervisorSignals(sigset_t& previous) {
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &handled, &previous);
  return handled;
}

// Forks the workers and keeps them running: a worker that dies is restarted (no faster than
// kRestartBackoff); SIGTERM/SIGINT is passed on to every worker, which finishes its in-flight
// requests. Lives in the supervisor process only; single-threaded.
class WorkerPool {
 public:
  WorkerPool(const ServerConfig& config, WorkerInputs inputs, const std::vector<Listener>& listeners,
             DeviceGenerations& generations, sigset_t handled, sigset_t previous, std::ostream& out)
      : config_(config),
        inputs_(std::move(inputs)),
        listeners_(listeners),
        generations_(generations),
        handled_(handled),
        previous_(previous),
        out_(out) {}

  // False when a fork failed (logged); the workers already started keep running.
  bool StartAll(uint32_t workers) {
    for (uint32_t i = 0; i < workers; ++i) {
      if (!Spawn(static_cast<int>(i))) return false;
    }
    if (config_.mdm.HasConnectors() && config_.mdm.sync.enabled && !Spawn(kMdmSyncIndex)) return false;
    return true;
  }

  // Waits for signals until every worker has ended. Returns the process exit status: 1 when a
  // worker ended uncleanly during shutdown or could not be restarted, else 0.
  int Supervise() {
    while (!running_.empty()) {
      int signal_number = 0;
      sigwait(&handled_, &signal_number);
      if (signal_number == SIGTERM || signal_number == SIGINT) {
        StopAll();
      } else {
        ReapEnded();
      }
    }
    return exit_status_;
  }

 private:
  bool Spawn(int index) {
    last_start_[index] = std::chrono::steady_clock::now();
    // Unflushed output would otherwise be written twice, once by the child.
    out_.flush();
    pid_t pid = fork();
    if (pid < 0) {
      spdlog::error("fork: {}", std::strerror(errno));
      return false;
    }
    if (pid == 0) RunChild(index);  // does not return
    running_[pid] = index;
    return true;
  }

  [[noreturn]] void RunChild(int index) {
    // A worker must not outlive its supervisor (it would keep serving on the shared socket).
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != supervisor_) _exit(1);
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    if (index == kMdmSyncIndex) {
      // Holds no listening socket: it never serves a request.
      for (const Listener& listener : listeners_) close(listener.fd);
      int status = RunMdmSyncProcess(config_);
      spdlog::default_logger()->flush();
      _exit(status);
    }
    inputs_.worker_index = index;
    inputs_.listening_fd = listeners_[static_cast<size_t>(index)].fd;
    int status = RunWorker(config_, inputs_);
    spdlog::default_logger()->flush();
    _exit(status);
  }

  void StopAll() {
    if (!stopping_) spdlog::info("stopping: finishing in-flight requests");
    stopping_ = true;
    for (const auto& [pid, index] : running_) kill(pid, SIGTERM);
  }

  // SIGCHLD: reap every worker that ended; restart it unless we are stopping.
  void ReapEnded() {
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      auto it = running_.find(pid);
      if (it == running_.end()) continue;
      int index = it->second;
      running_.erase(it);
      bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      // The SIGTERM the supervisor passed on can reach a worker still starting, before it set up
      // its own handling: it dies of the signal having accepted nothing, which is a clean stop
      // too (systemd stopping a unit it just started got exit 1 for it).
      if (stopping_ && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) clean = true;
      if (stopping_) {
        if (!clean) exit_status_ = 1;
        continue;
      }
      Restart(index, pid, status);
    }
  }

  void Restart(int index, pid_t pid, int status) {
    // It may have committed device writes it did not get to announce.
    generations_.BumpEpoch();
    spdlog::error("{} (pid {}) ended unexpectedly ({}); restarting it",
                  index == kMdmSyncIndex ? std::string("mdm sync") : "worker " + std::to_string(index), pid,
                  WIFSIGNALED(status) ? std::string("signal ") + std::to_string(WTERMSIG(status))
                                      : "exit " + std::to_string(WEXITSTATUS(status)));
    auto since = std::chrono::steady_clock::now() - last_start_[index];
    if (since < kRestartBackoff) std::this_thread::sleep_for(kRestartBackoff - since);
    if (!Spawn(index)) exit_status_ = 1;
  }

  const ServerConfig& config_;
  WorkerInputs inputs_;
  const std::vector<Listener>& listeners_;
  DeviceGenerations& generations_;
  sigset_t handled_;
  sigset_t previous_;
  std::ostream& out_;
  const pid_t supervisor_ = getpid();
  std::map<pid_t, int> running_;  // pid -> worker index
  std::map<int, std::chrono::steady_clock::time_point> last_start_;
  bool stopping_ = false;
  int exit_status_ = 0;
};

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
  auto listeners = BindListeners(config, workers);
  if (!listeners.ok()) {
    spdlog::error("{}", listeners.status().message());
    return 1;
  }
  std::string url = UrlFor(config, listeners->front().port);
  // One server per data directory: taken before anything in it is read or written.
  auto data_dir_lock = LockDataDirectory(config);
  if (!data_dir_lock.ok()) {
    spdlog::error("preparing {}: {}", config.data_dir, data_dir_lock.status().message());
    return 1;
  }
  // First start: data directory, certificate, policy key, one-time admin token. The database
  // connections bootstrap opens are closed again before any worker is forked.
  auto prepared = Bootstrap(config, url);
  if (!prepared.ok()) {
    spdlog::error("preparing {}: {}", config.data_dir, prepared.status().ToString());
    return 1;
  }
  auto metrics_token = ReadMetricsToken(config);
  if (!metrics_token.ok()) {
    spdlog::error("{}", metrics_token.status().message());
    return 1;
  }
  auto tls = ReadTlsMaterial(config, *prepared);
  if (!tls.ok()) {
    spdlog::error("reading the TLS certificate or key: {}", tls.status().ToString());
    return 1;
  }

  // Created before the fork so that every worker maps the same memory.
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
  auto enrollment_limiter =
      SharedRateLimiter::Create(config.enrollment.rate_limit_burst, config.enrollment.rate_limit_per_minute);
  if (!enrollment_limiter.ok()) {
    spdlog::error("enrolment rate limit: {}", enrollment_limiter.status().ToString());
    return 1;
  }
  auto sign_in_limiter =
      SharedRateLimiter::Create(config.console.sign_in_rate_limit_burst, config.console.sign_in_rate_limit_per_minute);
  if (!sign_in_limiter.ok()) {
    spdlog::error("sign-in rate limit: {}", sign_in_limiter.status().ToString());
    return 1;
  }
  out << FirstStartBanner(*prepared);
  out << "appban server listening on " << url << " with " << workers << " worker process" << (workers == 1 ? "" : "es")
      << " (data: " << config.data_dir << ")" << std::endl;

  sigset_t previous;
  sigset_t handled = BlockSupervisorSignals(previous);
  WorkerInputs inputs;
  inputs.metrics = &*region;
  inputs.generations = &*generations;
  inputs.enrollment_limiter = &*enrollment_limiter;
  inputs.sign_in_limiter = &*sign_in_limiter;
  inputs.metrics_token = std::move(*metrics_token);
  inputs.certificate_pem = std::move(tls->certificate_pem);
  inputs.private_key_pem = std::move(tls->private_key_pem);
  inputs.client_ca_pem = std::move(tls->client_ca_pem);
  inputs.client_crl_pem = std::move(tls->client_crl_pem);
  WorkerPool pool(config, std::move(inputs), *listeners, *generations, handled, previous, out);
  if (!pool.StartAll(workers)) return 1;
  int exit_status = pool.Supervise();
  listeners->clear();
  spdlog::info("stopped");
  return exit_status;
}

}  // namespace appban::server
