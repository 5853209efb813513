// Test helpers for the net tests: a server running on its own thread, and a raw blocking socket
// for sending bytes no well-behaved client would send. Test-only (included by *_test.cc).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "appban/net/server.h"

namespace appban::net::testing {

// An HttpServer on 127.0.0.1:<ephemeral> whose io_context runs on a thread of its own.
class ServerThread {
 public:
  ServerThread(ServerOptions options, Handler handler, BodyLimit body_limit = nullptr,
               ServerObserver* observer = nullptr)
      : work_(boost::asio::make_work_guard(io_)) {
    if (!body_limit) body_limit = [](std::string_view, std::string_view) -> size_t { return 1 << 20; };
    server_ =
        std::make_unique<HttpServer>(io_, std::move(options), std::move(handler), std::move(body_limit), observer);
    Result<uint16_t> bound = server_->Listen("127.0.0.1", 0);
    EXPECT_TRUE(bound.ok()) << bound.status().ToString();
    port_ = bound.ok() ? *bound : 0;
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ServerThread() {
    RunOnServer([this] { server_.reset(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  HttpServer& server() { return *server_; }
  boost::asio::io_context& io() { return io_; }

  // Runs `function` on the server thread and waits for it.
  template <class Function>
  auto RunOnServer(Function function) -> decltype(function()) {
    std::packaged_task<decltype(function())()> task(std::move(function));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::thread thread_;
};

// A blocking TCP connection to 127.0.0.1 for hand-written requests.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawConnection() { Close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t sent = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }
  // Reads what arrives until the peer closes or `timeout` passes; sets closed() accordingly.
  std::string ReadUntilClosed(std::chrono::milliseconds timeout) {
    std::string data;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (ReadSome(data, deadline)) {
    }
    return data;
  }
  // Reads until `data` holds `count` complete responses (Content-Length framed) or timeout.
  std::string ReadResponses(size_t count, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (CountResponses(pending_) < count && ReadSome(pending_, deadline)) {
    }
    return std::exchange(pending_, std::string());
  }
  bool closed() const { return closed_; }

  static size_t CountResponses(const std::string& data) {
    size_t count = 0, position = 0;
    while (true) {
      size_t end = data.find("\r\n\r\n", position);
      if (end == std::string::npos) return count;
      std::string head = data.substr(position, end - position);
      size_t body = 0;
      size_t at = head.find("Content-Length: ");
      if (at != std::string::npos) body = std::stoul(head.substr(at + 16));
      if (head.rfind("HTTP/1.1 100", 0) == 0) body = 0;
      if (data.size() < end + 4 + body) return count;
      position = end + 4 + body;
      ++count;
    }
  }

 private:
  bool ReadSome(std::string& data, std::chrono::steady_clock::time_point deadline) {
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) return false;
    pollfd descriptor{fd_, POLLIN, 0};
    if (poll(&descriptor, 1, static_cast<int>(remaining.count())) <= 0) return false;
    char chunk[4096];
    ssize_t got = recv(fd_, chunk, sizeof(chunk), 0);
    if (got <= 0) {
      closed_ = true;
      return false;
    }
    data.append(chunk, static_cast<size_t>(got));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string pending_;
};

}  // namespace appban::net::testing
