// A client for an Apple MDM's command queue, as NanoMDM exposes it
// (https://github.com/micromdm/nanomdm, docs/operations-guide.md and docs/openapi.yaml):
//   PUT /v1/enqueue/{id}[,{id}…][?nopush=1]   body: the raw command plist (XML)
// authenticated with HTTP basic auth, user "nanomdm", password the API key. The answer is a JSON
// APIResult: {"command_uuid", "request_type", "status": {id: {"push_result"|"push_error"|
// "command_error"}}, "command_error", "push_error", "no_push"}; 200 when every enrollment got the
// command, 207 when some did not, 500 when none did (or the body could not be read), 401 for a
// wrong key. A push error alone still means the command is queued: the device fetches it at its
// next check-in.
//
// Requests are retried on 429/5xx with back-off (retry.h) — except 500 with an APIResult, which is
// NanoMDM's "every enqueue failed" and says why. The API key never appears in errors.
//
// Thread-safety: one thread at a time (it owns an HttpClient).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/mdm/limits.h"
#include "appban/mdm/retry.h"
#include "appban/net/client.h"

namespace appban::mdm {

// NanoMDM's enrollment ids: a UDID, "UDID:UUID" (user channel), "UDID:name@domain" (Shared
// iPad). Letters, digits and "-_.:@"; no ',' (the enqueue path separates ids with it).
Status ValidateEnrollmentId(std::string_view id);

struct CommandQueueOptions {
  std::string server_url;  // https://nanomdm.example.gov (http:// on loopback only)
  std::string api_key;     // secret
  net::ClientOptions http;
  RetryPolicy retry;
  MdmLimits limits = kMdmLimits;
};

// What the queue said for one enrollment.
struct EnqueueResult {
  bool queued = false;
  std::string error;  // command_error when not queued; push_error when queued but not pushed
};

class CommandQueueClient {
 public:
  static Result<std::unique_ptr<CommandQueueClient>> Create(CommandQueueOptions options);
  ~CommandQueueClient();

  // Queues `command_plist` (whose CommandUUID is `command_uuid`) for `enrollment_id`. An error
  // when the queue refused it or could not be reached; a push failure is not one.
  Result<EnqueueResult> Enqueue(std::string_view enrollment_id, std::string_view command_uuid,
                                std::string_view command_plist);

  int retries() const { return retries_; }

 private:
  CommandQueueClient(CommandQueueOptions options, std::string path_prefix, net::Url origin);

  CommandQueueOptions options_;
  std::string path_prefix_;
  std::string authorization_;  // "Basic …": secret
  std::unique_ptr<net::HttpClient> http_;
  int retries_ = 0;
};

}  // namespace appban::mdm
