// Runs a real OpenID Connect provider for the identity tests: panva's oidc-provider (npm, pinned in
// tests/oidc/package-lock.json, installed by `scripts/setup.sh --test`) on Debian's nodejs, on a
// loopback port, stopped on destruction. Tokens come from the provider's own authorization code
// flow (tests/oidc/sign-in.mjs), never from the test.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "support/test_support.h"

namespace appban::testing {

class OidcProvider {
 public:
  struct Options {
    int id_token_ttl_seconds = 600;
    // The web console's confidential clients (provider.mjs): "appban-console" with private_key_jwt
    // (the provider is given the public half of this PEM private key) and "appban-console-basic"
    // with client_secret_basic and this secret. Empty: the client is not registered.
    std::string console_client_key_file;
    std::string console_client_secret;
    int device_code_ttl_seconds = 600;  // how long a device authorization grant waits for its person
  };
  // Starts the provider with its signing keys in `dir`/keys.json (created when missing); nullopt
  // (with the reason on stderr) when node or the npm packages are missing.
  static std::optional<OidcProvider> Start(const std::filesystem::path& dir, Options options);
  static std::optional<OidcProvider> Start(const std::filesystem::path& dir) { return Start(dir, Options()); }
  OidcProvider(OidcProvider&& other) noexcept;
  OidcProvider& operator=(OidcProvider&& other) noexcept;
  ~OidcProvider();

  const std::string& issuer() const { return issuer_; }
  // The server configuration that trusts this provider for client "appban": one [[identity.oidc]]
  // table (keys refreshed at most once a second, so a rollover test need not wait long).
  std::string ServerToml(int clock_skew_seconds = 60) const;
  // The same for the web console's sign-in: client `client_id`, with `credential_line` (e.g.
  // `private_key_jwt_file = "/…"`) added to the table.
  std::string ConsoleServerToml(const std::string& client_id, const std::string& credential_line) const;
  // Signs `login` in at `client_id` and returns the ID token the provider issued ("" on failure,
  // with the reason on stderr).
  std::string SignIn(const std::string& login, const std::string& client_id = "appban") const;
  // The person's half of a device authorization grant: `login` opens `verification_uri` at the
  // provider, signs in and approves (or denies) the device (tests/oidc/device-sign-in.mjs).
  CommandResult DeviceSignIn(const std::string& verification_uri, const std::string& login, bool deny = false) const;
  // Key rollover: restarts the provider on the same port with a new signing key first and the old
  // one still published. Sessions and grants are in memory and start afresh.
  bool RotateKeys();
  void Stop();

 private:
  OidcProvider() = default;
  bool Launch(bool rotate);

  pid_t pid_ = -1;
  std::filesystem::path dir_;
  Options options_;
  int port_ = 0;
  std::string issuer_;
};

}  // namespace appban::testing
