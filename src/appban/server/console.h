// The web console's files (web/, embedded by cmake/embed_web.cmake), served by every worker at the
// server's own origin: "/" is the single page, "/<file>" its scripts and styles. Every response
// carries the console's security headers (ConsoleSecurityHeaders); docs/console.md explains them.
#pragma once

#include <string_view>

#include "appban/net/http.h"

namespace appban::server {

// The Content-Security-Policy of every console response: scripts, styles and API calls from this
// origin only; no inline script, no plugin, never framed, no <base>, forms post only here.
inline constexpr std::string_view kConsoleContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// True for "/" and the path of an embedded file.
bool IsConsolePath(std::string_view path);

// GET (or HEAD) of a console path: the file with its content type, a strong ETag (304 for a
// matching If-None-Match) and the security headers; 405 for other methods; 404 for another path.
net::HttpResponse ServeConsole(const net::HttpRequest& request);

// Adds Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, Referrer-Policy,
// Cross-Origin-Opener-Policy and Cross-Origin-Resource-Policy to `response`.
void AddConsoleSecurityHeaders(net::HttpResponse& response);

}  // namespace appban::server
