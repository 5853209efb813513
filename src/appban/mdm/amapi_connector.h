// The AMAPI connector: plan, apply and status for one configured enterprise, over an AmapiClient
// and the connector's state file. `appban mdm …` drives it; the server's sync loop will too.
//
// State. Which applications[] entries appban owns in each policy (amapi_plan.h) lives in
// DATA_DIR/mdm/amapi-<name>.json (mode 0600, replaced atomically). Nothing is half-recorded:
// before a policy is patched, the ownership it will have is written as "pending"; after the patch
// is stored, it becomes the policy's ownership and the pending record goes. When the patch's fate
// is unknown (the service was unreachable after every retry) the pending record stays, and the next
// run resolves it against the live policy: a pending entry that is there, exactly as appban writes
// it, is appban's; one that is not was never written.
//
// Thread-safety: one thread at a time.
#pragma once

#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/mdm/amapi_client.h"
#include "appban/mdm/amapi_inventory.h"
#include "appban/mdm/amapi_plan.h"
#include "appban/mdm/config.h"
#include "appban/mdm/mdm_device.h"
#include "appban/policy/bundle.h"

namespace appban::mdm {

struct PolicyOwnership {
  OwnedEntries owned;
  std::optional<OwnedEntries> pending;  // written before a patch, cleared after it
  UnixSeconds patched_at = 0;           // when appban last patched the policy (0: never)
};

struct ConnectorState {
  std::map<std::string, PolicyOwnership, std::less<>> policies;
  int64_t last_applied_bundle = 0;
  UnixSeconds last_applied_at = 0;
};

Result<ConnectorState> LoadConnectorState(const std::string& path);  // a missing file is an empty state
Status SaveConnectorState(const std::string& path, const ConnectorState& state);
Json ConnectorStateToJson(const ConnectorState& state);
Result<ConnectorState> ConnectorStateFromJson(const Json& json);

// Committed ownership plus the pending entries the live policy shows were written.
OwnedEntries ResolveOwnership(const PolicyOwnership& recorded, const Json& current_policy);

struct PolicyPlan {
  PolicyChange change;
  std::string error;  // the policy could not be read or planned; change is empty then
};

struct PlanReport {
  std::string connector;
  int64_t bundle_version = 0;
  std::vector<PolicyPlan> policies;
  std::vector<Unenforceable> unenforceable;

  bool Empty() const;  // nothing to patch and no ownership to record
  Json ToJson() const;
  std::string ToText() const;
};

struct PolicyOutcome {
  std::string policy;
  std::string result;   // "patched", "unchanged", "recorded" (ownership only), "failed"
  std::string version;  // Policy.version after the patch
  std::vector<std::string> blocked, unblocked, released;
  std::string error;
};

struct ApplyReport {
  std::string connector;
  int64_t bundle_version = 0;
  std::vector<PolicyOutcome> policies;
  std::vector<Unenforceable> unenforceable;
  int retries = 0;  // requests retried after 429/5xx

  bool Failed() const;
  Json ToJson() const;
  std::string ToText() const;
};

struct DeviceStatus {
  AmapiDevice device;
  bool managed = false;                                        // on one of the connector's policies
  std::vector<std::pair<std::string, std::string>> violating;  // package, rule still installed
};

struct StatusReport {
  std::string connector;
  int64_t bundle_version = 0;
  int64_t last_applied_bundle = 0;
  std::vector<DeviceStatus> devices;
  Json ToJson() const;
  std::string ToText() const;
};

struct ConnectorOptions {
  std::string state_dir;  // DATA_DIR/mdm
  RetryPolicy retry;
  net::ClientOptions http;  // timeouts; TLS trust is set from the config
  std::function<UnixSeconds()> now = [] { return static_cast<UnixSeconds>(std::time(nullptr)); };
};

class AmapiConnector {
 public:
  // Reads the service-account key (refusing a file others may read) and, when ca_file is set,
  // the pinned CA. Makes no request yet.
  static Result<std::unique_ptr<AmapiConnector>> Create(AmapiConnectorConfig config, ConnectorOptions options);
  ~AmapiConnector();

  // Reads every managed policy and computes its change. Touches nothing, remote or local.
  Result<PlanReport> Plan(const policy::Bundle& bundle);
  // Plans and patches each policy that needs it, recording ownership as described above. One
  // policy's failure does not stop the others; it is reported (ApplyReport::Failed()).
  Result<ApplyReport> Apply(const policy::Bundle& bundle);
  // Lists the enterprise's devices and evaluates their reported apps against the bundle.
  Result<StatusReport> Survey(const policy::Bundle& bundle);
  // The enterprise's devices a page at a time, as MdmDevices for the fleet import: a device on a
  // policy the connector does not manage, or without application reports, carries a
  // cannot_enforce_reason; pushed_at is when appban last patched its policy.
  Status DevicePages(const std::function<Status(std::vector<MdmDevice>)>& visit);
  const AmapiConnectorConfig& config() const { return config_; }

  const std::string& state_path() const { return state_path_; }
  AmapiClient& client() { return *client_; }

 private:
  // What one run works from: the recorded state, the bundle's index and banned packages, the time.
  struct Prepared {
    ConnectorState state;
    policy::PolicyIndex index;
    BannedPackages banned;
    UnixSeconds now;
  };

  AmapiConnector(AmapiConnectorConfig config, ConnectorOptions options);
  Result<Prepared> Prepare(const policy::Bundle& bundle);
  // Reads the policy and plans it; `resolved` (optional) receives the ownership planned from.
  Result<PolicyChange> ReadAndPlan(const Prepared& prepared, const ManagedPolicy& managed, OwnedEntries* resolved);

  AmapiConnectorConfig config_;
  ConnectorOptions options_;
  std::string state_path_;
  std::unique_ptr<AccessTokenSource> tokens_;
  std::unique_ptr<AmapiClient> client_;
};

}  // namespace appban::mdm
