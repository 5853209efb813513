#include "appban/net/server.h"

#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <list>
#include <optional>
#include <vector>

#include "appban/common/text.h"
#include "appban/net/tls.h"
#include "appban/net/tls_socket.h"

namespace appban::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Descriptors kept back from max_connections for the database, logs, the listening socket and the
// short-lived sockets answered 503 at capacity.
constexpr size_t kDescriptorReserve = 64;
// At capacity, at most this many sockets are being answered 503 at once; beyond, they are closed.
constexpr size_t kMaxRejectingConnections = 32;
// First read of a request, and the reads that watch a connection whose request is with the
// application: small, because an idle long-poll should cost little.
constexpr size_t kSmallReadBytes = 512;
// After `Connection: close`, we keep reading (and discarding) for a moment so that unread request
// bytes do not make the kernel send a reset that destroys the response before the client reads it.
constexpr std::chrono::seconds kLingerTime{1};
constexpr size_t kMaxLingerBytes = 256 * 1024;
// Bodies at most this large are copied behind the headers so a response is one TLS record.
constexpr size_t kCoalesceBodyBytes = 16 * 1024;
// A serialized header block larger than this is not kept for reuse by an idle connection.
constexpr size_t kKeptHeadCapacity = 1024;
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};
constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

bool IsHttpError(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

bool IsSafeHeaderText(std::string_view text) {
  for (char c : text) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

bool IsToken(std::string_view text) {
  if (text.empty()) return false;
  for (unsigned char c : text) {
    if (c <= 32 || c >= 127 ||
        std::string_view("()<>@,;:\\\"/[]?={}").find(static_cast<char>(c)) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

std::string_view ToStd(beast::string_view view) { return {view.data(), view.size()}; }

}  // namespace

size_t DefaultMaxConnections() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 10'000;
  size_t descriptors = static_cast<size_t>(limit.rlim_cur);
  return descriptors > 2 * kDescriptorReserve ? descriptors - kDescriptorReserve : descriptors / 2;
}

// What the server's registry knows of a connection.
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void Start() = 0;
  // Shutdown began: close if no request is in progress.
  virtual void OnShutdown() = 0;
  virtual void ForceClose() = 0;

  std::list<std::shared_ptr<ConnectionBase>>::iterator registry_position;
  bool rejecting = false;
};

struct HttpServer::State : std::enable_shared_from_this<HttpServer::State> {
  State(asio::io_context& io_context, ServerOptions server_options, Handler request_handler, BodyLimit route_body_limit,
        ServerObserver* server_observer)
      : io(io_context),
        options(std::move(server_options)),
        handler(std::move(request_handler)),
        body_limit(std::move(route_body_limit)),
        observer(server_observer),
        acceptor(io_context),
        accept_retry_timer(io_context),
        shutdown_timer(io_context) {}

  void Accept();
  void OnAccepted(tcp::socket socket);
  void Register(const std::shared_ptr<ConnectionBase>& connection) {
    connections.push_front(connection);
    connection->registry_position = connections.begin();
    if (connection->rejecting) ++rejecting_count;
  }
  void Unregister(ConnectionBase& connection) {
    if (connection.rejecting) --rejecting_count;
    connections.erase(connection.registry_position);
    MaybeFinishShutdown();
  }
  void CloseAll() {
    std::vector<std::shared_ptr<ConnectionBase>> snapshot(connections.begin(), connections.end());
    for (const auto& connection : snapshot) connection->ForceClose();
  }
  void MaybeFinishShutdown() {
    if (!shutting_down || !connections.empty() || !on_idle) return;
    shutdown_timer.cancel();
    asio::post(io, std::exchange(on_idle, nullptr));
  }

  asio::io_context& io;
  ServerOptions options;
  Handler handler;
  BodyLimit body_limit;
  ServerObserver* observer;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry_timer;
  asio::steady_timer shutdown_timer;
  std::list<std::shared_ptr<ConnectionBase>> connections;
  size_t rejecting_count = 0;
  size_t large_bodies_in_progress = 0;
  RequestGate gate;
  bool shutting_down = false;
  std::function<void()> drain_long_polls;
  std::function<void()> on_idle;
};

namespace {

using PlainStream = tcp::socket;
using TlsStream = detail::TlsSocket;

// One client connection. Owned by the server's registry while open; asynchronous operations hold
// it too, so it lives until the last completion after Close(). Everything runs on one thread.
template <class Stream>
class Connection final : public ConnectionBase,
                         public detail::ResponseSink,
                         public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(std::shared_ptr<HttpServer::State> server, Stream stream, std::string remote_address)
      : server_(std::move(server)),
        stream_(std::move(stream)),
        deadline_(Socket().get_executor()),
        remote_address_(std::move(remote_address)) {}

  void Start() override {
    if (!rejecting && server_->observer) server_->observer->OnConnectionOpened();
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      phase_ = Phase::kHandshake;
      SetDeadline(server_->options.tls_handshake_timeout);
      stream_.async_handshake([self = this->shared_from_this()](beast::error_code ec, size_t) {
        if (self->phase_ == Phase::kClosed) return;
        if (ec) return self->Close();
        self->client_certificate_ = PeerCertificate(self->stream_.native_handle());
        self->AfterHandshake();
      });
    } else {
      AfterHandshake();
    }
  }

  void OnShutdown() override {
    if (phase_ == Phase::kHandshake || phase_ == Phase::kIdle) Close();
  }
  void ForceClose() override { Close(); }

  void Complete(uint64_t request_sequence, HttpResponse response) override {
    if (phase_ != Phase::kAwaitingHandler || request_sequence != sequence_) return;
    ++requests_served_;
    size_t max_requests = server_->options.max_requests_per_connection;
    bool close = !keep_alive_ || server_->shutting_down || (max_requests != 0 && requests_served_ >= max_requests);
    WriteResponse(std::move(response), close);
  }

  bool ClientConnected() const override { return phase_ != Phase::kClosed; }

 private:
  enum class Phase { kHandshake, kIdle, kReadingHeader, kReadingBody, kAwaitingHandler, kWriting, kLingering, kClosed };

  tcp::socket& Socket() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      return stream_.socket();
    } else {
      return stream_;
    }
  }

  // Every phase has a deadline; when it passes the connection closes (pending operations then
  // complete with an error and find the connection closed). One timer per connection.
  void SetDeadline(std::chrono::milliseconds timeout) { SetDeadlineAt(Clock::now() + timeout); }
  void SetDeadlineAt(Clock::time_point at) {
    deadline_.expires_at(at);
    deadline_.async_wait([weak = this->weak_from_this()](beast::error_code ec) {
      if (ec) return;  // re-armed or cancelled
      if (auto self = weak.lock()) self->Close();
    });
  }
  void ClearDeadline() { deadline_.cancel(); }

  void AfterHandshake() {
    if (rejecting) {
      return WriteResponse(MakeErrorResponse(503, "unavailable", "the server is at its connection limit"), true);
    }
    StartNextRequest();
  }

  void StartNextRequest() {
    if (phase_ == Phase::kClosed) return;
    if (server_->shutting_down && buffer_.size() == 0) return Close();
    if (buffer_.size() > 0) return ReadHeader();
    // Wait for the first byte with the idle timeout, holding as little memory as possible.
    phase_ = Phase::kIdle;
    buffer_.clear();
    buffer_.shrink_to_fit();
    if (requests_served_ == 0) {
      // The first request's headers are due read_header_timeout after the connection became
      // ready; its first byte does not restart the clock (ReadHeader keeps this deadline).
      header_deadline_ = Clock::now() + server_->options.read_header_timeout;
      SetDeadlineAt(header_deadline_);
    } else {
      SetDeadline(server_->options.idle_keepalive_timeout);
    }
    stream_.async_read_some(buffer_.prepare(kSmallReadBytes),
                            [self = this->shared_from_this()](beast::error_code ec, size_t bytes) {
                              if (self->phase_ == Phase::kClosed) return;
                              if (ec) return self->Close();
                              self->buffer_.commit(bytes);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    phase_ = Phase::kReadingHeader;
    method_.clear();
    path_.clear();
    head_request_ = false;
    request_start_ = Clock::now();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    // The route's limit is applied once the headers are known (see OnHeader). Not boost::none:
    // Beast 1.74 compares a length against an empty optional as "greater" and refuses everything.
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    // A keep-alive request's header clock starts with its first byte (the idle wait had its own
    // timeout); the first request's was started when the connection became ready.
    if (requests_served_ == 0 && header_deadline_ != Clock::time_point()) {
      SetDeadlineAt(header_deadline_);
    } else {
      SetDeadline(server_->options.read_header_timeout);
    }
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      if (ec == http::error::header_limit) {
        return RespondErrorAndClose(
            431, "header_too_large",
            "the request line and headers exceed " + std::to_string(server_->options.max_header_bytes) + " bytes");
      }
      if (IsHttpError(ec) && ec != http::error::end_of_stream && ec != http::error::partial_message) {
        return RespondErrorAndClose(400, "bad_request", "malformed request: " + ec.message());
      }
      return Close();  // the client went away or timed out: nobody to answer
    }
    const auto& message = parser_->get();
    method_.assign(ToStd(message.method_string()));
    head_request_ = message.method() == http::verb::head;
    if (!IsToken(method_)) return RespondErrorAndClose(400, "bad_request", "malformed request method");
    std::string_view target = ToStd(message.target());
    if (target.empty() || target.front() != '/') {
      return RespondErrorAndClose(400, "bad_request", "the request target must be an absolute path starting with '/'");
    }
    size_t question = target.find('?');
    std::optional<std::string> path = PercentDecode(target.substr(0, question), false);
    if (!path) return RespondErrorAndClose(400, "bad_request", "malformed percent-encoding in the request path");
    if (path->find('\0') != std::string::npos) {
      return RespondErrorAndClose(400, "bad_request", "the request path contains a NUL byte");
    }
    path_ = std::move(*path);
    query_.assign(question == std::string_view::npos ? std::string_view() : target.substr(question + 1));
    if (std::optional<std::string> framing_error = CheckFraming(message)) {
      return RespondErrorAndClose(400, "bad_request", *framing_error);
    }

    request_ = HttpRequest();
    request_.method = method_;
    request_.path = path_;
    request_.query = query_;
    request_.version = message.version();
    request_.headers.reserve(8);
    for (const auto& field : message) {
      request_.headers.emplace_back(AsciiLower(ToStd(field.name_string())), std::string(ToStd(field.value())));
    }
    request_.remote_address = remote_address_;
    request_.client_certificate = client_certificate_;
    if (server_->gate) {
      if (std::optional<HttpResponse> refusal = server_->gate(request_)) {
        // Answered from the headers alone: an announced body is never read, so the connection
        // cannot be reused (its next bytes would be that body).
        // Decided before the parser (which owns `message`) is released.
        const bool close = !parser_->is_done() || !message.keep_alive();
        parser_.reset();
        return WriteResponse(std::move(*refusal), close);
      }
    }

    uint64_t limit = server_->body_limit ? server_->body_limit(method_, path_) : 0;
    boost::optional<uint64_t> declared = parser_->content_length();
    if (declared && *declared > limit) {
      return RespondErrorAndClose(413, "payload_too_large",
                                  "the request body of " + std::to_string(*declared) + " bytes exceeds the " +
                                      std::to_string(limit) + "-byte limit of " + method_ + " " + path_);
    }
    parser_->body_limit(limit);
    if (parser_->is_done()) return Dispatch();
    bool large = declared ? *declared > server_->options.large_body_bytes : limit > server_->options.large_body_bytes;
    if (large) {
      if (server_->large_bodies_in_progress >= server_->options.max_large_bodies) {
        HttpResponse busy =
            MakeErrorResponse(503, "unavailable", "too many large request bodies are being received; retry shortly");
        busy.headers.emplace_back("Retry-After", "2");
        parser_.reset();
        return WriteResponse(std::move(busy), true);
      }
      ++server_->large_bodies_in_progress;
      counts_as_large_body_ = true;
    }

    auto expect = message.find(http::field::expect);
    if (message.version() >= 11 && expect != message.end() &&
        EqualsIgnoreCase(ToStd(expect->value()), "100-continue")) {
      SetDeadline(server_->options.write_timeout);
      asio::async_write(stream_, asio::buffer(kContinueResponse.data(), kContinueResponse.size()),
                        [self = this->shared_from_this()](beast::error_code write_error, size_t) {
                          if (self->phase_ == Phase::kClosed) return;
                          if (write_error) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    phase_ = Phase::kReadingBody;
    SetDeadline(server_->options.read_body_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (self->phase_ == Phase::kClosed) return;
      if (ec == http::error::body_limit) {
        return self->RespondErrorAndClose(
            413, "payload_too_large",
            "the request body exceeds the " +
                std::to_string(self->server_->body_limit ? self->server_->body_limit(self->method_, self->path_) : 0) +
                "-byte limit of " + self->method_ + " " + self->path_);
      }
      if (ec && IsHttpError(ec) && ec != http::error::partial_message) {
        return self->RespondErrorAndClose(400, "bad_request", "malformed request body: " + ec.message());
      }
      if (ec) return self->Close();
      self->Dispatch();
    });
  }

  // RFC 9112 §6: a request body is delimited by `Transfer-Encoding: chunked` or by one
  // Content-Length. Any other transfer coding (or a list of them) leaves its length unknown, and
  // both headers at once is the classic request-smuggling ambiguity: refuse them and close.
  static std::optional<std::string> CheckFraming(const http::request_parser<http::string_body>::value_type& message) {
    std::string codings;
    int lines = 0;
    for (const auto& field : message) {
      if (field.name() != http::field::transfer_encoding) continue;
      ++lines;
      codings.assign(ToStd(field.value()));
    }
    if (lines == 0) return std::nullopt;
    size_t first = codings.find_first_not_of(" \t"), last = codings.find_last_not_of(" \t");
    std::string_view coding =
        first == std::string::npos ? std::string_view() : std::string_view(codings).substr(first, last - first + 1);
    if (lines > 1 || !EqualsIgnoreCase(coding, "chunked")) {
      return "unsupported Transfer-Encoding '" + codings + "': only 'chunked' is accepted";
    }
    if (message.version() < 11) return std::string("Transfer-Encoding is not allowed in an HTTP/1.0 request");
    if (message.find(http::field::content_length) != message.end()) {
      return std::string("a request must not carry both Transfer-Encoding and Content-Length");
    }
    return std::nullopt;
  }

  void ReleaseLargeBody() {
    if (!counts_as_large_body_) return;
    counts_as_large_body_ = false;
    --server_->large_bodies_in_progress;
  }

  void Dispatch() {
    ReleaseLargeBody();
    http::request<http::string_body> message = parser_->release();
    parser_.reset();
    keep_alive_ = message.keep_alive();
    HttpRequest request = std::move(request_);
    request_ = HttpRequest();
    request.body = std::move(message.body());

    phase_ = Phase::kAwaitingHandler;
    ++sequence_;
    ClearDeadline();
    auto self = this->shared_from_this();
    try {
      server_->handler(std::move(request), Responder(this->weak_from_this(), sequence_));
    } catch (...) {
      // The Responder, destroyed with the handler's arguments, has answered 500.
    }
    if (phase_ == Phase::kAwaitingHandler && !watch_pending_) Watch();
  }

  // While the application holds the request, keep a small read outstanding: it notices a client
  // that disconnects (so Responder::alive() turns false and the long-poll's memory is freed) and
  // collects a pipelined next request.
  void Watch() {
    watch_pending_ = true;
    stream_.async_read_some(buffer_.prepare(kSmallReadBytes), [self = this->shared_from_this()](beast::error_code ec,
                                                                                                size_t bytes) {
      self->watch_pending_ = false;
      if (self->phase_ == Phase::kClosed) return;
      if (!ec) self->buffer_.commit(bytes);
      if (self->resume_after_watch_) {
        self->resume_after_watch_ = false;
        if (ec && ec != asio::error::operation_aborted) return self->Close();
        return self->StartNextRequest();
      }
      if (ec) return self->Close();
      if (self->phase_ == Phase::kAwaitingHandler && self->buffer_.size() < self->server_->options.max_header_bytes) {
        self->Watch();
      }
    });
  }

  void RespondErrorAndClose(int status, std::string_view code, const std::string& message) {
    ReleaseLargeBody();
    parser_.reset();
    WriteResponse(MakeErrorResponse(status, code, message), true);
  }

  void WriteResponse(HttpResponse response, bool close) {
    bool valid = response.status >= 200 && response.status <= 599 && IsSafeHeaderText(response.content_type);
    for (const auto& [name, value] : response.headers) valid = valid && IsToken(name) && IsSafeHeaderText(value);
    if (!valid) response = MakeErrorResponse(500, "internal", "the application produced an invalid response");
    response_ = std::move(response);
    status_ = response_.status;
    close_after_write_ = close;

    bool bodiless_status = status_ == 204 || status_ == 304;
    std::string_view body = bodiless_status ? std::string_view() : response_.BodyView();
    head_.clear();
    head_.append("HTTP/1.1 ").append(std::to_string(status_)).append(" ");
    head_.append(ToStd(http::obsolete_reason(static_cast<http::status>(status_)))).append("\r\n");
    if (!bodiless_status) {
      if (!response_.content_type.empty()) head_.append("Content-Type: ").append(response_.content_type).append("\r\n");
      head_.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    }
    for (const auto& [name, value] : response_.headers) head_.append(name).append(": ").append(value).append("\r\n");
    if (close) head_.append("Connection: close\r\n");
    head_.append("\r\n");
    if (head_request_) body = {};
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      if (body.size() <= kCoalesceBodyBytes) {
        head_.append(body);
        body = {};
      }
    }
    phase_ = Phase::kWriting;
    SetDeadline(server_->options.write_timeout);
    // Not a std::array of two buffers: with Boost 1.74, async_write of such an array to Beast's
    // ssl_stream was seen completing "successfully" after the first buffer (test:
    // Tls.ClientPinnedToTheRightCaTalksToTheServer, large body).
    auto buffers = beast::buffers_cat(asio::buffer(head_.data(), head_.size()), asio::buffer(body.data(), body.size()));
    asio::async_write(stream_, buffers,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnWritten(ec); });
  }

  void OnWritten(beast::error_code ec) {
    if (phase_ == Phase::kClosed) return;
    if (server_->observer && !rejecting) {
      double seconds = std::chrono::duration<double>(Clock::now() - request_start_).count();
      server_->observer->OnRequestCompleted(method_, path_, status_, seconds);
    }
    response_ = HttpResponse();
    if (head_.capacity() > kKeptHeadCapacity) head_ = std::string();
    if (ec) return Close();
    if (close_after_write_) return Linger();
    if (watch_pending_) {
      resume_after_watch_ = true;
      beast::error_code ignored;
      Socket().cancel(ignored);
      return;
    }
    StartNextRequest();
  }

  // Half-closes and discards what the client still sends for a moment, then closes. See
  // kLingerTime for why.
  void Linger() {
    if (watch_pending_) {
      // The watch read is still outstanding; closing outright is the simple, safe choice here.
      return Close();
    }
    phase_ = Phase::kLingering;
    SetDeadline(kLingerTime);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code, size_t) { self->Close(); });
    } else {
      beast::error_code ignored;
      Socket().shutdown(tcp::socket::shutdown_send, ignored);
      buffer_.clear();
      DiscardInput();
    }
  }

  void DiscardInput() {
    stream_.async_read_some(buffer_.prepare(kSmallReadBytes * 8),
                            [self = this->shared_from_this()](beast::error_code ec, size_t bytes) {
                              if (self->phase_ == Phase::kClosed) return;
                              self->lingered_bytes_ += bytes;
                              if (ec || self->lingered_bytes_ > kMaxLingerBytes) return self->Close();
                              self->DiscardInput();
                            });
  }

  void Close() {
    if (phase_ == Phase::kClosed) return;
    auto self = this->shared_from_this();
    phase_ = Phase::kClosed;
    beast::error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_both, ignored);
    Socket().close(ignored);
    deadline_.cancel();
    ReleaseLargeBody();
    parser_.reset();
    buffer_.clear();
    buffer_.shrink_to_fit();
    response_ = HttpResponse();
    if (!rejecting && server_->observer) server_->observer->OnConnectionClosed();
    server_->Unregister(*this);
  }

  std::shared_ptr<HttpServer::State> server_;
  Stream stream_;
  asio::steady_timer deadline_;
  std::string remote_address_;
  std::shared_ptr<const ClientCertificate> client_certificate_;  // from the handshake; null when none
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Phase phase_ = Phase::kIdle;
  bool keep_alive_ = false;
  bool head_request_ = false;
  bool watch_pending_ = false;
  bool resume_after_watch_ = false;
  bool close_after_write_ = false;
  bool counts_as_large_body_ = false;  // holds one of the server's large-body slots
  uint64_t sequence_ = 0;
  size_t requests_served_ = 0;
  size_t lingered_bytes_ = 0;
  int status_ = 0;
  // The current request, kept for the response and the observer (reused between requests).
  std::string method_;
  std::string path_;
  std::string query_;
  Clock::time_point request_start_;
  Clock::time_point header_deadline_;  // the first request's, counted from connection readiness
  HttpRequest request_;                // the request being read: headers first, body at Dispatch
  std::string head_;
  HttpResponse response_;
};

}  // namespace

void HttpServer::State::Accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (!self->acceptor.is_open() || self->shutting_down) return;
    if (ec == asio::error::operation_aborted) return;
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
        ec.value() == ENFILE) {
      // Out of descriptors: retry shortly instead of spinning; the kernel backlog holds the rest.
      self->accept_retry_timer.expires_after(kAcceptRetryDelay);
      self->accept_retry_timer.async_wait([self](beast::error_code timer_error) {
        if (!timer_error) self->Accept();
      });
      return;
    }
    if (!ec) self->OnAccepted(std::move(socket));
    self->Accept();
  });
}

void HttpServer::State::OnAccepted(tcp::socket socket) {
  beast::error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return;  // already disconnected
  socket.set_option(tcp::no_delay(true), ec);
  bool at_capacity = connections.size() - rejecting_count >= options.max_connections;
  if (at_capacity) {
    if (observer) observer->OnConnectionRejected();
    if (rejecting_count >= kMaxRejectingConnections) return;  // the socket closes on destruction
  }
  std::string remote_address = peer.address().to_string();
  std::shared_ptr<ConnectionBase> connection;
  if (options.tls) {
    connection = std::make_shared<Connection<TlsStream>>(
        shared_from_this(), TlsStream(std::move(socket), options.tls->native_handle()), std::move(remote_address));
  } else {
    connection = std::make_shared<Connection<PlainStream>>(shared_from_this(), PlainStream(std::move(socket)),
                                                           std::move(remote_address));
  }
  connection->rejecting = at_capacity;
  Register(connection);
  connection->Start();
}

HttpServer::HttpServer(boost::asio::io_context& io, ServerOptions options, Handler handler, BodyLimit body_limit,
                       ServerObserver* observer)
    : state_(std::make_shared<State>(io, std::move(options), std::move(handler), std::move(body_limit), observer)) {}

HttpServer::~HttpServer() {
  state_->on_idle = nullptr;
  state_->drain_long_polls = nullptr;
  state_->shutting_down = true;
  beast::error_code ignored;
  state_->acceptor.close(ignored);
  state_->accept_retry_timer.cancel();
  state_->shutdown_timer.cancel();
  state_->CloseAll();
}

Result<uint16_t> HttpServer::Listen(const std::string& address, uint16_t port) {
  if (state_->acceptor.is_open()) return Status::FailedPrecondition("the server is already listening");
  beast::error_code ec;
  asio::ip::address ip = asio::ip::make_address(address, ec);
  if (ec) return Status::InvalidArgument("not an IP address to listen on: '" + address + "'");
  tcp::endpoint endpoint(ip, port);
  std::string where = address + ":" + std::to_string(port);
  tcp::acceptor& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor.close(ignored);
    return Status::Unavailable("cannot listen on " + where + ": " + ec.message());
  }
  uint16_t bound = acceptor.local_endpoint(ec).port();
  if (ec) return Status::Unavailable("cannot read the bound port of " + where + ": " + ec.message());
  StartAccepting();
  return bound;
}

Status HttpServer::Adopt(int listening_fd) {
  if (state_->acceptor.is_open()) return Status::FailedPrecondition("the server is already listening");
  sockaddr_storage local{};
  socklen_t length = sizeof(local);
  if (getsockname(listening_fd, reinterpret_cast<sockaddr*>(&local), &length) != 0) {
    return Status::InvalidArgument("descriptor " + std::to_string(listening_fd) + " is not a socket");
  }
  int duplicate = dup(listening_fd);
  if (duplicate < 0) return Status::Unavailable("cannot duplicate the listening socket");
  beast::error_code ec;
  state_->acceptor.assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), duplicate, ec);
  if (ec) {
    close(duplicate);
    return Status::InvalidArgument("cannot accept on descriptor " + std::to_string(listening_fd) + ": " + ec.message());
  }
  StartAccepting();
  return Status::Ok();
}

void HttpServer::StartAccepting() { state_->Accept(); }

void HttpServer::SetRequestGate(RequestGate gate) { state_->gate = std::move(gate); }

void HttpServer::SetLongPollDrainer(std::function<void()> drain_long_polls) {
  state_->drain_long_polls = std::move(drain_long_polls);
}

void HttpServer::BeginShutdown(std::function<void()> on_idle, std::chrono::milliseconds deadline) {
  State& state = *state_;
  state.shutting_down = true;
  state.on_idle = std::move(on_idle);
  beast::error_code ignored;
  state.acceptor.close(ignored);
  state.accept_retry_timer.cancel();
  if (state.drain_long_polls) std::exchange(state.drain_long_polls, nullptr)();
  std::vector<std::shared_ptr<ConnectionBase>> snapshot(state.connections.begin(), state.connections.end());
  for (const auto& connection : snapshot) connection->OnShutdown();
  state.shutdown_timer.expires_after(deadline);
  state.shutdown_timer.async_wait([weak = std::weak_ptr<State>(state_)](beast::error_code ec) {
    auto locked = weak.lock();
    if (ec || !locked) return;
    locked->CloseAll();  // Unregister of the last one calls on_idle
    locked->MaybeFinishShutdown();
  });
  state.MaybeFinishShutdown();
}

size_t HttpServer::connection_count() const { return state_->connections.size(); }

}  // namespace appban::net
