// The appban command-line front end. Parses arguments with CLI11 and dispatches to the
// subcommands registered explicitly in app.cc (no static registration).
#pragma once

namespace appban::cli {

// Runs the command line; returns the process exit status.
int Run(int argc, char** argv);

}  // namespace appban::cli
