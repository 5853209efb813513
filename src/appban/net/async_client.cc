#include "appban/net/async_client.h"

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <type_traits>

#include "appban/net/client_common.h"

namespace appban::net {
namespace {

using namespace client_internal;  // the shared client pieces and their Boost aliases

// Tighter than HttpClient's 64 KiB: a simulator holds a parser for each of many connections, and
// the appban server's headers are a few hundred bytes.
constexpr size_t kMaxResponseHeaderBytes = 16 * 1024;

Status Failure(std::string_view phase, const beast::error_code& ec) {
  if (ec == beast::error::timeout) return Status::Unavailable("timeout: " + std::string(phase) + " timed out");
  return Status::Unavailable(std::string(phase) + ": " + ec.message());
}

template <bool kTls>
class Connection final : public AsyncConnection, public std::enable_shared_from_this<Connection<kTls>> {
 public:
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

  Connection(asio::io_context& io, std::shared_ptr<const ClientTarget> target, std::optional<asio::ip::address> source)
      : io_(io), target_(std::move(target)), source_(source) {}

  void Send(std::shared_ptr<const std::string> request, std::chrono::milliseconds timeout,
            ResponseCallback done) override {
    request_ = std::move(request);
    timeout_ = timeout;
    done_ = std::move(done);
    retried_ = false;
    if (stream_ && !closed_) {
      Write();
    } else {
      stream_.reset();
      buffer_.clear();
      Connect();
    }
  }

  void Close() override {
    if (!stream_) return;
    beast::error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().close();
    // The stream object stays until the pending handlers have run; Connect replaces it.
    closed_ = true;
  }

  bool busy() const override { return static_cast<bool>(done_); }
  size_t connections_opened() const override { return connections_opened_; }

 private:
  beast::tcp_stream& Tcp() {
    if constexpr (kTls) {
      return beast::get_lowest_layer(*stream_);
    } else {
      return *stream_;
    }
  }

  void Finish(Status status, ClientResponse response = {}) {
    ResponseCallback done = std::move(done_);
    done_ = nullptr;
    request_.reset();
    if (done) done(std::move(status), std::move(response));
  }

  void FailAndClose(std::string_view phase, const beast::error_code& ec) {
    Close();
    stream_.reset();
    Finish(Failure(phase, ec));
  }

  void Connect() {
    if constexpr (kTls) {
      stream_.emplace(io_, *target_->tls);
    } else {
      stream_.emplace(io_);
    }
    closed_ = false;
    reused_ = false;
    beast::error_code ec;
    asio::ip::address server = asio::ip::make_address(target_->resolved.front(), ec);
    tcp::endpoint endpoint(server, target_->url.port);
    tcp::socket& socket = Tcp().socket();
    socket.open(endpoint.protocol(), ec);
    if (!ec) socket.set_option(tcp::no_delay(true), ec);
    if (!ec && source_) ec = BindSource(socket, *source_);
    if (ec) {
      // Deliver asynchronously: callers may rely on `done` never running inside Send.
      asio::post(io_, [self = this->shared_from_this(), ec] { self->FailAndClose("connect", ec); });
      return;
    }
    ++connections_opened_;
    Tcp().expires_after(target_->connect_timeout);
    Tcp().async_connect(endpoint, [self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return self->FailAndClose("connect", ec);
      self->Handshake();
    });
  }

  void Handshake() {
    if constexpr (kTls) {
      ExpectPeerName(stream_->native_handle(), target_->url.host);
      stream_->async_handshake(asio::ssl::stream_base::client, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->FailAndClose("tls", ec);
        self->Write();
      });
    } else {
      Write();
    }
  }

  void Write() {
    Tcp().expires_after(timeout_);
    asio::async_write(*stream_, asio::buffer(*request_),
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->RetryOrFail("write", ec, false);
                        self->Read();
                      });
  }

  void Read() {
    parser_.emplace();
    LimitResponse(*parser_, kMaxResponseHeaderBytes, target_->max_response_bytes);
    http::async_read(*stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->RetryOrFail("read", ec, self->parser_->got_some());
      self->Complete();
    });
  }

  void RetryOrFail(std::string_view phase, const beast::error_code& ec, bool got_response_bytes) {
    if (reused_ && !retried_ && !got_response_bytes && IsStaleConnectionError(ec)) {
      retried_ = true;
      Close();
      stream_.reset();
      buffer_.clear();
      Connect();
      return;
    }
    if (ec == http::error::body_limit || ec == http::error::header_limit) return FailAndClose("response", ec);
    FailAndClose(phase, ec);
  }

  void Complete() {
    auto& message = parser_->get();
    ClientResponse response;
    response.status = static_cast<int>(message.result_int());
    response.body = std::move(message.body());
    if (auto it = message.find(http::field::retry_after); it != message.end()) {
      response.retry_after = std::string(it->value());
    }
    bool keep_alive = message.keep_alive();
    parser_.reset();
    reused_ = true;
    if (!keep_alive) {
      Close();
      stream_.reset();
      buffer_.clear();
    }
    Finish(Status::Ok(), std::move(response));
  }

  asio::io_context& io_;
  std::shared_ptr<const ClientTarget> target_;
  std::optional<asio::ip::address> source_;
  std::optional<Stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<ResponseParser> parser_;
  std::shared_ptr<const std::string> request_;
  std::chrono::milliseconds timeout_{30'000};
  ResponseCallback done_;
  bool reused_ = false;   // the connection already carried a complete exchange
  bool retried_ = false;  // this request was already retried on a fresh connection
  bool closed_ = false;
  size_t connections_opened_ = 0;
};

Result<uint32_t> ParseIpv4(std::string_view text) {
  beast::error_code ec;
  asio::ip::address_v4 address = asio::ip::make_address_v4(std::string(text), ec);
  if (ec) return Status::InvalidArgument("not an IPv4 address: '" + std::string(text) + "'");
  return address.to_uint();
}

}  // namespace

std::string_view FailureKind(const Status& status) {
  std::string_view message = status.message();
  size_t colon = message.find(':');
  if (status.ok() || colon == std::string_view::npos) return "other";
  return message.substr(0, colon);
}

Status ClientTarget::Resolve() {
  resolved.clear();
  if (IsIpAddress(url.host)) {
    resolved.push_back(url.host);
    return Status::Ok();
  }
  asio::io_context io;
  APPBAN_ASSIGN_OR_RETURN(tcp::resolver::results_type results, ResolveHost(io, url.host, url.port));
  for (const auto& entry : results) resolved.push_back(entry.endpoint().address().to_string());
  return Status::Ok();
}

std::string SerializeRequest(std::string_view method, std::string_view target, std::string_view host,
                             std::string_view bearer, std::string_view body) {
  std::string text;
  text.reserve(160 + bearer.size() + body.size());
  text.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n");
  if (!bearer.empty()) text.append("Authorization: Bearer ").append(bearer).append("\r\n");
  if (!body.empty() || method == "POST") {
    text.append("Content-Type: application/json\r\nContent-Length: ")
        .append(std::to_string(body.size()))
        .append("\r\n");
  }
  text.append("\r\n").append(body);
  return text;
}

std::shared_ptr<AsyncConnection> MakeConnection(asio::io_context& io, std::shared_ptr<const ClientTarget> target,
                                                std::string source_address) {
  std::optional<asio::ip::address> source;
  if (!source_address.empty()) {
    beast::error_code ec;
    asio::ip::address parsed = asio::ip::make_address(source_address, ec);
    if (!ec) source = parsed;  // ParseSourceAddresses already refused anything else
  }
  if (target->url.tls) return std::make_shared<Connection<true>>(io, std::move(target), source);
  return std::make_shared<Connection<false>>(io, std::move(target), source);
}

Result<std::vector<std::string>> ParseSourceAddresses(std::string_view text) {
  constexpr uint64_t kMaxRange = 65536;
  std::vector<std::string> addresses;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      APPBAN_ASSIGN_OR_RETURN(uint32_t single, ParseIpv4(item));
      addresses.push_back(asio::ip::address_v4(single).to_string());
      continue;
    }
    APPBAN_ASSIGN_OR_RETURN(uint32_t first, ParseIpv4(item.substr(0, dash)));
    APPBAN_ASSIGN_OR_RETURN(uint32_t last, ParseIpv4(item.substr(dash + 1)));
    if (last < first) return Status::InvalidArgument("source address range is reversed: '" + std::string(item) + "'");
    if (uint64_t{last} - first + 1 > kMaxRange) {
      return Status::InvalidArgument("source address range is longer than 65536: '" + std::string(item) + "'");
    }
    for (uint64_t a = first; a <= last; ++a)
      addresses.push_back(asio::ip::address_v4(static_cast<uint32_t>(a)).to_string());
  }
  return addresses;
}

}  // namespace appban::net
