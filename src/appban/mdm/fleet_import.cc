#include "appban/mdm/fleet_import.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "appban/common/crypto.h"
#include "appban/protocol/messages.h"
#include "appban/store/match_records.h"
#include "appban/verify/rule_states.h"

namespace appban::mdm {
namespace {

// The devices table's limit on names; an MDM's longer display name is cut, never refused.
constexpr size_t kMaxHostnameBytes = store::kFleetLimits.max_hostname_bytes;

std::string Printable(std::string_view text, size_t max_bytes) {
  std::string out;
  for (char c : text.substr(0, max_bytes)) out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  return out;
}

// What a device's evaluation depends on besides the latest bundle: its apps (`inventory_hash`),
// the apps it reported removed, its groups, whether appban can enforce on it, and the bundle
// version pushed to its MDM. Stored as the device's evaluation mark.
std::string EvaluationKey(const std::string& inventory_hash, const MdmDevice& device, bool enforceable,
                          int64_t pushed_version) {
  std::string key = "mdm-evaluation\n" + inventory_hash + "\n" + (enforceable ? "1" : "0") + "\n" +
                    std::to_string(pushed_version) + "\nremoved";
  std::set<std::string> removed(device.removed.begin(), device.removed.end());
  for (const std::string& id : removed) key += " " + id;
  key += "\ngroups";
  std::set<std::string> groups(device.groups.begin(), device.groups.end());
  for (const std::string& group : groups) key += " " + group;
  return Sha256Hex(AsBytes(key));
}

}  // namespace

std::string MdmDeviceId(MdmSource source, std::string_view connector, std::string_view mdm_id) {
  std::string key = std::string(MdmSourceName(source)) + "\n" + std::string(connector) + "\n" + std::string(mdm_id);
  return "m-" + Sha256Hex(AsBytes(key)).substr(0, 24);
}

FleetImport::FleetImport(store::FleetStore& fleet, std::string connector, ImportContext context)
    : fleet_(fleet), connector_(std::move(connector)), context_(context), started_(context.now) {}

Result<store::MdmDeviceWrite> FleetImport::Evaluate(MdmDevice device) {
  store::MdmDeviceWrite write;
  store::Device& row = write.device;
  row.id = MdmDeviceId(device.source, device.connector, device.mdm_id);
  row.source = std::string(MdmSourceName(device.source));
  row.platform = device.platform;
  row.hostname = Printable(device.display_name.empty() ? device.mdm_id : device.display_name, kMaxHostnameBytes);
  row.mdm_connector = device.connector;
  row.mdm_id = device.mdm_id;
  row.mdm_groups = device.groups;
  row.mdm_pushed_at = device.pushed_at;
  row.mdm_synced_at = device.last_mdm_sync;
  row.mdm_compliant = device.mdm_compliant;
  row.cannot_enforce = device.cannot_enforce_reason;
  if (row.cannot_enforce.empty() && !device.reports_apps) {
    row.cannot_enforce = "the MDM holds no app inventory for the device";
  }
  row.last_seen = device.last_mdm_sync.value_or(0);

  store::CheckinWrite& checkin = write.checkin;
  checkin.device_id = row.id;
  checkin.last_seen = row.last_seen;
  const verify::PublishedBundle& latest = *context_.latest;
  if (!device.reports_apps) return write;  // nothing to store or evaluate: cannot-enforce says why

  const std::string hash = protocol::InventoryHash(device.installed);
  const std::string key = EvaluationKey(hash, device, row.cannot_enforce.empty(), context_.pushed_version);
  std::optional<store::Device> known;
  if (context_.incremental) {
    Result<store::Device> stored = fleet_.GetDevice(row.id);
    if (stored.ok()) {
      known = std::move(*stored);
    } else if (stored.status().code() != StatusCode::kNotFound) {
      return stored.status();
    }
  }
  if (!known || known->inventory_hash != hash) {
    checkin.inventory = store::InventoryUpdate{hash, protocol::CanonicalInventory(device.installed),
                                               store::EncodeMatchRecords(device.installed), context_.now};
  }
  checkin.applied = store::AppliedPolicy{context_.pushed_version, ""};
  if (latest.version == 0 || !latest.index) return write;

  policy::DeviceContext context{row.id, device.groups};
  // A device appban cannot enforce on is judged on its evidence alone: what it still holds is
  // violating whatever was pushed; what it lacks proves nothing (compliance says cannot-enforce).
  const int64_t applied = row.cannot_enforce.empty() ? context_.pushed_version : latest.version;
  std::vector<verify::DeviceRuleStanding> standings =
      verify::EvaluateRuleStandings(latest, context, device.installed, applied, context_.now);
  const bool violating = std::any_of(standings.begin(), standings.end(), [](const auto& standing) {
    return standing.standing == verify::RuleStanding::kViolating;
  });
  if (violating) ++stats_.violating;
  if (known && !checkin.inventory && known->evaluated_version == latest.version &&
      known->evaluated_inventory_hash == key) {
    ++stats_.unchanged;  // its stored rule states are what this evaluation would write
    return write;
  }

  APPBAN_ASSIGN_OR_RETURN(std::vector<store::DeviceRuleState> stored, fleet_.ListDeviceRuleStates(row.id));
  std::set<std::string, std::less<>> removed_rules;
  if (!device.removed.empty()) {
    std::vector<policy::InstalledApp> removed;
    for (const std::string& id : device.removed) {
      policy::InstalledApp app;
      app.platform = device.installed.empty() ? policy::Platform::kAndroid : device.installed.front().platform;
      if (auto platform = policy::ParsePlatform(device.platform); platform.ok()) app.platform = *platform;
      app.id = id;
      removed.push_back(std::move(app));
    }
    for (const auto& decision : latest.index->EvaluateAll(removed, context, context_.now)) {
      if (decision.rule_id.empty()) continue;
      removed_rules.insert(decision.rule_id);
      removed_rules.insert(decision.other_rules.begin(), decision.other_rules.end());
    }
  }
  verify::RuleStateDiff diff =
      verify::DiffRuleStates(row.id, standings, stored, removed_rules, latest.version, context_.now);
  checkin.rule_states = std::move(diff.upserts);
  checkin.cleared_rule_ids = std::move(diff.cleared_rule_ids);
  checkin.evaluated = store::EvaluationMark{latest.version, key};
  return write;
}

Status FleetImport::Add(std::vector<MdmDevice> devices) {
  if (context_.latest == nullptr) return Status::InvalidArgument("fleet import without a bundle");
  for (MdmDevice& device : devices) {
    if (device.connector != connector_) {
      return Status::InvalidArgument("device " + device.mdm_id + " belongs to connector " + device.connector +
                                     ", not " + connector_);
    }
    if (device.mdm_id.empty()) return Status::InvalidArgument("connector " + connector_ + ": a device without an id");
    APPBAN_ASSIGN_OR_RETURN(store::MdmDeviceWrite write, Evaluate(std::move(device)));
    if (!write.device.cannot_enforce.empty()) ++stats_.cannot_enforce;
    pending_.push_back(std::move(write));
    if (pending_.size() >= context_.batch_size) APPBAN_RETURN_IF_ERROR(Flush());
  }
  return Status::Ok();
}

Status FleetImport::Flush() {
  if (pending_.empty()) return Status::Ok();
  APPBAN_ASSIGN_OR_RETURN(std::vector<store::CheckinOutcome> outcomes, fleet_.ImportMdmDevices(pending_, started_));
  for (const auto& outcome : outcomes) {
    if (outcome.status.ok()) {
      ++stats_.devices;
    } else {
      ++stats_.refused;
      if (stats_.first_refusal.empty()) stats_.first_refusal = outcome.device_id + ": " + outcome.status.message();
    }
  }
  pending_.clear();
  return Status::Ok();
}

Result<ImportStats> FleetImport::Finish(bool complete) {
  APPBAN_RETURN_IF_ERROR(Flush());
  if (complete) {
    APPBAN_ASSIGN_OR_RETURN(stats_.gone, fleet_.MarkMdmDevicesGone(connector_, started_, context_.now));
  }
  return stats_;
}

}  // namespace appban::mdm
