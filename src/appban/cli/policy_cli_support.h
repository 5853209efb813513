// Helpers shared by the policy, catalog and audit subcommands: where the data directory is, who
// the acting user is, opening the store, printing errors.
#pragma once

#include <memory>
#include <string>

#include <optional>

#include "appban/cli/server_login.h"
#include "appban/common/status.h"
#include "appban/decide/admin.h"
#include "appban/store/store.h"

namespace appban::cli {

// Options common to the commands that work on a data directory.
struct DataOptions {
  std::string data_dir;  // --data-dir; default $APPBAN_DATA, else ./appban-data
  std::string user;      // --user; default $APPBAN_USER
  // --break-glass: acting on the host while the server is down. Recorded with method
  // "break-glass"; a relaxing decision becomes a change that authenticated people approve
  // through the admin API, and approvals are refused (docs/identity.md, "Break-glass").
  bool break_glass = false;
};

std::string ResolvePolicyDataDir(const DataOptions& options);
std::string ResolveUser(const DataOptions& options);
// The acting user of a command run on the host against the local database: the typed name,
// recorded in the audit chain with method "local" (or "break-glass") and channel "cli" — a name,
// not an authenticated identity (docs/identity.md).
decide::Actor LocalActor(const DataOptions& options);
// Creates the directory (0700) when missing and opens DIR/appban.db (the database `appban server` uses).
Result<std::unique_ptr<store::Store>> OpenPolicyStore(const DataOptions& options);
std::string KeyDir(const DataOptions& options);
// Where a decision (`command`, "appban policy rules approve") goes: with --break-glass, the local
// database (nullopt); else the admin API of the known server (--server, $APPBAN_SERVER or the
// saved login); with neither it is refused, naming both ways out (docs/identity.md).
Result<std::optional<AdminConnection>> DecisionTargetFor(const DataOptions& data, const ServerOptions& server,
                                                         const std::string& command);
// Sends one decision to the admin API (`path` below /v1/admin/). A 202 answer is a change waiting
// for more people: it is printed with how they complete it, and nullopt returned; any other
// success returns its body.
Result<std::optional<Json>> Decide(AdminConnection& api, std::string_view method, const std::string& path,
                                   const Json* body);
// Prints a change proposed with --break-glass on the host, and how signed-in people complete it.
void PrintProposed(const store::Change& change);
// Prints "appban: <context>: <status>" to stderr and returns exit status 1.
int Fail(const Status& status, const std::string& context = "");

}  // namespace appban::cli
