// PostgreSQL implementation of Store (store.h), the twin of sqlite_store.cc: the same tables and
// columns, documents as their canonical JSON text (TEXT, not jsonb: jsonb would re-spell the
// bytes the audit chain hashed), the same append-only guards as triggers. What differs:
//   - Several server nodes share the database, so every mutation takes a transaction-scoped
//     advisory lock (kWriteLock) before it reads the audit head: appends from all nodes are
//     serialised and the chain stays linear.
//   - Migrations are versioned in appban_schema_migrations and applied once per cluster under a
//     session advisory lock (kMigrationLock); each one commits with its version row.
//   - The signed audit checkpoint (audit_checkpoint.h) is a file beside a SQLite database; the
//     database of a cluster has no such place, so each node keeps its own in its data directory
//     when the opener names one (docs/postgresql.md, "Audit chain").
#include "appban/store/postgres_store.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "appban/policy/limits.h"
#include "appban/store/audit_checkpoint.h"
#include "appban/store/fleet_tables.h"
#include "appban/store/postgres.h"

namespace appban::store {
namespace {

using postgres::Connection;
using postgres::P;
using postgres::Rows;
using postgres::Transaction;

// Advisory lock keys (one 64-bit space per database): arbitrary constants, spelled "appban" + n.
// kWriteLock serialises every write transaction, of the policy store and of the fleet store
// (fleet_tables.h, PostgresBackend), across all nodes: one writer at a time, as on SQLite.
constexpr int64_t kMigrationLock = 0x617070620001;
using postgres::kWriteLock;

// Migration N (1-based) brings the schema from version N-1 to N. Append only; never edit.
// docs/postgresql.md maps them to the SQLite migrations (sqlite_store.cc, kMigrations).
constexpr std::string_view kMigrations[] = {
    // 1: the policy store with its audit chain: SQLite 1 and 4, and the audit identity of 6.
    R"sql(
CREATE TABLE rules (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  revision BIGINT NOT NULL,
  doc TEXT NOT NULL
);
CREATE TABLE waivers (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL REFERENCES rules(id),
  revision BIGINT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX waivers_by_rule ON waivers(rule_id);
CREATE TABLE device_groups (
  name TEXT PRIMARY KEY,
  revision BIGINT NOT NULL,
  doc TEXT NOT NULL
);
CREATE TABLE vendors (
  name TEXT PRIMARY KEY,
  revision BIGINT NOT NULL,
  doc TEXT NOT NULL
);
CREATE TABLE bundles (
  version BIGINT PRIMARY KEY CHECK (version > 0),
  issued_at TEXT NOT NULL,
  rules_hash TEXT NOT NULL,
  key_id TEXT NOT NULL,
  envelope TEXT NOT NULL
);
CREATE TABLE audit (
  seq BIGINT PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  object TEXT NOT NULL,
  before_json TEXT NOT NULL,
  after_json TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  identity_json TEXT NOT NULL DEFAULT 'null'
);
CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL
);
-- Append-only in the database itself; the hash chain catches whoever drops these triggers.
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
-- The head row can only advance by one, to the entry just appended, and never be deleted.
CREATE FUNCTION audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'UPDATE' THEN
    RAISE EXCEPTION 'the audit head cannot be deleted';
  END IF;
  IF NEW.id IS DISTINCT FROM OLD.id OR NEW.seq IS DISTINCT FROM OLD.seq + 1 OR
     NEW.hash IS DISTINCT FROM (SELECT hash FROM audit WHERE seq = NEW.seq) THEN
    RAISE EXCEPTION 'the audit head only advances to the entry just appended';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head FOR EACH ROW EXECUTE FUNCTION audit_head_guard();
CREATE TRIGGER audit_head_no_update BEFORE UPDATE ON audit_head FOR EACH ROW EXECUTE FUNCTION audit_head_guard();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
)sql",
    // 2: pending changes waiting for their quorum: SQLite 8 (store/change.h, docs/identity.md).
    R"sql(
CREATE TABLE changes (
  name TEXT PRIMARY KEY,
  revision BIGINT NOT NULL,
  doc TEXT NOT NULL
);
)sql",  // 3: the fleet store (fleet.h, fleet_tables.h) as it stands at SQLite 11: SQLite 2, 3, 5, 7
    // and 9 (devices, tokens, inventories, events, rule states, assessments, settings), 6 and 10
    // (users), 11 (ended console sessions). Times are BIGINT Unix seconds as on SQLite; text
    // compares byte by byte (COLLATE "C", SQLite's BINARY), so listings and keyset paging order
    // rows the same on both backends whatever the database's locale.
    R"sql(
CREATE TABLE api_tokens (
  id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL,
  role TEXT COLLATE "C" NOT NULL CHECK (role IN ('admin', 'analyst', 'auditor')),
  secret_hash TEXT COLLATE "C" NOT NULL,
  created_by TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT,
  user_id TEXT COLLATE "C"
);
CREATE TABLE enrollment_tokens (
  id TEXT COLLATE "C" PRIMARY KEY,
  group_name TEXT COLLATE "C" NOT NULL,
  secret_hash TEXT COLLATE "C" NOT NULL,
  created_by TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  note TEXT COLLATE "C" NOT NULL,
  used_at BIGINT,
  used_by_device TEXT COLLATE "C" NOT NULL DEFAULT '',
  revoked_at BIGINT,
  max_uses BIGINT NOT NULL DEFAULT 1 CHECK (max_uses >= 1),
  uses BIGINT NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses)
);
CREATE TABLE devices (
  id TEXT COLLATE "C" PRIMARY KEY,
  secret_hash TEXT COLLATE "C" NOT NULL,
  hostname TEXT COLLATE "C" NOT NULL,
  platform TEXT COLLATE "C" NOT NULL,
  agent_version TEXT COLLATE "C" NOT NULL,
  group_name TEXT COLLATE "C" NOT NULL,
  enrolled_at BIGINT NOT NULL,
  enrollment_token_id TEXT COLLATE "C" REFERENCES enrollment_tokens(id),
  revoked_at BIGINT,
  revoked_by TEXT COLLATE "C" NOT NULL DEFAULT '',
  applied_version BIGINT NOT NULL DEFAULT 0,
  applied_rules_hash TEXT COLLATE "C" NOT NULL DEFAULT '',
  inventory_hash TEXT COLLATE "C" NOT NULL DEFAULT '',
  inventory_at BIGINT,
  last_seen BIGINT NOT NULL,
  evaluated_version BIGINT NOT NULL DEFAULT 0,
  evaluated_inventory_hash TEXT COLLATE "C" NOT NULL DEFAULT '',
  last_event_seq BIGINT NOT NULL DEFAULT 0,
  rules_hash_expected TEXT COLLATE "C",
  rules_hash_mismatch_since BIGINT,
  source TEXT COLLATE "C" NOT NULL DEFAULT 'agent',
  mdm_connector TEXT COLLATE "C" NOT NULL DEFAULT '',
  mdm_id TEXT COLLATE "C" NOT NULL DEFAULT '',
  mdm_groups TEXT COLLATE "C" NOT NULL DEFAULT '',
  mdm_pushed_at BIGINT,
  mdm_synced_at BIGINT,
  mdm_compliant BIGINT,
  mdm_compliant_at BIGINT,
  cannot_enforce TEXT COLLATE "C" NOT NULL DEFAULT '',
  mdm_gone_at BIGINT,
  mdm_seen_at BIGINT,
  CHECK ((source = 'agent') = (enrollment_token_id IS NOT NULL))
);
CREATE INDEX devices_rules_hash_mismatch ON devices(rules_hash_mismatch_since)
  WHERE rules_hash_mismatch_since IS NOT NULL;
CREATE INDEX devices_by_source ON devices(source, platform, id);
CREATE INDEX devices_by_connector ON devices(mdm_connector, mdm_seen_at) WHERE mdm_connector != '';
CREATE INDEX devices_by_enrollment_token ON devices(enrollment_token_id) WHERE enrollment_token_id IS NOT NULL;
CREATE TABLE device_inventories (
  device_id TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(id),
  match_records TEXT COLLATE "C",
  json TEXT COLLATE "C" NOT NULL
);
CREATE TABLE device_events (
  device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id),
  seq BIGINT NOT NULL,
  at BIGINT NOT NULL,
  kind TEXT COLLATE "C" NOT NULL,
  platform TEXT COLLATE "C" NOT NULL,
  app TEXT COLLATE "C" NOT NULL,
  rule_id TEXT COLLATE "C" NOT NULL,
  detail TEXT COLLATE "C" NOT NULL,
  received_at BIGINT NOT NULL,
  PRIMARY KEY (device_id, seq)
);
CREATE INDEX device_events_by_rule ON device_events(rule_id, received_at);
CREATE TABLE device_rule_states (
  device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id),
  rule_id TEXT COLLATE "C" NOT NULL,
  state TEXT COLLATE "C" NOT NULL CHECK (state IN ('compliant', 'violating', 'waived')),
  since BIGINT NOT NULL,
  had_app BIGINT NOT NULL,
  compliant_at BIGINT,
  version BIGINT NOT NULL,
  PRIMARY KEY (device_id, rule_id)
);
CREATE INDEX device_rule_states_by_rule ON device_rule_states(rule_id, state, since, had_app, compliant_at, version);
CREATE TABLE assessments (
  sha256 TEXT COLLATE "C" PRIMARY KEY,
  package TEXT COLLATE "C" NOT NULL,
  version TEXT COLLATE "C" NOT NULL,
  score DOUBLE PRECISION NOT NULL,
  band TEXT COLLATE "C" NOT NULL,
  uploaded_by TEXT COLLATE "C" NOT NULL,
  uploaded_at BIGINT NOT NULL,
  file_size BIGINT NOT NULL,
  report_json TEXT COLLATE "C" NOT NULL
);
CREATE INDEX assessments_by_time ON assessments(uploaded_at);
CREATE TABLE server_settings (
  key TEXT COLLATE "C" PRIMARY KEY,
  value TEXT COLLATE "C" NOT NULL
);
CREATE TABLE users (
  id TEXT COLLATE "C" PRIMARY KEY,
  issuer TEXT COLLATE "C" NOT NULL,
  subject TEXT COLLATE "C" NOT NULL,
  display_name TEXT COLLATE "C" NOT NULL,
  kind TEXT COLLATE "C" NOT NULL CHECK (kind IN ('human', 'service')),
  owner_id TEXT COLLATE "C" REFERENCES users(id),
  granted_role TEXT COLLATE "C" CHECK (granted_role IN ('admin', 'analyst', 'auditor')),
  claim_role TEXT COLLATE "C" CHECK (claim_role IN ('admin', 'analyst', 'auditor')),
  created_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL,
  person_id TEXT COLLATE "C" NOT NULL DEFAULT '',
  UNIQUE (issuer, subject),
  CHECK ((kind = 'service') = (owner_id IS NOT NULL))
);
CREATE INDEX users_by_owner ON users(owner_id) WHERE owner_id IS NOT NULL;
CREATE INDEX users_by_person ON users(person_id) WHERE person_id != '';
ALTER TABLE api_tokens ADD FOREIGN KEY (user_id) REFERENCES users(id);
CREATE TABLE ended_sessions (
  id TEXT COLLATE "C" PRIMARY KEY,
  user_id TEXT COLLATE "C" NOT NULL,
  ended_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX ended_sessions_by_expiry ON ended_sessions(expires_at);
CREATE TABLE session_cutoffs (
  user_id TEXT COLLATE "C" PRIMARY KEY REFERENCES users(id),
  not_before BIGINT NOT NULL
);
)sql",
    // 4: device search: SQLite 12 (the device_apps index of each latest inventory, filled from the
    // inventories already stored, and host names by their lower case).
    R"sql(
CREATE TABLE device_apps (
  device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id),
  app_id TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (device_id, app_id)
);
CREATE INDEX devices_by_hostname ON devices(lower(hostname), id);
INSERT INTO device_apps(app_id, device_id)
  SELECT DISTINCT app ->> 'id', inventory.device_id
  FROM device_inventories AS inventory, jsonb_array_elements(inventory.json::jsonb) AS app
  WHERE jsonb_typeof(app -> 'id') = 'string';
)sql",
    // 5: the counts of GET /v1/admin/mdm from the index: SQLite 13.
    R"sql(
DROP INDEX devices_by_source;
CREATE INDEX devices_by_source ON devices(source, platform, id) INCLUDE (revoked_at, cannot_enforce);
)sql",
    // 6: rate limits every node shares (FleetStore::TakeSharedRateTokens: enrolment and sign-in
    // attempts per client address), token buckets on the database's clock. No SQLite counterpart:
    // the workers of one machine share theirs in memory (server/shared_rate_limiter.h).
    R"sql(
CREATE TABLE rate_buckets (
  bucket TEXT COLLATE "C" PRIMARY KEY,
  tokens DOUBLE PRECISION NOT NULL,
  refilled_at TIMESTAMPTZ NOT NULL,
  full_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX rate_buckets_by_full_at ON rate_buckets(full_at);
CREATE FUNCTION appban_take_rate_tokens(wanted BIGINT, p_bucket TEXT, burst DOUBLE PRECISION,
                                        per_minute DOUBLE PRECISION) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
  available DOUBLE PRECISION;
  granted BIGINT;
  taken_at TIMESTAMPTZ;
BEGIN
  -- A bucket is no decision to keep: the commit need not wait for its WAL to reach the disk (a
  -- crash forgets the last moments of counting, never anything acknowledged). Waiting would cost
  -- every attempt a flush; with one flush per enrolment an enrolling fleet crawled.
  PERFORM set_config('synchronous_commit', 'off', true);
  INSERT INTO rate_buckets(bucket, tokens, refilled_at, full_at) VALUES (p_bucket, burst, now(), now())
    ON CONFLICT (bucket) DO NOTHING;
  -- The row lock makes concurrent takers (any node) queue: each sees what the last one left.
  SELECT LEAST(burst, tokens + GREATEST(0, EXTRACT(EPOCH FROM now() - refilled_at)) * per_minute / 60),
         GREATEST(now(), refilled_at)
    INTO available, taken_at FROM rate_buckets WHERE bucket = p_bucket FOR UPDATE;
  granted := GREATEST(0, LEAST(wanted, floor(available)::BIGINT));
  UPDATE rate_buckets
     SET tokens = available - granted, refilled_at = taken_at,
         full_at = CASE WHEN per_minute > 0
                        THEN taken_at + make_interval(secs => (burst - (available - granted)) * 60 / per_minute)
                        ELSE 'infinity' END
   WHERE bucket = p_bucket;
  -- Now and then, forget the buckets that are full again: a missing bucket is a full one. Rows
  -- another taker holds are skipped, so two takers never wait on each other's rows.
  IF random() < 0.01 THEN
    DELETE FROM rate_buckets WHERE bucket IN (
      SELECT bucket FROM rate_buckets WHERE full_at < now() AND bucket <> p_bucket FOR UPDATE SKIP LOCKED);
  END IF;
  RETURN granted;
END $$;
)sql",
};
constexpr int64_t kSchemaVersion = static_cast<int64_t>(std::size(kMigrations));

// The guards CheckIntegrity insists on (a missing one means someone dropped it).
constexpr std::string_view kGuardTriggers[] = {"audit_no_update",      "audit_no_delete",
                                               "audit_no_truncate",    "audit_head_no_delete",
                                               "audit_head_no_update", "audit_head_no_truncate"};

Result<int64_t> ReadSchemaVersion(Connection& db) {
  APPBAN_ASSIGN_OR_RETURN(Rows rows, db.Query("SELECT COALESCE(MAX(version), 0) FROM appban_schema_migrations"));
  return rows.Int(0, 0);
}

// Every node runs this at start-up; the session advisory lock makes the others wait, then find
// the schema current. Each migration commits with its version row, so a node killed half-way
// leaves a schema at a known version.
Status Migrate(Connection& db) {
  APPBAN_RETURN_IF_ERROR(db.Query("SELECT pg_advisory_lock($1)", {P(kMigrationLock)}).status());
  auto run = [&]() -> Status {
    APPBAN_RETURN_IF_ERROR(
        db.ExecScript("CREATE TABLE IF NOT EXISTS appban_schema_migrations ("
                      "version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"));
    APPBAN_ASSIGN_OR_RETURN(int64_t version, ReadSchemaVersion(db));
    if (version > kSchemaVersion) {
      return Status::Unsupported(db.description() + ": database schema version " + std::to_string(version) +
                                 " is newer than this appban understands (" + std::to_string(kSchemaVersion) + ")");
    }
    for (int64_t next = version; next < kSchemaVersion; ++next) {
      APPBAN_ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(db));
      APPBAN_RETURN_IF_ERROR(db.ExecScript(kMigrations[next]));
      APPBAN_RETURN_IF_ERROR(
          db.Query("INSERT INTO appban_schema_migrations(version) VALUES($1)", {P(next + 1)}).status());
      APPBAN_RETURN_IF_ERROR(transaction.Commit());
    }
    return Status::Ok();
  };
  Status status = run();
  Status unlocked = db.Query("SELECT pg_advisory_unlock($1)", {P(kMigrationLock)}).status();
  return status.ok() ? unlocked : status;
}

// A LIMIT for PostgreSQL: NULL is no limit.
postgres::Param SqlLimit(size_t limit) {
  return limit > static_cast<size_t>(INT64_MAX) ? std::nullopt : P(static_cast<int64_t>(limit));
}

Result<std::optional<AuditHead>> ReadAuditHead(Connection& db) {
  APPBAN_ASSIGN_OR_RETURN(Rows rows, db.Query("SELECT seq, hash FROM audit_head WHERE id = 1"));
  if (rows.empty()) return std::optional<AuditHead>();
  APPBAN_ASSIGN_OR_RETURN(int64_t seq, rows.Int(0, 0));
  return std::optional<AuditHead>(AuditHead{seq, rows.Text(0, 1)});
}

Status AppendAuditEntry(Connection& db, const AuditRecord& audit) {
  APPBAN_ASSIGN_OR_RETURN(std::optional<AuditHead> head, ReadAuditHead(db));
  int64_t seq = head ? head->seq + 1 : 1;
  std::string prev = head ? head->hash : std::string(kAuditGenesisHash);
  APPBAN_ASSIGN_OR_RETURN(AuditEntry entry, ChainEntry(audit, seq, prev));
  APPBAN_RETURN_IF_ERROR(
      db.Query("INSERT INTO audit(seq, at, actor, action, object, before_json, after_json, "
               "prev_hash, hash, identity_json) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
               {P(entry.seq), P(FormatTimestamp(entry.at)), P(entry.actor), P(entry.action), P(entry.object),
                P(entry.before_json), P(entry.after_json), P(entry.prev_hash), P(entry.hash), P(entry.identity_json)})
          .status());
  APPBAN_RETURN_IF_ERROR(db.Query("INSERT INTO audit_head(id, seq, hash) VALUES(1, $1, $2) "
                                  "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                                  {P(entry.seq), P(entry.hash)})
                             .status());
  if (db.audit_checkpoint() != nullptr) db.audit_checkpoint()->SetPending(AuditHead{entry.seq, entry.hash});
  return Status::Ok();
}

class PostgresStore final : public Store {
 public:
  // `audit_checkpoint_dir`: the node's signed checkpoint VerifyAudit checks the chain against
  // (empty: none kept, only the head row is checked).
  PostgresStore(Connection db, std::string audit_checkpoint_dir)
      : db_(std::move(db)), audit_checkpoint_dir_(std::move(audit_checkpoint_dir)) {}

  Result<std::vector<policy::Rule>> ListRules() override { return ListRulesAfter("", SIZE_MAX); }
  Result<std::vector<policy::Rule>> ListRulesAfter(std::string_view after_id, size_t limit) override {
    return LoadPage<policy::Rule>("SELECT doc, revision FROM rules WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit,
                                  policy::RuleFromJson);
  }
  Result<policy::Rule> GetRule(std::string_view id) override {
    return LoadOne<policy::Rule>("SELECT doc, revision FROM rules WHERE id = $1", id, "rule", policy::RuleFromJson);
  }
  Status CreateRule(policy::Rule& rule, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      policy::Rule stored = rule;
      stored.revision = 1;
      APPBAN_ASSIGN_OR_RETURN(std::string doc, CanonicalJson(policy::RuleToJson(stored, true)));
      auto inserted = db_.Query("INSERT INTO rules(id, state, revision, doc) VALUES($1, $2, 1, $3)",
                                {P(rule.id), P(policy::RuleStateName(rule.state)), P(doc)});
      if (inserted.status().code() == StatusCode::kAlreadyExists) {
        return Status::AlreadyExists("rule " + rule.id + " already exists");
      }
      APPBAN_RETURN_IF_ERROR(inserted.status());
      rule.revision = 1;
      return Status::Ok();
    });
  }
  Status UpdateRule(policy::Rule& rule, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      policy::Rule stored = rule;
      stored.revision = rule.revision + 1;
      APPBAN_ASSIGN_OR_RETURN(std::string doc, CanonicalJson(policy::RuleToJson(stored, true)));
      APPBAN_ASSIGN_OR_RETURN(Rows updated,
                              db_.Query("UPDATE rules SET state = $1, revision = revision + 1, doc = $2 "
                                        "WHERE id = $3 AND revision = $4",
                                        {P(policy::RuleStateName(rule.state)), P(doc), P(rule.id), P(rule.revision)}));
      APPBAN_RETURN_IF_ERROR(ExpectOneChange(updated, "rule", rule.id));
      rule.revision = stored.revision;
      return Status::Ok();
    });
  }

  Result<std::vector<policy::Waiver>> ListWaivers() override { return ListWaiversAfter("", SIZE_MAX); }
  Result<std::vector<policy::Waiver>> ListWaiversAfter(std::string_view after_id, size_t limit) override {
    return LoadPage<policy::Waiver>("SELECT doc, revision FROM waivers WHERE id > $1 ORDER BY id LIMIT $2", after_id,
                                    limit, policy::WaiverFromJson);
  }
  Result<policy::Waiver> GetWaiver(std::string_view id) override {
    return LoadOne<policy::Waiver>("SELECT doc, revision FROM waivers WHERE id = $1", id, "waiver",
                                   policy::WaiverFromJson);
  }
  Status CreateWaiver(policy::Waiver& waiver, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      policy::Waiver stored = waiver;
      stored.revision = 1;
      APPBAN_ASSIGN_OR_RETURN(std::string doc, CanonicalJson(policy::WaiverToJson(stored, true)));
      auto inserted = db_.Query("INSERT INTO waivers(id, rule_id, revision, doc) VALUES($1, $2, 1, $3)",
                                {P(waiver.id), P(waiver.rule_id), P(doc)});
      if (inserted.status().code() == StatusCode::kAlreadyExists) {
        return Status::AlreadyExists("waiver " + waiver.id + " already exists");
      }
      if (inserted.status().code() == StatusCode::kNotFound) {
        return Status::NotFound("waiver " + waiver.id + ": no rule " + waiver.rule_id);
      }
      APPBAN_RETURN_IF_ERROR(inserted.status());
      waiver.revision = 1;
      return Status::Ok();
    });
  }
  Status UpdateWaiver(policy::Waiver& waiver, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      policy::Waiver stored = waiver;
      stored.revision = waiver.revision + 1;
      APPBAN_ASSIGN_OR_RETURN(std::string doc, CanonicalJson(policy::WaiverToJson(stored, true)));
      APPBAN_ASSIGN_OR_RETURN(Rows updated, db_.Query("UPDATE waivers SET revision = revision + 1, doc = $1 "
                                                      "WHERE id = $2 AND revision = $3",
                                                      {P(doc), P(waiver.id), P(waiver.revision)}));
      APPBAN_RETURN_IF_ERROR(ExpectOneChange(updated, "waiver", waiver.id));
      waiver.revision = stored.revision;
      return Status::Ok();
    });
  }

  Result<std::vector<policy::Group>> ListGroups() override { return ListGroupsAfter("", SIZE_MAX); }
  Result<std::vector<policy::Group>> ListGroupsAfter(std::string_view after_name, size_t limit) override {
    return LoadPage<policy::Group>("SELECT doc, revision FROM device_groups WHERE name > $1 ORDER BY name LIMIT $2",
                                   after_name, limit, policy::GroupFromJson);
  }
  Result<policy::Group> GetGroup(std::string_view name) override {
    return LoadOne<policy::Group>("SELECT doc, revision FROM device_groups WHERE name = $1", name, "group",
                                  policy::GroupFromJson);
  }
  Status PutGroup(policy::Group& group, const AuditRecord& audit) override {
    return PutDocument("device_groups", group.name, "group", policy::GroupToJson(group), group.revision, audit);
  }
  Status DeleteGroup(std::string_view name, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      APPBAN_ASSIGN_OR_RETURN(Rows deleted, db_.Query("DELETE FROM device_groups WHERE name = $1", {P(name)}));
      if (deleted.affected() != 1) return Status::NotFound("no group " + std::string(name));
      return Status::Ok();
    });
  }

  Result<std::vector<policy::Vendor>> ListVendors() override {
    return LoadPage<policy::Vendor>("SELECT doc, revision FROM vendors WHERE name > $1 ORDER BY name LIMIT $2", "",
                                    SIZE_MAX, policy::VendorFromJson);
  }
  Status PutVendor(policy::Vendor& vendor, const AuditRecord& audit) override {
    return PutDocument("vendors", vendor.name, "vendor", policy::VendorToJson(vendor), vendor.revision, audit);
  }

  Result<std::vector<Change>> ListChangesAfter(std::string_view after_id, size_t limit) override {
    return LoadPage<Change>("SELECT doc, revision FROM changes WHERE name > $1 ORDER BY name LIMIT $2", after_id, limit,
                            ChangeFromJson);
  }
  Result<Change> GetChange(std::string_view id) override {
    return LoadOne<Change>("SELECT doc, revision FROM changes WHERE name = $1", id, "change", ChangeFromJson);
  }
  Status PutChange(Change& change, const AuditRecord& audit) override {
    return PutDocument("changes", change.id, "change", ChangeToJson(change), change.revision, audit);
  }

  Result<int64_t> LatestBundleVersion() override {
    APPBAN_ASSIGN_OR_RETURN(Rows rows, db_.Query("SELECT COALESCE(MAX(version), 0) FROM bundles"));
    return rows.Int(0, 0);
  }
  Status RecordBundle(const BundleRecord& record, const AuditRecord& audit) override {
    return Mutate(audit, [&]() -> Status {
      APPBAN_ASSIGN_OR_RETURN(int64_t latest, LatestBundleVersion());
      if (record.version <= latest) {
        return Status::FailedPrecondition("bundle version " + std::to_string(record.version) +
                                          " is not above the latest issued version " + std::to_string(latest));
      }
      APPBAN_RETURN_IF_ERROR(
          db_.Query("INSERT INTO bundles(version, issued_at, rules_hash, key_id, envelope) VALUES($1, $2, $3, $4, $5)",
                    {P(record.version), P(FormatTimestamp(record.issued_at)), P(record.rules_hash), P(record.key_id),
                     P(record.envelope)})
              .status());
      // Delivered to every listening node when this transaction commits, never before or if it
      // rolls back.
      return db_.Query("SELECT pg_notify($1, $2)", {P(kBundleChannel), P(record.version)}).status();
    });
  }
  Result<BundleRecord> GetBundle(int64_t version) override {
    APPBAN_ASSIGN_OR_RETURN(
        Rows rows,
        db_.Query("SELECT issued_at, rules_hash, key_id, envelope FROM bundles WHERE version = $1", {P(version)}));
    if (rows.empty()) return Status::NotFound("no bundle version " + std::to_string(version));
    BundleRecord record;
    record.version = version;
    APPBAN_ASSIGN_OR_RETURN(record.issued_at, ParseTimestamp(rows.Text(0, 0)));
    record.rules_hash = rows.Text(0, 1);
    record.key_id = rows.Text(0, 2);
    record.envelope = rows.Text(0, 3);
    return record;
  }

  Status AppendAudit(const AuditRecord& audit) override {
    return Mutate(audit, [] { return Status::Ok(); });
  }

  Result<std::vector<AuditEntry>> ReadAudit() override { return ReadAuditAfter(0, SIZE_MAX); }
  Result<std::vector<AuditEntry>> ReadAuditAfter(int64_t after_seq, size_t limit) override {
    return ReadAuditEntries("WHERE seq > $1 ORDER BY seq LIMIT $2", after_seq, limit);
  }
  Result<std::vector<AuditEntry>> ReadAuditBefore(int64_t before_seq, size_t limit) override {
    return ReadAuditEntries("WHERE seq < $1 ORDER BY seq DESC LIMIT $2", before_seq, limit);
  }

  // `where_and_order` takes the seq as $1 and the limit as $2.
  Result<std::vector<AuditEntry>> ReadAuditEntries(std::string_view where_and_order, int64_t seq, size_t limit) {
    APPBAN_ASSIGN_OR_RETURN(Rows rows, db_.Query("SELECT seq, at, actor, action, object, before_json, after_json, "
                                                 "prev_hash, hash, identity_json FROM audit " +
                                                     std::string(where_and_order),
                                                 {P(seq), SqlLimit(limit)}));
    std::vector<AuditEntry> entries;
    entries.reserve(static_cast<size_t>(rows.size()));
    for (int row = 0; row < rows.size(); ++row) {
      AuditEntry entry;
      APPBAN_ASSIGN_OR_RETURN(entry.seq, rows.Int(row, 0));
      std::string at_text = rows.Text(row, 1);
      auto at = ParseTimestamp(at_text);
      // An edited timestamp, or another spelling of the same instant, shows up as a hash mismatch.
      entry.at = at.ok() && FormatTimestamp(*at) == at_text ? *at : -1;
      entry.actor = rows.Text(row, 2);
      entry.action = rows.Text(row, 3);
      entry.object = rows.Text(row, 4);
      entry.before_json = rows.Text(row, 5);
      entry.after_json = rows.Text(row, 6);
      entry.prev_hash = rows.Text(row, 7);
      entry.hash = rows.Text(row, 8);
      entry.identity_json = rows.Text(row, 9);
      entries.push_back(std::move(entry));
    }
    return entries;
  }

  Result<AuditVerification> VerifyAudit() override {
    // The checkpoint first: it is written after each commit, so read before the snapshot it can
    // only lag it, never lead it.
    AuditCheckpointReading checkpoint;
    if (!audit_checkpoint_dir_.empty()) checkpoint = ReadAuditCheckpoint(audit_checkpoint_dir_);
    // One snapshot: another node appending between the two reads would look like a truncation.
    APPBAN_ASSIGN_OR_RETURN(Transaction snapshot, Transaction::Begin(db_, Transaction::Mode::kRepeatableReadRO));
    APPBAN_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries, ReadAudit());
    APPBAN_ASSIGN_OR_RETURN(std::optional<AuditHead> head, ReadAuditHead(db_));
    APPBAN_RETURN_IF_ERROR(snapshot.Commit());
    return VerifyAuditChain(entries, head, checkpoint);
  }

  // PostgreSQL checks its own pages and constraints; what can go missing without it noticing are
  // the append-only guards and the schema version.
  Status CheckIntegrity() override {
    APPBAN_ASSIGN_OR_RETURN(int64_t version, ReadSchemaVersion(db_));
    if (version != kSchemaVersion) {
      return Status::FailedPrecondition(db_.description() + ": schema version " + std::to_string(version) +
                                        ", expected " + std::to_string(kSchemaVersion));
    }
    for (std::string_view name : kGuardTriggers) {
      APPBAN_ASSIGN_OR_RETURN(
          Rows rows, db_.Query("SELECT tgenabled FROM pg_trigger WHERE tgname = $1 AND NOT tgisinternal", {P(name)}));
      if (rows.empty() || rows.Text(0, 0) == "D") {
        return Status::Corruption(db_.description() + ": the audit guard trigger " + std::string(name) +
                                  " is missing or disabled");
      }
    }
    return Status::Ok();
  }

 private:
  // Runs `change` and appends `audit` to the chain in one transaction. The advisory lock makes
  // the read of the audit head and the append atomic across every node.
  Status Mutate(const AuditRecord& audit, const std::function<Status()>& change) {
    APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(audit.actor, "audit actor"));
    APPBAN_ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(db_));
    APPBAN_RETURN_IF_ERROR(db_.Query("SELECT pg_advisory_xact_lock($1)", {P(kWriteLock)}).status());
    APPBAN_RETURN_IF_ERROR(change());
    APPBAN_RETURN_IF_ERROR(AppendAuditEntry(db_, audit));
    return transaction.Commit();
  }

  static Status ExpectOneChange(const Rows& changed, std::string_view what, std::string_view id) {
    if (changed.affected() == 1) return Status::Ok();
    return Status::FailedPrecondition(
        std::string(what) + " " + std::string(id) +
        " does not exist or was changed by someone else since it was read; read it again");
  }

  Status PutDocument(std::string_view table, const std::string& key, std::string_view what, const Json& doc_json,
                     int64_t& revision, const AuditRecord& audit) {
    return Mutate(audit, [&]() -> Status {
      APPBAN_ASSIGN_OR_RETURN(std::string doc, CanonicalJson(doc_json));
      if (revision == 0) {
        auto inserted = db_.Query("INSERT INTO " + std::string(table) + "(name, revision, doc) VALUES($1, 1, $2)",
                                  {P(key), P(doc)});
        if (inserted.status().code() == StatusCode::kAlreadyExists) {
          return Status::AlreadyExists(std::string(what) + " " + key + " already exists");
        }
        APPBAN_RETURN_IF_ERROR(inserted.status());
      } else {
        APPBAN_ASSIGN_OR_RETURN(Rows updated, db_.Query("UPDATE " + std::string(table) +
                                                            " SET revision = revision + 1, doc = $1 "
                                                            "WHERE name = $2 AND revision = $3",
                                                        {P(doc), P(key), P(revision)}));
        APPBAN_RETURN_IF_ERROR(ExpectOneChange(updated, what, key));
      }
      ++revision;
      return Status::Ok();
    });
  }

  template <typename T>
  Result<std::vector<T>> LoadPage(std::string_view sql, std::string_view after, size_t limit,
                                  Result<T> (*parse)(const Json&)) {
    APPBAN_ASSIGN_OR_RETURN(Rows rows, db_.Query(sql, {P(after), SqlLimit(limit)}));
    std::vector<T> out;
    out.reserve(static_cast<size_t>(rows.size()));
    for (int row = 0; row < rows.size(); ++row) {
      APPBAN_ASSIGN_OR_RETURN(T value, ParseRow(rows, row, parse));
      out.push_back(std::move(value));
    }
    return out;
  }

  template <typename T>
  Result<T> LoadOne(std::string_view sql, std::string_view key, std::string_view what,
                    Result<T> (*parse)(const Json&)) {
    APPBAN_ASSIGN_OR_RETURN(Rows rows, db_.Query(sql, {P(key)}));
    if (rows.empty()) return Status::NotFound("no " + std::string(what) + " " + std::string(key));
    return ParseRow(rows, 0, parse);
  }

  template <typename T>
  static Result<T> ParseRow(const Rows& rows, int row, Result<T> (*parse)(const Json&)) {
    APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(rows.Text(row, 0), policy::kPolicyLimits.max_bundle_bytes,
                                                        policy::kPolicyLimits.max_json_depth, "stored document"));
    APPBAN_ASSIGN_OR_RETURN(T value, parse(json));
    APPBAN_ASSIGN_OR_RETURN(value.revision, rows.Int(row, 1));  // the column is authoritative
    return value;
  }

  Connection db_;
  std::string audit_checkpoint_dir_;
};

}  // namespace

namespace internal {

Result<postgres::Transaction> PostgresBackend::BeginWrite(Database& db) {
  APPBAN_ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(db));
  APPBAN_RETURN_IF_ERROR(db.Query("SELECT pg_advisory_xact_lock($1)", {P(kWriteLock)}).status());
  return transaction;
}

Result<postgres::Transaction> PostgresBackend::BeginRead(Database& db) {
  return Transaction::Begin(db, Transaction::Mode::kRepeatableReadRO);
}

// REQUIRES: inside BeginWrite's transaction, which holds kWriteLock.
Status PostgresBackend::AppendAudit(Database& db, const AuditRecord& audit) { return AppendAuditEntry(db, audit); }

Status PostgresBackend::AnnounceDevicesChanged(Database& db, const std::vector<std::string_view>& device_ids,
                                               bool revoked) {
  const std::string_view channel = revoked ? kDeviceChannel : kDeviceChangeChannel;
  // One notification per kMaxDeviceNotificationBytes of ids, one per line (ids never hold a line
  // break): a batch of check-ins costs a few notifications, not one per device.
  std::string payload;
  for (size_t i = 0; i < device_ids.size(); ++i) {
    if (!payload.empty()) payload += '\n';
    payload += device_ids[i];
    bool last = i + 1 == device_ids.size();
    if (last || payload.size() + 1 + device_ids[i + 1].size() > kMaxDeviceNotificationBytes) {
      APPBAN_RETURN_IF_ERROR(db.Query("SELECT pg_notify($1, $2)", {P(channel), P(payload)}).status());
      payload.clear();
    }
  }
  return Status::Ok();
}

Result<uint32_t> PostgresBackend::TakeSharedRateTokens(Database& db, std::string_view bucket, uint32_t wanted,
                                                       uint32_t burst, uint32_t per_minute) {
  APPBAN_ASSIGN_OR_RETURN(Rows rows,
                          db.Query("SELECT appban_take_rate_tokens(CAST($1 AS BIGINT), CAST($2 AS TEXT), "
                                   "CAST($3 AS DOUBLE PRECISION), CAST($4 AS DOUBLE PRECISION))",
                                   {P(int64_t{wanted}), P(bucket), P(int64_t{burst}), P(int64_t{per_minute})}));
  APPBAN_ASSIGN_OR_RETURN(int64_t granted, rows.Int(0, 0));
  return static_cast<uint32_t>(std::clamp<int64_t>(granted, 0, wanted));
}

Result<SchemaState> PostgresBackend::ReadSchemaState(Database& db) {
  APPBAN_ASSIGN_OR_RETURN(int64_t current, ReadSchemaVersion(db));
  return SchemaState{current, kSchemaVersion};
}

}  // namespace internal

namespace {

// A connection whose appends sign the node's checkpoint in `audit_checkpoint_dir` (none when empty).
Result<Connection> OpenKeepingCheckpoint(const std::string& url, const std::optional<std::string>& password,
                                         const std::string& audit_checkpoint_dir) {
  APPBAN_ASSIGN_OR_RETURN(Connection db, Connection::Open(url, password));
  if (!audit_checkpoint_dir.empty()) {
    APPBAN_ASSIGN_OR_RETURN(AuditCheckpointKeeper keeper, AuditCheckpointKeeper::Open(audit_checkpoint_dir));
    db.KeepAuditCheckpoint(std::make_shared<AuditCheckpointKeeper>(std::move(keeper)));
  }
  return db;
}

}  // namespace

Result<std::unique_ptr<FleetStore>> OpenPostgresFleetStore(const std::string& url,
                                                           const std::optional<std::string>& password,
                                                           const std::string& audit_checkpoint_dir) {
  APPBAN_ASSIGN_OR_RETURN(Connection db, OpenKeepingCheckpoint(url, password, audit_checkpoint_dir));
  APPBAN_RETURN_IF_ERROR(Migrate(db));
  return std::unique_ptr<FleetStore>(std::make_unique<internal::FleetTables<internal::PostgresBackend>>(std::move(db)));
}

Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url, const std::optional<std::string>& password,
                                                 const std::string& audit_checkpoint_dir) {
  APPBAN_ASSIGN_OR_RETURN(Connection db, OpenKeepingCheckpoint(url, password, audit_checkpoint_dir));
  APPBAN_RETURN_IF_ERROR(Migrate(db));
  return std::unique_ptr<Store>(std::make_unique<PostgresStore>(std::move(db), audit_checkpoint_dir));
}

Result<std::unique_ptr<Store>> OpenPostgresStoreAsIs(const std::string& url, const std::optional<std::string>& password,
                                                     const std::string& audit_checkpoint_dir) {
  APPBAN_ASSIGN_OR_RETURN(PostgresSchemaState schema, ReadPostgresSchemaState(url, password));
  if (schema.current == 0) return Status::NotFound("appban never created its tables in this database");
  if (schema.current > schema.expected) {
    return Status::Unsupported("database schema version " + std::to_string(schema.current) +
                               " is newer than this appban understands (" + std::to_string(schema.expected) + ")");
  }
  // Writes nothing: the checkpoint is only read, by VerifyAudit.
  APPBAN_ASSIGN_OR_RETURN(Connection db, Connection::Open(url, password));
  return std::unique_ptr<Store>(std::make_unique<PostgresStore>(std::move(db), audit_checkpoint_dir));
}

Result<PostgresSchemaState> ReadPostgresSchemaState(const std::string& url,
                                                    const std::optional<std::string>& password) {
  APPBAN_ASSIGN_OR_RETURN(Connection db, Connection::Open(url, password));
  APPBAN_ASSIGN_OR_RETURN(Rows exists, db.Query("SELECT to_regclass('appban_schema_migrations') IS NOT NULL"));
  PostgresSchemaState state;
  state.expected = kSchemaVersion;
  if (exists.Text(0, 0) == "t") {
    APPBAN_ASSIGN_OR_RETURN(state.current, ReadSchemaVersion(db));
  }
  return state;
}

}  // namespace appban::store
