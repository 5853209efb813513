// FleetTables: API tokens (administrators) and enrolment tokens (devices).
#include "appban/store/fleet_tables.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace appban::store::internal {

template <typename B>
Result<CreatedApiToken> FleetTables<B>::CreateApiToken(const std::string& user_id, const std::string& name, Role role,
                                                       std::optional<UnixSeconds> expires_at,
                                                       const AuditRecord& audit) {
  APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(name, "API token name"));
  if (expires_at && *expires_at <= audit.at) return Status::InvalidArgument("API token expiry must lie in the future");
  APPBAN_ASSIGN_OR_RETURN(std::string secret, GenerateSecret());
  CreatedApiToken created;
  APPBAN_RETURN_IF_ERROR(Audited(audit, [&](AuditRecord& record) -> Status {
    APPBAN_ASSIGN_OR_RETURN(User user, GetUser(user_id));
    (void)user;
    return InsertApiTokenRow(user_id, name, role, expires_at, secret, record, created);
  }));
  return created;
}

template <typename B>
Result<CreatedApiToken> FleetTables<B>::CreateFirstApiToken(const std::string& name, Role role,
                                                            const AuditRecord& audit) {
  APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(name, "API token name"));
  APPBAN_ASSIGN_OR_RETURN(std::string secret, GenerateSecret());
  CreatedApiToken created;
  APPBAN_RETURN_IF_ERROR(Audited(audit, [&](AuditRecord& record) -> Status {
    // Inside the write transaction: of several processes starting at once, one creates it.
    APPBAN_ASSIGN_OR_RETURN(bool any, HasAnyApiToken());
    if (any) return Status::AlreadyExists("an API token already exists");
    APPBAN_ASSIGN_OR_RETURN(User admin, EnsureBootstrapUser(audit.at));
    return InsertApiTokenRow(admin.id, name, role, std::nullopt, secret, record, created);
  }));
  return created;
}

template <typename B>
Result<CreatedApiToken> FleetTables<B>::RecoverAdmin(const AuditRecord& audit) {
  APPBAN_ASSIGN_OR_RETURN(std::string secret, GenerateSecret());
  CreatedApiToken created;
  APPBAN_RETURN_IF_ERROR(Audited(audit, [&](AuditRecord& record) -> Status {
    APPBAN_ASSIGN_OR_RETURN(User admin, EnsureBootstrapUser(audit.at));
    APPBAN_ASSIGN_OR_RETURN(auto revoke, Statement::Prepare(db_,
                                                            "UPDATE api_tokens SET revoked_at = ?1 "
                                                            "WHERE user_id = ?2 AND revoked_at IS NULL "
                                                            "RETURNING id"));
    revoke.Bind(1, audit.at).Bind(2, admin.id);
    Json revoked = Json::array();
    while (true) {
      APPBAN_ASSIGN_OR_RETURN(bool row, revoke.Step());
      if (!row) break;
      revoked.push_back(revoke.Text(0));
    }
    APPBAN_RETURN_IF_ERROR(
        InsertApiTokenRow(admin.id, "recovered-admin", Role::kAdmin, std::nullopt, secret, record, created));
    record.action = "user.recover-admin";
    record.after["revoked_tokens"] = revoked;
    return Status::Ok();
  }));
  return created;
}

template <typename B>
Result<bool> FleetTables<B>::HasAnyApiToken() {
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT EXISTS(SELECT 1 FROM api_tokens)"));
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  return row && query.Int(0) != 0;
}

template <typename B>
Result<ApiToken> FleetTables<B>::AuthenticateApiToken(std::string_view presented, UnixSeconds now) {
  APPBAN_ASSIGN_OR_RETURN(PresentedSecret parts, SplitPresented(presented));
  if (!parts.id.starts_with("t-")) return Status::InvalidArgument("not an API token");
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kApiTokenColumns) +
                                                                  ", secret_hash FROM api_tokens WHERE id = ?1"));
  query.Bind(1, parts.id);
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  // Unknown id and wrong secret give the same answer: no oracle for which ids exist.
  if (!row || !SecretMatchesHash(parts.secret, query.Text(8))) {
    return Status::NotFound("unknown API token or wrong secret");
  }
  APPBAN_ASSIGN_OR_RETURN(ApiToken token, ReadApiToken(query));
  if (token.revoked_at) return Status::FailedPrecondition("API token " + token.id + " was revoked");
  if (token.expires_at && now >= *token.expires_at) return Status::Expired("API token " + token.id + " has expired");
  return token;
}

template <typename B>
Result<std::vector<ApiToken>> FleetTables<B>::ListApiTokens() {
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kApiTokenColumns) +
                                                                  " FROM api_tokens ORDER BY created_at, id"));
  return ReadRows<ApiToken>(query, ReadApiToken<Statement>);
}

template <typename B>
Result<std::vector<ApiToken>> FleetTables<B>::ListApiTokensAfter(std::string_view after_id, size_t limit) {
  APPBAN_RETURN_IF_ERROR(CheckPageLimit(limit));
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kApiTokenColumns) +
                                                                  " FROM api_tokens WHERE id > ?1 "
                                                                  "ORDER BY id LIMIT ?2"));
  query.Bind(1, after_id).Bind(2, static_cast<int64_t>(limit));
  return ReadRows<ApiToken>(query, ReadApiToken<Statement>);
}

template <typename B>
Status FleetTables<B>::RevokeApiToken(const std::string& id, const AuditRecord& audit) {
  return Audited(audit, [&](AuditRecord& record) -> Status {
    APPBAN_ASSIGN_OR_RETURN(ApiToken token, LoadApiToken(id));
    if (token.revoked_at) return Status::FailedPrecondition("API token " + id + " is already revoked");
    APPBAN_ASSIGN_OR_RETURN(auto update,
                            Statement::Prepare(db_, "UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2"));
    APPBAN_RETURN_IF_ERROR(update.Bind(1, record.at).Bind(2, id).Run());
    record.action = "api_token.revoke";
    record.object = "api_token:" + id;
    record.before = ApiTokenJson(token);
    token.revoked_at = record.at;
    record.after = ApiTokenJson(token);
    return Status::Ok();
  });
}

template <typename B>
Result<std::vector<CreatedEnrollmentToken>> FleetTables<B>::IssueEnrollmentTokens(const EnrollmentTokenSpec& spec,
                                                                                  const AuditRecord& audit) {
  const std::string& group = spec.group;
  const size_t count = spec.count;
  if (!group.empty()) APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(group, "group"));
  APPBAN_RETURN_IF_ERROR(CheckText(spec.note, kFleetLimits.max_note_bytes, "enrolment token note", false));
  if (spec.expires_at <= audit.at) return Status::InvalidArgument("enrolment token expiry must lie in the future");
  if (count == 0 || count > kFleetLimits.max_enrollment_tokens_per_call) {
    return Status::InvalidArgument("enrolment token count must be between 1 and " +
                                   std::to_string(kFleetLimits.max_enrollment_tokens_per_call));
  }
  if (spec.max_uses < 1 || spec.max_uses > kFleetLimits.max_enrollment_token_uses) {
    return Status::InvalidArgument("enrolment token max_uses must be between 1 and " +
                                   std::to_string(kFleetLimits.max_enrollment_token_uses));
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
    entry.token.expires_at = spec.expires_at;
    entry.token.note = spec.note;
    entry.token.max_uses = spec.max_uses;
  }
  APPBAN_ASSIGN_OR_RETURN(auto transaction, B::BeginWrite(db_));
  if (!group.empty()) {
    APPBAN_ASSIGN_OR_RETURN(auto exists,
                            Statement::Prepare(db_, "SELECT EXISTS(SELECT 1 FROM device_groups WHERE name = ?1)"));
    exists.Bind(1, group);
    APPBAN_ASSIGN_OR_RETURN(bool row, exists.Step());
    if (!row || exists.Int(0) == 0) return Status::NotFound("no group " + group);
  }
  APPBAN_ASSIGN_OR_RETURN(auto insert, Statement::Prepare(db_,
                                                          "INSERT INTO enrollment_tokens(id, group_name, secret_hash, "
                                                          "created_by, created_at, expires_at, note, max_uses) "
                                                          "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  for (size_t i = 0; i < count; ++i) {
    const EnrollmentToken& token = created[i].token;
    insert.Reset();
    APPBAN_RETURN_IF_ERROR(insert.Bind(1, token.id)
                               .Bind(2, group)
                               .Bind(3, secret_hashes[i])
                               .Bind(4, token.created_by)
                               .Bind(5, token.created_at)
                               .Bind(6, token.expires_at)
                               .Bind(7, token.note)
                               .Bind(8, token.max_uses)
                               .Run());
    AuditRecord record;
    record.actor = audit.actor;
    record.at = audit.at;
    record.action = "enrollment_token.create";
    record.object = "enrollment_token:" + token.id;
    record.after = EnrollmentTokenJson(token);
    APPBAN_RETURN_IF_ERROR(B::AppendAudit(db_, record));
  }
  APPBAN_RETURN_IF_ERROR(transaction.Commit());
  return created;
}

template <typename B>
Result<std::vector<EnrollmentToken>> FleetTables<B>::ListEnrollmentTokens() {
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kEnrollmentTokenColumns) +
                                                                  " FROM enrollment_tokens ORDER BY created_at, id"));
  return ReadRows<EnrollmentToken>(query, ReadEnrollmentToken<Statement>);
}

template <typename B>
Result<std::vector<EnrollmentToken>> FleetTables<B>::ListEnrollmentTokensAfter(std::string_view after_id,
                                                                               size_t limit) {
  APPBAN_RETURN_IF_ERROR(CheckPageLimit(limit));
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kEnrollmentTokenColumns) +
                                                                  " FROM enrollment_tokens WHERE id > ?1 "
                                                                  "ORDER BY id LIMIT ?2"));
  query.Bind(1, after_id).Bind(2, static_cast<int64_t>(limit));
  return ReadRows<EnrollmentToken>(query, ReadEnrollmentToken<Statement>);
}

template <typename B>
Status FleetTables<B>::RevokeEnrollmentToken(const std::string& id, const AuditRecord& audit) {
  return Audited(audit, [&](AuditRecord& record) -> Status {
    APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kEnrollmentTokenColumns) +
                                                                    " FROM enrollment_tokens WHERE id = ?1"));
    query.Bind(1, id);
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) return Status::NotFound("no enrolment token " + id);
    EnrollmentToken token = ReadEnrollmentToken(query);
    if (token.revoked_at) return Status::FailedPrecondition("enrolment token " + id + " is already revoked");
    APPBAN_ASSIGN_OR_RETURN(auto update,
                            Statement::Prepare(db_, "UPDATE enrollment_tokens SET revoked_at = ?1 WHERE id = ?2"));
    APPBAN_RETURN_IF_ERROR(update.Bind(1, record.at).Bind(2, id).Run());
    record.action = "enrollment_token.revoke";
    record.object = "enrollment_token:" + id;
    record.before = EnrollmentTokenJson(token);
    token.revoked_at = record.at;
    record.after = EnrollmentTokenJson(token);
    return Status::Ok();
  });
}

template <typename B>
Result<ApiToken> FleetTables<B>::LoadApiToken(const std::string& id) {
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kApiTokenColumns) +
                                                                  " FROM api_tokens WHERE id = ?1"));
  query.Bind(1, id);
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) return Status::NotFound("no API token " + id);
  return ReadApiToken(query);
}

template <typename B>
Status FleetTables<B>::InsertApiTokenRow(const std::string& user_id, const std::string& name, Role role,
                                         std::optional<UnixSeconds> expires_at, const std::string& secret,
                                         AuditRecord& record, CreatedApiToken& created) {
  APPBAN_ASSIGN_OR_RETURN(created.token.id, NewId("t-"));
  created.presented = JoinPresented(created.token.id, secret);
  created.token.name = name;
  created.token.user_id = user_id;
  created.token.role = role;
  created.token.created_by = record.actor;
  created.token.created_at = record.at;
  created.token.expires_at = expires_at;
  APPBAN_ASSIGN_OR_RETURN(
      auto insert, Statement::Prepare(db_,
                                      "INSERT INTO api_tokens(id, name, role, secret_hash, created_by, "
                                      "created_at, expires_at, user_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  APPBAN_RETURN_IF_ERROR(insert.Bind(1, created.token.id)
                             .Bind(2, name)
                             .Bind(3, RoleName(role))
                             .Bind(4, HashSecret(secret))
                             .Bind(5, record.actor)
                             .Bind(6, record.at)
                             .Bind(7, expires_at)
                             .Bind(8, user_id)
                             .Run());
  record.action = "api_token.create";
  record.object = "api_token:" + created.token.id;
  record.after = ApiTokenJson(created.token);
  return Status::Ok();
}

// Both backends (fleet_tables.h).
template class FleetTables<SqliteBackend>;
template class FleetTables<PostgresBackend>;

}  // namespace appban::store::internal

namespace appban::store {

// The interface's single-use conveniences.
Result<CreatedEnrollmentToken> FleetStore::CreateEnrollmentToken(const std::string& group, UnixSeconds expires_at,
                                                                 const std::string& note, const AuditRecord& audit) {
  APPBAN_ASSIGN_OR_RETURN(std::vector<CreatedEnrollmentToken> created,
                          CreateEnrollmentTokens(group, expires_at, note, 1, audit));
  return std::move(created.front());
}

Result<std::vector<CreatedEnrollmentToken>> FleetStore::CreateEnrollmentTokens(const std::string& group,
                                                                               UnixSeconds expires_at,
                                                                               const std::string& note, size_t count,
                                                                               const AuditRecord& audit) {
  return IssueEnrollmentTokens(EnrollmentTokenSpec{group, expires_at, note, count, 1}, audit);
}

}  // namespace appban::store
