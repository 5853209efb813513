// The top level of the command line (cli::Run): version, help, and what a user sees when the
// command is missing or misspelt. Exit statuses are CLI11's for usage errors (non-zero), 0 for
// --help and --version.
#include <gtest/gtest.h>

#include <string>

#include "appban/cli/cli_test_support.h"

namespace appban::cli {
namespace {

using AppTest = CliTest;

TEST_F(AppTest, VersionIsPrinted) {
  auto result = RunCli({"--version"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out, "appban 0.1.0\n");
}

TEST_F(AppTest, HelpListsEverySubcommand) {
  auto result = RunCli({"--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* command : {"inspect", "policy", "catalog", "audit", "assess", "server", "agent", "simulate"}) {
    EXPECT_TRUE(Contains(result.out, command)) << command << " missing from:\n" << result.out;
  }
}

TEST_F(AppTest, ACommandIsRequired) {
  auto result = RunCli({});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(Contains(result.err, "subcommand")) << result.err;
}

// CLI11 checks for a missing subcommand before it complains about extra arguments, so a misspelt
// command is reported as a missing one (and points at --help) rather than by name.
TEST_F(AppTest, AnUnknownCommandIsRefusedAndPointsAtHelp) {
  auto result = RunCli({"frobnicate"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(Contains(result.err, "A subcommand is required")) << result.err;
  EXPECT_TRUE(Contains(result.err, "--help")) << result.err;
  EXPECT_TRUE(result.out.empty()) << result.out;
}

TEST_F(AppTest, AnUnknownOptionIsNamed) {
  auto result = RunCli({"catalog", "list", "--colour"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(Contains(result.err, "--colour")) << result.err;
}

}  // namespace
}  // namespace appban::cli
