// Every configured MDM connector behind the one MdmConnector interface (connector.h), built from
// the server's [mdm] configuration: what the server's sync loop and `appban mdm` iterate over
// without knowing each kind. The AMAPI connector is adapted here; the Intune and Apple MDM connectors
// are MdmConnectors themselves; others plug in by adding their construction to CreateConnectors.
// Thread-safety: a connector object is used by one thread at a time (the sync loop gives each
// its own thread).
#pragma once

#include <memory>
#include <vector>

#include "appban/common/status.h"
#include "appban/mdm/amapi_connector.h"
#include "appban/mdm/config.h"
#include "appban/mdm/connector.h"

namespace appban::mdm {

// MdmConnector over an AmapiConnector: Plan/Apply render the AMAPI reports, Apply lists every
// policy patched (or failed) as an MdmPush, InventoryPages pages enterprises.devices.list.
class AmapiMdmConnector final : public MdmConnector {
 public:
  explicit AmapiMdmConnector(std::unique_ptr<AmapiConnector> connector) : connector_(std::move(connector)) {}

  MdmSource source() const override { return MdmSource::kAmapi; }
  std::string_view name() const override { return connector_->config().name; }
  Result<ConnectorReport> Plan(const policy::Bundle& bundle) override;
  Result<ConnectorReport> Apply(const policy::Bundle& bundle) override;
  Result<std::vector<MdmDevice>> Inventory(const policy::Bundle& bundle) override;
  Status InventoryPages(const policy::Bundle& bundle,
                        const std::function<Status(std::vector<MdmDevice>)>& visit) override;

  AmapiConnector& amapi() { return *connector_; }

 private:
  std::unique_ptr<AmapiConnector> connector_;
};

// One connector per configured [[mdm.amapi]], then [[mdm.intune]], then [[mdm.apple]], in configuration order. Fails on
// the first that cannot be built (unreadable key file, bad CA).
Result<std::vector<std::unique_ptr<MdmConnector>>> CreateConnectors(const MdmConfig& config,
                                                                    const ConnectorOptions& options);

}  // namespace appban::mdm
