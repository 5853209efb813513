// Internal to net/: the pieces of an HTTP/1.1 client exchange that the synchronous HttpClient
// (client.h) and the asynchronous AsyncConnection (async_client.h) share — resolving the server,
// binding a chosen source address, naming the server for TLS verification against the pinned CA,
// bounding the response, and telling a stale keep-alive connection from a real failure. Both
// clients drive the same Beast streams and must agree on these rules, so they live once here.
//
// Unlike the public headers, this one exposes Boost types; only net's own .cc files include it.
// Everything here is a pure function of its arguments; safe from any thread.
#pragma once

#include <openssl/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "appban/common/status.h"

namespace appban::net::client_internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using ResponseParser = http::response_parser<http::string_body>;

// True for "127.0.0.1" or "::1" (no brackets), false for a DNS name.
bool IsIpAddress(const std::string& host);

// The server's addresses. kUnavailable "cannot resolve <host>: ..." when there are none.
Result<tcp::resolver::results_type> ResolveHost(asio::io_context& io, const std::string& host, uint16_t port);

// Binds an open, not yet connected socket to `source` (port chosen by the kernel at connect time).
// The port is left to connect() because reserving it at bind() would limit each source address to
// one connection per ephemeral port over all destinations, which a simulated fleet runs out of.
beast::error_code BindSource(tcp::socket& socket, const asio::ip::address& source);

// Makes the handshake check that the server's certificate (already required to chain to the pinned
// CA by MakeClientContext) names `host`: as an IP address SAN for an address, else as a DNS name,
// which is also sent as SNI.
void ExpectPeerName(SSL* ssl, const std::string& host);

// Bounds what a response may make the client hold in memory.
void LimitResponse(ResponseParser& parser, size_t max_header_bytes, size_t max_body_bytes);

// True when a failure on a reused connection means "the server had closed it meanwhile": resending
// on a fresh connection is safe provided no response byte arrived.
bool IsStaleConnectionError(const beast::error_code& ec);

}  // namespace appban::net::client_internal
