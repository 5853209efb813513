#include "appban/mdm/amapi_inventory.h"

#include "appban/common/time.h"
#include "appban/mdm/limits.h"

namespace appban::mdm {
namespace {

Status OptionalString(const Json& object, std::string_view key, std::string& out, std::string_view what) {
  auto it = object.find(key);
  if (it == object.end()) return Status::Ok();
  if (!it->is_string()) return Status::Corruption(std::string(what) + ": " + std::string(key) + " is not a string");
  out = it->get<std::string>();
  return Status::Ok();
}

}  // namespace

Result<AmapiDevice> ParseAmapiDevice(const Json& device) {
  if (!device.is_object()) return Status::Corruption("device is not an object");
  AmapiDevice out;
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "name", out.name, "device"));
  if (out.name.empty()) return Status::Corruption("device without a name");
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "policyName", out.policy_name, out.name));
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "appliedPolicyName", out.applied_policy_name, out.name));
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "appliedPolicyVersion", out.applied_policy_version, out.name));
  if (auto it = device.find("policyCompliant"); it != device.end()) {
    if (!it->is_boolean()) return Status::Corruption(out.name + ": policyCompliant is not a boolean");
    out.policy_compliant = it->get<bool>();
  }
  std::string synced;
  APPBAN_RETURN_IF_ERROR(OptionalString(device, "lastPolicySyncTime", synced, out.name));
  if (!synced.empty()) {
    // Google writes "2026-12-05T04:00:00.123456Z": the fraction is dropped.
    std::string whole =
        synced.size() > 20 && synced[19] == '.' && synced.back() == 'Z' ? synced.substr(0, 19) + "Z" : synced;
    Result<UnixSeconds> at = ParseTimestamp(whole);
    if (!at.ok()) return Status::Corruption(out.name + ": lastPolicySyncTime: " + at.status().message());
    out.last_policy_sync = *at;
  }
  auto reports = device.find("applicationReports");
  if (reports == device.end()) return out;
  if (!reports->is_array()) return Status::Corruption(out.name + ": applicationReports is not an array");
  if (reports->size() > kMdmLimits.max_applications_per_policy) {
    return Status::LimitExceeded(out.name + ": more than " + std::to_string(kMdmLimits.max_applications_per_policy) +
                                 " application reports");
  }
  out.reports_apps = true;
  for (const Json& report : *reports) {
    if (!report.is_object()) return Status::Corruption(out.name + ": an application report is not an object");
    std::string package, state, version;
    APPBAN_RETURN_IF_ERROR(OptionalString(report, "packageName", package, out.name));
    APPBAN_RETURN_IF_ERROR(OptionalString(report, "state", state, out.name));
    APPBAN_RETURN_IF_ERROR(OptionalString(report, "versionName", version, out.name));
    if (package.empty()) continue;
    if (state == "REMOVED") {
      out.removed.push_back(std::move(package));
      continue;
    }
    // INSTALLED, and also UNSPECIFIED: an app in an unknown state is not counted as gone.
    policy::InstalledApp app;
    app.platform = policy::Platform::kAndroid;
    app.id = std::move(package);
    app.version = std::move(version);
    out.installed.push_back(std::move(app));
  }
  return out;
}

}  // namespace appban::mdm
