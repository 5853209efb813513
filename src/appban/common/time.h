// Timestamps as appban stores and exchanges them: seconds since the Unix epoch (UTC), written as
// RFC 3339 "2023-10-30T00:00:00Z" in bundles, rules, waivers, audit entries and reports. Pure and
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "appban/common/status.h"

namespace appban {

// Seconds since the Unix epoch, UTC. Timestamps are written "2023-10-30T00:00:00Z".
using UnixSeconds = int64_t;
std::string FormatTimestamp(UnixSeconds at);
// Accepts "YYYY-MM-DD" (midnight UTC) and "YYYY-MM-DDTHH:MM:SSZ".
Result<UnixSeconds> ParseTimestamp(std::string_view text);

}  // namespace appban
