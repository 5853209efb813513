#include "appban/agent/watch.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace appban::agent {
namespace {

constexpr uint32_t kFileEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB;

UnixSeconds WallClockNow() { return static_cast<UnixSeconds>(::time(nullptr)); }

}  // namespace

ChangeWatcher::ChangeWatcher(ChangeWatcher&& other) noexcept { *this = std::move(other); }

ChangeWatcher& ChangeWatcher::operator=(ChangeWatcher&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    watches_ = std::move(other.watches_);
  }
  return *this;
}

ChangeWatcher::~ChangeWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

Result<ChangeWatcher> ChangeWatcher::Open(const SystemPaths& paths, const std::string& wake_file) {
  ChangeWatcher watcher;
  watcher.fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (watcher.fd_ < 0) return Status::Unavailable(std::string("inotify_init1: ") + std::strerror(errno));
  auto add = [&](const std::string& directory, const std::string& name, uint32_t mask) -> Status {
    int wd = ::inotify_add_watch(watcher.fd_, directory.c_str(), mask | IN_ONLYDIR);
    if (wd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return Status::Ok();  // that source is not on this system
      return Status::Unavailable("inotify watch on " + directory + ": " + std::strerror(errno));
    }
    watcher.watches_.emplace_back(wd, name);
    return Status::Ok();
  };
  APPBAN_RETURN_IF_ERROR(add(paths.dpkg_admindir, "status", kFileEvents));
  if (!wake_file.empty()) {
    std::filesystem::path wake(wake_file);
    APPBAN_RETURN_IF_ERROR(add(wake.parent_path().string(), wake.filename().string(), kFileEvents));
  }
  APPBAN_RETURN_IF_ERROR(add(paths.snap_mount_dir, "", IN_CREATE | IN_MOVED_TO | IN_DELETE));
  for (const auto& installation : paths.flatpak_installations) {
    APPBAN_RETURN_IF_ERROR(add(installation.path, ".changed", kFileEvents));
    APPBAN_RETURN_IF_ERROR(add(installation.path + "/app", "", IN_CREATE | IN_MOVED_TO | IN_DELETE));
  }
  return watcher;
}

Result<bool> ChangeWatcher::Wait(std::chrono::milliseconds timeout, std::chrono::milliseconds settle) {
  bool changed = false;
  auto drain = [&]() -> Status {
    alignas(inotify_event) std::array<char, 8192> buffer;
    while (true) {
      ssize_t n = ::read(fd_, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return Status::Ok();
      if (n < 0) return Status::Unavailable(std::string("inotify read: ") + std::strerror(errno));
      for (ssize_t offset = 0; offset + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer.data() + offset);
        std::string_view name = event->len > 0 ? std::string_view(event->name) : std::string_view();
        if (event->mask & IN_Q_OVERFLOW) changed = true;  // lost events: assume the worst
        for (const auto& [wd, wanted] : watches_) {
          if (wd == event->wd && (wanted.empty() || wanted == name)) changed = true;
        }
        offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    }
  };
  pollfd poll_fd{fd_, POLLIN, 0};
  int ready = ::poll(&poll_fd, 1, static_cast<int>(timeout.count()));
  if (ready < 0 && errno != EINTR) return Status::Unavailable(std::string("poll: ") + std::strerror(errno));
  if (ready <= 0) return false;
  APPBAN_RETURN_IF_ERROR(drain());
  if (!changed) return false;
  // Fold the burst of writes one dpkg run makes into one wake-up.
  while (::poll(&poll_fd, 1, static_cast<int>(settle.count())) > 0) APPBAN_RETURN_IF_ERROR(drain());
  return true;
}

Status EnforceOnce(const SystemPaths& paths, Enforcer& enforcer, const DecideFn& decide, const RecordFn& record,
                   UnixSeconds now) {
  APPBAN_ASSIGN_OR_RETURN(LocalInventory inventory, CollectInventory(paths));
  std::vector<policy::AppDecision> decisions = decide(inventory);
  if (decisions.size() != inventory.entries.size()) {
    return Status::Internal("decide returned " + std::to_string(decisions.size()) + " decisions for " +
                            std::to_string(inventory.entries.size()) + " apps");
  }
  auto plan = PlanEnforcement(inventory.entries, decisions, enforcer.config().monitor);
  auto events = enforcer.Execute(plan, now);
  auto refusals = enforcer.CollectRefusals(now);
  events.insert(events.end(), refusals.begin(), refusals.end());
  if (events.empty()) return Status::Ok();
  return record(std::move(events));
}

Status WatchAndEnforce(ChangeWatcher& watcher, const SystemPaths& paths, Enforcer& enforcer, const DecideFn& decide,
                       const RecordFn& record, std::stop_token stop, std::chrono::milliseconds interval) {
  constexpr std::chrono::milliseconds kStopCheck(200);
  auto next_full_cycle = std::chrono::steady_clock::now();
  bool run = true;
  while (!stop.stop_requested()) {
    if (run || std::chrono::steady_clock::now() >= next_full_cycle) {
      APPBAN_RETURN_IF_ERROR(EnforceOnce(paths, enforcer, decide, record, WallClockNow()));
      next_full_cycle = std::chrono::steady_clock::now() + interval;
    }
    APPBAN_ASSIGN_OR_RETURN(run, watcher.Wait(kStopCheck));
  }
  return Status::Ok();
}

}  // namespace appban::agent
