#include "appban/mdm/amapi_client.h"

#include <set>

namespace appban::mdm {
namespace {

bool IsIdChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

// Checks "a/ID/b/ID…" against the literal collection names in `collections`.
Status ValidateName(std::string_view name, std::initializer_list<std::string_view> collections, std::string_view what) {
  std::string_view rest = name;
  size_t index = 0;
  for (std::string_view collection : collections) {
    const bool last = ++index == collections.size();
    if (rest.substr(0, collection.size()) != collection || rest.size() <= collection.size() ||
        rest[collection.size()] != '/') {
      return Status::InvalidArgument(std::string(what) + " \"" + std::string(name) + "\" is not of the form " +
                                     (collections.size() == 1 ? "enterprises/ID" : "enterprises/ID/policies/ID"));
    }
    rest.remove_prefix(collection.size() + 1);
    size_t end = rest.find('/');
    std::string_view id = rest.substr(0, end);
    if (id.empty() || id.size() > 256)
      return Status::InvalidArgument(std::string(what) + " has an empty or overlong id");
    for (char c : id) {
      if (!IsIdChar(c)) {
        return Status::InvalidArgument(std::string(what) + " \"" + std::string(name) +
                                       "\": ids may hold only letters, digits, '.', '_' and '-'");
      }
    }
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (end == std::string_view::npos && !last) {
      return Status::InvalidArgument(std::string(what) + " \"" + std::string(name) + "\" is incomplete");
    }
  }
  if (!rest.empty())
    return Status::InvalidArgument(std::string(what) + " \"" + std::string(name) + "\" has extra parts");
  return Status::Ok();
}

}  // namespace

Status ValidateEnterpriseName(std::string_view name) { return ValidateName(name, {"enterprises"}, "enterprise name"); }

Status ValidatePolicyName(std::string_view name) {
  return ValidateName(name, {"enterprises", "policies"}, "policy name");
}

Status ApiError(std::string_view what, int http_status, std::string_view body) {
  std::string summary = std::string(what) + ": HTTP " + std::to_string(http_status);
  // Google's error model: {"error":{"code":400,"message":"…","status":"INVALID_ARGUMENT"}}.
  Result<Json> json = ParseJsonBounded(body, 1 << 20, 16, "error body");
  if (json.ok() && json->is_object()) {
    if (auto error = json->find("error"); error != json->end() && error->is_object()) {
      if (auto s = error->find("status"); s != error->end() && s->is_string()) summary += " " + s->get<std::string>();
      if (auto m = error->find("message"); m != error->end() && m->is_string()) {
        summary += ": " + m->get<std::string>().substr(0, 500);
      }
    }
  }
  return HttpErrorStatus(http_status, summary);
}

Result<std::unique_ptr<AmapiClient>> AmapiClient::Create(AmapiClientOptions options, AccessTokenSource* tokens) {
  APPBAN_ASSIGN_OR_RETURN(SplitUrl base, ParseServiceUrl(options.base_url));
  std::string prefix = base.path;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return std::unique_ptr<AmapiClient>(new AmapiClient(std::move(options), tokens, std::move(prefix)));
}

AmapiClient::AmapiClient(AmapiClientOptions options, AccessTokenSource* tokens, std::string path_prefix)
    : options_(std::move(options)), tokens_(tokens), path_prefix_(std::move(path_prefix)) {
  Result<SplitUrl> base = ParseServiceUrl(options_.base_url);  // checked by Create
  net::ClientOptions http = options_.http;
  http.max_response_bytes = options_.limits.max_response_bytes;
  http_ = std::make_unique<net::HttpClient>(base->origin, http);
}

AmapiClient::~AmapiClient() = default;

Result<Json> AmapiClient::Call(std::string_view method, const std::string& path, std::string_view body,
                               std::string_view what) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    APPBAN_ASSIGN_OR_RETURN(std::string token, tokens_->Token());
    std::vector<std::pair<std::string, std::string>> headers = {{"authorization", "Bearer " + token},
                                                                {"accept", "application/json"}};
    if (!body.empty()) headers.emplace_back("content-type", "application/json");
    int retries = 0;
    Result<net::HttpResponse> response =
        SendWithRetry(*http_, method, path_prefix_ + path, body, headers, options_.retry, &retries);
    retries_ += retries;
    if (!response.ok()) return Status(response.status().code(), std::string(what) + ": " + response.status().message());
    if (response->status == 401 && attempt == 0) {
      // Revoked or expired early: one fresh token, then the 401 stands.
      tokens_->Invalidate();
      continue;
    }
    if (response->status != 200) return ApiError(what, response->status, response->body);
    return ParseJsonBounded(response->body, options_.limits.max_response_bytes, options_.limits.max_json_depth, what);
  }
  return Status::PermissionDenied(std::string(what) + ": unauthorised");
}

Result<Json> AmapiClient::GetPolicy(std::string_view policy_name) {
  APPBAN_RETURN_IF_ERROR(ValidatePolicyName(policy_name));
  APPBAN_ASSIGN_OR_RETURN(
      Json policy, Call("GET", "/v1/" + std::string(policy_name), {}, "policies.get " + std::string(policy_name)));
  if (!policy.is_object()) return Status::Corruption("policies.get " + std::string(policy_name) + ": not an object");
  return policy;
}

Result<Json> AmapiClient::PatchPolicy(std::string_view policy_name, const Json& policy, std::string_view update_mask) {
  APPBAN_RETURN_IF_ERROR(ValidatePolicyName(policy_name));
  if (update_mask.empty()) {
    // Without a mask AMAPI replaces every modifiable field: never what a read-modify-write wants.
    return Status::InvalidArgument("policies.patch without an updateMask would replace the whole policy");
  }
  const std::string path = "/v1/" + std::string(policy_name) + "?updateMask=" + PercentEncode(update_mask);
  APPBAN_ASSIGN_OR_RETURN(Json stored,
                          Call("PATCH", path, policy.dump(), "policies.patch " + std::string(policy_name)));
  if (!stored.is_object()) return Status::Corruption("policies.patch " + std::string(policy_name) + ": not an object");
  return stored;
}

Result<std::vector<Json>> AmapiClient::ListAll(const std::string& path, std::string_view items_key, size_t max_items,
                                               std::string_view what) {
  std::vector<Json> items;
  APPBAN_RETURN_IF_ERROR(ForEachPage(path, items_key, max_items, what, [&items](std::vector<Json> page) {
    for (auto& item : page) items.push_back(std::move(item));
    return Status::Ok();
  }));
  return items;
}

Status AmapiClient::ForEachPage(const std::string& path, std::string_view items_key, size_t max_items,
                                std::string_view what, const std::function<Status(std::vector<Json>)>& visit) {
  size_t listed = 0;
  std::string page_token;
  std::set<std::string> seen_tokens;  // a server that hands back a token it gave before loops
  for (size_t page = 0;; ++page) {
    if (page >= options_.limits.max_pages) {
      return Status::LimitExceeded(std::string(what) + ": more than " + std::to_string(options_.limits.max_pages) +
                                   " pages");
    }
    std::string page_path = path;
    if (!page_token.empty()) page_path += "&pageToken=" + PercentEncode(page_token);
    APPBAN_ASSIGN_OR_RETURN(Json answer, Call("GET", page_path, {}, what));
    if (!answer.is_object()) return Status::Corruption(std::string(what) + ": answer is not an object");
    if (auto list = answer.find(items_key); list != answer.end()) {
      if (!list->is_array())
        return Status::Corruption(std::string(what) + ": " + std::string(items_key) + " is not an array");
      if (listed + list->size() > max_items) {
        return Status::LimitExceeded(std::string(what) + ": more than " + std::to_string(max_items) + " " +
                                     std::string(items_key));
      }
      listed += list->size();
      std::vector<Json> items;
      items.reserve(list->size());
      for (auto& item : *list) {
        if (!item.is_object()) return Status::Corruption(std::string(what) + ": an item is not an object");
        items.push_back(std::move(item));
      }
      APPBAN_RETURN_IF_ERROR(visit(std::move(items)));
    }
    auto next = answer.find("nextPageToken");
    if (next == answer.end() || (next->is_string() && next->get_ref<const std::string&>().empty())) break;
    if (!next->is_string() || next->get_ref<const std::string&>().size() > 4096) {
      return Status::Corruption(std::string(what) + ": nextPageToken is not a short string");
    }
    page_token = next->get<std::string>();
    if (!seen_tokens.insert(page_token).second) {
      return Status::Corruption(std::string(what) + ": the service repeated a page token (paging would loop)");
    }
  }
  return Status::Ok();
}

Result<std::vector<Json>> AmapiClient::ListPolicies(std::string_view enterprise_name) {
  APPBAN_RETURN_IF_ERROR(ValidateEnterpriseName(enterprise_name));
  return ListAll("/v1/" + std::string(enterprise_name) + "/policies?pageSize=" + std::to_string(kPolicyPageSize),
                 "policies", options_.limits.max_policies, "policies.list " + std::string(enterprise_name));
}

Result<std::vector<Json>> AmapiClient::ListDevices(std::string_view enterprise_name, int page_size) {
  APPBAN_RETURN_IF_ERROR(ValidateEnterpriseName(enterprise_name));
  if (page_size < 1) return Status::InvalidArgument("page size must be positive");
  return ListAll("/v1/" + std::string(enterprise_name) + "/devices?pageSize=" + std::to_string(page_size), "devices",
                 options_.limits.max_devices, "devices.list " + std::string(enterprise_name));
}

Status AmapiClient::ForEachDevicePage(std::string_view enterprise_name, int page_size,
                                      const std::function<Status(std::vector<Json>)>& visit) {
  APPBAN_RETURN_IF_ERROR(ValidateEnterpriseName(enterprise_name));
  if (page_size < 1) return Status::InvalidArgument("page size must be positive");
  return ForEachPage("/v1/" + std::string(enterprise_name) + "/devices?pageSize=" + std::to_string(page_size),
                     "devices", options_.limits.max_devices, "devices.list " + std::string(enterprise_name), visit);
}

}  // namespace appban::mdm
