// Subcommand registration. Each Add*Command registers its subcommand on `app`; when the
// subcommand is selected, its parse callback stores the work to do in `*action`, and Run executes
// it after parsing, so exit codes come from the command rather than from CLI11.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace appban::cli {

// Returns the process exit status.
using CommandAction = std::function<int()>;

void AddInspectCommand(CLI::App& app, CommandAction* action);
void AddPolicyCommand(CLI::App& app, CommandAction* action);
void AddCatalogCommand(CLI::App& app, CommandAction* action);
void AddAuditCommand(CLI::App& app, CommandAction* action);
void AddAssessCommand(CLI::App& app, CommandAction* action);
void AddServerCommand(CLI::App& app, CommandAction* action);
void AddAgentCommand(CLI::App& app, CommandAction* action);
void AddSimulateCommand(CLI::App& app, CommandAction* action);
void AddMdmCommand(CLI::App& app, CommandAction* action);
// appban login, appban logout (login_command.cc).
void AddLoginCommands(CLI::App& app, CommandAction* action);

struct ServerOptions;
// --server, --ca, --ca-sha256, --token-file, --credentials: how a command reaches the admin API.
void AddServerOptions(CLI::App* command, ServerOptions* options);
// --data-dir DIR: the data directory (`appban.db`, keys), the one name every command uses for it.
// `--data`, its older spelling on policy, catalog and audit, is still accepted and not shown.
void AddDataDirOption(CLI::App* command, std::string* data_dir, const std::string& description);

}  // namespace appban::cli
