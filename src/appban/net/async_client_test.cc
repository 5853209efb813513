#include "appban/net/async_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>

#include "appban/net/net_test_support.h"

namespace appban::net {
namespace {

struct ConnectionCounter : ServerObserver {
  std::atomic<int> opened{0};
  void OnConnectionOpened() override { ++opened; }
};

// Answers every request with the peer address the server saw.
Handler EchoPeer() {
  return [](HttpRequest request, Responder respond) {
    HttpResponse response;
    response.content_type = "text/plain";
    response.body = request.remote_address;
    respond(std::move(response));
  };
}

std::shared_ptr<ClientTarget> TargetFor(const std::string& url) {
  auto target = std::make_shared<ClientTarget>();
  auto parsed = ParseUrl(url);
  EXPECT_TRUE(parsed.ok());
  target->url = *parsed;
  EXPECT_TRUE(target->Resolve().ok());
  return target;
}

// Sends `count` requests one after another on `connection`; collects (status, body) or errors.
void SendSequentially(AsyncConnection& connection, const std::string& host, int count, std::vector<std::string>& bodies,
                      std::vector<std::string>& errors) {
  if (count == 0) return;
  auto request = std::make_shared<const std::string>(SerializeRequest("GET", "/who", host, "", ""));
  // `host` by value: the caller's string may be a temporary that is gone when the answer comes.
  connection.Send(request, std::chrono::seconds(10),
                  [&connection, &bodies, &errors, host, count](Status status, ClientResponse response) {
                    if (!status.ok()) {
                      errors.push_back(status.ToString());
                    } else {
                      EXPECT_EQ(response.status, 200);
                      bodies.push_back(response.body);
                    }
                    SendSequentially(connection, host, count - 1, bodies, errors);
                  });
}

// Sends `count` requests one after another on one connection to a server run with `options`;
// every request must succeed, and client and server must both have counted `connections`.
void ExpectSequentialRequests(const ServerOptions& options, int count, size_t connections) {
  ConnectionCounter counter;
  net::testing::ServerThread server(options, EchoPeer(), nullptr, &counter);
  auto target = TargetFor(server.url());
  boost::asio::io_context io;
  auto connection = MakeConnection(io, target, "");
  std::vector<std::string> bodies, errors;
  SendSequentially(*connection, "127.0.0.1", count, bodies, errors);
  io.run();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(bodies.size(), static_cast<size_t>(count));
  EXPECT_EQ(connection->connections_opened(), connections);
  EXPECT_EQ(counter.opened.load(), static_cast<int>(connections));
}

TEST(AsyncClient, KeepAliveCarriesSequentialRequestsOnOneConnection) { ExpectSequentialRequests({}, 5, 1); }

TEST(AsyncClient, BindsTheChosenSourceAddress) {
  net::testing::ServerThread server({}, EchoPeer());
  auto target = TargetFor(server.url());
  boost::asio::io_context io;
  std::vector<std::shared_ptr<AsyncConnection>> connections;
  std::vector<std::string> bodies, errors;
  auto sources = ParseSourceAddresses("127.0.0.7,127.0.0.20-127.0.0.21");
  ASSERT_TRUE(sources.ok());
  ASSERT_EQ(*sources, (std::vector<std::string>{"127.0.0.7", "127.0.0.20", "127.0.0.21"}));
  for (const std::string& source : *sources) {
    connections.push_back(MakeConnection(io, target, source));
    SendSequentially(*connections.back(), "127.0.0.1", 1, bodies, errors);
  }
  io.run();
  EXPECT_TRUE(errors.empty());
  std::vector<std::string> expected = *sources;
  std::sort(bodies.begin(), bodies.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(bodies, expected);  // the server saw each connection come from its bound address
}

TEST(AsyncClient, ReconnectsWhenTheServerClosesAfterEachResponse) {
  ServerOptions options;
  options.max_requests_per_connection = 1;  // every response says Connection: close
  ExpectSequentialRequests(options, 3, 3);
}

TEST(AsyncClient, RefusedConnectionIsReportedAsAConnectFailure) {
  uint16_t port = 0;
  {
    // Find a port nobody listens on: bind one, note it, release it.
    boost::asio::io_context scratch;
    boost::asio::ip::tcp::acceptor acceptor(scratch, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
  }
  auto target = TargetFor("http://127.0.0.1:" + std::to_string(port));
  boost::asio::io_context io;
  auto connection = MakeConnection(io, target, "");
  std::vector<std::string> bodies, errors;
  Status failure;
  connection->Send(std::make_shared<const std::string>(SerializeRequest("GET", "/", "x", "", "")),
                   std::chrono::seconds(5), [&](Status status, ClientResponse) { failure = status; });
  io.run();
  ASSERT_FALSE(failure.ok());
  EXPECT_EQ(FailureKind(failure), "connect");
}

TEST(AsyncClient, SourceAddressListsAreCheckedStrictly) {
  EXPECT_FALSE(ParseSourceAddresses("127.0.0.20-127.0.0.2").ok());
  EXPECT_FALSE(ParseSourceAddresses("127.0.0.300").ok());
  EXPECT_FALSE(ParseSourceAddresses("10.0.0.0-10.255.255.255").ok());
  auto range = ParseSourceAddresses("127.0.0.2-127.0.0.20");
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->size(), 19u);
}

TEST(AsyncClient, SerializedRequestsCarryTheCredentialAndLength) {
  std::string text = SerializeRequest("POST", "/v1/checkin", "127.0.0.1", "d-1.secret", "{}");
  EXPECT_EQ(text,
            "POST /v1/checkin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer d-1.secret\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
}

// RFC 9112 §3.2 / RFC 3986 §3.2.2: an IPv6 literal in Host is bracketed, or a server reads the
// address's last group as the port.
TEST(AsyncClient, HostHeaderBracketsAnIpv6Address) {
  auto v6 = ParseUrl("https://[::1]:8443");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(HostHeader(*v6), "[::1]:8443");
  EXPECT_NE(SerializeRequest("GET", "/healthz", HostHeader(*v6), "", "").find("\r\nHost: [::1]:8443\r\n"),
            std::string::npos);
  auto name = ParseUrl("https://appban.example.gov");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(HostHeader(*name), "appban.example.gov:443");
}

}  // namespace
}  // namespace appban::net
