#include "appban/server/bootstrap.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "appban/common/file.h"
#include "appban/net/tls.h"
#include "appban/store/fleet.h"

namespace appban::server {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "appban-bootstrap-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

unsigned ModeOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs a shell command (arguments are our own temp paths) and returns its standard output.
std::string RunCommand(const std::string& command, int* exit_code = nullptr) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return output;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  if (exit_code != nullptr) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

// Every file under `dir` with its contents, to prove a second start changes nothing.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find("appban.db") != std::string::npos) continue;  // SQLite rewrites its own pages
    if (entry.is_regular_file()) files[entry.path().string()] = ReadAll(entry.path().string());
  }
  return files;
}

ServerConfig ConfigIn(const TempDir& temp) {
  ServerConfig config;
  config.data_dir = temp.path() + "/data";  // does not exist yet
  config.listen.address = "127.0.0.1";
  config.listen.server_names = {"appban.test.example", "127.0.0.1", "::1"};
  return config;
}

const std::string kUrl = "https://appban.test.example:8443";

TEST(Bootstrap, FirstStartCreatesEverythingWithTheRightModes) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  ASSERT_TRUE(ValidateConfig(config).ok());
  auto result = Bootstrap(config, kUrl);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE(result->created_data_dir);
  EXPECT_TRUE(result->created_ca);
  EXPECT_TRUE(result->created_server_certificate);
  EXPECT_TRUE(result->created_policy_key);
  ASSERT_TRUE(result->admin_token.has_value());
  EXPECT_EQ(result->url, kUrl);

  const DataDirLayout layout(config.data_dir);
  EXPECT_EQ(result->ca_pem_path, layout.ca_certificate);
  EXPECT_EQ(result->certificate_path, layout.server_certificate);
  EXPECT_EQ(result->key_path, layout.server_key);
  EXPECT_EQ(ModeOf(config.data_dir), 0700u);
  EXPECT_EQ(ModeOf(layout.tls_dir), 0700u);
  EXPECT_EQ(ModeOf(layout.policy_key_dir), 0700u);
  EXPECT_EQ(ModeOf(layout.ca_key), 0600u);
  EXPECT_EQ(ModeOf(layout.server_key), 0600u);
  EXPECT_EQ(ModeOf(layout.policy_key_dir + "/" + result->policy_key_id + ".key"), 0600u);
  EXPECT_EQ(ModeOf(layout.ca_certificate) & 077, 044u);  // public: readable by all, writable by none

  // The token works as an admin credential...
  auto fleet = store::OpenSqliteFleetStore(config.DatabasePath());
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  auto token = (*fleet)->AuthenticateApiToken(*result->admin_token, std::time(nullptr));
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(token->role, store::Role::kAdmin);
  // ...and its secret is nowhere in the database files.
  auto presented = store::SplitPresented(*result->admin_token);
  ASSERT_TRUE(presented.ok());
  for (const auto& entry : fs::directory_iterator(config.data_dir)) {
    if (entry.path().filename().string().rfind("appban.db", 0) != 0) continue;
    EXPECT_EQ(ReadAll(entry.path().string()).find(presented->secret), std::string::npos) << entry.path();
  }
}

TEST(Bootstrap, SecondStartChangesNothingAndPrintsNoToken) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  auto first = Bootstrap(config, kUrl);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const auto before = Snapshot(config.data_dir);

  auto second = Bootstrap(config, kUrl);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->created_anything());
  EXPECT_FALSE(second->admin_token.has_value());
  EXPECT_EQ(second->ca_fingerprint, first->ca_fingerprint);
  EXPECT_EQ(second->policy_key_id, first->policy_key_id);
  EXPECT_EQ(Snapshot(config.data_dir), before);

  const std::string banner = FirstStartBanner(*second);
  EXPECT_NE(banner.find(kUrl), std::string::npos);
  EXPECT_NE(banner.find(first->ca_fingerprint), std::string::npos);
  EXPECT_EQ(banner.find("token"), std::string::npos) << banner;
  EXPECT_EQ(banner.find(*first->admin_token), std::string::npos);
}

TEST(Bootstrap, CaFingerprintIsWhatOpensslPrints) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  auto result = Bootstrap(config, kUrl);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  int code = -1;
  std::string output = RunCommand("openssl x509 -noout -fingerprint -sha256 -in '" + result->ca_pem_path + "'", &code);
  ASSERT_EQ(code, 0) << output;
  // "sha256 Fingerprint=AB:CD:…" (OpenSSL 3)
  const size_t equals = output.find('=');
  ASSERT_NE(equals, std::string::npos) << output;
  std::string expected = output.substr(equals + 1);
  while (!expected.empty() && (expected.back() == '\n' || expected.back() == '\r')) expected.pop_back();
  EXPECT_EQ(result->ca_fingerprint, expected);
}

TEST(Bootstrap, ServerCertificateVerifiesAgainstTheCaAndCarriesTheNames) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  auto result = Bootstrap(config, kUrl);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  int code = -1;
  std::string verify =
      RunCommand("openssl verify -CAfile '" + result->ca_pem_path + "' '" + result->certificate_path + "'", &code);
  EXPECT_EQ(code, 0) << verify;
  EXPECT_NE(verify.find(": OK"), std::string::npos) << verify;

  std::string sans =
      RunCommand("openssl x509 -noout -ext subjectAltName -in '" + result->certificate_path + "'", &code);
  ASSERT_EQ(code, 0) << sans;
  EXPECT_NE(sans.find("DNS:appban.test.example"), std::string::npos) << sans;
  EXPECT_NE(sans.find("IP Address:127.0.0.1"), std::string::npos) << sans;
  EXPECT_NE(sans.find("IP Address:0:0:0:0:0:0:0:1"), std::string::npos) << sans;  // ::1 as openssl prints it
}

TEST(Bootstrap, ARemovedServerCertificateIsReissuedByTheSameCa) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  auto first = Bootstrap(config, kUrl);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const std::string old_certificate = ReadAll(first->certificate_path);
  fs::remove(first->certificate_path);
  fs::remove(first->key_path);

  auto second = Bootstrap(config, kUrl);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->created_ca);
  EXPECT_TRUE(second->created_server_certificate);
  EXPECT_FALSE(second->admin_token.has_value());
  EXPECT_EQ(second->ca_fingerprint, first->ca_fingerprint);  // devices keep their pinned CA
  EXPECT_NE(ReadAll(second->certificate_path), old_certificate);
  int code = -1;
  std::string verify =
      RunCommand("openssl verify -CAfile '" + second->ca_pem_path + "' '" + second->certificate_path + "'", &code);
  EXPECT_EQ(code, 0) << verify;
}

// An administrator who adds a name later (--server-name, listen.server_names) gets a certificate
// that holds it, from the same CA, so enrolled devices keep working; an unchanged list re-issues nothing.
TEST(Bootstrap, ANameAddedLaterReissuesTheCertificateFromTheSameCa) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  auto first = Bootstrap(config, kUrl);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const std::string first_certificate = ReadAll(first->certificate_path);

  auto unchanged = Bootstrap(config, kUrl);
  ASSERT_TRUE(unchanged.ok()) << unchanged.status().ToString();
  EXPECT_FALSE(unchanged->created_server_certificate);
  EXPECT_EQ(ReadAll(unchanged->certificate_path), first_certificate);

  config.listen.server_names.push_back("appban.dept.example");
  auto widened = Bootstrap(config, kUrl);
  ASSERT_TRUE(widened.ok()) << widened.status().ToString();
  EXPECT_TRUE(widened->created_server_certificate);
  EXPECT_FALSE(widened->created_ca);
  EXPECT_EQ(widened->ca_fingerprint, first->ca_fingerprint);
  EXPECT_EQ(widened->certificate_names, config.listen.server_names);
  int code = -1;
  std::string sans =
      RunCommand("openssl x509 -noout -ext subjectAltName -in '" + widened->certificate_path + "'", &code);
  EXPECT_NE(sans.find("DNS:appban.dept.example"), std::string::npos) << sans;
  EXPECT_NE(sans.find("DNS:appban.test.example"), std::string::npos) << sans;
  std::string verify =
      RunCommand("openssl verify -CAfile '" + widened->ca_pem_path + "' '" + widened->certificate_path + "'", &code);
  EXPECT_EQ(code, 0) << verify;
  EXPECT_NE(FirstStartBanner(*widened).find("appban.dept.example"), std::string::npos) << FirstStartBanner(*widened);

  // With the CA key moved offline the server still starts on its certificate, and says what it lacks.
  const std::string kept = ReadAll(widened->certificate_path);
  fs::remove(widened->ca_pem_path.substr(0, widened->ca_pem_path.size() - 3) + "key");
  config.listen.server_names.push_back("later.dept.example");
  auto offline = Bootstrap(config, kUrl);
  ASSERT_TRUE(offline.ok()) << offline.status().ToString();
  EXPECT_FALSE(offline->created_server_certificate);
  EXPECT_EQ(ReadAll(offline->certificate_path), kept);
  ASSERT_EQ(offline->warnings.size(), 1u);
  EXPECT_NE(offline->warnings[0].find("does not cover later.dept.example"), std::string::npos) << offline->warnings[0];
}

TEST(Bootstrap, RefusesADataDirectoryOthersCanWrite) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  fs::create_directory(config.data_dir);
  ASSERT_EQ(::chmod(config.data_dir.c_str(), 0777), 0);
  auto result = Bootstrap(config, kUrl);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(result.status().message().find(config.data_dir), std::string::npos);
  EXPECT_NE(result.status().message().find("0777"), std::string::npos) << result.status().message();
  EXPECT_TRUE(fs::is_empty(config.data_dir));  // nothing was created in it

  ASSERT_EQ(::chmod(config.data_dir.c_str(), 0770), 0);  // group-writable is refused too
  EXPECT_EQ(Bootstrap(config, kUrl).status().code(), StatusCode::kPermissionDenied);
}

// Hardening: a data directory that exists with mode 0755 used to get a world-readable database.
TEST(Bootstrap, ReadableDataDirectoryIsWarnedAboutAndItsDatabaseIsStillPrivate) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  fs::create_directory(config.data_dir);
  ASSERT_EQ(::chmod(config.data_dir.c_str(), 0755), 0);
  mode_t saved = ::umask(0);
  auto result = Bootstrap(config, kUrl);
  ::umask(saved);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->warnings.size(), 1u);
  EXPECT_NE(result->warnings[0].find("0755"), std::string::npos) << result->warnings[0];
  EXPECT_NE(result->warnings[0].find("chmod 700"), std::string::npos) << result->warnings[0];
  EXPECT_EQ(FirstStartBanner(*result).rfind("WARNING: data directory", 0), 0u);
  for (const auto& entry : fs::recursive_directory_iterator(config.data_dir)) {
    // Certificates and public keys are public by nature; everything else is the owner's alone.
    const std::string extension = entry.path().extension().string();
    if (entry.is_regular_file() && extension != ".pem" && extension != ".pub") {
      EXPECT_EQ(ModeOf(entry.path().string()) & 077, 0u) << entry.path() << " is readable by others";
    }
  }
  EXPECT_EQ(ModeOf(config.data_dir + "/appban.db"), 0600u);
}

TEST(Bootstrap, RefusesAPrivateKeyOthersCanRead) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  auto first = Bootstrap(config, kUrl);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(::chmod(first->key_path.c_str(), 0644), 0);
  auto second = Bootstrap(config, kUrl);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(second.status().message().find(first->key_path), std::string::npos);
}

TEST(Bootstrap, ServerCertificateWithoutItsCaIsNotGuessedAbout) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  auto first = Bootstrap(config, kUrl);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  fs::remove(first->ca_pem_path);
  auto second = Bootstrap(config, kUrl);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
}

TEST(Bootstrap, ConfiguredCertificateIsUsedAndNothingIsGenerated) {
  TempDir temp;
  auto ca = net::GenerateSelfSignedCa("operator CA", 30);
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  auto server = net::IssueServerCertificate(*ca, {"appban.test.example"}, 30);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string cert = temp.path() + "/operator.pem";
  const std::string key = temp.path() + "/operator.key";
  ASSERT_TRUE(net::WriteCertificateAndKey(*server, cert, key).ok());

  ServerConfig config = ConfigIn(temp);
  config.listen.cert_file = cert;
  config.listen.key_file = key;
  auto result = Bootstrap(config, kUrl);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->certificate_path, cert);
  EXPECT_EQ(result->key_path, key);
  EXPECT_TRUE(result->ca_fingerprint.empty());
  EXPECT_FALSE(result->created_ca);
  EXPECT_FALSE(fs::exists(DataDirLayout(config.data_dir).tls_dir));
  EXPECT_TRUE(result->created_policy_key);

  // A key that does not belong to the certificate is reported before any worker starts.
  auto other = net::IssueServerCertificate(*ca, {"other.example"}, 30);
  ASSERT_TRUE(other.ok());
  const std::string wrong_key = temp.path() + "/wrong.key";
  ASSERT_TRUE(net::WriteCertificateAndKey(*other, temp.path() + "/wrong.pem", wrong_key).ok());
  config.listen.key_file = wrong_key;
  EXPECT_FALSE(Bootstrap(config, kUrl).ok());
}

TEST(Bootstrap, PlainHttpOnLoopbackCreatesNoTlsMaterial) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  config.listen.tls = false;
  config.listen.insecure_plain_http = true;
  ASSERT_TRUE(ValidateConfig(config).ok());
  auto result = Bootstrap(config, "http://127.0.0.1:8080");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_FALSE(fs::exists(DataDirLayout(config.data_dir).tls_dir));
  EXPECT_TRUE(result->certificate_path.empty());
  ASSERT_TRUE(result->admin_token.has_value());
  const std::string banner = FirstStartBanner(*result);
  EXPECT_NE(banner.find("appban agent enroll --server http://127.0.0.1:8080 --token"), std::string::npos) << banner;
  EXPECT_EQ(banner.find("--cacert"), std::string::npos) << banner;
}

TEST(Bootstrap, FirstStartBannerSaysHowToEnrol) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  auto result = Bootstrap(config, kUrl);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const std::string banner = FirstStartBanner(*result);
  EXPECT_NE(banner.find(kUrl), std::string::npos);
  EXPECT_NE(banner.find(result->ca_fingerprint), std::string::npos);
  EXPECT_NE(banner.find(*result->admin_token), std::string::npos);
  EXPECT_NE(banner.find("shown ONCE"), std::string::npos);
  EXPECT_NE(banner.find("curl --cacert " + result->ca_pem_path), std::string::npos) << banner;
  EXPECT_NE(banner.find(kUrl + "/v1/admin/enrollment-tokens"), std::string::npos) << banner;
  EXPECT_NE(banner.find("appban agent enroll --server " + kUrl + " --ca ca.pem --token"), std::string::npos) << banner;
}

TEST(Bootstrap, AFirstAdminTokenFileKeepsTheTokenOutOfTheBanner) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  config.first_admin_token_file = (fs::path(temp.path()) / "first-admin-token").string();
  auto result = Bootstrap(config, kUrl);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_TRUE(result->admin_token.has_value());
  auto written = ReadFileToString(config.first_admin_token_file, 4096);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(*written, *result->admin_token + "\n");
  struct stat info {};
  ASSERT_EQ(stat(config.first_admin_token_file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  const std::string banner = FirstStartBanner(*result);
  EXPECT_EQ(banner.find(*result->admin_token), std::string::npos) << "a service's output is kept in its journal";
  EXPECT_NE(banner.find("Admin API token: in " + config.first_admin_token_file + " (mode 0600"), std::string::npos)
      << banner;
  EXPECT_NE(banner.find("export APPBAN_ADMIN_TOKEN=\"$(cat " + config.first_admin_token_file + ")\""),
            std::string::npos)
      << banner;

  // A later start issues no token and leaves the file as it is.
  auto again = Bootstrap(config, kUrl);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->admin_token.has_value());
  written = ReadFileToString(config.first_admin_token_file, 4096);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(*written, *result->admin_token + "\n");
}

TEST(Bootstrap, AnUnwritableFirstAdminTokenFileStopsTheStartNamingTheWayOut) {
  TempDir temp;
  ServerConfig config = ConfigIn(temp);
  config.first_admin_token_file = (fs::path(temp.path()) / "no-such-dir" / "first-admin-token").string();
  auto result = Bootstrap(config, kUrl);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("first_admin_token_file"), std::string::npos) << result.status().ToString();
  EXPECT_NE(result.status().message().find("appban server recover-admin"), std::string::npos)
      << result.status().ToString();
}

}  // namespace
}  // namespace appban::server
