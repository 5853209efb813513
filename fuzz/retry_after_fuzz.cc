// Fuzzes net::ParseRetryAfter, which reads a header any server (or anything in between) chooses:
// whatever the value, an answer is no wait at all or a wait of at most kMaxRetryAfter, never a
// crash, a negative wait or an overflow in the callers' conversion to milliseconds.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "appban/net/retry_after.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view value(reinterpret_cast<const char*>(data), size);
  // RFC 9110's example date, then the epoch: dates before and after "now".
  for (std::time_t now : {std::time_t{784111777}, std::time_t{0}}) {
    auto wait = appban::net::ParseRetryAfter(value, now);
    if (wait && (wait->count() < 0 || *wait > appban::net::kMaxRetryAfter)) std::abort();
  }
  return 0;
}
