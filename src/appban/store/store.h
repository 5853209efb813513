// The policy store: rules, waivers, groups, vendors, issued bundles and the audit chain, behind one
// interface so the embedded SQLite implementation (sqlite_store.h) can be joined by a PostgreSQL one
// without changing callers. No database types appear here.
//
// Contract for every implementation:
//   - Every mutation runs in one transaction together with its audit entry: both are stored, or
//     neither is. A mutation that returned OK is durable (it survives a crash or power loss).
//   - Updates are optimistic: the caller passes back the revision it read; a concurrent change
//     makes the update fail with kFailedPrecondition instead of silently overwriting it. On
//     success the value's revision is advanced.
//   - The audit log is append-only and hash-chained (audit.h); AppendAudit records decisions that
//     change nothing else (a bundle verified, an evaluation run).
// A Store object is not thread-safe: use one per thread (SQLite) or serialize calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/policy/model.h"
#include "appban/store/audit.h"
#include "appban/store/change.h"

namespace appban::store {

// A bundle the server issued: kept so versions only go up and any version can be re-served.
struct BundleRecord {
  int64_t version = 0;
  UnixSeconds issued_at = 0;
  std::string rules_hash;
  std::string key_id;
  std::string envelope;  // the signed envelope text, exactly as served
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<std::vector<policy::Rule>> ListRules() = 0;
  // One page of a list in key order (the rule or waiver id, the group name, the audit seq): at
  // most `limit` rows whose key is greater than `after` ("" or 0: from the first). Only those rows
  // are read (keyset paging on the primary key), so the last page of a long list costs what the
  // first does. The admin API lists through these.
  virtual Result<std::vector<policy::Rule>> ListRulesAfter(std::string_view after_id, size_t limit) = 0;
  // kNotFound when there is no such rule.
  virtual Result<policy::Rule> GetRule(std::string_view id) = 0;
  // kAlreadyExists when the id is taken. Sets rule.revision to 1.
  virtual Status CreateRule(policy::Rule& rule, const AuditRecord& audit) = 0;
  virtual Status UpdateRule(policy::Rule& rule, const AuditRecord& audit) = 0;

  virtual Result<std::vector<policy::Waiver>> ListWaivers() = 0;
  virtual Result<std::vector<policy::Waiver>> ListWaiversAfter(std::string_view after_id, size_t limit) = 0;
  virtual Result<policy::Waiver> GetWaiver(std::string_view id) = 0;
  // kNotFound when the waiver's rule does not exist.
  virtual Status CreateWaiver(policy::Waiver& waiver, const AuditRecord& audit) = 0;
  virtual Status UpdateWaiver(policy::Waiver& waiver, const AuditRecord& audit) = 0;

  virtual Result<std::vector<policy::Group>> ListGroups() = 0;
  virtual Result<std::vector<policy::Group>> ListGroupsAfter(std::string_view after_name, size_t limit) = 0;
  virtual Result<policy::Group> GetGroup(std::string_view name) = 0;
  // Creates (revision 0 passed in) or updates (the revision read) a group.
  virtual Status PutGroup(policy::Group& group, const AuditRecord& audit) = 0;
  virtual Status DeleteGroup(std::string_view name, const AuditRecord& audit) = 0;

  virtual Result<std::vector<policy::Vendor>> ListVendors() = 0;
  virtual Status PutVendor(policy::Vendor& vendor, const AuditRecord& audit) = 0;

  // 0 when no bundle was issued yet.
  virtual Result<int64_t> LatestBundleVersion() = 0;
  // kFailedPrecondition unless record.version is greater than every version issued before.
  virtual Status RecordBundle(const BundleRecord& record, const AuditRecord& audit) = 0;
  virtual Result<BundleRecord> GetBundle(int64_t version) = 0;

  // Pending changes (change.h): a decision waiting for its quorum. Listed in id order.
  virtual Result<std::vector<Change>> ListChangesAfter(std::string_view after_id, size_t limit) = 0;
  // kNotFound when there is no such change.
  virtual Result<Change> GetChange(std::string_view id) = 0;
  // Creates (change.revision 0) or updates (the revision read; kFailedPrecondition when another
  // approval came first) a change, with its audit entry.
  virtual Status PutChange(Change& change, const AuditRecord& audit) = 0;

  virtual Status AppendAudit(const AuditRecord& audit) = 0;
  virtual Result<std::vector<AuditEntry>> ReadAudit() = 0;
  virtual Result<std::vector<AuditEntry>> ReadAuditAfter(int64_t after_seq, size_t limit) = 0;
  // The `limit` entries before `before_seq`, newest first (INT64_MAX: from the latest entry): the
  // console shows the log from its head without walking it from the start.
  virtual Result<std::vector<AuditEntry>> ReadAuditBefore(int64_t before_seq, size_t limit) = 0;
  // Walks the whole chain; problems are reported in the result, not as an error Status.
  virtual Result<AuditVerification> VerifyAudit() = 0;

  // The backend's own consistency check (SQLite: PRAGMA integrity_check + foreign_key_check).
  virtual Status CheckIntegrity() = 0;
};

// Opens (creating if needed) the SQLite store at `path`, applying pending schema migrations.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);
// The PostgreSQL store: OpenPostgresStore in postgres_store.h.

}  // namespace appban::store
