// FleetTables: MDM devices — the import of a connector's inventory (a page per transaction),
// marking devices their MDM no longer lists, and the listings by source and platform.
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "appban/policy/model.h"
#include "appban/store/fleet_tables.h"

namespace appban::store::internal {
namespace {

constexpr std::string_view kGoneReason = "no longer listed by the MDM";

Status ValidateMdmDevice(const Device& device) {
  const FleetLimits& limits = kFleetLimits;
  if (!device.id.starts_with("m-")) return Status::InvalidArgument("an MDM device id starts with \"m-\"");
  APPBAN_RETURN_IF_ERROR(CheckText(device.id, limits.max_name_bytes, "device id", true));
  if (!device.IsMdm()) return Status::InvalidArgument("device " + device.id + ": an MDM device needs an MDM source");
  APPBAN_RETURN_IF_ERROR(CheckText(device.source, limits.max_platform_bytes, "device source", true));
  APPBAN_RETURN_IF_ERROR(CheckText(device.hostname, limits.max_hostname_bytes, "device name", true));
  APPBAN_RETURN_IF_ERROR(CheckText(device.platform, limits.max_platform_bytes, "device platform", true));
  APPBAN_RETURN_IF_ERROR(CheckText(device.mdm_connector, limits.max_name_bytes, "connector name", true));
  APPBAN_RETURN_IF_ERROR(CheckText(device.mdm_id, limits.max_note_bytes, "MDM device id", true));
  APPBAN_RETURN_IF_ERROR(CheckText(device.cannot_enforce, limits.max_note_bytes, "cannot-enforce reason", false));
  for (const std::string& group : device.mdm_groups) {
    APPBAN_RETURN_IF_ERROR(policy::ValidateIdentifier(group, "device group"));
  }
  return Status::Ok();
}

}  // namespace

template <typename B>
Status FleetTables<B>::UpsertMdmDevice(const Device& device, UnixSeconds seen_at, CheckinOutcome& outcome) {
  // An agent's row under the same id (not possible with derived "m-" ids, but the store does not
  // trust its callers) is never overwritten.
  APPBAN_ASSIGN_OR_RETURN(auto probe, Cached("SELECT source, revoked_at FROM devices WHERE id = ?1"));
  probe.statement().Bind(1, device.id);
  APPBAN_ASSIGN_OR_RETURN(bool exists, probe.statement().Step());
  if (exists && probe.statement().Text(0) == Device::kAgentSource) {
    outcome.status = Status::InvalidArgument("device " + device.id + " is an enrolled agent device");
    return Status::Ok();
  }
  // The MDM's compliant verdict keeps the time it was first reported until it changes.
  APPBAN_ASSIGN_OR_RETURN(
      auto lease,
      Cached("INSERT INTO devices(id, secret_hash, hostname, platform, agent_version, group_name, enrolled_at, "
             "enrollment_token_id, last_seen, source, mdm_connector, mdm_id, mdm_groups, mdm_pushed_at, "
             "mdm_synced_at, mdm_compliant, mdm_compliant_at, cannot_enforce, mdm_gone_at, mdm_seen_at) "
             "VALUES(?1, '', ?2, ?3, '', '', ?4, NULL, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
             "CASE WHEN CAST(?12 AS BIGINT) = 1 THEN CAST(?4 AS BIGINT) END, ?13, NULL, ?4) "
             "ON CONFLICT(id) DO UPDATE SET hostname = excluded.hostname, platform = excluded.platform, "
             "last_seen = excluded.last_seen, mdm_groups = excluded.mdm_groups, "
             "mdm_pushed_at = COALESCE(excluded.mdm_pushed_at, devices.mdm_pushed_at), mdm_synced_at = "
             "excluded.mdm_synced_at, "
             "mdm_compliant_at = CASE WHEN excluded.mdm_compliant = 1 THEN "
             "(CASE WHEN devices.mdm_compliant = 1 THEN devices.mdm_compliant_at ELSE CAST(?4 AS BIGINT) END) END, "
             "mdm_compliant = excluded.mdm_compliant, cannot_enforce = excluded.cannot_enforce, "
             "mdm_gone_at = NULL, mdm_seen_at = ?4"));
  std::optional<int64_t> compliant;
  if (device.mdm_compliant) compliant = *device.mdm_compliant ? 1 : 0;
  APPBAN_RETURN_IF_ERROR(lease.statement()
                             .Bind(1, device.id)
                             .Bind(2, device.hostname)
                             .Bind(3, device.platform)
                             .Bind(4, seen_at)
                             .Bind(5, device.last_seen)
                             .Bind(6, device.source)
                             .Bind(7, device.mdm_connector)
                             .Bind(8, device.mdm_id)
                             .Bind(9, JoinMdmGroups(device.mdm_groups))
                             .Bind(10, device.mdm_pushed_at)
                             .Bind(11, device.mdm_synced_at)
                             .Bind(12, compliant)
                             .Bind(13, device.cannot_enforce)
                             .Run());
  return Status::Ok();
}

template <typename B>
Result<std::vector<CheckinOutcome>> FleetTables<B>::ImportMdmDevices(std::span<const MdmDeviceWrite> writes,
                                                                     UnixSeconds seen_at) {
  std::vector<CheckinOutcome> outcomes(writes.size());
  for (size_t i = 0; i < writes.size(); ++i) {
    outcomes[i].device_id = writes[i].device.id;
    outcomes[i].status = ValidateMdmDevice(writes[i].device);
    if (outcomes[i].status.ok() && writes[i].checkin.device_id != writes[i].device.id) {
      outcomes[i].status = Status::InvalidArgument("device " + writes[i].device.id + ": check-in of another device");
    }
    if (outcomes[i].status.ok()) outcomes[i].status = ValidateCheckin(writes[i].checkin);
  }
  if (writes.empty()) return outcomes;
  APPBAN_ASSIGN_OR_RETURN(auto transaction, B::BeginWrite(db_));
  for (size_t i = 0; i < writes.size(); ++i) {
    if (!outcomes[i].status.ok()) continue;
    APPBAN_RETURN_IF_ERROR(UpsertMdmDevice(writes[i].device, seen_at, outcomes[i]));
    if (!outcomes[i].status.ok()) continue;
    APPBAN_RETURN_IF_ERROR(ApplyOne(writes[i].checkin, outcomes[i]));
  }
  APPBAN_RETURN_IF_ERROR(transaction.Commit());
  return outcomes;
}

template <typename B>
Result<int64_t> FleetTables<B>::MarkMdmDevicesGone(const std::string& connector, UnixSeconds seen_since,
                                                   UnixSeconds now) {
  APPBAN_ASSIGN_OR_RETURN(auto transaction, B::BeginWrite(db_));
  APPBAN_ASSIGN_OR_RETURN(auto update, Statement::Prepare(db_,
                                                          "UPDATE devices SET mdm_gone_at = ?3, cannot_enforce = ?4 "
                                                          "WHERE mdm_connector = ?1 AND mdm_seen_at < ?2 AND "
                                                          "mdm_gone_at IS NULL"));
  APPBAN_RETURN_IF_ERROR(update.Bind(1, connector).Bind(2, seen_since).Bind(3, now).Bind(4, kGoneReason).Run());
  int64_t marked = update.Changes();
  APPBAN_RETURN_IF_ERROR(transaction.Commit());
  return marked;
}

namespace {

// `text` as a LIKE pattern matching itself followed by anything: the wildcards `%` and `_` and the
// escape character in a search are literal (ESCAPE '\' in the statements).
std::string LikePrefixPattern(std::string_view text) {
  std::string pattern;
  pattern.reserve(text.size() + 1);
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') pattern += '\\';
    pattern += c;
  }
  pattern += '%';
  return pattern;
}

// The exclusive upper bound of an index range holding every text that starts with `prefix`: the
// prefix followed by the highest code point, U+10FFFF (still valid UTF-8, which PostgreSQL requires
// of a text parameter). The LIKE beside the range makes the match exact.
std::string PrefixRangeEnd(std::string_view prefix) { return std::string(prefix) + "\xF4\x8F\xBF\xBF"; }

std::string AsciiLower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

}  // namespace

template <typename B>
Result<std::vector<Device>> FleetTables<B>::ListDevicesWhere(const DeviceFilter& filter, std::string_view after_id,
                                                             size_t limit) {
  APPBAN_RETURN_IF_ERROR(CheckPageLimit(limit));
  // Only the conditions the filter sets are in the statement, so each can use its index (an
  // "?N = '' OR ..." would hide them from the planner).
  std::string sql = "SELECT " + std::string(kDeviceColumns) + " FROM devices WHERE id > ?1";
  std::vector<std::string> texts;  // bound as ?3, ?4, ... in order (?2 is the limit)
  auto parameter = [&](std::string value) {
    texts.push_back(std::move(value));
    return "?" + std::to_string(texts.size() + 2);
  };
  if (!filter.source.empty()) sql += " AND source = " + parameter(filter.source);
  if (!filter.platform.empty()) sql += " AND platform = " + parameter(filter.platform);
  if (!filter.hostname_prefix.empty()) {
    // lower() changes ASCII letters only, on SQLite and on PostgreSQL's "C" collation alike.
    std::string prefix = AsciiLower(filter.hostname_prefix);
    sql += " AND lower(hostname) >= " + parameter(prefix);
    sql += " AND lower(hostname) < " + parameter(PrefixRangeEnd(prefix));
    sql += " AND lower(hostname) LIKE " + parameter(LikePrefixPattern(prefix)) + " ESCAPE '\\'";
  }
  if (!filter.id_prefix.empty()) {
    sql += " AND id >= " + parameter(filter.id_prefix);
    sql += " AND id < " + parameter(PrefixRangeEnd(filter.id_prefix));
    sql += " AND id LIKE " + parameter(LikePrefixPattern(filter.id_prefix)) + " ESCAPE '\\'";
  }
  if (!filter.app.empty()) {
    // One probe of device_apps' key per device walked in id order: a common app fills the page
    // after a few devices, a rare one costs one probe per device of the fleet.
    sql += " AND EXISTS (SELECT 1 FROM device_apps WHERE device_apps.device_id = devices.id AND app_id = " +
           parameter(filter.app) + ")";
  }
  sql += " ORDER BY id LIMIT ?2";
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, sql));
  query.Bind(1, after_id).Bind(2, static_cast<int64_t>(limit));
  for (size_t i = 0; i < texts.size(); ++i) query.Bind(static_cast<int>(i + 3), texts[i]);
  return ReadRows<Device>(query, ReadDevice<Statement>);
}

template <typename B>
Result<std::vector<SourceCount>> FleetTables<B>::CountDevicesBySource() {
  APPBAN_ASSIGN_OR_RETURN(
      auto query,
      Statement::Prepare(
          db_,
          "SELECT source, platform, COUNT(*), SUM(CASE WHEN cannot_enforce != '' THEN 1 ELSE 0 END) FROM devices "
          "WHERE revoked_at IS NULL GROUP BY source, platform ORDER BY source, platform"));
  return ReadRows<SourceCount>(query, [](const Statement& row) {
    return SourceCount{row.Text(0), row.Text(1), row.Int(2), row.Int(3)};
  });
}

// Both backends (fleet_tables.h).
template class FleetTables<SqliteBackend>;
template class FleetTables<PostgresBackend>;

}  // namespace appban::store::internal
