#include "appban/net/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "appban/net/client.h"
#include "appban/net/net_test_support.h"

namespace appban::net {
namespace {

using namespace std::chrono_literals;
using testing::RawConnection;
using testing::ServerThread;

// Echoes "<method> <path>?<query>|<body>" for every request.
void Echo(HttpRequest request, Responder respond) {
  HttpResponse response;
  response.content_type = "text/plain";
  response.body = request.method + " " + request.path + "?" + request.query + "|" + request.body;
  respond(std::move(response));
}

HttpClient PlainClient(const ServerThread& server) {
  Result<Url> url = ParseUrl(server.url());
  EXPECT_TRUE(url.ok());
  ClientOptions options;
  options.read_timeout = 5s;
  return HttpClient(*url, options);
}

nlohmann::json ErrorBody(const std::string& raw_response) {
  size_t body = raw_response.find("\r\n\r\n");
  if (body == std::string::npos) return {};
  return nlohmann::json::parse(raw_response.substr(body + 4), nullptr, false);
}

class CountingObserver : public ServerObserver {
 public:
  void OnConnectionOpened() override { ++opened; }
  void OnConnectionClosed() override { ++closed; }
  void OnConnectionRejected() override { ++rejected; }
  void OnRequestCompleted(std::string_view, std::string_view, int status, double seconds) override {
    ++requests;
    last_status = status;
    EXPECT_GE(seconds, 0.0);
  }
  std::atomic<int> opened{0}, closed{0}, rejected{0}, requests{0}, last_status{0};
};

TEST(HttpServer, KeepAliveReusesOneConnection) {
  CountingObserver observer;
  ServerThread server({}, Echo, nullptr, &observer);
  HttpClient client = PlainClient(server);
  for (int i = 0; i < 5; ++i) {
    Result<HttpResponse> response = client.Request("GET", "/v1/ping?n=" + std::to_string(i));
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "GET /v1/ping?n=" + std::to_string(i) + "|");
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(observer.opened.load(), 1);
  // The observer hears of a request once its write completed, which may be after the client read it.
  for (int i = 0; i < 500 && observer.requests.load() < 5; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(observer.requests.load(), 5);
}

TEST(HttpServer, PathIsPercentDecodedAndQueryParamsDecode) {
  std::string seen_path;
  std::optional<std::string> seen_param;
  ServerThread server({}, [&](HttpRequest request, Responder respond) {
    seen_path = request.path;
    seen_param = request.QueryParam("name");
    respond({});
  });
  HttpClient client = PlainClient(server);
  ASSERT_TRUE(client.Request("GET", "/v1/apps/com.example%2Fx?other=1&name=a%20b+c").ok());
  EXPECT_EQ(seen_path, "/v1/apps/com.example/x");
  EXPECT_EQ(seen_param, "a b c");
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  // The first request is answered last in time (after a delay); the responses must still come back
  // in request order.
  std::unique_ptr<boost::asio::steady_timer> timer;
  ServerThread* server_pointer = nullptr;
  ServerThread server({}, [&](HttpRequest request, Responder respond) {
    if (request.path == "/slow") {
      timer = std::make_unique<boost::asio::steady_timer>(server_pointer->io(), 100ms);
      timer->async_wait([respond = std::move(respond)](auto) mutable {
        HttpResponse response;
        response.body = "slow";
        respond(std::move(response));
      });
      return;
    }
    HttpResponse response;
    response.body = request.path.substr(1);
    respond(std::move(response));
  });
  server_pointer = &server;
  RawConnection connection(server.port());
  ASSERT_TRUE(
      connection.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string responses = connection.ReadResponses(3, 5s);
  size_t slow = responses.find("\r\n\r\nslow"), b = responses.find("\r\n\r\nb"), c = responses.find("\r\n\r\nc");
  ASSERT_NE(slow, std::string::npos) << responses;
  ASSERT_NE(b, std::string::npos) << responses;
  ASSERT_NE(c, std::string::npos) << responses;
  EXPECT_LT(slow, b);
  EXPECT_LT(b, c);
  server.RunOnServer([&] { timer.reset(); });
}

TEST(HttpServer, GarbageGets400WithJsonErrorThenClose) {
  bool handler_called = false;
  ServerThread server({}, [&](HttpRequest, Responder respond) {
    handler_called = true;
    respond({});
  });
  for (std::string garbage : {std::string("HELLO\r\n\r\n"), std::string("GET / HTTP/9.9\r\n\r\n"),
                              std::string("GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
                              std::string("GET no-slash HTTP/1.1\r\n\r\n"), std::string("GET /%zz HTTP/1.1\r\n\r\n"),
                              std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)}) {
    RawConnection connection(server.port());
    ASSERT_TRUE(connection.Send(garbage));
    std::string response = connection.ReadUntilClosed(5s);
    EXPECT_TRUE(connection.closed()) << garbage;
    EXPECT_EQ(response.rfind("HTTP/1.1 400 ", 0), 0u) << garbage << " -> " << response;
    nlohmann::json body = ErrorBody(response);
    EXPECT_EQ(body["error"]["code"], "bad_request") << response;
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
  }
  EXPECT_FALSE(handler_called);
}

TEST(HttpServer, HugeHeadersGet431) {
  ServerOptions options;
  options.max_header_bytes = 4096;
  ServerThread server(options, Echo);
  RawConnection connection(server.port());
  ASSERT_TRUE(connection.Send("GET / HTTP/1.1\r\nX-Big: " + std::string(8000, 'a') + "\r\n\r\n"));
  std::string response = connection.ReadUntilClosed(5s);
  EXPECT_EQ(response.rfind("HTTP/1.1 431 ", 0), 0u) << response;
  EXPECT_EQ(ErrorBody(response)["error"]["code"], "header_too_large");
}

TEST(HttpServer, BodyOverRouteLimitGets413WithoutReadingIt) {
  bool handler_called = false;
  ServerThread server(
      {}, [&](HttpRequest, Responder respond) { handler_called = true, respond({}); },
      [](std::string_view, std::string_view path) -> size_t { return path == "/upload" ? 1000 : 0; });
  RawConnection connection(server.port());
  // Ten gigabytes announced, none sent: the answer must not wait for them.
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(connection.Send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n"));
  std::string response = connection.ReadResponses(1, 5s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(response.rfind("HTTP/1.1 413 ", 0), 0u) << response;
  EXPECT_EQ(ErrorBody(response)["error"]["code"], "payload_too_large");
  EXPECT_NE(response.find("Connection: close"), std::string::npos);
  EXPECT_FALSE(handler_called);

  // A route with no body allowance refuses even a small body.
  RawConnection second(server.port());
  ASSERT_TRUE(second.Send("POST /other HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"));
  EXPECT_EQ(second.ReadResponses(1, 5s).rfind("HTTP/1.1 413 ", 0), 0u);
}

TEST(HttpServer, ChunkedBodyIsAssembledAndLimited) {
  ServerThread server({}, Echo, [](std::string_view, std::string_view) -> size_t { return 10; });
  RawConnection connection(server.port());
  ASSERT_TRUE(
      connection.Send("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"));
  std::string response = connection.ReadResponses(1, 5s);
  EXPECT_EQ(response.rfind("HTTP/1.1 200 ", 0), 0u) << response;
  EXPECT_NE(response.find("POST /c?|abcdefg"), std::string::npos) << response;

  RawConnection over(server.port());
  ASSERT_TRUE(
      over.Send("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nabcdefgh\r\n8\r\nabcdefgh\r\n0\r\n\r\n"));
  EXPECT_EQ(over.ReadResponses(1, 5s).rfind("HTTP/1.1 413 ", 0), 0u);
}

TEST(HttpServer, ExpectContinueGetsInterimResponse) {
  ServerThread server({}, Echo);
  RawConnection connection(server.port());
  ASSERT_TRUE(connection.Send("POST /e HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  std::string interim = connection.ReadResponses(1, 5s);
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(connection.Send("hello"));
  std::string response = connection.ReadResponses(1, 5s);
  EXPECT_NE(response.find("POST /e?|hello"), std::string::npos) << response;
}

TEST(HttpServer, Http10AndConnectionCloseClose) {
  ServerThread server({}, Echo);
  for (std::string request : {"GET /a HTTP/1.0\r\n\r\n", "GET /a HTTP/1.1\r\nConnection: close\r\n\r\n"}) {
    RawConnection connection(server.port());
    ASSERT_TRUE(connection.Send(request));
    std::string response = connection.ReadUntilClosed(5s);
    EXPECT_TRUE(connection.closed());
    EXPECT_NE(response.find("GET /a?|"), std::string::npos) << response;
    EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
  }
}

TEST(HttpServer, SlowLorisHeaderTimesOut) {
  ServerOptions options;
  options.read_header_timeout = 300ms;
  ServerThread server(options, Echo);
  RawConnection connection(server.port());
  ASSERT_TRUE(connection.Send("GET / HTTP/1.1\r\nHost: x\r\n"));  // never finishes the headers
  auto start = std::chrono::steady_clock::now();
  connection.ReadUntilClosed(10s);
  EXPECT_TRUE(connection.closed());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(HttpServer, IdleKeepAliveTimesOut) {
  ServerOptions options;
  options.idle_keepalive_timeout = 300ms;
  ServerThread server(options, Echo);
  RawConnection connection(server.port());
  ASSERT_TRUE(connection.Send("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(connection.ReadResponses(1, 5s).rfind("HTTP/1.1 200", 0), 0u);
  connection.ReadUntilClosed(10s);
  EXPECT_TRUE(connection.closed());
}

TEST(HttpServer, HeldResponderIsAnsweredLater) {
  std::vector<Responder> held;
  ServerThread server({}, [&](HttpRequest, Responder respond) { held.push_back(std::move(respond)); });
  std::future<Result<HttpResponse>> response = std::async(std::launch::async, [&] {
    HttpClient client = PlainClient(server);
    return client.Request("GET", "/v1/poll");
  });
  // Wait until the request is held, then answer it from the server thread.
  for (int i = 0; i < 500 && server.RunOnServer([&] { return held.size(); }) == 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(response.wait_for(100ms), std::future_status::timeout);
  server.RunOnServer([&] {
    EXPECT_TRUE(held.at(0).alive());
    HttpResponse answer;
    answer.shared_body = std::make_shared<const std::string>("bundle");
    held.at(0)(std::move(answer));
  });
  Result<HttpResponse> result = response.get();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->body, "bundle");
  server.RunOnServer([&] { held.clear(); });
}

TEST(HttpServer, DroppedResponderAnswers500) {
  ServerThread server({}, [](HttpRequest, Responder) {});
  HttpClient client = PlainClient(server);
  Result<HttpResponse> response = client.Request("GET", "/");
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 500);
  // The connection stays usable.
  EXPECT_EQ(client.Request("GET", "/")->status, 500);
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST(HttpServer, ThrowingHandlerAnswers500) {
  ServerThread server({}, [](HttpRequest, Responder) { throw std::runtime_error("boom"); });
  HttpClient client = PlainClient(server);
  EXPECT_EQ(client.Request("GET", "/")->status, 500);
}

TEST(HttpServer, ClientDisconnectWhileHeldMakesAliveFalse) {
  std::vector<Responder> held;
  CountingObserver observer;
  ServerThread server(
      {}, [&](HttpRequest, Responder respond) { held.push_back(std::move(respond)); }, nullptr, &observer);
  {
    RawConnection connection(server.port());
    ASSERT_TRUE(connection.Send("GET /v1/poll HTTP/1.1\r\n\r\n"));
    for (int i = 0; i < 500 && server.RunOnServer([&] { return held.size(); }) == 0; ++i)
      std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(server.RunOnServer([&] { return held.size() == 1 && held[0].alive(); }));
  }
  bool alive = true;
  for (int i = 0; i < 500 && alive; ++i) {
    alive = server.RunOnServer([&] { return held[0].alive(); });
    if (alive) std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(alive);
  EXPECT_EQ(observer.closed.load(), 1);
  server.RunOnServer([&] {
    held[0]({});  // a no-op now
    held.clear();
  });
}

TEST(HttpServer, AtMaxConnectionsNewOnesGet503) {
  ServerOptions options;
  options.max_connections = 2;
  CountingObserver observer;
  ServerThread server(options, Echo, nullptr, &observer);
  RawConnection first(server.port()), second(server.port());
  for (int i = 0; i < 500 && server.RunOnServer([&] { return server.server().connection_count(); }) < 2; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  RawConnection third(server.port());
  std::string response = third.ReadUntilClosed(5s);
  EXPECT_EQ(response.rfind("HTTP/1.1 503 ", 0), 0u) << response;
  EXPECT_TRUE(third.closed());
  EXPECT_EQ(observer.rejected.load(), 1);
  // The admitted connections still work.
  ASSERT_TRUE(first.Send("GET /ok HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(first.ReadResponses(1, 5s).rfind("HTTP/1.1 200 ", 0), 0u);
}

TEST(HttpServer, GracefulShutdownFinishesInFlightRequestsAndDrainsLongPolls) {
  std::vector<Responder> held;
  ServerThread server({}, [&](HttpRequest request, Responder respond) {
    if (request.path == "/poll" || request.path == "/work") return held.push_back(std::move(respond));
    Echo(std::move(request), std::move(respond));
  });
  server.RunOnServer([&] {
    server.server().SetLongPollDrainer([&] {
      // The application answers its long-polls (and only those) when asked to drain.
      for (Responder& responder : held) {
        HttpResponse response;
        response.body = "drained";
        if (responder.pending()) responder(std::move(response));
      }
      held.erase(held.begin());
    });
  });
  RawConnection idle(server.port()), poll(server.port()), work(server.port());
  ASSERT_TRUE(idle.Send("GET /x HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(idle.ReadResponses(1, 5s).rfind("HTTP/1.1 200", 0), 0u);
  ASSERT_TRUE(poll.Send("GET /poll HTTP/1.1\r\n\r\n"));
  for (int i = 0; i < 500 && server.RunOnServer([&] { return held.size(); }) < 1; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(work.Send("GET /work HTTP/1.1\r\n\r\n"));
  for (int i = 0; i < 500 && server.RunOnServer([&] { return held.size(); }) < 2; ++i)
    std::this_thread::sleep_for(10ms);
  // Drain only answers the first (the long-poll); pretend /work is a slow in-flight request.
  server.RunOnServer([&] {
    server.server().SetLongPollDrainer([&] {
      HttpResponse response;
      response.body = "drained";
      held.at(0)(std::move(response));
    });
  });
  std::promise<void> idle_promise;
  server.RunOnServer([&] { server.server().BeginShutdown([&] { idle_promise.set_value(); }, 10s); });
  idle.ReadUntilClosed(5s);
  EXPECT_TRUE(idle.closed());
  std::string polled = poll.ReadUntilClosed(5s);
  EXPECT_NE(polled.find("drained"), std::string::npos) << polled;
  EXPECT_NE(polled.find("Connection: close"), std::string::npos) << polled;
  auto idle_future = idle_promise.get_future();
  EXPECT_EQ(idle_future.wait_for(200ms), std::future_status::timeout);  // /work is still in flight
  server.RunOnServer([&] {
    HttpResponse response;
    response.body = "finished";
    held.at(1)(std::move(response));
  });
  std::string worked = work.ReadUntilClosed(5s);
  EXPECT_NE(worked.find("finished"), std::string::npos) << worked;
  EXPECT_EQ(idle_future.wait_for(5s), std::future_status::ready);
  // No new connections are accepted.
  RawConnection late(server.port());
  EXPECT_FALSE(late.connected());
  server.RunOnServer([&] { held.clear(); });
}

TEST(HttpServer, ShutdownDeadlineForceClosesStragglers) {
  std::vector<Responder> held;
  ServerThread server({}, [&](HttpRequest, Responder respond) { held.push_back(std::move(respond)); });
  RawConnection connection(server.port());
  ASSERT_TRUE(connection.Send("GET /stuck HTTP/1.1\r\n\r\n"));
  for (int i = 0; i < 500 && server.RunOnServer([&] { return held.size(); }) < 1; ++i)
    std::this_thread::sleep_for(10ms);
  std::promise<void> idle_promise;
  server.RunOnServer([&] { server.server().BeginShutdown([&] { idle_promise.set_value(); }, 200ms); });
  EXPECT_EQ(idle_promise.get_future().wait_for(5s), std::future_status::ready);
  connection.ReadUntilClosed(5s);
  EXPECT_TRUE(connection.closed());
  server.RunOnServer([&] { held.clear(); });
}

TEST(HttpServer, MaxRequestsPerConnectionClosesAfterTheLast) {
  ServerOptions options;
  options.max_requests_per_connection = 2;
  ServerThread server(options, Echo);
  HttpClient client = PlainClient(server);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(client.Request("GET", "/").ok());
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(HttpServer, AdoptAcceptsOnAnInheritedSocket) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor listener(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  uint16_t port = listener.local_endpoint().port();
  HttpServer server(io, {}, Echo, nullptr, nullptr);
  ASSERT_TRUE(server.Adopt(listener.native_handle()).ok());
  std::thread runner([&] { io.run_for(3s); });
  HttpClient client(*ParseUrl("http://127.0.0.1:" + std::to_string(port)), {});
  Result<HttpResponse> response = client.Request("GET", "/adopted");
  EXPECT_TRUE(response.ok()) << response.status().ToString();
  if (response.ok()) {
    EXPECT_EQ(response->body, "GET /adopted?|");
  }
  boost::asio::post(io, [&] { io.stop(); });
  runner.join();
  EXPECT_FALSE(server.Adopt(-1).ok());
}

TEST(HttpClient, ConnectionRefusedIsNamed) {
  uint16_t port;
  {
    ServerThread server({}, Echo);
    port = server.port();
  }
  HttpClient client(*ParseUrl("http://127.0.0.1:" + std::to_string(port)), {});
  Result<HttpResponse> response = client.Request("GET", "/");
  ASSERT_FALSE(response.ok());
  EXPECT_NE(response.status().message().find("connection refused"), std::string::npos) << response.status().ToString();
}

TEST(HttpClient, ReadTimeoutIsNamed) {
  std::vector<Responder> held;
  ServerThread server({}, [&](HttpRequest, Responder respond) { held.push_back(std::move(respond)); });
  ClientOptions options;
  options.read_timeout = 200ms;
  HttpClient client(*ParseUrl(server.url()), options);
  Result<HttpResponse> response = client.Request("GET", "/");
  ASSERT_FALSE(response.ok());
  EXPECT_NE(response.status().message().find("timed out"), std::string::npos) << response.status().ToString();
  server.RunOnServer([&] { held.clear(); });
}

TEST(HttpClient, ReconnectsWhenTheServerClosedAnIdleConnection) {
  ServerOptions options;
  options.idle_keepalive_timeout = 100ms;
  ServerThread server(options, Echo);
  HttpClient client = PlainClient(server);
  ASSERT_TRUE(client.Request("GET", "/1").ok());
  std::this_thread::sleep_for(400ms);
  Result<HttpResponse> second = client.Request("GET", "/2");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(ParseUrl, AcceptsAndRefuses) {
  Result<Url> https = ParseUrl("https://127.0.0.1:8443");
  ASSERT_TRUE(https.ok());
  EXPECT_TRUE(https->tls);
  EXPECT_EQ(https->host, "127.0.0.1");
  EXPECT_EQ(https->port, 8443);
  Result<Url> v6 = ParseUrl("http://[::1]:8080/");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(ParseUrl("https://appban.example.gov")->port, 443);
  EXPECT_FALSE(ParseUrl("ftp://x").ok());
  EXPECT_FALSE(ParseUrl("http://x:99999").ok());
  EXPECT_FALSE(ParseUrl("http://x:").ok());
  EXPECT_FALSE(ParseUrl("http://x/path").ok());
  EXPECT_FALSE(ParseUrl("http://").ok());
}

TEST(HttpRequest, HeaderAndQueryParam) {
  HttpRequest request;
  request.headers = {{"authorization", "Bearer t"}};
  request.query = "a=1&b=x%2By&c&d=%zz";
  EXPECT_EQ(request.Header("authorization"), "Bearer t");
  EXPECT_EQ(request.Header("missing"), "");
  EXPECT_EQ(request.QueryParam("a"), "1");
  EXPECT_EQ(request.QueryParam("b"), "x+y");
  EXPECT_EQ(request.QueryParam("c"), "");
  EXPECT_EQ(request.QueryParam("d"), std::nullopt);
  EXPECT_EQ(request.QueryParam("e"), std::nullopt);
}

}  // namespace
}  // namespace appban::net
namespace appban::net {
namespace {
TEST(HttpServer, LargeBodiesRoundTrip) {
  ServerThread server({}, Echo);
  HttpClient client = PlainClient(server);
  std::string big(200'000, 'z');
  Result<HttpResponse> response = client.Request("POST", "/big", big);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->body, "POST /big?|" + big);
}
}  // namespace
}  // namespace appban::net

namespace appban::net {
namespace {

// Counts the "HTTP/1.1 " status lines in what a raw connection received.
size_t StatusLines(const std::string& raw) {
  size_t count = 0;
  for (size_t at = raw.find("HTTP/1.1 "); at != std::string::npos; at = raw.find("HTTP/1.1 ", at + 1)) ++count;
  return count;
}

// Hardening: a Transfer-Encoding other than plain `chunked` used to be read as "no body", and the
// body's bytes were then parsed as a second request (a smuggled GET answered 200).
TEST(HttpServer, UnknownTransferEncodingGets400AndCloseNothingSmuggled) {
  std::vector<std::string> seen;
  ServerThread server({}, [&](HttpRequest request, Responder respond) {
    seen.push_back(request.method + " " + request.path);
    respond({});
  });
  const std::string smuggled = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::string coding : {"xchunked", "chunked, identity", "identity", "gzip, chunked"}) {
    RawConnection connection(server.port());
    ASSERT_TRUE(
        connection.Send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding + "\r\n\r\n" + smuggled));
    std::string response = connection.ReadUntilClosed(5s);
    EXPECT_TRUE(connection.closed()) << coding;
    EXPECT_EQ(response.rfind("HTTP/1.1 400 ", 0), 0u) << coding << " -> " << response;
    EXPECT_EQ(StatusLines(response), 1u) << "the body was answered as a request: " << response;
    EXPECT_NE(ErrorBody(response)["error"]["message"].get<std::string>().find("Transfer-Encoding"), std::string::npos);
  }
  // Both framings at once, and two Transfer-Encoding lines, are ambiguous: refused too.
  for (std::string headers : {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                              "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"}) {
    RawConnection connection(server.port());
    ASSERT_TRUE(connection.Send("POST /upload HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n0\r\n\r\n" + smuggled));
    std::string response = connection.ReadUntilClosed(5s);
    EXPECT_EQ(response.rfind("HTTP/1.1 400 ", 0), 0u) << headers << " -> " << response;
    EXPECT_EQ(StatusLines(response), 1u) << response;
  }
  server.RunOnServer([&] { EXPECT_TRUE(seen.empty()) << seen.front(); });
}

// Hardening: the first request's header clock used to restart at its first byte, giving a slow
// client twice read_header_timeout.
TEST(HttpServer, FirstRequestHeaderDeadlineCountsFromConnectionNotFirstByte) {
  ServerOptions options;
  options.read_header_timeout = 2s;
  ServerThread server(options, Echo);
  RawConnection connection(server.port());
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(connection.Send("G"));  // one byte, then nothing
  connection.ReadUntilClosed(10s);
  ASSERT_TRUE(connection.closed());
  // Closed at about 2 s from connecting; with a restarted clock it was 3.5 s.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

// Hardening: a request refused by the gate (no or wrong credentials) is answered from its headers;
// its announced body is never read, and the handler never runs.
TEST(HttpServer, GateRefusesFromHeadersWithoutReadingTheBody) {
  std::atomic<int> handled{0};
  ServerThread server(
      {}, [&](HttpRequest, Responder respond) { ++handled, respond({}); },
      [](std::string_view, std::string_view) -> size_t { return 512u << 20; });
  server.RunOnServer([&] {
    server.server().SetRequestGate([](const HttpRequest& head) -> std::optional<HttpResponse> {
      if (head.Header("authorization") == "Bearer good") return std::nullopt;
      return MakeErrorResponse(401, "unauthenticated", "no valid token for " + head.path);
    });
  });
  RawConnection connection(server.port());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(connection.Send("POST /v1/admin/assessments HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n\r\n"));
  std::string response = connection.ReadUntilClosed(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(response.rfind("HTTP/1.1 401 ", 0), 0u) << response;
  EXPECT_TRUE(connection.closed()) << "an unread body must not be parsed as the next request";
  EXPECT_NE(response.find("Connection: close"), std::string::npos);

  // A refused request without a body keeps its connection; a good token gets through.
  RawConnection keep(server.port());
  ASSERT_TRUE(keep.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nAuthorization: Bearer good\r\n\r\n"));
  std::string both = keep.ReadResponses(2, 5s);
  EXPECT_EQ(both.rfind("HTTP/1.1 401 ", 0), 0u) << both;
  EXPECT_NE(both.find("HTTP/1.1 200 "), std::string::npos) << both;
  EXPECT_EQ(handled.load(), 1);
}

// Hardening: parallel large uploads are bounded per server, so they cannot take its memory.
TEST(HttpServer, TooManyLargeBodiesAtOnceGet503WithRetryAfter) {
  ServerOptions options;
  options.large_body_bytes = 1000;
  options.max_large_bodies = 1;
  ServerThread server(options, Echo, [](std::string_view, std::string_view) -> size_t { return 1 << 20; });
  RawConnection first(server.port());
  ASSERT_TRUE(first.Send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(100, 'a')));
  std::this_thread::sleep_for(200ms);  // the first body is now being received
  RawConnection second(server.port());
  ASSERT_TRUE(second.Send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"));
  std::string busy = second.ReadUntilClosed(5s);
  EXPECT_EQ(busy.rfind("HTTP/1.1 503 ", 0), 0u) << busy;
  EXPECT_NE(busy.find("Retry-After: 2"), std::string::npos) << busy;
  // Small bodies are not limited meanwhile.
  RawConnection small(server.port());
  ASSERT_TRUE(small.Send("POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
  EXPECT_NE(small.ReadResponses(1, 5s).find("POST /s?|abc"), std::string::npos);
  // Once the first body is complete its slot is free again.
  ASSERT_TRUE(first.Send(std::string(4900, 'a')));
  EXPECT_EQ(first.ReadResponses(1, 5s).rfind("HTTP/1.1 200 ", 0), 0u);
  RawConnection third(server.port());
  ASSERT_TRUE(third.Send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + std::string(2000, 'b')));
  EXPECT_EQ(third.ReadResponses(1, 5s).rfind("HTTP/1.1 200 ", 0), 0u);
}

}  // namespace
}  // namespace appban::net
