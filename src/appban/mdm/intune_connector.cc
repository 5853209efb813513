#include "appban/mdm/intune_connector.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "appban/common/file.h"
#include "appban/mdm/credential_file.h"

namespace appban::mdm {
namespace {

Json UnenforceableJson(const std::vector<Unenforceable>& list) {
  Json out = Json::array();
  for (const auto& item : list)
    out.push_back({{"rule", item.rule_id}, {"target", item.target}, {"reason", item.reason}});
  return out;
}

std::string_view KindName(IntuneOperation::Kind kind) {
  switch (kind) {
    case IntuneOperation::Kind::kCreateAssignment:
      return "create-uninstall-assignment";
    case IntuneOperation::Kind::kDeleteAssignment:
      return "delete-uninstall-assignment";
    case IntuneOperation::Kind::kPatchCompliancePolicy:
      return "patch-restricted-apps";
    case IntuneOperation::Kind::kPatchConfiguration:
      return "patch-apps-visibility-list";
  }
  return "?";
}

Json OperationJson(const IntuneOperation& op) {
  Json out = {{"operation", KindName(op.kind)}, {"path", op.Path()}, {"add", op.add}, {"remove", op.remove}};
  if (!op.group.empty()) out["group"] = op.group;
  if (!op.label.empty()) out["app"] = op.label;
  return out;
}

std::string Header(const std::string& name, int64_t version) {
  return "intune connector " + name + ", bundle version " + std::to_string(version) + "\n";
}

void Footnotes(std::ostringstream& out, const IntunePlan& plan) {
  for (const auto& note : plan.notes) out << "  = " << note << "\n";
  for (const auto& item : plan.unenforceable) {
    out << "  not enforceable by Intune: " << item.target << " (rule " << item.rule_id << "): " << item.reason << "\n";
  }
}

}  // namespace

Result<IntuneState> LoadIntuneState(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 && errno == ENOENT) return IntuneState{};
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMdmLimits.max_state_file_bytes));
  APPBAN_ASSIGN_OR_RETURN(Json json,
                          ParseJsonBounded(text, kMdmLimits.max_state_file_bytes, kMdmLimits.max_json_depth, path));
  Result<IntuneState> state = IntuneStateFromJson(json);
  if (!state.ok()) return Status::Corruption(path + ": " + state.status().message());
  return state;
}

Status SaveIntuneState(const std::string& path, const IntuneState& state) {
  return WriteFileAtomically(path, IntuneStateToJson(state).dump(1) + "\n", 0600);
}

Result<std::unique_ptr<IntuneConnector>> IntuneConnector::Create(IntuneConnectorConfig config,
                                                                 IntuneConnectorOptions options) {
  APPBAN_ASSIGN_OR_RETURN(EntraCredentials credentials, LoadEntraCredentials(config));
  net::ClientOptions http = options.http;
  if (!config.ca_file.empty()) {
    APPBAN_ASSIGN_OR_RETURN(http.pinned_ca_pem, ReadFileToString(config.ca_file, 1 << 20));
  } else {
    http.trust_system_roots = true;
  }
  std::unique_ptr<IntuneConnector> connector(new IntuneConnector(std::move(config), std::move(options)));
  TokenSourceOptions token_options;
  token_options.http = http;
  token_options.retry = connector->options_.retry;
  token_options.now = connector->options_.now;
  APPBAN_ASSIGN_OR_RETURN(
      connector->tokens_,
      MakeGraphTokenSource(std::move(credentials), connector->config_.login_base_url, std::move(token_options)));
  GraphClientOptions client_options;
  client_options.base_url = connector->config_.graph_base_url;
  client_options.http = http;
  client_options.retry = connector->options_.retry;
  client_options.page_size = connector->options_.page_size;
  APPBAN_ASSIGN_OR_RETURN(connector->client_, GraphClient::Create(std::move(client_options), connector->tokens_.get()));
  return connector;
}

IntuneConnector::IntuneConnector(IntuneConnectorConfig config, IntuneConnectorOptions options)
    : config_(std::move(config)), options_(std::move(options)) {
  state_path_ = options_.state_dir + "/intune-" + config_.name + ".json";
}

IntuneConnector::~IntuneConnector() = default;

Result<std::vector<CatalogApp>> IntuneConnector::Catalogue() {
  APPBAN_ASSIGN_OR_RETURN(std::vector<Json> apps, client_->List("/v1.0/deviceAppManagement/mobileApps",
                                                                kMdmLimits.max_mobile_apps, "mobileApps list"));
  std::vector<CatalogApp> catalogue;
  for (const Json& json : apps) {
    APPBAN_ASSIGN_OR_RETURN(CatalogApp app, ParseMobileApp(json));
    APPBAN_RETURN_IF_ERROR(ValidateGraphId(app.id));
    catalogue.push_back(std::move(app));
  }
  return catalogue;
}

Result<IntuneConnector::Planned> IntuneConnector::ReadAndPlan(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(IntuneState state, LoadIntuneState(state_path_));
  APPBAN_ASSIGN_OR_RETURN(policy::PolicyIndex index, policy::PolicyIndex::Build(bundle));
  IntuneBanned banned = CollectIntuneBanned(bundle);
  IntuneSnapshot snapshot;
  APPBAN_ASSIGN_OR_RETURN(snapshot.catalogue, Catalogue());
  std::set<std::string> recorded_apps;
  for (const auto& [key, id] : state.assignments) recorded_apps.insert(key.substr(0, key.find('|')));
  for (const auto& key : state.pending_assignments) recorded_apps.insert(key.substr(0, key.find('|')));
  for (const CatalogApp& app : snapshot.catalogue) {
    const auto& ids = app.ios ? banned.ios : banned.android;
    if (app.app_id.empty() || (!ids.count(app.app_id) && !recorded_apps.count(app.id))) continue;
    Result<std::vector<Json>> assignments =
        client_->List("/v1.0/deviceAppManagement/mobileApps/" + app.id + "/assignments",
                      kMdmLimits.max_assignments_per_app, "mobileApps/" + app.id + "/assignments");
    if (assignments.ok()) {
      snapshot.assignments[app.id] = std::move(*assignments);
    } else {
      snapshot.read_errors["mobileApps/" + app.id] = assignments.status().ToString();
    }
  }
  std::set<std::string> compliance_ids, configuration_ids;
  for (const IntuneTarget& target : config_.targets) {
    if (!target.ios_compliance_policy_id.empty()) compliance_ids.insert(target.ios_compliance_policy_id);
    if (!target.ios_device_configuration_id.empty()) configuration_ids.insert(target.ios_device_configuration_id);
  }
  for (const std::string& id : compliance_ids) {
    Result<Json> policy =
        client_->Get("/beta/deviceManagement/deviceCompliancePolicies/" + id, "deviceCompliancePolicies/" + id);
    if (policy.ok()) {
      snapshot.compliance_policies[id] = std::move(*policy);
    } else {
      snapshot.read_errors["deviceCompliancePolicies/" + id] = policy.status().ToString();
    }
  }
  for (const std::string& id : configuration_ids) {
    Result<Json> configuration =
        client_->Get("/v1.0/deviceManagement/deviceConfigurations/" + id, "deviceConfigurations/" + id);
    if (configuration.ok()) {
      snapshot.configurations[id] = std::move(*configuration);
    } else {
      snapshot.read_errors["deviceConfigurations/" + id] = configuration.status().ToString();
    }
  }
  IntunePlan plan = PlanIntune(index, banned, config_.targets, snapshot, state, options_.now());
  return Planned{std::move(plan), std::move(state)};
}

Result<ConnectorReport> IntuneConnector::Plan(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(Planned planned, ReadAndPlan(bundle));
  const IntunePlan& plan = planned.plan;
  ConnectorReport report;
  report.empty = plan.Empty();
  report.failed = !plan.errors.empty();
  Json operations = Json::array();
  for (const auto& op : plan.operations) operations.push_back(OperationJson(op));
  report.json = Json{{"connector", config_.name},
                     {"kind", "intune"},
                     {"bundle_version", bundle.version},
                     {"operations", std::move(operations)},
                     {"notes", plan.notes},
                     {"errors", plan.errors},
                     {"unenforceable", UnenforceableJson(plan.unenforceable)},
                     {"record_ownership", plan.state_changes},
                     {"changes", !plan.Empty()}};
  std::ostringstream out;
  out << Header(config_.name, bundle.version);
  for (const auto& op : plan.operations) out << "  " << op.Describe() << "\n";
  if (plan.state_changes) out << "  ~ ownership records to update (items changed or removed by someone else)\n";
  for (const auto& error : plan.errors) out << "  cannot plan: " << error << "\n";
  Footnotes(out, plan);
  out << (plan.Empty() ? "plan: nothing to change\n" : "plan: changes pending (run `appban mdm apply`)\n");
  report.text = out.str();
  return report;
}

Result<ConnectorReport> IntuneConnector::Apply(const policy::Bundle& bundle) {
  APPBAN_RETURN_IF_ERROR(EnsurePrivateDirectory(options_.state_dir));
  APPBAN_ASSIGN_OR_RETURN(Planned planned, ReadAndPlan(bundle));
  IntunePlan& plan = planned.plan;
  IntuneState& state = plan.resolved;
  const int retries_before = client_->retries();
  if (plan.state_changes) APPBAN_RETURN_IF_ERROR(SaveIntuneState(state_path_, state));
  Json results = Json::array();
  std::ostringstream out;
  out << Header(config_.name, bundle.version);
  bool failed = !plan.errors.empty();
  for (const auto& error : plan.errors) out << "  FAILED to read: " << error << "\n";
  for (const IntuneOperation& op : plan.operations) {
    const std::string key = op.object + "|" + op.group;
    const std::string list_key =
        std::string(op.kind == IntuneOperation::Kind::kPatchCompliancePolicy ? "compliance:" : "configuration:") +
        op.object;
    // Write-ahead: the ownership this operation creates, before it is sent.
    if (op.kind == IntuneOperation::Kind::kCreateAssignment) state.pending_assignments.insert(key);
    if (op.kind == IntuneOperation::Kind::kPatchCompliancePolicy ||
        op.kind == IntuneOperation::Kind::kPatchConfiguration) {
      state.pending_lists[list_key] = op.owned_after;
    }
    Status status = SaveIntuneState(state_path_, state);
    Result<Json> answer = Json::object();
    if (status.ok()) {
      switch (op.kind) {
        case IntuneOperation::Kind::kCreateAssignment:
          answer = client_->Post(op.Path(), op.body, "create assignment on mobileApps/" + op.object);
          if (answer.ok() && (!answer->contains("id") || !(*answer)["id"].is_string() ||
                              !ValidateGraphId((*answer)["id"].get<std::string>()).ok())) {
            answer = Status::Corruption("create assignment on mobileApps/" + op.object + ": answer has no valid id");
          }
          break;
        case IntuneOperation::Kind::kDeleteAssignment: {
          Status deleted = client_->Delete(op.Path(), "delete assignment " + op.assignment_id);
          // Already gone is what was wanted.
          if (!deleted.ok() && deleted.code() != StatusCode::kNotFound) answer = deleted;
          break;
        }
        case IntuneOperation::Kind::kPatchCompliancePolicy:
        case IntuneOperation::Kind::kPatchConfiguration:
          answer = client_->Patch(op.Path(), op.body, op.Path());
          break;
      }
      status = answer.status();
      // Refused outright: nothing changed, the pending record goes. Unreachable after every retry
      // or an unreadable answer: it may have landed; the pending record stays for the next run.
      const bool fate_unknown =
          !status.ok() && (status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kCorruption);
      if (status.ok() || !fate_unknown) {
        state.pending_assignments.erase(key);
        state.pending_lists.erase(list_key);
      }
      if (status.ok()) {
        switch (op.kind) {
          case IntuneOperation::Kind::kCreateAssignment:
            state.assignments[key] = (*answer)["id"].get<std::string>();
            break;
          case IntuneOperation::Kind::kDeleteAssignment:
            state.assignments.erase(key);
            break;
          case IntuneOperation::Kind::kPatchCompliancePolicy:
          case IntuneOperation::Kind::kPatchConfiguration: {
            auto& owned =
                op.kind == IntuneOperation::Kind::kPatchCompliancePolicy ? state.compliance : state.configurations;
            if (op.owned_after.empty()) {
              owned.erase(op.object);
            } else {
              owned[op.object] = op.owned_after;
            }
            if (op.kind == IntuneOperation::Kind::kPatchConfiguration) {
              if (op.list_type_set_after) {
                state.list_type_set.insert(op.object);
              } else {
                state.list_type_set.erase(op.object);
              }
            }
            break;
          }
        }
      }
      if (Status saved = SaveIntuneState(state_path_, state); !saved.ok() && status.ok()) status = saved;
    }
    Json item = OperationJson(op);
    item["result"] = status.ok() ? "done" : "failed";
    if (!status.ok()) {
      item["error"] = status.ToString();
      failed = true;
    }
    results.push_back(std::move(item));
    out << "  " << op.Describe() << ": " << (status.ok() ? "done" : "FAILED: " + status.ToString()) << "\n";
  }
  std::ostringstream notes;
  Footnotes(notes, plan);
  out << notes.str();
  const int retries = client_->retries() - retries_before;
  if (retries > 0) out << retries << " request(s) retried after throttling or unavailability\n";
  if (!failed) {
    state.last_applied_bundle = bundle.version;
    state.last_applied_at = options_.now();
    APPBAN_RETURN_IF_ERROR(SaveIntuneState(state_path_, state));
  }
  out << (failed ? "apply: FAILED for some objects (run again; nothing was half-recorded)\n" : "apply: done\n");
  ConnectorReport report;
  report.failed = failed;
  report.empty = plan.operations.empty();
  // Every operation sent (or failed) is audited by the caller: what, on which Graph object, by which bundle.
  for (const Json& operation : results) {
    Json what = operation;
    what["connector"] = config_.name;
    what["bundle_version"] = bundle.version;
    report.pushes.push_back(MdmPush{"mdm.intune.apply", "intune:" + StringOr(operation, "path"), std::move(what)});
  }
  report.json = Json{{"connector", config_.name},
                     {"kind", "intune"},
                     {"bundle_version", bundle.version},
                     {"operations", std::move(results)},
                     {"errors", plan.errors},
                     {"notes", plan.notes},
                     {"unenforceable", UnenforceableJson(plan.unenforceable)},
                     {"retries", retries},
                     {"ok", !failed}};
  report.text = out.str();
  return report;
}

Result<std::vector<MdmDevice>> IntuneConnector::Inventory(const policy::Bundle&) {
  APPBAN_ASSIGN_OR_RETURN(std::vector<Json> devices_json, client_->List("/v1.0/deviceManagement/managedDevices",
                                                                        kMdmLimits.max_devices, "managedDevices list"));
  std::vector<MdmDevice> devices;
  for (const Json& json : devices_json) {
    APPBAN_ASSIGN_OR_RETURN(MdmDevice device, ParseManagedDevice(json));
    device.connector = config_.name;
    device.groups = config_.device_groups;
    devices.push_back(std::move(device));
  }
  APPBAN_ASSIGN_OR_RETURN(
      std::vector<Json> apps_json,
      client_->List("/v1.0/deviceManagement/detectedApps", kMdmLimits.max_detected_apps, "detectedApps list"));
  std::map<std::string, std::vector<DetectedApp>> apps_by_device;
  for (const Json& json : apps_json) {
    APPBAN_ASSIGN_OR_RETURN(DetectedApp app, ParseDetectedApp(json));
    APPBAN_RETURN_IF_ERROR(ValidateGraphId(app.id));
    APPBAN_ASSIGN_OR_RETURN(std::vector<Json> holders,
                            client_->List("/v1.0/deviceManagement/detectedApps/" + app.id + "/managedDevices",
                                          kMdmLimits.max_devices, "detectedApps/" + app.id + "/managedDevices"));
    for (const Json& holder : holders) {
      auto id = holder.find("id");
      if (id == holder.end() || !id->is_string()) {
        return Status::Corruption("detectedApps/" + app.id + "/managedDevices: a device without an id");
      }
      apps_by_device[id->get<std::string>()].push_back(app);
    }
  }
  APPBAN_ASSIGN_OR_RETURN(std::vector<CatalogApp> catalogue, Catalogue());
  return BuildIntuneDevices(std::move(devices), apps_by_device, catalogue);
}

Result<ConnectorReport> IntuneConnector::Survey(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(IntuneState state, LoadIntuneState(state_path_));
  APPBAN_ASSIGN_OR_RETURN(policy::PolicyIndex index, policy::PolicyIndex::Build(bundle));
  APPBAN_ASSIGN_OR_RETURN(std::vector<MdmDevice> devices, Inventory(bundle));
  const UnixSeconds now = options_.now();
  Json list = Json::array();
  std::ostringstream lines;
  size_t violating_devices = 0, cannot_enforce = 0, silent = 0;
  for (const MdmDevice& device : devices) {
    Json violating = Json::array();
    std::string text;
    for (const policy::InstalledApp& app : device.installed) {
      policy::AppDecision decision = index.Evaluate(app, policy::DeviceContext{device.mdm_id, device.groups}, now);
      if (decision.verdict == policy::Verdict::kRemove || decision.verdict == policy::Verdict::kBlockInstall) {
        violating.push_back({{"app", app.id}, {"rule", decision.rule_id}});
        text += " " + app.id + " (rule " + decision.rule_id + ")";
      }
    }
    if (!violating.empty()) ++violating_devices;
    if (!device.cannot_enforce_reason.empty()) ++cannot_enforce;
    if (!device.reports_apps) ++silent;
    Json item = {{"device", device.mdm_id},
                 {"name", device.display_name},
                 {"platform", device.platform},
                 {"source", MdmSourceName(device.source)},
                 {"reports_apps", device.reports_apps},
                 {"violating", std::move(violating)}};
    if (device.mdm_compliant) item["mdm_compliant"] = *device.mdm_compliant;
    if (device.last_mdm_sync) item["last_mdm_sync"] = FormatTimestamp(*device.last_mdm_sync);
    if (!device.cannot_enforce_reason.empty()) item["cannot_enforce"] = device.cannot_enforce_reason;
    list.push_back(std::move(item));
    lines << device.mdm_id << "  " << device.display_name << "  " << device.platform << "  intune "
          << (device.mdm_compliant ? (*device.mdm_compliant ? "compliant" : "noncompliant") : "no verdict");
    if (!device.reports_apps) {
      lines << "  NO APP INVENTORY";
    } else if (!text.empty()) {
      lines << "  VIOLATING:" << text;
    } else {
      lines << "  no banned app";
    }
    if (!device.cannot_enforce_reason.empty()) lines << "  CANNOT ENFORCE: " << device.cannot_enforce_reason;
    lines << "\n";
  }
  ConnectorReport report;
  report.json = Json{{"connector", config_.name},        {"kind", "intune"},
                     {"bundle_version", bundle.version}, {"last_applied_bundle", state.last_applied_bundle},
                     {"devices", std::move(list)},       {"violating_devices", violating_devices}};
  std::ostringstream out;
  out << "intune connector " << config_.name << ": bundle version " << bundle.version << ", last applied "
      << state.last_applied_bundle << "\n"
      << devices.size() << " device(s), " << violating_devices << " with a banned app still installed, " << silent
      << " without app inventory, " << cannot_enforce << " where Intune cannot enforce every mechanism\n"
      << lines.str();
  report.text = out.str();
  report.empty = violating_devices == 0;
  return report;
}

}  // namespace appban::mdm
