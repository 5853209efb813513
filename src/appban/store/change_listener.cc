#include "appban/store/change_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "appban/store/postgres.h"
#include "appban/store/postgres_store.h"

namespace appban::store {

Result<std::unique_ptr<ChangeListener>> ChangeListener::Start(Options options, Callbacks callbacks) {
  int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) return Status::Internal(std::string("change listener: eventfd: ") + std::strerror(errno));
  std::unique_ptr<ChangeListener> listener(new ChangeListener(std::move(options), std::move(callbacks), wake_fd));
  listener->thread_ = std::thread([raw = listener.get()] { raw->Run(); });
  return listener;
}

ChangeListener::ChangeListener(Options options, Callbacks callbacks, int wake_fd)
    : options_(std::move(options)), callbacks_(std::move(callbacks)), wake_fd_(wake_fd) {}

ChangeListener::~ChangeListener() {
  stopping_.store(true, std::memory_order_release);
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  ::close(wake_fd_);
}

bool ChangeListener::SleepOrStop(std::chrono::milliseconds wait) {
  pollfd wake{wake_fd_, POLLIN, 0};
  (void)::poll(&wake, 1, static_cast<int>(wait.count()));
  return stopping_.load(std::memory_order_acquire);
}

void ChangeListener::Run() {
  std::chrono::milliseconds retry = options_.first_retry;
  while (!stopping_.load(std::memory_order_acquire)) {
    int64_t before = connections_.load(std::memory_order_relaxed);
    Status lost = ListenOnce();
    listening_.store(false, std::memory_order_release);
    if (stopping_.load(std::memory_order_acquire)) return;
    callbacks_.on_lost(lost);
    // A connection that was up starts the waits over; repeated failures to connect back off.
    if (connections_.load(std::memory_order_relaxed) != before) retry = options_.first_retry;
    if (SleepOrStop(retry)) return;
    retry = std::min(retry * 2, options_.longest_retry);
  }
}

Status ChangeListener::ListenOnce() {
  APPBAN_ASSIGN_OR_RETURN(postgres::Connection db, postgres::Connection::Open(options_.url, options_.password));
  APPBAN_RETURN_IF_ERROR(db.Listen(kBundleChannel));
  APPBAN_RETURN_IF_ERROR(db.Listen(kDeviceChannel));
  APPBAN_RETURN_IF_ERROR(db.Listen(kDeviceChangeChannel));
  connections_.fetch_add(1, std::memory_order_relaxed);
  listening_.store(true, std::memory_order_release);
  callbacks_.on_connected();
  while (true) {
    if (db.Socket() < 0) return Status::Unavailable("change listener: the connection to the database was lost");
    pollfd waits[2] = {{db.Socket(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(waits, 2, -1) < 0 && errno != EINTR) {
      return Status::Internal(std::string("change listener: poll: ") + std::strerror(errno));
    }
    if (stopping_.load(std::memory_order_acquire)) return Status::Ok();
    if (waits[0].revents == 0) continue;
    APPBAN_ASSIGN_OR_RETURN(auto arrived, db.TakeNotifications());
    for (const auto& notification : arrived) {
      if (notification.channel == kDeviceChannel || notification.channel == kDeviceChangeChannel) {
        const bool revoked = notification.channel == kDeviceChannel;
        std::string_view ids = notification.payload;
        while (!ids.empty()) {
          size_t end = std::min(ids.find('\n'), ids.size());
          if (end > 0) callbacks_.on_device(std::string(ids.substr(0, end)), revoked);
          ids.remove_prefix(std::min(end + 1, ids.size()));
        }
        continue;
      }
      int64_t version = 0;
      const std::string& text = notification.payload;
      auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), version);
      // A payload that is not a version (someone else's NOTIFY on the channel) still means "look".
      if (error != std::errc() || end != text.data() + text.size() || version < 0) version = 0;
      callbacks_.on_bundle(version);
    }
  }
}

}  // namespace appban::store
