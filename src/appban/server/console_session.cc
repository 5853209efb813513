#include "appban/server/console_session.h"

#include <fcntl.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "appban/common/bytes.h"
#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/common/json.h"

namespace appban::server {
namespace {

constexpr std::string_view kVersion = "s1.";
constexpr std::string_view kFlowVersion = "f1.";
constexpr std::string_view kKeyFile = "/console-session.key";
constexpr size_t kMaxClaimsBytes = 1024;  // the JSON claims inside a cookie
constexpr size_t kIdBytes = 16;

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &length);
  return HexLower(Bytes(out, length));
}

std::optional<std::string> FromHex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = nibble(hex[i]);
    int low = nibble(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return out;
}

Result<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return Status::Internal("RAND_bytes failed");
  }
  return HexLower(AsBytes(raw));
}

Result<std::string> ReadKey(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return Status::NotFound(path + ": " + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) return Status::InvalidArgument(path + ": not a regular file");
  if ((info.st_mode & 077) != 0) {
    return Status::InvalidArgument(path + ": group or others have access; it signs console sessions: chmod 600 it");
  }
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 4 * kSessionKeyBytes));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  auto key = FromHex(text);
  if (!key || key->size() != kSessionKeyBytes) {
    return Status::InvalidArgument(path + ": not " + std::to_string(kSessionKeyBytes) +
                                   " bytes in lowercase hex (delete it to make a new key: every console session ends)");
  }
  return *key;
}

}  // namespace

Result<std::string> LoadOrCreateSessionKey(const std::string& data_dir) {
  const std::string path = data_dir + std::string(kKeyFile);
  auto existing = ReadKey(path);
  if (existing.ok() || existing.status().code() != StatusCode::kNotFound) return existing;
  APPBAN_ASSIGN_OR_RETURN(std::string hex, RandomHex(kSessionKeyBytes));
  const std::string temporary = path + "." + std::to_string(getpid()) + ".tmp";
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(temporary, hex + "\n", 0600));
  // link() never replaces: when another worker linked its key first, both read that one.
  int linked = link(temporary.c_str(), path.c_str());
  int link_errno = errno;
  unlink(temporary.c_str());
  if (linked != 0 && link_errno != EEXIST) {
    return Status::Internal(path + ": cannot create: " + std::strerror(link_errno));
  }
  return ReadKey(path);
}

Result<SessionClaims> NewSession(SessionClaims claims) {
  APPBAN_ASSIGN_OR_RETURN(claims.id, RandomHex(kIdBytes));
  return claims;
}

namespace {

// "<prefix><hex of the JSON>.<HMAC-SHA256 of the hex>", and back: the signature is checked before
// the claims are parsed, so nothing unsigned reaches the parser. `what` names the value in errors.
std::string Sign(std::string_view prefix, const Json& json, std::string_view key) {
  std::string payload = HexLower(AsBytes(json.dump(-1, ' ', false, Json::error_handler_t::replace)));
  return std::string(prefix) + payload + "." + Hmac(key, payload);
}

Result<Json> OpenSigned(std::string_view prefix, std::string_view value, std::string_view key, std::string_view what) {
  auto invalid = [what](std::string_view why) {
    return Status::InvalidArgument("the " + std::string(what) + " cookie is not a " + std::string(what) +
                                   " of this server (" + std::string(why) + "); sign in again");
  };
  if (value.size() > kMaxSessionCookieBytes) return invalid("too long");
  if (!value.starts_with(prefix)) return invalid("unknown format");
  value.remove_prefix(prefix.size());
  size_t dot = value.find('.');
  if (dot == std::string_view::npos) return invalid("no signature");
  std::string_view payload = value.substr(0, dot);
  if (!ConstantTimeEquals(value.substr(dot + 1), Hmac(key, payload))) return invalid("bad signature");
  auto text = FromHex(payload);
  if (!text || text->size() > kMaxClaimsBytes) return invalid("malformed claims");
  auto json = ParseJsonBounded(*text, kMaxClaimsBytes, 2, what);
  if (!json.ok() || !json->is_object()) return invalid("malformed claims");
  return std::move(*json);
}

}  // namespace

std::string EncodeSession(const SessionClaims& claims, std::string_view key) {
  Json json{{"id", claims.id},           {"user", claims.user_id},      {"method", claims.method},
            {"token", claims.token_id},  {"provider", claims.provider}, {"iat", claims.issued_at},
            {"idle", claims.idle_until}, {"exp", claims.expires_at}};
  if (!claims.certificate.empty()) json["cert"] = claims.certificate;
  return Sign(kVersion, json, key);
}

Result<SessionClaims> DecodeSession(std::string_view value, std::string_view key, UnixSeconds now) {
  auto invalid = [](std::string_view why) {
    return Status::InvalidArgument("the session cookie is not a session of this server (" + std::string(why) +
                                   "); sign in again");
  };
  APPBAN_ASSIGN_OR_RETURN(Json json_value, OpenSigned(kVersion, value, key, "session"));
  const Json* json = &json_value;
  SessionClaims claims;
  claims.id = StringOr(*json, "id", "");
  claims.user_id = StringOr(*json, "user", "");
  claims.method = StringOr(*json, "method", "");
  claims.token_id = StringOr(*json, "token", "");
  claims.provider = StringOr(*json, "provider", "");
  claims.certificate = StringOr(*json, "cert", "");
  claims.issued_at = IntOr(*json, "iat", 0);
  claims.idle_until = IntOr(*json, "idle", 0);
  claims.expires_at = IntOr(*json, "exp", 0);
  if (claims.id.size() != 2 * kIdBytes || claims.user_id.empty() ||
      (claims.method != "api-token" && claims.method != "oidc" && claims.method != "client-certificate") ||
      (claims.method == "api-token") == claims.token_id.empty() ||
      (claims.method == "client-certificate") == claims.certificate.empty()) {
    return invalid("incomplete claims");
  }
  if (now >= claims.expires_at) {
    return Status::Expired("the console session reached its maximum lifetime (signed in at " +
                           FormatTimestamp(claims.issued_at) + "); sign in again");
  }
  if (now >= claims.idle_until) {
    return Status::Expired("the console session ended after inactivity (last active until " +
                           FormatTimestamp(claims.idle_until) + "); sign in again");
  }
  return claims;
}

std::string CsrfTokenFor(const SessionClaims& claims, std::string_view key) { return Hmac(key, "csrf:" + claims.id); }

std::string SessionCookie(const std::string& value, const SessionClaims& claims, UnixSeconds now) {
  UnixSeconds until = std::min(claims.idle_until, claims.expires_at);
  return std::string(kSessionCookieName) + "=" + value +
         "; Max-Age=" + std::to_string(std::max<UnixSeconds>(0, until - now)) +
         "; Path=/; Secure; HttpOnly; SameSite=Strict";
}

std::string ClearedSessionCookie() {
  return std::string(kSessionCookieName) + "=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Strict";
}

std::optional<std::string> SessionCookieValue(const net::HttpRequest& request) {
  return CookieValue(request, kSessionCookieName);
}

std::optional<std::string> CookieValue(const net::HttpRequest& request, std::string_view cookie_name) {
  for (const auto& [name, value] : request.headers) {
    if (name != "cookie") continue;
    if (value.size() > kMaxCookieHeaderBytes) return std::nullopt;
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t semicolon = rest.find(';');
      std::string_view pair = rest.substr(0, semicolon);
      rest = semicolon == std::string_view::npos ? std::string_view() : rest.substr(semicolon + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      size_t equals = pair.find('=');
      if (equals == std::string_view::npos || pair.substr(0, equals) != cookie_name) continue;
      std::string_view cookie = pair.substr(equals + 1);
      while (!cookie.empty() && cookie.back() == ' ') cookie.remove_suffix(1);
      if (cookie.empty() || cookie.size() > kMaxSessionCookieBytes) return std::nullopt;
      return std::string(cookie);
    }
  }
  return std::nullopt;
}

Result<SignInFlow> NewSignInFlow(std::string provider, UnixSeconds now) {
  SignInFlow flow;
  APPBAN_ASSIGN_OR_RETURN(flow.id, RandomHex(kIdBytes));
  flow.provider = std::move(provider);
  flow.expires_at = now + kSignInFlowSeconds;
  return flow;
}

std::string EncodeSignInFlow(const SignInFlow& flow, std::string_view key) {
  return Sign(kFlowVersion, Json{{"id", flow.id}, {"provider", flow.provider}, {"exp", flow.expires_at}}, key);
}

Result<SignInFlow> DecodeSignInFlow(std::string_view value, std::string_view key, UnixSeconds now) {
  APPBAN_ASSIGN_OR_RETURN(Json json, OpenSigned(kFlowVersion, value, key, "sign-in"));
  SignInFlow flow{StringOr(json, "id", ""), StringOr(json, "provider", ""), IntOr(json, "exp", 0)};
  if (flow.id.size() != 2 * kIdBytes || flow.provider.empty()) {
    return Status::InvalidArgument("the sign-in cookie is incomplete; sign in again");
  }
  if (now >= flow.expires_at) {
    return Status::Expired("the sign-in was started more than " + std::to_string(kSignInFlowSeconds / 60) +
                           " minutes ago; sign in again");
  }
  return flow;
}

std::string SignInFlowState(const SignInFlow& flow, std::string_view key) { return Hmac(key, "state:" + flow.id); }
std::string SignInFlowNonce(const SignInFlow& flow, std::string_view key) { return Hmac(key, "nonce:" + flow.id); }
std::string SignInFlowCodeVerifier(const SignInFlow& flow, std::string_view key) {
  return Hmac(key, "pkce:" + flow.id);
}

std::string SignInFlowCookie(const std::string& value) {
  return std::string(kSignInFlowCookieName) + "=" + value + "; Max-Age=" + std::to_string(kSignInFlowSeconds) +
         "; Path=" + std::string(kSignInCallbackPath) + "; Secure; HttpOnly; SameSite=Lax";
}

std::string ClearedSignInFlowCookie() {
  return std::string(kSignInFlowCookieName) + "=; Max-Age=0; Path=" + std::string(kSignInCallbackPath) +
         "; Secure; HttpOnly; SameSite=Lax";
}

std::string ExpectedOrigin(const net::HttpRequest& request, bool tls) {
  std::string_view host = request.Header("host");
  if (host.empty()) return "";
  return std::string(tls ? "https://" : "http://") + std::string(host);
}

}  // namespace appban::server
