#include "appban/net/client_common.h"

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace appban::net::client_internal {

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24  // Linux 4.2+, <linux/in.h>
#endif

bool IsIpAddress(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

Result<tcp::resolver::results_type> ResolveHost(asio::io_context& io, const std::string& host, uint16_t port) {
  beast::error_code ec;
  tcp::resolver resolver(io);
  tcp::resolver::results_type results = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return Status::Unavailable("cannot resolve " + host + ": " + ec.message());
  if (results.empty()) return Status::Unavailable("cannot resolve " + host + ": no addresses");
  return results;
}

beast::error_code BindSource(tcp::socket& socket, const asio::ip::address& source) {
  int one = 1;
  ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  beast::error_code ec;
  socket.bind(tcp::endpoint(source, 0), ec);
  return ec;
}

void ExpectPeerName(SSL* ssl, const std::string& host) {
  if (IsIpAddress(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
  }
}

void LimitResponse(ResponseParser& parser, size_t max_header_bytes, size_t max_body_bytes) {
  parser.header_limit(static_cast<std::uint32_t>(max_header_bytes));
  parser.body_limit(max_body_bytes);
}

bool IsStaleConnectionError(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated;
}

}  // namespace appban::net::client_internal
