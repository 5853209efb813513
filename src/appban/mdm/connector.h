// What the server's sync loop and `appban mdm plan|apply|status` need from any MDM connector
// (AMAPI, Intune, Apple MDM), so both drive every kind the same way. Each connector keeps its own
// typed reports; it renders them into ConnectorReport for the callers that do not know its kind.
// Thread-safety: one thread at a time per connector object.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/mdm/mdm_device.h"
#include "appban/policy/bundle.h"

namespace appban::mdm {

struct ConnectorReport {
  Json json;            // the connector's own report, as `--json` and the API show it
  std::string text;     // the same for a person
  bool failed = false;  // some MDM object could not be read or changed (it is named in the report)
  bool empty = false;   // Plan: nothing would change. Apply: nothing was changed
};

class MdmConnector {
 public:
  virtual ~MdmConnector() = default;
  virtual MdmSource source() const = 0;
  virtual std::string_view name() const = 0;

  // What Apply would change, as a diff; touches nothing, remote or local.
  virtual Result<ConnectorReport> Plan(const policy::Bundle& bundle) = 0;
  // Turns the bundle into the MDM's enforcement. Idempotent: a Plan right after is empty. One
  // object's failure does not stop the others; it is reported (failed), not returned as an error.
  virtual Result<ConnectorReport> Apply(const policy::Bundle& bundle) = 0;
  // The MDM's devices and their apps, for the fleet import and compliance.
  virtual Result<std::vector<MdmDevice>> Inventory(const policy::Bundle& bundle) = 0;
};

}  // namespace appban::mdm
