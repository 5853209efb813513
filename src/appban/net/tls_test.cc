#include "appban/net/tls.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <boost/asio/ssl/context.hpp>
#include <cstdio>
#include <filesystem>

#include "appban/net/client.h"
#include "appban/net/net_test_support.h"

namespace appban::net {
namespace {

using namespace std::chrono_literals;
using testing::RawConnection;
using testing::ServerThread;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "appban_tls_XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string RunCommand(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return output;
  std::array<char, 512> chunk;
  while (fgets(chunk.data(), chunk.size(), pipe)) output += chunk.data();
  pclose(pipe);
  return output;
}

struct Pki {
  CertificateAndKey ca;
  CertificateAndKey server;
};

Pki MakePki(const std::vector<std::string>& names = {"127.0.0.1", "localhost"}) {
  Result<CertificateAndKey> ca = GenerateSelfSignedCa("appban test CA", 30);
  EXPECT_TRUE(ca.ok()) << ca.status().ToString();
  Result<CertificateAndKey> server = IssueServerCertificate(*ca, names, 30);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return {*ca, *server};
}

ServerOptions TlsOptions(const Pki& pki) {
  ServerOptions options;
  Result<std::shared_ptr<boost::asio::ssl::context>> context =
      MakeServerContext(pki.server.certificate_pem, pki.server.private_key_pem);
  EXPECT_TRUE(context.ok()) << context.status().ToString();
  options.tls = *context;
  return options;
}

void Echo(HttpRequest request, Responder respond) {
  HttpResponse response;
  response.body = request.method + " " + request.path + "|" + request.body;
  respond(std::move(response));
}

TEST(Tls, ClientPinnedToTheRightCaTalksToTheServer) {
  Pki pki = MakePki();
  ServerThread server(TlsOptions(pki), Echo);
  ClientOptions options;
  options.pinned_ca_pem = pki.ca.certificate_pem;
  HttpClient client(*ParseUrl("https://127.0.0.1:" + std::to_string(server.port())), options);
  for (int i = 0; i < 3; ++i) {
    Result<HttpResponse> response = client.Request("POST", "/v1/checkin", "{}");
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->body, "POST /v1/checkin|{}");
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  // Bodies around and far above one TLS record (16 KiB).
  for (size_t size : {16'000u, 16'400u, 17'000u, 200'000u}) {
    std::string big(size, 'z');
    Result<HttpResponse> response = client.Request("POST", "/big", big);
    ASSERT_TRUE(response.ok()) << size << ": " << response.status().ToString();
    EXPECT_EQ(response->body, "POST /big|" + big);
  }
}

TEST(Tls, ClientPinnedToAnotherCaFailsVerification) {
  Pki pki = MakePki();
  Pki other = MakePki();
  ServerThread server(TlsOptions(pki), Echo);
  ClientOptions options;
  options.pinned_ca_pem = other.ca.certificate_pem;
  HttpClient client(*ParseUrl("https://127.0.0.1:" + std::to_string(server.port())), options);
  Result<HttpResponse> response = client.Request("GET", "/");
  ASSERT_FALSE(response.ok());
  EXPECT_NE(response.status().message().find("TLS verification failed"), std::string::npos)
      << response.status().ToString();
}

TEST(Tls, ClientRefusesACertificateForAnotherAddress) {
  Pki pki = MakePki({"10.9.8.7", "appban.example.gov"});
  ServerThread server(TlsOptions(pki), Echo);
  ClientOptions options;
  options.pinned_ca_pem = pki.ca.certificate_pem;
  HttpClient client(*ParseUrl("https://127.0.0.1:" + std::to_string(server.port())), options);
  Result<HttpResponse> response = client.Request("GET", "/");
  ASSERT_FALSE(response.ok());
  EXPECT_NE(response.status().message().find("TLS verification failed"), std::string::npos)
      << response.status().ToString();
}

TEST(Tls, PlainHttpToATlsServerIsClosedAndServerSurvives) {
  Pki pki = MakePki();
  ServerOptions server_options = TlsOptions(pki);
  server_options.tls_handshake_timeout = 300ms;
  ServerThread server(server_options, Echo);
  {
    RawConnection plain(server.port());
    ASSERT_TRUE(plain.Send("GET / HTTP/1.1\r\n\r\n"));
    plain.ReadUntilClosed(5s);
    EXPECT_TRUE(plain.closed());
  }
  {
    RawConnection silent(server.port());  // never starts the handshake
    silent.ReadUntilClosed(5s);
    EXPECT_TRUE(silent.closed());
  }
  ClientOptions options;
  options.pinned_ca_pem = pki.ca.certificate_pem;
  HttpClient client(*ParseUrl("https://127.0.0.1:" + std::to_string(server.port())), options);
  EXPECT_TRUE(client.Request("GET", "/").ok());
}

TEST(Tls, FingerprintMatchesOpensslCli) {
  Pki pki = MakePki();
  TempDir dir;
  ASSERT_TRUE(WriteCertificateAndKey(pki.ca, dir.File("ca.pem"), dir.File("ca.key")).ok());
  std::string openssl = RunCommand("openssl x509 -noout -fingerprint -sha256 -in " + dir.File("ca.pem"));
  ASSERT_FALSE(openssl.empty()) << "openssl CLI missing";
  // "sha256 Fingerprint=AB:CD:...\n" (the prefix's case differs between OpenSSL versions).
  std::string expected = openssl.substr(openssl.find('=') + 1);
  while (!expected.empty() && (expected.back() == '\n' || expected.back() == '\r')) expected.pop_back();
  Result<std::string> fingerprint = CertificateSha256Fingerprint(pki.ca.certificate_pem);
  ASSERT_TRUE(fingerprint.ok());
  EXPECT_EQ(*fingerprint, expected);
  Result<std::string> hex = CertificateSha256Hex(pki.ca.certificate_pem);
  ASSERT_TRUE(hex.ok());
  std::string lowered;
  for (char c : expected) {
    if (c != ':') lowered.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  EXPECT_EQ(*hex, lowered);
}

TEST(Tls, FilesRoundTripWithPrivateKeyMode0600) {
  Pki pki = MakePki();
  TempDir dir;
  ASSERT_TRUE(WriteCertificateAndKey(pki.server, dir.File("server.pem"), dir.File("server.key")).ok());
  struct stat key_stat {};
  ASSERT_EQ(stat(dir.File("server.key").c_str(), &key_stat), 0);
  EXPECT_EQ(key_stat.st_mode & 0777, 0600u);
  Result<CertificateAndKey> read = ReadCertificateAndKey(dir.File("server.pem"), dir.File("server.key"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->certificate_pem, pki.server.certificate_pem);
  // A key that is not the certificate's is refused.
  ASSERT_TRUE(WriteCertificateAndKey({pki.server.certificate_pem, pki.ca.private_key_pem}, dir.File("mixed.pem"),
                                     dir.File("mixed.key"))
                  .ok());
  EXPECT_FALSE(ReadCertificateAndKey(dir.File("mixed.pem"), dir.File("mixed.key")).ok());
}

TEST(Tls, OpensslCliVerifiesTheIssuedChainAndNames) {
  Pki pki = MakePki({"127.0.0.1", "appban.example.gov"});
  TempDir dir;
  ASSERT_TRUE(WriteCertificateAndKey(pki.ca, dir.File("ca.pem"), dir.File("ca.key")).ok());
  ASSERT_TRUE(WriteCertificateAndKey(pki.server, dir.File("server.pem"), dir.File("server.key")).ok());
  std::string verify = RunCommand("openssl verify -purpose sslserver -CAfile " + dir.File("ca.pem") + " " +
                                  dir.File("server.pem") + " 2>&1");
  EXPECT_NE(verify.find(": OK"), std::string::npos) << verify;
  std::string text = RunCommand("openssl x509 -noout -ext subjectAltName -in " + dir.File("server.pem") + " 2>&1");
  EXPECT_NE(text.find("IP Address:127.0.0.1"), std::string::npos) << text;
  EXPECT_NE(text.find("DNS:appban.example.gov"), std::string::npos) << text;
}

TEST(Tls, BadInputsAreErrors) {
  EXPECT_FALSE(CertificateSha256Fingerprint("not a pem").ok());
  EXPECT_FALSE(MakeServerContext("junk", "junk").ok());
  EXPECT_FALSE(MakeClientContext("").ok());
  EXPECT_FALSE(GenerateSelfSignedCa("x", 0).ok());
  Pki pki = MakePki();
  EXPECT_FALSE(IssueServerCertificate(pki.ca, {}, 30).ok());
  EXPECT_FALSE(IssueServerCertificate(pki.ca, {"bad name,with:comma"}, 30).ok());
  EXPECT_FALSE(IssueServerCertificate({pki.ca.certificate_pem, pki.server.private_key_pem}, {"x"}, 30).ok());
  EXPECT_FALSE(MakeServerContext(pki.server.certificate_pem, pki.ca.private_key_pem).ok());
}

}  // namespace
}  // namespace appban::net
