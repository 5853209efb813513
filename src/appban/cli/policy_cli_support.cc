#include "appban/cli/policy_cli_support.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace appban::cli {

std::string ResolvePolicyDataDir(const DataOptions& options) {
  if (!options.data_dir.empty()) return options.data_dir;
  if (const char* env = std::getenv("APPBAN_DATA"); env != nullptr && *env != '\0') return env;
  return "appban-data";
}

decide::Actor LocalActor(const DataOptions& options) {
  std::string name = ResolveUser(options);
  store::AuditIdentity who;
  who.actor_name = name;
  who.method = options.break_glass ? "break-glass" : "local";
  who.channel = "cli";
  who.source = "local";
  return decide::Actor{name, name, true, store::AuditIdentityJson(who), options.break_glass, {}};
}

std::string ResolveUser(const DataOptions& options) {
  if (!options.user.empty()) return options.user;
  if (const char* env = std::getenv("APPBAN_USER"); env != nullptr) return env;
  return "";
}

std::string KeyDir(const DataOptions& options) { return ResolvePolicyDataDir(options) + "/keys"; }

Result<std::unique_ptr<store::Store>> OpenPolicyStore(const DataOptions& options) {
  std::string dir = ResolvePolicyDataDir(options);
  std::error_code error;
  if (!std::filesystem::exists(dir, error)) {
    std::filesystem::create_directories(dir, error);
    if (error) return Status::Unavailable("cannot create data directory " + dir + ": " + error.message());
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, error);
  }
  // The same database file the server uses (ServerConfig::DatabasePath), so policy and audit
  // commands work on a server's data directory.
  return store::OpenSqliteStore(dir + "/appban.db");
}

Result<std::optional<AdminConnection>> DecisionTargetFor(const DataOptions& data, const ServerOptions& server,
                                                         const std::string& command) {
  if (data.break_glass) return std::optional<AdminConnection>();
  APPBAN_ASSIGN_OR_RETURN(std::optional<AdminConnection> connection, AdminConnection::Open(server));
  if (!connection) {
    return Status::PermissionDenied(
        command +
        " is a decision, so it goes through the server's admin API as the person who signed in: run appban login "
        "--server URL first (or pass --server URL with --token-file FILE for an API token). On the server host "
        "while the server is down, --break-glass acts on the local database instead, recorded as break-glass (it "
        "cannot approve, and what it relaxes waits for two signed-in people)");
  }
  return connection;
}

namespace {

// The pending change a 202 answer carries, and how the others complete it.
void PrintPending(const Json& change) {
  int64_t missing = change.value("needs", change.value("quorum", int64_t{0}) - change.value("people", int64_t{0}));
  std::cout << "proposed change " << change.value("id", "") << " (" << change.value("kind", "") << " "
            << change.value("object", "") << "); it takes effect when " << missing
            << " more person(s) approve it: appban policy changes approve " << change.value("id", "") << "\n";
}

}  // namespace

Result<std::optional<Json>> Decide(AdminConnection& api, std::string_view method, const std::string& path,
                                   const Json* body) {
  APPBAN_ASSIGN_OR_RETURN(AdminConnection::Reply reply, api.Call(method, "/v1/admin/" + path, body));
  if (reply.status == 202 && reply.body.contains("change")) {
    PrintPending(reply.body["change"]);
    return std::optional<Json>();
  }
  return std::optional<Json>(std::move(reply.body));
}

void PrintProposed(const store::Change& change) {
  std::cout << "break-glass: proposed change " << change.id << " (" << change.kind << " " << change.object
            << "); it takes effect when " << change.quorum
            << " people signed in to the admin API approve it (POST /v1/admin/changes/" << change.id << "/approve)\n";
}

int Fail(const Status& status, const std::string& context) {
  std::cerr << "appban: " << (context.empty() ? "" : context + ": ") << status.ToString() << "\n";
  return 1;
}

}  // namespace appban::cli
