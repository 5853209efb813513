// GET /v1/auth/providers: the OpenID Connect providers this server trusts, for clients that sign a
// person in before they have any credential (`appban login`). Unauthenticated, so it names only
// what a provider's own discovery document would show anyone: the label, the issuer and appban's
// client id there — never a client secret or a key file.
#pragma once

#include <string_view>
#include <vector>

#include "appban/identity/oidc.h"
#include "appban/net/http.h"

namespace appban::server {

inline constexpr std::string_view kAuthProvidersPath = "/v1/auth/providers";

// {"providers":[{"name":"keycloak","issuer":"https://…","client_id":"appban"}]}, in configuration order.
net::HttpResponse AuthProvidersResponse(const std::vector<identity::OidcIssuerConfig>& providers);

}  // namespace appban::server
