// JSON helpers shared by every part that reads or hashes JSON: parsing of untrusted JSON text with
// size and depth bounds, and the canonical form that policy bundles, audit-chain entries and the
// stored rules and waivers are hashed and signed in. All functions are pure and thread-safe.
//
// Canonical form (what `CanonicalJson` produces, byte for byte; docs/policy.md):
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

namespace appban {

using Json = nlohmann::json;

Result<std::string> CanonicalJson(const Json& value);

// Parses `text` (named `what` in errors), refusing more than `max_bytes` or nesting deeper than
// `max_depth` before the recursive parser ever sees it.
Result<Json> ParseJsonBounded(std::string_view text, uint64_t max_bytes, int max_depth, std::string_view what);

}  // namespace appban
