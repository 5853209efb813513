// JSON helpers for the policy part: the canonical form that bundles and audit entries are hashed
// and signed in, RFC 3339 timestamps, and parsing of untrusted JSON text with size and depth bounds.
// All functions are pure and thread-safe.
//
// Canonical form (what `CanonicalJson` produces, byte for byte):
//   - no insignificant whitespace;
//   - object members sorted by key, comparing the UTF-8 bytes (equivalently, code points);
//   - strings as UTF-8 with only `"` `\` and control characters escaped (\b \f \n \r \t, other
//     controls as \u00XX lowercase hex); invalid UTF-8 is refused;
//   - numbers are integers only (decimal, no leading zeros, `-` for negatives); floating point is
//     refused because its textual form is not unique;
//   - true / false / null as literals.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "appban/common/status.h"

namespace appban::policy {

using Json = nlohmann::json;

Result<std::string> CanonicalJson(const Json& value);

// Parses `text` (named `what` in errors), refusing more than `max_bytes` or nesting deeper than
// `max_depth` before the recursive parser ever sees it.
Result<Json> ParseJsonBounded(std::string_view text, uint64_t max_bytes, int max_depth, std::string_view what);

// Seconds since the Unix epoch, UTC. Timestamps are written "2023-10-30T00:00:00Z".
using UnixSeconds = int64_t;
std::string FormatTimestamp(UnixSeconds at);
// Accepts "YYYY-MM-DD" (midnight UTC) and "YYYY-MM-DDTHH:MM:SSZ".
Result<UnixSeconds> ParseTimestamp(std::string_view text);

// Lowercase hex without separators; accepts upper case and ':' separators ("AB:CD:..") as
// keytool and apksigner print them. Returns an error unless the result is `hex_chars` long.
Result<std::string> NormalizeHex(std::string_view text, size_t hex_chars, std::string_view what);

}  // namespace appban::policy
