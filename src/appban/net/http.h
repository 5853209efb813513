// The HTTP request/response model shared by the server (net/server.h), the client (net/client.h)
// and the application handlers (server/). Plain values: no Boost types leak out of this header, so
// application code compiles without Beast/Asio.
//
// Thread-safety: HttpRequest/HttpResponse are ordinary values. A Responder belongs to the
// io_context thread of the worker that created it and must only be used on that thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace appban::net {

struct ClientCertificate;  // client_certificate.h

struct HttpRequest {
  std::string method;                                        // "GET", "POST", ...
  std::string path;                                          // percent-decoded path without query, e.g. "/v1/checkin"
  std::string query;                                         // raw query string without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote_address;  // peer IP as text
  unsigned version = 11;       // 10 for HTTP/1.0, 11 for HTTP/1.1
  // The certificate the client sent in the TLS handshake (mutual TLS, tls.h); null when none.
  std::shared_ptr<const ClientCertificate> client_certificate;

  // The value of the first header named `lower_name` (which must be lower-case); "" when absent.
  std::string_view Header(std::string_view lower_name) const;
  // The first query parameter named `name`, percent-decoded ('+' decodes to a space, as in HTML
  // form encoding); nullopt when absent or when its encoding is malformed.
  std::optional<std::string> QueryParam(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  // Extra headers. The server sets Content-Type, Content-Length and Connection itself.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Optional shared body for responses sent to many connections at once (a bundle sent to 100k
  // long-polls): when set, it is sent instead of `body` without copying.
  std::shared_ptr<const std::string> shared_body;

  // The body that goes on the wire: *shared_body when set, else body.
  std::string_view BodyView() const { return shared_body ? std::string_view(*shared_body) : body; }
};

// {"error":{"code":"<code>","message":"<message>"}} with the given status, JSON-escaped.
HttpResponse MakeErrorResponse(int status, std::string_view code, std::string_view message);

// Decodes %XX escapes (and '+' as space when `plus_is_space`); nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);

namespace detail {
// Implemented by the server's connection. A Responder reaches it through a weak_ptr, so a
// Responder outliving its connection is harmless.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual void Complete(uint64_t request_sequence, HttpResponse response) = 0;
  virtual bool ClientConnected() const = 0;
};
}  // namespace detail

// Sends the response for one request. Move-only; may be kept (long-poll) and completed later on the
// same io_context thread. If destroyed without being called, the server answers 500. Calling it
// after the connection closed is a no-op. `alive()` tells whether the client is still connected.
// Calling it twice is a no-op the second time.
class Responder {
 public:
  Responder() = default;  // an empty responder: calling it does nothing, alive() is false
  Responder(std::weak_ptr<detail::ResponseSink> sink, uint64_t request_sequence)
      : sink_(std::move(sink)), request_sequence_(request_sequence) {}
  Responder(Responder&& other) noexcept = default;
  Responder& operator=(Responder&& other) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  void operator()(HttpResponse response);
  bool alive() const;
  // True until the responder has been called, moved from, or its connection has closed.
  bool pending() const { return !sink_.expired(); }

 private:
  void AnswerIfPending(HttpResponse response);

  std::weak_ptr<detail::ResponseSink> sink_;
  uint64_t request_sequence_ = 0;
};

// The application: called once per request on the io_context thread.
using Handler = std::function<void(HttpRequest request, Responder respond)>;
// Called after headers are read, before the body: return the largest body this route accepts
// (0 = none). Requests over it get 413 without the body being read.
using BodyLimit = std::function<size_t(std::string_view method, std::string_view path)>;
// Called after the headers are read and before the body limit and the body (HttpServer::
// SetRequestGate): nullopt lets the request through; a response is sent instead of reading on.
using RequestGate = std::function<std::optional<HttpResponse>(const HttpRequest& head)>;

}  // namespace appban::net
