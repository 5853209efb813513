// What the server's sync loop and `appban mdm plan|apply|status` need from any MDM connector
// (AMAPI, Intune, Apple MDM), so both drive every kind the same way. Each connector keeps its own
// typed reports; it renders them into ConnectorReport for the callers that do not know its kind.
// Thread-safety: one thread at a time per connector object.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/mdm/mdm_device.h"
#include "appban/policy/bundle.h"

namespace appban::mdm {

// One change Apply made (or failed to make) to one MDM object, for the audit chain: `action`
// ("mdm.amapi.apply") on `object` ("amapi:enterprises/E/policies/P"), `what` says what changed
// and by which bundle version.
struct MdmPush {
  std::string action;
  std::string object;
  Json what;
};

struct ConnectorReport {
  Json json;                    // the connector's own report, as `--json` and the API show it
  std::string text;             // the same for a person
  bool failed = false;          // some MDM object could not be read or changed (it is named in the report)
  bool empty = false;           // Plan: nothing would change. Apply: nothing was changed
  std::vector<MdmPush> pushes;  // Apply: every object patched or failed, to be audited
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
  // The same a page at a time, in the MDM's order, so a fleet of 100,000 phones is never held at
  // once (the fleet import writes each page as it comes). An error `visit` returns stops the
  // listing and is returned. The default hands Inventory's whole list over as one page.
  virtual Status InventoryPages(const policy::Bundle& bundle,
                                const std::function<Status(std::vector<MdmDevice>)>& visit) {
    APPBAN_ASSIGN_OR_RETURN(std::vector<MdmDevice> devices, Inventory(bundle));
    return visit(std::move(devices));
  }
};

}  // namespace appban::mdm
