// The web console's static files (web/), compiled into the server by cmake/embed_web.cmake: the
// server needs no directory at run time and fetches nothing from elsewhere.
#pragma once

#include <span>
#include <string_view>

namespace appban::server {

struct ConsoleAsset {
  std::string_view path;          // "/index.html", "/app.js", ...
  std::string_view content_type;  // "text/javascript; charset=utf-8", ...
  std::string_view etag;          // a strong validator: the quoted SHA-256 of the bytes
  std::string_view bytes;
};

// Every file under web/, sorted by path. Defined in the generated console_assets.cc.
std::span<const ConsoleAsset> ConsoleAssets();

}  // namespace appban::server
