// UTF-16 to UTF-8, shared by the readers that meet UTF-16 text: Android's resource string pools
// (little-endian) and binary property lists (big-endian). Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "appban/common/bytes.h"

namespace appban {

// Appends `code_point` to `out` as UTF-8; a surrogate or a value past U+10FFFF becomes U+FFFD.
void AppendUtf8(uint32_t code_point, std::string* out);

// UTF-16 code units (two bytes each) as UTF-8: surrogate pairs are joined, a lone surrogate
// becomes U+FFFD, an odd trailing byte is ignored.
enum class Utf16Order { kLittleEndian, kBigEndian };
std::string Utf16ToUtf8(Bytes units, Utf16Order order);

}  // namespace appban
