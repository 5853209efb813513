// Encodings that URLs, forms and JSON Web Tokens need: base64url and percent-encoding. Pure;
// thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace appban {

// base64url without padding (RFC 4648 §5), as JWTs and PKCE use it.
std::string Base64UrlEncode(std::string_view bytes);
// Every byte but RFC 3986's unreserved characters as %XX: form values and query parameters.
std::string PercentEncode(std::string_view text);

}  // namespace appban
