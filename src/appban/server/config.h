// The server's configuration: a TOML file (docs/server-config.md, data/server.example.toml) read
// into a ServerConfig, then overridden field by field by command-line flags, then checked as a
// whole by ValidateConfig. Loading is strict on purpose: an unknown key, a wrong type or an
// out-of-range value is an error naming the file, the line and the key, because a typo in a
// security tool's configuration ("insecure_plain_htp") must never be silently ignored.
//
// Values that derive from others (the database path from data_dir, stale_after from the check-in
// interval, the certificate names from the host name) stay unset in the struct and are computed by
// the accessors below, so that a flag changing data_dir after the file was loaded moves the
// database with it. Plain values; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/identity/oidc.h"
#include "appban/mdm/config.h"
#include "appban/store/open.h"

namespace appban {
class TomlField;
}

namespace appban::server {

// Named limits on what a configuration may say. Each range keeps a value inside what the server
// can honour; the reasons are in docs/server-config.md.
struct ConfigLimits {
  // A config is a few KB. The limit also bounds toml++'s recursion: it builds one nested table per
  // part of a dotted key, and ~20,000 parts ("a.a.a…", 40 KB) overflow an 8 MB stack; 16 KiB allow
  // at most ~8,000 parts, which parse safely even under AddressSanitizer (measured).
  static constexpr uint64_t kMaxFileBytes = 16 * 1024;
  static constexpr uint32_t kMaxWorkers = 256;
  static constexpr uint32_t kMaxConnections = 2'000'000;
  static constexpr uint32_t kMinCheckinIntervalSeconds = 10;
  static constexpr uint32_t kMaxCheckinIntervalSeconds = 7 * 24 * 3600;
  static constexpr uint32_t kMaxLongpollTimeoutSeconds = 3600;
  static constexpr uint32_t kMaxStaleAfterSeconds = 90 * 24 * 3600;
  static constexpr uint32_t kMaxEnrollmentBurst = 100'000;
  static constexpr uint32_t kMaxEnrollmentPerMinute = 1'000'000;
  static constexpr uint64_t kMinBodyBytes = 1024;
  static constexpr uint64_t kMaxJsonBytes = 64ull << 20;
  static constexpr uint64_t kMaxInventoryBytes = 256ull << 20;
  static constexpr uint64_t kMaxApkBytes = 4ull << 30;
  static constexpr uint32_t kMaxTimeoutSeconds = 3600;
  static constexpr uint32_t kMaxBundleValidityDays = 366;
  // Console session lifetimes ([console]): a few seconds (tests) to a week.
  static constexpr uint32_t kMinSessionSeconds = 2;
  static constexpr uint32_t kMaxSessionSeconds = 7 * 24 * 3600;
  static constexpr uint32_t kMaxComplianceRefreshSeconds = 24 * 3600;
  static constexpr size_t kMaxServerNames = 64;
  static constexpr size_t kMaxServerNameLength = 253;  // a DNS name's limit
  static constexpr size_t kMaxPathLength = 4096;
};

// Where the packaged service keeps its state; `appban server` without a config file uses
// kLocalDataDir instead so a first try needs no root.
inline constexpr std::string_view kPackagedDataDir = "/var/lib/appban";
inline constexpr std::string_view kLocalDataDir = "./appban-data";

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };
std::string_view LogLevelName(LogLevel level);
std::string_view LogFormatName(LogFormat format);
Result<LogLevel> ParseLogLevel(std::string_view name);    // "trace" … "error"
Result<LogFormat> ParseLogFormat(std::string_view name);  // "text" | "json"

// [listen]
struct ListenConfig {
  std::string address = "0.0.0.0";  // an IP literal: the server binds it, no name lookup
  uint16_t port = 8443;
  bool tls = true;
  // Plain HTTP needs this AND a loopback address (127.0.0.0/8, ::1); see ValidateConfig.
  bool insecure_plain_http = false;
  std::string cert_file;  // both empty: bootstrap creates a CA and a certificate in data_dir
  std::string key_file;
  std::vector<std::string> server_names;  // empty: DefaultServerNames()
  uint32_t max_connections = 120'000;     // over all workers
};

// [devices]
struct DeviceConfig {
  uint32_t checkin_interval_seconds = 300;
  uint32_t longpoll_timeout_seconds = 60;
  std::optional<uint32_t> stale_after_seconds;  // unset: 3 × checkin_interval_seconds
};

// [enrollment] — a token bucket per source address.
struct EnrollmentConfig {
  uint32_t rate_limit_burst = 10;
  uint32_t rate_limit_per_minute = 30;
};

// [limits] — request bodies larger than these are refused with 413 before they are read.
struct BodyLimits {
  uint64_t json_max_bytes = 1ull << 20;
  uint64_t inventory_max_bytes = 8ull << 20;
  uint64_t apk_max_bytes = 256ull << 20;
};

// [timeouts] — slow clients are cut off instead of holding a connection forever.
struct TimeoutConfig {
  uint32_t read_header_seconds = 10;  // from connection or previous response to a complete header
  uint32_t body_seconds = 60;         // to receive the whole body once the header is in
  uint32_t idle_seconds = 120;        // keep-alive connection with no request in flight
};

// [policy]
struct PolicyConfig {
  uint32_t bundle_validity_days = 30;  // a bundle's not_after = issued_at + this
  // The longest validity a publish may ask for (POST /v1/admin/publish {"validity_days"}); at
  // most policy::kMaxBundleValidityDays, which every verifier enforces.
  uint32_t max_bundle_validity_days = 90;
};

// [log]
struct LogConfig {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
};

// [metrics] — who may read GET /metrics (fleet size, compliance and enrolment counts).
struct MetricsConfig {
  // A file (mode 0600) holding the bearer token a Prometheus scraper sends
  // (`authorization: credentials_file:` in its scrape config). Empty: /metrics answers only
  // clients on the loopback interface.
  std::string token_file;
};

// [console] — the web console's sessions (docs/console.md).
struct ConsoleConfig {
  uint32_t session_idle_seconds = 30 * 60;     // ended after this long without a page view
  uint32_t session_max_seconds = 8 * 60 * 60;  // ended this long after sign-in, whatever the activity
  // POST /v1/session attempts one address may make at once, and the refill rate: a token bucket
  // shared by the workers (shared_rate_limiter.h), so guessing tokens from one address is slow.
  uint32_t sign_in_rate_limit_burst = 10;
  uint32_t sign_in_rate_limit_per_minute = 10;
  // The compliance summary the overview reads is computed again this often (0: never; the overview
  // then computes it on each load): docs/console.md, "How fresh the overview is".
  uint32_t compliance_refresh_seconds = 30;
};

// [identity.client_certificates] — administrators who sign in with a certificate (a PIV/CAC smart
// card) over mutual TLS (docs/identity.md, "Client certificates").
struct ClientCertificateConfig {
  // Which name of a verified certificate is the person: the subjectAltName e-mail address, the
  // Microsoft UPN (PIV/CAC cards carry one) or the whole subject DN.
  enum class UserFrom { kSanEmail, kSanUpn, kSubjectDn };
  std::string ca_file;   // PEM bundle of the CAs that issue staff certificates; empty: mutual TLS off
  std::string crl_file;  // PEM CRLs of those CAs; when set, every certificate's revocation is checked
  // How often each worker looks at crl_file and, when it changed, loads it for the handshakes
  // that follow (a CA publishes a new CRL; cron copies it here).
  uint32_t crl_reload_seconds = 60;
  static constexpr uint32_t kMaxCrlReloadSeconds = 86400;
  UserFrom user_from = UserFrom::kSanEmail;
  bool enabled() const { return !ca_file.empty(); }
};
// The issuer of the users certificates sign in as: the user is (this, the name `user_from` picks).
inline constexpr std::string_view kClientCertificateIssuer = "appban:client-certificate";

// [[identity.oidc]] — the OpenID Connect providers administrators sign in with (docs/identity.md).
struct IdentityConfig {
  static constexpr size_t kMaxIssuers = 8;
  std::vector<identity::OidcIssuerConfig> oidc;
  // `quorum`: distinct people (the proposer included; service accounts never count) who must agree
  // to a change that relaxes enforcement — approving or revoking a rule, a waiver, granting the
  // admin role, rotating the policy key. 2 to 9, default 2.
  int64_t quorum = 2;
  // `key_rotation_quorum`: the same for rotating the policy signing key; 0 (default) means `quorum`.
  int64_t key_rotation_quorum = 0;
  int64_t KeyRotationQuorum() const { return key_rotation_quorum == 0 ? quorum : key_rotation_quorum; }
  ClientCertificateConfig client_certificates;
};
// Parses the value of the top-level `identity` key. Errors name file, line and key
// ("server.toml:30: identity.oidc[0].client_id: must not be empty").
Status ParseIdentitySection(const TomlField& field, const std::string& source, IdentityConfig& out);
// The secret and key files a provider table names exist, are regular files and are mode 0600.
Status CheckIdentityFiles(const IdentityConfig& identity);

// The node's audit checkpoint directory inside its data directory (PostgreSQL only).
inline constexpr std::string_view kAuditCheckpointDirName = "audit-checkpoint";

struct ServerConfig {
  std::string source;  // the file it was loaded from; empty for built-in defaults

  // top level
  std::string data_dir = std::string(kPackagedDataDir);
  // A SQLite file (empty: data_dir/appban.db) or a PostgreSQL URI ("postgresql://...").
  std::string database;
  // PostgreSQL: a file holding the database password (mode 0600), read at each connection.
  std::string database_password_file;
  // PostgreSQL: how often each worker looks up the newest bundle itself while it also LISTENs for
  // publishes (store/change_listener.h): the most a lost notification can delay a wake-up. Without
  // a listening connection (SQLite, or while it reconnects) workers look every 200 ms.
  uint32_t database_catch_up_seconds = 2;
  uint32_t workers = 0;  // 0: WorkerCount() decides
  // How many nice levels a worker's request thread runs below its check-in writer thread. Every
  // device's acknowledgement waits for a writer, and the writers take turns on one database lock:
  // a writer preempted by request threads while holding it stalls all of them.
  uint32_t request_thread_nice = 12;
  // Where the first start writes the bootstrap admin token (mode 0600) instead of printing it, so
  // that it stays out of the journal when a service manager collects the output. Empty: printed.
  std::string first_admin_token_file;

  ListenConfig listen;
  DeviceConfig devices;
  EnrollmentConfig enrollment;
  BodyLimits limits;
  TimeoutConfig timeouts;
  PolicyConfig policy;
  LogConfig log;
  MetricsConfig metrics;
  ConsoleConfig console;
  // [[mdm.amapi]] … — the MDM connectors (mdm/config.h, docs/mdm.md).
  mdm::MdmConfig mdm;
  IdentityConfig identity;

  // The SQLite file path or the PostgreSQL URI.
  std::string DatabasePath() const;
  bool UsesPostgres() const { return store::DatabaseTarget{database}.IsPostgres(); }
  // Where to open the stores (store/open.h), with the password file read and, on PostgreSQL, this
  // node's audit checkpoint directory (AuditCheckpointDir).
  Result<store::DatabaseTarget> Database() const;
  // PostgreSQL: <data_dir>/audit-checkpoint, the node's signed audit checkpoint (docs/postgresql.md,
  // "Audit chain"). A SQLite database keeps its own beside the file.
  std::string AuditCheckpointDir() const { return data_dir + "/" + std::string(kAuditCheckpointDirName); }
  uint32_t StaleAfterSeconds() const;
  // listen.server_names, or DefaultServerNames() when none are configured.
  std::vector<std::string> ServerNames() const;
  bool UsesGeneratedCertificate() const { return listen.tls && listen.cert_file.empty(); }
};

// Parses TOML text; `source` names it in errors ("server.toml:12: listen.prot: unknown key").
// Checks each value's type and range; cross-field rules are ValidateConfig's job, because flags
// applied afterwards may change the fields involved.
Result<ServerConfig> ParseServerConfig(std::string_view toml_text, const std::string& source);
Result<ServerConfig> LoadServerConfigFile(const std::string& path);

// Checks the final configuration (after flags): every range again, plus the rules that span
// fields — plain HTTP only on loopback with insecure_plain_http, cert_file and key_file together,
// stale_after not shorter than the check-in interval. Errors name the key ("listen.tls: …").
Status ValidateConfig(const ServerConfig& config);

// Every key a configuration file may hold, as "section.key" ("data_dir" for top-level keys). The
// docs and the example file are tested against this list.
std::vector<std::string> KnownConfigKeys();

// True for 127.0.0.0/8 and ::1 (also written as ::ffff:127.x.y.z). Names are not resolved.
bool IsLoopbackAddress(std::string_view address);
bool IsIpAddress(std::string_view address);

// The host name, 127.0.0.1 and ::1: what a self-signed certificate should cover by default.
std::vector<std::string> DefaultServerNames();

// Worker processes to fork: `config.workers` when set, else the core count raised until
// max_connections fit under the per-process descriptor limit (each worker keeps
// kReservedDescriptorsPerWorker for its database, listening socket and logs).
inline constexpr uint64_t kReservedDescriptorsPerWorker = 64;
uint32_t WorkerCount(const ServerConfig& config, uint32_t cores, uint64_t descriptors_per_process);

}  // namespace appban::server
