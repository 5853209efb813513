// The part of a worker's context that a handler may reach from the worker's AdminReader thread
// (admin reads, console sign-in exchanges): shared by every caller that hands work to the reader.
#pragma once

#include "appban/server/context.h"

namespace appban::server {

// A copy holding only what is safe off the request thread: the configuration (immutable), the
// clock, the OpenID Connect verifier (thread-safe), the console session key, the data directory
// and the worker's index. The store and fleet pointers stay null: the reader sets its own
// connections for each job. Nothing the request thread changes is reachable through it.
WorkerContext ReaderThreadContext(const WorkerContext& context);

}  // namespace appban::server
