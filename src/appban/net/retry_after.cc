#include "appban/net/retry_after.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>

namespace appban::net {
namespace {

// An HTTP-date (RFC 9110, section 5.6.7) as seconds since the epoch; nullopt for anything else.
std::optional<std::time_t> ParseHttpDate(std::string_view value) {
  // Longer than any of the three forms: not a date (and no unbounded copy).
  constexpr size_t kLongestHttpDate = 40;
  if (value.empty() || value.size() > kLongestHttpDate) return std::nullopt;
  const std::string text(value);
  // strptime reads month and day names in the "C" locale, which a program has until it calls
  // setlocale (appban never does).
  for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm parts{};
    const char* end = ::strptime(text.c_str(), format, &parts);
    if (end != nullptr && *end == '\0') return ::timegm(&parts);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value, std::time_t now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    uint64_t seconds = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    // Digits only, so the one possible error is a value beyond uint64: as long a wait as we allow.
    if (error != std::errc() || end != value.data() + value.size()) return kMaxRetryAfter;
    return std::chrono::seconds(std::min<uint64_t>(seconds, static_cast<uint64_t>(kMaxRetryAfter.count())));
  }
  auto date = ParseHttpDate(value);
  if (!date) return std::nullopt;
  if (*date <= now) return std::chrono::seconds(0);
  return std::min(std::chrono::seconds(*date - now), kMaxRetryAfter);
}

}  // namespace appban::net
