// Measures what an idle connection costs the server: a server in a child process, N client
// connections from this one, the child's VmRSS before and after. Prints the numbers (they go into
// docs/benchmarks.md) and guards against regressions with generous bounds.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/wait.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <fstream>

#include "appban/net/net_test_support.h"
#include "appban/net/server.h"
#include "appban/net/tls.h"

namespace appban::net {
namespace {

using namespace std::chrono_literals;

// The child process serving on an ephemeral port; killed on destruction.
class ChildServer {
 public:
  explicit ChildServer(const CertificateAndKey* tls_material) {
    int pipe_fds[2];
    EXPECT_EQ(pipe(pipe_fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(pipe_fds[0]);
      Serve(tls_material, pipe_fds[1]);
      _exit(0);
    }
    close(pipe_fds[1]);
    uint16_t port = 0;
    EXPECT_EQ(read(pipe_fds[0], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));
    close(pipe_fds[0]);
    port_ = port;
  }
  ~ChildServer() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  uint16_t port() const { return port_; }

  // Resident memory of the server process, in KiB.
  long ResidentKib() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
  }

 private:
  static void Serve(const CertificateAndKey* tls_material, int port_fd) {
    boost::asio::io_context io;
    ServerOptions options;
    if (tls_material) options.tls = *MakeServerContext(tls_material->certificate_pem, tls_material->private_key_pem);
    std::vector<Responder> held;
    HttpServer server(
        io, options,
        [&](HttpRequest request, Responder respond) {
          if (request.path == "/poll") return held.push_back(std::move(respond));
          HttpResponse response;
          response.body = "{\"ok\":true}";
          respond(std::move(response));
        },
        nullptr, nullptr);
    uint16_t port = *server.Listen("127.0.0.1", 0);
    if (write(port_fd, &port, sizeof(port)) != sizeof(port)) _exit(1);
    close(port_fd);
    io.run();
  }

  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// One client connection, plain or TLS, with blocking I/O.
class Client {
 public:
  Client(uint16_t port, SSL_CTX* tls) : raw_(port) {
    if (!tls) return;
    ssl_ = SSL_new(tls);
    SSL_set_fd(ssl_, raw_.fd());
    ok_ = SSL_connect(ssl_) == 1;
  }
  ~Client() {
    if (ssl_) SSL_free(ssl_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends a request; when `wait_for_response`, reads until a full (small) response arrived.
  bool Exchange(std::string_view request, bool wait_for_response) {
    if (!ssl_) {
      if (!raw_.Send(request)) return false;
      return !wait_for_response || testing::RawConnection::CountResponses(raw_.ReadResponses(1, 5s)) == 1;
    }
    if (!ok_ || SSL_write(ssl_, request.data(), static_cast<int>(request.size())) <= 0) return false;
    if (!wait_for_response) return true;
    std::string data;
    char chunk[1024];
    while (testing::RawConnection::CountResponses(data) < 1) {
      int got = SSL_read(ssl_, chunk, sizeof(chunk));
      if (got <= 0) return false;
      data.append(chunk, static_cast<size_t>(got));
    }
    return true;
  }

 private:
  testing::RawConnection raw_;
  SSL* ssl_ = nullptr;
  bool ok_ = true;
};

struct Measurement {
  double keepalive_kib;
  double long_poll_kib;
};

Measurement MeasureIdleConnections(size_t count, const CertificateAndKey* tls_material) {
  ChildServer server(tls_material);
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> tls(nullptr, SSL_CTX_free);
  if (tls_material) tls.reset(SSL_CTX_new(TLS_client_method()));
  {
    Client warm_up(server.port(), tls.get());  // first-use allocations are not per-connection cost
    EXPECT_TRUE(warm_up.Exchange("GET / HTTP/1.1\r\n\r\n", true));
  }
  std::this_thread::sleep_for(100ms);
  long before = server.ResidentKib();
  std::vector<std::unique_ptr<Client>> clients;
  for (size_t i = 0; i < count; ++i) {
    clients.push_back(std::make_unique<Client>(server.port(), tls.get()));
    EXPECT_TRUE(clients.back()->Exchange("GET / HTTP/1.1\r\n\r\n", true)) << i;
  }
  std::this_thread::sleep_for(300ms);
  long keepalive = server.ResidentKib();
  for (auto& client : clients) EXPECT_TRUE(client->Exchange("GET /poll HTTP/1.1\r\n\r\n", false));
  std::this_thread::sleep_for(500ms);
  long long_poll = server.ResidentKib();
  Measurement result{static_cast<double>(keepalive - before) * 1024 / count / 1024,
                     static_cast<double>(long_poll - before) * 1024 / count / 1024};
  std::printf(
      "%s: %zu idle connections: VmRSS %ld -> %ld KiB keep-alive (%.1f KiB each), %ld KiB held long-poll (%.1f KiB "
      "each)\n",
      tls_material ? "TLS" : "plain", count, before, keepalive, result.keepalive_kib, long_poll, result.long_poll_kib);
  return result;
}

// AddressSanitizer's allocator pads and quarantines every allocation, so resident memory says
// nothing about the server's own cost there; the release build checks these numbers.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

TEST(ServerMemory, IdlePlainConnectionsAreCheap) {
  if (kSanitized) GTEST_SKIP() << "memory is not measurable under AddressSanitizer";
  Measurement measured = MeasureIdleConnections(5000, nullptr);
  EXPECT_LT(measured.keepalive_kib, 20.0);
  EXPECT_LT(measured.long_poll_kib, 20.0);
}

TEST(ServerMemory, IdleTlsConnections) {
  if (kSanitized) GTEST_SKIP() << "memory is not measurable under AddressSanitizer";
  Result<CertificateAndKey> ca = GenerateSelfSignedCa("memory test CA", 2);
  ASSERT_TRUE(ca.ok());
  Result<CertificateAndKey> server = IssueServerCertificate(*ca, {"127.0.0.1"}, 2);
  ASSERT_TRUE(server.ok());
  Measurement measured = MeasureIdleConnections(2000, &*server);
  // About 16 KiB measured with detail::TlsSocket; asio::ssl::stream cost about 75 KiB.
  EXPECT_LT(measured.keepalive_kib, 40.0);
  EXPECT_LT(measured.long_poll_kib, 40.0);
}

}  // namespace
}  // namespace appban::net
