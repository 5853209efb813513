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
  return decide::Actor{name, name, true, store::AuditIdentityJson(who), options.break_glass};
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

int Fail(const Status& status, const std::string& context) {
  std::cerr << "appban: " << (context.empty() ? "" : context + ": ") << status.ToString() << "\n";
  return 1;
}

}  // namespace appban::cli
