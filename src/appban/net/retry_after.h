// Reading the Retry-After header a server sends with 429 or 503, for every client that honours it
// (the agent's enrolment, the MDM connectors, the device simulator).
#pragma once

#include <chrono>
#include <ctime>
#include <optional>
#include <string_view>

namespace appban::net {

// The longest wait ParseRetryAfter reports; a server asking for more gets this.
inline constexpr std::chrono::seconds kMaxRetryAfter{86400};

// The wait a Retry-After header value asks for (RFC 9110, section 10.2.3): delay-seconds, or an
// HTTP-date in any of the three forms a recipient must accept (IMF-fixdate, RFC 850, asctime)
// counted from `now`, a date already past being no wait; at most kMaxRetryAfter. nullopt when the
// value is neither, so that the caller's own back-off applies.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value, std::time_t now);

}  // namespace appban::net
