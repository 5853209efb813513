#include "appban/mdm/apple_client.h"

#include "appban/common/json.h"
#include "appban/mdm/apple_results.h"
#include "appban/mdm/google_auth.h"

namespace appban::mdm {
namespace {

constexpr size_t kMaxEnrollmentIdLength = 256;
constexpr std::string_view kNanoMdmUser = "nanomdm";

// The APIResult's word on one enrollment, or on the whole request.
EnqueueResult ReadApiResult(const Json& result, std::string_view enrollment_id) {
  EnqueueResult out;
  std::string command_error = StringOr(result, "command_error");
  std::string push_error = StringOr(result, "push_error");
  if (auto status = result.find("status"); status != result.end() && status->is_object()) {
    if (auto mine = status->find(std::string(enrollment_id)); mine != status->end() && mine->is_object()) {
      if (command_error.empty()) command_error = StringOr(*mine, "command_error");
      if (push_error.empty()) push_error = StringOr(*mine, "push_error");
    }
  }
  out.queued = command_error.empty();
  out.error = (out.queued ? push_error : command_error).substr(0, 500);
  return out;
}

}  // namespace

Status ValidateEnrollmentId(std::string_view id) {
  if (id.empty() || id.size() > kMaxEnrollmentIdLength) {
    return Status::InvalidArgument("an enrollment id must be 1 to 256 characters");
  }
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.' || c == ':' || c == '@';
    if (!ok) {
      return Status::InvalidArgument("enrollment id \"" + std::string(id.substr(0, 64)) +
                                     "\": only letters, digits and \"-_.:@\" are allowed");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<CommandQueueClient>> CommandQueueClient::Create(CommandQueueOptions options) {
  APPBAN_ASSIGN_OR_RETURN(SplitUrl base, ParseServiceUrl(options.server_url));
  std::string prefix = base.path;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (options.api_key.empty()) return Status::InvalidArgument("the MDM API key is empty");
  for (char c : options.api_key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Status::InvalidArgument("the MDM API key holds control characters");
    }
  }
  return std::unique_ptr<CommandQueueClient>(
      new CommandQueueClient(std::move(options), std::move(prefix), base.origin));
}

CommandQueueClient::CommandQueueClient(CommandQueueOptions options, std::string path_prefix, net::Url origin)
    : options_(std::move(options)), path_prefix_(std::move(path_prefix)) {
  authorization_ = "Basic " + Base64Encode(std::string(kNanoMdmUser) + ":" + options_.api_key);
  net::ClientOptions http = options_.http;
  http.max_response_bytes = options_.limits.max_response_bytes;
  http_ = std::make_unique<net::HttpClient>(std::move(origin), http);
}

CommandQueueClient::~CommandQueueClient() = default;

Result<EnqueueResult> CommandQueueClient::Enqueue(std::string_view enrollment_id, std::string_view command_uuid,
                                                  std::string_view command_plist) {
  APPBAN_RETURN_IF_ERROR(ValidateEnrollmentId(enrollment_id));
  const std::string what = "enqueue " + std::string(command_uuid) + " for " + std::string(enrollment_id);
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"authorization", authorization_}, {"content-type", "text/plain"}, {"accept", "application/json"}};
  RetryPolicy retry = options_.retry;
  int retries = 0;
  Result<net::HttpResponse> response =
      SendWithRetry(*http_, "PUT", path_prefix_ + "/v1/enqueue/" + std::string(enrollment_id), command_plist, headers,
                    retry, &retries);
  retries_ += retries;
  if (!response.ok()) return Status(response.status().code(), what + ": " + response.status().message());
  if (response->status == 401 || response->status == 403) {
    return Status::PermissionDenied(what + ": HTTP " + std::to_string(response->status) +
                                    " (the MDM refused the API key)");
  }
  Result<Json> result = ParseJsonBounded(response->body, options_.limits.max_response_bytes, 16, what);
  if (response->status == 200 || response->status == 207 || (response->status == 500 && result.ok())) {
    if (!result.ok())
      return Status::Corruption(what + ": the answer is not an APIResult: " + result.status().message());
    if (!result->is_object()) return Status::Corruption(what + ": the answer is not a JSON object");
    if (auto echoed = result->find("command_uuid"); echoed != result->end() && echoed->is_string() &&
                                                    !echoed->get_ref<const std::string&>().empty() &&
                                                    echoed->get_ref<const std::string&>() != command_uuid) {
      return Status::Corruption(what + ": the MDM answered for command " + echoed->get<std::string>().substr(0, 64));
    }
    EnqueueResult enqueued = ReadApiResult(*result, enrollment_id);
    if (!enqueued.queued) return Status::FailedPrecondition(what + ": refused: " + enqueued.error);
    return enqueued;
  }
  std::string summary = what + ": HTTP " + std::to_string(response->status);
  if (response->status == 400) return Status::InvalidArgument(summary + ": " + response->body.substr(0, 300));
  if (response->status == 404) return Status::NotFound(summary);
  if (IsRetryableStatus(response->status)) return Status::Unavailable(summary + " (gave up after retrying)");
  return Status::FailedPrecondition(summary);
}

}  // namespace appban::mdm
