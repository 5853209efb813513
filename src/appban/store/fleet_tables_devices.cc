// FleetTables: devices — enrolment (batched: secrets made outside the write lock),
// authentication, listing and revocation.
#include "appban/store/fleet_tables.h"

#include <span>
#include <string>
#include <utility>
#include <vector>

namespace appban::store::internal {
namespace {

std::string UsedUpMessage(const EnrollmentToken& token) {
  if (token.max_uses == 1) return "enrolment token " + token.id + " was already used (single use)";
  return "enrolment token " + token.id + " was already used " + std::to_string(token.max_uses) +
         " times, all it allows";
}

}  // namespace

template <typename B>
Result<Enrollment> FleetTables<B>::EnrollDevice(std::string_view presented_token, const std::string& hostname,
                                                const std::string& platform, const std::string& agent_version,
                                                UnixSeconds now) {
  EnrollmentRequest request{std::string(presented_token), hostname, platform, agent_version};
  APPBAN_ASSIGN_OR_RETURN(std::vector<Result<Enrollment>> outcomes,
                          EnrollDevices(std::span<const EnrollmentRequest>(&request, 1), now));
  return std::move(outcomes.front());
}

template <typename B>
Result<std::vector<Result<Enrollment>>> FleetTables<B>::EnrollDevices(std::span<const EnrollmentRequest> requests,
                                                                      UnixSeconds now) {
  // Everything that needs no database is checked (and every secret made) before the write lock.
  std::vector<Result<Enrollment>> outcomes;
  outcomes.reserve(requests.size());
  std::vector<PendingEnrollment> pending(requests.size());
  bool any_valid = false;
  for (size_t i = 0; i < requests.size(); ++i) {
    Status valid = PrepareEnrollment(requests[i], now, pending[i]);
    if (valid.code() == StatusCode::kUnavailable) return valid;  // the random generator failed
    if (valid.ok()) {
      any_valid = true;
      outcomes.emplace_back(std::move(pending[i].enrollment));
    } else {
      outcomes.emplace_back(std::move(valid));
    }
  }
  if (!any_valid) return outcomes;

  // BEGIN IMMEDIATE holds the write lock from the first token check to the commit: two processes
  // presenting the same token are serialized, and the second finds it used. Inside the batch the
  // requests run in order on this connection, which sees its own uncommitted marks, so a token
  // presented twice in one batch is also used once.
  APPBAN_ASSIGN_OR_RETURN(auto transaction, B::BeginWrite(db_));
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!outcomes[i].ok()) continue;
    Status refusal;
    APPBAN_RETURN_IF_ERROR(EnrollOne(requests[i], now, pending[i], *outcomes[i], refusal));
    if (!refusal.ok()) outcomes[i] = std::move(refusal);
  }
  APPBAN_RETURN_IF_ERROR(transaction.Commit());
  return outcomes;
}

template <typename B>
Result<Device> FleetTables<B>::AuthenticateDevice(std::string_view presented,
                                                  UnixSeconds /*now: credentials do not expire*/) {
  APPBAN_ASSIGN_OR_RETURN(PresentedSecret parts, SplitPresented(presented));
  if (!parts.id.starts_with("d-")) return Status::InvalidArgument("not a device credential");
  // Every check-in authenticates: prepared once per connection.
  APPBAN_ASSIGN_OR_RETURN(auto lease,
                          Cached("SELECT " + std::string(kDeviceColumns) + ", secret_hash FROM devices WHERE id = ?1"));
  Statement& query = lease.statement();
  query.Bind(1, parts.id);
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row || !SecretMatchesHash(parts.secret, query.Text(kDeviceColumnCount))) {
    return Status::NotFound("unknown device or wrong credential");
  }
  Device device = ReadDevice(query);
  if (device.revoked_at) return Status::PermissionDenied("device " + device.id + " was revoked");
  return device;
}

template <typename B>
Result<Device> FleetTables<B>::GetDevice(const std::string& id) {
  APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT " + std::string(kDeviceColumns) +
                                             ", (SELECT json FROM device_inventories WHERE device_id = "
                                             "devices.id) FROM devices WHERE id = ?1"));
  Statement& query = lease.statement();
  query.Bind(1, id);
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) return Status::NotFound("no device " + id);
  Device device = ReadDevice(query);
  device.inventory_json = query.Text(kDeviceColumnCount);
  return device;
}

template <typename B>
Result<std::vector<Device>> FleetTables<B>::ListDevices(int64_t offset, int64_t limit) {
  APPBAN_RETURN_IF_ERROR(CheckListLimit(limit));
  if (offset < 0) return Status::InvalidArgument("list offset must not be negative");
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kDeviceColumns) +
                                                                  " FROM devices ORDER BY id LIMIT ?1 OFFSET ?2"));
  query.Bind(1, limit).Bind(2, offset);
  return ReadRows<Device>(query, ReadDevice<Statement>);
}

template <typename B>
Result<std::vector<Device>> FleetTables<B>::ListDevicesAfter(std::string_view after_id, size_t limit) {
  APPBAN_RETURN_IF_ERROR(CheckPageLimit(limit));
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT " + std::string(kDeviceColumns) +
                                                                  " FROM devices WHERE id > ?1 ORDER BY id LIMIT ?2"));
  query.Bind(1, after_id).Bind(2, static_cast<int64_t>(limit));
  return ReadRows<Device>(query, ReadDevice<Statement>);
}

template <typename B>
Result<int64_t> FleetTables<B>::CountDevices() {
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_, "SELECT COUNT(*) FROM devices"));
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  return row ? query.Int(0) : 0;
}

template <typename B>
Result<int64_t> FleetTables<B>::CountRulesHashMismatches() {
  APPBAN_ASSIGN_OR_RETURN(auto query, Statement::Prepare(db_,
                                                         "SELECT COUNT(*) FROM devices WHERE "
                                                         "rules_hash_mismatch_since IS NOT NULL AND "
                                                         "revoked_at IS NULL"));
  APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
  return row ? query.Int(0) : 0;
}

template <typename B>
Status FleetTables<B>::RevokeDevice(const std::string& id, const AuditRecord& audit) {
  return Audited(audit, [&](AuditRecord& record) -> Status {
    APPBAN_ASSIGN_OR_RETURN(Device device, GetDevice(id));
    device.inventory_json.clear();
    if (device.revoked_at) return Status::FailedPrecondition("device " + id + " is already revoked");
    APPBAN_ASSIGN_OR_RETURN(
        auto update, Statement::Prepare(db_, "UPDATE devices SET revoked_at = ?1, revoked_by = ?2 WHERE id = ?3"));
    APPBAN_RETURN_IF_ERROR(update.Bind(1, record.at).Bind(2, record.actor).Bind(3, id).Run());
    APPBAN_RETURN_IF_ERROR(B::AnnounceDevicesChanged(db_, {id}, /*revoked=*/true));
    record.action = RevokeDeviceAction(record.actor, id);
    record.object = "device:" + id;
    record.before = DeviceJson(device);
    device.revoked_at = record.at;
    device.revoked_by = record.actor;
    record.after = DeviceJson(device);
    return Status::Ok();
  });
}

template <typename B>
Status FleetTables<B>::PrepareEnrollment(const EnrollmentRequest& request, UnixSeconds now,
                                         PendingEnrollment& pending) {
  APPBAN_RETURN_IF_ERROR(CheckText(request.hostname, kFleetLimits.max_hostname_bytes, "hostname", true));
  APPBAN_RETURN_IF_ERROR(CheckText(request.platform, kFleetLimits.max_platform_bytes, "platform", true));
  APPBAN_RETURN_IF_ERROR(
      CheckText(request.agent_version, kFleetLimits.max_agent_version_bytes, "agent version", false));
  APPBAN_ASSIGN_OR_RETURN(PresentedSecret parts, SplitPresented(request.presented_token));
  if (!parts.id.starts_with("e-")) return Status::InvalidArgument("not an enrolment token");
  pending.token_id = std::move(parts.id);
  pending.token_secret = std::move(parts.secret);
  Device& device = pending.enrollment.device;
  APPBAN_ASSIGN_OR_RETURN(device.id, NewId("d-"));
  APPBAN_ASSIGN_OR_RETURN(std::string secret, GenerateSecret());
  pending.enrollment.credential = JoinPresented(device.id, secret);
  pending.device_secret_hash = HashSecret(secret);
  device.hostname = request.hostname;
  device.platform = request.platform;
  device.agent_version = request.agent_version;
  device.enrolled_at = now;
  device.last_seen = now;
  device.enrollment_token_id = pending.token_id;
  return Status::Ok();
}

template <typename B>
Status FleetTables<B>::EnrollOne(const EnrollmentRequest& request, UnixSeconds now, const PendingEnrollment& pending,
                                 Enrollment& enrollment, Status& refusal) {
  Device& device = enrollment.device;
  EnrollmentToken token;
  {
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("SELECT " + std::string(kEnrollmentTokenColumns) +
                                               ", secret_hash FROM enrollment_tokens WHERE id = ?1"));
    Statement& query = lease.statement();
    query.Bind(1, pending.token_id);
    APPBAN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row || !SecretMatchesHash(pending.token_secret, query.Text(11))) {
      refusal = Status::NotFound("unknown enrolment token or wrong secret");
      return Status::Ok();
    }
    token = ReadEnrollmentToken(query);
  }
  if (token.revoked_at) {
    refusal = Status::FailedPrecondition("enrolment token " + token.id + " was revoked");
    return Status::Ok();
  }
  if (token.Exhausted()) {
    refusal = Status::FailedPrecondition(UsedUpMessage(token));
    return Status::Ok();
  }
  if (now >= token.expires_at) {
    refusal = Status::Expired("enrolment token " + token.id + " has expired");
    return Status::Ok();
  }
  device.group = token.group;
  enrollment.group = token.group;
  {
    // Conditional, so the count of uses holds whatever else read the row first.
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("UPDATE enrollment_tokens SET uses = uses + 1, used_at = ?1, "
                                               "used_by_device = ?2 "
                                               "WHERE id = ?3 AND uses < max_uses AND revoked_at IS NULL"));
    APPBAN_RETURN_IF_ERROR(lease.statement().Bind(1, now).Bind(2, device.id).Bind(3, token.id).Run());
    if (lease.statement().Changes() != 1) {
      refusal = Status::FailedPrecondition(UsedUpMessage(token));
      return Status::Ok();
    }
  }
  {
    APPBAN_ASSIGN_OR_RETURN(auto lease, Cached("INSERT INTO devices(id, secret_hash, hostname, platform, "
                                               "agent_version, group_name, enrolled_at, enrollment_token_id, "
                                               "last_seen) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    APPBAN_RETURN_IF_ERROR(lease.statement()
                               .Bind(1, device.id)
                               .Bind(2, pending.device_secret_hash)
                               .Bind(3, request.hostname)
                               .Bind(4, request.platform)
                               .Bind(5, request.agent_version)
                               .Bind(6, device.group)
                               .Bind(7, now)
                               .Bind(8, token.id)
                               .Bind(9, now)
                               .Run());
  }
  AuditRecord record;
  record.actor = "enrollment:" + token.id;
  record.at = now;
  record.action = "device.enroll";
  record.object = "device:" + device.id;
  record.after = DeviceJson(device);
  return B::AppendAudit(db_, record);
}

// Both backends (fleet_tables.h).
template class FleetTables<SqliteBackend>;
template class FleetTables<PostgresBackend>;

}  // namespace appban::store::internal
