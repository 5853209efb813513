// The parts of `appban login` that read what others send: the device authorization and token
// answers (RFC 8628 §3.2, §3.5), and the credentials file. The whole grant against a real provider
// is tests/cli_login_test.cc.
#include "appban/cli/server_login.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "appban/cli/cli_test_support.h"

namespace appban::cli {
namespace {

TEST(DeviceAuthorizationAnswer, ReadsTheFieldsAndDefaultsTheIntervalToFiveSeconds) {
  auto answer = ParseDeviceAuthorization(
      200, R"({"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://idp/device",
              "verification_uri_complete":"https://idp/device?user_code=WDJB-MJHT","expires_in":600})");
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->user_code, "WDJB-MJHT");
  EXPECT_EQ(answer->verification_uri_complete, "https://idp/device?user_code=WDJB-MJHT");
  EXPECT_EQ(answer->expires_in, 600);
  EXPECT_EQ(answer->interval, 5);
}

TEST(DeviceAuthorizationAnswer, MalformedOrRefusedAnswersAreNamedErrors) {
  auto missing = ParseDeviceAuthorization(200, R"({"device_code":"dc","verification_uri":"u","expires_in":1})");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("\"user_code\" is missing"), std::string::npos);
  auto typed = ParseDeviceAuthorization(
      200, R"({"device_code":"dc","user_code":"c","verification_uri":"u","expires_in":"soon"})");
  ASSERT_FALSE(typed.ok());
  EXPECT_NE(typed.status().message().find("expires_in"), std::string::npos);
  auto refused = ParseDeviceAuthorization(400, R"({"error":"invalid_client","error_description":"unknown"})");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("invalid_client"), std::string::npos);
  EXPECT_FALSE(ParseDeviceAuthorization(200, "not json").ok());
  EXPECT_FALSE(ParseDeviceAuthorization(200, std::string(kLoginLimits.max_answer_bytes + 1, ' ')).ok());
  std::string deep(100, '[');
  EXPECT_FALSE(ParseDeviceAuthorization(200, deep).ok());
}

TEST(TokenAnswer, EachPollingErrorOfRfc8628IsItsOwnKind) {
  using Kind = TokenAnswer::Kind;
  const std::pair<const char*, Kind> cases[] = {{"authorization_pending", Kind::kPending},
                                                {"slow_down", Kind::kSlowDown},
                                                {"expired_token", Kind::kExpired},
                                                {"access_denied", Kind::kDenied}};
  for (const auto& [error, kind] : cases) {
    auto answer = ParseTokenAnswer(400, std::string(R"({"error":")") + error + "\"}");
    ASSERT_TRUE(answer.ok()) << error;
    EXPECT_EQ(answer->kind, kind) << error;
  }
  auto other = ParseTokenAnswer(400, R"({"error":"invalid_grant","error_description":"grant request is invalid"})");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("invalid_grant: grant request is invalid"), std::string::npos);
  auto tokens = ParseTokenAnswer(200, R"({"id_token":"a.b.c","refresh_token":"r","access_token":"x"})");
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(tokens->kind, Kind::kTokens);
  EXPECT_EQ(tokens->id_token, "a.b.c");
  EXPECT_EQ(tokens->refresh_token, "r");
  auto no_id = ParseTokenAnswer(200, R"({"access_token":"x"})");
  ASSERT_FALSE(no_id.ok());
  EXPECT_NE(no_id.status().message().find("openid"), std::string::npos);
}

class CredentialsFileTest : public CliTest {};

TEST_F(CredentialsFileTest, KeptPerServerInA0600FileAndRemovedOnLogout) {
  std::string path = Path("config/appban/credentials.json");
  SavedLogin first{
      "https://a.example:8443", "PEM", "kc", "https://idp", "appban", "https://idp/token", "t1", "", 10, "", ""};
  SavedLogin second{
      "https://b.example:8443", "", "kc", "https://idp", "appban", "https://idp/token", "t2", "r2", 20, "", ""};
  ASSERT_TRUE(SaveLogin(path, first).ok());
  ASSERT_TRUE(SaveLogin(path, second).ok());
  struct stat info {};
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  auto latest = LoadLogin(path, "");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->id_token, "t2") << "the last server signed in to is the default";
  auto named = LoadLogin(path, "https://a.example:8443");
  ASSERT_TRUE(named.ok() && named->has_value());
  EXPECT_EQ((*named)->ca_pem, "PEM");
  EXPECT_EQ((*named)->expires_at, 10);

  auto removed = RemoveLogin(path, "");
  ASSERT_TRUE(removed.ok() && *removed);
  auto gone = LoadLogin(path, "");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value()) << "no default after logging out of it";
  EXPECT_TRUE(LoadLogin(path, "https://a.example:8443")->has_value());
  auto again = RemoveLogin(path, "https://b.example:8443");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(CredentialsFileTest, ACardSignInSavesWhereTheCertificateIsNotAToken) {
  std::string path = Path("credentials.json");
  SavedLogin card;
  card.server = "https://a.example:8443";
  card.provider = "client-certificate";
  card.cert_file = "/home/alice/alice.pem";
  card.key_file = "/home/alice/alice.key";
  ASSERT_TRUE(SaveLogin(path, card).ok());
  auto loaded = LoadLogin(path, "");
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->cert_file, "/home/alice/alice.pem");
  EXPECT_EQ((*loaded)->key_file, "/home/alice/alice.key");
  EXPECT_TRUE((*loaded)->id_token.empty());

  // An entry with neither a token nor a certificate is refused, naming the server.
  SavedLogin nothing;
  nothing.server = "https://b.example:8443";
  ASSERT_TRUE(SaveLogin(path, nothing).ok());
  auto refused = LoadLogin(path, "https://b.example:8443");
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("neither an ID token nor a certificate"), std::string::npos)
      << refused.status().ToString();
}

TEST_F(CredentialsFileTest, AnotherFileIsRefusedWithAClearMessage) {
  Write("credentials.json", R"({"token":"something else"})");
  auto loaded = LoadLogin(Path("credentials.json"), "");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("not an appban credentials file"), std::string::npos);
}

TEST_F(CredentialsFileTest, LogoutWithoutALoginSaysSo) {
  auto result = RunCli({"logout"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "not signed in\n");
}

}  // namespace
}  // namespace appban::cli
