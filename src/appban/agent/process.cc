#include "appban/agent/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace appban::agent {
namespace {

// Owns a file descriptor; closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Close();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Status MakePipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  read_end = Fd(fds[0]);
  write_end = Fd(fds[1]);
  return Status::Ok();
}

// Destroys the posix_spawn attribute objects on every path.
struct SpawnActions {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  SpawnActions() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
  }
  ~SpawnActions() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
};

}  // namespace

std::string CommandResult::Describe() const {
  std::string text = stderr_text.empty() ? stdout_text : stderr_text;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  constexpr size_t kMaxShown = 1500;  // fits the protocol's event detail with room for context
  if (text.size() > kMaxShown) text = "..." + text.substr(text.size() - kMaxShown);
  return "exit " + std::to_string(exit_code) + (text.empty() ? "" : ": " + text);
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                                 const std::string& stdin_text, const CommandLimits& limits) {
  if (argv.empty() || argv[0].empty()) return Status::InvalidArgument("RunCommand: empty argv");
  Fd in_read, in_write, out_read, out_write, err_read, err_write;
  APPBAN_RETURN_IF_ERROR(MakePipe(in_read, in_write));
  APPBAN_RETURN_IF_ERROR(MakePipe(out_read, out_write));
  APPBAN_RETURN_IF_ERROR(MakePipe(err_read, err_write));

  SpawnActions spawn;
  posix_spawn_file_actions_adddup2(&spawn.actions, in_read.get(), 0);
  posix_spawn_file_actions_adddup2(&spawn.actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&spawn.actions, err_write.get(), 2);
  // The package tools start with no blocked signals and SIGPIPE at its default, whatever the
  // calling thread had: dpkg and APT rely on both.
  sigset_t no_signals, default_signals;
  sigemptyset(&no_signals);
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGPIPE);
  posix_spawnattr_setsigmask(&spawn.attributes, &no_signals);
  posix_spawnattr_setsigdefault(&spawn.attributes, &default_signals);
  posix_spawnattr_setflags(&spawn.attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> env_storage;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view name(*entry);
    name = name.substr(0, name.find('='));
    bool overridden = false;
    for (const auto& extra : extra_env) overridden |= extra.compare(0, name.size() + 1, std::string(name) + "=") == 0;
    if (!overridden) env_storage.emplace_back(*entry);
  }
  env_storage.insert(env_storage.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_storage = argv;
  std::vector<char*> argvp;
  for (auto& arg : argv_storage) argvp.push_back(arg.data());
  argvp.push_back(nullptr);

  pid_t pid = 0;
  int spawn_error = ::posix_spawnp(&pid, argvp[0], &spawn.actions, &spawn.attributes, argvp.data(), envp.data());
  if (spawn_error != 0) {
    return Status::Unavailable("cannot run " + argv[0] + ": " + std::strerror(spawn_error));
  }
  in_read.Close();
  out_write.Close();
  err_write.Close();

  CommandResult result;
  size_t stdin_written = 0;
  if (stdin_text.empty()) in_write.Close();
  // A child that exits without reading stdin must not kill us with SIGPIPE: write with MSG_NOSIGNAL
  // is not available for pipes, so the pipe is non-blocking and EPIPE is simply the end of input.
  if (in_write.get() >= 0) ::fcntl(in_write.get(), F_SETFL, O_NONBLOCK);
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

  auto deadline = std::chrono::steady_clock::now() + limits.timeout;
  bool timed_out = false;
  while (out_read.get() >= 0 || err_read.get() >= 0) {
    std::array<pollfd, 3> fds{};
    nfds_t count = 0;
    fds[count++] = {out_read.get(), POLLIN, 0};
    fds[count++] = {err_read.get(), POLLIN, 0};
    if (in_write.get() >= 0) fds[count++] = {in_write.get(), POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    int ready = ::poll(fds.data(), count, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    std::array<char, 16384> buffer;
    for (int stream = 0; stream < 2; ++stream) {
      if (fds[stream].fd < 0 || !(fds[stream].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[stream].fd, buffer.data(), buffer.size());
      std::string& sink = stream == 0 ? result.stdout_text : result.stderr_text;
      if (n > 0) {
        size_t keep =
            std::min(static_cast<size_t>(n), limits.max_output_bytes - std::min(limits.max_output_bytes, sink.size()));
        sink.append(buffer.data(), keep);
      } else if (n == 0 || errno != EINTR) {
        (stream == 0 ? out_read : err_read).Close();
      }
    }
    if (count == 3 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(in_write.get(), stdin_text.data() + stdin_written, stdin_text.size() - stdin_written);
      if (n > 0) stdin_written += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) in_write.Close();
      if (stdin_written == stdin_text.size()) in_write.Close();
    }
  }
  in_write.Close();
  // Discard a SIGPIPE that a write may have left pending, then restore the mask.
  timespec zero{0, 0};
  while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);

  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Status::Unavailable(argv[0] + " did not finish within " + std::to_string(limits.timeout.count()) +
                               " ms; killed");
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return result;
}

}  // namespace appban::agent
