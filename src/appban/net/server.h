// The HTTP/1.1 server of an appban worker process, on Boost.Beast/Asio (optionally over TLS).
//
// One HttpServer serves one io_context, which must be run by exactly one thread: the server, its
// connections, the Handler and every Responder live on that thread and take no locks. Several
// worker processes may each Adopt() the same listening socket (bound by the supervisor).
//
// What it guarantees to clients, whatever they send: HTTP/1.1 keep-alive, HTTP/1.0 close,
// pipelined requests answered in order (one request of a connection is with the application at a
// time), `Expect: 100-continue`, `Connection: close`, 400 with a JSON error naming the problem for
// malformed requests, 431 for oversized headers, 413 (without reading the body) above the route's
// BodyLimit, the RequestGate's answer (without reading the body: an unauthenticated upload costs
// nothing), 400 and close for a Transfer-Encoding other than `chunked` (RFC 9112 §6.1: such a body
// cannot be delimited, and guessing lets its bytes pass as a second, smuggled request), 503 when
// too many large bodies are already being received, and timeouts on every phase so slow clients
// cannot hold a connection (the first request's headers have one deadline counted from the moment
// the connection is ready, not restarted when its first byte arrives).
//
// Lifetime: connections share the server's state, so the HttpServer may be destroyed while the
// io_context still holds completions (they then find their connection closed). Destroying it
// closes every connection without answering held Responders.
//
// Memory (ServerMemory.* tests, VmRSS of a server process): an idle keep-alive or held long-poll
// connection costs about 2.3 KiB plain and 16 KiB with TLS (server TLS uses detail::TlsSocket,
// not asio::ssl::stream, which cost about 75 KiB).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "appban/common/status.h"
#include "appban/net/asio_fwd.h"
#include "appban/net/http.h"

namespace appban::net {

// RLIMIT_NOFILE (soft) minus a reserve for the database, log and rejected-at-capacity sockets.
size_t DefaultMaxConnections();

struct ServerOptions {
  size_t max_header_bytes = 16 * 1024;                       // request line plus headers; above it: 431
  std::chrono::milliseconds read_header_timeout{10'000};     // from first byte to end of headers
  std::chrono::milliseconds read_body_timeout{60'000};       // the whole body
  std::chrono::milliseconds write_timeout{30'000};           // the whole response
  std::chrono::milliseconds idle_keepalive_timeout{75'000};  // between requests
  std::chrono::milliseconds tls_handshake_timeout{10'000};
  size_t max_connections = DefaultMaxConnections();
  size_t max_requests_per_connection = 0;  // 0 = unlimited
  // A body declared (or, chunked, allowed by its route) above large_body_bytes is "large"; at most
  // max_large_bodies of them are received at once by one server, the next gets 503 + Retry-After,
  // so parallel uploads cannot take a worker's memory.
  size_t large_body_bytes = 1 << 20;
  size_t max_large_bodies = 4;
  // TLS when set (see net/tls.h MakeServerContext); plain HTTP otherwise.
  std::shared_ptr<boost::asio::ssl::context> tls;
};

// Callbacks for metrics. Called on the io_context thread; must not call back into the server.
class ServerObserver {
 public:
  virtual ~ServerObserver() = default;
  virtual void OnConnectionOpened() {}
  virtual void OnConnectionClosed() {}
  // A connection refused with 503 because max_connections was reached.
  virtual void OnConnectionRejected() {}
  // `path` is the request's decoded path (the owner maps it to a route label so ids do not explode
  // the label set); for requests refused before parsing (400, 431) it is "".
  virtual void OnRequestCompleted(std::string_view method, std::string_view path, int status, double seconds) {
    (void)method, (void)path, (void)status, (void)seconds;
  }
};

class HttpServer {
 public:
  // `body_limit` may be empty: then every route accepts no body. `observer` may be nullptr and must
  // outlive the server.
  HttpServer(boost::asio::io_context& io, ServerOptions options, Handler handler, BodyLimit body_limit,
             ServerObserver* observer);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds `address` ("127.0.0.1", "::", "0.0.0.0") and starts accepting. Port 0 picks an ephemeral
  // port. Returns the port actually bound.
  Result<uint16_t> Listen(const std::string& address, uint16_t port);
  // Accepts on an already listening socket (bound by the supervisor before forking). The server
  // works on a duplicate of the descriptor; the caller keeps owning `listening_fd`.
  Status Adopt(int listening_fd);

  // Registered by the application: looks at a request's method, path, query, headers and remote
  // address (its body is still unread and empty) and either lets it through (nullopt) or answers
  // it at once — typically 401/403 for a caller that may not use the route. A refused request's
  // body is never read; the connection is closed after the answer when a body was announced.
  void SetRequestGate(RequestGate gate);

  // Registered by the application: answers every held Responder (long-polls). Called once by
  // BeginShutdown; responses sent from then on carry `Connection: close`.
  void SetLongPollDrainer(std::function<void()> drain_long_polls);

  // Stops accepting, closes idle keep-alive connections, drains long-polls, lets in-flight requests
  // finish, then calls `on_idle` (once) when no connection remains — or at `deadline`, after
  // force-closing what is left.
  void BeginShutdown(std::function<void()> on_idle, std::chrono::milliseconds deadline = std::chrono::seconds(30));

  size_t connection_count() const;

  struct State;  // shared with the connections; defined in server.cc

 private:
  void StartAccepting();

  std::shared_ptr<State> state_;
};

}  // namespace appban::net
