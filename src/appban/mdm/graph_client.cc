#include "appban/mdm/graph_client.h"

#include <set>

namespace appban::mdm {

Status GraphError(std::string_view what, int http_status, std::string_view body) {
  std::string summary = std::string(what) + ": HTTP " + std::to_string(http_status);
  // ODataError: {"error":{"code":"BadRequest","message":"…","innerError":{…}}}.
  Result<Json> json = ParseJsonBounded(body, 1 << 20, 16, "error body");
  if (json.ok() && json->is_object()) {
    if (auto error = json->find("error"); error != json->end() && error->is_object()) {
      if (auto c = error->find("code"); c != error->end() && c->is_string()) {
        summary += " " + c->get<std::string>().substr(0, 100);
      }
      if (auto m = error->find("message"); m != error->end() && m->is_string()) {
        summary += ": " + m->get<std::string>().substr(0, 500);
      }
    }
  }
  return HttpErrorStatus(http_status, summary);
}

Status ValidateGraphId(std::string_view id) {
  if (id.empty() || id.size() > 256) return Status::InvalidArgument("Graph id is empty or too long");
  for (char c : id) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok)
      return Status::InvalidArgument("Graph id \"" + std::string(id.substr(0, 64)) + "\" has characters a path cannot");
  }
  return Status::Ok();
}

Result<GraphPage> ParseGraphPage(std::string_view body, const MdmLimits& limits) {
  APPBAN_ASSIGN_OR_RETURN(Json answer,
                          ParseJsonBounded(body, limits.max_response_bytes, limits.max_json_depth, "Graph collection"));
  return GraphPageFromJson(std::move(answer));
}

Result<GraphPage> GraphPageFromJson(Json answer) {
  if (!answer.is_object()) return Status::Corruption("Graph collection: answer is not an object");
  GraphPage page;
  auto value = answer.find("value");
  if (value == answer.end() || !value->is_array()) return Status::Corruption("Graph collection: value is not an array");
  for (auto& item : *value) {
    if (!item.is_object()) return Status::Corruption("Graph collection: an item is not an object");
    page.items.push_back(std::move(item));
  }
  if (auto next = answer.find("@odata.nextLink"); next != answer.end() && !next->is_null()) {
    if (!next->is_string() || next->get_ref<const std::string&>().size() > 8192) {
      return Status::Corruption("Graph collection: @odata.nextLink is not a short string");
    }
    page.next_link = next->get<std::string>();
  }
  return page;
}

Result<std::unique_ptr<GraphClient>> GraphClient::Create(GraphClientOptions options, AccessTokenSource* tokens) {
  while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  APPBAN_ASSIGN_OR_RETURN(SplitUrl base, ParseServiceUrl(options.base_url));
  while (!base.path.empty() && base.path.back() == '/') base.path.pop_back();
  return std::unique_ptr<GraphClient>(new GraphClient(std::move(options), tokens, std::move(base)));
}

GraphClient::GraphClient(GraphClientOptions options, AccessTokenSource* tokens, SplitUrl base)
    : options_(std::move(options)), tokens_(tokens), base_(std::move(base)) {
  net::ClientOptions http = options_.http;
  http.max_response_bytes = options_.limits.max_response_bytes;
  http_ = std::make_unique<net::HttpClient>(base_.origin, http);
}

GraphClient::~GraphClient() = default;

Result<Json> GraphClient::Call(std::string_view method, const std::string& path, std::string_view body,
                               std::string_view what) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    APPBAN_ASSIGN_OR_RETURN(std::string token, tokens_->Token());
    std::vector<std::pair<std::string, std::string>> headers = {{"authorization", "Bearer " + token},
                                                                {"accept", "application/json"}};
    if (!body.empty()) headers.emplace_back("content-type", "application/json");
    int retries = 0;
    Result<net::HttpResponse> response = SendWithRetry(*http_, method, path, body, headers, options_.retry, &retries);
    retries_ += retries;
    if (!response.ok()) return Status(response.status().code(), std::string(what) + ": " + response.status().message());
    if (response->status == 401 && attempt == 0) {
      tokens_->Invalidate();  // revoked or expired early: one fresh token, then the 401 stands
      continue;
    }
    if (response->status == 204) return Json::object();
    if (response->status != 200 && response->status != 201) return GraphError(what, response->status, response->body);
    APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(response->body, options_.limits.max_response_bytes,
                                                        options_.limits.max_json_depth, what));
    if (!json.is_object()) return Status::Corruption(std::string(what) + ": answer is not a JSON object");
    return json;
  }
  return Status::PermissionDenied(std::string(what) + ": unauthorised");
}

Result<std::vector<Json>> GraphClient::List(std::string_view path, size_t max_items, std::string_view what) {
  std::vector<Json> items;
  std::string page_path = base_.path + std::string(path);
  page_path += (page_path.find('?') == std::string::npos ? "?" : "&") + std::string("$top=") +
               std::to_string(options_.page_size);
  std::set<std::string> seen;  // a server that hands back a link it gave before loops
  const std::string origin = options_.base_url.substr(0, options_.base_url.size() - base_.path.size());
  for (size_t page = 0;; ++page) {
    if (page >= options_.limits.max_pages) {
      return Status::LimitExceeded(std::string(what) + ": more than " + std::to_string(options_.limits.max_pages) +
                                   " pages");
    }
    APPBAN_ASSIGN_OR_RETURN(Json answer, Call("GET", page_path, {}, what));
    Result<GraphPage> parsed = GraphPageFromJson(std::move(answer));
    if (!parsed.ok()) return Status(parsed.status().code(), std::string(what) + ": " + parsed.status().message());
    if (items.size() + parsed->items.size() > max_items) {
      return Status::LimitExceeded(std::string(what) + ": more than " + std::to_string(max_items) + " items");
    }
    for (Json& item : parsed->items) items.push_back(std::move(item));
    if (parsed->next_link.empty()) break;
    // Follow the whole link, but only to the service it came from: a bearer never goes elsewhere.
    if (parsed->next_link.rfind(origin + "/", 0) != 0) {
      return Status::Corruption(std::string(what) + ": @odata.nextLink points outside " + origin);
    }
    page_path = parsed->next_link.substr(origin.size());
    if (!seen.insert(page_path).second) {
      return Status::Corruption(std::string(what) + ": the service repeated an @odata.nextLink (paging would loop)");
    }
  }
  return items;
}

Result<Json> GraphClient::Get(std::string_view path, std::string_view what) {
  return Call("GET", base_.path + std::string(path), {}, what);
}

Result<Json> GraphClient::Post(std::string_view path, const Json& body, std::string_view what) {
  return Call("POST", base_.path + std::string(path), body.dump(), what);
}

Result<Json> GraphClient::Patch(std::string_view path, const Json& body, std::string_view what) {
  return Call("PATCH", base_.path + std::string(path), body.dump(), what);
}

Status GraphClient::Delete(std::string_view path, std::string_view what) {
  return Call("DELETE", base_.path + std::string(path), {}, what).status();
}

}  // namespace appban::mdm
