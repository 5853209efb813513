#include "appban/mdm/apple_connector.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>

#include "appban/common/file.h"
#include "appban/mdm/apple_commands.h"
#include "appban/mdm/credential_file.h"
#include "appban/mdm/google_auth.h"
#include "appban/policy/model.h"

namespace appban::mdm {
namespace {

constexpr std::string_view kStateFormat = "appban.mdm-apple-state/1";
constexpr uint64_t kMaxApiKeyFileBytes = 4096;

std::string Joined(const std::vector<std::string>& values, std::string_view separator = ", ") {
  std::string out;
  for (const auto& value : values) out += (out.empty() ? "" : std::string(separator)) + value;
  return out;
}

bool IsEnforcing(policy::Verdict verdict) {
  return verdict == policy::Verdict::kRemove || verdict == policy::Verdict::kBlockInstall;
}

// A command the device has not finished with: queued and unanswered, or answered NotNow.
bool Pending(const ResultsFile& results, const std::string& uuid) {
  auto it = results.commands.find(uuid);
  return it == results.commands.end() || it->second.status == "NotNow";
}

const RecordedCommand* Answer(const ResultsFile& results, const std::string& uuid) {
  auto it = results.commands.find(uuid);
  return it == results.commands.end() || it->second.status == "NotNow" ? nullptr : &it->second;
}

Json StringsJson(const std::vector<std::string>& values) { return Json(values); }

}  // namespace

Result<std::vector<AppleDeviceEntry>> ParseDevicesFile(std::string_view text, const MdmLimits& limits) {
  std::vector<AppleDeviceEntry> devices;
  std::set<std::string, std::less<>> seen;
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    auto trim = [](std::string_view s) {
      while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
      while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
      return s;
    };
    line = trim(line);
    if (line.empty()) continue;
    const std::string where = "line " + std::to_string(line_number) + ": ";
    size_t space = line.find_first_of(" \t");
    AppleDeviceEntry device;
    device.id = std::string(line.substr(0, space));
    if (Status valid = ValidateEnrollmentId(device.id); !valid.ok())
      return Status::InvalidArgument(where + valid.message());
    if (!seen.insert(device.id).second) return Status::InvalidArgument(where + device.id + " is listed twice");
    std::string_view groups = space == std::string_view::npos ? std::string_view() : trim(line.substr(space));
    while (!groups.empty()) {
      size_t comma = groups.find(',');
      std::string group(trim(groups.substr(0, comma)));
      groups = comma == std::string_view::npos ? std::string_view() : groups.substr(comma + 1);
      if (Status valid = policy::ValidateIdentifier(group, "group"); !valid.ok()) {
        return Status::InvalidArgument(where + valid.message());
      }
      device.groups.push_back(std::move(group));
    }
    if (devices.size() == limits.max_apple_devices) {
      return Status::LimitExceeded("more than " + std::to_string(limits.max_apple_devices) + " devices");
    }
    devices.push_back(std::move(device));
  }
  return devices;
}

BannedBundles CollectBannedBundles(const policy::Bundle& bundle) {
  BannedBundles out;
  auto add = [&out](const std::string& id, const std::string& rule) {
    auto& rules = out.bundles[id];
    if (std::find(rules.begin(), rules.end(), rule) == rules.end()) rules.push_back(rule);
  };
  auto visit = [&](const policy::Target& target, const std::string& rule) {
    if (target.kind == policy::TargetKind::kIosBundle) add(target.value, rule);
    if (target.kind == policy::TargetKind::kAppleTeam)
      out.unenforceable.emplace_back(rule, "apple-team:" + target.value);
  };
  for (const policy::Rule& rule : bundle.rules) {
    for (const policy::Target& target : rule.targets) {
      if (target.kind != policy::TargetKind::kVendor) {
        visit(target, rule.id);
        continue;
      }
      for (const policy::Vendor& vendor : bundle.vendors) {
        if (vendor.name != target.value) continue;
        for (const policy::Target& identifier : vendor.identifiers) visit(identifier, rule.id);
      }
    }
  }
  for (auto& [id, rules] : out.bundles) std::sort(rules.begin(), rules.end());
  return out;
}

Result<AppleState> LoadAppleState(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 && errno == ENOENT) return AppleState{};
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMdmLimits.max_state_file_bytes));
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(text, kMdmLimits.max_state_file_bytes, 16, path));
  auto corrupt = [&path](const std::string& what) { return Status::Corruption(path + ": " + what); };
  if (!json.is_object() || StringOr(json, "format") != kStateFormat) {
    return corrupt("not an " + std::string(kStateFormat) + " document");
  }
  AppleState state;
  auto devices = json.find("devices");
  if (devices == json.end() || !devices->is_object()) return corrupt("devices is not an object");
  try {
    for (const auto& [id, entry] : devices->items()) {
      AppleDeviceState device;
      if (auto profile = entry.find("profile"); profile != entry.end() && !profile->is_null()) {
        device.profile = profile->get<std::vector<std::string>>();
      }
      device.profile_command = StringOr(entry, "profile_command");
      device.removals = entry.at("removals").get<std::map<std::string, std::string, std::less<>>>();
      device.queries = entry.at("queries").get<std::vector<std::string>>();
      state.devices.emplace(id, std::move(device));
    }
    state.last_applied_bundle = json.at("last_applied_bundle").get<int64_t>();
    state.last_applied_at = json.at("last_applied_at").get<int64_t>();
  } catch (const Json::exception& error) {
    return corrupt(std::string("malformed: ") + error.what());
  }
  return state;
}

Status SaveAppleState(const std::string& path, const AppleState& state) {
  Json devices = Json::object();
  for (const auto& [id, device] : state.devices) {
    devices[id] = {{"profile", device.profile ? Json(*device.profile) : Json()},
                   {"profile_command", device.profile_command},
                   {"removals", device.removals},
                   {"queries", device.queries}};
  }
  Json document = {{"format", kStateFormat},
                   {"devices", std::move(devices)},
                   {"last_applied_bundle", state.last_applied_bundle},
                   {"last_applied_at", state.last_applied_at}};
  return WriteFileAtomically(path, document.dump(1) + "\n", 0600);
}

AppleDevicePlan PlanAppleDevice(const policy::PolicyIndex& index, const BannedBundles& banned,
                                const AppleDeviceEntry& device, const AppleDeviceState* recorded,
                                const ResultsFile& results, UnixSeconds now) {
  AppleDevicePlan plan;
  plan.device = device.id;
  static const AppleDeviceState kNothing;
  const AppleDeviceState& state = recorded ? *recorded : kNothing;
  auto answered = results.devices.find(device.id);
  const DeviceResults* reported = answered == results.devices.end() ? nullptr : &answered->second;

  policy::DeviceContext context{device.id, device.groups};
  std::vector<std::string> remove;
  for (const auto& [bundle_id, rules] : banned.bundles) {
    policy::InstalledApp app;
    app.platform = policy::Platform::kIos;
    app.id = bundle_id;
    policy::AppDecision decision = index.Evaluate(app, context, now);
    if (decision.verdict == policy::Verdict::kWaived) plan.waived.push_back(bundle_id);
    if (!IsEnforcing(decision.verdict)) continue;
    plan.blocked.push_back(bundle_id);
    if (decision.verdict == policy::Verdict::kRemove) remove.push_back(bundle_id);
  }

  // The profile: queued when its list differs from the one recorded, or again when the device
  // refused the last one.
  const std::vector<std::string> installed = state.profile.value_or(std::vector<std::string>{});
  if (plan.blocked != installed) {
    if (plan.blocked.empty()) {
      plan.remove_profile = state.profile.has_value();
    } else {
      plan.install_profile = true;
    }
  } else if (!state.profile_command.empty()) {
    if (const RecordedCommand* answer = Answer(results, state.profile_command);
        answer && answer->status != "Acknowledged") {
      plan.profile_retry = answer->status + (answer->error.empty() ? "" : ": " + answer->error);
      if (plan.blocked.empty()) {
        plan.remove_profile = true;
      } else {
        plan.install_profile = true;
      }
    }
  }

  // Removals: once each; again when acknowledged and a later inventory still lists the app.
  for (const std::string& bundle_id : remove) {
    bool listed = false;
    if (reported != nullptr && reported->apps) {
      for (const AppleApp& app : *reported->apps) listed = listed || app.identifier == bundle_id;
    }
    auto sent = state.removals.find(bundle_id);
    if (sent == state.removals.end()) {
      // Until the device has listed its apps, every banned app may be there.
      if (listed || reported == nullptr || !reported->apps) plan.remove_apps.push_back(bundle_id);
      continue;
    }
    const RecordedCommand* answer = Answer(results, sent->second);
    if (answer != nullptr && answer->status == "Acknowledged" && listed && reported->apps_at > answer->at) {
      plan.remove_apps.push_back(bundle_id);  // removed, then installed again
    }
  }
  for (const auto& [bundle_id, uuid] : state.removals) {
    if (std::find(remove.begin(), remove.end(), bundle_id) == remove.end()) plan.forget.push_back(bundle_id);
  }

  // Queries: with every enforcement command, and until the device has answered both — unless some
  // are still pending.
  bool pending = false;
  for (const std::string& uuid : state.queries) pending = pending || Pending(results, uuid);
  const bool enforcing = plan.install_profile || plan.remove_profile || !plan.remove_apps.empty();
  const bool never_answered = reported == nullptr || !reported->info || !reported->apps;
  plan.query = (enforcing || never_answered) && !pending;
  return plan;
}

MdmDevice AppleMdmDevice(const std::string& connector, const AppleDeviceEntry& device, const AppleDeviceState* recorded,
                         const ResultsFile& results) {
  MdmDevice out;
  out.source = MdmSource::kAppleMdm;
  out.connector = connector;
  out.mdm_id = device.id;
  out.groups = device.groups;
  out.platform = "ios";
  auto answered = results.devices.find(device.id);
  if (answered == results.devices.end()) {
    out.cannot_enforce_reason = "the device has not answered yet: supervision and OS version unknown";
    return out;
  }
  const DeviceResults& reported = answered->second;
  out.last_mdm_sync = reported.last_seen;
  if (reported.apps) {
    out.reports_apps = true;
    for (const AppleApp& app : *reported.apps) {
      policy::InstalledApp installed;
      installed.platform = policy::Platform::kIos;
      installed.id = app.identifier;
      installed.version = app.version;
      out.installed.push_back(std::move(installed));
    }
  }
  const AppleDeviceInfo* info = reported.info ? &*reported.info : nullptr;
  if (info) {
    if (info->product_name.rfind("iPad", 0) == 0) out.platform = "ipados";
    out.display_name = info->device_name;
    out.serial_number = info->serial_number;
  }
  // Removals the device acknowledged for apps it no longer lists: remediation evidence.
  if (recorded) {
    for (const auto& [bundle_id, uuid] : recorded->removals) {
      const RecordedCommand* answer = Answer(results, uuid);
      if (answer == nullptr || answer->status != "Acknowledged") continue;
      bool still = false;
      for (const policy::InstalledApp& app : out.installed) still = still || app.id == bundle_id;
      if (!still) out.removed.push_back(bundle_id);
    }
  }
  if (info == nullptr || !info->supervised.has_value() || info->os_version.empty()) {
    out.cannot_enforce_reason = "the device has not reported DeviceInformation: supervision and OS version unknown";
  } else if (!*info->supervised) {
    out.cannot_enforce_reason =
        "unsupervised: blockedAppBundleIDs needs a supervised device, and RemoveApplication removes only apps "
        "the MDM installed";
  } else if (OsVersionBefore(info->os_version, kBlockedAppsMinimumOs)) {
    out.cannot_enforce_reason = "iOS " + info->os_version + ": blockedAppBundleIDs needs iOS/iPadOS " +
                                std::string(kBlockedAppsMinimumOs) + " or later";
  } else if (recorded) {
    // Supervised and recent enough, but a removal the device refused for an app still installed:
    // before iOS 26 RemoveApplication removes only apps the MDM installed.
    for (const auto& [bundle_id, uuid] : recorded->removals) {
      const RecordedCommand* answer = Answer(results, uuid);
      if (answer == nullptr || answer->status == "Acknowledged") continue;
      bool still = false;
      for (const policy::InstalledApp& app : out.installed) still = still || app.id == bundle_id;
      if (!still) continue;
      out.cannot_enforce_reason = bundle_id + " could not be removed (" + answer->status +
                                  (answer->error.empty() ? "" : ": " + answer->error) + ")";
      if (OsVersionBefore(info->os_version, kRemoveUnmanagedMinimumOs)) {
        out.cannot_enforce_reason +=
            "; before iOS 26 RemoveApplication removes only apps the MDM installed "
            "(blockedAppBundleIDs still hides it and stops it launching)";
      }
      break;
    }
  }
  return out;
}

struct AppleConnector::Prepared {
  AppleState state;
  ResultsFile results;
  policy::PolicyIndex index;
  BannedBundles banned;
  UnixSeconds now;
  std::vector<AppleDevicePlan> plans;
};

Result<std::unique_ptr<AppleConnector>> AppleConnector::Create(AppleConnectorConfig config,
                                                               AppleConnectorOptions options) {
  APPBAN_ASSIGN_OR_RETURN(std::string api_key,
                          ReadCredentialFile(config.api_key_file, kMaxApiKeyFileBytes, "the MDM API key"));
  while (!api_key.empty() && (api_key.back() == '\n' || api_key.back() == '\r')) api_key.pop_back();
  APPBAN_ASSIGN_OR_RETURN(SigningIdentity identity,
                          LoadSigningIdentity(config.signing_certificate_file, config.signing_key_file));
  APPBAN_ASSIGN_OR_RETURN(std::string devices_text,
                          ReadFileToString(config.devices_file, kMdmLimits.max_devices_file_bytes));
  Result<std::vector<AppleDeviceEntry>> devices = ParseDevicesFile(devices_text);
  if (!devices.ok()) return Status(devices.status().code(), config.devices_file + ": " + devices.status().message());
  CommandQueueOptions queue;
  queue.server_url = config.server_url;
  queue.api_key = std::move(api_key);
  queue.http = options.http;
  queue.retry = options.retry;
  if (!config.ca_file.empty()) {
    APPBAN_ASSIGN_OR_RETURN(queue.http.pinned_ca_pem, ReadFileToString(config.ca_file, 1 << 20));
  } else {
    queue.http.trust_system_roots = true;
  }
  APPBAN_ASSIGN_OR_RETURN(std::unique_ptr<CommandQueueClient> client, CommandQueueClient::Create(std::move(queue)));
  std::unique_ptr<AppleConnector> connector(
      new AppleConnector(std::move(config), std::move(options), std::move(identity)));
  connector->devices_ = std::move(*devices);
  connector->client_ = std::move(client);
  return connector;
}

AppleConnector::AppleConnector(AppleConnectorConfig config, AppleConnectorOptions options, SigningIdentity identity)
    : config_(std::move(config)), options_(std::move(options)), identity_(std::move(identity)) {
  state_path_ = options_.state_dir + "/apple-" + config_.name + ".json";
  results_path_ = options_.state_dir + "/apple-" + config_.name + "-results.json";
}

AppleConnector::~AppleConnector() = default;

std::string AppleConnector::ProfileXml(const std::vector<std::string>& blocked) const {
  return RestrictionsProfileXml({config_.profile_identifier, config_.organization}, blocked);
}

Result<AppleConnector::Prepared> AppleConnector::Prepare(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(AppleState state, LoadAppleState(state_path_));
  APPBAN_ASSIGN_OR_RETURN(ResultsFile results, LoadResultsFile(results_path_));
  APPBAN_ASSIGN_OR_RETURN(policy::PolicyIndex index, policy::PolicyIndex::Build(bundle));
  Prepared prepared{
      std::move(state), std::move(results), std::move(index), CollectBannedBundles(bundle), options_.now(), {}};
  for (const AppleDeviceEntry& device : devices_) {
    auto recorded = prepared.state.devices.find(device.id);
    prepared.plans.push_back(PlanAppleDevice(prepared.index, prepared.banned, device,
                                             recorded == prepared.state.devices.end() ? nullptr : &recorded->second,
                                             prepared.results, prepared.now));
  }
  return prepared;
}

Result<std::vector<std::string>> AppleConnector::BlockedFor(const policy::Bundle& bundle,
                                                            const std::vector<std::string>& groups) {
  APPBAN_ASSIGN_OR_RETURN(policy::PolicyIndex index, policy::PolicyIndex::Build(bundle));
  return PlanAppleDevice(index, CollectBannedBundles(bundle), {"profile", groups}, nullptr, ResultsFile{},
                         options_.now())
      .blocked;
}

Result<std::string> AppleConnector::SignedProfile(const policy::Bundle& bundle,
                                                  const std::vector<std::string>& groups) {
  APPBAN_ASSIGN_OR_RETURN(std::vector<std::string> blocked, BlockedFor(bundle, groups));
  return identity_.Sign(ProfileXml(blocked));
}

Result<ConnectorReport> AppleConnector::Plan(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(Prepared prepared, Prepare(bundle));
  ConnectorReport report;
  report.empty = true;
  std::ostringstream text;
  text << "apple connector " << config_.name << ", bundle version " << bundle.version << ", " << devices_.size()
       << " device(s)\n";
  Json devices = Json::array();
  for (const AppleDevicePlan& plan : prepared.plans) {
    if (!plan.Empty()) report.empty = false;
    devices.push_back({{"device", plan.device},
                       {"blocked", StringsJson(plan.blocked)},
                       {"install_profile", plan.install_profile},
                       {"remove_profile", plan.remove_profile},
                       {"remove_apps", StringsJson(plan.remove_apps)},
                       {"forget", StringsJson(plan.forget)},
                       {"waived", StringsJson(plan.waived)},
                       {"query", plan.query}});
    text << plan.device;
    if (plan.Empty()) text << ": no change";
    text << "\n";
    if (plan.install_profile) {
      text << "  + InstallProfile " << config_.profile_identifier << " blockedAppBundleIDs [" << Joined(plan.blocked)
           << "]";
      if (!plan.profile_retry.empty()) text << " (again: the device answered " << plan.profile_retry << ")";
      text << "\n";
    }
    if (plan.remove_profile) text << "  - RemoveProfile " << config_.profile_identifier << " (nothing left to block)\n";
    for (const auto& id : plan.remove_apps) text << "  + RemoveApplication " << id << "\n";
    for (const auto& id : plan.forget) text << "  ~ " << id << ": ban lifted, removal record dropped\n";
    for (const auto& id : plan.waived) text << "  = " << id << " waived for this device: not blocked\n";
    if (plan.query) text << "  ? DeviceInformation, InstalledApplicationList\n";
  }
  Json unenforceable = Json::array();
  for (const auto& [rule, target] : prepared.banned.unenforceable) {
    unenforceable.push_back({{"rule", rule}, {"target", target}, {"reason", "MDM restrictions name bundle ids only"}});
    text << "  not enforceable by an Apple MDM: " << target << " (rule " << rule
         << "): restrictions name bundle ids only\n";
  }
  text << (report.empty ? "plan: nothing to change\n" : "plan: changes pending (run `appban mdm apply`)\n");
  report.json = {{"connector", config_.name},
                 {"kind", "apple"},
                 {"bundle_version", bundle.version},
                 {"devices", std::move(devices)},
                 {"unenforceable", std::move(unenforceable)},
                 {"changes", !report.empty}};
  report.text = text.str();
  return report;
}

Result<ConnectorReport> AppleConnector::Apply(const policy::Bundle& bundle) {
  APPBAN_RETURN_IF_ERROR(EnsurePrivateDirectory(options_.state_dir));
  APPBAN_ASSIGN_OR_RETURN(Prepared prepared, Prepare(bundle));
  AppleState& state = prepared.state;
  std::map<std::vector<std::string>, std::string> signed_profiles;  // one signature per distinct list
  ConnectorReport report;
  report.empty = true;
  std::ostringstream text;
  text << "apple connector " << config_.name << ", bundle version " << bundle.version << "\n";
  Json devices = Json::array();
  const int retries_before = client_->retries();
  for (const AppleDevicePlan& plan : prepared.plans) {
    if (plan.Empty()) continue;
    AppleDeviceState& recorded = state.devices[plan.device];
    std::vector<std::string> queued;
    std::string error;
    auto enqueue = [&](const MdmCommand& command) -> bool {
      Result<EnqueueResult> result = client_->Enqueue(plan.device, command.uuid, command.Xml());
      if (!result.ok()) {
        error = result.status().ToString();
        return false;
      }
      queued.push_back(command.request_type + (command.detail.empty() ? "" : " " + command.detail));
      return true;
    };
    for (const std::string& id : plan.forget) recorded.removals.erase(id);
    bool ok = true;
    if (plan.install_profile) {
      auto found = signed_profiles.find(plan.blocked);
      if (found == signed_profiles.end()) {
        Result<std::string> signed_profile = identity_.Sign(ProfileXml(plan.blocked));
        if (!signed_profile.ok()) return signed_profile.status();
        found = signed_profiles.emplace(plan.blocked, std::move(*signed_profile)).first;
      }
      MdmCommand command = InstallProfileCommand(options_.new_uuid(), config_.profile_identifier, found->second);
      ok = enqueue(command);
      if (ok) {
        recorded.profile = plan.blocked;
        recorded.profile_command = command.uuid;
      }
    } else if (plan.remove_profile) {
      MdmCommand command = RemoveProfileCommand(options_.new_uuid(), config_.profile_identifier);
      ok = enqueue(command);
      if (ok) {
        recorded.profile.reset();
        recorded.profile_command = command.uuid;
      }
    }
    for (size_t i = 0; ok && i < plan.remove_apps.size(); ++i) {
      MdmCommand command = RemoveApplicationCommand(options_.new_uuid(), plan.remove_apps[i]);
      ok = enqueue(command);
      if (ok) recorded.removals[plan.remove_apps[i]] = command.uuid;
    }
    if (ok && plan.query) {
      std::vector<std::string> queries;
      for (MdmCommand command :
           {DeviceInformationCommand(options_.new_uuid()), InstalledApplicationListCommand(options_.new_uuid())}) {
        ok = ok && enqueue(command);
        if (ok) queries.push_back(command.uuid);
      }
      if (!queries.empty()) recorded.queries = std::move(queries);
    }
    if (!queued.empty() || !plan.forget.empty()) report.empty = false;
    // What the MDM confirmed is recorded, device by device; what it did not is planned again.
    if (Status saved = SaveAppleState(state_path_, state); !saved.ok()) {
      ok = false;
      error = saved.ToString();
    }
    if (!ok) report.failed = true;
    Json entry = {{"device", plan.device},
                  {"queued", StringsJson(queued)},
                  {"result", !ok              ? "failed"
                             : queued.empty() ? "recorded"
                                              : "queued"}};
    if (!plan.forget.empty()) entry["forgot"] = StringsJson(plan.forget);
    if (!error.empty()) entry["error"] = error;
    if (!queued.empty() || !ok) {
      // Every device commands were queued for (or failed) is audited by the caller.
      Json what = {{"connector", config_.name},
                   {"bundle_version", bundle.version},
                   {"result", entry["result"]},
                   {"queued", entry["queued"]}};
      if (!error.empty()) what["error"] = error;
      report.pushes.push_back(MdmPush{"mdm.apple.apply", "apple:" + config_.name + "/" + plan.device, std::move(what)});
    }
    devices.push_back(std::move(entry));
    text << plan.device << ": " << (!ok ? "FAILED" : queued.empty() ? "recorded" : "queued") << "\n";
    for (const std::string& command : queued) text << "  queued " << command << "\n";
    if (!error.empty()) text << "  error: " << error << "\n";
  }
  const int retries = client_->retries() - retries_before;
  if (!report.failed) {
    state.last_applied_bundle = bundle.version;
    state.last_applied_at = prepared.now;
    APPBAN_RETURN_IF_ERROR(SaveAppleState(state_path_, state));
  }
  if (devices.empty()) text << "every device is up to date\n";
  if (retries > 0) text << retries << " request(s) retried after throttling or unavailability\n";
  text << (report.failed ? "apply: FAILED for some devices (run again; nothing was half-recorded)\n"
                         : "apply: done (devices act on the commands at their next check-in)\n");
  report.json = {{"connector", config_.name},     {"kind", "apple"},    {"bundle_version", bundle.version},
                 {"devices", std::move(devices)}, {"retries", retries}, {"ok", !report.failed}};
  report.text = text.str();
  return report;
}

Result<std::vector<MdmDevice>> AppleConnector::Inventory(const policy::Bundle& bundle) {
  (void)bundle;  // devices are reported as they are; compliance evaluates them
  APPBAN_ASSIGN_OR_RETURN(AppleState state, LoadAppleState(state_path_));
  APPBAN_ASSIGN_OR_RETURN(ResultsFile results, LoadResultsFile(results_path_));
  std::vector<MdmDevice> out;
  for (const AppleDeviceEntry& device : devices_) {
    auto recorded = state.devices.find(device.id);
    out.push_back(
        AppleMdmDevice(config_.name, device, recorded == state.devices.end() ? nullptr : &recorded->second, results));
  }
  return out;
}

Result<ConnectorReport> AppleConnector::Survey(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(std::vector<MdmDevice> devices, Inventory(bundle));
  APPBAN_ASSIGN_OR_RETURN(policy::PolicyIndex index, policy::PolicyIndex::Build(bundle));
  APPBAN_ASSIGN_OR_RETURN(AppleState state, LoadAppleState(state_path_));
  const UnixSeconds now = options_.now();
  ConnectorReport report;
  std::ostringstream lines;
  Json list = Json::array();
  size_t violating_devices = 0, cannot = 0, silent = 0;
  for (const MdmDevice& device : devices) {
    Json violating = Json::array();
    std::vector<std::string> violating_text;
    for (const policy::InstalledApp& app : device.installed) {
      policy::AppDecision decision = index.Evaluate(app, {device.mdm_id, device.groups}, now);
      if (!IsEnforcing(decision.verdict)) continue;
      violating.push_back({{"bundle_id", app.id}, {"rule", decision.rule_id}});
      violating_text.push_back(app.id + " (rule " + decision.rule_id + ")");
    }
    if (!violating.empty()) ++violating_devices;
    if (!device.cannot_enforce_reason.empty()) ++cannot;
    if (!device.reports_apps) ++silent;
    std::string verdict = !device.reports_apps                   ? "NO APP LIST YET"
                          : !violating.empty()                   ? "VIOLATING: " + Joined(violating_text)
                          : device.cannot_enforce_reason.empty() ? "compliant"
                                                                 : "no banned app installed";
    lines << device.mdm_id << "  " << device.platform;
    if (!device.display_name.empty()) lines << "  \"" << device.display_name << "\"";
    lines << "  " << verdict << "\n";
    if (!device.removed.empty()) lines << "  removed: " << Joined(device.removed) << "\n";
    if (!device.cannot_enforce_reason.empty()) lines << "  CANNOT ENFORCE: " << device.cannot_enforce_reason << "\n";
    Json entry = {{"device", device.mdm_id},
                  {"source", MdmSourceName(device.source)},
                  {"platform", device.platform},
                  {"name", device.display_name},
                  {"groups", device.groups},
                  {"reports_apps", device.reports_apps},
                  {"removed", device.removed},
                  {"violating", std::move(violating)},
                  {"cannot_enforce_reason", device.cannot_enforce_reason}};
    entry["last_mdm_sync"] = device.last_mdm_sync ? Json(FormatTimestamp(*device.last_mdm_sync)) : Json();
    list.push_back(std::move(entry));
  }
  std::ostringstream text;
  text << "apple connector " << config_.name << ": bundle version " << bundle.version << ", last applied "
       << state.last_applied_bundle << "\n"
       << devices.size() << " device(s), " << violating_devices << " with a banned app still installed, " << cannot
       << " the MDM cannot enforce on, " << silent << " without an app list\n"
       << lines.str();
  report.text = text.str();
  report.json = {{"connector", config_.name},        {"kind", "apple"},
                 {"bundle_version", bundle.version}, {"last_applied_bundle", state.last_applied_bundle},
                 {"devices", std::move(list)},       {"violating_devices", violating_devices},
                 {"cannot_enforce_devices", cannot}};
  return report;
}

}  // namespace appban::mdm
