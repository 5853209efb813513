#include "appban/server/console_session.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "appban/server/console.h"
#include "appban/server/console_assets.h"

namespace appban::server {
namespace {

namespace fs = std::filesystem;
constexpr UnixSeconds kNow = 1'800'000'000;
const std::string kKey(kSessionKeyBytes, 'k');

SessionClaims Claims() {
  SessionClaims claims;
  claims.user_id = "u-0123456789abcdef";
  claims.method = "api-token";
  claims.token_id = "t-0123456789abcdef";
  claims.issued_at = kNow;
  claims.idle_until = kNow + 1800;
  claims.expires_at = kNow + 8 * 3600;
  auto session = NewSession(claims);
  EXPECT_TRUE(session.ok());
  return *session;
}

TEST(ConsoleSession, RoundTripsAndKeysItsCsrfTokenToTheSession) {
  SessionClaims claims = Claims();
  auto decoded = DecodeSession(EncodeSession(claims, kKey), kKey, kNow + 10);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->user_id, claims.user_id);
  EXPECT_EQ(decoded->token_id, claims.token_id);
  EXPECT_EQ(decoded->expires_at, claims.expires_at);
  EXPECT_EQ(CsrfTokenFor(*decoded, kKey), CsrfTokenFor(claims, kKey));
  EXPECT_NE(CsrfTokenFor(claims, kKey), CsrfTokenFor(Claims(), kKey)) << "two sessions share a CSRF token";
}

TEST(ConsoleSession, ACardSessionCarriesItsCertificateAndNeedsOne) {
  SessionClaims claims = Claims();
  claims.method = "client-certificate";
  claims.token_id.clear();
  claims.certificate = std::string(64, 'a');
  auto decoded = DecodeSession(EncodeSession(claims, kKey), kKey, kNow + 10);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->method, "client-certificate");
  EXPECT_EQ(decoded->certificate, claims.certificate);
  // Without the certificate to compare each request with, it is no session.
  claims.certificate.clear();
  EXPECT_EQ(DecodeSession(EncodeSession(claims, kKey), kKey, kNow).status().code(), StatusCode::kInvalidArgument);
  // Nor does another kind of session carry one.
  SessionClaims token = Claims();
  token.certificate = std::string(64, 'b');
  EXPECT_EQ(DecodeSession(EncodeSession(token, kKey), kKey, kNow).status().code(), StatusCode::kInvalidArgument);
}

TEST(ConsoleSession, RefusesAnotherKeyAndAnyChangedByte) {
  SessionClaims claims = Claims();
  std::string value = EncodeSession(claims, kKey);
  EXPECT_EQ(DecodeSession(value, std::string(kSessionKeyBytes, 'x'), kNow).status().code(),
            StatusCode::kInvalidArgument);
  for (size_t i = 3; i < value.size(); i += 7) {
    std::string changed = value;
    changed[i] = changed[i] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(DecodeSession(changed, kKey, kNow).ok()) << "byte " << i;
  }
  // The claims of another user, signed with another key, do not pass.
  SessionClaims forged = claims;
  forged.user_id = "u-bootstrap-admin";
  EXPECT_FALSE(DecodeSession(EncodeSession(forged, "another key"), kKey, kNow).ok());
  EXPECT_FALSE(DecodeSession(std::string(kMaxSessionCookieBytes + 1, 'a'), kKey, kNow).ok());
  EXPECT_FALSE(DecodeSession("s1.", kKey, kNow).ok());
  EXPECT_FALSE(DecodeSession("", kKey, kNow).ok());
}

TEST(ConsoleSession, EndsAfterItsIdleAndAbsoluteLimits) {
  SessionClaims claims = Claims();
  std::string value = EncodeSession(claims, kKey);
  EXPECT_TRUE(DecodeSession(value, kKey, kNow + 1799).ok());
  auto idle = DecodeSession(value, kKey, kNow + 1800);
  EXPECT_EQ(idle.status().code(), StatusCode::kExpired);
  EXPECT_NE(idle.status().message().find("inactivity"), std::string::npos) << idle.status().message();
  claims.idle_until = kNow + 9 * 3600;  // kept alive, but past the absolute limit
  auto absolute = DecodeSession(EncodeSession(claims, kKey), kKey, kNow + 8 * 3600);
  EXPECT_EQ(absolute.status().code(), StatusCode::kExpired);
  EXPECT_NE(absolute.status().message().find("maximum lifetime"), std::string::npos) << absolute.status().message();
}

TEST(ConsoleSession, CookieIsHttpOnlySecureStrictAndLivesUntilTheEarlierLimit) {
  SessionClaims claims = Claims();
  std::string cookie = SessionCookie("v", claims, kNow + 100);
  EXPECT_EQ(cookie, "appban_session=v; Max-Age=1700; Path=/; Secure; HttpOnly; SameSite=Strict");
  EXPECT_EQ(ClearedSessionCookie(), "appban_session=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Strict");
}

TEST(ConsoleSession, FindsItsCookieAmongOthersAndBoundsIt) {
  net::HttpRequest request;
  request.headers = {{"cookie", "theme=dark; appban_session=s1.abc.def ; other=1"}};
  EXPECT_EQ(SessionCookieValue(request), "s1.abc.def");
  request.headers = {{"cookie", "appban_sessionx=1; xappban_session=2"}};
  EXPECT_EQ(SessionCookieValue(request), std::nullopt);
  request.headers = {{"cookie", "appban_session=" + std::string(kMaxSessionCookieBytes + 1, 'a')}};
  EXPECT_EQ(SessionCookieValue(request), std::nullopt);
  request.headers = {{"host", "console.example:8443"}};
  EXPECT_EQ(ExpectedOrigin(request, true), "https://console.example:8443");
  EXPECT_EQ(ExpectedOrigin(request, false), "http://console.example:8443");
}

class SessionKeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "appban-session-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(SessionKeyFile, IsCreatedPrivateOnceAndReadAfterwards) {
  auto first = LoadOrCreateSessionKey(dir_);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->size(), kSessionKeyBytes);
  struct stat info {};
  ASSERT_EQ(stat((dir_ + "/console-session.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  auto second = LoadOrCreateSessionKey(dir_);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second) << "a second worker must sign with the same key";
}

TEST_F(SessionKeyFile, RefusesAKeyOthersCanReadOrOfTheWrongSize) {
  ASSERT_TRUE(LoadOrCreateSessionKey(dir_).ok());
  const std::string path = dir_ + "/console-session.key";
  fs::permissions(path, fs::perms::others_read, fs::perm_options::add);
  auto readable = LoadOrCreateSessionKey(dir_);
  EXPECT_FALSE(readable.ok());
  EXPECT_NE(readable.status().message().find("chmod 600"), std::string::npos) << readable.status().message();
  { std::ofstream(path, std::ios::trunc) << "abcd\n"; }
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  EXPECT_FALSE(LoadOrCreateSessionKey(dir_).ok());
}

// ---- The console's files

std::string HeaderOf(const net::HttpResponse& response, std::string_view name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

TEST(ConsoleFiles, AreEmbeddedWithContentTypesAndServedWithTheSecurityHeaders) {
  ASSERT_FALSE(ConsoleAssets().empty());
  net::HttpRequest request;
  request.method = "GET";
  request.path = "/";
  net::HttpResponse index = ServeConsole(request);
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_NE(index.body.find("<script type=\"module\" src=\"/app.js\">"), std::string::npos);
  EXPECT_EQ(HeaderOf(index, "Content-Security-Policy"), kConsoleContentSecurityPolicy);
  EXPECT_EQ(HeaderOf(index, "X-Frame-Options"), "DENY");
  EXPECT_EQ(HeaderOf(index, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(HeaderOf(index, "Referrer-Policy"), "no-referrer");
  request.path = "/app.js";
  net::HttpResponse script = ServeConsole(request);
  EXPECT_EQ(script.content_type, "text/javascript; charset=utf-8");
  EXPECT_FALSE(HeaderOf(script, "ETag").empty());
  // The console builds its pages with textContent: no innerHTML, no eval, no inline handlers.
  for (const ConsoleAsset& asset : ConsoleAssets()) {
    EXPECT_EQ(asset.bytes.find("innerHTML"), std::string_view::npos) << asset.path;
    EXPECT_EQ(asset.bytes.find("eval("), std::string_view::npos) << asset.path;
    EXPECT_EQ(asset.bytes.find("onclick="), std::string_view::npos) << asset.path;
  }
}

TEST(ConsoleFiles, AnswerNotModifiedForTheirEtagAndRefuseOtherMethods) {
  net::HttpRequest request;
  request.method = "GET";
  request.path = "/style.css";
  std::string etag = HeaderOf(ServeConsole(request), "ETag");
  ASSERT_EQ(etag.size(), 66u) << etag;  // a quoted SHA-256
  request.headers = {{"if-none-match", "\"other\", " + etag}};
  net::HttpResponse cached = ServeConsole(request);
  EXPECT_EQ(cached.status, 304);
  EXPECT_TRUE(cached.body.empty());
  EXPECT_EQ(HeaderOf(cached, "X-Frame-Options"), "DENY");
  request.headers.clear();
  request.method = "POST";
  EXPECT_EQ(ServeConsole(request).status, 405);
  request.method = "GET";
  request.path = "/../etc/passwd";
  EXPECT_FALSE(IsConsolePath(request.path));
  EXPECT_EQ(ServeConsole(request).status, 404);
}

TEST(ConsoleSignInFlow, RoundTripsAndDerivesDistinctSecretsBoundToTheFlow) {
  auto flow = NewSignInFlow("keycloak", kNow);
  ASSERT_TRUE(flow.ok());
  EXPECT_EQ(flow->expires_at, kNow + kSignInFlowSeconds);
  std::string value = EncodeSignInFlow(*flow, kKey);
  auto decoded = DecodeSignInFlow(value, kKey, kNow + 5);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->provider, "keycloak");
  EXPECT_EQ(SignInFlowState(*decoded, kKey), SignInFlowState(*flow, kKey));
  // state, nonce and the PKCE verifier differ from each other, from another flow's, and none is
  // in the cookie.
  std::string state = SignInFlowState(*flow, kKey);
  std::string nonce = SignInFlowNonce(*flow, kKey);
  std::string verifier = SignInFlowCodeVerifier(*flow, kKey);
  EXPECT_NE(state, nonce);
  EXPECT_NE(nonce, verifier);
  EXPECT_GE(verifier.size(), 43u);
  EXPECT_LE(verifier.size(), 128u);
  auto other = NewSignInFlow("keycloak", kNow);
  EXPECT_NE(SignInFlowState(*other, kKey), state);
  for (const std::string& secret : {state, nonce, verifier}) EXPECT_EQ(value.find(secret), std::string::npos);
}

TEST(ConsoleSignInFlow, RefusesTamperingAnotherKeyASessionCookieAndAnExpiredFlow) {
  auto flow = NewSignInFlow("keycloak", kNow);
  std::string value = EncodeSignInFlow(*flow, kKey);
  std::string tampered = value;
  tampered[5] = tampered[5] == 'a' ? 'b' : 'a';
  EXPECT_EQ(DecodeSignInFlow(tampered, kKey, kNow).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeSignInFlow(value, std::string(kSessionKeyBytes, 'x'), kNow).status().code(),
            StatusCode::kInvalidArgument);
  // A session cookie is not a sign-in cookie, even though the same key signs both.
  EXPECT_FALSE(DecodeSignInFlow(EncodeSession(Claims(), kKey), kKey, kNow).ok());
  EXPECT_FALSE(DecodeSession(value, kKey, kNow).ok());
  auto late = DecodeSignInFlow(value, kKey, kNow + kSignInFlowSeconds);
  EXPECT_EQ(late.status().code(), StatusCode::kExpired);
  EXPECT_NE(late.status().message().find("sign in again"), std::string::npos);
  EXPECT_FALSE(DecodeSignInFlow(std::string(5000, 'f'), kKey, kNow).ok());
}

TEST(ConsoleSignInFlow, CookieIsLaxHttpOnlySecureAndLimitedToTheCallback) {
  std::string cookie = SignInFlowCookie("f1.x.y");
  EXPECT_EQ(cookie.rfind("appban_sign_in=f1.x.y;", 0), 0u) << cookie;
  for (const char* attribute :
       {"; HttpOnly", "; Secure", "; SameSite=Lax", "; Path=/console/callback", "; Max-Age=600"})
    EXPECT_NE(cookie.find(attribute), std::string::npos) << attribute;
  EXPECT_NE(ClearedSignInFlowCookie().find("Max-Age=0"), std::string::npos);
  net::HttpRequest request;
  request.headers.emplace_back("cookie", "appban_session=s1.a.b; appban_sign_in=f1.c.d");
  EXPECT_EQ(CookieValue(request, kSignInFlowCookieName), "f1.c.d");
  EXPECT_EQ(SessionCookieValue(request), "s1.a.b");
}

}  // namespace
}  // namespace appban::server
