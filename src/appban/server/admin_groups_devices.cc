// Admin API: policy groups and enrolled devices (a group lists devices; a device view lists its
// groups, its inventory, what the latest bundle decides for it, its rule states and events).
#include "appban/server/admin_handlers.h"

#include <algorithm>
#include <optional>

#include "appban/policy/model.h"
#include "appban/protocol/messages.h"

namespace appban::server::admin {
namespace {

// What the device's MDM reports (null for agent devices).
Json MdmJson(const store::Device& device) {
  if (!device.IsMdm()) return nullptr;
  return Json{{"connector", device.mdm_connector},
              {"id", device.mdm_id},
              {"groups", device.mdm_groups},
              {"pushed_at", OptionalTime(device.mdm_pushed_at)},
              {"synced_at", OptionalTime(device.mdm_synced_at)},
              {"compliant", device.mdm_compliant ? Json(*device.mdm_compliant) : Json(nullptr)},
              {"compliant_at", OptionalTime(device.mdm_compliant_at)},
              {"gone_at", OptionalTime(device.mdm_gone_at)}};
}

Json DeviceJson(const store::Device& device) {
  return Json{{"id", device.id},
              {"hostname", device.hostname},
              {"platform", device.platform},
              {"agent_version", device.agent_version},
              {"group", device.group},
              {"enrolled_at", FormatTimestamp(device.enrolled_at)},
              {"enrollment_token_id", device.enrollment_token_id},
              {"revoked_at", OptionalTime(device.revoked_at)},
              {"revoked_by", device.revoked_by},
              {"applied_version", device.applied_version},
              {"applied_rules_hash", device.applied_rules_hash},
              {"inventory_hash", device.inventory_hash},
              {"inventory_at", OptionalTime(device.inventory_at)},
              {"last_seen", TimeOrNull(device.last_seen)},
              {"evaluated_version", device.evaluated_version},
              {"rules_hash_mismatch", RulesHashMismatchJson(device)},
              {"source", device.source},
              {"mdm", MdmJson(device)},
              {"cannot_enforce", device.cannot_enforce.empty() ? Json(nullptr) : Json(device.cannot_enforce)}};
}

Json RuleStateJson(const store::DeviceRuleState& state) {
  return Json{{"rule_id", state.rule_id},
              {"state", store::ComplianceStateName(state.state)},
              {"since", FormatTimestamp(state.since)},
              {"had_app", state.had_app},
              {"compliant_at", OptionalTime(state.compliant_at)},
              {"version", state.version}};
}

Json EventJson(const store::DeviceEvent& event) {
  return Json{{"seq", event.seq},       {"at", FormatTimestamp(event.at)},
              {"kind", event.kind},     {"platform", event.platform},
              {"app", event.app},       {"rule_id", event.rule_id},
              {"detail", event.detail}, {"received_at", FormatTimestamp(event.received_at)}};
}

// The policy groups that list the device, plus the group its enrolment token named.
Result<std::vector<std::string>> GroupsOfDevice(store::Store& store, const store::Device& device) {
  APPBAN_ASSIGN_OR_RETURN(auto groups, store.ListGroups());
  std::vector<std::string> names;
  if (!device.group.empty()) names.push_back(device.group);
  names.insert(names.end(), device.mdm_groups.begin(), device.mdm_groups.end());
  for (const auto& group : groups) {
    if (std::find(group.devices.begin(), group.devices.end(), device.id) != group.devices.end())
      names.push_back(group.name);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace

HttpResponse ListGroups(Call& call) {
  auto page = ReadPageRequest(call.request, "groups", CursorKey::kIdentifier);
  if (!page.ok()) return ErrorFrom(page.status());
  auto groups = call.context.store->ListGroupsAfter(page->after, page->limit + 1);
  if (!groups.ok()) return ErrorFrom(groups.status());
  Json next = FinishPage("groups", *page, *groups, [](const policy::Group& group) { return group.name; });
  Json list = Json::array();
  for (const auto& group : *groups) list.push_back(policy::GroupToJson(group));
  return JsonResponse(200, Json{{"groups", list}, {"next_cursor", next}});
}

HttpResponse GetGroup(Call& call) {
  const std::string& name = call.params[0];
  if (Status s = CheckPathIdentifier(name, "group name"); !s.ok()) return ErrorFrom(s);
  auto group = call.context.store->GetGroup(name);
  if (!group.ok()) return ErrorFrom(group.status());
  return JsonResponse(200, policy::GroupToJson(*group));
}

namespace {

// Every listed device must be enrolled: a typo would otherwise silently scope nothing. The error
// response when one is not.
std::optional<HttpResponse> CheckDevicesExist(Call& call, const std::vector<std::string>& devices) {
  for (size_t i = 0; i < devices.size(); ++i) {
    auto device = call.context.fleet->GetDevice(devices[i]);
    if (device.ok()) continue;
    if (device.status().code() != StatusCode::kNotFound) return ErrorFrom(device.status());
    return BadRequest("devices[" + std::to_string(i) + "]: no enrolled device " + devices[i]);
  }
  return std::nullopt;
}

}  // namespace

HttpResponse CreateGroup(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"name", "description", "devices"}, "group"); !s.ok()) return ErrorFrom(s);
  policy::Group group;
  auto name = StringMember(*body, "name", true, store::kFleetLimits.max_name_bytes);
  if (!name.ok()) return ErrorFrom(name.status());
  group.name = *name;
  auto description = StringMember(*body, "description", false, store::kFleetLimits.max_note_bytes);
  if (!description.ok()) return ErrorFrom(description.status());
  group.description = *description;
  auto devices = IdentifierArrayMember(*body, "devices", false,
                                       static_cast<size_t>(kAdminLimits.max_group_devices_per_request), "device id");
  if (!devices.ok()) return ErrorFrom(devices.status());
  group.devices = *devices;
  if (Status s = policy::ValidateGroup(group); !s.ok()) return BadRequest(s.message());
  if (auto missing = CheckDevicesExist(call, group.devices)) return std::move(*missing);
  auto existing = call.context.store->GetGroup(group.name);
  if (existing.ok()) return ErrorResponse(409, "conflict", "group " + group.name + " already exists");
  auto created = call.Admin().CreateGroup(std::move(group));
  if (!created.ok()) return ErrorFrom(created.status());
  return JsonResponse(201, policy::GroupToJson(*created));
}

HttpResponse AddGroupDevices(Call& call) {
  const std::string& name = call.params[0];
  if (Status s = CheckPathIdentifier(name, "group name"); !s.ok()) return ErrorFrom(s);
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"devices"}, "body"); !s.ok()) return ErrorFrom(s);
  auto devices = IdentifierArrayMember(*body, "devices", true,
                                       static_cast<size_t>(kAdminLimits.max_group_devices_per_request), "device id");
  if (!devices.ok()) return ErrorFrom(devices.status());
  if (devices->empty()) return BadRequest("devices: must list at least one device");
  if (auto missing = CheckDevicesExist(call, *devices)) return std::move(*missing);
  auto group = call.Admin().AddDevices(name, *devices);
  if (!group.ok()) return ErrorFrom(group.status());
  return JsonResponse(200, policy::GroupToJson(*group));
}

HttpResponse DeleteGroup(Call& call) {
  const std::string& name = call.params[0];
  if (Status s = CheckPathIdentifier(name, "group name"); !s.ok()) return ErrorFrom(s);
  if (Status s = call.Admin().DeleteGroup(name); !s.ok()) return ErrorFrom(s);
  return JsonResponse(200, Json{{"deleted", name}});
}

HttpResponse ListDevices(Call& call) {
  // Offset paging read (and skipped) every row before the page; an old client still sending a
  // non-zero offset is told so instead of being handed the first page again and again.
  auto offset = QueryInteger(call.request, "offset", 0, INT64_C(1) << 40);
  if (!offset.ok()) return ErrorFrom(offset.status());
  if (offset->value_or(0) != 0) {
    return BadRequest(
        "query parameter offset: paging by offset was replaced by cursors; pass the next_cursor of "
        "the previous page as cursor");
  }
  auto page = ReadPageRequest(call.request, "devices", CursorKey::kIdentifier);
  if (!page.ok()) return ErrorFrom(page.status());
  auto filter = ReadDeviceFilter(call.request);
  if (!filter.ok()) return ErrorFrom(filter.status());
  auto devices = call.context.fleet->ListDevicesWhere(*filter, page->after, page->limit + 1);
  if (!devices.ok()) return ErrorFrom(devices.status());
  Json next = FinishPage("devices", *page, *devices, [](const store::Device& device) { return device.id; });
  // Counted from the smallest index, not the rows: kept for the clients that show it.
  auto total = call.context.fleet->CountDevices();
  if (!total.ok()) return ErrorFrom(total.status());
  Json list = Json::array();
  for (const auto& device : *devices) list.push_back(DeviceJson(device));
  return JsonResponse(
      200, Json{{"total", *total}, {"offset", 0}, {"limit", page->limit}, {"devices", list}, {"next_cursor", next}});
}

HttpResponse GetDevice(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "device id"); !s.ok()) return ErrorFrom(s);
  auto device = call.context.fleet->GetDevice(id);
  if (!device.ok()) return ErrorFrom(device.status());
  auto groups = GroupsOfDevice(*call.context.store, *device);
  if (!groups.ok()) return ErrorFrom(groups.status());
  Json body = DeviceJson(*device);
  body["groups"] = *groups;

  body["inventory"] = nullptr;
  body["decisions"] = nullptr;
  std::vector<policy::InstalledApp> apps;
  bool have_inventory = false;
  if (!device->inventory_json.empty()) {
    auto parsed = ParseJsonBounded(device->inventory_json, store::kFleetLimits.max_inventory_json_bytes,
                                   protocol::kProtocolLimits.max_json_depth, "stored inventory");
    if (parsed.ok()) {
      body["inventory"] = *parsed;
      auto read = protocol::InventoryFromJsonArray(*parsed, "inventory");
      if (read.ok()) {
        apps = std::move(*read);
        have_inventory = true;
      } else {
        body["inventory_error"] = read.status().message();
      }
    } else {
      body["inventory_error"] = parsed.status().message();
    }
  }
  // What the latest bundle decides for each installed app of this device.
  if (call.context.latest_bundle) {
    const verify::PublishedBundle& latest = call.context.latest_bundle();
    body["bundle_version"] = latest.version;
    if (latest.index && have_inventory) {
      policy::DeviceContext device_context{device->id, *groups};
      auto decisions = latest.index->EvaluateAll(apps, device_context, call.Now());
      body["decisions"] = policy::DecisionsToJson(apps, decisions);
    }
  }
  auto states = call.context.fleet->ListDeviceRuleStates(id);
  if (!states.ok()) return ErrorFrom(states.status());
  Json state_list = Json::array();
  for (const auto& state : *states) state_list.push_back(RuleStateJson(state));
  body["rule_states"] = state_list;
  auto events = call.context.fleet->ListEvents(id, kAdminLimits.recent_events);
  if (!events.ok()) return ErrorFrom(events.status());
  Json event_list = Json::array();
  for (const auto& event : *events) event_list.push_back(EventJson(event));
  body["events"] = event_list;
  return JsonResponse(200, body);
}

HttpResponse RevokeDevice(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "device id"); !s.ok()) return ErrorFrom(s);
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"reason"}, "body"); !s.ok()) return ErrorFrom(s);
  auto reason = StringMember(*body, "reason", true, store::kFleetLimits.max_note_bytes);
  if (!reason.ok()) return ErrorFrom(reason.status());
  store::AuditRecord audit = call.Audit();
  if (Status s = call.context.fleet->RevokeDevice(id, audit); !s.ok()) return ErrorFrom(s);
  if (call.context.notifier != nullptr) call.context.notifier->DeviceRevoked(id);
  return JsonResponse(200, Json{{"device_id", id},
                                {"revoked_at", FormatTimestamp(audit.at)},
                                {"revoked_by", audit.actor},
                                {"reason", *reason}});
}

}  // namespace appban::server::admin
