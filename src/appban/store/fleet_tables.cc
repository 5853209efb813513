// FleetStore over SQL (fleet_tables.h), on the same database (and migration list) as the policy
// store: the backend chains the audit entry of each administrative change inside the change's own
// transaction. This file holds the secrets and names of fleet.h, the helpers the store's parts
// share, the statement cache and audit wrapper, assessments and settings, and the SQLite backend;
// the rest of FleetTables is in fleet_tables_{tokens,devices,checkins,mdm,users}.cc.
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
#include "appban/store/fleet_tables.h"
#include "appban/store/sqlite.h"

namespace appban::store {

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

bool IsLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Canonical audit JSON has integers only, so the score is recorded as its shortest round-trip text.
std::string ScoreText(double score) {
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, score);
  return error == std::errc() ? std::string(buffer, end) : std::string("?");
}

Json OptionalTime(const std::optional<UnixSeconds>& at) { return at ? Json(FormatTimestamp(*at)) : Json(nullptr); }

}  // namespace

namespace internal {

Result<std::string> NewId(std::string_view prefix) {
  APPBAN_ASSIGN_OR_RETURN(std::string random, RandomHex(kIdRandomBytes));
  return std::string(prefix) + random;
}

}  // namespace internal

using internal::NewId;

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

bool ChangesMoreThanLastSeen(const CheckinWrite& write) {
  return write.applied || write.inventory || write.evaluated || write.rules_hash || !write.events.empty() ||
         !write.rule_states.empty() || !write.cleared_rule_ids.empty();
}

std::string RevokeDeviceAction(std::string_view actor, std::string_view device_id) {
  return actor == "device:" + std::string(device_id) ? "device.unenroll" : "device.revoke";
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

namespace internal {

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

Json ApiTokenJson(const ApiToken& token) {
  return Json{{"id", token.id},
              {"name", token.name},
              {"user_id", token.user_id},
              {"role", std::string(RoleName(token.role))},
              {"created_by", token.created_by},
              {"created_at", FormatTimestamp(token.created_at)},
              {"expires_at", OptionalTime(token.expires_at)},
              {"revoked_at", OptionalTime(token.revoked_at)}};
}

Json EnrollmentTokenJson(const EnrollmentToken& token) {
  return Json{{"id", token.id},
              {"group", token.group},
              {"created_by", token.created_by},
              {"created_at", FormatTimestamp(token.created_at)},
              {"expires_at", FormatTimestamp(token.expires_at)},
              {"note", token.note},
              {"max_uses", token.max_uses},
              {"uses", token.uses},
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
              {"enrolled_at", FormatTimestamp(device.enrolled_at)},
              {"enrollment_token_id", device.enrollment_token_id},
              {"revoked_at", OptionalTime(device.revoked_at)},
              {"revoked_by", device.revoked_by}};
}

template <typename Row>
Result<ApiToken> ReadApiToken(const Row& row) {
  ApiToken token;
  token.id = row.Text(0);
  token.name = row.Text(1);
  APPBAN_ASSIGN_OR_RETURN(token.role, ParseRole(row.Text(2)));
  token.created_by = row.Text(3);
  token.created_at = row.Int(4);
  token.expires_at = row.OptionalInt(5);
  token.revoked_at = row.OptionalInt(6);
  token.user_id = row.Text(7);
  return token;
}

template <typename Row>
EnrollmentToken ReadEnrollmentToken(const Row& row) {
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
  token.max_uses = row.Int(9);
  token.uses = row.Int(10);
  return token;
}

std::vector<std::string> SplitMdmGroups(std::string_view text) {
  std::vector<std::string> groups;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) groups.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return groups;
}

std::string JoinMdmGroups(const std::vector<std::string>& groups) {
  std::string text;
  for (const auto& group : groups) text += (text.empty() ? "" : "\n") + group;
  return text;
}

template <typename Row>
Device ReadDevice(const Row& row) {
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
  if (auto since = row.OptionalInt(18)) device.rules_hash_mismatch = RulesHashMismatch{row.Text(17), *since};
  device.source = row.Text(19);
  device.mdm_connector = row.Text(20);
  device.mdm_id = row.Text(21);
  device.mdm_groups = SplitMdmGroups(row.Text(22));
  device.mdm_pushed_at = row.OptionalInt(23);
  device.mdm_synced_at = row.OptionalInt(24);
  if (auto compliant = row.OptionalInt(25)) device.mdm_compliant = *compliant != 0;
  device.mdm_compliant_at = row.OptionalInt(26);
  device.cannot_enforce = row.Text(27);
  device.mdm_gone_at = row.OptionalInt(28);
  return device;
}

template <typename Row>
DeviceEvent ReadEvent(const Row& row) {
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

Status CheckPageLimit(size_t limit) {
  if (limit == 0 || limit > kFleetLimits.max_list_limit) {
    return Status::InvalidArgument("page limit must be between 1 and " + std::to_string(kFleetLimits.max_list_limit));
  }
  return Status::Ok();
}

Status CheckListLimit(int64_t limit) {
  if (limit <= 0 || static_cast<uint64_t>(limit) > kFleetLimits.max_list_limit) {
    return Status::InvalidArgument("list limit must be between 1 and " + std::to_string(kFleetLimits.max_list_limit));
  }
  return Status::Ok();
}

template <typename B>
Result<bool> FleetTables<B>::PutAssessment(const Assessment& assessment, const AuditRecord& audit) {
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
    APPBAN_ASSIGN_OR_RETURN(auto insert,
                            Statement::Prepare(db_,
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
    if (insert.Changes() == 0) return Status::AlreadyExists("assessment already stored");
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

template <typename B>
Result<Assessment> FleetTables<B>::GetAssessment(const std::string& sha256) {
  APPBAN_ASSIGN_OR_RETURN(auto query,
                          Statement::Prepare(db_,
                                             "SELECT sha256, package, version, score, band, uploaded_by, "
                                             "uploaded_at, file_size, report_json FROM assessments WHERE sha256 = ?1"));
  query.Bind(1, sha256);
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) return Status::NotFound("no assessment " + sha256);
  Assessment assessment = ReadAssessment(query);
  assessment.report_json = query.Text(8);
  return assessment;
}

template <typename B>
Result<std::vector<Assessment>> FleetTables<B>::ListAssessments() {
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_,
                                                         "SELECT sha256, package, version, score, band, uploaded_by, "
                                                         "uploaded_at, file_size FROM assessments "
                                                         "ORDER BY uploaded_at DESC, sha256"));
  return ReadRows<Assessment>(query, ReadAssessment);
}

template <typename B>
Result<std::vector<Assessment>> FleetTables<B>::ListAssessmentsAfter(const std::optional<AssessmentKey>& after,
                                                                     size_t limit) {
  APPBAN_RETURN_IF_ERROR(CheckPageLimit(limit));
  // "uploaded_at <= ?" starts the walk down assessments_by_time at `after`, so the rows before it
  // are never read; uploads sharing a second are put in sha256 order by a sort of that second only.
  std::string sql =
      "SELECT sha256, package, version, score, band, uploaded_by, uploaded_at, file_size FROM assessments ";
  if (after) sql += "WHERE uploaded_at <= ?2 AND (uploaded_at < ?2 OR sha256 < ?3) ";
  sql += "ORDER BY uploaded_at DESC, sha256 DESC LIMIT ?1";
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, sql));
  query.Bind(1, static_cast<int64_t>(limit));
  if (after) query.Bind(2, after->uploaded_at).Bind(3, after->sha256);
  return ReadRows<Assessment>(query, ReadAssessment);
}

template <typename B>
Result<SchemaState> FleetTables<B>::ReadSchemaState() {
  return B::ReadSchemaState(db_);
}

template <typename B>
Result<std::optional<std::string>> FleetTables<B>::GetSetting(const std::string& key) {
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT value FROM server_settings WHERE key = ?1"));
  query.Bind(1, key);
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(query.Text(0));
}

template <typename B>
Status FleetTables<B>::PutSetting(const std::string& key, const std::string& value) {
  APPBAN_RETURN_IF_ERROR(CheckText(key, kFleetLimits.max_name_bytes, "setting key", true));
  if (value.size() > kFleetLimits.max_setting_bytes) {
    return Status::InvalidArgument("setting " + key + " is larger than " +
                                   std::to_string(kFleetLimits.max_setting_bytes) + " bytes");
  }
  APPBAN_ASSIGN_OR_RETURN(auto upsert, Statement::Prepare(db_,
                                                          "INSERT INTO server_settings(key, value) VALUES(?1, ?2) "
                                                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
  return upsert.Bind(1, key).Bind(2, value).Run();
}

template <typename B>
Result<typename FleetTables<B>::Lease> FleetTables<B>::Cached(const std::string& sql) {
  auto found = statements_.find(sql);
  if (found == statements_.end()) {
    APPBAN_ASSIGN_OR_RETURN(Statement statement, Statement::Prepare(db_, sql));
    // A backend that prepares on its server (PostgreSQL) does so once for a cached statement.
    if constexpr (requires { statement.KeepPrepared(); }) statement.KeepPrepared();
    found = statements_.emplace(sql, std::move(statement)).first;
  }
  return Lease(&found->second);
}

template <typename B>
Status FleetTables<B>::Audited(const AuditRecord& caller, const std::function<Status(AuditRecord&)>& change) {
  APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(caller.actor, "audit actor"));
  AuditRecord record;
  record.actor = caller.actor;
  record.at = caller.at;
  record.identity = caller.identity;
  APPBAN_ASSIGN_OR_RETURN(auto transaction, B::BeginWrite(db_));
  APPBAN_RETURN_IF_ERROR(change(record));
  APPBAN_RETURN_IF_ERROR(B::AppendAudit(db_, record));
  return transaction.Commit();
}

template <typename B>
Assessment FleetTables<B>::ReadAssessment(const Statement& row) {
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

Result<sqlite::Transaction> SqliteBackend::BeginWrite(Database& db) { return sqlite::Transaction::Begin(db); }

Result<sqlite::Transaction> SqliteBackend::BeginRead(Database& db) { return sqlite::Transaction::BeginRead(db); }

Status SqliteBackend::AppendAudit(Database& db, const AuditRecord& audit) {
  return sqlite::AppendAuditEntry(db, audit);
}

Status SqliteBackend::AnnounceDevicesChanged(Database&, const std::vector<std::string_view>&, bool) {
  return Status::Ok();
}

Result<SchemaState> SqliteBackend::ReadSchemaState(Database& db) {
  APPBAN_ASSIGN_OR_RETURN(int64_t current, sqlite::ReadSchemaVersion(db));
  return SchemaState{current, sqlite::ExpectedSchemaVersion()};
}

// Both backends (fleet_tables.h).
template class FleetTables<SqliteBackend>;
template class FleetTables<PostgresBackend>;

template Result<ApiToken> ReadApiToken(const sqlite::Statement& row);
template Result<ApiToken> ReadApiToken(const postgres::Statement& row);
template EnrollmentToken ReadEnrollmentToken(const sqlite::Statement& row);
template EnrollmentToken ReadEnrollmentToken(const postgres::Statement& row);
template Device ReadDevice(const sqlite::Statement& row);
template Device ReadDevice(const postgres::Statement& row);
template DeviceEvent ReadEvent(const sqlite::Statement& row);
template DeviceEvent ReadEvent(const postgres::Statement& row);

}  // namespace internal

Result<std::unique_ptr<FleetStore>> OpenSqliteFleetStore(const std::string& path, FleetConnection use) {
  APPBAN_ASSIGN_OR_RETURN(sqlite::Database db, sqlite::OpenStoreDatabase(path));
  if (use == FleetConnection::kBatchWriter) APPBAN_RETURN_IF_ERROR(db.Exec("PRAGMA cache_spill=OFF"));
  return std::unique_ptr<FleetStore>(std::make_unique<internal::FleetTables<internal::SqliteBackend>>(std::move(db)));
}

}  // namespace appban::store
