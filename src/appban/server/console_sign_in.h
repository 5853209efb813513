// The web console's sign-in through an OpenID Connect provider (console_sign_in.cc,
// docs/console.md, "Signing in at the identity provider").
#pragma once

#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/net/http.h"
#include "appban/server/admin_call.h"
#include "appban/server/console_session.h"
#include "appban/server/context.h"

namespace appban::server {

// GET /console/providers lists the configured providers, GET /console/sign-in?provider=NAME
// redirects to the provider's authorization endpoint (authorization code + PKCE), GET
// /console/callback exchanges the code (on the AdminReader's thread: the provider may be slow)
// and sets the session cookie. Never throws; every refusal is a page that says why.
void HandleConsoleSignIn(WorkerContext& context, net::HttpRequest request, net::Responder respond);

namespace admin {
// A new console session for `principal` (its credential, user and the [console] lifetimes); what
// POST /v1/session and the sign-in callback both set (admin_session.cc).
Result<SessionClaims> NewSessionFor(const WorkerContext& context, const Principal& principal, UnixSeconds now);
}  // namespace admin

}  // namespace appban::server
