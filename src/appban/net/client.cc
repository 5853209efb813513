#include "appban/net/client.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <optional>

#include "appban/common/text.h"
#include "appban/net/client_common.h"
#include "appban/net/tls.h"

namespace appban::net {
namespace {

using namespace client_internal;  // the shared client pieces and their Boost aliases

// The whole header block of a response; far more than any appban server sends.
constexpr size_t kMaxResponseHeaderBytes = 64 * 1024;

}  // namespace

std::string HostHeader(const Url& url) {
  bool ipv6 = url.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
}

Result<Url> ParseUrl(std::string_view text) {
  Url url;
  std::string_view rest;
  if (text.substr(0, 8) == "https://") {
    url.tls = true;
    rest = text.substr(8);
    url.port = 443;
  } else if (text.substr(0, 7) == "http://") {
    rest = text.substr(7);
    url.port = 80;
  } else {
    return Status::InvalidArgument("URL must start with https:// or http://: '" + std::string(text) + "'");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos)
    return Status::InvalidArgument("URL must not have a path: '" + std::string(text) + "'");
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return Status::InvalidArgument("unterminated IPv6 address in URL");
    url.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::InvalidArgument("unexpected text after IPv6 address in URL");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = rest.rfind(':');
    url.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
  }
  if (url.host.empty()) return Status::InvalidArgument("URL has no host: '" + std::string(text) + "'");
  if (!port_text.empty() || rest.find(':') != std::string_view::npos) {
    unsigned port = 0;
    auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (error != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return Status::InvalidArgument("bad port in URL: '" + std::string(text) + "'");
    }
    url.port = static_cast<uint16_t>(port);
  }
  return url;
}

struct HttpClient::Impl {
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  Impl(Url base, ClientOptions client_options) : url(std::move(base)), options(std::move(client_options)) {}

  std::string Where() const { return url.host + ":" + std::to_string(url.port); }

  // Runs the io_context until the operation started by `start` completes.
  template <class Start>
  beast::error_code Run(Start start) {
    beast::error_code result;
    io.restart();
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io.run();
    return result;
  }

  Status Connect() {
    Close();
    if (url.tls && !tls_context) {
      if (!options.pinned_ca_pem.empty()) {
        APPBAN_ASSIGN_OR_RETURN(tls_context, MakeClientContext(options.pinned_ca_pem));
      } else if (options.trust_system_roots) {
        APPBAN_ASSIGN_OR_RETURN(tls_context, MakeSystemTrustClientContext());
      } else {
        return Status::InvalidArgument("https needs a pinned CA certificate");
      }
      if (!options.client_certificate_pem.empty()) {
        Status presented = UseClientCertificate(*tls_context, options.client_certificate_pem, options.client_key_pem);
        if (!presented.ok()) {
          tls_context.reset();
          return presented;
        }
      }
    }
    APPBAN_ASSIGN_OR_RETURN(tcp::resolver::results_type endpoints, ResolveHost(io, url.host, url.port));
    beast::error_code ec;
    beast::tcp_stream stream(io);
    if (!options.local_address.empty()) {
      asio::ip::address local = asio::ip::make_address(options.local_address, ec);
      if (ec) return Status::InvalidArgument("bad local address '" + options.local_address + "'");
      stream.socket().open(local.is_v4() ? tcp::v4() : tcp::v6(), ec);
      if (!ec) ec = BindSource(stream.socket(), local);
      if (ec) return Status::Unavailable("cannot bind to " + options.local_address + ": " + ec.message());
      // Connect to the resolved endpoint of the same family, on the bound socket.
      tcp::endpoint target;
      bool found = false;
      for (const auto& entry : endpoints) {
        if (entry.endpoint().protocol() == (local.is_v4() ? tcp::v4() : tcp::v6())) {
          target = entry.endpoint();
          found = true;
          break;
        }
      }
      if (!found) return Status::Unavailable("no address of " + url.host + " matches the local address family");
      stream.expires_after(options.connect_timeout);
      ec = Run([&](auto handler) { stream.async_connect(target, handler); });
    } else {
      stream.expires_after(options.connect_timeout);
      ec = Run([&](auto handler) { stream.async_connect(endpoints, handler); });
    }
    if (ec == beast::error::timeout) return Status::Unavailable("timed out connecting to " + Where());
    if (ec == asio::error::connection_refused) return Status::Unavailable("connection refused by " + Where());
    if (ec) return Status::Unavailable("cannot connect to " + Where() + ": " + ec.message());
    stream.socket().set_option(tcp::no_delay(true), ec);
    ++opened;
    if (!url.tls) {
      plain.emplace(std::move(stream));
      return Status::Ok();
    }
    tls.emplace(std::move(stream), *tls_context);
    SSL* ssl = tls->native_handle();
    ExpectPeerName(ssl, url.host);
    beast::get_lowest_layer(*tls).expires_after(options.connect_timeout);
    ec = Run([&](auto handler) { tls->async_handshake(asio::ssl::stream_base::client, handler); });
    if (ec) {
      long verify = SSL_get_verify_result(ssl);
      std::string reason = verify != X509_V_OK
                               ? std::string("TLS verification failed: ") + X509_verify_cert_error_string(verify)
                               : "TLS handshake failed: " + ec.message();
      if (ec == beast::error::timeout) reason = "timed out in the TLS handshake";
      Close();
      return Status::Unavailable(reason + " (" + Where() + ")");
    }
    return Status::Ok();
  }

  void Close() {
    beast::error_code ignored;
    if (plain) plain->socket().close(ignored);
    if (tls) beast::get_lowest_layer(*tls).socket().close(ignored);
    plain.reset();
    tls.reset();
    buffer.clear();
  }

  bool connected() const { return plain.has_value() || tls.has_value(); }

  template <class Stream>
  Result<HttpResponse> Exchange(Stream& stream, http::request<http::string_body>& request, bool& stale) {
    stale = false;
    beast::get_lowest_layer(stream).expires_after(options.read_timeout);
    beast::error_code ec = Run([&](auto handler) { http::async_write(stream, request, handler); });
    ResponseParser parser;
    LimitResponse(parser, kMaxResponseHeaderBytes, options.max_response_bytes);
    if (request.method() == http::verb::head) parser.skip(true);
    if (!ec) ec = Run([&](auto handler) { http::async_read(stream, buffer, parser, handler); });
    if (ec) {
      stale = IsStaleConnectionError(ec) && !parser.got_some();
      Close();
      if (ec == beast::error::timeout) return Status::Unavailable("timed out waiting for " + Where());
      if (ec == http::error::body_limit)
        return Status::LimitExceeded("response from " + Where() + " exceeds " +
                                     std::to_string(options.max_response_bytes) + " bytes");
      if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        return Status::Corruption("malformed response from " + Where() + ": " + ec.message());
      }
      return Status::Unavailable("connection to " + Where() + " failed: " + ec.message());
    }
    auto& message = parser.get();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    response.content_type.clear();
    for (const auto& field : message) {
      std::string name = AsciiLower(std::string_view(field.name_string().data(), field.name_string().size()));
      std::string value(field.value().data(), field.value().size());
      if (name == "content-type") response.content_type = value;
      response.headers.emplace_back(std::move(name), std::move(value));
    }
    response.body = std::move(message.body());
    if (!message.keep_alive()) Close();
    return response;
  }

  Result<HttpResponse> Request(std::string_view method, std::string_view path, std::string_view body,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
    if (path.empty() || path.front() != '/') return Status::InvalidArgument("request path must start with '/'");
    http::request<http::string_body> request;
    request.method_string(beast::string_view(method.data(), method.size()));
    request.target(beast::string_view(path.data(), path.size()));
    request.version(11);
    request.set(http::field::host, HostHeader(url));
    for (const auto& [name, value] : headers) request.set(name, value);
    request.body().assign(body);
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") request.prepare_payload();
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool reused = connected();
      if (!reused) APPBAN_RETURN_IF_ERROR(Connect());
      bool stale = false;
      Result<HttpResponse> response = tls ? Exchange(*tls, request, stale) : Exchange(*plain, request, stale);
      if (response.ok() || !(reused && stale)) return response;
    }
    return Status::Unavailable("connection to " + Where() + " closed twice");
  }

  asio::io_context io;
  Url url;
  ClientOptions options;
  std::shared_ptr<asio::ssl::context> tls_context;
  std::optional<beast::tcp_stream> plain;
  std::optional<TlsStream> tls;
  beast::flat_buffer buffer;
  size_t opened = 0;
};

HttpClient::HttpClient(Url base, ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(base), std::move(options))) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Result<HttpResponse> HttpClient::Request(std::string_view method, std::string_view path, std::string_view body,
                                         const std::vector<std::pair<std::string, std::string>>& headers) {
  return impl_->Request(method, path, body, headers);
}
void HttpClient::Close() { impl_->Close(); }
size_t HttpClient::connections_opened() const { return impl_->opened; }

}  // namespace appban::net
