#include "appban/common/utf16.h"

namespace appban {

void AppendUtf8(uint32_t code_point, std::string* out) {
  if (code_point > 0x10ffff || (code_point >= 0xd800 && code_point <= 0xdfff)) code_point = 0xfffd;
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3f)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3f)));
  }
}

std::string Utf16ToUtf8(Bytes units, Utf16Order order) {
  std::string out;
  const size_t count = units.size() / 2;
  out.reserve(count);
  const bool little = order == Utf16Order::kLittleEndian;
  auto unit_at = [&](size_t i) {
    return little ? static_cast<uint32_t>(units[2 * i] | (units[2 * i + 1] << 8))
                  : static_cast<uint32_t>((units[2 * i] << 8) | units[2 * i + 1]);
  };
  for (size_t i = 0; i < count; ++i) {
    uint32_t unit = unit_at(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < count) {
      uint32_t low = unit_at(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        AppendUtf8(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00), &out);
        ++i;
        continue;
      }
    }
    AppendUtf8(unit, &out);  // a lone surrogate becomes U+FFFD
  }
  return out;
}

}  // namespace appban
