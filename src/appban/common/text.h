// Text helpers for rendering untrusted strings (package names, DEX strings, certificate names)
// into reports: JSON that never throws on invalid UTF-8, HTML escaping, terminal-safe text; and the
// ASCII comparisons and hex normalisation that protocols and file formats need. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "appban/common/status.h"

namespace appban {

// Replaces every invalid UTF-8 sequence with U+FFFD.
std::string SanitizeUtf8(std::string_view text);
// True when `text` is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool IsValidUtf8(std::string_view text);
// SanitizeUtf8 plus escaping of & < > " ' for HTML text and attribute values.
std::string HtmlEscape(std::string_view text);
// SanitizeUtf8 plus replacement of control characters (ESC and friends) with '?', so hostile
// strings cannot move the cursor or recolour a terminal.
std::string TerminalSafe(std::string_view text);
// "0x1f4" — offsets and sizes in messages.
std::string HexNumber(uint64_t value);
// "0x0101021b" — 32-bit ids and checksums, zero-padded to 8 digits.
std::string Hex32(uint32_t value);
// ASCII lowercase (host names, ids); other bytes unchanged.
std::string AsciiLower(std::string_view text);
// Equal when only ASCII letters differ in case. Other bytes must match exactly, so the answer does
// not depend on the C locale (HTTP header values, dpkg field names, certificate organisations).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// Lowercase hex without separators; accepts upper case and ':' separators ("AB:CD:..") as
// keytool and apksigner print them. Returns an error unless the result is `hex_chars` long;
// `what` names the value in the error ("signer", "sha256").
Result<std::string> NormalizeHex(std::string_view text, size_t hex_chars, std::string_view what);
// json.dump() that replaces invalid UTF-8 instead of throwing (APK strings are hostile).
std::string DumpJson(const nlohmann::ordered_json& json, int indent = -1);

}  // namespace appban
