// The asynchronous HTTP/1.1 client: many keep-alive connections driven by one single-threaded
// boost::asio::io_context, plain or TLS (pinned CA), each optionally bound to a chosen local
// (source) address before connecting, so a simulator can open more connections than one address's
// ephemeral port range allows. It shares resolving, source binding, TLS peer checking, response
// limits and the stale-connection rule with the synchronous HttpClient (client_common.h).
//
// An AsyncConnection carries one request at a time. Requests are pre-serialized byte strings
// (SerializeRequest) shared by pointer, so a benchmark can send the same bytes a million times
// without copying or re-encoding them. A request that fails on a reused connection before any
// response byte arrived is retried once on a fresh connection (the server may have closed the idle
// connection meanwhile). Not thread-safe: use a connection only on its io_context's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/net/asio_fwd.h"
#include "appban/net/client.h"

namespace appban::net {

struct ClientTarget {
  Url url;
  std::shared_ptr<boost::asio::ssl::context> tls;     // required when url.tls (MakeClientContext)
  std::chrono::milliseconds connect_timeout{10'000};  // TCP connect plus TLS handshake
  size_t max_response_bytes = 64 * 1024 * 1024;       // a bundle with every rule fits easily

  // Resolves url.host once (numeric addresses need no lookup); connections reuse the result.
  Status Resolve();
  std::vector<std::string> resolved;  // IP addresses, filled by Resolve
};

struct ClientResponse {
  int status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, if any
};

// On failure the Status is kUnavailable and its message starts with the phase that failed and a
// colon — "connect:", "tls:", "write:", "read:", "timeout:", "response:" — so callers can count
// failures by kind (FailureKind below).
using ResponseCallback = std::function<void(Status status, ClientResponse response)>;
std::string_view FailureKind(const Status& status);

// "POST /v1/checkin HTTP/1.1" with Host (`host` is the header's value: HostHeader(url), which
// brackets an IPv6 address), Content-Type (when there is a body), Content-Length and,
// when `bearer` is not empty, "Authorization: Bearer <bearer>".
std::string SerializeRequest(std::string_view method, std::string_view target, std::string_view host,
                             std::string_view bearer, std::string_view body);

class AsyncConnection {
 public:
  virtual ~AsyncConnection() = default;
  // REQUIRES: no request in flight on this connection. `timeout` bounds the whole exchange
  // (connect, write, wait for and read the response); a long-poll passes the server's long-poll
  // timeout plus a margin. `done` runs on the io_context thread, never inside Send.
  virtual void Send(std::shared_ptr<const std::string> request, std::chrono::milliseconds timeout,
                    ResponseCallback done) = 0;
  // Closes the socket; a request in flight completes with an error.
  virtual void Close() = 0;
  virtual bool busy() const = 0;
  // TCP connections opened so far (tests check keep-alive reuse; reports count reconnects).
  virtual size_t connections_opened() const = 0;
};

// `source_address` ("" = let the kernel choose) is bound before every connect.
// REQUIRES: target->Resolve() succeeded; target outlives nothing (shared).
std::shared_ptr<AsyncConnection> MakeConnection(boost::asio::io_context& io, std::shared_ptr<const ClientTarget> target,
                                                std::string source_address);

// Parses "127.0.0.2-127.0.0.20" (an inclusive IPv4 range) and comma-separated lists of addresses
// and ranges. Refuses ranges that are reversed or longer than 65,536 addresses.
Result<std::vector<std::string>> ParseSourceAddresses(std::string_view text);

}  // namespace appban::net
