// Sending one request to an MDM's API with bounded retries: throttling (429) and temporary
// unavailability (500, 502, 503, 504, a connection that failed) are retried with exponential
// back-off, honouring the server's Retry-After (in seconds) but never waiting longer than
// max_delay, so a hostile or broken server cannot park the connector. Every other answer is
// returned to the caller as it came. Thread-safety: as the HttpClient passed in (one thread).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "appban/common/status.h"
#include "appban/net/client.h"

namespace appban::mdm {

struct RetryPolicy {
  int max_attempts = 6;  // the first try included
  std::chrono::milliseconds initial_delay{500};
  std::chrono::milliseconds max_delay{60'000};
  // How the connector waits; tests substitute a recorder so back-off is checked without waiting.
  std::function<void(std::chrono::milliseconds)> sleep;
};

// True for the statuses that are worth trying again.
bool IsRetryableStatus(int status);

// The Status kind of an API's error answer, carrying `summary`: 400 kInvalidArgument, 401/403
// kPermissionDenied, 404 kNotFound, 429/5xx (after retries) kUnavailable, else kFailedPrecondition.
Status HttpErrorStatus(int http_status, const std::string& summary);

// Sends the request and retries as described above. When attempts run out the last answer is
// returned (a 503 stays a 503 for the caller to report) or, when no answer ever came, the last
// transport error. `retries` (optional) receives how many retries were made.
Result<net::HttpResponse> SendWithRetry(net::HttpClient& client, std::string_view method, std::string_view path,
                                        std::string_view body,
                                        const std::vector<std::pair<std::string, std::string>>& headers,
                                        const RetryPolicy& policy, int* retries = nullptr);

// The delay before retry number `retry` (1-based) given the answer's Retry-After header value
// ("" when absent): the wait it asks for (seconds or an HTTP-date, net::ParseRetryAfter), else
// initial_delay doubled per retry; capped at max_delay either way.
std::chrono::milliseconds RetryDelay(const RetryPolicy& policy, int retry, std::string_view retry_after);

}  // namespace appban::mdm
