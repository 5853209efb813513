// appban: one multi-call binary; every subcommand lives in the cli part.
#include "appban/cli/app.h"

int main(int argc, char** argv) { return appban::cli::Run(argc, argv); }
