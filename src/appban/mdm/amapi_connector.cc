#include "appban/mdm/amapi_connector.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <utility>

#include "appban/common/file.h"
#include "appban/common/time.h"
#include "appban/mdm/credential_file.h"
#include "appban/mdm/limits.h"

namespace appban::mdm {
namespace {

constexpr std::string_view kStateFormat = "appban.mdm-amapi-state/1";

Json OwnedToJson(const OwnedEntries& owned) {
  Json out = Json::object();
  for (const auto& [package, previous] : owned) out[package] = previous;
  return out;
}

Result<OwnedEntries> OwnedFromJson(const Json& json, std::string_view what) {
  if (!json.is_object()) return Status::Corruption(std::string(what) + " is not an object");
  OwnedEntries owned;
  for (const auto& [package, previous] : json.items()) {
    if (!previous.is_null() && !previous.is_object()) {
      return Status::Corruption(std::string(what) + "." + package + " is neither null nor an entry");
    }
    owned.emplace(package, previous);
  }
  return owned;
}

Json StringsToJson(const std::vector<std::string>& values) { return Json(values); }

Json UnenforceableToJson(const std::vector<Unenforceable>& list) {
  Json out = Json::array();
  for (const auto& item : list)
    out.push_back({{"rule", item.rule_id}, {"target", item.target}, {"reason", item.reason}});
  return out;
}

void UnenforceableText(std::ostringstream& out, const std::vector<Unenforceable>& list) {
  for (const auto& item : list) {
    out << "  not enforceable by AMAPI: " << item.target << " (rule " << item.rule_id << "): " << item.reason << "\n";
  }
}

std::string Joined(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& value : values) out += (out.empty() ? "" : ", ") + value;
  return out;
}

// An exclusive flock on DATA_DIR/mdm/amapi-NAME.json.lock for one Apply: the server's sync loop
// and `appban mdm apply` may run at once, and each reads, changes and rewrites the state file.
class StateLock {
 public:
  static Result<StateLock> Take(const std::string& state_path) {
    const std::string path = state_path + ".lock";
    int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return Status::Unavailable("cannot open " + path + ": " + std::strerror(errno));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return Status::Unavailable("cannot lock " + path + ": " + std::strerror(error));
    }
    return StateLock(fd);
  }
  StateLock(StateLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  StateLock& operator=(StateLock&&) = delete;
  ~StateLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  explicit StateLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

Json ConnectorStateToJson(const ConnectorState& state) {
  Json policies = Json::object();
  for (const auto& [name, ownership] : state.policies) {
    Json entry = {{"owned", OwnedToJson(ownership.owned)}};
    if (ownership.pending) entry["pending"] = OwnedToJson(*ownership.pending);
    if (ownership.patched_at != 0) entry["patched_at"] = ownership.patched_at;
    policies[name] = std::move(entry);
  }
  return Json{{"format", kStateFormat},
              {"policies", std::move(policies)},
              {"last_applied_bundle", state.last_applied_bundle},
              {"last_applied_at", state.last_applied_at}};
}

Result<ConnectorState> ConnectorStateFromJson(const Json& json) {
  if (!json.is_object() || StringOr(json, "format") != kStateFormat) {
    return Status::Corruption("not an " + std::string(kStateFormat) + " document");
  }
  ConnectorState state;
  auto policies = json.find("policies");
  if (policies == json.end() || !policies->is_object()) return Status::Corruption("policies is not an object");
  for (const auto& [name, entry] : policies->items()) {
    if (!entry.is_object() || !entry.contains("owned")) return Status::Corruption("policies." + name + " is malformed");
    PolicyOwnership ownership;
    APPBAN_ASSIGN_OR_RETURN(ownership.owned, OwnedFromJson(entry["owned"], "policies." + name + ".owned"));
    if (auto pending = entry.find("pending"); pending != entry.end()) {
      APPBAN_ASSIGN_OR_RETURN(ownership.pending, OwnedFromJson(*pending, "policies." + name + ".pending"));
    }
    if (auto patched = entry.find("patched_at"); patched != entry.end()) {
      if (!patched->is_number_integer()) return Status::Corruption("policies." + name + ".patched_at is not a time");
      ownership.patched_at = patched->get<int64_t>();
    }
    state.policies.emplace(name, std::move(ownership));
  }
  auto version = json.find("last_applied_bundle");
  auto at = json.find("last_applied_at");
  if (version == json.end() || !version->is_number_integer() || at == json.end() || !at->is_number_integer()) {
    return Status::Corruption("last_applied_bundle/last_applied_at missing");
  }
  state.last_applied_bundle = version->get<int64_t>();
  state.last_applied_at = at->get<int64_t>();
  return state;
}

Result<ConnectorState> LoadConnectorState(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 && errno == ENOENT) return ConnectorState{};
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMdmLimits.max_state_file_bytes));
  APPBAN_ASSIGN_OR_RETURN(Json json,
                          ParseJsonBounded(text, kMdmLimits.max_state_file_bytes, kMdmLimits.max_json_depth, path));
  Result<ConnectorState> state = ConnectorStateFromJson(json);
  if (!state.ok()) return Status::Corruption(path + ": " + state.status().message());
  return state;
}

Status SaveConnectorState(const std::string& path, const ConnectorState& state) {
  return WriteFileAtomically(path, ConnectorStateToJson(state).dump(1) + "\n", 0600);
}

OwnedEntries ResolveOwnership(const PolicyOwnership& recorded, const Json& current_policy) {
  OwnedEntries owned = recorded.owned;
  if (!recorded.pending) return owned;
  auto applications = current_policy.find("applications");
  if (applications == current_policy.end() || !applications->is_array()) return owned;
  for (const auto& [package, previous] : *recorded.pending) {
    if (owned.count(package)) continue;
    for (const Json& entry : *applications) {
      if (entry == Json{{"packageName", package}, {"installType", "BLOCKED"}}) {
        owned.emplace(package, previous);
        break;
      }
    }
  }
  return owned;
}

bool PlanReport::Empty() const {
  for (const auto& plan : policies) {
    if (!plan.error.empty() || plan.change.NeedsPatch() || !plan.change.released.empty()) return false;
  }
  return true;
}

Json PlanReport::ToJson() const {
  Json list = Json::array();
  for (const auto& plan : policies) {
    const PolicyChange& c = plan.change;
    Json item = {{"policy", c.policy}};
    if (!plan.error.empty()) {
      item["error"] = plan.error;
    } else {
      item["version"] = c.policy_version;
      item["block"] = StringsToJson(c.block);
      item["unblock"] = StringsToJson(c.unblock);
      item["release"] = StringsToJson(c.released);
      item["already_blocked"] = StringsToJson(c.already_blocked);
      item["waived"] = StringsToJson(c.waived);
      item["enable_application_reports"] = c.enable_application_reports;
      item["update_mask"] = c.update_mask;
    }
    list.push_back(std::move(item));
  }
  return Json{{"connector", connector},
              {"bundle_version", bundle_version},
              {"policies", std::move(list)},
              {"unenforceable", UnenforceableToJson(unenforceable)},
              {"changes", !Empty()}};
}

std::string PlanReport::ToText() const {
  std::ostringstream out;
  out << "amapi connector " << connector << ", bundle version " << bundle_version << "\n";
  for (const auto& plan : policies) {
    const PolicyChange& c = plan.change;
    out << c.policy;
    if (!plan.error.empty()) {
      out << ": cannot plan: " << plan.error << "\n";
      continue;
    }
    out << " (version " << (c.policy_version.empty() ? "?" : c.policy_version) << ")";
    if (!c.NeedsPatch() && c.released.empty()) out << ": no change";
    out << "\n";
    for (const auto& p : c.block) out << "  + applications[] {packageName: " << p << ", installType: BLOCKED}\n";
    for (const auto& p : c.unblock) out << "  - applications[] " << p << " (appban's entry; ban lifted)\n";
    for (const auto& p : c.released) out << "  ~ " << p << ": entry changed by someone else, no longer appban's\n";
    if (c.enable_application_reports) out << "  ~ statusReportingSettings.applicationReportsEnabled: true\n";
    for (const auto& p : c.already_blocked) out << "  = " << p << " already BLOCKED by an administrator\n";
    for (const auto& p : c.waived) out << "  = " << p << " waived for this policy's groups: not blocked\n";
    if (c.NeedsPatch()) out << "  patch with updateMask=" << c.update_mask << "\n";
  }
  UnenforceableText(out, unenforceable);
  out << (Empty() ? "plan: nothing to change\n" : "plan: changes pending (run `appban mdm apply`)\n");
  return out.str();
}

bool ApplyReport::Failed() const {
  for (const auto& outcome : policies) {
    if (outcome.result == "failed") return true;
  }
  return false;
}

Json ApplyReport::ToJson() const {
  Json list = Json::array();
  for (const auto& o : policies) {
    Json item = {{"policy", o.policy}, {"result", o.result}};
    if (!o.version.empty()) item["version"] = o.version;
    if (!o.blocked.empty()) item["blocked"] = StringsToJson(o.blocked);
    if (!o.unblocked.empty()) item["unblocked"] = StringsToJson(o.unblocked);
    if (!o.released.empty()) item["released"] = StringsToJson(o.released);
    if (!o.error.empty()) item["error"] = o.error;
    list.push_back(std::move(item));
  }
  return Json{{"connector", connector},      {"bundle_version", bundle_version},
              {"policies", std::move(list)}, {"unenforceable", UnenforceableToJson(unenforceable)},
              {"retries", retries},          {"ok", !Failed()}};
}

std::string ApplyReport::ToText() const {
  std::ostringstream out;
  out << "amapi connector " << connector << ", bundle version " << bundle_version << "\n";
  for (const auto& o : policies) {
    out << o.policy << ": " << o.result;
    if (!o.version.empty()) out << " (version " << o.version << ")";
    if (!o.error.empty()) out << ": " << o.error;
    out << "\n";
    if (!o.blocked.empty()) out << "  blocked   " << Joined(o.blocked) << "\n";
    if (!o.unblocked.empty()) out << "  unblocked " << Joined(o.unblocked) << "\n";
    if (!o.released.empty()) out << "  released  " << Joined(o.released) << "\n";
  }
  UnenforceableText(out, unenforceable);
  if (retries > 0) out << retries << " request(s) retried after throttling or unavailability\n";
  out << (Failed() ? "apply: FAILED for some policies (run again; nothing was half-recorded)\n" : "apply: done\n");
  return out.str();
}

Json StatusReport::ToJson() const {
  Json list = Json::array();
  size_t violating = 0;
  for (const auto& d : devices) {
    Json v = Json::array();
    for (const auto& [package, rule] : d.violating) v.push_back({{"package", package}, {"rule", rule}});
    if (!d.violating.empty()) ++violating;
    list.push_back({{"device", d.device.name},
                    {"platform", "android"},
                    {"source", "amapi"},
                    {"policy", d.device.policy_name},
                    {"managed", d.managed},
                    {"applied_policy_version", d.device.applied_policy_version},
                    {"policy_compliant", d.device.policy_compliant},
                    {"reports_apps", d.device.reports_apps},
                    {"violating", std::move(v)}});
  }
  return Json{{"connector", connector},
              {"bundle_version", bundle_version},
              {"last_applied_bundle", last_applied_bundle},
              {"devices", std::move(list)},
              {"violating_devices", violating}};
}

std::string StatusReport::ToText() const {
  std::ostringstream out;
  size_t violating = 0, silent = 0;
  for (const auto& d : devices) {
    if (!d.violating.empty()) ++violating;
    if (!d.device.reports_apps) ++silent;
  }
  out << "amapi connector " << connector << ": bundle version " << bundle_version << ", last applied "
      << last_applied_bundle << "\n"
      << devices.size() << " device(s), " << violating << " with a banned app still installed, " << silent
      << " not reporting apps\n";
  for (const auto& d : devices) {
    out << d.device.name << "  policy " << d.device.policy_name << (d.managed ? "" : " (not managed by appban)")
        << "  applied version " << (d.device.applied_policy_version.empty() ? "?" : d.device.applied_policy_version);
    if (!d.device.reports_apps) {
      out << "  NO APP REPORTS\n";
      continue;
    }
    if (d.violating.empty()) {
      out << "  compliant\n";
      continue;
    }
    out << "  VIOLATING:";
    for (const auto& [package, rule] : d.violating) out << " " << package << " (rule " << rule << ")";
    out << "\n";
  }
  return out.str();
}

Result<std::unique_ptr<AmapiConnector>> AmapiConnector::Create(AmapiConnectorConfig config, ConnectorOptions options) {
  APPBAN_ASSIGN_OR_RETURN(ServiceAccountKey key, LoadServiceAccountKey(config.service_account_key_file));
  net::ClientOptions http = options.http;
  if (!config.ca_file.empty()) {
    APPBAN_ASSIGN_OR_RETURN(http.pinned_ca_pem, ReadFileToString(config.ca_file, 1 << 20));
  } else {
    http.trust_system_roots = true;
  }
  std::unique_ptr<AmapiConnector> connector(new AmapiConnector(std::move(config), std::move(options)));
  TokenSourceOptions token_options;
  token_options.http = http;
  token_options.retry = connector->options_.retry;
  token_options.now = connector->options_.now;
  APPBAN_ASSIGN_OR_RETURN(connector->tokens_, AccessTokenSource::Create(std::move(key), std::move(token_options)));
  AmapiClientOptions client_options;
  client_options.base_url = connector->config_.base_url;
  client_options.http = http;
  client_options.retry = connector->options_.retry;
  APPBAN_ASSIGN_OR_RETURN(connector->client_, AmapiClient::Create(std::move(client_options), connector->tokens_.get()));
  return connector;
}

AmapiConnector::AmapiConnector(AmapiConnectorConfig config, ConnectorOptions options)
    : config_(std::move(config)), options_(std::move(options)) {
  state_path_ = options_.state_dir + "/amapi-" + config_.name + ".json";
}

AmapiConnector::~AmapiConnector() = default;

Result<AmapiConnector::Prepared> AmapiConnector::Prepare(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(ConnectorState state, LoadConnectorState(state_path_));
  APPBAN_ASSIGN_OR_RETURN(policy::PolicyIndex index, policy::PolicyIndex::Build(bundle));
  return Prepared{std::move(state), std::move(index), CollectBannedPackages(bundle), options_.now()};
}

Result<PolicyChange> AmapiConnector::ReadAndPlan(const Prepared& prepared, const ManagedPolicy& managed,
                                                 OwnedEntries* resolved) {
  APPBAN_ASSIGN_OR_RETURN(Json current, client_->GetPolicy(managed.name));
  auto recorded = prepared.state.policies.find(managed.name);
  OwnedEntries owned =
      recorded == prepared.state.policies.end() ? OwnedEntries{} : ResolveOwnership(recorded->second, current);
  Result<PolicyChange> change = PlanPolicy(prepared.index, prepared.banned, managed, current, owned, prepared.now);
  if (resolved) *resolved = std::move(owned);
  return change;
}

Result<PlanReport> AmapiConnector::Plan(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(Prepared prepared, Prepare(bundle));
  PlanReport report;
  report.connector = config_.name;
  report.bundle_version = bundle.version;
  report.unenforceable = prepared.banned.unenforceable;
  for (const ManagedPolicy& managed : config_.policies) {
    PolicyPlan plan;
    plan.change.policy = managed.name;
    Result<PolicyChange> change = ReadAndPlan(prepared, managed, nullptr);
    if (change.ok()) {
      plan.change = std::move(*change);
    } else {
      plan.error = change.status().ToString();
    }
    report.policies.push_back(std::move(plan));
  }
  return report;
}

Result<ApplyReport> AmapiConnector::Apply(const policy::Bundle& bundle) {
  APPBAN_RETURN_IF_ERROR(EnsurePrivateDirectory(options_.state_dir));
  APPBAN_ASSIGN_OR_RETURN(StateLock lock, StateLock::Take(state_path_));
  APPBAN_ASSIGN_OR_RETURN(Prepared prepared, Prepare(bundle));
  ConnectorState& state = prepared.state;
  ApplyReport report;
  report.connector = config_.name;
  report.bundle_version = bundle.version;
  report.unenforceable = prepared.banned.unenforceable;
  const int retries_before = client_->retries();
  for (const ManagedPolicy& managed : config_.policies) {
    PolicyOutcome outcome;
    outcome.policy = managed.name;
    auto fail = [&](const appban::Status& status) {
      outcome.result = "failed";
      outcome.error = status.ToString();
      report.policies.push_back(outcome);
    };
    OwnedEntries owned;
    Result<PolicyChange> change = ReadAndPlan(prepared, managed, &owned);
    PolicyOwnership& recorded = state.policies[managed.name];
    if (!change.ok()) {
      fail(change.status());
      continue;
    }
    outcome.version = change->policy_version;
    outcome.released = change->released;
    if (!change->NeedsPatch()) {
      const bool record = change->ChangesState(recorded.owned) || recorded.pending.has_value();
      outcome.result = record ? "recorded" : "unchanged";
      if (record) {
        recorded.owned = change->owned_after;
        recorded.pending.reset();
        if (Status saved = SaveConnectorState(state_path_, state); !saved.ok()) {
          fail(saved);
          continue;
        }
      }
      report.policies.push_back(outcome);
      continue;
    }
    // Write-ahead: the ownership this patch creates, before the patch is sent.
    recorded.owned = owned;
    recorded.pending = change->owned_after;
    if (Status saved = SaveConnectorState(state_path_, state); !saved.ok()) {
      fail(saved);
      continue;
    }
    Result<Json> stored = client_->PatchPolicy(managed.name, change->patch_body, change->update_mask);
    if (!stored.ok()) {
      // Refused outright (400, 403, 404): nothing changed, the pending record goes. Unreachable after
      // every retry: the patch may or may not have landed; the pending record stays for the next run.
      if (stored.status().code() != StatusCode::kUnavailable) recorded.pending.reset();
      Status saved = SaveConnectorState(state_path_, state);
      fail(saved.ok() ? stored.status() : saved);
      continue;
    }
    recorded.owned = change->owned_after;
    recorded.pending.reset();
    recorded.patched_at = prepared.now;
    if (Status saved = SaveConnectorState(state_path_, state); !saved.ok()) {
      fail(saved);
      continue;
    }
    outcome.result = "patched";
    outcome.blocked = change->block;
    outcome.unblocked = change->unblock;
    if (auto version = stored->find("version"); version != stored->end() && version->is_string()) {
      outcome.version = version->get<std::string>();
    }
    report.policies.push_back(outcome);
  }
  report.retries = client_->retries() - retries_before;
  if (!report.Failed()) {
    state.last_applied_bundle = bundle.version;
    state.last_applied_at = prepared.now;
    APPBAN_RETURN_IF_ERROR(SaveConnectorState(state_path_, state));
  }
  return report;
}

Result<StatusReport> AmapiConnector::Survey(const policy::Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(ConnectorState state, LoadConnectorState(state_path_));
  APPBAN_ASSIGN_OR_RETURN(policy::PolicyIndex index, policy::PolicyIndex::Build(bundle));
  APPBAN_ASSIGN_OR_RETURN(std::vector<Json> devices, client_->ListDevices(config_.enterprise));
  StatusReport report;
  report.connector = config_.name;
  report.bundle_version = bundle.version;
  report.last_applied_bundle = state.last_applied_bundle;
  const UnixSeconds now = options_.now();
  for (const Json& json : devices) {
    APPBAN_ASSIGN_OR_RETURN(AmapiDevice device, ParseAmapiDevice(json));
    DeviceStatus status;
    policy::DeviceContext context{device.name, {}};
    for (const ManagedPolicy& managed : config_.policies) {
      if (managed.name == device.policy_name) {
        status.managed = true;
        context.groups = managed.groups;
      }
    }
    for (const policy::InstalledApp& app : device.installed) {
      policy::AppDecision decision = index.Evaluate(app, context, now);
      if (decision.verdict == policy::Verdict::kRemove || decision.verdict == policy::Verdict::kBlockInstall) {
        status.violating.emplace_back(app.id, decision.rule_id);
      }
    }
    status.device = std::move(device);
    report.devices.push_back(std::move(status));
  }
  return report;
}

Status AmapiConnector::DevicePages(const std::function<Status(std::vector<MdmDevice>)>& visit) {
  APPBAN_ASSIGN_OR_RETURN(ConnectorState state, LoadConnectorState(state_path_));
  return client_->ForEachDevicePage(config_.enterprise, kDevicePageSize, [&](std::vector<Json> page) {
    std::vector<MdmDevice> devices;
    devices.reserve(page.size());
    for (const Json& json : page) {
      APPBAN_ASSIGN_OR_RETURN(AmapiDevice parsed, ParseAmapiDevice(json));
      MdmDevice device;
      device.source = MdmSource::kAmapi;
      device.connector = config_.name;
      device.mdm_id = parsed.name;
      device.platform = "android";
      device.display_name = parsed.name.substr(parsed.name.rfind('/') + 1);
      const ManagedPolicy* managed = nullptr;
      for (const ManagedPolicy& candidate : config_.policies) {
        if (candidate.name == parsed.policy_name) managed = &candidate;
      }
      if (managed != nullptr) {
        device.groups = managed->groups;
        if (auto it = state.policies.find(managed->name); it != state.policies.end() && it->second.patched_at != 0) {
          device.pushed_at = it->second.patched_at;
        }
      } else {
        device.cannot_enforce_reason = "on policy " + (parsed.policy_name.empty() ? "(none)" : parsed.policy_name) +
                                       ", which appban does not manage";
      }
      device.reports_apps = parsed.reports_apps;
      if (!parsed.reports_apps && device.cannot_enforce_reason.empty()) {
        device.cannot_enforce_reason = "no application reports (statusReportingSettings.applicationReportsEnabled)";
      }
      device.installed = std::move(parsed.installed);
      device.removed = std::move(parsed.removed);
      device.last_mdm_sync = parsed.last_policy_sync;
      device.mdm_compliant = parsed.policy_compliant;
      devices.push_back(std::move(device));
    }
    return visit(std::move(devices));
  });
}

}  // namespace appban::mdm
