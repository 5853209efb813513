// Fuzzes the HTTP server's request handling (net/server.cc) end to end: each input is sent as the
// bytes of one client connection to a real HttpServer on loopback, with small limits so the limit
// paths are reachable. Whatever arrives, the server must answer with a well-formed status line or
// close, never crash, hang or leak; it must stay able to serve the next connection.
//
// Needs appban_net among the libraries fuzz/CMakeLists.txt links into fuzz targets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "appban/net/http.h"
#include "appban/net/server.h"

namespace {

using namespace std::chrono_literals;
using appban::net::HttpRequest;
using appban::net::HttpResponse;
using appban::net::Responder;

struct FuzzServer {
  FuzzServer() {
    appban::net::ServerOptions options;
    options.max_header_bytes = 2048;
    options.read_header_timeout = 500ms;
    options.read_body_timeout = 500ms;
    options.write_timeout = 500ms;
    options.idle_keepalive_timeout = 500ms;
    options.max_connections = 16;
    server = std::make_unique<appban::net::HttpServer>(
        io, options,
        [this](HttpRequest request, Responder respond) {
          // Exercise every way an application answers: now, later (held), never (dropped).
          if (request.path == "/hold") return held.push_back(std::move(respond));
          if (request.path == "/drop") return;
          if (!held.empty()) {
            held.front()(HttpResponse{});
            held.erase(held.begin());
          }
          HttpResponse response;
          response.body = request.method + " " + request.path + " " + request.query + " " +
                          std::to_string(request.body.size()) + " " + std::string(request.Header("host"));
          if (request.path == "/shared") response.shared_body = std::make_shared<const std::string>(response.body);
          respond(std::move(response));
        },
        [](std::string_view, std::string_view path) -> size_t { return path == "/upload" ? 4096 : 16; }, nullptr);
    port = *server->Listen("127.0.0.1", 0);
  }

  boost::asio::io_context io;
  std::vector<Responder> held;
  std::unique_ptr<appban::net::HttpServer> server;
  uint16_t port = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static FuzzServer* fuzz = new FuzzServer();  // lives for the process: one server, many inputs
  int client = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(fuzz->port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address));  // completes on loopback

  std::string received;
  size_t sent = 0;
  bool write_closed = false;
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < deadline) {
    fuzz->io.poll();
    fuzz->io.restart();
    if (sent < size) {
      ssize_t n = send(client, data + sent, size - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINPROGRESS && errno != ENOTCONN) sent = size;  // server closed
    } else if (!write_closed) {
      shutdown(client, SHUT_WR);
      write_closed = true;
    }
    char chunk[4096];
    ssize_t got = recv(client, chunk, sizeof(chunk), 0);
    if (got > 0) received.append(chunk, static_cast<size_t>(got));
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != ENOTCONN)) break;  // the server closed
  }
  close(client);
  // Let the server notice the close and release the connection.
  for (int i = 0; i < 10; ++i) {
    fuzz->io.poll();
    fuzz->io.restart();
  }
  if (!received.empty() && received.rfind("HTTP/1.1 ", 0) != 0) std::abort();
  return 0;
}
