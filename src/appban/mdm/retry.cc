#include "appban/mdm/retry.h"

#include <algorithm>
#include <charconv>
#include <thread>

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
  uint64_t seconds = 0;
  if (!retry_after.empty()) {
    auto [end, error] = std::from_chars(retry_after.data(), retry_after.data() + retry_after.size(), seconds);
    // An HTTP-date or garbage: fall back to our own back-off rather than trusting it.
    if (error == std::errc() && end == retry_after.data() + retry_after.size()) {
      // Compare in seconds first so a huge value cannot overflow the multiplication.
      if (seconds >= static_cast<uint64_t>(policy.max_delay.count() / 1000 + 1)) return policy.max_delay;
      return std::min(milliseconds(seconds * 1000), policy.max_delay);
    }
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
