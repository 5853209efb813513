#include "appban/server/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>

#include "appban/common/toml.h"
#include "appban/mdm/config_toml.h"

namespace appban::server {
namespace {

constexpr std::array<std::string_view, 8> kSections = {"listen",   "devices", "enrollment", "limits",
                                                       "timeouts", "policy",  "metrics",    "console"};
constexpr std::string_view kLogSection = "log";

// One integer setting: its key, its allowed range and how to reach it in the struct. The same
// table drives parsing (with the file's line numbers) and ValidateConfig (after flags).
struct UintKey {
  std::string_view name;  // "section.key" or "key"
  uint64_t min;
  uint64_t max;
  uint64_t (*get)(const ServerConfig&);
  void (*set)(ServerConfig&, uint64_t);
};

using L = ConfigLimits;

// No dotted-key check: kMaxFileBytes is small enough to bound toml++'s recursion on its own.
constexpr TomlLimits kTomlLimits{.max_bytes = L::kMaxFileBytes};

const std::array<UintKey, 23>& UintKeys() {
  static const std::array<UintKey, 23> keys = {{
      {"database_catch_up_seconds", 1, L::kMaxTimeoutSeconds,
       [](const ServerConfig& c) -> uint64_t { return c.database_catch_up_seconds; },
       [](ServerConfig& c, uint64_t v) { c.database_catch_up_seconds = static_cast<uint32_t>(v); }},
      {"workers", 0, L::kMaxWorkers, [](const ServerConfig& c) -> uint64_t { return c.workers; },
       [](ServerConfig& c, uint64_t v) { c.workers = static_cast<uint32_t>(v); }},
      {"request_thread_nice", 0, 19, [](const ServerConfig& c) -> uint64_t { return c.request_thread_nice; },
       [](ServerConfig& c, uint64_t v) { c.request_thread_nice = static_cast<uint32_t>(v); }},
      // Port 0 lets the kernel choose (tests that start a server on any free port).
      {"listen.port", 0, 65535, [](const ServerConfig& c) -> uint64_t { return c.listen.port; },
       [](ServerConfig& c, uint64_t v) { c.listen.port = static_cast<uint16_t>(v); }},
      {"listen.max_connections", 1, L::kMaxConnections,
       [](const ServerConfig& c) -> uint64_t { return c.listen.max_connections; },
       [](ServerConfig& c, uint64_t v) { c.listen.max_connections = static_cast<uint32_t>(v); }},
      {"devices.checkin_interval_seconds", L::kMinCheckinIntervalSeconds, L::kMaxCheckinIntervalSeconds,
       [](const ServerConfig& c) -> uint64_t { return c.devices.checkin_interval_seconds; },
       [](ServerConfig& c, uint64_t v) { c.devices.checkin_interval_seconds = static_cast<uint32_t>(v); }},
      {"devices.longpoll_timeout_seconds", 1, L::kMaxLongpollTimeoutSeconds,
       [](const ServerConfig& c) -> uint64_t { return c.devices.longpoll_timeout_seconds; },
       [](ServerConfig& c, uint64_t v) { c.devices.longpoll_timeout_seconds = static_cast<uint32_t>(v); }},
      {"devices.stale_after_seconds", L::kMinCheckinIntervalSeconds, L::kMaxStaleAfterSeconds,
       [](const ServerConfig& c) -> uint64_t { return c.StaleAfterSeconds(); },
       [](ServerConfig& c, uint64_t v) { c.devices.stale_after_seconds = static_cast<uint32_t>(v); }},
      {"enrollment.rate_limit_burst", 1, L::kMaxEnrollmentBurst,
       [](const ServerConfig& c) -> uint64_t { return c.enrollment.rate_limit_burst; },
       [](ServerConfig& c, uint64_t v) { c.enrollment.rate_limit_burst = static_cast<uint32_t>(v); }},
      {"enrollment.rate_limit_per_minute", 1, L::kMaxEnrollmentPerMinute,
       [](const ServerConfig& c) -> uint64_t { return c.enrollment.rate_limit_per_minute; },
       [](ServerConfig& c, uint64_t v) { c.enrollment.rate_limit_per_minute = static_cast<uint32_t>(v); }},
      {"limits.json_max_bytes", L::kMinBodyBytes, L::kMaxJsonBytes,
       [](const ServerConfig& c) -> uint64_t { return c.limits.json_max_bytes; },
       [](ServerConfig& c, uint64_t v) { c.limits.json_max_bytes = v; }},
      {"limits.inventory_max_bytes", L::kMinBodyBytes, L::kMaxInventoryBytes,
       [](const ServerConfig& c) -> uint64_t { return c.limits.inventory_max_bytes; },
       [](ServerConfig& c, uint64_t v) { c.limits.inventory_max_bytes = v; }},
      {"limits.apk_max_bytes", L::kMinBodyBytes, L::kMaxApkBytes,
       [](const ServerConfig& c) -> uint64_t { return c.limits.apk_max_bytes; },
       [](ServerConfig& c, uint64_t v) { c.limits.apk_max_bytes = v; }},
      {"timeouts.read_header_seconds", 1, L::kMaxTimeoutSeconds,
       [](const ServerConfig& c) -> uint64_t { return c.timeouts.read_header_seconds; },
       [](ServerConfig& c, uint64_t v) { c.timeouts.read_header_seconds = static_cast<uint32_t>(v); }},
      {"timeouts.body_seconds", 1, L::kMaxTimeoutSeconds,
       [](const ServerConfig& c) -> uint64_t { return c.timeouts.body_seconds; },
       [](ServerConfig& c, uint64_t v) { c.timeouts.body_seconds = static_cast<uint32_t>(v); }},
      {"timeouts.idle_seconds", 1, L::kMaxTimeoutSeconds,
       [](const ServerConfig& c) -> uint64_t { return c.timeouts.idle_seconds; },
       [](ServerConfig& c, uint64_t v) { c.timeouts.idle_seconds = static_cast<uint32_t>(v); }},
      {"policy.bundle_validity_days", 1, L::kMaxBundleValidityDays,
       [](const ServerConfig& c) -> uint64_t { return c.policy.bundle_validity_days; },
       [](ServerConfig& c, uint64_t v) { c.policy.bundle_validity_days = static_cast<uint32_t>(v); }},
      {"policy.max_bundle_validity_days", 1, L::kMaxBundleValidityDays,
       [](const ServerConfig& c) -> uint64_t { return c.policy.max_bundle_validity_days; },
       [](ServerConfig& c, uint64_t v) { c.policy.max_bundle_validity_days = static_cast<uint32_t>(v); }},
      {"console.session_idle_seconds", L::kMinSessionSeconds, L::kMaxSessionSeconds,
       [](const ServerConfig& c) -> uint64_t { return c.console.session_idle_seconds; },
       [](ServerConfig& c, uint64_t v) { c.console.session_idle_seconds = static_cast<uint32_t>(v); }},
      {"console.session_max_seconds", L::kMinSessionSeconds, L::kMaxSessionSeconds,
       [](const ServerConfig& c) -> uint64_t { return c.console.session_max_seconds; },
       [](ServerConfig& c, uint64_t v) { c.console.session_max_seconds = static_cast<uint32_t>(v); }},
      {"console.sign_in_rate_limit_burst", 1, L::kMaxEnrollmentBurst,
       [](const ServerConfig& c) -> uint64_t { return c.console.sign_in_rate_limit_burst; },
       [](ServerConfig& c, uint64_t v) { c.console.sign_in_rate_limit_burst = static_cast<uint32_t>(v); }},
      {"console.sign_in_rate_limit_per_minute", 1, L::kMaxEnrollmentPerMinute,
       [](const ServerConfig& c) -> uint64_t { return c.console.sign_in_rate_limit_per_minute; },
       [](ServerConfig& c, uint64_t v) { c.console.sign_in_rate_limit_per_minute = static_cast<uint32_t>(v); }},
      {"console.compliance_refresh_seconds", 0, L::kMaxComplianceRefreshSeconds,
       [](const ServerConfig& c) -> uint64_t { return c.console.compliance_refresh_seconds; },
       [](ServerConfig& c, uint64_t v) { c.console.compliance_refresh_seconds = static_cast<uint32_t>(v); }},
  }};
  return keys;
}

const UintKey* FindUintKey(std::string_view name) {
  for (const auto& key : UintKeys()) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

// Key names that hold something other than an integer, in file order.
constexpr std::array<std::string_view, 13> kOtherKeys = {
    "data_dir",
    "database",
    "database_password_file",
    "first_admin_token_file",
    "listen.address",
    "listen.tls",
    "listen.insecure_plain_http",
    "listen.cert_file",
    "listen.key_file",
    "listen.server_names",
    "log.level",
    "log.format",
    "metrics.token_file",
};

Status CheckRange(const UintKey& key, uint64_t value) {
  if (value < key.min || value > key.max) {
    return Status::InvalidArgument(std::string(key.name) + ": " + std::to_string(value) + " is outside " +
                                   std::to_string(key.min) + ".." + std::to_string(key.max));
  }
  return Status::Ok();
}

Status CheckPath(std::string_view key, const std::string& value, bool may_be_empty) {
  if (value.empty() && !may_be_empty) return Status::InvalidArgument(std::string(key) + ": must not be empty");
  if (value.size() > L::kMaxPathLength) {
    return Status::InvalidArgument(std::string(key) + ": longer than " + std::to_string(L::kMaxPathLength) + " bytes");
  }
  if (value.find('\0') != std::string::npos) return Status::InvalidArgument(std::string(key) + ": contains a NUL byte");
  return Status::Ok();
}

bool IsDnsName(std::string_view name) {
  if (name.empty() || name.size() > L::kMaxServerNameLength) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    start = end + 1;
  }
  return true;
}

Status CheckServerNames(const std::vector<std::string>& names) {
  if (names.size() > L::kMaxServerNames) {
    return Status::LimitExceeded("listen.server_names: more than " + std::to_string(L::kMaxServerNames) + " names");
  }
  for (const auto& name : names) {
    if (!IsIpAddress(name) && !IsDnsName(name)) {
      return Status::InvalidArgument("listen.server_names: \"" + name + "\" is neither an IP address nor a DNS name");
    }
  }
  return Status::Ok();
}

// Every single-field rule (range, syntax), shared by the loader and ValidateConfig.
Status CheckFields(const ServerConfig& config) {
  for (const auto& key : UintKeys()) {
    APPBAN_RETURN_IF_ERROR(CheckRange(key, key.get(config)));
  }
  APPBAN_RETURN_IF_ERROR(CheckPath("data_dir", config.data_dir, false));
  APPBAN_RETURN_IF_ERROR(CheckPath("database", config.database, true));
  APPBAN_RETURN_IF_ERROR(CheckPath("database_password_file", config.database_password_file, true));
  if (!config.database_password_file.empty() && !config.UsesPostgres()) {
    return Status::InvalidArgument(
        "database_password_file: applies to a PostgreSQL database only (database = \"postgresql://...\")");
  }
  APPBAN_RETURN_IF_ERROR(CheckPath("listen.cert_file", config.listen.cert_file, true));
  APPBAN_RETURN_IF_ERROR(CheckPath("listen.key_file", config.listen.key_file, true));
  if (!IsIpAddress(config.listen.address)) {
    return Status::InvalidArgument("listen.address: \"" + config.listen.address +
                                   "\" is not an IP address (the server binds it; names are not resolved)");
  }
  return CheckServerNames(config.listen.server_names);
}

// Applies one non-integer key. `field.path()` is known to be in kOtherKeys.
Status ApplyOtherKey(const TomlField& field, ServerConfig& config) {
  const std::string& name = field.path();
  if (name == "listen.tls" || name == "listen.insecure_plain_http") {
    APPBAN_ASSIGN_OR_RETURN(bool value, field.Bool());
    (name == "listen.tls" ? config.listen.tls : config.listen.insecure_plain_http) = value;
    return Status::Ok();
  }
  if (name == "listen.server_names") {
    // Read element by element rather than with Strings(): the count is bounded before any element
    // is looked at, and a wrong element says "must be a string".
    const auto* array = field.node().as_array();
    if (array == nullptr) return field.Error("must be an array of strings");
    if (array->size() > L::kMaxServerNames) {
      return field.Error("more than " + std::to_string(L::kMaxServerNames) + " names", StatusCode::kLimitExceeded);
    }
    config.listen.server_names.clear();
    for (const auto& element : *array) {
      const auto* value = element.as_string();
      if (value == nullptr) return field.Error("must be a string");
      config.listen.server_names.push_back(value->get());
    }
    Status names = CheckServerNames(config.listen.server_names);
    if (!names.ok()) return Status(names.code(), field.location() + ": " + names.message());
    return Status::Ok();
  }
  APPBAN_ASSIGN_OR_RETURN(std::string value, field.String());
  if (name == "log.level") {
    auto level = ParseLogLevel(value);
    if (!level.ok()) return field.Error(level.status().message());
    config.log.level = *level;
    return Status::Ok();
  }
  if (name == "log.format") {
    auto format = ParseLogFormat(value);
    if (!format.ok()) return field.Error(format.status().message());
    config.log.format = *format;
    return Status::Ok();
  }
  if (name == "listen.address") {
    config.listen.address = value;
    if (!IsIpAddress(value)) return field.Error("\"" + value + "\" is not an IP address");
    return Status::Ok();
  }
  std::string* target = name == "data_dir"                 ? &config.data_dir
                        : name == "database"               ? &config.database
                        : name == "database_password_file" ? &config.database_password_file
                        : name == "first_admin_token_file" ? &config.first_admin_token_file
                        : name == "listen.cert_file"       ? &config.listen.cert_file
                        : name == "metrics.token_file"     ? &config.metrics.token_file
                                                           : &config.listen.key_file;
  *target = std::move(value);
  Status path = CheckPath(name, *target, name != "data_dir");
  if (!path.ok()) return Status::InvalidArgument(field.where() + path.message().substr(name.size()));
  return Status::Ok();
}

Status ApplyKey(const TomlField& field, ServerConfig& config) {
  if (const UintKey* key = FindUintKey(field.path())) {
    APPBAN_ASSIGN_OR_RETURN(int64_t value,
                            field.Integer(static_cast<int64_t>(key->min), static_cast<int64_t>(key->max)));
    key->set(config, static_cast<uint64_t>(value));
    return Status::Ok();
  }
  if (std::find(kOtherKeys.begin(), kOtherKeys.end(), field.path()) != kOtherKeys.end()) {
    return ApplyOtherKey(field, config);
  }
  return field.Unknown();
}

bool IsSection(std::string_view name) {
  return name == kLogSection || std::find(kSections.begin(), kSections.end(), name) != kSections.end();
}

}  // namespace

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string_view LogFormatName(LogFormat format) { return format == LogFormat::kJson ? "json" : "text"; }

Result<LogLevel> ParseLogLevel(std::string_view name) {
  for (LogLevel level : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (LogLevelName(level) == name) return level;
  }
  return Status::InvalidArgument("\"" + std::string(name) + "\" is not one of trace, debug, info, warn, error");
}

Result<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return Status::InvalidArgument("\"" + std::string(name) + "\" is not one of text, json");
}

std::string ServerConfig::DatabasePath() const { return database.empty() ? data_dir + "/appban.db" : database; }

Result<store::DatabaseTarget> ServerConfig::Database() const {
  store::DatabaseTarget target{DatabasePath()};
  if (target.IsPostgres()) target.audit_checkpoint_dir = AuditCheckpointDir();
  if (!database_password_file.empty()) {
    APPBAN_ASSIGN_OR_RETURN(target.password, store::ReadDatabasePassword(database_password_file));
  }
  return target;
}

uint32_t ServerConfig::StaleAfterSeconds() const {
  return devices.stale_after_seconds.value_or(3 * devices.checkin_interval_seconds);
}

std::vector<std::string> ServerConfig::ServerNames() const {
  return listen.server_names.empty() ? DefaultServerNames() : listen.server_names;
}

namespace {

Result<ServerConfig> ConfigFromToml(const toml::table& root, const std::string& source) {
  ServerConfig config;
  config.source = source;
  for (const TomlField& field : TomlFields(root, source)) {
    if (field.path() == "mdm") {
      APPBAN_RETURN_IF_ERROR(mdm::ParseMdmSection(field, source, config.mdm));
    } else if (field.path() == "identity") {
      APPBAN_RETURN_IF_ERROR(ParseIdentitySection(field, source, config.identity));
    } else if (IsSection(field.path())) {
      APPBAN_ASSIGN_OR_RETURN(const toml::table* section, field.Table());
      for (const TomlField& inner : TomlFields(*section, source, field.path())) {
        APPBAN_RETURN_IF_ERROR(ApplyKey(inner, config));
      }
    } else {
      APPBAN_RETURN_IF_ERROR(ApplyKey(field, config));
    }
  }
  return config;
}

}  // namespace

Result<ServerConfig> ParseServerConfig(std::string_view toml_text, const std::string& source) {
  APPBAN_ASSIGN_OR_RETURN(toml::table root, ParseToml(toml_text, source, kTomlLimits));
  return ConfigFromToml(root, source);
}

Result<ServerConfig> LoadServerConfigFile(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(toml::table root, ReadTomlFile(path, kTomlLimits));
  return ConfigFromToml(root, path);
}

Status ValidateConfig(const ServerConfig& config) {
  const std::string prefix = config.source.empty() ? "" : config.source + " (with flags): ";
  auto fail = [&](const Status& status) { return Status(status.code(), prefix + status.message()); };

  Status fields = CheckFields(config);
  if (!fields.ok()) return fail(fields);

  const ListenConfig& listen = config.listen;
  if (!listen.tls) {
    if (!listen.insecure_plain_http) {
      return fail(Status::InvalidArgument(
          "listen.tls: false needs listen.insecure_plain_http = true as well (plain HTTP exposes device "
          "credentials and admin tokens; it is for local testing only)"));
    }
    if (!IsLoopbackAddress(listen.address)) {
      return fail(
          Status::InvalidArgument("listen.tls: plain HTTP is only allowed on a loopback address (127.0.0.0/8 "
                                  "or ::1), not on \"" +
                                  listen.address + "\""));
    }
  }
  if (config.identity.client_certificates.enabled() && !listen.tls) {
    return fail(Status::InvalidArgument(
        "identity.client_certificates: needs TLS (listen.tls = true): clients present certificates in the TLS "
        "handshake"));
  }
  if (listen.cert_file.empty() != listen.key_file.empty()) {
    return fail(Status::InvalidArgument(std::string(listen.cert_file.empty() ? "listen.cert_file" : "listen.key_file") +
                                        ": listen.cert_file and listen.key_file must be given together"));
  }
  if (config.StaleAfterSeconds() < config.devices.checkin_interval_seconds) {
    return fail(Status::InvalidArgument("devices.stale_after_seconds: " + std::to_string(config.StaleAfterSeconds()) +
                                        " is shorter than devices.checkin_interval_seconds (" +
                                        std::to_string(config.devices.checkin_interval_seconds) +
                                        "): every device would be counted stale between two check-ins"));
  }
  if (Status files = CheckIdentityFiles(config.identity); !files.ok()) return fail(files);
  if (config.policy.bundle_validity_days > config.policy.max_bundle_validity_days) {
    return fail(Status::InvalidArgument(
        "policy.bundle_validity_days: " + std::to_string(config.policy.bundle_validity_days) +
        " is above policy.max_bundle_validity_days (" + std::to_string(config.policy.max_bundle_validity_days) + ")"));
  }
  if (static_cast<uint64_t>(config.policy.bundle_validity_days) * 86400 <= config.StaleAfterSeconds()) {
    return fail(Status::InvalidArgument(
        "policy.bundle_validity_days: bundles would expire before a device is even counted stale "
        "(devices.stale_after_seconds = " +
        std::to_string(config.StaleAfterSeconds()) + ")"));
  }
  return Status::Ok();
}

std::vector<std::string> KnownConfigKeys() {
  std::vector<std::string> keys;
  for (std::string_view key : kOtherKeys) keys.emplace_back(key);
  for (const auto& key : UintKeys()) keys.emplace_back(key.name);
  return keys;
}

bool IsIpAddress(std::string_view address) {
  if (address.size() >= INET6_ADDRSTRLEN) return false;
  const std::string text(address);
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, text.c_str(), &v4) == 1 || inet_pton(AF_INET6, text.c_str(), &v6) == 1;
}

bool IsLoopbackAddress(std::string_view address) {
  if (address.size() >= INET6_ADDRSTRLEN) return false;
  const std::string text(address);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

std::vector<std::string> DefaultServerNames() {
  std::vector<std::string> names;
  std::array<char, HOST_NAME_MAX + 1> host{};
  if (gethostname(host.data(), host.size() - 1) == 0) {
    std::string name(host.data());
    if (IsDnsName(name)) names.push_back(std::move(name));
  }
  // "localhost" is the name the OpenAPI document's servers URL and most first tries use.
  names.emplace_back("localhost");
  names.emplace_back("127.0.0.1");
  names.emplace_back("::1");
  return names;
}

uint32_t WorkerCount(const ServerConfig& config, uint32_t cores, uint64_t descriptors_per_process) {
  if (config.workers > 0) return config.workers;
  const uint64_t usable = descriptors_per_process > 2 * kReservedDescriptorsPerWorker
                              ? descriptors_per_process - kReservedDescriptorsPerWorker
                              : kReservedDescriptorsPerWorker;
  const uint64_t needed = (config.listen.max_connections + usable - 1) / usable;
  return static_cast<uint32_t>(std::clamp<uint64_t>(std::max<uint64_t>(cores, needed), 1, L::kMaxWorkers));
}

}  // namespace appban::server
