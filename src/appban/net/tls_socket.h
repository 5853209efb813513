// A server-side TLS stream over a tcp::socket that calls OpenSSL directly on the non-blocking
// descriptor and waits for readiness with Asio. Internal to the net part (server.cc).
//
// Why not asio::ssl::stream: it allocates two 17 KiB record buffers per connection, plus a 17 KiB
// BIO pair, all resident for the connection's life (about 75 KiB per idle TLS connection,
// measured by ServerMemory.IdleTlsConnections). Here OpenSSL reads from and writes to the socket
// itself, and SSL_MODE_RELEASE_BUFFERS frees its record buffers whenever a connection is idle.
//
// Satisfies Asio's AsyncReadStream and AsyncWriteStream, so Beast reads HTTP from it. One read
// and one write may be outstanding at once (on the one io_context thread); not thread-safe.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <memory>

namespace appban::net::detail {

class TlsSocket {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  // `context` must outlive the socket (the server's options keep it). After construction,
  // valid() tells whether OpenSSL could create the connection state.
  TlsSocket(boost::asio::ip::tcp::socket socket, SSL_CTX* context);

  bool valid() const { return ssl_ != nullptr; }
  executor_type get_executor() { return socket_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return socket_; }
  SSL* native_handle() { return ssl_.get(); }

  // The server side of the handshake. Handler: void(error_code, size_t).
  template <class Handler>
  auto async_handshake(Handler&& handler) {
    return Run(Step::kHandshake, nullptr, 0, std::forward<Handler>(handler));
  }
  // Sends close_notify; does not wait for the peer's. Handler: void(error_code, size_t).
  template <class Handler>
  auto async_shutdown(Handler&& handler) {
    return Run(Step::kShutdown, nullptr, 0, std::forward<Handler>(handler));
  }
  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    boost::asio::mutable_buffer first = FirstBuffer<boost::asio::mutable_buffer>(buffers);
    return Run(Step::kRead, first.data(), first.size(), std::forward<Handler>(handler));
  }
  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    boost::asio::const_buffer first = FirstBuffer<boost::asio::const_buffer>(buffers);
    return Run(Step::kWrite, const_cast<void*>(first.data()), first.size(), std::forward<Handler>(handler));
  }

 private:
  enum class Step { kHandshake, kRead, kWrite, kShutdown };
  struct Attempt {
    bool done = false;
    boost::asio::socket_base::wait_type wait = boost::asio::socket_base::wait_read;
    boost::system::error_code error;
    size_t bytes = 0;
  };
  struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };

  template <class Buffer, class Buffers>
  static Buffer FirstBuffer(const Buffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      Buffer buffer(*it);
      if (buffer.size() > 0) return buffer;
    }
    return Buffer();
  }

  // One non-blocking OpenSSL call.
  Attempt Try(Step step, void* data, size_t size);

  // Repeats Try until it completes, waiting for the socket in between. A completion on the first
  // attempt is posted, never invoked inside the initiating call.
  template <class Handler>
  auto Run(Step step, void* data, size_t size, Handler&& handler) {
    return boost::asio::async_compose<Handler, void(boost::system::error_code, size_t)>(
        [this, step, data, size, started = false](auto& self, boost::system::error_code wait_error = {}) mutable {
          if (wait_error) return self.complete(wait_error, 0);
          Attempt attempt = Try(step, data, size);
          if (attempt.done && !started) {
            started = true;
            boost::asio::post(socket_.get_executor(), [self = std::move(self), attempt]() mutable {
              self.complete(attempt.error, attempt.bytes);
            });
            return;
          }
          if (attempt.done) return self.complete(attempt.error, attempt.bytes);
          started = true;
          socket_.async_wait(attempt.wait, std::move(self));
        },
        handler, socket_);
  }

  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<SSL, SslFree> ssl_;
};

}  // namespace appban::net::detail
