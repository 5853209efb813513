#include "appban/mdm/retry.h"

#include <algorithm>
#include <ctime>
#include <thread>

#include "appban/net/retry_after.h"

namespace appban::mdm {

bool IsRetryableStatus(int status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

Status HttpErrorStatus(int http_status, const std::string& summary) {
  if (http_status == 400) return Status::InvalidArgument(summary);
  if (http_status == 401 || http_status == 403) return Status::PermissionDenied(summary);
  if (http_status == 404) return Status::NotFound(summary);
  if (IsRetryableStatus(http_status)) return Status::Unavailable(summary + " (gave up after retrying)");
  return Status::FailedPrecondition(summary);
}

std::chrono::milliseconds RetryDelay(const RetryPolicy& policy, int retry, std::string_view retry_after) {
  using std::chrono::milliseconds;
  // Garbage: our own back-off rather than trusting it. (The parsed wait is at most a day, so the
  // conversion to milliseconds cannot overflow.)
  if (auto wait = net::ParseRetryAfter(retry_after, std::time(nullptr))) {
    return std::min(std::chrono::duration_cast<milliseconds>(*wait), policy.max_delay);
  }
  milliseconds delay = policy.initial_delay;
  for (int i = 1; i < retry && delay < policy.max_delay; ++i) delay *= 2;
  return std::min(delay, policy.max_delay);
}

Result<net::HttpResponse> SendWithRetry(net::HttpClient& client, std::string_view method, std::string_view path,
                                        std::string_view body,
                                        const std::vector<std::pair<std::string, std::string>>& headers,
                                        const RetryPolicy& policy, int* retries) {
  const int attempts = std::max(1, policy.max_attempts);
  Result<net::HttpResponse> last = Status::Unavailable("no attempt made");
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    last = client.Request(method, path, body, headers);
    if (retries) *retries = attempt - 1;
    std::string retry_after;
    if (last.ok()) {
      if (!IsRetryableStatus(last->status)) return last;
      for (const auto& [name, value] : last->headers) {
        if (name == "retry-after") retry_after = value;  // the client lower-cases names
      }
    } else if (last.status().code() != StatusCode::kUnavailable) {
      return last;  // a malformed or oversized answer does not get better by asking again
    }
    if (attempt == attempts) break;
    std::chrono::milliseconds delay = RetryDelay(policy, attempt, retry_after);
    if (policy.sleep) {
      policy.sleep(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
  }
  return last;
}

}  // namespace appban::mdm
