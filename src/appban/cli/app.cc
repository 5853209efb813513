#include "appban/cli/app.h"

#include <iostream>

#include "appban/cli/commands.h"

namespace appban::cli {

int Run(int argc, char** argv) {
  CLI::App app{"appban: assess, ban, publish, enforce and verify app bans on government devices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "appban 0.1.0");
  CommandAction action;
  AddInspectCommand(app, &action);
  AddPolicyCommand(app, &action);
  AddCatalogCommand(app, &action);
  AddAuditCommand(app, &action);
  AddAssessCommand(app, &action);
  AddServerCommand(app, &action);
  AddAgentCommand(app, &action);
  AddSimulateCommand(app, &action);
  AddMdmCommand(app, &action);
  AddLoginCommands(app, &action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // CLI11 prints the message (or the help) and names its own codes (105-115): a usage error is
    // status 2 for every appban command, as the documentation promises and scripts test for.
    return app.exit(error) == 0 ? 0 : 2;
  }
  if (!action) return 2;
  try {
    return action();
  } catch (const std::exception& error) {
    // Parts return errors as values; reaching here means a bug or resource exhaustion.
    std::cerr << "appban: internal error: " << error.what() << "\n";
    return 70;
  }
}

}  // namespace appban::cli
