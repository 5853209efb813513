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

// Type-safe member reads for JSON that came from outside (a peer's answer, a webhook, a file a person
// may have edited): the member `key` of `json` when `json` is an object holding it with the right
// type, otherwise `fallback`. Unlike `Json::value`, these never throw when the member has another
// type, so a hostile document cannot turn into an exception.
std::string StringOr(const Json& json, std::string_view key, std::string_view fallback = {});
int64_t IntOr(const Json& json, std::string_view key, int64_t fallback = 0);

}  // namespace appban
