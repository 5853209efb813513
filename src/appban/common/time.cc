#include "appban/common/time.h"

#include <cstdio>
#include <ctime>

namespace appban {
namespace {

bool AllDigits(std::string_view text) {
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return !text.empty();
}

int ToInt(std::string_view digits) {
  int value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  return value;
}

}  // namespace

std::string FormatTimestamp(UnixSeconds at) {
  std::time_t seconds = static_cast<std::time_t>(at);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  // The year is written with at least four digits by hand: glibc's strftime "%Y" does not pad, so
  // year 824 (which ParseTimestamp accepts as "0824-...") came out as "824-..." and a stored rule,
  // waiver or bundle holding it could no longer be read back (found by fuzz/inventory_fuzz.cc).
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04lld-%02d-%02dT%02d:%02d:%02dZ",
                static_cast<long long>(parts.tm_year) + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
                parts.tm_min, parts.tm_sec);
  return buffer;
}

Result<UnixSeconds> ParseTimestamp(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("timestamp \"" + std::string(text) +
                                   "\" is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
  };
  if (text.size() != 10 && text.size() != 20) return bad();
  if (text[4] != '-' || text[7] != '-') return bad();
  std::string_view year = text.substr(0, 4), month = text.substr(5, 2), day = text.substr(8, 2);
  if (!AllDigits(year) || !AllDigits(month) || !AllDigits(day)) return bad();
  std::tm parts{};
  parts.tm_year = ToInt(year) - 1900;
  parts.tm_mon = ToInt(month) - 1;
  parts.tm_mday = ToInt(day);
  if (text.size() == 20) {
    if (text[10] != 'T' || text[13] != ':' || text[16] != ':' || text[19] != 'Z') return bad();
    std::string_view hour = text.substr(11, 2), minute = text.substr(14, 2), second = text.substr(17, 2);
    if (!AllDigits(hour) || !AllDigits(minute) || !AllDigits(second)) return bad();
    parts.tm_hour = ToInt(hour);
    parts.tm_min = ToInt(minute);
    parts.tm_sec = ToInt(second);
  }
  if (parts.tm_mon > 11 || parts.tm_mday < 1 || parts.tm_mday > 31 || parts.tm_hour > 23 || parts.tm_min > 59 ||
      parts.tm_sec > 59) {
    return bad();
  }
  std::tm normalized = parts;
  UnixSeconds at = static_cast<UnixSeconds>(timegm(&normalized));
  // timegm normalizes 2023-02-31 into March; refuse dates that do not exist.
  if (normalized.tm_mday != parts.tm_mday || normalized.tm_mon != parts.tm_mon) return bad();
  return at;
}

}  // namespace appban
