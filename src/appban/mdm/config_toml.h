// Reading the `[mdm]` part of the server's TOML file into an MdmConfig (config.h).
#pragma once

#include <string>

#include "appban/common/status.h"
#include "appban/common/toml.h"
#include "appban/mdm/config.h"

namespace appban::mdm {

// Parses the value of the top-level `mdm` key into `out`. Errors: "server.toml:12: mdm.amapi[0].
// enterprise: …".
Status ParseMdmSection(const TomlField& field, const std::string& source, MdmConfig& out);

}  // namespace appban::mdm
