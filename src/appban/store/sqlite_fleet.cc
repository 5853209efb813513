// SQLite implementation of FleetStore, on the same database file (and migration list) as the
// policy store: sqlite::OpenStoreDatabase sets it up, sqlite::AppendAuditEntry chains the audit
// entry of each administrative change inside the change's own transaction.
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "appban/common/crypto.h"
#include "appban/policy/model.h"
#include "appban/store/fleet.h"
#include "appban/store/sqlite.h"

namespace appban::store {

using policy::Json;

// ---- Secrets ----

namespace {

constexpr size_t kIdRandomBytes = 8;  // ids are "<prefix>-" + 16 hex

Result<std::string> RandomHex(size_t bytes) {
  std::vector<uint8_t> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1) {
    return Status::Unavailable("the system random number generator failed");
  }
  return HexLower(buffer);
}

Result<std::string> NewId(std::string_view prefix) {
  APPBAN_ASSIGN_OR_RETURN(std::string random, RandomHex(kIdRandomBytes));
  return std::string(prefix) + random;
}

bool IsLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

Result<std::string> GenerateSecret() { return RandomHex(kSecretBytes); }

std::string HashSecret(std::string_view secret_hex) { return Sha256Hex(AsBytes(secret_hex)); }

bool SecretMatchesHash(std::string_view secret_hex, std::string_view stored_hash) {
  std::string computed = HashSecret(secret_hex);
  if (computed.size() != stored_hash.size()) return false;  // lengths are public (always 64)
  return CRYPTO_memcmp(computed.data(), stored_hash.data(), computed.size()) == 0;
}

Result<PresentedSecret> SplitPresented(std::string_view text) {
  size_t dot = text.find('.');
  if (dot == std::string_view::npos) return Status::InvalidArgument("credential is not of the form <id>.<secret>");
  std::string_view id = text.substr(0, dot);
  std::string_view secret = text.substr(dot + 1);
  // Ids are "<letter>-" + 16 hex; anything longer is not one of ours.
  if (id.size() < 3 || id.size() > 32 || id[1] != '-' || !(id[0] >= 'a' && id[0] <= 'z') || !IsLowerHex(id.substr(2))) {
    return Status::InvalidArgument("credential id is malformed");
  }
  if (secret.size() != 2 * kSecretBytes || !IsLowerHex(secret)) {
    return Status::InvalidArgument("credential secret must be " + std::to_string(2 * kSecretBytes) +
                                   " lowercase hex characters");
  }
  return PresentedSecret{std::string(id), std::string(secret)};
}

std::string JoinPresented(std::string_view id, std::string_view secret_hex) {
  return std::string(id) + "." + std::string(secret_hex);
}

bool IsNotAuthenticated(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnavailable:
    case StatusCode::kInternal:
    case StatusCode::kCorruption:
      return false;
    default:
      return true;
  }
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kAnalyst:
      return "analyst";
    case Role::kAuditor:
      return "auditor";
  }
  return "auditor";
}

Result<Role> ParseRole(std::string_view name) {
  for (Role role : {Role::kAdmin, Role::kAnalyst, Role::kAuditor}) {
    if (RoleName(role) == name) return role;
  }
  return Status::InvalidArgument("unknown role \"" + std::string(name.substr(0, 32)) +
                                 "\" (expected admin, analyst or auditor)");
}

std::string_view ComplianceStateName(ComplianceState state) {
  switch (state) {
    case ComplianceState::kCompliant:
      return "compliant";
    case ComplianceState::kViolating:
      return "violating";
    case ComplianceState::kWaived:
      return "waived";
  }
  return "violating";
}

Result<ComplianceState> ParseComplianceState(std::string_view name) {
  for (ComplianceState state : {ComplianceState::kCompliant, ComplianceState::kViolating, ComplianceState::kWaived}) {
    if (ComplianceStateName(state) == name) return state;
  }
  return Status::InvalidArgument("unknown compliance state \"" + std::string(name.substr(0, 32)) + "\"");
}

namespace {

// Text that is shown to administrators and written to logs: bounded, no control characters.
Status CheckText(std::string_view text, size_t max_bytes, std::string_view what, bool required) {
  if (required && text.empty()) return Status::InvalidArgument(std::string(what) + " is empty");
  if (text.size() > max_bytes) {
    return Status::InvalidArgument(std::string(what) + " is longer than " + std::to_string(max_bytes) + " bytes");
  }
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Status::InvalidArgument(std::string(what) + " contains a control character");
    }
  }
  return Status::Ok();
}

// Canonical audit JSON has integers only, so the score is recorded as its shortest round-trip text.
std::string ScoreText(double score) {
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, score);
  return error == std::errc() ? std::string(buffer, end) : std::string("?");
}

Json OptionalTime(const std::optional<UnixSeconds>& at) {
  return at ? Json(policy::FormatTimestamp(*at)) : Json(nullptr);
}

Json ApiTokenJson(const ApiToken& token) {
  return Json{{"id", token.id},
              {"name", token.name},
              {"role", std::string(RoleName(token.role))},
              {"created_by", token.created_by},
              {"created_at", policy::FormatTimestamp(token.created_at)},
              {"expires_at", OptionalTime(token.expires_at)},
              {"revoked_at", OptionalTime(token.revoked_at)}};
}

Json EnrollmentTokenJson(const EnrollmentToken& token) {
  return Json{{"id", token.id},
              {"group", token.group},
              {"created_by", token.created_by},
              {"created_at", policy::FormatTimestamp(token.created_at)},
              {"expires_at", policy::FormatTimestamp(token.expires_at)},
              {"note", token.note},
              {"used_at", OptionalTime(token.used_at)},
              {"used_by_device", token.used_by_device},
              {"revoked_at", OptionalTime(token.revoked_at)}};
}

Json DeviceJson(const Device& device) {
  return Json{{"id", device.id},
              {"hostname", device.hostname},
              {"platform", device.platform},
              {"agent_version", device.agent_version},
              {"group", device.group},
              {"enrolled_at", policy::FormatTimestamp(device.enrolled_at)},
              {"enrollment_token_id", device.enrollment_token_id},
              {"revoked_at", OptionalTime(device.revoked_at)},
              {"revoked_by", device.revoked_by}};
}

constexpr std::string_view kApiTokenColumns = "id, name, role, created_by, created_at, expires_at, revoked_at";
constexpr std::string_view kEnrollmentTokenColumns =
    "id, group_name, created_by, created_at, expires_at, note, used_at, used_by_device, revoked_at";
constexpr std::string_view kDeviceColumns =
    "id, hostname, platform, agent_version, group_name, enrolled_at, enrollment_token_id, revoked_at, revoked_by, "
    "applied_version, applied_rules_hash, inventory_hash, inventory_at, last_seen, evaluated_version, "
    "evaluated_inventory_hash, last_event_seq";
constexpr int kDeviceColumnCount = 17;
constexpr std::string_view kEventColumns = "device_id, seq, at, kind, platform, app, rule_id, detail, received_at";

Result<ApiToken> ReadApiToken(const sqlite::Statement& row) {
  ApiToken token;
  token.id = row.Text(0);
  token.name = row.Text(1);
  APPBAN_ASSIGN_OR_RETURN(token.role, ParseRole(row.Text(2)));
  token.created_by = row.Text(3);
  token.created_at = row.Int(4);
  token.expires_at = row.OptionalInt(5);
  token.revoked_at = row.OptionalInt(6);
  return token;
}

EnrollmentToken ReadEnrollmentToken(const sqlite::Statement& row) {
  EnrollmentToken token;
  token.id = row.Text(0);
  token.group = row.Text(1);
  token.created_by = row.Text(2);
  token.created_at = row.Int(3);
  token.expires_at = row.Int(4);
  token.note = row.Text(5);
  token.used_at = row.OptionalInt(6);
  token.used_by_device = row.Text(7);
  token.revoked_at = row.OptionalInt(8);
  return token;
}

Device ReadDevice(const sqlite::Statement& row) {
  Device device;
  device.id = row.Text(0);
  device.hostname = row.Text(1);
  device.platform = row.Text(2);
  device.agent_version = row.Text(3);
  device.group = row.Text(4);
  device.enrolled_at = row.Int(5);
  device.enrollment_token_id = row.Text(6);
  device.revoked_at = row.OptionalInt(7);
  device.revoked_by = row.Text(8);
  device.applied_version = row.Int(9);
  device.applied_rules_hash = row.Text(10);
  device.inventory_hash = row.Text(11);
  device.inventory_at = row.OptionalInt(12);
  device.last_seen = row.Int(13);
  device.evaluated_version = row.Int(14);
  device.evaluated_inventory_hash = row.Text(15);
  device.last_event_seq = row.Int(16);
  return device;
}

DeviceEvent ReadEvent(const sqlite::Statement& row) {
  DeviceEvent event;
  event.device_id = row.Text(0);
  event.seq = row.Int(1);
  event.at = row.Int(2);
  event.kind = row.Text(3);
  event.platform = row.Text(4);
  event.app = row.Text(5);
  event.rule_id = row.Text(6);
  event.detail = row.Text(7);
  event.received_at = row.Int(8);
  return event;
}

Status ValidateCheckin(const CheckinWrite& write) {
  const FleetLimits& limits = kFleetLimits;
  if (write.events.size() > limits.max_events_per_checkin) {
    return Status::InvalidArgument("check-in carries more than " + std::to_string(limits.max_events_per_checkin) +
                                   " events");
  }
  if (write.rule_states.size() + write.cleared_rule_ids.size() > limits.max_rule_states_per_checkin) {
    return Status::InvalidArgument("check-in carries more than " + std::to_string(limits.max_rule_states_per_checkin) +
                                   " rule states");
  }
  if (write.applied) APPBAN_RETURN_IF_ERROR(CheckText(write.applied->rules_hash, 128, "applied rules hash", false));
  if (write.evaluated) {
    APPBAN_RETURN_IF_ERROR(CheckText(write.evaluated->inventory_hash, 128, "evaluated inventory hash", false));
  }
  if (write.inventory) {
    APPBAN_RETURN_IF_ERROR(CheckText(write.inventory->hash, 128, "inventory hash", true));
    if (write.inventory->canonical_json.size() > limits.max_inventory_json_bytes) {
      return Status::InvalidArgument("inventory is larger than " + std::to_string(limits.max_inventory_json_bytes) +
                                     " bytes");
    }
  }
  for (const DeviceEvent& event : write.events) {
    if (event.seq <= 0) return Status::InvalidArgument("event seq must be positive");
    APPBAN_RETURN_IF_ERROR(CheckText(event.kind, limits.max_event_field_bytes, "event kind", true));
    APPBAN_RETURN_IF_ERROR(CheckText(event.platform, limits.max_event_field_bytes, "event platform", false));
    APPBAN_RETURN_IF_ERROR(CheckText(event.app, limits.max_event_field_bytes, "event app", false));
    APPBAN_RETURN_IF_ERROR(CheckText(event.rule_id, limits.max_event_field_bytes, "event rule id", false));
    if (event.detail.size() > limits.max_event_detail_bytes) {
      return Status::InvalidArgument("event detail is longer than " + std::to_string(limits.max_event_detail_bytes) +
                                     " bytes");
    }
  }
  for (const DeviceRuleState& state : write.rule_states) {
    APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(state.rule_id, "rule id"));
  }
  for (const std::string& rule_id : write.cleared_rule_ids) {
    APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(rule_id, "rule id"));
  }
  return Status::Ok();
}

Status CheckListLimit(int64_t limit) {
  if (limit <= 0 || static_cast<uint64_t>(limit) > kFleetLimits.max_list_limit) {
    return Status::InvalidArgument("list limit must be between 1 and " + std::to_string(kFleetLimits.max_list_limit));
  }
  return Status::Ok();
}

class SqliteFleetStore final : public FleetStore {
 public:
  explicit SqliteFleetStore(sqlite::Database db) : db_(std::move(db)) {}

  // ---- API tokens ----

  Result<CreatedApiToken> CreateApiToken(const std::string& name, Role role, std::optional<UnixSeconds> expires_at,
                                         const AuditRecord& audit) override {
    return InsertApiToken(name, role, expires_at, audit, /*only_if_none=*/false);
  }

  Result<CreatedApiToken> CreateFirstApiToken(const std::string& name, Role role, const AuditRecord& audit) override {
    return InsertApiToken(name, role, std::nullopt, audit, /*only_if_none=*/true);
  }

  Result<bool> HasAnyApiToken() override {
    APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db_, "SELECT EXISTS(SELECT 1 FROM api_tokens)"));
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    return row && query.Int(0) != 0;
  }

  Result<ApiToken> AuthenticateApiToken(std::string_view presented, UnixSeconds now) override {
    APPBAN_ASSIGN_OR_RETURN(PresentedSecret parts, SplitPresented(presented));
    if (!parts.id.starts_with("t-")) return Status::InvalidArgument("not an API token");
    APPBAN_ASSIGN_OR_RETURN(auto query,
                            sqlite::Statement::Prepare(db_, "SELECT " + std::string(kApiTokenColumns) +
                                                                ", secret_hash FROM api_tokens WHERE id = ?1"));
    query.Bind(1, parts.id);
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    // Unknown id and wrong secret give the same answer: no oracle for which ids exist.
    if (!row || !SecretMatchesHash(parts.secret, query.Text(7))) {
      return Status::NotFound("unknown API token or wrong secret");
    }
    APPBAN_ASSIGN_OR_RETURN(ApiToken token, ReadApiToken(query));
    if (token.revoked_at) return Status::FailedPrecondition("API token " + token.id + " was revoked");
    if (token.expires_at && now >= *token.expires_at) return Status::Expired("API token " + token.id + " has expired");
    return token;
  }

  Result<std::vector<ApiToken>> ListApiTokens() override {
    APPBAN_ASSIGN_OR_RETURN(
        auto query, sqlite::Statement::Prepare(
                        db_, "SELECT " + std::string(kApiTokenColumns) + " FROM api_tokens ORDER BY created_at, id"));
    std::vector<ApiToken> tokens;
    while (true) {
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      APPBAN_ASSIGN_OR_RETURN(ApiToken token, ReadApiToken(query));
      tokens.push_back(std::move(token));
    }
    return tokens;
  }

  Status RevokeApiToken(const std::string& id, const AuditRecord& audit) override {
    return Audited(audit, [&](AuditRecord& record) -> Status {
      APPBAN_ASSIGN_OR_RETURN(ApiToken token, LoadApiToken(id));
      if (token.revoked_at) return Status::FailedPrecondition("API token " + id + " is already revoked");
      APPBAN_ASSIGN_OR_RETURN(auto update,
                              sqlite::Statement::Prepare(db_, "UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2"));
      APPBAN_RETURN_IF_ERROR(update.Bind(1, record.at).Bind(2, id).Run());
      record.action = "api_token.revoke";
      record.object = "api_token:" + id;
      record.before = ApiTokenJson(token);
      token.revoked_at = record.at;
      record.after = ApiTokenJson(token);
      return Status::Ok();
    });
  }

  // ---- Enrolment tokens ----

  Result<CreatedEnrollmentToken> CreateEnrollmentToken(const std::string& group, UnixSeconds expires_at,
                                                       const std::string& note, const AuditRecord& audit) override {
    APPBAN_ASSIGN_OR_RETURN(std::vector<CreatedEnrollmentToken> created,
                            CreateEnrollmentTokens(group, expires_at, note, 1, audit));
    return std::move(created.front());
  }

  Result<std::vector<CreatedEnrollmentToken>> CreateEnrollmentTokens(const std::string& group, UnixSeconds expires_at,
                                                                     const std::string& note, size_t count,
                                                                     const AuditRecord& audit) override {
    if (!group.empty()) APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(group, "group"));
    APPBAN_RETURN_IF_ERROR(CheckText(note, kFleetLimits.max_note_bytes, "enrolment token note", false));
    if (expires_at <= audit.at) return Status::InvalidArgument("enrolment token expiry must lie in the future");
    if (count == 0 || count > kFleetLimits.max_enrollment_tokens_per_call) {
      return Status::InvalidArgument("enrolment token count must be between 1 and " +
                                     std::to_string(kFleetLimits.max_enrollment_tokens_per_call));
    }
    APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(audit.actor, "audit actor"));
    // Secrets and ids are made before the write lock is taken: the lock is held only for the inserts.
    std::vector<CreatedEnrollmentToken> created(count);
    std::vector<std::string> secret_hashes(count);
    for (size_t i = 0; i < count; ++i) {
      CreatedEnrollmentToken& entry = created[i];
      APPBAN_ASSIGN_OR_RETURN(entry.token.id, NewId("e-"));
      APPBAN_ASSIGN_OR_RETURN(std::string secret, GenerateSecret());
      entry.presented = JoinPresented(entry.token.id, secret);
      secret_hashes[i] = HashSecret(secret);
      entry.token.group = group;
      entry.token.created_by = audit.actor;
      entry.token.created_at = audit.at;
      entry.token.expires_at = expires_at;
      entry.token.note = note;
    }
    APPBAN_ASSIGN_OR_RETURN(auto transaction, sqlite::Transaction::Begin(db_));
    if (!group.empty()) {
      APPBAN_ASSIGN_OR_RETURN(
          auto exists, sqlite::Statement::Prepare(db_, "SELECT EXISTS(SELECT 1 FROM device_groups WHERE name = ?1)"));
      exists.Bind(1, group);
      APPBAN_ASSIGN_OR_RETURN(bool row, exists.Step());
      if (!row || exists.Int(0) == 0) return Status::NotFound("no group " + group);
    }
    APPBAN_ASSIGN_OR_RETURN(auto insert,
                            sqlite::Statement::Prepare(db_,
                                                       "INSERT INTO enrollment_tokens(id, group_name, secret_hash, "
                                                       "created_by, created_at, expires_at, note) "
                                                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    for (size_t i = 0; i < count; ++i) {
      const EnrollmentToken& token = created[i].token;
      insert.Reset();
      APPBAN_RETURN_IF_ERROR(insert.Bind(1, token.id)
                                 .Bind(2, group)
                                 .Bind(3, secret_hashes[i])
                                 .Bind(4, token.created_by)
                                 .Bind(5, token.created_at)
                                 .Bind(6, expires_at)
                                 .Bind(7, note)
                                 .Run());
      AuditRecord record;
      record.actor = audit.actor;
      record.at = audit.at;
      record.action = "enrollment_token.create";
      record.object = "enrollment_token:" + token.id;
      record.after = EnrollmentTokenJson(token);
      APPBAN_RETURN_IF_ERROR(sqlite::AppendAuditEntry(db_, record));
    }
    APPBAN_RETURN_IF_ERROR(transaction.Commit());
    return created;
  }

  Result<std::vector<EnrollmentToken>> ListEnrollmentTokens() override {
    APPBAN_ASSIGN_OR_RETURN(auto query,
                            sqlite::Statement::Prepare(db_, "SELECT " + std::string(kEnrollmentTokenColumns) +
                                                                " FROM enrollment_tokens ORDER BY created_at, id"));
    std::vector<EnrollmentToken> tokens;
    while (true) {
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      tokens.push_back(ReadEnrollmentToken(query));
    }
    return tokens;
  }

  Status RevokeEnrollmentToken(const std::string& id, const AuditRecord& audit) override {
    return Audited(audit, [&](AuditRecord& record) -> Status {
      APPBAN_ASSIGN_OR_RETURN(auto query,
                              sqlite::Statement::Prepare(db_, "SELECT " + std::string(kEnrollmentTokenColumns) +
                                                                  " FROM enrollment_tokens WHERE id = ?1"));
      query.Bind(1, id);
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) return Status::NotFound("no enrolment token " + id);
      EnrollmentToken token = ReadEnrollmentToken(query);
      if (token.revoked_at) return Status::FailedPrecondition("enrolment token " + id + " is already revoked");
      APPBAN_ASSIGN_OR_RETURN(
          auto update, sqlite::Statement::Prepare(db_, "UPDATE enrollment_tokens SET revoked_at = ?1 WHERE id = ?2"));
      APPBAN_RETURN_IF_ERROR(update.Bind(1, record.at).Bind(2, id).Run());
      record.action = "enrollment_token.revoke";
      record.object = "enrollment_token:" + id;
      record.before = EnrollmentTokenJson(token);
      token.revoked_at = record.at;
      record.after = EnrollmentTokenJson(token);
      return Status::Ok();
    });
  }

  // ---- Devices ----

  Result<Enrollment> EnrollDevice(std::string_view presented_token, const std::string& hostname,
                                  const std::string& platform, const std::string& agent_version,
                                  UnixSeconds now) override {
    EnrollmentRequest request{std::string(presented_token), hostname, platform, agent_version};
    APPBAN_ASSIGN_OR_RETURN(std::vector<Result<Enrollment>> outcomes,
                            EnrollDevices(std::span<const EnrollmentRequest>(&request, 1), now));
    return std::move(outcomes.front());
  }

  Result<std::vector<Result<Enrollment>>> EnrollDevices(std::span<const EnrollmentRequest> requests,
                                                        UnixSeconds now) override {
    // Everything that needs no database is checked (and every secret made) before the write lock.
    std::vector<Result<Enrollment>> outcomes;
    outcomes.reserve(requests.size());
    std::vector<PendingEnrollment> pending(requests.size());
    bool any_valid = false;
    for (size_t i = 0; i < requests.size(); ++i) {
      Status valid = PrepareEnrollment(requests[i], now, pending[i]);
      if (valid.code() == StatusCode::kUnavailable) return valid;  // the random generator failed
      if (valid.ok()) {
        any_valid = true;
        outcomes.emplace_back(std::move(pending[i].enrollment));
      } else {
        outcomes.emplace_back(std::move(valid));
      }
    }
    if (!any_valid) return outcomes;

    // BEGIN IMMEDIATE holds the write lock from the first token check to the commit: two processes
    // presenting the same token are serialized, and the second finds it used. Inside the batch the
    // requests run in order on this connection, which sees its own uncommitted marks, so a token
    // presented twice in one batch is also used once.
    APPBAN_ASSIGN_OR_RETURN(auto transaction, sqlite::Transaction::Begin(db_));
    for (size_t i = 0; i < requests.size(); ++i) {
      if (!outcomes[i].ok()) continue;
      Status refusal;
      APPBAN_RETURN_IF_ERROR(EnrollOne(requests[i], now, pending[i], *outcomes[i], refusal));
      if (!refusal.ok()) outcomes[i] = std::move(refusal);
    }
    APPBAN_RETURN_IF_ERROR(transaction.Commit());
    return outcomes;
  }

  Result<Device> AuthenticateDevice(std::string_view presented,
                                    UnixSeconds /*now: credentials do not expire*/) override {
    APPBAN_ASSIGN_OR_RETURN(PresentedSecret parts, SplitPresented(presented));
    if (!parts.id.starts_with("d-")) return Status::InvalidArgument("not a device credential");
    // Every check-in authenticates: prepared once per connection.
    APPBAN_ASSIGN_OR_RETURN(
        auto lease, Cached("SELECT " + std::string(kDeviceColumns) + ", secret_hash FROM devices WHERE id = ?1"));
    sqlite::Statement& query = lease.statement();
    query.Bind(1, parts.id);
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row || !SecretMatchesHash(parts.secret, query.Text(kDeviceColumnCount))) {
      return Status::NotFound("unknown device or wrong credential");
    }
    Device device = ReadDevice(query);
    if (device.revoked_at) return Status::PermissionDenied("device " + device.id + " was revoked");
    return device;
  }

  Result<Device> GetDevice(const std::string& id) override {
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT " + std::string(kDeviceColumns) +
                                               ", (SELECT json FROM device_inventories WHERE device_id = "
                                               "devices.id) FROM devices WHERE id = ?1"));
    sqlite::Statement& query = lease.statement();
    query.Bind(1, id);
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) return Status::NotFound("no device " + id);
    Device device = ReadDevice(query);
    device.inventory_json = query.Text(kDeviceColumnCount);
    return device;
  }

  Result<std::vector<Device>> ListDevices(int64_t offset, int64_t limit) override {
    APPBAN_RETURN_IF_ERROR(CheckListLimit(limit));
    if (offset < 0) return Status::InvalidArgument("list offset must not be negative");
    APPBAN_ASSIGN_OR_RETURN(
        auto query, sqlite::Statement::Prepare(
                        db_, "SELECT " + std::string(kDeviceColumns) + " FROM devices ORDER BY id LIMIT ?1 OFFSET ?2"));
    query.Bind(1, limit).Bind(2, offset);
    std::vector<Device> devices;
    while (true) {
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      devices.push_back(ReadDevice(query));
    }
    return devices;
  }

  Result<int64_t> CountDevices() override {
    APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db_, "SELECT COUNT(*) FROM devices"));
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    return row ? query.Int(0) : 0;
  }

  Status RevokeDevice(const std::string& id, const AuditRecord& audit) override {
    return Audited(audit, [&](AuditRecord& record) -> Status {
      APPBAN_ASSIGN_OR_RETURN(Device device, GetDevice(id));
      device.inventory_json.clear();
      if (device.revoked_at) return Status::FailedPrecondition("device " + id + " is already revoked");
      APPBAN_ASSIGN_OR_RETURN(
          auto update,
          sqlite::Statement::Prepare(db_, "UPDATE devices SET revoked_at = ?1, revoked_by = ?2 WHERE id = ?3"));
      APPBAN_RETURN_IF_ERROR(update.Bind(1, record.at).Bind(2, record.actor).Bind(3, id).Run());
      record.action = "device.revoke";
      record.object = "device:" + id;
      record.before = DeviceJson(device);
      device.revoked_at = record.at;
      device.revoked_by = record.actor;
      record.after = DeviceJson(device);
      return Status::Ok();
    });
  }

  // ---- Check-ins ----

  // Check-ins are device reports, not administrative decisions: they write no audit entries
  // (100k devices would otherwise flood the chain and serialize on its head). What the
  // administrators decide about devices (enrol, revoke) is audited.
  Result<std::vector<CheckinOutcome>> ApplyCheckins(std::span<const CheckinWrite> writes) override {
    std::vector<CheckinOutcome> outcomes(writes.size());
    for (size_t i = 0; i < writes.size(); ++i) {
      outcomes[i].device_id = writes[i].device_id;
      outcomes[i].status = ValidateCheckin(writes[i]);
    }
    if (writes.empty()) return outcomes;

    APPBAN_ASSIGN_OR_RETURN(auto transaction, sqlite::Transaction::Begin(db_));
    for (size_t i = 0; i < writes.size(); ++i) {
      if (!outcomes[i].status.ok()) continue;
      APPBAN_RETURN_IF_ERROR(ApplyOne(writes[i], outcomes[i]));
    }
    APPBAN_RETURN_IF_ERROR(transaction.Commit());
    return outcomes;
  }

  Result<std::vector<DeviceRuleState>> ListDeviceRuleStates(const std::string& device_id) override {
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT rule_id, state, since, had_app, compliant_at, version "
                                               "FROM device_rule_states WHERE device_id = ?1 ORDER BY rule_id"));
    lease.statement().Bind(1, device_id);
    return ReadRuleStates(lease.statement(), device_id, "");
  }

  Result<EvaluationInput> GetEvaluationInput(const std::string& device_id, bool with_rule_states) override {
    EvaluationInput input;
    // Two reads that must agree: a check-in committing between them could pair an old inventory
    // with new rule states. Inside a read transaction both see one snapshot.
    std::optional<sqlite::Transaction> transaction;
    if (with_rule_states) {
      APPBAN_ASSIGN_OR_RETURN(auto begun, sqlite::Transaction::BeginRead(db_));
      transaction.emplace(std::move(begun));
    }
    {
      // The JSON is read only when there are no match records (an inventory from schema 2). The
      // devices table is not read: the caller has just authenticated the device.
      APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT match_records, CASE WHEN match_records IS NULL "
                                                 "THEN json END FROM device_inventories WHERE device_id = ?1"));
      sqlite::Statement& query = lease.statement();
      query.Bind(1, device_id);
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) {
        // No inventory yet, or no such device at all.
        APPBAN_ASSIGN_OR_RETURN(auto probe, Cached("SELECT 1 FROM devices WHERE id = ?1"));
        probe.statement().Bind(1, device_id);
        APPBAN_ASSIGN_OR_RETURN(bool exists, probe.statement().Step());
        if (!exists) return Status::NotFound("no device " + device_id);
      } else if (!query.IsNull(0)) {
        input.match_records = query.Text(0);
      } else if (!query.IsNull(1)) {
        input.inventory_json = query.Text(1);
      }
    }
    if (with_rule_states) {
      APPBAN_ASSIGN_OR_RETURN(input.rule_states, ListDeviceRuleStates(device_id));
      APPBAN_RETURN_IF_ERROR(transaction->Commit());
    }
    return input;
  }

  Result<std::vector<DeviceRuleState>> ListRuleStates(const std::string& rule_id) override {
    // Answered from the covering index device_rule_states_by_rule alone.
    APPBAN_ASSIGN_OR_RETURN(auto query,
                            sqlite::Statement::Prepare(db_,
                                                       "SELECT device_id, state, since, had_app, compliant_at, version "
                                                       "FROM device_rule_states WHERE rule_id = ?1"));
    query.Bind(1, rule_id);
    return ReadRuleStates(query, "", "");
  }

  Result<RuleStateCounts> CountRuleStates(const std::string& rule_id) override {
    APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db_,
                                                                   "SELECT state, COUNT(*) FROM device_rule_states "
                                                                   "WHERE rule_id = ?1 GROUP BY state"));
    query.Bind(1, rule_id);
    RuleStateCounts counts;
    while (true) {
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      APPBAN_ASSIGN_OR_RETURN(ComplianceState state, ParseComplianceState(query.Text(0)));
      int64_t count = query.Int(1);
      switch (state) {
        case ComplianceState::kCompliant:
          counts.compliant = count;
          break;
        case ComplianceState::kViolating:
          counts.violating = count;
          break;
        case ComplianceState::kWaived:
          counts.waived = count;
          break;
      }
    }
    return counts;
  }

  Result<std::vector<DeviceEvent>> ListEvents(const std::string& device_id, int64_t limit) override {
    APPBAN_RETURN_IF_ERROR(CheckListLimit(limit));
    APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db_, "SELECT " + std::string(kEventColumns) +
                                                                            " FROM device_events WHERE device_id = ?1 "
                                                                            "ORDER BY seq DESC LIMIT ?2"));
    query.Bind(1, device_id).Bind(2, limit);
    return ReadEvents(query);
  }

  Result<std::vector<DeviceEvent>> ListEventsForRule(const std::string& rule_id, int64_t limit) override {
    APPBAN_RETURN_IF_ERROR(CheckListLimit(limit));
    APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db_, "SELECT " + std::string(kEventColumns) +
                                                                            " FROM device_events WHERE rule_id = ?1 "
                                                                            "ORDER BY received_at DESC LIMIT ?2"));
    query.Bind(1, rule_id).Bind(2, limit);
    return ReadEvents(query);
  }

  // ---- Assessments ----

  Result<bool> PutAssessment(const Assessment& assessment, const AuditRecord& audit) override {
    if (assessment.sha256.size() != 64 || !IsLowerHex(assessment.sha256)) {
      return Status::InvalidArgument("assessment sha256 must be 64 lowercase hex characters");
    }
    APPBAN_RETURN_IF_ERROR(CheckText(assessment.package, 512, "assessment package", false));
    APPBAN_RETURN_IF_ERROR(CheckText(assessment.version, 512, "assessment version", false));
    APPBAN_RETURN_IF_ERROR(CheckText(assessment.band, 64, "assessment band", false));
    if (assessment.report_json.size() > kFleetLimits.max_report_json_bytes) {
      return Status::InvalidArgument("assessment report is larger than " +
                                     std::to_string(kFleetLimits.max_report_json_bytes) + " bytes");
    }
    if (assessment.file_size < 0) return Status::InvalidArgument("assessment file size is negative");
    if (!std::isfinite(assessment.score)) return Status::InvalidArgument("assessment score is not a finite number");
    Assessment stored = assessment;
    if (stored.uploaded_by.empty()) stored.uploaded_by = audit.actor;
    if (stored.uploaded_at == 0) stored.uploaded_at = audit.at;
    bool created = false;
    Status status = Audited(audit, [&](AuditRecord& record) -> Status {
      APPBAN_ASSIGN_OR_RETURN(
          auto insert, sqlite::Statement::Prepare(db_,
                                                  "INSERT INTO assessments(sha256, package, version, score, band, "
                                                  "uploaded_by, uploaded_at, file_size, report_json) "
                                                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                                                  "ON CONFLICT(sha256) DO NOTHING"));
      APPBAN_RETURN_IF_ERROR(insert.Bind(1, stored.sha256)
                                 .Bind(2, stored.package)
                                 .Bind(3, stored.version)
                                 .BindDouble(4, stored.score)
                                 .Bind(5, stored.band)
                                 .Bind(6, stored.uploaded_by)
                                 .Bind(7, stored.uploaded_at)
                                 .Bind(8, stored.file_size)
                                 .Bind(9, stored.report_json)
                                 .Run());
      // Already stored: nothing changed, so nothing to audit; the transaction rolls back.
      if (sqlite3_changes(db_.handle()) == 0) return Status::AlreadyExists("assessment already stored");
      created = true;
      record.action = "assessment.upload";
      record.object = "assessment:" + stored.sha256;
      record.after =
          Json{{"sha256", stored.sha256},          {"package", stored.package}, {"version", stored.version},
               {"score", ScoreText(stored.score)}, {"band", stored.band},       {"file_size", stored.file_size},
               {"uploaded_by", stored.uploaded_by}};
      return Status::Ok();
    });
    if (!created && status.code() == StatusCode::kAlreadyExists) return false;
    APPBAN_RETURN_IF_ERROR(status);
    return true;
  }

  Result<Assessment> GetAssessment(const std::string& sha256) override {
    APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(
                                            db_,
                                            "SELECT sha256, package, version, score, band, uploaded_by, "
                                            "uploaded_at, file_size, report_json FROM assessments WHERE sha256 = ?1"));
    query.Bind(1, sha256);
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) return Status::NotFound("no assessment " + sha256);
    Assessment assessment = ReadAssessment(query);
    assessment.report_json = query.Text(8);
    return assessment;
  }

  Result<std::vector<Assessment>> ListAssessments() override {
    APPBAN_ASSIGN_OR_RETURN(auto query,
                            sqlite::Statement::Prepare(db_,
                                                       "SELECT sha256, package, version, score, band, uploaded_by, "
                                                       "uploaded_at, file_size FROM assessments "
                                                       "ORDER BY uploaded_at DESC, sha256"));
    std::vector<Assessment> out;
    while (true) {
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      out.push_back(ReadAssessment(query));
    }
    return out;
  }

  // ---- Settings ----

  Result<std::optional<std::string>> GetSetting(const std::string& key) override {
    APPBAN_ASSIGN_OR_RETURN(auto query,
                            sqlite::Statement::Prepare(db_, "SELECT value FROM server_settings WHERE key = ?1"));
    query.Bind(1, key);
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(query.Text(0));
  }

  Status PutSetting(const std::string& key, const std::string& value) override {
    APPBAN_RETURN_IF_ERROR(CheckText(key, kFleetLimits.max_name_bytes, "setting key", true));
    if (value.size() > kFleetLimits.max_setting_bytes) {
      return Status::InvalidArgument("setting " + key + " is larger than " +
                                     std::to_string(kFleetLimits.max_setting_bytes) + " bytes");
    }
    APPBAN_ASSIGN_OR_RETURN(auto upsert,
                            sqlite::Statement::Prepare(db_,
                                                       "INSERT INTO server_settings(key, value) VALUES(?1, ?2) "
                                                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
    return upsert.Bind(1, key).Bind(2, value).Run();
  }

 private:
  // A cached prepared statement, reset (bindings cleared, read snapshot released) when the lease ends.
  class Lease {
   public:
    explicit Lease(sqlite::Statement* statement) : statement_(statement) {}
    Lease(Lease&& other) noexcept : statement_(std::exchange(other.statement_, nullptr)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (statement_ != nullptr) statement_->Reset();
    }
    sqlite::Statement& statement() { return *statement_; }

   private:
    sqlite::Statement* statement_;
  };

  Result<Lease> Cached(const std::string& sql) {
    auto found = statements_.find(sql);
    if (found == statements_.end()) {
      APPBAN_ASSIGN_OR_RETURN(sqlite::Statement statement, sqlite::Statement::Prepare(db_, sql));
      found = statements_.emplace(sql, std::move(statement)).first;
    }
    return Lease(&found->second);
  }

  // Runs `change` and appends the audit entry it describes in one transaction. The caller's
  // record supplies actor and time; `change` fills action, object, before and after.
  Status Audited(const AuditRecord& caller, const std::function<Status(AuditRecord&)>& change) {
    APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(caller.actor, "audit actor"));
    AuditRecord record;
    record.actor = caller.actor;
    record.at = caller.at;
    APPBAN_ASSIGN_OR_RETURN(auto transaction, sqlite::Transaction::Begin(db_));
    APPBAN_RETURN_IF_ERROR(change(record));
    APPBAN_RETURN_IF_ERROR(sqlite::AppendAuditEntry(db_, record));
    return transaction.Commit();
  }

  Result<ApiToken> LoadApiToken(const std::string& id) {
    APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db_, "SELECT " + std::string(kApiTokenColumns) +
                                                                            " FROM api_tokens WHERE id = ?1"));
    query.Bind(1, id);
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) return Status::NotFound("no API token " + id);
    return ReadApiToken(query);
  }

  Result<CreatedApiToken> InsertApiToken(const std::string& name, Role role, std::optional<UnixSeconds> expires_at,
                                         const AuditRecord& audit, bool only_if_none) {
    APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(name, "API token name"));
    if (expires_at && *expires_at <= audit.at)
      return Status::InvalidArgument("API token expiry must lie in the future");
    CreatedApiToken created;
    APPBAN_ASSIGN_OR_RETURN(created.token.id, NewId("t-"));
    APPBAN_ASSIGN_OR_RETURN(std::string secret, GenerateSecret());
    created.presented = JoinPresented(created.token.id, secret);
    created.token.name = name;
    created.token.role = role;
    created.token.created_by = audit.actor;
    created.token.created_at = audit.at;
    created.token.expires_at = expires_at;
    APPBAN_RETURN_IF_ERROR(Audited(audit, [&](AuditRecord& record) -> Status {
      if (only_if_none) {
        // Inside the write transaction: of several processes starting at once, one creates it.
        APPBAN_ASSIGN_OR_RETURN(bool any, HasAnyApiToken());
        if (any) return Status::AlreadyExists("an API token already exists");
      }
      APPBAN_ASSIGN_OR_RETURN(
          auto insert, sqlite::Statement::Prepare(db_,
                                                  "INSERT INTO api_tokens(id, name, role, secret_hash, created_by, "
                                                  "created_at, expires_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
      APPBAN_RETURN_IF_ERROR(insert.Bind(1, created.token.id)
                                 .Bind(2, name)
                                 .Bind(3, RoleName(role))
                                 .Bind(4, HashSecret(secret))
                                 .Bind(5, audit.actor)
                                 .Bind(6, audit.at)
                                 .Bind(7, expires_at)
                                 .Run());
      record.action = "api_token.create";
      record.object = "api_token:" + created.token.id;
      record.after = ApiTokenJson(created.token);
      return Status::Ok();
    }));
    return created;
  }

  // What EnrollDevices prepares for one request outside the transaction.
  struct PendingEnrollment {
    std::string token_id;
    std::string token_secret;
    std::string device_secret_hash;
    Enrollment enrollment;  // device fields filled except group
  };

  // Checks a request's text and the token's form and makes the device's id and secret. A non-OK
  // status is the request's refusal, except kUnavailable (no randomness: the batch fails).
  Status PrepareEnrollment(const EnrollmentRequest& request, UnixSeconds now, PendingEnrollment& pending) {
    APPBAN_RETURN_IF_ERROR(CheckText(request.hostname, kFleetLimits.max_hostname_bytes, "hostname", true));
    APPBAN_RETURN_IF_ERROR(CheckText(request.platform, kFleetLimits.max_platform_bytes, "platform", true));
    APPBAN_RETURN_IF_ERROR(
        CheckText(request.agent_version, kFleetLimits.max_agent_version_bytes, "agent version", false));
    APPBAN_ASSIGN_OR_RETURN(PresentedSecret parts, SplitPresented(request.presented_token));
    if (!parts.id.starts_with("e-")) return Status::InvalidArgument("not an enrolment token");
    pending.token_id = std::move(parts.id);
    pending.token_secret = std::move(parts.secret);
    Device& device = pending.enrollment.device;
    APPBAN_ASSIGN_OR_RETURN(device.id, NewId("d-"));
    APPBAN_ASSIGN_OR_RETURN(std::string secret, GenerateSecret());
    pending.enrollment.credential = JoinPresented(device.id, secret);
    pending.device_secret_hash = HashSecret(secret);
    device.hostname = request.hostname;
    device.platform = request.platform;
    device.agent_version = request.agent_version;
    device.enrolled_at = now;
    device.last_seen = now;
    device.enrollment_token_id = pending.token_id;
    return Status::Ok();
  }

  // REQUIRES: inside EnrollDevices' transaction; `pending` prepared. A refusal of this request
  // goes to `refusal` (nothing written for it); the returned status is database trouble, which
  // fails the whole batch.
  Status EnrollOne(const EnrollmentRequest& request, UnixSeconds now, const PendingEnrollment& pending,
                   Enrollment& enrollment, Status& refusal) {
    Device& device = enrollment.device;
    EnrollmentToken token;
    {
      APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT " + std::string(kEnrollmentTokenColumns) +
                                                 ", secret_hash FROM enrollment_tokens WHERE id = ?1"));
      sqlite::Statement& query = lease.statement();
      query.Bind(1, pending.token_id);
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row || !SecretMatchesHash(pending.token_secret, query.Text(9))) {
        refusal = Status::NotFound("unknown enrolment token or wrong secret");
        return Status::Ok();
      }
      token = ReadEnrollmentToken(query);
    }
    if (token.revoked_at) {
      refusal = Status::FailedPrecondition("enrolment token " + token.id + " was revoked");
      return Status::Ok();
    }
    if (token.used_at) {
      refusal = Status::FailedPrecondition("enrolment token " + token.id + " was already used (single use)");
      return Status::Ok();
    }
    if (now >= token.expires_at) {
      refusal = Status::Expired("enrolment token " + token.id + " has expired");
      return Status::Ok();
    }
    device.group = token.group;
    enrollment.group = token.group;
    {
      APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("UPDATE enrollment_tokens SET used_at = ?1, used_by_device = ?2 "
                                                 "WHERE id = ?3 AND used_at IS NULL AND revoked_at IS NULL"));
      APPBAN_RETURN_IF_ERROR(lease.statement().Bind(1, now).Bind(2, device.id).Bind(3, token.id).Run());
      if (sqlite3_changes(db_.handle()) != 1) {
        refusal = Status::FailedPrecondition("enrolment token " + token.id + " was already used (single use)");
        return Status::Ok();
      }
    }
    {
      APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("INSERT INTO devices(id, secret_hash, hostname, platform, "
                                                 "agent_version, group_name, enrolled_at, enrollment_token_id, "
                                                 "last_seen) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
      APPBAN_RETURN_IF_ERROR(lease.statement()
                                 .Bind(1, device.id)
                                 .Bind(2, pending.device_secret_hash)
                                 .Bind(3, request.hostname)
                                 .Bind(4, request.platform)
                                 .Bind(5, request.agent_version)
                                 .Bind(6, device.group)
                                 .Bind(7, now)
                                 .Bind(8, token.id)
                                 .Bind(9, now)
                                 .Run());
    }
    AuditRecord record;
    record.actor = "enrollment:" + token.id;
    record.at = now;
    record.action = "device.enroll";
    record.object = "device:" + device.id;
    record.after = DeviceJson(device);
    return sqlite::AppendAuditEntry(db_, record);
  }

  // REQUIRES: inside ApplyCheckins' transaction; `write` validated.
  Status ApplyOne(const CheckinWrite& write, CheckinOutcome& outcome) {
    int64_t newest_event = 0;
    for (const DeviceEvent& event : write.events) newest_event = std::max(newest_event, event.seq);
    int64_t highest_seq = 0;
    {
      // One statement finds the device, refuses a revoked one and records the check-in; the
      // device's highest stored event seq comes back with it.
      APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("UPDATE devices SET last_seen = MAX(last_seen, ?2), "
                                                 "applied_version = COALESCE(?3, applied_version), "
                                                 "applied_rules_hash = COALESCE(?4, applied_rules_hash), "
                                                 "inventory_hash = COALESCE(?5, inventory_hash), "
                                                 "inventory_at = COALESCE(?6, inventory_at), "
                                                 "evaluated_version = COALESCE(?7, evaluated_version), "
                                                 "evaluated_inventory_hash = COALESCE(?8, evaluated_inventory_hash), "
                                                 "last_event_seq = MAX(last_event_seq, ?9) "
                                                 "WHERE id = ?1 AND revoked_at IS NULL RETURNING last_event_seq"));
      sqlite::Statement& update = lease.statement();
      update.Bind(1, write.device_id).Bind(2, write.last_seen).Bind(9, newest_event);
      if (write.applied) update.Bind(3, write.applied->version).Bind(4, write.applied->rules_hash);
      if (write.inventory) update.Bind(5, write.inventory->hash).Bind(6, write.inventory->at);
      if (write.evaluated) update.Bind(7, write.evaluated->version).Bind(8, write.evaluated->inventory_hash);
      // Unbound parameters are NULL: COALESCE keeps the column's value.
      APPBAN_ASSIGN_OR_RETURN(bool row, update.Step());
      if (row) {
        highest_seq = update.Int(0);
        APPBAN_ASSIGN_OR_RETURN(bool more, update.Step());  // finishes the statement
        (void)more;
      }
      if (!row) {
        APPBAN_ASSIGN_OR_RETURN(auto probe, Cached("SELECT revoked_at FROM devices WHERE id = ?1"));
        probe.statement().Bind(1, write.device_id);
        APPBAN_ASSIGN_OR_RETURN(bool exists, probe.statement().Step());
        outcome.status = exists ? Status::PermissionDenied("device " + write.device_id + " was revoked")
                                : Status::NotFound("no device " + write.device_id);
        return Status::Ok();
      }
    }
    if (!write.events.empty()) {
      APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("INSERT INTO device_events(" + std::string(kEventColumns) +
                                                 ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                                                 "ON CONFLICT(device_id, seq) DO NOTHING"));
      sqlite::Statement& insert = lease.statement();
      for (const DeviceEvent& event : write.events) {
        insert.Reset();
        // A duplicate was stored by an earlier check-in: stored either way.
        APPBAN_RETURN_IF_ERROR(insert.Bind(1, write.device_id)
                                   .Bind(2, event.seq)
                                   .Bind(3, event.at)
                                   .Bind(4, event.kind)
                                   .Bind(5, event.platform)
                                   .Bind(6, event.app)
                                   .Bind(7, event.rule_id)
                                   .Bind(8, event.detail)
                                   .Bind(9, event.received_at)
                                   .Run());
      }
    }
    if (write.inventory) {
      APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("INSERT INTO device_inventories(device_id, json, match_records) "
                                                 "VALUES(?1, ?2, ?3) ON CONFLICT(device_id) DO UPDATE SET "
                                                 "json = excluded.json, match_records = excluded.match_records"));
      APPBAN_RETURN_IF_ERROR(lease.statement()
                                 .Bind(1, write.device_id)
                                 .Bind(2, write.inventory->canonical_json)
                                 .Bind(3, write.inventory->match_records)
                                 .Run());
    }
    if (!write.rule_states.empty()) {
      APPBAN_ASSIGN_OR_RETURN(auto lease,
                              Cached("INSERT INTO device_rule_states(device_id, rule_id, state, since, "
                                     "had_app, compliant_at, version) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                                     "ON CONFLICT(device_id, rule_id) DO UPDATE SET state = excluded.state, "
                                     "since = excluded.since, had_app = excluded.had_app, "
                                     "compliant_at = excluded.compliant_at, version = excluded.version"));
      sqlite::Statement& upsert = lease.statement();
      for (const DeviceRuleState& state : write.rule_states) {
        upsert.Reset();
        APPBAN_RETURN_IF_ERROR(upsert.Bind(1, write.device_id)
                                   .Bind(2, state.rule_id)
                                   .Bind(3, ComplianceStateName(state.state))
                                   .Bind(4, state.since)
                                   .Bind(5, int64_t{state.had_app ? 1 : 0})
                                   .Bind(6, state.compliant_at)
                                   .Bind(7, state.version)
                                   .Run());
      }
    }
    if (!write.cleared_rule_ids.empty()) {
      APPBAN_ASSIGN_OR_RETURN(auto lease,
                              Cached("DELETE FROM device_rule_states WHERE device_id = ?1 AND rule_id = ?2"));
      sqlite::Statement& remove = lease.statement();
      for (const std::string& rule_id : write.cleared_rule_ids) {
        remove.Reset();
        APPBAN_RETURN_IF_ERROR(remove.Bind(1, write.device_id).Bind(2, rule_id).Run());
      }
    }
    outcome.highest_seq = highest_seq;
    return Status::Ok();
  }

  // Columns: (device_id | rule_id), state, since, had_app, compliant_at, version. The first column
  // fills whichever of device_id/rule_id is not given.
  Result<std::vector<DeviceRuleState>> ReadRuleStates(sqlite::Statement& query, const std::string& device_id,
                                                      const std::string& rule_id) {
    std::vector<DeviceRuleState> states;
    while (true) {
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      DeviceRuleState state;
      if (device_id.empty()) {
        state.device_id = query.Text(0);
        state.rule_id = rule_id;
      } else {
        state.device_id = device_id;
        state.rule_id = query.Text(0);
      }
      APPBAN_ASSIGN_OR_RETURN(state.state, ParseComplianceState(query.Text(1)));
      state.since = query.Int(2);
      state.had_app = query.Int(3) != 0;
      state.compliant_at = query.OptionalInt(4);
      state.version = query.Int(5);
      states.push_back(std::move(state));
    }
    return states;
  }

  Result<std::vector<DeviceEvent>> ReadEvents(sqlite::Statement& query) {
    std::vector<DeviceEvent> events;
    while (true) {
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      events.push_back(ReadEvent(query));
    }
    return events;
  }

  static Assessment ReadAssessment(const sqlite::Statement& row) {
    Assessment assessment;
    assessment.sha256 = row.Text(0);
    assessment.package = row.Text(1);
    assessment.version = row.Text(2);
    assessment.score = row.Double(3);
    assessment.band = row.Text(4);
    assessment.uploaded_by = row.Text(5);
    assessment.uploaded_at = row.Int(6);
    assessment.file_size = row.Int(7);
    return assessment;
  }

  sqlite::Database db_;
  // Hot-path statements, prepared once per connection. Declared after db_: finalized before it closes.
  std::map<std::string, sqlite::Statement> statements_;
};

}  // namespace

Result<std::unique_ptr<FleetStore>> OpenSqliteFleetStore(const std::string& path, FleetConnection use) {
  APPBAN_ASSIGN_OR_RETURN(sqlite::Database db, sqlite::OpenStoreDatabase(path));
  if (use == FleetConnection::kBatchWriter) APPBAN_RETURN_IF_ERROR(db.Exec("PRAGMA cache_spill=OFF"));
  return std::unique_ptr<FleetStore>(std::make_unique<SqliteFleetStore>(std::move(db)));
}

}  // namespace appban::store
