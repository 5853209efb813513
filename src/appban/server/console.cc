#include "appban/server/console.h"

#include <string>

#include "appban/server/console_assets.h"

namespace appban::server {
namespace {

const ConsoleAsset* FindAsset(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (const ConsoleAsset& asset : ConsoleAssets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

// If-None-Match is a list of entity tags (or "*"); a weak "W/" prefix compares equal too (RFC 9110
// 13.1.2 uses the weak comparison for GET).
bool MatchesEtag(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
  }
  return false;
}

}  // namespace

bool IsConsolePath(std::string_view path) { return FindAsset(path) != nullptr; }

void AddConsoleSecurityHeaders(net::HttpResponse& response) {
  response.headers.emplace_back("Content-Security-Policy", std::string(kConsoleContentSecurityPolicy));
  response.headers.emplace_back("X-Frame-Options", "DENY");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
  response.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
  response.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

net::HttpResponse ServeConsole(const net::HttpRequest& request) {
  net::HttpResponse response;
  const ConsoleAsset* asset = FindAsset(request.path);
  if (asset == nullptr) {
    response = net::MakeErrorResponse(404, "not_found", "no such endpoint: " + request.path);
  } else if (request.method != "GET" && request.method != "HEAD") {
    response = net::MakeErrorResponse(405, "method_not_allowed", request.path + " accepts GET");
    response.headers.emplace_back("Allow", "GET, HEAD");
  } else {
    response.headers.emplace_back("ETag", std::string(asset->etag));
    // Revalidated on every load (a cheap 304): a new server version is picked up at once, and the
    // single page never runs with scripts of another version.
    response.headers.emplace_back("Cache-Control", "no-cache");
    response.content_type = std::string(asset->content_type);
    if (MatchesEtag(request.Header("if-none-match"), asset->etag)) {
      response.status = 304;
    } else if (request.method == "GET") {
      response.body = std::string(asset->bytes);
    }
  }
  AddConsoleSecurityHeaders(response);
  return response;
}

}  // namespace appban::server
