// `appban server`: the supervisor process. It validates the configuration, prepares the data
// directory on first start (certificate, policy key, one-time admin token), binds the listening
// socket, creates the shared metrics region and forks the worker processes that serve. It
// restarts a worker that dies, and on SIGTERM/SIGINT passes the signal on and waits for every
// worker to finish its in-flight requests. Why processes and not threads: docs/architecture.md.
#pragma once

#include <iosfwd>

#include "appban/server/config.h"

namespace appban::server {

// Returns the process exit status. `out` receives the first-start banner and the listening URL.
int RunServer(const ServerConfig& config, std::ostream& out);

}  // namespace appban::server
