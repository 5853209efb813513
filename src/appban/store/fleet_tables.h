// Internal to store/: FleetStore written once over a SQL backend (FleetTables<Backend>), and the
// row and audit helpers its parts share. The backends are SqliteBackend (the default: one
// database file; fleet_tables.cc) and PostgresBackend (postgres_store.cc): each supplies its
// connection and statement types (sqlite.h, postgres.h: the same cursor interface), how a write
// or a read-only transaction begins, how an audit entry is chained, and the few words of SQL that
// differ. The SQL text is shared: SQLite's ?N parameters (the PostgreSQL statement renumbers
// them), ON CONFLICT and RETURNING, which both understand.
//
// The class is implemented in six files along its interface's seams, each instantiating it for
// both backends: fleet_tables.cc (shared helpers, statement cache, audit, assessments, settings),
// fleet_tables_tokens.cc (API and enrolment tokens), fleet_tables_devices.cc (enrolment,
// authentication, revocation), fleet_tables_checkins.cc (check-ins, rule states, events),
// fleet_tables_mdm.cc and fleet_tables_users.cc. Nothing outside store/ includes this header.
//
// Thread-safety: as FleetStore — one connection, used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "appban/common/status.h"
#include "appban/policy/model.h"
#include "appban/store/fleet.h"
#include "appban/store/postgres.h"
#include "appban/store/sqlite.h"

namespace appban::store::internal {

// Ids are "<prefix>" + 16 random lowercase hex digits ("d-", "e-", "t-").
Result<std::string> NewId(std::string_view prefix);

// Text that is shown to administrators and written to logs: bounded, no control characters.
Status CheckText(std::string_view text, size_t max_bytes, std::string_view what, bool required);
Status CheckListLimit(int64_t limit);
Status CheckPageLimit(size_t limit);
// A check-in's limits (events, rule states, hashes, inventory size); kInvalidArgument naming the first broken.
Status ValidateCheckin(const CheckinWrite& write);

// What the audit chain records of each object (before/after).
Json ApiTokenJson(const ApiToken& token);
Json EnrollmentTokenJson(const EnrollmentToken& token);
Json DeviceJson(const Device& device);

// Column lists, and the readers that take a row selected with them.
constexpr std::string_view kApiTokenColumns =
    "id, name, role, created_by, created_at, expires_at, revoked_at, COALESCE(user_id, '')";
constexpr std::string_view kUserColumns =
    "id, issuer, subject, display_name, kind, COALESCE(owner_id, ''), granted_role, claim_role, created_at, last_seen, "
    "person_id";
template <typename Row>
Result<User> ReadUser(const Row& row);
Json UserJson(const User& user);
constexpr std::string_view kEnrollmentTokenColumns =
    "id, group_name, created_by, created_at, expires_at, note, used_at, used_by_device, revoked_at, max_uses, uses";
constexpr std::string_view kDeviceColumns =
    "id, hostname, platform, agent_version, group_name, enrolled_at, enrollment_token_id, revoked_at, revoked_by, "
    "applied_version, applied_rules_hash, inventory_hash, inventory_at, last_seen, evaluated_version, "
    "evaluated_inventory_hash, last_event_seq, rules_hash_expected, rules_hash_mismatch_since, source, "
    "mdm_connector, mdm_id, mdm_groups, mdm_pushed_at, mdm_synced_at, mdm_compliant, mdm_compliant_at, "
    "cannot_enforce, mdm_gone_at";
constexpr int kDeviceColumnCount = 29;
constexpr std::string_view kEventColumns = "device_id, seq, at, kind, platform, app, rule_id, detail, received_at";

template <typename Row>
Result<ApiToken> ReadApiToken(const Row& row);
template <typename Row>
EnrollmentToken ReadEnrollmentToken(const Row& row);
template <typename Row>
Device ReadDevice(const Row& row);
// mdm_groups is stored as the group names joined by newlines (names are identifiers).
std::vector<std::string> SplitMdmGroups(std::string_view text);
std::string JoinMdmGroups(const std::vector<std::string>& groups);
template <typename Row>
DeviceEvent ReadEvent(const Row& row);

// Every row `query` selects, each read by `read` (returning T, or Result<T> when a row can fail).
template <typename T, typename Statement, typename Read>
Result<std::vector<T>> ReadRows(Statement& query, Read read) {
  std::vector<T> rows;
  while (true) {
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    if constexpr (std::is_same_v<std::invoke_result_t<Read, const Statement&>, T>) {
      rows.push_back(read(query));
    } else {
      APPBAN_ASSIGN_OR_RETURN(T value, read(query));
      rows.push_back(std::move(value));
    }
  }
  return rows;
}

// The embedded default: the statements of one SQLite file; writes begin IMMEDIATE (the file's
// single writer lock) and the audit entry is chained by the policy store's code, which also
// checkpoints the chain beside the file.
struct SqliteBackend {
  using Database = sqlite::Database;
  using Statement = sqlite::Statement;
  using Transaction = sqlite::Transaction;
  static constexpr std::string_view kName = "sqlite";
  // The larger of two values (SQLite's two-argument MAX; PostgreSQL's GREATEST).
  static constexpr std::string_view kGreatest = "MAX";
  static Result<Transaction> BeginWrite(Database& db);
  static Result<Transaction> BeginRead(Database& db);
  static Status AppendAudit(Database& db, const AuditRecord& audit);
  // Inside a write that changed devices behind the caches (a revocation, check-ins that change more
  // than last_seen): tells the other nodes' device caches when it commits. One machine needs
  // nothing: the server bumps its shared generations itself (server/device_cache.h).
  // `revoked`: the devices were revoked (the nodes also answer their waiting long-polls with 403).
  static Status AnnounceDevicesChanged(Database& db, const std::vector<std::string_view>& device_ids, bool revoked);
  // FleetStore::TakeSharedRateTokens: one machine's limit is the server's shared memory, so all.
  static Result<uint32_t> TakeSharedRateTokens(Database&, std::string_view, uint32_t wanted, uint32_t, uint32_t) {
    return wanted;
  }
  static Result<SchemaState> ReadSchemaState(Database& db);
};

// Several server nodes on one PostgreSQL database. A write transaction first takes the advisory
// lock that serialises every write of the policy store too, so fleet writes from all nodes keep
// SQLite's semantics (one writer at a time: a token counted twice, or a check-in applied over
// another's read, cannot happen) and the audit chain stays linear.
struct PostgresBackend {
  using Database = postgres::Connection;
  using Statement = postgres::Statement;
  using Transaction = postgres::Transaction;
  static constexpr std::string_view kName = "postgresql";
  static constexpr std::string_view kGreatest = "GREATEST";
  static Result<Transaction> BeginWrite(Database& db);
  static Result<Transaction> BeginRead(Database& db);
  static Status AppendAudit(Database& db, const AuditRecord& audit);
  // Inside a write that changed devices behind the caches (a revocation, check-ins that change more
  // than last_seen): tells the other nodes' device caches when it commits. One machine needs
  // nothing: the server bumps its shared generations itself (server/device_cache.h).
  // `revoked`: the devices were revoked (the nodes also answer their waiting long-polls with 403).
  static Status AnnounceDevicesChanged(Database& db, const std::vector<std::string_view>& device_ids, bool revoked);
  // FleetStore::TakeSharedRateTokens.
  static Result<uint32_t> TakeSharedRateTokens(Database& db, std::string_view bucket, uint32_t wanted, uint32_t burst,
                                               uint32_t per_minute);
  static Result<SchemaState> ReadSchemaState(Database& db);
};

template <typename Backend>
class FleetTables final : public FleetStore {
 public:
  using Database = typename Backend::Database;
  using Statement = typename Backend::Statement;
  using Transaction = typename Backend::Transaction;

  explicit FleetTables(Database db) : db_(std::move(db)) {}

  // ---- API tokens ----

  Result<User> RecordSignIn(const SignIn& sign_in, const AuditRecord& audit) override;
  Result<User> GetUser(std::string_view id) override;
  Result<std::vector<User>> ListUsersAfter(std::string_view after_id, size_t limit) override;
  Result<User> CreateServiceAccount(const std::string& name, const std::string& owner_id, Role role,
                                    const AuditRecord& audit) override;
  Result<User> SetGrantedRole(const std::string& user_id, std::optional<Role> role, const AuditRecord& audit) override;
  Result<User> LinkUser(const std::string& user_id, const std::string& same_as, const AuditRecord& audit) override;
  Result<std::vector<std::string>> AccountsOfPerson(const std::string& person_id) override;
  Status EndSession(const std::string& session_id, const std::string& user_id, UnixSeconds ended_at,
                    UnixSeconds expires_at) override;
  Status EndSessionsOfUser(const std::string& user_id, UnixSeconds not_before, const AuditRecord& audit) override;
  Result<bool> SessionEnded(const std::string& session_id, const std::string& user_id, UnixSeconds issued_at) override;
  Result<CreatedApiToken> RecoverAdmin(const AuditRecord& audit) override;

  Result<CreatedApiToken> CreateApiToken(const std::string& user_id, const std::string& name, Role role,
                                         std::optional<UnixSeconds> expires_at, const AuditRecord& audit) override;

  Result<CreatedApiToken> CreateFirstApiToken(const std::string& name, Role role, const AuditRecord& audit) override;

  Result<bool> HasAnyApiToken() override;

  Result<ApiToken> AuthenticateApiToken(std::string_view presented, UnixSeconds now) override;

  Result<std::vector<ApiToken>> ListApiTokens() override;

  Result<std::vector<ApiToken>> ListApiTokensAfter(std::string_view after_id, size_t limit) override;

  Status RevokeApiToken(const std::string& id, const AuditRecord& audit) override;

  // ---- Enrolment tokens ----

  Result<std::vector<CreatedEnrollmentToken>> IssueEnrollmentTokens(const EnrollmentTokenSpec& spec,
                                                                    const AuditRecord& audit) override;

  Result<std::vector<EnrollmentToken>> ListEnrollmentTokens() override;

  Result<std::vector<EnrollmentToken>> ListEnrollmentTokensAfter(std::string_view after_id, size_t limit) override;

  Status RevokeEnrollmentToken(const std::string& id, const AuditRecord& audit) override;

  // ---- Devices (enrolment, authentication, revocation) ----

  Result<Enrollment> EnrollDevice(std::string_view presented_token, const std::string& hostname,
                                  const std::string& platform, const std::string& agent_version,
                                  UnixSeconds now) override;

  Result<std::vector<Result<Enrollment>>> EnrollDevices(std::span<const EnrollmentRequest> requests,
                                                        UnixSeconds now) override;

  Result<Device> AuthenticateDevice(std::string_view presented,
                                    UnixSeconds /*now: credentials do not expire*/) override;

  Result<Device> GetDevice(const std::string& id) override;

  Result<std::vector<Device>> ListDevices(int64_t offset, int64_t limit) override;

  Result<std::vector<Device>> ListDevicesAfter(std::string_view after_id, size_t limit) override;

  Result<int64_t> CountDevices() override;

  Result<int64_t> CountRulesHashMismatches() override;

  Status RevokeDevice(const std::string& id, const AuditRecord& audit) override;

  Result<std::vector<Device>> ListDevicesWhere(const DeviceFilter& filter, std::string_view after_id,
                                               size_t limit) override;

  Result<std::vector<SourceCount>> CountDevicesBySource() override;

  // ---- MDM devices (fleet_tables_mdm.cc) ----

  Result<std::vector<CheckinOutcome>> ImportMdmDevices(std::span<const MdmDeviceWrite> writes,
                                                       UnixSeconds seen_at) override;

  Result<int64_t> MarkMdmDevicesGone(const std::string& connector, UnixSeconds seen_since, UnixSeconds now) override;

  // ---- Check-ins, rule states and events ----

  // Check-ins are device reports, not administrative decisions: they write no audit entries
  // (100k devices would otherwise flood the chain and serialize on its head). What the
  // administrators decide about devices (enrol, revoke) is audited.
  Result<std::vector<CheckinOutcome>> ApplyCheckins(std::span<const CheckinWrite> writes) override;

  Result<std::vector<DeviceRuleState>> ListDeviceRuleStates(const std::string& device_id) override;

  Result<EvaluationInput> GetEvaluationInput(const std::string& device_id, bool with_rule_states) override;

  Result<std::vector<DeviceRuleState>> ListRuleStates(const std::string& rule_id) override;

  Result<RuleStateCounts> CountRuleStates(const std::string& rule_id) override;
  Status ScanRuleStates(std::string_view first_device_id, std::string_view last_device_id,
                        const std::function<void(const RuleStateRow&)>& visit) override;

  Result<std::vector<DeviceEvent>> ListEvents(const std::string& device_id, int64_t limit) override;

  Result<std::vector<DeviceEvent>> ListEventsForRule(const std::string& rule_id, int64_t limit) override;

  // ---- Assessments ----

  Result<bool> PutAssessment(const Assessment& assessment, const AuditRecord& audit) override;

  Result<Assessment> GetAssessment(const std::string& sha256) override;

  Result<std::vector<Assessment>> ListAssessments() override;

  Result<std::vector<Assessment>> ListAssessmentsAfter(const std::optional<AssessmentKey>& after,
                                                       size_t limit) override;

  // ---- Settings ----

  Result<SchemaState> ReadSchemaState() override;
  Result<uint32_t> TakeSharedRateTokens(std::string_view bucket, uint32_t wanted, uint32_t burst,
                                        uint32_t per_minute) override {
    return Backend::TakeSharedRateTokens(db_, bucket, wanted, burst, per_minute);
  }
  Result<std::optional<std::string>> GetSetting(const std::string& key) override;

  Status PutSetting(const std::string& key, const std::string& value) override;

 private:
  // A cached prepared statement, reset (bindings cleared, read snapshot released) when the lease ends.
  class Lease {
   public:
    explicit Lease(Statement* statement) : statement_(statement) {}
    Lease(Lease&& other) noexcept : statement_(std::exchange(other.statement_, nullptr)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (statement_ != nullptr) statement_->Reset();
    }
    Statement& statement() { return *statement_; }

   private:
    Statement* statement_;
  };

  Result<Lease> Cached(const std::string& sql);

  // Runs `change` and appends the audit entry it describes in one transaction. The caller's
  // record supplies actor and time; `change` fills action, object, before and after.
  Status Audited(const AuditRecord& caller, const std::function<Status(AuditRecord&)>& change);

  Result<ApiToken> LoadApiToken(const std::string& id);

  // REQUIRES: inside a transaction. Inserts the token row for `user_id` and fills `record`.
  Status InsertApiTokenRow(const std::string& user_id, const std::string& name, Role role,
                           std::optional<UnixSeconds> expires_at, const std::string& secret, AuditRecord& record,
                           CreatedApiToken& created);
  // REQUIRES: inside a transaction. The bootstrap admin user (created when missing).
  Result<User> EnsureBootstrapUser(UnixSeconds now);

  // What EnrollDevices prepares for one request outside the transaction.
  struct PendingEnrollment {
    std::string token_id;
    std::string token_secret;
    std::string device_secret_hash;
    Enrollment enrollment;  // device fields filled except group
  };

  // Checks a request's text and the token's form and makes the device's id and secret. A non-OK
  // status is the request's refusal, except kUnavailable (no randomness: the batch fails).
  Status PrepareEnrollment(const EnrollmentRequest& request, UnixSeconds now, PendingEnrollment& pending);

  // REQUIRES: inside EnrollDevices' transaction; `pending` prepared. A refusal of this request
  // goes to `refusal` (nothing written for it); the returned status is database trouble, which
  // fails the whole batch.
  Status EnrollOne(const EnrollmentRequest& request, UnixSeconds now, const PendingEnrollment& pending,
                   Enrollment& enrollment, Status& refusal);

  // REQUIRES: inside ImportMdmDevices' transaction; `write.device` validated. Refusals go to `outcome`.
  Status UpsertMdmDevice(const Device& device, UnixSeconds seen_at, CheckinOutcome& outcome);

  // REQUIRES: inside ApplyCheckins' transaction; `write` validated.
  Status ApplyOne(const CheckinWrite& write, CheckinOutcome& outcome);
  // REQUIRES: inside a write transaction. Makes device_apps list the apps of `match_records`.
  Status ReplaceDeviceApps(const std::string& device_id, std::string_view match_records);

  // Columns: (device_id | rule_id), state, since, had_app, compliant_at, version. The first column
  // fills whichever of device_id/rule_id is not given.
  Result<std::vector<DeviceRuleState>> ReadRuleStates(Statement& query, const std::string& device_id,
                                                      const std::string& rule_id);

  Result<std::vector<DeviceEvent>> ReadEvents(Statement& query);

  static Assessment ReadAssessment(const Statement& row);

  Database db_;
  // Hot-path statements, prepared once per connection. Declared after db_: finalized before it closes.
  std::map<std::string, Statement> statements_;
};

}  // namespace appban::store::internal
