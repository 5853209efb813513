// The server's fleet data: admin API tokens, enrolment tokens, enrolled devices, their check-in
// reports (events, inventory, applied policy), per-(device, rule) compliance state, uploaded
// assessments and a few server settings. It lives in the SAME database as the policy store
// (store.h), shares its migration sequence and appends every administrative change to the same
// audit hash chain in the transaction that makes the change. No database types appear here.
//
// Secrets are never stored. A token or device credential is 32 random bytes, shown once as
// "<id>.<secret-hex>" (the presented form); the store keeps SHA-256 of the secret and compares in
// constant time.
//
// Several server worker processes open the database at once (one connection each, WAL); writers
// wait for each other (busy timeout) instead of failing. A FleetStore object is NOT thread-safe:
// one per thread/process, like Store.
//
// Authentication results (AuthenticateApiToken, AuthenticateDevice) — the contract the HTTP layer maps:
//   kPermissionDenied   the credential is genuine but its device was revoked          -> HTTP 403
//   kUnavailable        the database is busy or unreachable                           -> HTTP 503
//   kInternal/kCorruption  store trouble                                              -> HTTP 500
//   anything else       not authenticated (kInvalidArgument: malformed presented text; kNotFound:
//                       unknown id or wrong secret, one message for both so the answer is no oracle;
//                       kExpired: expired token; kFailedPrecondition: revoked API token) -> HTTP 401
// IsNotAuthenticated() below encodes that rule so callers do not repeat it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/store/audit.h"

namespace appban::store {

// ---- Limits on what the fleet tables accept (checked before anything is written). ----
struct FleetLimits {
  size_t max_name_bytes = 128;      // token names (also audit actors), groups
  size_t max_hostname_bytes = 253;  // DNS name length limit
  size_t max_platform_bytes = 32;
  size_t max_agent_version_bytes = 64;
  size_t max_note_bytes = 1024;
  size_t max_inventory_json_bytes = 4 * 1024 * 1024;
  size_t max_events_per_checkin = 1000;
  size_t max_rule_states_per_checkin = 10000;
  size_t max_event_field_bytes = 512;  // kind, platform, app, rule_id
  size_t max_event_detail_bytes = 4096;
  size_t max_report_json_bytes = 16 * 1024 * 1024;  // assessment report
  // The largest is the compliance summary the server keeps (~1 KB a rule of the bundle).
  size_t max_setting_bytes = 4 * 1024 * 1024;
  size_t max_list_limit = 100000;                 // rows per List* call
  size_t max_enrollment_tokens_per_call = 10000;  // CreateEnrollmentTokens' count
  // Enrolments one token allows: a fleet image or configuration tool carries one multi-use token
  // for a whole roll-out (docs/agent.md "Enrolling many machines").
  int64_t max_enrollment_token_uses = 1000000;
};
inline constexpr FleetLimits kFleetLimits{};

// ---- Secrets ----
inline constexpr size_t kSecretBytes = 32;
// 32 random bytes (OpenSSL RAND_bytes) as 64 lowercase hex characters.
Result<std::string> GenerateSecret();
// SHA-256 (lowercase hex) of the secret's hex text exactly as presented.
std::string HashSecret(std::string_view secret_hex);
// True when SHA-256(secret_hex) equals `stored_hash`; the comparison is constant-time (CRYPTO_memcmp).
bool SecretMatchesHash(std::string_view secret_hex, std::string_view stored_hash);

struct PresentedSecret {
  std::string id;      // "t-…", "e-…" or "d-…"
  std::string secret;  // 64 lowercase hex characters
};
// "<id>.<secret-hex>" -> parts; kInvalidArgument naming what is malformed (never echoing the secret).
Result<PresentedSecret> SplitPresented(std::string_view text);
std::string JoinPresented(std::string_view id, std::string_view secret_hex);
// The audit action of revoking device `device_id` by `actor`: "device.unenroll" when the device
// revokes itself (actor "device:<id>"), else "device.revoke".
std::string RevokeDeviceAction(std::string_view actor, std::string_view device_id);

// See the authentication contract at the top of this file: true for the HTTP-401 outcomes.
bool IsNotAuthenticated(const Status& status);

enum class Role { kAdmin, kAnalyst, kAuditor };
std::string_view RoleName(Role role);  // "admin", "analyst", "auditor"
Result<Role> ParseRole(std::string_view name);

// ---- Users: people and service accounts (docs/identity.md) ----
//
// A user is an identity, never a typed name: (issuer, subject) at an OpenID Connect provider, or at
// appban's own issuer kLocalIssuer for the bootstrap admin and for service accounts. The two-person
// rule compares user ids; a service account is owned by a human and cannot approve anything.
enum class UserKind { kHuman, kService };
inline constexpr std::string_view kLocalIssuer = "appban:local";
inline constexpr std::string_view kBootstrapSubject = "bootstrap-admin";
// "u-" + the first 24 hex digits of SHA-256(issuer "\n" subject): stable, and a policy identifier.
std::string UserIdFor(std::string_view issuer, std::string_view subject);

struct User {
  std::string id;
  std::string issuer;
  std::string subject;
  std::string display_name;
  UserKind kind = UserKind::kHuman;
  std::string owner_id;              // service accounts: the human who owns it
  std::optional<Role> granted_role;  // granted in appban (audited)
  std::optional<Role> claim_role;    // from the provider's role claim at the last sign-in
  UnixSeconds created_at = 0;
  UnixSeconds last_seen = 0;
  // The person this account belongs to, when an administrator linked it to another account of the
  // same person (a smart card and a provider account, accounts at two providers): that account's
  // id. "" when the account is its own person.
  std::string person_id;

  // The stronger of the granted and the claimed role; none means the user may not use the API.
  std::optional<Role> EffectiveRole() const;
  // The id naming this account's person: person_id, else its own id.
  const std::string& Person() const { return person_id.empty() ? id : person_id; }
};
std::string_view UserKindName(UserKind kind);  // "human", "service"

// What a validated OpenID Connect token says about its bearer.
struct SignIn {
  std::string issuer;
  std::string subject;
  std::string display_name;
  std::optional<Role> claim_role;
  UnixSeconds at = 0;
};

// ---- Admin API tokens ----
struct ApiToken {
  std::string id;       // "t-" + 16 lowercase hex
  std::string name;     // a label for the token ("ci-pipeline"); NOT an identity
  std::string user_id;  // the user it belongs to and acts as
  Role role = Role::kAuditor;
  std::string created_by;
  UnixSeconds created_at = 0;
  std::optional<UnixSeconds> expires_at;
  std::optional<UnixSeconds> revoked_at;
};
struct CreatedApiToken {
  ApiToken token;
  std::string presented;  // shown once; not recoverable later
};

// ---- Enrolment tokens ----
struct EnrollmentToken {
  std::string id;     // "e-" + 16 lowercase hex
  std::string group;  // the device group enrolled devices join; empty for none
  std::string created_by;
  UnixSeconds created_at = 0;
  UnixSeconds expires_at = 0;
  std::string note;
  int64_t max_uses = 1;                // enrolments it allows: 1 for a single-use token
  int64_t uses = 0;                    // enrolments made with it so far (each one audited "device.enroll")
  std::optional<UnixSeconds> used_at;  // the latest enrolment with it
  std::string used_by_device;          // the device of that enrolment; empty until used
  std::optional<UnixSeconds> revoked_at;

  bool Exhausted() const { return uses >= max_uses; }
};
// What IssueEnrollmentTokens makes: `count` tokens alike.
struct EnrollmentTokenSpec {
  std::string group;  // a non-empty group must exist in the policy store
  UnixSeconds expires_at = 0;
  std::string note;
  size_t count = 1;      // 1 .. FleetLimits::max_enrollment_tokens_per_call
  int64_t max_uses = 1;  // 1 .. FleetLimits::max_enrollment_token_uses, for each token
};
struct CreatedEnrollmentToken {
  EnrollmentToken token;
  std::string presented;
};

// ---- Devices ----
// A device whose reported rules_hash is not the hash of the bundle version it claims to enforce
// (verify/rules_hash.h decides). The claim itself is the device's applied_version and
// applied_rules_hash.
struct RulesHashMismatch {
  std::string expected_hash;  // of the claimed version as issued; empty: no such version was issued
  UnixSeconds since = 0;      // the first check-in of this mismatch
  bool operator==(const RulesHashMismatch&) const = default;
};

struct Device {
  std::string id;  // "d-" + 16 lowercase hex
  std::string hostname;
  std::string platform;  // "linux", "android", ...
  std::string agent_version;
  std::string group;  // from the enrolment token; empty for none (policy groups may list the id too)
  UnixSeconds enrolled_at = 0;
  std::string enrollment_token_id;
  std::optional<UnixSeconds> revoked_at;
  std::string revoked_by;
  int64_t applied_version = 0;  // policy bundle version the device reports applied (0: none)
  std::string applied_rules_hash;
  std::string inventory_hash;
  std::string inventory_json;  // canonical text; filled by GetDevice only (List* leaves it empty)
  std::optional<UnixSeconds> inventory_at;
  UnixSeconds last_seen = 0;
  int64_t evaluated_version = 0;  // bundle version the server last evaluated this device against
  std::string evaluated_inventory_hash;
  int64_t last_event_seq = 0;  // highest event seq stored for the device
  // Set while the device reports a rules_hash that is not the hash of the bundle version it
  // claims (applied_version, applied_rules_hash): it is then compliant with nothing.
  std::optional<RulesHashMismatch> rules_hash_mismatch;

  // Where the device comes from: "agent" (enrolled, checks in) or an MDM connector's kind
  // ("amapi", "intune", "apple-mdm"): imported from that MDM's inventory, never enrolled, no
  // credential (its id starts "m-", so it can never authenticate on the device protocol).
  std::string source = std::string(kAgentSource);
  std::string mdm_connector;                    // the configured connector's name
  std::string mdm_id;                           // the MDM's own id of the device
  std::vector<std::string> mdm_groups;          // appban groups the connector config puts it in
  std::optional<UnixSeconds> mdm_pushed_at;     // appban last pushed the device's policy to the MDM
  std::optional<UnixSeconds> mdm_synced_at;     // the device last synced with its MDM
  std::optional<bool> mdm_compliant;            // the MDM's own verdict, when it has one
  std::optional<UnixSeconds> mdm_compliant_at;  // since when the MDM reports it compliant
  std::string cannot_enforce;                   // non-empty: why the MDM cannot enforce bans on it
  std::optional<UnixSeconds> mdm_gone_at;       // its MDM no longer lists it

  bool IsMdm() const { return source != kAgentSource; }
  static constexpr std::string_view kAgentSource = "agent";
};

// Which devices a listing returns; empty fields match every device, and a device must match every
// field that is set. Text is matched literally: `%` and `_` are not wildcards.
// Each member has `{}` so that a designated initializer may name only the fields it sets.
struct DeviceFilter {
  std::string source{};    // "agent", "amapi", ...
  std::string platform{};  // "linux", "android", ...
  // The host name starts with this, ASCII letters compared case-insensitively ("LAPTOP-" finds
  // "laptop-0042"). A prefix rather than a substring so the search reads an index
  // (devices_by_hostname) instead of every row of a 100,000-device fleet.
  std::string hostname_prefix{};
  std::string id_prefix{};  // the device id starts with this (byte for byte)
  // An app id (package, bundle or Flatpak id, exactly) in the device's latest inventory, found
  // through the device_apps index written with each inventory.
  std::string app{};
};

struct Enrollment {
  Device device;
  std::string credential;  // presented form "<device id>.<secret>", shown once
  std::string group;       // == device.group
};
// One device's enrolment as presented (POST /v1/enroll), for EnrollDevices.
struct EnrollmentRequest {
  std::string presented_token;  // "<token id>.<secret>"
  std::string hostname;
  std::string platform;
  std::string agent_version;
};

// ---- Check-ins (device reports; written in batches by the server: group commit) ----
struct DeviceEvent {
  std::string device_id;
  int64_t seq = 0;  // the device's own increasing counter; (device_id, seq) is stored once
  UnixSeconds at = 0;
  std::string kind;  // "removed", "install_refused", "removal_failed", "waiver_applied", ...
  std::string platform;
  std::string app;
  std::string rule_id;
  std::string detail;
  UnixSeconds received_at = 0;
};

enum class ComplianceState { kCompliant, kViolating, kWaived };
std::string_view ComplianceStateName(ComplianceState state);  // "compliant", "violating", "waived"
Result<ComplianceState> ParseComplianceState(std::string_view name);

struct DeviceRuleState {
  std::string device_id;
  std::string rule_id;
  ComplianceState state = ComplianceState::kCompliant;
  UnixSeconds since = 0;                    // when the device entered `state`
  bool had_app = false;                     // the device had a matching app when it first evaluated the rule
  std::optional<UnixSeconds> compliant_at;  // first time compliant
  int64_t version = 0;                      // bundle version evaluated
};
// One stored rule state as ScanRuleStates passes it: views into the row being read, valid during
// the visit only (a fleet-wide read makes no copy of 5 million ids).
struct RuleStateRow {
  std::string_view device_id;
  std::string_view rule_id;
  ComplianceState state = ComplianceState::kCompliant;
  bool had_app = false;
  std::optional<UnixSeconds> compliant_at;
};
// Per-state device counts of one rule.
struct RuleStateCounts {
  int64_t compliant = 0;
  int64_t violating = 0;
  int64_t waived = 0;
};

struct AppliedPolicy {
  int64_t version = 0;
  std::string rules_hash;
};
struct InventoryUpdate {
  std::string hash;
  std::string canonical_json;
  std::string match_records;  // EncodeMatchRecords of the same apps (store/match_records.h)
  UnixSeconds at = 0;
};
struct EvaluationMark {
  int64_t version = 0;
  std::string inventory_hash;
};
// Replaces the device's stored rules_hash_mismatch: nullopt clears it (the hash matches again).
struct RulesHashUpdate {
  std::optional<RulesHashMismatch> mismatch;
};
struct CheckinWrite {
  std::string device_id;
  UnixSeconds last_seen = 0;
  std::optional<AppliedPolicy> applied;
  std::optional<InventoryUpdate> inventory;
  std::optional<EvaluationMark> evaluated;    // what the server evaluated the device against
  std::vector<DeviceEvent> events;            // device_id of each event is taken from the write
  std::vector<DeviceRuleState> rule_states;   // upserted (device_id taken from the write)
  std::vector<std::string> cleared_rule_ids;  // rule states to delete (rule no longer in force)
  std::optional<RulesHashUpdate> rules_hash;  // set when the device's rules-hash verdict changed
};
// True when the write changes the device's row beyond last_seen (what the servers' device caches
// hold: server/device_cache.h).
bool ChangesMoreThanLastSeen(const CheckinWrite& write);

struct EvaluationInput {
  // Both empty: the device never sent an inventory.
  std::optional<std::string> match_records;   // of the stored inventory (store/match_records.h)
  std::optional<std::string> inventory_json;  // only for an inventory stored before match records
  std::vector<DeviceRuleState> rule_states;   // ordered by rule_id
};
struct CheckinOutcome {
  std::string device_id;
  // OK: written. kNotFound: no such device. kPermissionDenied: device revoked. kInvalidArgument:
  // a limit was exceeded. A refused write changes nothing and does not affect the others.
  Status status;
  int64_t highest_seq = 0;  // highest event seq stored for the device after the batch
};

// One MDM device as an import writes it (mdm/fleet_import.h builds these): the devices row is
// inserted or updated from `device` (id, hostname, platform, source, mdm_*, cannot_enforce,
// last_seen = the MDM's last sync), then `checkin` (inventory, evaluation, rule states; its
// device_id is the device's) is applied exactly as an agent's check-in.
struct MdmDeviceWrite {
  Device device;
  CheckinWrite checkin;
};
struct SourceCount {
  std::string source;
  std::string platform;
  int64_t devices = 0;
  int64_t cannot_enforce = 0;
};

// ---- Assessments ----
struct Assessment {
  std::string sha256;  // of the APK, lowercase hex; the key
  std::string package;
  std::string version;
  double score = 0;
  std::string band;         // verdict band text from the assessment
  std::string report_json;  // empty in ListAssessments
  std::string uploaded_by;
  UnixSeconds uploaded_at = 0;
  int64_t file_size = 0;
};

// Where an assessment sits in ListAssessments' order.
struct AssessmentKey {
  UnixSeconds uploaded_at = 0;
  std::string sha256;
};

// The schema version a database is at against the one this appban migrates it to: a server
// serves only while they are equal (GET /readyz). Newer: another node of a later appban migrated
// the database; older: this process's migrations have not run on it.
struct SchemaState {
  int64_t current = 0;
  int64_t expected = 0;
  bool Current() const { return current == expected; }
};

// Audit records passed to mutations: the caller supplies `actor` and `at`; the store fills
// `action`, `object`, `before` and `after` (whatever the caller put there is replaced), so every
// entry describes the change exactly and never contains a secret.
class FleetStore {
 public:
  virtual ~FleetStore() = default;

  // -- Users --
  // The user a validated token signs in: created on first sign-in (audited "user.create"); display
  // name and claimed role refreshed when they changed (audited "user.update"); last_seen advanced
  // at most once a minute (not audited).
  virtual Result<User> RecordSignIn(const SignIn& sign_in, const AuditRecord& audit) = 0;
  // kNotFound when there is no such user.
  virtual Result<User> GetUser(std::string_view id) = 0;
  virtual Result<std::vector<User>> ListUsersAfter(std::string_view after_id, size_t limit) = 0;
  // A service account (issuer kLocalIssuer, subject "service:<name>") owned by the human
  // `owner_id`; kAlreadyExists when the name is taken; kInvalidArgument when the owner is not a human.
  virtual Result<User> CreateServiceAccount(const std::string& name, const std::string& owner_id, Role role,
                                            const AuditRecord& audit) = 0;
  // Records that `user_id` and `same_as` are accounts of one person (audited "user.link"): the
  // two-person rule then counts them once. Both must be humans. `user_id` (and any account linked
  // to it) joins `same_as`'s person. Links are permanent: kFailedPrecondition when `user_id`
  // already belongs to another person, since moving it would split a person in two.
  virtual Result<User> LinkUser(const std::string& user_id, const std::string& same_as, const AuditRecord& audit) = 0;
  // Every account of person `person_id` (User::Person()), that one included, ordered by id.
  virtual Result<std::vector<std::string>> AccountsOfPerson(const std::string& person_id) = 0;

  // -- Console sessions ended on the server (docs/console.md) --
  // A session is a signed cookie every worker can read; these make the server forget one. Ends
  // session `session_id` of `user_id` (signed out at `ended_at`); the row is kept until
  // `expires_at`, when the cookie is dead anyway (older rows are pruned here). Idempotent.
  virtual Status EndSession(const std::string& session_id, const std::string& user_id, UnixSeconds ended_at,
                            UnixSeconds expires_at) = 0;
  // Ends every session of `user_id` issued before `not_before` (a stolen laptop, a person who
  // left); audited "user.end-sessions". kNotFound when there is no such user.
  virtual Status EndSessionsOfUser(const std::string& user_id, UnixSeconds not_before, const AuditRecord& audit) = 0;
  // Whether the session (its id, user and issue time) was ended by either of the above.
  virtual Result<bool> SessionEnded(const std::string& session_id, const std::string& user_id,
                                    UnixSeconds issued_at) = 0;
  // Grants (or with nullopt withdraws) a role in appban; audited "user.grant-role".
  virtual Result<User> SetGrantedRole(const std::string& user_id, std::optional<Role> role,
                                      const AuditRecord& audit) = 0;
  // `appban server recover-admin`: revokes every unrevoked token of the bootstrap admin and issues
  // a new admin token for it, in one transaction (audited "user.recover-admin").
  virtual Result<CreatedApiToken> RecoverAdmin(const AuditRecord& audit) = 0;

  // -- API tokens --
  // A token for `user_id` (which must exist). `name` is a label, a policy identifier. The caller
  // checks who may mint it (the user themself, or the owner of a service account).
  virtual Result<CreatedApiToken> CreateApiToken(const std::string& user_id, const std::string& name, Role role,
                                                 std::optional<UnixSeconds> expires_at, const AuditRecord& audit) = 0;
  // First start: creates the bootstrap admin user and its token only when no API token exists at
  // all, atomically across processes; kAlreadyExists otherwise. Audited with actor audit.actor.
  virtual Result<CreatedApiToken> CreateFirstApiToken(const std::string& name, Role role, const AuditRecord& audit) = 0;
  virtual Result<bool> HasAnyApiToken() = 0;
  virtual Result<ApiToken> AuthenticateApiToken(std::string_view presented, UnixSeconds now) = 0;
  virtual Result<std::vector<ApiToken>> ListApiTokens() = 0;
  // Keyset pages (the admin API lists through these): at most `limit` (1 ..
  // FleetLimits::max_list_limit) rows whose id is greater than `after_id` ("": from the first),
  // ordered by id. Only those rows are read (the primary key's index), so the last page of a long
  // list costs what the first does.
  virtual Result<std::vector<ApiToken>> ListApiTokensAfter(std::string_view after_id, size_t limit) = 0;
  // kNotFound for no such token; kFailedPrecondition when already revoked.
  virtual Status RevokeApiToken(const std::string& id, const AuditRecord& audit) = 0;

  // -- Enrolment tokens --
  // `spec.count` tokens alike, in ONE transaction: all are created or none (one fsync for a
  // thousand tokens instead of a thousand). Each token gets its own "enrollment_token.create"
  // audit entry in that transaction, so the audit log reads the same whichever way the tokens
  // were made. kNotFound for a group that does not exist; kInvalidArgument for an expiry not
  // after audit.at, a count or max_uses out of range.
  virtual Result<std::vector<CreatedEnrollmentToken>> IssueEnrollmentTokens(const EnrollmentTokenSpec& spec,
                                                                            const AuditRecord& audit) = 0;
  // Single-use tokens through IssueEnrollmentTokens.
  Result<CreatedEnrollmentToken> CreateEnrollmentToken(const std::string& group, UnixSeconds expires_at,
                                                       const std::string& note, const AuditRecord& audit);
  Result<std::vector<CreatedEnrollmentToken>> CreateEnrollmentTokens(const std::string& group, UnixSeconds expires_at,
                                                                     const std::string& note, size_t count,
                                                                     const AuditRecord& audit);
  virtual Result<std::vector<EnrollmentToken>> ListEnrollmentTokens() = 0;
  virtual Result<std::vector<EnrollmentToken>> ListEnrollmentTokensAfter(std::string_view after_id, size_t limit) = 0;
  virtual Status RevokeEnrollmentToken(const std::string& id, const AuditRecord& audit) = 0;

  // -- Devices --
  // One transaction: the token must exist (kNotFound), have a use left (kFailedPrecondition
  // "already used"), not be revoked (kFailedPrecondition "revoked"), not expired (kExpired); its
  // use is counted, the device created and "device.enroll" audited with actor
  // "enrollment:<token id>". The count of uses holds across processes: a token allowing N
  // enrolments enrols N devices however many nodes present it at once.
  virtual Result<Enrollment> EnrollDevice(std::string_view presented_token, const std::string& hostname,
                                          const std::string& platform, const std::string& agent_version,
                                          UnixSeconds now) = 0;
  // Group commit of enrolments: every request as EnrollDevice would handle it, all in ONE
  // transaction (one fsync for the batch). The outer Result is an error only when nothing was
  // written (database trouble: the whole batch rolled back). Otherwise outcome i belongs to
  // requests[i], with EnrollDevice's codes and messages; a refused request writes nothing and does
  // not affect the others. Requests are applied in order inside the transaction, so of two
  // requests presenting the same token the first wins and the second is refused "already used";
  // BEGIN IMMEDIATE keeps single use across processes as for EnrollDevice. Each enrolment appends
  // its own "device.enroll" audit entry (actor "enrollment:<token id>") in that transaction.
  virtual Result<std::vector<Result<Enrollment>>> EnrollDevices(std::span<const EnrollmentRequest> requests,
                                                                UnixSeconds now) = 0;
  // The device without inventory_json. Revoked device: kPermissionDenied.
  virtual Result<Device> AuthenticateDevice(std::string_view presented, UnixSeconds now) = 0;
  // With inventory_json. kNotFound when absent.
  virtual Result<Device> GetDevice(const std::string& id) = 0;
  // Ordered by id; inventory_json left empty.
  virtual Result<std::vector<Device>> ListDevices(int64_t offset, int64_t limit) = 0;
  // A keyset page as ListApiTokensAfter; inventory_json left empty.
  virtual Result<std::vector<Device>> ListDevicesAfter(std::string_view after_id, size_t limit) = 0;
  virtual Result<int64_t> CountDevices() = 0;
  // Non-revoked devices with a rules_hash_mismatch (a partial index: cheap at scrape time).
  virtual Result<int64_t> CountRulesHashMismatches() = 0;
  // kNotFound; kFailedPrecondition when already revoked. revoked_by = audit.actor.
  // Audited "device.revoke", or "device.unenroll" when the actor is the device itself
  // ("device:<id>", `appban agent unenrol`): RevokeDeviceAction.
  virtual Status RevokeDevice(const std::string& id, const AuditRecord& audit) = 0;
  // A keyset page as ListDevicesAfter, of the devices `filter` selects (indexed by source, platform,
  // host name and installed app).
  virtual Result<std::vector<Device>> ListDevicesWhere(const DeviceFilter& filter, std::string_view after_id,
                                                       size_t limit) = 0;
  // Non-revoked devices per (source, platform), and how many of them are cannot-enforce.
  virtual Result<std::vector<SourceCount>> CountDevicesBySource() = 0;

  // -- MDM devices (mdm/fleet_import.h) --
  // Inserts or updates each device and applies its check-in, all in ONE transaction (one fsync
  // per page of an MDM's inventory); every device imported is stamped seen at `seen_at` and its
  // gone mark cleared. Per-device refusals (a limit, a device id that is an agent's) are in the
  // outcomes; an error Result means nothing was written. Not audited: like check-ins, these are
  // device reports (the pushes that caused them are).
  virtual Result<std::vector<CheckinOutcome>> ImportMdmDevices(std::span<const MdmDeviceWrite> writes,
                                                               UnixSeconds seen_at) = 0;
  // Marks every device of `connector` not imported since `seen_since` as gone (mdm_gone_at = now,
  // cannot_enforce "no longer listed by the MDM"), so a phone that left the MDM is never kept
  // compliant from its last report. Returns how many were newly marked.
  virtual Result<int64_t> MarkMdmDevicesGone(const std::string& connector, UnixSeconds seen_since, UnixSeconds now) = 0;

  // -- Check-ins --
  // All writes in ONE transaction (one fsync for the batch). Per-write refusals are reported in
  // the outcome (same order as `writes`); an error Result means nothing was written.
  virtual Result<std::vector<CheckinOutcome>> ApplyCheckins(std::span<const CheckinWrite> writes) = 0;
  virtual Result<std::vector<DeviceRuleState>> ListDeviceRuleStates(const std::string& device_id) = 0;
  // What re-evaluating one device against a new bundle reads, in one read snapshot: its stored
  // match records and (with_rule_states) its rule states. kNotFound when the device does not
  // exist. A device never evaluated (evaluated_version 0) has no rule states to read.
  virtual Result<EvaluationInput> GetEvaluationInput(const std::string& device_id, bool with_rule_states) = 0;
  // Every device's state for one rule, from a covering index, in no particular order; rule_id of
  // the returned structs is left empty (it is the argument) to keep 100k-device answers compact.
  virtual Result<std::vector<DeviceRuleState>> ListRuleStates(const std::string& rule_id) = 0;
  virtual Result<RuleStateCounts> CountRuleStates(const std::string& rule_id) = 0;
  // The stored states of every rule for the devices whose ids lie in [first_device_id,
  // last_device_id], in (device id, rule id) order — the table's own key, so no sort and each
  // device's rows together — passed to `visit` one at a time. For fleet-wide compliance: the
  // caller reads the fleet in ranges of its own device list, so a range bounds what one query
  // holds (PostgreSQL's client receives a query's rows at once).
  virtual Status ScanRuleStates(std::string_view first_device_id, std::string_view last_device_id,
                                const std::function<void(const RuleStateRow&)>& visit) = 0;
  // Newest first by the device's seq.
  virtual Result<std::vector<DeviceEvent>> ListEvents(const std::string& device_id, int64_t limit) = 0;
  // Newest first by received_at (indexed by rule).
  virtual Result<std::vector<DeviceEvent>> ListEventsForRule(const std::string& rule_id, int64_t limit) = 0;

  // -- Assessments --
  // Idempotent on sha256: returns true when stored (and audited), false when it already existed.
  virtual Result<bool> PutAssessment(const Assessment& assessment, const AuditRecord& audit) = 0;
  virtual Result<Assessment> GetAssessment(const std::string& sha256) = 0;
  // Newest first, report_json left empty.
  virtual Result<std::vector<Assessment>> ListAssessments() = 0;
  // A keyset page of ListAssessments' order (newest first; uploaded_at, then sha256, descending —
  // unique, so a page boundary never splits or repeats an upload): at most `limit` (1 ..
  // FleetLimits::max_list_limit) assessments that come after `after` (nullopt: from the newest).
  virtual Result<std::vector<Assessment>> ListAssessmentsAfter(const std::optional<AssessmentKey>& after,
                                                               size_t limit) = 0;

  // -- Readiness --
  // Reads the database's schema version on this connection: an answer proves the database
  // reachable; kUnavailable (busy, unreachable) or another error says why it is not.
  virtual Result<SchemaState> ReadSchemaState() = 0;

  // -- Rate limits every node shares --
  // Takes up to `wanted` tokens from the token bucket `bucket` ("enroll:<address>", ...), which
  // holds at most `burst` and refills at `per_minute`, and answers how many it got. On PostgreSQL
  // the bucket is a row every node updates under its row lock, on the database's clock, so a limit
  // holds for the cluster rather than once per node. On SQLite (one machine, whose workers share
  // their limit in memory: server/shared_rate_limiter.h) it grants all.
  virtual Result<uint32_t> TakeSharedRateTokens(std::string_view bucket, uint32_t wanted, uint32_t burst,
                                                uint32_t per_minute) = 0;

  // -- Server settings (first-start bookkeeping, not administrative decisions: not audited) --
  virtual Result<std::optional<std::string>> GetSetting(const std::string& key) = 0;
  virtual Status PutSetting(const std::string& key, const std::string& value) = 0;
};

// How a connection will be used.
enum class FleetConnection {
  kGeneral,
  // Commits large ApplyCheckins batches (the server's check-in writer): dirty pages stay in memory
  // until the commit instead of being spilled to the WAL mid-transaction (cache_spill=OFF), so a
  // batch writes each page once. Memory grows with the batch, about 3.5 pages per check-in.
  kBatchWriter,
};
// Opens (creating if needed) the database at `path` — the same file as OpenSqliteStore — applying
// pending migrations.
Result<std::unique_ptr<FleetStore>> OpenSqliteFleetStore(const std::string& path,
                                                         FleetConnection use = FleetConnection::kGeneral);

}  // namespace appban::store
