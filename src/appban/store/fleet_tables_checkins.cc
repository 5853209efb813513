// FleetTables: check-ins (group-committed by the server's writer), the per-rule states they
// store and the events devices report.
#include "appban/store/fleet_tables.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "appban/store/match_records.h"

namespace appban::store::internal {

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
  if (write.rules_hash && write.rules_hash->mismatch) {
    APPBAN_RETURN_IF_ERROR(CheckText(write.rules_hash->mismatch->expected_hash, 128, "expected rules hash", false));
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

template <typename B>
Result<std::vector<CheckinOutcome>> FleetTables<B>::ApplyCheckins(std::span<const CheckinWrite> writes) {
  std::vector<CheckinOutcome> outcomes(writes.size());
  for (size_t i = 0; i < writes.size(); ++i) {
    outcomes[i].device_id = writes[i].device_id;
    outcomes[i].status = ValidateCheckin(writes[i]);
  }
  if (writes.empty()) return outcomes;

  APPBAN_ASSIGN_OR_RETURN(auto transaction, B::BeginWrite(db_));
  std::vector<std::string_view> changed;
  for (size_t i = 0; i < writes.size(); ++i) {
    if (!outcomes[i].status.ok()) continue;
    APPBAN_RETURN_IF_ERROR(ApplyOne(writes[i], outcomes[i]));
    if (outcomes[i].status.ok() && ChangesMoreThanLastSeen(writes[i])) changed.push_back(writes[i].device_id);
  }
  if (!changed.empty()) APPBAN_RETURN_IF_ERROR(B::AnnounceDevicesChanged(db_, changed, /*revoked=*/false));
  APPBAN_RETURN_IF_ERROR(transaction.Commit());
  return outcomes;
}

template <typename B>
Result<std::vector<DeviceRuleState>> FleetTables<B>::ListDeviceRuleStates(const std::string& device_id) {
  APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT rule_id, state, since, had_app, compliant_at, version "
                                             "FROM device_rule_states WHERE device_id = ?1 ORDER BY rule_id"));
  lease.statement().Bind(1, device_id);
  return ReadRuleStates(lease.statement(), device_id, "");
}

template <typename B>
Result<EvaluationInput> FleetTables<B>::GetEvaluationInput(const std::string& device_id, bool with_rule_states) {
  EvaluationInput input;
  // Two reads that must agree: a check-in committing between them could pair an old inventory
  // with new rule states. Inside a read transaction both see one snapshot.
  std::optional<Transaction> transaction;
  if (with_rule_states) {
    APPBAN_ASSIGN_OR_RETURN(auto begun, B::BeginRead(db_));
    transaction.emplace(std::move(begun));
  }
  {
    // The JSON is read only when there are no match records (an inventory from schema 2). The
    // devices table is not read: the caller has just authenticated the device.
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT match_records, CASE WHEN match_records IS NULL "
                                               "THEN json END FROM device_inventories WHERE device_id = ?1"));
    Statement& query = lease.statement();
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

template <typename B>
Result<std::vector<DeviceRuleState>> FleetTables<B>::ListRuleStates(const std::string& rule_id) {
  // Answered from the covering index device_rule_states_by_rule alone.
  APPBAN_ASSIGN_OR_RETURN(auto query,
                          Statement::Prepare(db_,
                                             "SELECT device_id, state, since, had_app, compliant_at, version "
                                             "FROM device_rule_states WHERE rule_id = ?1"));
  query.Bind(1, rule_id);
  return ReadRuleStates(query, "", "");
}

template <typename B>
Status FleetTables<B>::ScanRuleStates(std::string_view first_device_id, std::string_view last_device_id,
                                      const std::function<void(const RuleStateRow&)>& visit) {
  // A range of the primary key (device_id, rule_id): read in its order, no sort.
  APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT device_id, rule_id, state, had_app, compliant_at "
                                             "FROM device_rule_states WHERE device_id >= ?1 AND device_id <= ?2 "
                                             "ORDER BY device_id, rule_id"));
  Statement& query = lease.statement();
  query.Bind(1, first_device_id).Bind(2, last_device_id);
  RuleStateRow row;
  while (true) {
    APPBAN_ASSIGN_OR_RETURN(bool more, query.Step());
    if (!more) break;
    row.device_id = query.TextView(0);
    row.rule_id = query.TextView(1);
    APPBAN_ASSIGN_OR_RETURN(row.state, ParseComplianceState(query.TextView(2)));
    row.had_app = query.Int(3) != 0;
    row.compliant_at = query.OptionalInt(4);
    visit(row);
  }
  return Status::Ok();
}

template <typename B>
Result<RuleStateCounts> FleetTables<B>::CountRuleStates(const std::string& rule_id) {
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_,
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

template <typename B>
Result<std::vector<DeviceEvent>> FleetTables<B>::ListEvents(const std::string& device_id, int64_t limit) {
  APPBAN_RETURN_IF_ERROR(CheckListLimit(limit));
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kEventColumns) +
                                                                  " FROM device_events WHERE device_id = ?1 "
                                                                  "ORDER BY seq DESC LIMIT ?2"));
  query.Bind(1, device_id).Bind(2, limit);
  return ReadEvents(query);
}

template <typename B>
Result<std::vector<DeviceEvent>> FleetTables<B>::ListEventsForRule(const std::string& rule_id, int64_t limit) {
  APPBAN_RETURN_IF_ERROR(CheckListLimit(limit));
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kEventColumns) +
                                                                  " FROM device_events WHERE rule_id = ?1 "
                                                                  "ORDER BY received_at DESC LIMIT ?2"));
  query.Bind(1, rule_id).Bind(2, limit);
  return ReadEvents(query);
}

template <typename B>
Status FleetTables<B>::ApplyOne(const CheckinWrite& write, CheckinOutcome& outcome) {
  int64_t newest_event = 0;
  int64_t oldest_event = std::numeric_limits<int64_t>::max();
  for (const DeviceEvent& event : write.events) {
    newest_event = std::max(newest_event, event.seq);
    oldest_event = std::min(oldest_event, event.seq);
  }
  if (!write.events.empty()) {
    // A seq already stored must carry the very event stored under it (a queue resent after a
    // lost answer). A different event would be acknowledged and never stored: refuse it. One
    // range read; for new events it finds nothing.
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT " + std::string(kEventColumns) +
                                               " FROM device_events WHERE device_id = ?1 AND seq BETWEEN ?2 AND ?3"));
    lease.statement().Bind(1, write.device_id).Bind(2, oldest_event).Bind(3, newest_event);
    APPBAN_ASSIGN_OR_RETURN(std::vector<DeviceEvent> stored, ReadEvents(lease.statement()));
    for (const DeviceEvent& held : stored) {
      for (const DeviceEvent& event : write.events) {
        if (event.seq != held.seq) continue;
        if (event.at != held.at || event.kind != held.kind || event.platform != held.platform ||
            event.app != held.app || event.rule_id != held.rule_id || event.detail != held.detail) {
          outcome.status = Status::InvalidArgument(
              "event seq " + std::to_string(event.seq) + ": a different event is already stored under this seq for " +
              "device " + write.device_id + " (a device must never reuse a sequence number)");
          return Status::Ok();
        }
      }
    }
  }
  int64_t highest_seq = 0;
  {
    // One statement finds the device, refuses a revoked one and records the check-in; the
    // device's highest stored event seq comes back with it.
    static const std::string kRecordCheckin =
        "UPDATE devices SET last_seen = " + std::string(B::kGreatest) +
        "(last_seen, ?2), "
        "applied_version = COALESCE(?3, applied_version), "
        "applied_rules_hash = COALESCE(?4, applied_rules_hash), "
        "inventory_hash = COALESCE(?5, inventory_hash), "
        "inventory_at = COALESCE(?6, inventory_at), "
        "evaluated_version = COALESCE(?7, evaluated_version), "
        "evaluated_inventory_hash = COALESCE(?8, evaluated_inventory_hash), "
        "last_event_seq = " +
        std::string(B::kGreatest) +
        "(last_event_seq, ?9), "
        "rules_hash_expected = CASE WHEN CAST(?10 AS INTEGER) = 1 THEN ?11 ELSE rules_hash_expected END, "
        "rules_hash_mismatch_since = CASE WHEN CAST(?10 AS INTEGER) = 1 THEN ?12 ELSE rules_hash_mismatch_since END "
        "WHERE id = ?1 AND revoked_at IS NULL RETURNING last_event_seq";
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached(kRecordCheckin));
    Statement& update = lease.statement();
    update.Bind(1, write.device_id).Bind(2, write.last_seen).Bind(9, newest_event);
    if (write.applied) update.Bind(3, write.applied->version).Bind(4, write.applied->rules_hash);
    if (write.inventory) update.Bind(5, write.inventory->hash).Bind(6, write.inventory->at);
    if (write.evaluated) update.Bind(7, write.evaluated->version).Bind(8, write.evaluated->inventory_hash);
    // ?10 says the verdict is replaced; a cleared mismatch leaves ?11 and ?12 NULL.
    if (write.rules_hash) {
      update.Bind(10, int64_t{1});
      if (const auto& mismatch = write.rules_hash->mismatch) {
        update.Bind(11, mismatch->expected_hash).Bind(12, mismatch->since);
      }
    }
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
    Statement& insert = lease.statement();
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
    APPBAN_RETURN_IF_ERROR(ReplaceDeviceApps(write.device_id, write.inventory->match_records));
  }
  if (!write.rule_states.empty()) {
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("INSERT INTO device_rule_states(device_id, rule_id, state, since, "
                                               "had_app, compliant_at, version) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                                               "ON CONFLICT(device_id, rule_id) DO UPDATE SET state = excluded.state, "
                                               "since = excluded.since, had_app = excluded.had_app, "
                                               "compliant_at = excluded.compliant_at, version = excluded.version"));
    Statement& upsert = lease.statement();
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
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("DELETE FROM device_rule_states WHERE device_id = ?1 AND rule_id = ?2"));
    Statement& remove = lease.statement();
    for (const std::string& rule_id : write.cleared_rule_ids) {
      remove.Reset();
      APPBAN_RETURN_IF_ERROR(remove.Bind(1, write.device_id).Bind(2, rule_id).Run());
    }
  }
  outcome.highest_seq = highest_seq;
  return Status::Ok();
}

// The search index of installed apps (device_apps) follows the latest inventory. Only the
// difference is written: a removal reported after a ban costs one delete, not the device's ~100
// rows again.
template <typename B>
Status FleetTables<B>::ReplaceDeviceApps(const std::string& device_id, std::string_view match_records) {
  std::vector<std::string> now;
  APPBAN_RETURN_IF_ERROR(
      ForEachMatchRecord(match_records, [&](const MatchRecord& record) { now.emplace_back(record.id); }));
  // The same id on two platforms (a .deb and a Flatpak) is one row.
  std::sort(now.begin(), now.end());
  now.erase(std::unique(now.begin(), now.end()), now.end());
  std::vector<std::string> before;
  {
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT app_id FROM device_apps WHERE device_id = ?1 ORDER BY app_id"));
    Statement& read = lease.statement();
    read.Bind(1, device_id);
    while (true) {
      APPBAN_ASSIGN_OR_RETURN(bool row, read.Step());
      if (!row) break;
      before.push_back(read.Text(0));
    }
  }
  std::vector<std::string> gone;
  std::vector<std::string> added;
  std::set_difference(before.begin(), before.end(), now.begin(), now.end(), std::back_inserter(gone));
  std::set_difference(now.begin(), now.end(), before.begin(), before.end(), std::back_inserter(added));
  if (!gone.empty()) {
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("DELETE FROM device_apps WHERE device_id = ?1 AND app_id = ?2"));
    Statement& erase = lease.statement();
    for (const std::string& app_id : gone) {
      erase.Reset();
      APPBAN_RETURN_IF_ERROR(erase.Bind(1, device_id).Bind(2, app_id).Run());
    }
  }
  if (!added.empty()) {
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("INSERT INTO device_apps(device_id, app_id) VALUES(?1, ?2)"));
    Statement& insert = lease.statement();
    for (const std::string& app_id : added) {
      insert.Reset();
      APPBAN_RETURN_IF_ERROR(insert.Bind(1, device_id).Bind(2, app_id).Run());
    }
  }
  return Status::Ok();
}

template <typename B>
Result<std::vector<DeviceRuleState>> FleetTables<B>::ReadRuleStates(Statement& query, const std::string& device_id,
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

template <typename B>
Result<std::vector<DeviceEvent>> FleetTables<B>::ReadEvents(Statement& query) {
  std::vector<DeviceEvent> events;
  while (true) {
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    events.push_back(ReadEvent(query));
  }
  return events;
}

// Both backends (fleet_tables.h).
template class FleetTables<SqliteBackend>;
template class FleetTables<PostgresBackend>;

}  // namespace appban::store::internal
