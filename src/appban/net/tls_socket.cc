#include "appban/net/tls_socket.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cerrno>

namespace appban::net::detail {
namespace {

// A socket BIO that sends with MSG_NOSIGNAL: OpenSSL's own socket BIO uses write(), which raises
// SIGPIPE (killing the worker) when a client has gone away.
int DescriptorOf(BIO* bio) { return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio))); }

int BioWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t sent = send(DescriptorOf(bio), data, static_cast<size_t>(size), MSG_NOSIGNAL);
  if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(bio);
  return static_cast<int>(sent);
}

int BioRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t got = recv(DescriptorOf(bio), data, static_cast<size_t>(size), 0);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(bio);
  return static_cast<int>(got);
}

long BioControl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

int BioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

// Created once and never changed: shared, immutable method table.
const BIO_METHOD* SocketBioMethod() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* created = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "appban socket");
    BIO_meth_set_write(created, BioWrite);
    BIO_meth_set_read(created, BioRead);
    BIO_meth_set_ctrl(created, BioControl);
    BIO_meth_set_create(created, BioCreate);
    return created;
  }();
  return method;
}

}  // namespace

TlsSocket::TlsSocket(boost::asio::ip::tcp::socket socket, SSL_CTX* context) : socket_(std::move(socket)) {
  boost::system::error_code ignored;
  socket_.non_blocking(true, ignored);
  ssl_.reset(SSL_new(context));
  BIO* bio = ssl_ ? BIO_new(SocketBioMethod()) : nullptr;
  if (!bio) {
    ssl_.reset();
    ERR_clear_error();
    return;
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(socket_.native_handle())));
  SSL_set_bio(ssl_.get(), bio, bio);
  SSL_set_accept_state(ssl_.get());
  SSL_set_mode(ssl_.get(),
               SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
}

TlsSocket::Attempt TlsSocket::Try(Step step, void* data, size_t size) {
  Attempt attempt;
  if (!ssl_) {
    attempt.done = true;
    attempt.error = boost::asio::error::no_memory;
    return attempt;
  }
  if ((step == Step::kRead || step == Step::kWrite) && size == 0) {
    attempt.done = true;
    return attempt;
  }
  ERR_clear_error();
  int result = 0;
  switch (step) {
    case Step::kHandshake:
      result = SSL_do_handshake(ssl_.get());
      break;
    case Step::kRead:
      result = SSL_read_ex(ssl_.get(), data, size, &attempt.bytes);
      break;
    case Step::kWrite:
      result = SSL_write_ex(ssl_.get(), data, size, &attempt.bytes);
      break;
    case Step::kShutdown:
      result = SSL_shutdown(ssl_.get());
      if (result == 0) result = 1;  // close_notify sent; the peer's is not awaited
      break;
  }
  if (result > 0) {
    attempt.done = true;
    return attempt;
  }
  attempt.bytes = 0;
  int error = SSL_get_error(ssl_.get(), result);
  if (error == SSL_ERROR_WANT_READ) return attempt;
  if (error == SSL_ERROR_WANT_WRITE) {
    attempt.wait = boost::asio::socket_base::wait_write;
    return attempt;
  }
  attempt.done = true;
  if (error == SSL_ERROR_ZERO_RETURN) {
    attempt.error = boost::asio::error::eof;
  } else if (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    attempt.error = errno != 0 ? boost::system::error_code(errno, boost::system::system_category())
                               : boost::system::error_code(boost::asio::error::eof);
  } else {
    unsigned long code = ERR_get_error();
    attempt.error = code != 0
                        ? boost::system::error_code(static_cast<int>(code), boost::asio::error::get_ssl_category())
                        : boost::system::error_code(boost::asio::ssl::error::stream_truncated);
  }
  ERR_clear_error();
  return attempt;
}

}  // namespace appban::net::detail
