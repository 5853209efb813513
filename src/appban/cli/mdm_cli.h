// What the `appban mdm` commands share: mdm_command.cc (plan|apply|status over every connector)
// and mdm_apple_command.cc (the Apple MDM connector and its extra commands).
#pragma once

#include <string>
#include <string_view>

#include "appban/cli/commands.h"
#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/decide/admin.h"
#include "appban/mdm/config.h"
#include "appban/policy/bundle.h"
#include "appban/store/store.h"

namespace appban::cli {

// The latest bundle the server issued, verified against every public key in DATA_DIR/keys — the
// connectors enforce exactly what devices are served, checked the way the server checks it.
Result<policy::Bundle> LatestPublishedBundle(store::Store& store, const std::string& data_dir);

// One [[mdm.apple]] connector for `appban mdm plan|apply|status` (`verb`): prints its report, or
// appends it to `reports` with --json; audits every device an apply queued commands for. Returns
// the exit code (0, or 1 when the connector or a device failed).
int RunAppleConnector(std::string_view verb, const mdm::AppleConnectorConfig& config, const policy::Bundle& bundle,
                      const std::string& data_dir, decide::PolicyAdmin& admin, bool json, Json& reports);

// `appban mdm apple-profile` and `appban mdm apple-webhook`.
void AddMdmAppleCommands(CLI::App* mdm, CommandAction* action);

}  // namespace appban::cli
