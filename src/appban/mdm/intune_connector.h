// The Intune connector: plan, apply and inventory for one configured tenant, over a GraphClient
// and the connector's state file, behind the MdmConnector interface (connector.h). What it
// changes and why is intune_plan.h; what it reads is intune_inventory.h; docs/mdm.md says which
// platform and enrolment type each mechanism reaches.
//
// State. What appban owns in the tenant (IntuneState) lives in DATA_DIR/mdm/intune-<name>.json
// (mode 0600, replaced atomically). Nothing is half-recorded: an operation's ownership is written
// as pending before it is sent and made final after Graph answers; when the answer never came
// (unreachable after every retry) the pending record stays and the next run resolves it against
// what Graph shows.
//
// Thread-safety: one thread at a time.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "appban/mdm/config.h"
#include "appban/mdm/connector.h"
#include "appban/mdm/entra_auth.h"
#include "appban/mdm/graph_client.h"
#include "appban/mdm/intune_plan.h"

namespace appban::mdm {

Result<IntuneState> LoadIntuneState(const std::string& path);  // a missing file is an empty state
Status SaveIntuneState(const std::string& path, const IntuneState& state);

struct IntuneConnectorOptions {
  std::string state_dir;  // DATA_DIR/mdm
  RetryPolicy retry;
  net::ClientOptions http;  // timeouts; TLS trust is set from the config
  int page_size = 100;
  std::function<UnixSeconds()> now = [] { return static_cast<UnixSeconds>(std::time(nullptr)); };
};

class IntuneConnector : public MdmConnector {
 public:
  // Reads the credentials (refusing secret files others may read) and, when ca_file is set, the
  // pinned CA. Makes no request yet.
  static Result<std::unique_ptr<IntuneConnector>> Create(IntuneConnectorConfig config, IntuneConnectorOptions options);
  ~IntuneConnector() override;

  MdmSource source() const override { return MdmSource::kIntune; }
  std::string_view name() const override { return config_.name; }
  Result<ConnectorReport> Plan(const policy::Bundle& bundle) override;
  Result<ConnectorReport> Apply(const policy::Bundle& bundle) override;
  Result<std::vector<MdmDevice>> Inventory(const policy::Bundle& bundle) override;
  // The inventory evaluated against the bundle: which devices still have a banned app.
  Result<ConnectorReport> Survey(const policy::Bundle& bundle);

  const std::string& state_path() const { return state_path_; }
  GraphClient& client() { return *client_; }

 private:
  IntuneConnector(IntuneConnectorConfig config, IntuneConnectorOptions options);
  struct Planned {
    IntunePlan plan;
    IntuneState loaded;
  };
  Result<Planned> ReadAndPlan(const policy::Bundle& bundle);
  Result<std::vector<CatalogApp>> Catalogue();

  IntuneConnectorConfig config_;
  IntuneConnectorOptions options_;
  std::string state_path_;
  std::unique_ptr<AccessTokenSource> tokens_;
  std::unique_ptr<GraphClient> client_;
};

}  // namespace appban::mdm
