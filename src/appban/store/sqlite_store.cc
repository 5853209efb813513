// SQLite implementation of Store. Documents (rules, waivers, groups, vendors) are stored as their
// canonical JSON beside the columns queries and constraints need; a PostgreSQL implementation can
// use the same layout with jsonb.
#include <cstdint>
#include <functional>
#include <vector>

#include "appban/policy/limits.h"
#include "appban/store/audit_checkpoint.h"
#include "appban/store/sqlite.h"
#include "appban/store/store.h"

namespace appban::store {
namespace {

// Migration N (1-based) brings the schema from user_version N-1 to N. Append only; never edit.
constexpr std::string_view kMigrations[] = {
    R"sql(
CREATE TABLE rules (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  revision INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE TABLE waivers (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL REFERENCES rules(id),
  revision INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX waivers_by_rule ON waivers(rule_id);
CREATE TABLE device_groups (
  name TEXT PRIMARY KEY,
  revision INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE TABLE vendors (
  name TEXT PRIMARY KEY,
  revision INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE TABLE bundles (
  version INTEGER PRIMARY KEY CHECK (version > 0),
  issued_at TEXT NOT NULL,
  rules_hash TEXT NOT NULL,
  key_id TEXT NOT NULL,
  envelope TEXT NOT NULL
);
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  object TEXT NOT NULL,
  before_json TEXT NOT NULL,
  after_json TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
-- Append-only in the database itself; the hash chain catches whoever drops these triggers.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql",
    // 2: the server's fleet data (fleet.h). Times are integer Unix seconds: these tables are large
    // and hot. Secrets are stored only as SHA-256 hex.
    R"sql(
CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'auditor')),
  secret_hash TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER
);
CREATE TABLE enrollment_tokens (
  id TEXT PRIMARY KEY,
  group_name TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  note TEXT NOT NULL,
  used_at INTEGER,
  used_by_device TEXT NOT NULL DEFAULT '',
  revoked_at INTEGER
);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  hostname TEXT NOT NULL,
  platform TEXT NOT NULL,
  agent_version TEXT NOT NULL,
  group_name TEXT NOT NULL,
  enrolled_at INTEGER NOT NULL,
  enrollment_token_id TEXT NOT NULL UNIQUE REFERENCES enrollment_tokens(id),
  revoked_at INTEGER,
  revoked_by TEXT NOT NULL DEFAULT '',
  applied_version INTEGER NOT NULL DEFAULT 0,
  applied_rules_hash TEXT NOT NULL DEFAULT '',
  inventory_hash TEXT NOT NULL DEFAULT '',
  inventory_at INTEGER,
  last_seen INTEGER NOT NULL,
  evaluated_version INTEGER NOT NULL DEFAULT 0,
  evaluated_inventory_hash TEXT NOT NULL DEFAULT '',
  last_event_seq INTEGER NOT NULL DEFAULT 0
);
-- Apart from the devices row, so a check-in that only moves last_seen rewrites a small row.
CREATE TABLE device_inventories (
  device_id TEXT PRIMARY KEY REFERENCES devices(id),
  json TEXT NOT NULL
);
-- (device_id, seq) is the device's own counter: a retried check-in stores its events once.
CREATE TABLE device_events (
  device_id TEXT NOT NULL REFERENCES devices(id),
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  platform TEXT NOT NULL,
  app TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  detail TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX device_events_by_rule ON device_events(rule_id, received_at);
CREATE TABLE device_rule_states (
  device_id TEXT NOT NULL REFERENCES devices(id),
  rule_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('compliant', 'violating', 'waived')),
  since INTEGER NOT NULL,
  had_app INTEGER NOT NULL,
  compliant_at INTEGER,
  version INTEGER NOT NULL,
  PRIMARY KEY (device_id, rule_id)
) WITHOUT ROWID;
-- Covers the per-rule compliance queries (no table lookups for 100k devices).
CREATE INDEX device_rule_states_by_rule ON device_rule_states(rule_id, state, since, had_app, compliant_at, version);
CREATE TABLE assessments (
  sha256 TEXT PRIMARY KEY,
  package TEXT NOT NULL,
  version TEXT NOT NULL,
  score REAL NOT NULL,
  band TEXT NOT NULL,
  uploaded_by TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL,
  file_size INTEGER NOT NULL,
  report_json TEXT NOT NULL  -- last: listing the other columns does not read its overflow pages
);
CREATE INDEX assessments_by_time ON assessments(uploaded_at);
CREATE TABLE server_settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql",
    // 3: match records beside the inventory JSON (store/match_records.h), so re-evaluating a device
    // against a new bundle does not parse its JSON. NULL for inventories stored before. The table
    // is rebuilt rather than altered so match_records comes BEFORE json: a column after a large
    // value can only be reached by walking that value's overflow pages.
    R"sql(
CREATE TABLE device_inventories_v3 (
  device_id TEXT PRIMARY KEY REFERENCES devices(id),
  match_records TEXT,
  json TEXT NOT NULL
);
INSERT INTO device_inventories_v3(device_id, match_records, json) SELECT device_id, NULL, json FROM device_inventories;
DROP TABLE device_inventories;
ALTER TABLE device_inventories_v3 RENAME TO device_inventories;
)sql",
    // 4: the head row is guarded like the entries: it can only advance by one, to the entry just
    // appended, and never be deleted. (The signed checkpoint outside the database catches whoever
    // drops these triggers; OpenStoreDatabase creates its key with this migration.)
    R"sql(
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END;
CREATE TRIGGER audit_head_no_update BEFORE UPDATE ON audit_head
WHEN NEW.id IS NOT OLD.id OR NEW.seq IS NOT OLD.seq + 1 OR NEW.hash IS NOT (SELECT hash FROM audit WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'the audit head only advances to the entry just appended'); END;
)sql",
    // 5: a device whose reported rules_hash is not the hash of the version it claims (NULL since:
    // none). The partial index keeps counting them (GET /metrics) to the few rows concerned.
    R"sql(
ALTER TABLE devices ADD COLUMN rules_hash_expected TEXT;
ALTER TABLE devices ADD COLUMN rules_hash_mismatch_since INTEGER;
CREATE INDEX devices_rules_hash_mismatch ON devices(rules_hash_mismatch_since)
  WHERE rules_hash_mismatch_since IS NOT NULL;
)sql",
    // 6: people (docs/identity.md). A user is an identity — (issuer, subject) at an OpenID Connect
    // provider, or appban's own issuer "appban:local" for the bootstrap admin and service accounts —
    // never a typed name. Every API token belongs to one; tokens minted before belong to a user of
    // issuer "appban:legacy-token" made from the token's name, so their audit trail keeps its
    // meaning. Audit entries record who acted, how and where (audit.h: the identity member).
    R"sql(
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  issuer TEXT NOT NULL,
  subject TEXT NOT NULL,
  display_name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('human', 'service')),
  owner_id TEXT REFERENCES users(id),
  granted_role TEXT CHECK (granted_role IN ('admin', 'analyst', 'auditor')),
  claim_role TEXT CHECK (claim_role IN ('admin', 'analyst', 'auditor')),
  created_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  UNIQUE (issuer, subject),
  CHECK ((kind = 'service') = (owner_id IS NOT NULL))
);
CREATE INDEX users_by_owner ON users(owner_id) WHERE owner_id IS NOT NULL;
ALTER TABLE api_tokens ADD COLUMN user_id TEXT REFERENCES users(id);
INSERT INTO users(id, issuer, subject, display_name, kind, granted_role, created_at, last_seen)
  SELECT 'u-legacy-' || name, 'appban:legacy-token', name, name, 'human',
         CASE MIN(CASE role WHEN 'admin' THEN 0 WHEN 'analyst' THEN 1 ELSE 2 END)
           WHEN 0 THEN 'admin' WHEN 1 THEN 'analyst' ELSE 'auditor' END,
         MIN(created_at), MIN(created_at)
  FROM api_tokens GROUP BY name;
UPDATE api_tokens SET user_id = 'u-legacy-' || name;
ALTER TABLE audit ADD COLUMN identity_json TEXT NOT NULL DEFAULT 'null';
)sql",
    // 7: MDM devices (mdm/fleet_import.h) in the devices table beside enrolled ones: a source,
    // the MDM's id and reports, and an enrolment token that is NULL for them (they were never
    // enrolled). SQLite cannot relax NOT NULL in place, so the table is rebuilt; the rows other
    // tables reference are put back before the commit, when deferred foreign keys are checked.
    R"sql(
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE devices_v6 AS SELECT * FROM devices;
DROP TABLE devices;
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  hostname TEXT NOT NULL,
  platform TEXT NOT NULL,
  agent_version TEXT NOT NULL,
  group_name TEXT NOT NULL,
  enrolled_at INTEGER NOT NULL,
  enrollment_token_id TEXT UNIQUE REFERENCES enrollment_tokens(id),
  revoked_at INTEGER,
  revoked_by TEXT NOT NULL DEFAULT '',
  applied_version INTEGER NOT NULL DEFAULT 0,
  applied_rules_hash TEXT NOT NULL DEFAULT '',
  inventory_hash TEXT NOT NULL DEFAULT '',
  inventory_at INTEGER,
  last_seen INTEGER NOT NULL,
  evaluated_version INTEGER NOT NULL DEFAULT 0,
  evaluated_inventory_hash TEXT NOT NULL DEFAULT '',
  last_event_seq INTEGER NOT NULL DEFAULT 0,
  rules_hash_expected TEXT,
  rules_hash_mismatch_since INTEGER,
  source TEXT NOT NULL DEFAULT 'agent',
  mdm_connector TEXT NOT NULL DEFAULT '',
  mdm_id TEXT NOT NULL DEFAULT '',
  mdm_groups TEXT NOT NULL DEFAULT '',
  mdm_pushed_at INTEGER,
  mdm_synced_at INTEGER,
  mdm_compliant INTEGER,
  mdm_compliant_at INTEGER,
  cannot_enforce TEXT NOT NULL DEFAULT '',
  mdm_gone_at INTEGER,
  mdm_seen_at INTEGER,
  CHECK ((source = 'agent') = (enrollment_token_id IS NOT NULL))
);
INSERT INTO devices (id, secret_hash, hostname, platform, agent_version, group_name, enrolled_at,
  enrollment_token_id, revoked_at, revoked_by, applied_version, applied_rules_hash, inventory_hash, inventory_at,
  last_seen, evaluated_version, evaluated_inventory_hash, last_event_seq, rules_hash_expected,
  rules_hash_mismatch_since)
SELECT id, secret_hash, hostname, platform, agent_version, group_name, enrolled_at,
  enrollment_token_id, revoked_at, revoked_by, applied_version, applied_rules_hash, inventory_hash, inventory_at,
  last_seen, evaluated_version, evaluated_inventory_hash, last_event_seq, rules_hash_expected,
  rules_hash_mismatch_since FROM devices_v6;
DROP TABLE devices_v6;
CREATE INDEX devices_rules_hash_mismatch ON devices(rules_hash_mismatch_since)
  WHERE rules_hash_mismatch_since IS NOT NULL;
CREATE INDEX devices_by_source ON devices(source, platform, id);
CREATE INDEX devices_by_connector ON devices(mdm_connector, mdm_seen_at) WHERE mdm_connector != '';
)sql",
    // 8: pending changes (store/change.h, docs/identity.md "Quorum"): a decision that relaxes
    // enforcement waits here for its quorum of distinct people. Keyed like groups and vendors
    // (name = the change id), so the document helpers serve it.
    R"sql(
CREATE TABLE changes (
  name TEXT PRIMARY KEY,
  revision INTEGER NOT NULL,
  doc TEXT NOT NULL
);
)sql",
    // 9: multi-use enrolment tokens (docs/agent.md "Enrolling many machines"): a token counts its
    // uses up to max_uses, so several devices may name one token. Only the UNIQUE on
    // devices.enrollment_token_id changes, and SQLite cannot drop a column constraint: the table
    // is rebuilt with its columns in the same order, as migration 7 did.
    R"sql(
ALTER TABLE enrollment_tokens ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 1 CHECK (max_uses >= 1);
ALTER TABLE enrollment_tokens ADD COLUMN uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses);
UPDATE enrollment_tokens SET uses = 1 WHERE used_at IS NOT NULL;
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE devices_v8 AS SELECT * FROM devices;
DROP TABLE devices;
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  hostname TEXT NOT NULL,
  platform TEXT NOT NULL,
  agent_version TEXT NOT NULL,
  group_name TEXT NOT NULL,
  enrolled_at INTEGER NOT NULL,
  enrollment_token_id TEXT REFERENCES enrollment_tokens(id),
  revoked_at INTEGER,
  revoked_by TEXT NOT NULL DEFAULT '',
  applied_version INTEGER NOT NULL DEFAULT 0,
  applied_rules_hash TEXT NOT NULL DEFAULT '',
  inventory_hash TEXT NOT NULL DEFAULT '',
  inventory_at INTEGER,
  last_seen INTEGER NOT NULL,
  evaluated_version INTEGER NOT NULL DEFAULT 0,
  evaluated_inventory_hash TEXT NOT NULL DEFAULT '',
  last_event_seq INTEGER NOT NULL DEFAULT 0,
  rules_hash_expected TEXT,
  rules_hash_mismatch_since INTEGER,
  source TEXT NOT NULL DEFAULT 'agent',
  mdm_connector TEXT NOT NULL DEFAULT '',
  mdm_id TEXT NOT NULL DEFAULT '',
  mdm_groups TEXT NOT NULL DEFAULT '',
  mdm_pushed_at INTEGER,
  mdm_synced_at INTEGER,
  mdm_compliant INTEGER,
  mdm_compliant_at INTEGER,
  cannot_enforce TEXT NOT NULL DEFAULT '',
  mdm_gone_at INTEGER,
  mdm_seen_at INTEGER,
  CHECK ((source = 'agent') = (enrollment_token_id IS NOT NULL))
);
INSERT INTO devices SELECT * FROM devices_v8;
DROP TABLE devices_v8;
CREATE INDEX devices_rules_hash_mismatch ON devices(rules_hash_mismatch_since)
  WHERE rules_hash_mismatch_since IS NOT NULL;
CREATE INDEX devices_by_source ON devices(source, platform, id);
CREATE INDEX devices_by_connector ON devices(mdm_connector, mdm_seen_at) WHERE mdm_connector != '';
CREATE INDEX devices_by_enrollment_token ON devices(enrollment_token_id) WHERE enrollment_token_id IS NOT NULL;
)sql",
    // 10: one person, several accounts (a smart card and a provider account): the two-person rule
    // counts the accounts an administrator linked as one person.
    R"sql(
ALTER TABLE users ADD COLUMN person_id TEXT NOT NULL DEFAULT '';
CREATE INDEX users_by_person ON users(person_id) WHERE person_id != '';
)sql",
    // 11: console sessions ended on the server: one signed out, or all of a user's issued before a
    // time (the cookie is signed, so without these a copy of it lived until its own end).
    R"sql(
CREATE TABLE ended_sessions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  ended_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ended_sessions_by_expiry ON ended_sessions(expires_at);
CREATE TABLE session_cutoffs (
  user_id TEXT PRIMARY KEY REFERENCES users(id),
  not_before INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    // 12: device search (fleet.h, DeviceFilter): which apps each device's latest inventory holds
    // (kept with it; filled here from the inventories already stored), and host names by their
    // lower case for a case-insensitive prefix search. device_apps is keyed by device, with no
    // index by app: a device's rows sit together, so an inventory costs a few page writes, and a
    // search by app walks the devices in id order probing each one's key (an index by app cost
    // ten times the enrolment time at 100,000 devices of ~100 apps: docs/benchmarks.md).
    R"sql(
CREATE TABLE device_apps (
  device_id TEXT NOT NULL REFERENCES devices(id),
  app_id TEXT NOT NULL,
  PRIMARY KEY (device_id, app_id)
) WITHOUT ROWID;
CREATE INDEX devices_by_hostname ON devices(lower(hostname), id);
INSERT OR IGNORE INTO device_apps(app_id, device_id)
  SELECT json_extract(app.value, '$.id'), inventory.device_id
  FROM device_inventories AS inventory, json_each(inventory.json) AS app
  WHERE json_type(app.value, '$.id') = 'text';
)sql",
    // 13: the counts of GET /v1/admin/mdm (devices by source and platform, the revoked ones left
    // out, those appban cannot enforce on apart) from the index alone: without revoked_at and
    // cannot_enforce in it, every device's row was read (335 ms at 100,000 devices). Neither column
    // changes on a check-in, so the index costs the check-in path nothing.
    R"sql(
DROP INDEX devices_by_source;
CREATE INDEX devices_by_source ON devices(source, platform, id, revoked_at, cannot_enforce);
)sql",
};
// The migration that introduced the signed audit checkpoint.
constexpr int64_t kCheckpointSchemaVersion = 4;
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// A separate function so the statement is finalized before the transaction commits.
Result<int64_t> ReadUserVersion(sqlite::Database& db) {
  APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db, "PRAGMA user_version"));
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  return row ? query.Int(0) : 0;
}

Result<std::optional<AuditHead>> ReadAuditHead(sqlite::Database& db);

// Several server processes may open the file at once: BEGIN IMMEDIATE serializes them, and the
// later ones find the schema current.
Status Migrate(sqlite::Database& db, const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(auto transaction, sqlite::Transaction::Begin(db));
  APPBAN_ASSIGN_OR_RETURN(int64_t version, ReadUserVersion(db));
  if (version > kSchemaVersion) {
    return Status::Unsupported(path + ": database schema version " + std::to_string(version) +
                               " is newer than this appban understands (" + std::to_string(kSchemaVersion) + ")");
  }
  if (version == kSchemaVersion) return Status::Ok();  // the transaction rolls back: nothing to do
  // All pending migrations and the new user_version commit together, or not at all.
  for (int64_t next = version; next < kSchemaVersion; ++next) APPBAN_RETURN_IF_ERROR(db.Exec(kMigrations[next]));
  APPBAN_RETURN_IF_ERROR(db.Exec("PRAGMA user_version = " + std::to_string(kSchemaVersion)));
  if (version < kCheckpointSchemaVersion) {
    // Still inside the write transaction, so no other process appends before the key exists; a
    // database that already has entries gets its first checkpoint when this commits.
    APPBAN_RETURN_IF_ERROR(LoadAuditCheckpointKey(AuditCheckpointDir(path), true).status());
    APPBAN_ASSIGN_OR_RETURN(std::optional<AuditHead> head, ReadAuditHead(db));
    if (head) APPBAN_RETURN_IF_ERROR(db.SetPendingAuditHead(*head));
  }
  return transaction.Commit();
}

// A LIMIT for SQLite (a signed 64-bit integer): SIZE_MAX reads everything.
int64_t SqlLimit(size_t limit) { return limit > static_cast<size_t>(INT64_MAX) ? -1 : static_cast<int64_t>(limit); }

Result<std::optional<AuditHead>> ReadAuditHead(sqlite::Database& db) {
  APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db, "SELECT seq, hash FROM audit_head WHERE id = 1"));
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) return std::optional<AuditHead>();
  return std::optional<AuditHead>(AuditHead{query.Int(0), query.Text(1)});
}

enum class AuditOrder { kOldestFirst, kNewestFirst };

// Oldest first: the entries after `seq`. Newest first: the entries before it.
Result<std::vector<AuditEntry>> ReadAuditEntries(sqlite::Database& db, int64_t seq, size_t limit,
                                                 AuditOrder order = AuditOrder::kOldestFirst) {
  std::string sql =
      "SELECT seq, at, actor, action, object, before_json, after_json, prev_hash, hash, identity_json FROM audit ";
  sql += order == AuditOrder::kOldestFirst ? "WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                                           : "WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2";
  APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db, sql));
  query.Bind(1, seq).Bind(2, SqlLimit(limit));
  std::vector<AuditEntry> entries;
  while (true) {
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    AuditEntry entry;
    entry.seq = query.Int(0);
    std::string at_text = query.Text(1);
    auto at = ParseTimestamp(at_text);
    // An edited timestamp, or another spelling of the same instant, shows up as a hash mismatch.
    entry.at = at.ok() && FormatTimestamp(*at) == at_text ? *at : -1;
    entry.actor = query.Text(2);
    entry.action = query.Text(3);
    entry.object = query.Text(4);
    entry.before_json = query.Text(5);
    entry.after_json = query.Text(6);
    entry.prev_hash = query.Text(7);
    entry.hash = query.Text(8);
    entry.identity_json = query.Text(9);
    entries.push_back(std::move(entry));
  }
  return entries;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite::Database db) : db_(std::move(db)) {}

  Result<std::vector<policy::Rule>> ListRules() override {
    return ListRulesAfter("", SIZE_MAX);  // every id sorts after ""
  }
  Result<std::vector<policy::Rule>> ListRulesAfter(std::string_view after_id, size_t limit) override {
    return LoadPage<policy::Rule>("SELECT doc, revision FROM rules WHERE id > ?1 ORDER BY id LIMIT ?2", after_id, limit,
                                  policy::RuleFromJson);
  }
  Result<policy::Rule> GetRule(std::string_view id) override {
    return LoadOne<policy::Rule>("SELECT doc, revision FROM rules WHERE id = ?1", id, "rule", policy::RuleFromJson);
  }
  Status CreateRule(policy::Rule& rule, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      policy::Rule stored = rule;
      stored.revision = 1;
      APPBAN_ASSIGN_OR_RETURN(std::string doc, CanonicalJson(policy::RuleToJson(stored, true)));
      APPBAN_ASSIGN_OR_RETURN(
          auto insert,
          sqlite::Statement::Prepare(db_, "INSERT INTO rules(id, state, revision, doc) VALUES(?1, ?2, 1, ?3)"));
      Status status = insert.Bind(1, rule.id).Bind(2, policy::RuleStateName(rule.state)).Bind(3, doc).Run();
      if (status.code() == StatusCode::kAlreadyExists)
        return Status::AlreadyExists("rule " + rule.id + " already exists");
      APPBAN_RETURN_IF_ERROR(status);
      rule.revision = 1;
      return Status::Ok();
    });
  }
  Status UpdateRule(policy::Rule& rule, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      policy::Rule stored = rule;
      stored.revision = rule.revision + 1;
      APPBAN_ASSIGN_OR_RETURN(std::string doc, CanonicalJson(policy::RuleToJson(stored, true)));
      APPBAN_ASSIGN_OR_RETURN(
          auto update, sqlite::Statement::Prepare(db_,
                                                  "UPDATE rules SET state = ?1, revision = revision + 1, doc = ?2 "
                                                  "WHERE id = ?3 AND revision = ?4"));
      APPBAN_RETURN_IF_ERROR(
          update.Bind(1, policy::RuleStateName(rule.state)).Bind(2, doc).Bind(3, rule.id).Bind(4, rule.revision).Run());
      APPBAN_RETURN_IF_ERROR(ExpectOneChange("rule", rule.id));
      rule.revision = stored.revision;
      return Status::Ok();
    });
  }

  Result<std::vector<policy::Waiver>> ListWaivers() override { return ListWaiversAfter("", SIZE_MAX); }
  Result<std::vector<policy::Waiver>> ListWaiversAfter(std::string_view after_id, size_t limit) override {
    return LoadPage<policy::Waiver>("SELECT doc, revision FROM waivers WHERE id > ?1 ORDER BY id LIMIT ?2", after_id,
                                    limit, policy::WaiverFromJson);
  }
  Result<policy::Waiver> GetWaiver(std::string_view id) override {
    return LoadOne<policy::Waiver>("SELECT doc, revision FROM waivers WHERE id = ?1", id, "waiver",
                                   policy::WaiverFromJson);
  }
  Status CreateWaiver(policy::Waiver& waiver, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      policy::Waiver stored = waiver;
      stored.revision = 1;
      APPBAN_ASSIGN_OR_RETURN(std::string doc, CanonicalJson(policy::WaiverToJson(stored, true)));
      APPBAN_ASSIGN_OR_RETURN(
          auto insert,
          sqlite::Statement::Prepare(db_, "INSERT INTO waivers(id, rule_id, revision, doc) VALUES(?1, ?2, 1, ?3)"));
      Status status = insert.Bind(1, waiver.id).Bind(2, waiver.rule_id).Bind(3, doc).Run();
      if (status.code() == StatusCode::kAlreadyExists)
        return Status::AlreadyExists("waiver " + waiver.id + " already exists");
      if (status.code() == StatusCode::kNotFound)
        return Status::NotFound("waiver " + waiver.id + ": no rule " + waiver.rule_id);
      APPBAN_RETURN_IF_ERROR(status);
      waiver.revision = 1;
      return Status::Ok();
    });
  }
  Status UpdateWaiver(policy::Waiver& waiver, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      policy::Waiver stored = waiver;
      stored.revision = waiver.revision + 1;
      APPBAN_ASSIGN_OR_RETURN(std::string doc, CanonicalJson(policy::WaiverToJson(stored, true)));
      APPBAN_ASSIGN_OR_RETURN(auto update,
                              sqlite::Statement::Prepare(db_,
                                                         "UPDATE waivers SET revision = revision + 1, doc = ?1 "
                                                         "WHERE id = ?2 AND revision = ?3"));
      APPBAN_RETURN_IF_ERROR(update.Bind(1, doc).Bind(2, waiver.id).Bind(3, waiver.revision).Run());
      APPBAN_RETURN_IF_ERROR(ExpectOneChange("waiver", waiver.id));
      waiver.revision = stored.revision;
      return Status::Ok();
    });
  }

  Result<std::vector<policy::Group>> ListGroups() override { return ListGroupsAfter("", SIZE_MAX); }
  Result<std::vector<policy::Group>> ListGroupsAfter(std::string_view after_name, size_t limit) override {
    return LoadPage<policy::Group>("SELECT doc, revision FROM device_groups WHERE name > ?1 ORDER BY name LIMIT ?2",
                                   after_name, limit, policy::GroupFromJson);
  }
  Result<policy::Group> GetGroup(std::string_view name) override {
    return LoadOne<policy::Group>("SELECT doc, revision FROM device_groups WHERE name = ?1", name, "group",
                                  policy::GroupFromJson);
  }
  Status PutGroup(policy::Group& group, const AuditRecord& audit) override {
    return PutDocument("device_groups", group.name, "group", policy::GroupToJson(group), group.revision, audit);
  }
  Status DeleteGroup(std::string_view name, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      APPBAN_ASSIGN_OR_RETURN(auto del, sqlite::Statement::Prepare(db_, "DELETE FROM device_groups WHERE name = ?1"));
      APPBAN_RETURN_IF_ERROR(del.Bind(1, name).Run());
      if (sqlite3_changes(db_.handle()) != 1) return Status::NotFound("no group " + std::string(name));
      return Status::Ok();
    });
  }

  Result<std::vector<Change>> ListChangesAfter(std::string_view after_id, size_t limit) override {
    return LoadPage<Change>("SELECT doc, revision FROM changes WHERE name > ?1 ORDER BY name LIMIT ?2", after_id, limit,
                            ChangeFromJson);
  }
  Result<Change> GetChange(std::string_view id) override {
    return LoadOne<Change>("SELECT doc, revision FROM changes WHERE name = ?1", id, "change", ChangeFromJson);
  }
  Status PutChange(Change& change, const AuditRecord& audit) override {
    return PutDocument("changes", change.id, "change", ChangeToJson(change), change.revision, audit);
  }

  Result<std::vector<policy::Vendor>> ListVendors() override {
    return LoadPage<policy::Vendor>("SELECT doc, revision FROM vendors WHERE name > ?1 ORDER BY name LIMIT ?2", "",
                                    SIZE_MAX, policy::VendorFromJson);
  }
  Status PutVendor(policy::Vendor& vendor, const AuditRecord& audit) override {
    return PutDocument("vendors", vendor.name, "vendor", policy::VendorToJson(vendor), vendor.revision, audit);
  }

  Result<int64_t> LatestBundleVersion() override {
    APPBAN_ASSIGN_OR_RETURN(auto query,
                            sqlite::Statement::Prepare(db_, "SELECT COALESCE(MAX(version), 0) FROM bundles"));
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    return row ? query.Int(0) : 0;
  }
  Status RecordBundle(const BundleRecord& record, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      APPBAN_ASSIGN_OR_RETURN(int64_t latest, LatestBundleVersion());
      if (record.version <= latest) {
        return Status::FailedPrecondition("bundle version " + std::to_string(record.version) +
                                          " is not above the latest issued version " + std::to_string(latest));
      }
      APPBAN_ASSIGN_OR_RETURN(auto insert, sqlite::Statement::Prepare(
                                               db_,
                                               "INSERT INTO bundles(version, issued_at, rules_hash, key_id, envelope) "
                                               "VALUES(?1, ?2, ?3, ?4, ?5)"));
      return insert.Bind(1, record.version)
          .Bind(2, FormatTimestamp(record.issued_at))
          .Bind(3, record.rules_hash)
          .Bind(4, record.key_id)
          .Bind(5, record.envelope)
          .Run();
    });
  }
  Result<BundleRecord> GetBundle(int64_t version) override {
    APPBAN_ASSIGN_OR_RETURN(auto query,
                            sqlite::Statement::Prepare(
                                db_, "SELECT issued_at, rules_hash, key_id, envelope FROM bundles WHERE version = ?1"));
    query.Bind(1, version);
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) return Status::NotFound("no bundle version " + std::to_string(version));
    BundleRecord record;
    record.version = version;
    APPBAN_ASSIGN_OR_RETURN(record.issued_at, ParseTimestamp(query.Text(0)));
    record.rules_hash = query.Text(1);
    record.key_id = query.Text(2);
    record.envelope = query.Text(3);
    return record;
  }

  Status AppendAudit(const AuditRecord& audit) override {
    return Mutate(audit, [] { return Status::Ok(); });
  }

  Result<std::vector<AuditEntry>> ReadAudit() override { return ReadAuditAfter(0, SIZE_MAX); }
  Result<std::vector<AuditEntry>> ReadAuditAfter(int64_t after_seq, size_t limit) override {
    return ReadAuditEntries(db_, after_seq, limit);
  }
  Result<std::vector<AuditEntry>> ReadAuditBefore(int64_t before_seq, size_t limit) override {
    return ReadAuditEntries(db_, before_seq, limit, AuditOrder::kNewestFirst);
  }

  Result<AuditVerification> VerifyAudit() override { return sqlite::VerifyStoredAudit(db_); }

  Status CheckIntegrity() override { return sqlite::CheckDatabaseIntegrity(db_); }

 private:
  // Runs `change` and appends `audit` to the chain in one transaction.
  Status Mutate(const AuditRecord& audit, const std::function<Status()>& change) {
    APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(audit.actor, "audit actor"));
    APPBAN_ASSIGN_OR_RETURN(auto transaction, sqlite::Transaction::Begin(db_));
    APPBAN_RETURN_IF_ERROR(change());
    APPBAN_RETURN_IF_ERROR(sqlite::AppendAuditEntry(db_, audit));
    return transaction.Commit();
  }

  Status ExpectOneChange(std::string_view what, std::string_view id) {
    if (sqlite3_changes(db_.handle()) == 1) return Status::Ok();
    return Status::FailedPrecondition(
        std::string(what) + " " + std::string(id) +
        " does not exist or was changed by someone else since it was read; read it again");
  }

  Status PutDocument(std::string_view table, const std::string& key, std::string_view what, const Json& doc_json,
                     int64_t& revision, const AuditRecord& audit) {
    return Mutate(audit, [&]() -> Status {
      APPBAN_ASSIGN_OR_RETURN(std::string doc, CanonicalJson(doc_json));
      std::string key_column = "name";
      if (revision == 0) {
        APPBAN_ASSIGN_OR_RETURN(auto insert,
                                sqlite::Statement::Prepare(db_, "INSERT INTO " + std::string(table) + "(" + key_column +
                                                                    ", revision, doc) VALUES(?1, 1, ?2)"));
        Status status = insert.Bind(1, key).Bind(2, doc).Run();
        if (status.code() == StatusCode::kAlreadyExists) {
          return Status::AlreadyExists(std::string(what) + " " + key + " already exists");
        }
        APPBAN_RETURN_IF_ERROR(status);
      } else {
        APPBAN_ASSIGN_OR_RETURN(auto update,
                                sqlite::Statement::Prepare(db_, "UPDATE " + std::string(table) +
                                                                    " SET revision = revision + 1, doc = ?1 WHERE " +
                                                                    key_column + " = ?2 AND revision = ?3"));
        APPBAN_RETURN_IF_ERROR(update.Bind(1, doc).Bind(2, key).Bind(3, revision).Run());
        APPBAN_RETURN_IF_ERROR(ExpectOneChange(what, key));
      }
      ++revision;
      return Status::Ok();
    });
  }

  // LIMIT ?2 of a keyset page: the rows after `after` in key order.
  template <typename T>
  Result<std::vector<T>> LoadPage(std::string_view sql, std::string_view after, size_t limit,
                                  Result<T> (*parse)(const Json&)) {
    APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db_, sql));
    query.Bind(1, after).Bind(2, SqlLimit(limit));
    std::vector<T> out;
    while (true) {
      APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      APPBAN_ASSIGN_OR_RETURN(T value, ParseRow(query, parse));
      out.push_back(std::move(value));
    }
    return out;
  }

  template <typename T>
  Result<T> LoadOne(std::string_view sql, std::string_view key, std::string_view what,
                    Result<T> (*parse)(const Json&)) {
    APPBAN_ASSIGN_OR_RETURN(auto query, sqlite::Statement::Prepare(db_, sql));
    query.Bind(1, key);
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) return Status::NotFound("no " + std::string(what) + " " + std::string(key));
    return ParseRow(query, parse);
  }

  template <typename T>
  Result<T> ParseRow(const sqlite::Statement& query, Result<T> (*parse)(const Json&)) {
    APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(query.Text(0), policy::kPolicyLimits.max_bundle_bytes,
                                                        policy::kPolicyLimits.max_json_depth, "stored document"));
    APPBAN_ASSIGN_OR_RETURN(T value, parse(json));
    value.revision = query.Int(1);  // the column is authoritative
    return value;
  }

  sqlite::Database db_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(sqlite::Database db, sqlite::OpenStoreDatabase(path));
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(std::move(db)));
}

namespace sqlite {

int64_t ExpectedSchemaVersion() { return kSchemaVersion; }
Result<int64_t> ReadSchemaVersion(Database& db) { return ReadUserVersion(db); }

Result<Database> OpenStoreDatabase(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(Database db, Database::Open(path));
  // First, so that even switching to WAL and migrating wait for another process instead of failing.
  APPBAN_RETURN_IF_ERROR(db.Exec("PRAGMA busy_timeout=10000"));
  {
    // WAL: readers do not block the writer. Scoped: a statement left stepping would keep the
    // migration transaction from committing.
    APPBAN_ASSIGN_OR_RETURN(auto mode, Statement::Prepare(db, "PRAGMA journal_mode=WAL"));
    APPBAN_ASSIGN_OR_RETURN(bool row, mode.Step());
    if (!row || mode.Text(0) != "wal") return Status::Unavailable(path + ": cannot switch the database to WAL mode");
  }
  APPBAN_RETURN_IF_ERROR(db.BoundWal());
  // synchronous=FULL: a COMMIT that returned is on disk.
  APPBAN_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON"));
  APPBAN_RETURN_IF_ERROR(Migrate(db, path));
  return db;
}

Status CheckDatabaseIntegrity(Database& db) {
  APPBAN_ASSIGN_OR_RETURN(auto check, sqlite::Statement::Prepare(db, "PRAGMA integrity_check"));
  APPBAN_ASSIGN_OR_RETURN(bool row, check.Step());
  if (!row || check.Text(0) != "ok")
    return Status::Corruption("integrity_check: " + (row ? check.Text(0) : "no answer"));
  APPBAN_ASSIGN_OR_RETURN(auto foreign, sqlite::Statement::Prepare(db, "PRAGMA foreign_key_check"));
  APPBAN_ASSIGN_OR_RETURN(bool violation, foreign.Step());
  if (violation) return Status::Corruption("foreign_key_check: table " + foreign.Text(0) + " has a dangling reference");
  return Status::Ok();
}

Result<AuditVerification> VerifyStoredAudit(Database& db) {
  // The checkpoint first: it is written after each commit, so read before the snapshot it can
  // only lag what the snapshot sees, never be ahead of it, unless the log was truncated.
  AuditCheckpointReading checkpoint = ReadAuditCheckpoint(AuditCheckpointDir(db.path()));
  // One read snapshot: another process appending between the two reads would otherwise look
  // like a truncated chain.
  APPBAN_ASSIGN_OR_RETURN(auto snapshot, sqlite::Transaction::BeginRead(db));
  APPBAN_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries, ReadAuditEntries(db, 0, SIZE_MAX));
  APPBAN_ASSIGN_OR_RETURN(std::optional<AuditHead> head, ReadAuditHead(db));
  APPBAN_RETURN_IF_ERROR(snapshot.Commit());
  return VerifyAuditChain(entries, head, checkpoint);
}

Status AppendAuditEntry(Database& db, const AuditRecord& audit) {
  APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(audit.actor, "audit actor"));
  APPBAN_ASSIGN_OR_RETURN(std::optional<AuditHead> head, ReadAuditHead(db));
  int64_t seq = head ? head->seq + 1 : 1;
  std::string prev = head ? head->hash : std::string(kAuditGenesisHash);
  APPBAN_ASSIGN_OR_RETURN(AuditEntry entry, ChainEntry(audit, seq, prev));
  APPBAN_ASSIGN_OR_RETURN(auto insert,
                          Statement::Prepare(db,
                                             "INSERT INTO audit(seq, at, actor, action, object, before_json, "
                                             "after_json, prev_hash, hash, identity_json) "
                                             "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  APPBAN_RETURN_IF_ERROR(insert.Bind(1, entry.seq)
                             .Bind(2, FormatTimestamp(entry.at))
                             .Bind(3, entry.actor)
                             .Bind(4, entry.action)
                             .Bind(5, entry.object)
                             .Bind(6, entry.before_json)
                             .Bind(7, entry.after_json)
                             .Bind(8, entry.prev_hash)
                             .Bind(9, entry.hash)
                             .Bind(10, entry.identity_json)
                             .Run());
  APPBAN_ASSIGN_OR_RETURN(auto head_update,
                          Statement::Prepare(db,
                                             "INSERT INTO audit_head(id, seq, hash) VALUES(1, ?1, ?2) "
                                             "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"));
  APPBAN_RETURN_IF_ERROR(head_update.Bind(1, entry.seq).Bind(2, entry.hash).Run());
  return db.SetPendingAuditHead(AuditHead{entry.seq, entry.hash});
}

}  // namespace sqlite

}  // namespace appban::store
