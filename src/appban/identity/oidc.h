// OpenID Connect token validation for the admin API: for each configured issuer, the provider's
// discovery document and JSON Web Key set are fetched and cached by a background thread, and
// bearer tokens are checked against them (signature, iss, aud/azp, exp, nbf, iat with clock skew).
//
// Why a thread: the server's request thread also serves the device protocol, and devices do not
// use OpenID Connect. Verify() never does I/O — it reads the cache — so a slow or unreachable
// provider cannot stall a device check-in. A token signed with a key the cache does not hold (key
// rollover at the provider) asks the thread for a refresh and is refused with a "retry" reason;
// refreshes are rate-limited per issuer (min_refresh_seconds), so a flood of tokens with made-up
// key ids causes at most one fetch per interval, and the cache holds at most kJwtLimits.max_jwks_keys
// keys per issuer. Keys are also refreshed every refresh_interval_seconds, so keys a provider
// publishes ahead of a rollover (as Entra ID and Keycloak do) are known before first use.
//
// Thread-safety: Verify, RequestRefresh and Status are safe from any thread; Start/Stop from the
// owner's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "appban/common/mutex.h"
#include "appban/common/status.h"
#include "appban/common/thread_annotations.h"
#include "appban/common/time.h"
#include "appban/identity/jwt.h"

namespace appban::identity {

// One `[[identity.oidc]]` table of the server configuration (docs/server-config.md).
struct OidcIssuerConfig {
  std::string name;           // short label shown in errors and the audit log ("entra", "keycloak")
  std::string issuer;         // the exact `iss` its tokens carry
  std::string discovery_url;  // default: issuer + "/.well-known/openid-configuration"
  std::string client_id;      // appban's client id there: the `aud` tokens must carry
  // For the CLI's sign-in (device authorization grant); the server never needs them to validate.
  std::string client_secret_file;
  std::string private_key_jwt_file;
  std::string ca_file;                // PEM CA for an https provider; empty: the system's CA store
  std::string roles_claim = "roles";  // claim holding role values (string or array); "" for none
  std::string admin_value = "appban-admin";
  std::string analyst_value = "appban-analyst";
  std::string auditor_value = "appban-auditor";
  std::string name_claim = "name";  // display name; falls back to preferred_username, email, sub
  int64_t clock_skew_seconds = 60;
  int64_t min_refresh_seconds = 30;        // at most one fetch per issuer per this many seconds
  int64_t refresh_interval_seconds = 600;  // keys refreshed at least this often
  int64_t fetch_timeout_ms = 5000;
};

// What a valid token says about its bearer.
struct VerifiedToken {
  std::string issuer_name;  // OidcIssuerConfig::name
  std::string issuer;
  std::string subject;
  std::string display_name;
  std::optional<std::string> role;  // "admin", "analyst", "auditor" from the roles claim (the strongest)
  std::string key_id;
  UnixSeconds expires_at = 0;
};

// Fetches a URL's body (GET); kUnavailable when it cannot. Injected so unit tests need no network.
using Fetcher = std::function<Result<std::string>(const OidcIssuerConfig& issuer, const std::string& url)>;
// The real one: HTTP(S) GET with the issuer's timeout and CA, bounded response size.
Fetcher HttpFetcher();

class OidcVerifier {
 public:
  OidcVerifier(std::vector<OidcIssuerConfig> issuers, Fetcher fetcher);
  ~OidcVerifier();
  OidcVerifier(const OidcVerifier&) = delete;
  OidcVerifier& operator=(const OidcVerifier&) = delete;

  // Starts the background thread, which fetches every issuer's keys at once.
  void Start();
  void Stop();
  // Fetches every issuer's keys on the calling thread (tests, the CLI); errors are kept per issuer.
  void RefreshAllNow();

  // kInvalidArgument / kUnsupported (malformed, alg none, HS256...), kPermissionDenied (bad
  // signature, wrong issuer/audience/client, not yet valid), kExpired ("token expired at ..."),
  // kNotFound (signing key not in the cached set: refresh requested, retry), kUnavailable (the
  // provider's keys were never fetched). Every message says why.
  Result<VerifiedToken> Verify(std::string_view token, UnixSeconds now);

  // How many times keys were fetched (tests check the refresh rate bound).
  int64_t fetch_count() const;

 private:
  struct IssuerState {
    OidcIssuerConfig config;
    std::vector<JsonWebKey> keys;
    std::string jwks_uri;
    std::chrono::steady_clock::time_point last_attempt{};
    std::chrono::steady_clock::time_point last_success{};
    bool fetched = false;
    bool refresh_requested = false;
    std::string last_error;
  };

  void Run();
  // Fetches one issuer's discovery document and key set (no lock held during I/O).
  void Refresh(size_t index);
  bool Due(const IssuerState& state, std::chrono::steady_clock::time_point now) const REQUIRES(mutex_);

  Fetcher fetcher_;
  mutable Mutex mutex_;
  CondVar wake_;
  std::vector<IssuerState> issuers_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  int64_t fetches_ GUARDED_BY(mutex_) = 0;
  std::thread thread_;
};

}  // namespace appban::identity
