#include "appban/identity/oidc.h"

#include <utility>

#include "appban/common/file.h"
#include "appban/identity/client_auth.h"
#include "appban/net/client.h"

namespace appban::identity {
namespace {

using Clock = std::chrono::steady_clock;

// Discovery documents are small; a provider answering more is refused.
constexpr size_t kMaxDiscoveryBytes = 64 * 1024;
// The refresher thread's longest sleep: it re-checks what is due at least this often.
constexpr std::chrono::seconds kMaxIdle{5};

std::string DefaultDiscoveryUrl(const std::string& issuer) {
  std::string url = issuer;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url + "/.well-known/openid-configuration";
}

// The strongest role a token's roles claim names, if any.
std::optional<std::string> RoleFromClaims(const OidcIssuerConfig& config, const Json& claims) {
  if (config.roles_claim.empty()) return std::nullopt;
  auto it = claims.find(config.roles_claim);
  if (it == claims.end()) return std::nullopt;
  std::vector<std::string> values;
  if (it->is_string()) values.push_back(it->get<std::string>());
  if (it->is_array()) {
    for (const Json& value : *it)
      if (value.is_string()) values.push_back(value.get<std::string>());
  }
  std::optional<std::string> role;
  for (const auto& value : values) {
    if (value == config.admin_value) return "admin";
    if (value == config.analyst_value) role = "analyst";
    if (value == config.auditor_value && !role) role = "auditor";
  }
  return role;
}

std::string DisplayName(const OidcIssuerConfig& config, const Json& claims) {
  for (const std::string& name : {config.name_claim, std::string("preferred_username"), std::string("email")}) {
    auto it = claims.find(name);
    if (it != claims.end() && it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
  }
  return StringOr(claims, "sub");
}

}  // namespace

Fetcher HttpFetcher() {
  return [](const OidcIssuerConfig& issuer, const std::string& url) -> Result<std::string> {
    APPBAN_ASSIGN_OR_RETURN(ProviderRequest request, ProviderClient(issuer, url, kJwtLimits.max_jwks_bytes));
    APPBAN_ASSIGN_OR_RETURN(net::HttpResponse response,
                            request.client.Request("GET", request.path, {}, {{"Accept", "application/json"}}));
    if (response.status != 200) {
      return Status::Unavailable("GET " + url + " answered HTTP " + std::to_string(response.status));
    }
    return std::move(response.body);
  };
}

OidcVerifier::OidcVerifier(std::vector<OidcIssuerConfig> issuers, Fetcher fetcher) : fetcher_(std::move(fetcher)) {
  MutexLock lock(mutex_);
  for (auto& config : issuers) {
    IssuerState state;
    if (config.discovery_url.empty()) config.discovery_url = DefaultDiscoveryUrl(config.issuer);
    state.config = std::move(config);
    state.last_error = "not fetched yet";
    issuers_.push_back(std::move(state));
  }
}

OidcVerifier::~OidcVerifier() { Stop(); }

void OidcVerifier::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void OidcVerifier::Stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

int64_t OidcVerifier::fetch_count() const {
  MutexLock lock(mutex_);
  return fetches_;
}

void OidcVerifier::RefreshAllNow() {
  size_t count;
  {
    MutexLock lock(mutex_);
    count = issuers_.size();
  }
  for (size_t i = 0; i < count; ++i) Refresh(i);
}

bool OidcVerifier::Due(const IssuerState& state, Clock::time_point now) const {
  auto since_attempt = now - state.last_attempt;
  if (since_attempt < std::chrono::seconds(state.config.min_refresh_seconds)) return false;
  if (!state.fetched || state.refresh_requested) return true;
  return now - state.last_success >= std::chrono::seconds(state.config.refresh_interval_seconds);
}

void OidcVerifier::Run() {
  while (true) {
    std::optional<size_t> due;
    {
      MutexLock lock(mutex_);
      if (stopping_) return;
      auto now = Clock::now();
      for (size_t i = 0; i < issuers_.size() && !due; ++i)
        if (Due(issuers_[i], now)) due = i;
      if (!due) {
        wake_.WaitFor(mutex_, kMaxIdle);
        continue;
      }
    }
    Refresh(*due);
  }
}

void OidcVerifier::Refresh(size_t index) {
  OidcIssuerConfig config;
  std::string jwks_uri;
  {
    MutexLock lock(mutex_);
    IssuerState& state = issuers_[index];
    state.last_attempt = Clock::now();
    state.refresh_requested = false;
    ++fetches_;
    config = state.config;
    jwks_uri = state.jwks_uri;
  }
  auto fail = [&](const std::string& error) {
    MutexLock lock(mutex_);
    issuers_[index].last_error = error;
  };
  // Discovery every time: a provider may move its jwks_uri with a rollover.
  auto discovery_text = fetcher_(config, config.discovery_url);
  if (!discovery_text.ok()) return fail("discovery: " + discovery_text.status().message());
  auto discovery = ParseJsonBounded(*discovery_text, kMaxDiscoveryBytes, kJwtLimits.max_json_depth, "discovery");
  if (!discovery.ok() || !discovery->is_object()) return fail("discovery document is not a JSON object");
  if (StringOr(*discovery, "issuer") != config.issuer) {
    return fail("discovery document names issuer " + StringOr(*discovery, "issuer", "(none)") +
                ", not the configured " + config.issuer);
  }
  if (!discovery->contains("jwks_uri") || !(*discovery)["jwks_uri"].is_string()) {
    return fail("discovery document has no jwks_uri");
  }
  jwks_uri = (*discovery)["jwks_uri"].get<std::string>();
  auto jwks_text = fetcher_(config, jwks_uri);
  if (!jwks_text.ok()) return fail("JWKS: " + jwks_text.status().message());
  auto jwks = ParseJwks(*jwks_text);
  if (!jwks.ok()) return fail("JWKS: " + jwks.status().message());
  MutexLock lock(mutex_);
  IssuerState& state = issuers_[index];
  state.jwks_uri = std::move(jwks_uri);
  state.keys = std::move(jwks->keys);
  state.fetched = true;
  state.last_success = Clock::now();
  state.last_error.clear();
}

Result<VerifiedToken> OidcVerifier::Verify(std::string_view token, UnixSeconds now) {
  APPBAN_ASSIGN_OR_RETURN(Jwt jwt, ParseJwt(token));
  std::string iss = jwt.claims.contains("iss") && jwt.claims["iss"].is_string() ? jwt.claims["iss"].get<std::string>()
                                                                                : std::string();
  MutexLock lock(mutex_);
  IssuerState* state = nullptr;
  for (auto& candidate : issuers_)
    if (candidate.config.issuer == iss) state = &candidate;
  if (state == nullptr) {
    std::string shown = iss.size() <= 120 ? iss : iss.substr(0, 120) + "...";
    return Status::PermissionDenied("token issued by " + (iss.empty() ? std::string("(no iss)") : shown) +
                                    ", which is not a configured identity provider");
  }
  if (!state->fetched) {
    state->refresh_requested = true;
    wake_.NotifyAll();
    return Status::Unavailable("the keys of identity provider " + state->config.name + " have not been fetched yet (" +
                               state->last_error + ")");
  }
  const JsonWebKey* key = nullptr;
  Status last = Status::Ok();
  for (const auto& candidate : state->keys) {
    if (!jwt.kid.empty() && candidate.kid() != jwt.kid) continue;
    if (candidate.alg() != jwt.alg) continue;
    last = candidate.Verify(jwt);
    if (last.ok()) {
      key = &candidate;
      break;
    }
  }
  if (key == nullptr) {
    if (!last.ok()) return last;
    // Not in the cached set: perhaps the provider rolled its keys over. Ask for a refresh (the
    // thread rate-limits it) and let the client retry.
    state->refresh_requested = true;
    wake_.NotifyAll();
    std::string kid = jwt.kid.size() <= 64 ? jwt.kid : jwt.kid.substr(0, 64) + "...";
    return Status::NotFound("token is signed with key " + (kid.empty() ? std::string("(no kid)") : kid) +
                            ", which is not among the " + std::to_string(state->keys.size()) + " keys of provider " +
                            state->config.name + "; its keys are being refreshed, retry in a few seconds");
  }
  ClaimsPolicy policy;
  policy.issuer = state->config.issuer;
  policy.audience = state->config.client_id;
  policy.now = now;
  policy.clock_skew_seconds = state->config.clock_skew_seconds;
  APPBAN_RETURN_IF_ERROR(CheckClaims(jwt, policy));
  VerifiedToken verified;
  verified.issuer_name = state->config.name;
  verified.issuer = state->config.issuer;
  verified.subject = jwt.claims["sub"].get<std::string>();
  verified.display_name = DisplayName(state->config, jwt.claims);
  verified.role = RoleFromClaims(state->config, jwt.claims);
  verified.key_id = key->kid();
  if (jwt.claims["exp"].is_number()) verified.expires_at = jwt.claims["exp"].get<int64_t>();
  return verified;
}

}  // namespace appban::identity
