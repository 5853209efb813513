// Small helpers the MDM emulators share: the loopback HTTP server each one runs on a thread of its
// own, base64url decoding and RS256 verification of JWTs, and splitting form bodies and paths.
// Test-only; the free functions are thread-safe.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "appban/common/status.h"
#include "appban/net/http.h"
#include "appban/net/server.h"

namespace appban::testing {

// An HTTP server on 127.0.0.1 (a free port) answering every request with `handle`, on a thread of
// its own. Stop (or destruction) closes it and joins the thread; call Stop before destroying what
// `handle` uses. Start and Stop from one thread.
class LoopbackServer {
 public:
  using Handle = std::function<net::HttpResponse(const net::HttpRequest&)>;

  LoopbackServer() = default;
  ~LoopbackServer() { Stop(); }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  // Requests with a body larger than `max_body` are refused by the server itself.
  Status Start(net::ServerOptions options, size_t max_body, Handle handle) {
    http_ = std::make_unique<net::HttpServer>(
        io_, std::move(options),
        [handle = std::move(handle)](net::HttpRequest request, net::Responder respond) { respond(handle(request)); },
        [max_body](std::string_view, std::string_view) -> size_t { return max_body; }, nullptr);
    APPBAN_ASSIGN_OR_RETURN(port_, http_->Listen("127.0.0.1", 0));
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  void Stop() {
    if (!thread_.joinable()) return;
    std::promise<void> done;
    boost::asio::post(io_, [this, &done] {
      http_.reset();
      done.set_value();
    });
    done.get_future().wait();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{boost::asio::make_work_guard(io_)};
  std::unique_ptr<net::HttpServer> http_;
  std::thread thread_;
  uint16_t port_ = 0;
};

inline std::optional<std::string> Base64UrlDecode(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    else
      return std::nullopt;
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  if (bits >= 6) return std::nullopt;
  return out;
}

inline std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

// True when `signature` is an RS256 signature of `signed_text` by the key of `public_key_pem`
// (SubjectPublicKeyInfo).
inline bool VerifyRs256(const std::string& public_key_pem, const std::string& signed_text,
                        const std::string& signature) {
  BIO* bio = BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) return false;
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(context, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(context, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                             reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size()) == 1;
  EVP_MD_CTX_free(context);
  EVP_PKEY_free(key);
  return ok;
}

}  // namespace appban::testing
