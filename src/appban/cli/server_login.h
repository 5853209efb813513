// The command line as a client of an appban server's admin API: which server, how its TLS
// certificate is pinned, and which credential is sent — an ID token from `appban login` (the OAuth
// 2.0 device authorization grant, RFC 8628) kept in a credentials file, or an API token read from a
// file for automation. docs/identity.md ("The command line") is the manual.
//
// Every answer parsed here (the server's provider list, the provider's discovery document, device
// authorization and token answers, the credentials file) has a named size bound (kLoginLimits);
// malformed input is an error value naming what is wrong, never a crash.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/net/client.h"

namespace appban::cli {

struct LoginLimits {
  uint64_t max_answer_bytes = 64 * 1024;         // any answer from the server or the provider
  int max_json_depth = 16;                       // ... parsed as JSON
  uint64_t max_credentials_bytes = 1024 * 1024;  // the credentials file
  uint64_t max_token_file_bytes = 16 * 1024;     // --token-file (an API token or a JWT)
  uint64_t max_ca_bytes = 1024 * 1024;           // --ca
  size_t max_providers = 32;                     // GET /v1/auth/providers
  int64_t max_poll_interval_seconds = 300;       // a provider asking for slower polling than this is capped
  int64_t max_device_code_seconds = 3600;        // how long `appban login` waits at most
};
inline constexpr LoginLimits kLoginLimits;

// Where the CLI finds an appban server and which credential it sends. Every field may be empty.
struct ServerOptions {
  std::string server;       // --server URL; default $APPBAN_SERVER, else the saved login's server
  std::string ca_file;      // --ca FILE: the server's CA certificate (PEM) to pin
  std::string ca_sha256;    // --ca-sha256: refuse a CA file with another SHA-256 fingerprint
  std::string token_file;   // --token-file FILE; default $APPBAN_TOKEN_FILE: an API token (automation)
  std::string credentials;  // --credentials FILE; default $APPBAN_CREDENTIALS, else
                            // $XDG_CONFIG_HOME/appban/credentials.json (~/.config/… without it)
  // --client-cert FILE / --client-key FILE; default $APPBAN_CLIENT_CERT / $APPBAN_CLIENT_KEY: a person's client
  // certificate (PEM, the leaf then any intermediates) and its unencrypted PEM key, for a server
  // configured for client certificates ([identity.client_certificates]). Sent instead of a
  // sign-in or token; both or neither.
  std::string cert_file;
  std::string key_file;
};

// One server's sign-in, as kept in the credentials file (mode 0600), keyed by the server's URL.
struct SavedLogin {
  std::string server;  // "https://appban.example.gov:8443"
  std::string ca_pem;  // the pinned CA ("" for plain http on loopback)
  std::string provider;
  std::string issuer;
  std::string client_id;
  std::string token_endpoint;
  std::string id_token;
  std::string refresh_token;   // "" when the provider gave none
  UnixSeconds expires_at = 0;  // the ID token's exp
  // A sign-in with a client certificate (`appban login --client-cert`): where the certificate and key
  // are (absolute paths; the key is never copied), and no ID token.
  std::string cert_file;
  std::string key_file;
};

std::string CredentialsPath(const ServerOptions& options);
// The saved login for `server`, or for the last server signed in to when `server` is empty.
Result<std::optional<SavedLogin>> LoadLogin(const std::string& path, const std::string& server);
// Saves (replacing that server's entry) and makes it the default; the file is written 0600.
Status SaveLogin(const std::string& path, const SavedLogin& login);
// Removes the server's entry (the default one when `server` is empty); false when there was none.
Result<bool> RemoveLogin(const std::string& path, const std::string& server);

// RFC 8628 §3.2: the device authorization answer.
struct DeviceAuthorization {
  std::string device_code;
  std::string user_code;
  std::string verification_uri;
  std::string verification_uri_complete;  // optional
  int64_t expires_in = 0;
  int64_t interval = 5;  // §3.2: 5 seconds when absent
};
Result<DeviceAuthorization> ParseDeviceAuthorization(int http_status, std::string_view body);

// RFC 8628 §3.5 and RFC 6749 §5: what one poll of the token endpoint said.
struct TokenAnswer {
  enum class Kind { kTokens, kPending, kSlowDown, kExpired, kDenied };
  Kind kind = Kind::kPending;
  std::string id_token;
  std::string refresh_token;
  std::string error_description;
};
// Any other error ("invalid_client", "invalid_grant", …) is an error value naming it.
Result<TokenAnswer> ParseTokenAnswer(int http_status, std::string_view body);

// Sleeps between polls; injected so the polling rules can be followed without waiting in tests.
using Sleeper = std::function<void(std::chrono::seconds)>;

struct LoginRequest {
  ServerOptions server;
  std::string provider;  // --provider NAME; may be empty when the server trusts one provider
  Sleeper sleep;
};
// With --client-cert and --client-key, the sign-in is the certificate: it is checked with the server (GET
// /v1/admin/whoami, presenting it) and where it is saved, so later commands present it too.
// Otherwise, runs the whole sign-in: asks the server which providers it trusts (GET /v1/auth/providers),
// reads the provider's discovery document, asks for a device code, prints where to sign in on
// `out`, polls the token endpoint (honouring interval and slow_down), checks the token with the
// server (GET /v1/admin/whoami) and saves it. Returns what whoami said.
Result<Json> Login(const LoginRequest& request, std::ostream& out);

// An authenticated connection to one server's admin API, sending "X-Appban-Channel: cli" so the
// audit chain records the command line as the channel.
class AdminConnection {
 public:
  struct Reply {
    int status = 0;
    Json body;
  };
  // nullopt when no server is known (no --server, $APPBAN_SERVER or saved login). An expired saved
  // sign-in is refreshed with its refresh token when there is one, else it is an error saying to
  // run `appban login` again.
  static Result<std::optional<AdminConnection>> Open(const ServerOptions& options);
  // A 2xx answer's body; any other answer is an error value carrying the server's message.
  Result<Reply> Call(std::string_view method, const std::string& path, const Json* body = nullptr);
  const std::string& server() const { return server_; }

 private:
  AdminConnection(std::string server, net::HttpClient client, std::string credential)
      : server_(std::move(server)), client_(std::move(client)), credential_(std::move(credential)) {}
  std::string server_;
  net::HttpClient client_;
  std::string credential_;  // the bearer credential; "" when the client certificate is the sign-in
};

}  // namespace appban::cli
