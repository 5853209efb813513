#include "appban/mdm/connectors.h"

#include "appban/mdm/apple_connector.h"
#include "appban/mdm/intune_connector.h"

#include <utility>

namespace appban::mdm {

Result<ConnectorReport> AmapiMdmConnector::Plan(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(PlanReport plan, connector_->Plan(bundle));
  ConnectorReport report;
  report.json = plan.ToJson();
  report.text = plan.ToText();
  report.empty = plan.Empty();
  for (const auto& policy : plan.policies) {
    if (!policy.error.empty()) report.failed = true;
  }
  return report;
}

Result<ConnectorReport> AmapiMdmConnector::Apply(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(ApplyReport applied, connector_->Apply(bundle));
  ConnectorReport report;
  report.json = applied.ToJson();
  report.text = applied.ToText();
  report.failed = applied.Failed();
  report.empty = true;
  for (const auto& outcome : applied.policies) {
    if (outcome.result != "unchanged") report.empty = false;
    if (outcome.result != "patched" && outcome.result != "failed") continue;
    Json what = {{"connector", applied.connector},
                 {"bundle_version", applied.bundle_version},
                 {"result", outcome.result},
                 {"blocked", outcome.blocked},
                 {"unblocked", outcome.unblocked}};
    if (!outcome.version.empty()) what["policy_version"] = outcome.version;
    if (!outcome.error.empty()) what["error"] = outcome.error;
    report.pushes.push_back(MdmPush{"mdm.amapi.apply", "amapi:" + outcome.policy, std::move(what)});
  }
  return report;
}

Result<std::vector<MdmDevice>> AmapiMdmConnector::Inventory(const policy::Bundle& bundle) {
  std::vector<MdmDevice> all;
  APPBAN_RETURN_IF_ERROR(InventoryPages(bundle, [&all](std::vector<MdmDevice> page) {
    for (auto& device : page) all.push_back(std::move(device));
    return Status::Ok();
  }));
  return all;
}

Status AmapiMdmConnector::InventoryPages(const policy::Bundle& /*bundle: evaluation is the import's*/,
                                         const std::function<Status(std::vector<MdmDevice>)>& visit) {
  return connector_->DevicePages(visit);
}

Result<std::vector<std::unique_ptr<MdmConnector>>> CreateConnectors(const MdmConfig& config,
                                                                    const ConnectorOptions& options) {
  std::vector<std::unique_ptr<MdmConnector>> connectors;
  for (const AmapiConnectorConfig& amapi : config.amapi) {
    Result<std::unique_ptr<AmapiConnector>> created = AmapiConnector::Create(amapi, options);
    if (!created.ok())
      return Status(created.status().code(), "connector " + amapi.name + ": " + created.status().message());
    connectors.push_back(std::make_unique<AmapiMdmConnector>(std::move(*created)));
  }
  for (const IntuneConnectorConfig& intune : config.intune) {
    IntuneConnectorOptions intune_options;
    intune_options.state_dir = options.state_dir;
    intune_options.retry = options.retry;
    intune_options.http = options.http;
    intune_options.now = options.now;
    Result<std::unique_ptr<IntuneConnector>> created = IntuneConnector::Create(intune, std::move(intune_options));
    if (!created.ok())
      return Status(created.status().code(), "connector " + intune.name + ": " + created.status().message());
    connectors.push_back(std::move(*created));
  }
  for (const AppleConnectorConfig& apple : config.apple) {
    AppleConnectorOptions apple_options;
    apple_options.state_dir = options.state_dir;
    apple_options.retry = options.retry;
    apple_options.http = options.http;
    apple_options.now = options.now;
    Result<std::unique_ptr<AppleConnector>> created = AppleConnector::Create(apple, std::move(apple_options));
    if (!created.ok())
      return Status(created.status().code(), "connector " + apple.name + ": " + created.status().message());
    connectors.push_back(std::move(*created));
  }
  return connectors;
}

}  // namespace appban::mdm
