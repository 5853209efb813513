// FleetTables: users — people signed in through OpenID Connect, the bootstrap admin and
// service accounts (fleet.h, "Users").
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "appban/common/crypto.h"
#include "appban/store/fleet_tables.h"

namespace appban::store {

std::string UserIdFor(std::string_view issuer, std::string_view subject) {
  std::string key(issuer);
  key += '\n';
  key += subject;
  return "u-" + Sha256Hex(AsBytes(key)).substr(0, 24);
}

std::string_view UserKindName(UserKind kind) { return kind == UserKind::kHuman ? "human" : "service"; }

std::optional<Role> User::EffectiveRole() const {
  // Role enumerators run from the strongest (admin) to the weakest (auditor).
  if (granted_role && claim_role) return std::min(*granted_role, *claim_role);
  return granted_role ? granted_role : claim_role;
}

namespace internal {
namespace {

// Bounds on what a provider's token may put into a user row.
constexpr size_t kMaxIssuerBytes = 512;
constexpr size_t kMaxSubjectBytes = 255;  // OpenID Connect Core 1.0 §2: sub is at most 255 ASCII characters
constexpr size_t kMaxDisplayNameBytes = 200;
// last_seen is advanced at most this often, so signing in is not a write per request.
constexpr UnixSeconds kLastSeenResolution = 60;

std::optional<std::string> OptionalRoleName(const std::optional<Role>& role) {
  if (!role) return std::nullopt;
  return std::string(RoleName(*role));
}

template <typename Row>
Result<std::optional<Role>> ReadOptionalRole(const Row& row, int column) {
  if (row.IsNull(column)) return std::optional<Role>();
  APPBAN_ASSIGN_OR_RETURN(Role role, ParseRole(row.Text(column)));
  return std::optional<Role>(role);
}

template <typename Statement>
void BindOptionalText(Statement& statement, int index, const std::optional<std::string>& text) {
  if (text) {
    statement.Bind(index, *text);
  } else {
    statement.BindNull(index);
  }
}

}  // namespace

template <typename Row>
Result<User> ReadUser(const Row& row) {
  User user;
  user.id = row.Text(0);
  user.issuer = row.Text(1);
  user.subject = row.Text(2);
  user.display_name = row.Text(3);
  user.kind = row.Text(4) == "service" ? UserKind::kService : UserKind::kHuman;
  user.owner_id = row.Text(5);
  APPBAN_ASSIGN_OR_RETURN(user.granted_role, ReadOptionalRole(row, 6));
  APPBAN_ASSIGN_OR_RETURN(user.claim_role, ReadOptionalRole(row, 7));
  user.created_at = row.Int(8);
  user.last_seen = row.Int(9);
  user.person_id = row.Text(10);
  return user;
}

Json UserJson(const User& user) {
  auto role_json = [](const std::optional<Role>& role) -> Json {
    if (!role) return nullptr;
    return std::string(RoleName(*role));
  };
  auto effective = user.EffectiveRole();
  return Json{{"id", user.id},
              {"issuer", user.issuer},
              {"subject", user.subject},
              {"display_name", user.display_name},
              {"kind", std::string(UserKindName(user.kind))},
              {"owner_id", user.owner_id.empty() ? Json(nullptr) : Json(user.owner_id)},
              {"granted_role", role_json(user.granted_role)},
              {"claim_role", role_json(user.claim_role)},
              {"role", role_json(effective)},
              {"person_id", user.person_id.empty() ? Json(nullptr) : Json(user.person_id)},
              {"created_at", FormatTimestamp(user.created_at)}};
}

template <typename B>
Result<User> FleetTables<B>::GetUser(std::string_view id) {
  APPBAN_ASSIGN_OR_RETURN(auto query,
                          Statement::Prepare(db_, "SELECT " + std::string(kUserColumns) + " FROM users WHERE id = ?1"));
  query.Bind(1, id);
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) return Status::NotFound("no user " + std::string(id));
  return ReadUser(query);
}

template <typename B>
Result<std::vector<User>> FleetTables<B>::ListUsersAfter(std::string_view after_id, size_t limit) {
  APPBAN_RETURN_IF_ERROR(CheckPageLimit(limit));
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kUserColumns) +
                                                                  " FROM users WHERE id > ?1 ORDER BY id LIMIT ?2"));
  query.Bind(1, after_id).Bind(2, static_cast<int64_t>(limit));
  return ReadRows<User>(query, ReadUser<Statement>);
}

template <typename B>
Result<User> FleetTables<B>::RecordSignIn(const SignIn& sign_in, const AuditRecord& audit) {
  APPBAN_RETURN_IF_ERROR(CheckText(sign_in.issuer, kMaxIssuerBytes, "issuer", true));
  APPBAN_RETURN_IF_ERROR(CheckText(sign_in.subject, kMaxSubjectBytes, "subject", true));
  std::string display = sign_in.display_name.empty() ? sign_in.subject : sign_in.display_name;
  if (display.size() > kMaxDisplayNameBytes) display.resize(kMaxDisplayNameBytes);
  APPBAN_RETURN_IF_ERROR(CheckText(display, kMaxDisplayNameBytes, "display name", true));
  std::string id = UserIdFor(sign_in.issuer, sign_in.subject);

  auto existing = GetUser(id);
  if (existing.ok() && existing->display_name == display && existing->claim_role == sign_in.claim_role) {
    if (sign_in.at - existing->last_seen < kLastSeenResolution) return *existing;
    APPBAN_ASSIGN_OR_RETURN(auto touch, Statement::Prepare(db_, "UPDATE users SET last_seen = ?1 WHERE id = ?2"));
    APPBAN_RETURN_IF_ERROR(touch.Bind(1, sign_in.at).Bind(2, id).Run());
    existing->last_seen = sign_in.at;
    return *existing;
  }
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) return existing.status();

  User user;
  APPBAN_RETURN_IF_ERROR(Audited(audit, [&](AuditRecord& record) -> Status {
    auto before = GetUser(id);
    if (before.ok()) {
      if (before->kind != UserKind::kHuman) {
        return Status::PermissionDenied("user " + id + " is a service account and cannot sign in");
      }
      user = *before;
      record.action = "user.update";
      record.before = UserJson(*before);
      APPBAN_ASSIGN_OR_RETURN(auto update, Statement::Prepare(db_,
                                                              "UPDATE users SET display_name = ?1, claim_role = ?2, "
                                                              "last_seen = ?3 WHERE id = ?4"));
      update.Bind(1, display);
      BindOptionalText(update, 2, OptionalRoleName(sign_in.claim_role));
      APPBAN_RETURN_IF_ERROR(update.Bind(3, sign_in.at).Bind(4, id).Run());
    } else if (before.status().code() == StatusCode::kNotFound) {
      user.id = id;
      user.issuer = sign_in.issuer;
      user.subject = sign_in.subject;
      user.created_at = sign_in.at;
      record.action = "user.create";
      APPBAN_ASSIGN_OR_RETURN(auto insert,
                              Statement::Prepare(db_,
                                                 "INSERT INTO users(id, issuer, subject, display_name, kind, "
                                                 "claim_role, created_at, last_seen) "
                                                 "VALUES(?1, ?2, ?3, ?4, 'human', ?5, ?6, ?6)"));
      insert.Bind(1, id).Bind(2, sign_in.issuer).Bind(3, sign_in.subject).Bind(4, display);
      BindOptionalText(insert, 5, OptionalRoleName(sign_in.claim_role));
      APPBAN_RETURN_IF_ERROR(insert.Bind(6, sign_in.at).Run());
    } else {
      return before.status();
    }
    user.display_name = display;
    user.claim_role = sign_in.claim_role;
    user.last_seen = sign_in.at;
    record.object = "user:" + id;
    record.after = UserJson(user);
    return Status::Ok();
  }));
  return user;
}

template <typename B>
Result<User> FleetTables<B>::CreateServiceAccount(const std::string& name, const std::string& owner_id, Role role,
                                                  const AuditRecord& audit) {
  APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(name, "service account name"));
  User user;
  user.issuer = std::string(kLocalIssuer);
  user.subject = "service:" + name;
  user.id = UserIdFor(user.issuer, user.subject);
  user.display_name = name;
  user.kind = UserKind::kService;
  user.owner_id = owner_id;
  user.granted_role = role;
  user.created_at = audit.at;
  user.last_seen = audit.at;
  APPBAN_RETURN_IF_ERROR(Audited(audit, [&](AuditRecord& record) -> Status {
    APPBAN_ASSIGN_OR_RETURN(User owner, GetUser(owner_id));
    if (owner.kind != UserKind::kHuman) {
      return Status::InvalidArgument("a service account is owned by a person; " + owner_id + " is a service account");
    }
    if (GetUser(user.id).ok()) return Status::AlreadyExists("service account " + name + " already exists");
    APPBAN_ASSIGN_OR_RETURN(auto insert,
                            Statement::Prepare(db_,
                                               "INSERT INTO users(id, issuer, subject, display_name, kind, "
                                               "owner_id, granted_role, created_at, last_seen) "
                                               "VALUES(?1, ?2, ?3, ?4, 'service', ?5, ?6, ?7, ?7)"));
    APPBAN_RETURN_IF_ERROR(insert.Bind(1, user.id)
                               .Bind(2, user.issuer)
                               .Bind(3, user.subject)
                               .Bind(4, user.display_name)
                               .Bind(5, owner_id)
                               .Bind(6, RoleName(role))
                               .Bind(7, audit.at)
                               .Run());
    record.action = "user.create-service-account";
    record.object = "user:" + user.id;
    record.after = UserJson(user);
    return Status::Ok();
  }));
  return user;
}

template <typename B>
Result<User> FleetTables<B>::SetGrantedRole(const std::string& user_id, std::optional<Role> role,
                                            const AuditRecord& audit) {
  User user;
  APPBAN_RETURN_IF_ERROR(Audited(audit, [&](AuditRecord& record) -> Status {
    APPBAN_ASSIGN_OR_RETURN(user, GetUser(user_id));
    record.before = UserJson(user);
    APPBAN_ASSIGN_OR_RETURN(auto update, Statement::Prepare(db_, "UPDATE users SET granted_role = ?1 WHERE id = ?2"));
    BindOptionalText(update, 1, OptionalRoleName(role));
    APPBAN_RETURN_IF_ERROR(update.Bind(2, user_id).Run());
    user.granted_role = role;
    record.action = "user.grant-role";
    record.object = "user:" + user_id;
    record.after = UserJson(user);
    return Status::Ok();
  }));
  return user;
}

template <typename B>
Result<User> FleetTables<B>::LinkUser(const std::string& user_id, const std::string& same_as,
                                      const AuditRecord& audit) {
  User user;
  APPBAN_RETURN_IF_ERROR(Audited(audit, [&](AuditRecord& record) -> Status {
    APPBAN_ASSIGN_OR_RETURN(user, GetUser(user_id));
    APPBAN_ASSIGN_OR_RETURN(User other, GetUser(same_as));
    if (user.kind != UserKind::kHuman || other.kind != UserKind::kHuman) {
      return Status::InvalidArgument("only people's accounts are linked; a service account is never a person");
    }
    const std::string person = other.Person();
    if (user.Person() == person) {
      return Status::AlreadyExists("users " + user_id + " and " + same_as + " are already one person (" + person + ")");
    }
    if (!user.person_id.empty()) {
      return Status::FailedPrecondition("user " + user_id + " already belongs to person " + user.person_id +
                                        "; links are permanent (link " + same_as + " to " + user.person_id +
                                        " instead)");
    }
    record.before = UserJson(user);
    // The account, and every account already linked to it, joins the other person.
    APPBAN_ASSIGN_OR_RETURN(auto update,
                            Statement::Prepare(db_, "UPDATE users SET person_id = ?1 WHERE id = ?2 OR person_id = ?2"));
    APPBAN_RETURN_IF_ERROR(update.Bind(1, person).Bind(2, user_id).Run());
    user.person_id = person;
    record.action = "user.link";
    record.object = "user:" + user_id;
    record.after = UserJson(user);
    return Status::Ok();
  }));
  return user;
}

template <typename B>
Result<std::vector<std::string>> FleetTables<B>::AccountsOfPerson(const std::string& person_id) {
  APPBAN_ASSIGN_OR_RETURN(auto query,
                          Statement::Prepare(db_, "SELECT id FROM users WHERE id = ?1 OR person_id = ?1 ORDER BY id"));
  query.Bind(1, person_id);
  std::vector<std::string> ids;
  while (true) {
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    ids.push_back(query.Text(0));
  }
  return ids;
}

template <typename B>
Status FleetTables<B>::EndSession(const std::string& session_id, const std::string& user_id, UnixSeconds ended_at,
                                  UnixSeconds expires_at) {
  APPBAN_ASSIGN_OR_RETURN(Transaction transaction, B::BeginWrite(db_));
  APPBAN_ASSIGN_OR_RETURN(auto insert,
                          Statement::Prepare(db_,
                                             "INSERT INTO ended_sessions(id, user_id, "
                                             "ended_at, expires_at) VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"));
  APPBAN_RETURN_IF_ERROR(insert.Bind(1, session_id).Bind(2, user_id).Bind(3, ended_at).Bind(4, expires_at).Run());
  // Sessions past their own end need no row: their cookie is refused anyway.
  APPBAN_ASSIGN_OR_RETURN(auto prune, Statement::Prepare(db_, "DELETE FROM ended_sessions WHERE expires_at < ?1"));
  APPBAN_RETURN_IF_ERROR(prune.Bind(1, ended_at).Run());
  return transaction.Commit();
}

template <typename B>
Status FleetTables<B>::EndSessionsOfUser(const std::string& user_id, UnixSeconds not_before, const AuditRecord& audit) {
  return Audited(audit, [&](AuditRecord& record) -> Status {
    APPBAN_ASSIGN_OR_RETURN(User user, GetUser(user_id));
    APPBAN_ASSIGN_OR_RETURN(auto upsert, Statement::Prepare(db_,
                                                            "INSERT INTO session_cutoffs(user_id, not_before) "
                                                            "VALUES(?1, ?2) ON CONFLICT(user_id) DO UPDATE SET "
                                                            "not_before = " +
                                                                std::string(B::kGreatest) +
                                                                "(session_cutoffs.not_before, "
                                                                "excluded.not_before)"));
    APPBAN_RETURN_IF_ERROR(upsert.Bind(1, user_id).Bind(2, not_before).Run());
    record.action = "user.end-sessions";
    record.object = "user:" + user_id;
    record.after = Json{{"user_id", user_id}, {"sessions_issued_before", FormatTimestamp(not_before)}};
    return Status::Ok();
  });
}

template <typename B>
Result<bool> FleetTables<B>::SessionEnded(const std::string& session_id, const std::string& user_id,
                                          UnixSeconds issued_at) {
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_,
                                                         "SELECT EXISTS(SELECT 1 FROM ended_sessions WHERE id = ?1) OR "
                                                         "EXISTS(SELECT 1 FROM session_cutoffs WHERE user_id = ?2 AND "
                                                         "not_before > ?3)"));
  query.Bind(1, session_id).Bind(2, user_id).Bind(3, issued_at);
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  return row && query.Int(0) != 0;
}

template <typename B>
Result<User> FleetTables<B>::EnsureBootstrapUser(UnixSeconds now) {
  std::string id = UserIdFor(kLocalIssuer, kBootstrapSubject);
  auto existing = GetUser(id);
  if (existing.ok() || existing.status().code() != StatusCode::kNotFound) return existing;
  APPBAN_ASSIGN_OR_RETURN(auto insert,
                          Statement::Prepare(db_,
                                             "INSERT INTO users(id, issuer, subject, display_name, kind, "
                                             "granted_role, created_at, last_seen) "
                                             "VALUES(?1, ?2, ?3, 'bootstrap admin', 'human', 'admin', ?4, ?4)"));
  APPBAN_RETURN_IF_ERROR(insert.Bind(1, id).Bind(2, kLocalIssuer).Bind(3, kBootstrapSubject).Bind(4, now).Run());
  return GetUser(id);
}

// Both backends (fleet_tables.h).
template class FleetTables<SqliteBackend>;
template class FleetTables<PostgresBackend>;

template Result<User> ReadUser(const sqlite::Statement& row);
template Result<User> ReadUser(const postgres::Statement& row);

}  // namespace internal
}  // namespace appban::store
