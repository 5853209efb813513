#include "appban/server/auth_providers.h"

#include "appban/common/json.h"

namespace appban::server {

net::HttpResponse AuthProvidersResponse(const std::vector<identity::OidcIssuerConfig>& providers) {
  Json list = Json::array();
  for (const auto& provider : providers) {
    list.push_back(Json{{"name", provider.name}, {"issuer", provider.issuer}, {"client_id", provider.client_id}});
  }
  net::HttpResponse response;
  response.body = Json{{"providers", std::move(list)}}.dump();
  return response;
}

}  // namespace appban::server
