// A small synchronous HTTP(S) client for tests, the CLI and the agent. One HttpClient keeps one
// connection open and reuses it (keep-alive), reconnecting when the server has closed it.
// Not thread-safe: one thread uses a client at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "appban/common/status.h"
#include "appban/net/http.h"

namespace appban::net {

struct Url {
  bool tls = false;  // https
  std::string host;  // DNS name or IP address (IPv6 without brackets)
  uint16_t port = 0;
};
// "https://127.0.0.1:8443", "http://[::1]:8080", "https://appban.example.gov" (port 443/80 by
// default). A path after the authority is refused: requests name their own paths.
Result<Url> ParseUrl(std::string_view text);
// The Host header value for `url` (RFC 9112 §3.2): "host:port", with an IPv6 address in brackets
// ("[::1]:8443") so the colons of the address are not read as the port separator.
std::string HostHeader(const Url& url);

struct ClientOptions {
  std::string pinned_ca_pem;  // for https: the only CA trusted
  // For https to a public service (an MDM's API) when no CA is pinned: trust the system's CA
  // store (Debian's ca-certificates) instead. Ignored when pinned_ca_pem is set.
  bool trust_system_roots = false;
  std::chrono::milliseconds connect_timeout{10'000};  // TCP connect plus TLS handshake
  std::chrono::milliseconds read_timeout{30'000};     // the whole exchange of one request
  std::string local_address;                          // bind the client side to this IP ("127.0.0.2"); "" = any
  // For https to a server that asks for a client certificate (mutual TLS): the person's
  // certificate chain and its unencrypted PEM key, presented in every handshake. Both or neither.
  std::string client_certificate_pem;
  std::string client_key_pem;
  size_t max_response_bytes = 64 * 1024 * 1024;
};

class HttpClient {
 public:
  HttpClient(Url base, ClientOptions options);
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Sends one request and reads the response. `path` may carry a query ("/v1/poll?since=3").
  // Errors: kUnavailable ("connection refused", "timed out ...", "TLS verification failed ..."),
  // kCorruption for a malformed response, kLimitExceeded for a response over max_response_bytes.
  // A request that fails on a reused connection before any response byte arrived is retried once
  // on a fresh connection (the server may have closed the idle connection meanwhile).
  Result<HttpResponse> Request(std::string_view method, std::string_view path, std::string_view body = {},
                               const std::vector<std::pair<std::string, std::string>>& headers = {});

  // Closes the connection (the next Request reconnects).
  void Close();
  // How many TCP connections this client has opened so far (tests check keep-alive reuse).
  size_t connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace appban::net
