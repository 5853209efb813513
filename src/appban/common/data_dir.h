// Where appban's shipped data (tracker signatures, capability map, vendors, risk model, catalog of
// bans) lives. Resolution order, first existing wins:
//   1. an explicit --data-dir flag (passed in as `override_dir`)
//   2. $APPBAN_DATA_DIR
//   3. <directory of the running binary>/../share/appban   (an installed layout)
//   4. the source tree's data/ this binary was built from  (a build tree)
#pragma once

#include <string>

#include "appban/common/status.h"

namespace appban {

Result<std::string> ResolveDataDir(const std::string& override_dir = "");

}  // namespace appban
