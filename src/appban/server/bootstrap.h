// First start of the server in a data directory. Bootstrap() makes sure everything the server
// needs exists, creating only what is missing, so it runs on every start and a second start
// changes nothing:
//   - the data directory (mode 0700; a directory that group or others may write is refused, since
//     whoever can write it can replace the keys);
//   - with TLS and no configured certificate: a self-signed CA and a server certificate for the
//     configured names under data_dir/tls/ (private keys 0600). The CA key is kept so that a
//     deleted or expired server certificate is re-issued by the same CA that devices pinned;
//   - the policy signing key (data_dir/keys/, policy::CreateActiveKey);
//   - when the database holds no API token at all: a one-time admin token, returned here and
//     printed once; only its hash is stored.
// Runs in the supervisor before the workers are forked; the database connection it opens is
// closed again when it returns. Not for concurrent use on one data directory (the admin token
// alone is created atomically across processes).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "appban/server/config.h"
#include "appban/server/instance_guard.h"

namespace appban::server {

// Validity of the material bootstrap creates. The CA outlives many server certificates: devices
// pin it at enrolment, and re-enrolling a fleet because a CA expired is what this avoids.
inline constexpr int kCaValidityDays = 3650;
inline constexpr int kServerCertificateValidityDays = 825;
// The name of the first admin token (recorded as the audit actor of its changes).
inline constexpr std::string_view kFirstAdminTokenName = "admin";

struct BootstrapResult {
  std::string url;  // where devices and administrators reach the server
  // With a generated certificate: the CA devices pin, and its SHA-256 fingerprint in the colon
  // form `openssl x509 -fingerprint -sha256` prints. Both empty with an operator's certificate or
  // plain HTTP.
  std::string ca_pem_path;
  std::string ca_fingerprint;
  // What the server presents (the generated ones, or listen.cert_file / key_file); empty without TLS.
  std::string certificate_path;
  std::string key_path;
  std::string policy_key_id;
  // The names (DNS names and IP addresses) the generated server certificate holds; empty with an
  // operator's certificate or plain HTTP.
  std::vector<std::string> certificate_names;
  std::optional<std::string> admin_token;  // only on the start that created it
  std::string admin_token_file;            // where it was written instead of printed (if so)
  // Shown at the top of the banner on every start (e.g. a data directory others can enter).
  std::vector<std::string> warnings;

  bool created_data_dir = false;
  bool created_ca = false;
  bool created_server_certificate = false;
  bool created_policy_key = false;
  // PostgreSQL: this node's audit checkpoint key was made by this start (docs/postgresql.md).
  bool created_audit_checkpoint_key = false;
  bool created_admin_token() const { return admin_token.has_value(); }
  bool created_anything() const {
    return created_data_dir || created_ca || created_server_certificate || created_policy_key || created_admin_token();
  }
};

// The scrape credential of GET /metrics from metrics.token_file ("" when none is configured: then
// only loopback clients may read /metrics). The file must be 0600 like a private key, hold one
// line of visible characters (surrounding whitespace ignored), at least kMinMetricsTokenBytes.
inline constexpr size_t kMinMetricsTokenBytes = 16;
inline constexpr size_t kMaxMetricsTokenBytes = 4096;
Result<std::string> ReadMetricsToken(const ServerConfig& config);

// The files bootstrap manages, relative to the data directory.
struct DataDirLayout {
  explicit DataDirLayout(const std::string& data_dir)
      : tls_dir(data_dir + "/tls"),
        ca_certificate(tls_dir + "/ca.pem"),
        ca_key(tls_dir + "/ca.key"),
        server_certificate(tls_dir + "/server.pem"),
        server_key(tls_dir + "/server.key"),
        policy_key_dir(data_dir + "/keys") {}
  std::string tls_dir;
  std::string ca_certificate;
  std::string ca_key;
  std::string server_certificate;
  std::string server_key;
  std::string policy_key_dir;
};

// REQUIRES: ValidateConfig(config) is OK. `url` is the address the server is reachable at (the
// supervisor knows the bound port). Errors: kPermissionDenied for a data directory writable by
// group or others, or a private key file readable by them; kFailedPrecondition for a half-present
// state it will not guess about (a server certificate without the CA certificate beside it);
// otherwise the failing step's error, naming the file.
Result<BootstrapResult> Bootstrap(const ServerConfig& config, const std::string& url);

// Creates the data directory if needed (mode 0700; one others may write to is refused) and takes
// its exclusive lock (instance_guard.h). The supervisor holds it, before Bootstrap and for the
// server's lifetime; its workers inherit it.
Result<DataDirLock> LockDataDirectory(const ServerConfig& config);

// The text the server prints at start. After a first start: the URL, the CA fingerprint, the admin
// token with a warning that it is shown only once, and the exact commands to issue an enrolment
// token and enrol a device. On later starts: the URL and CA fingerprint only, never a token.
std::string FirstStartBanner(const BootstrapResult& result);

}  // namespace appban::server
