// The top level of the command line (cli::Run): version, help, and what a user sees when the
// command is missing or misspelt. Exit statuses are CLI11's for usage errors (non-zero), 0 for
// --help and --version.
#include <gtest/gtest.h>

#include <string>

#include "appban/cli/cli_test_support.h"
#include "appban/cli/commands.h"

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

// Every command's and option's help reads the same way: a capitalised sentence. Walks the whole
// command tree, so a command added later is held to it too.
void ExpectCapitalisedHelp(const CLI::App& command, const std::string& path, std::vector<std::string>* lowercase) {
  auto starts_lower = [](const std::string& text) { return !text.empty() && text[0] >= 'a' && text[0] <= 'z'; };
  // The root's description starts with the product's name, which is spelt in lower case.
  if (command.get_parent() != nullptr && starts_lower(command.get_description())) {
    lowercase->push_back(path + ": " + command.get_description());
  }
  for (const CLI::Option* option : command.get_options()) {
    if (starts_lower(option->get_description())) {
      lowercase->push_back(path + " " + option->get_name() + ": " + option->get_description());
    }
  }
  for (const CLI::App* sub : command.get_subcommands([](const CLI::App*) { return true; })) {
    ExpectCapitalisedHelp(*sub, path + " " + sub->get_name(), lowercase);
  }
}

TEST(HelpText, EveryDescriptionIsCapitalised) {
  CLI::App app{"appban"};
  CommandAction action;
  for (auto add : {AddInspectCommand, AddPolicyCommand, AddCatalogCommand, AddAuditCommand, AddAssessCommand,
                   AddServerCommand, AddAgentCommand, AddSimulateCommand, AddMdmCommand}) {
    add(app, &action);
  }
  std::vector<std::string> lowercase;
  ExpectCapitalisedHelp(app, "appban", &lowercase);
  std::string list;
  for (const std::string& entry : lowercase) list += "  " + entry + "\n";
  EXPECT_TRUE(lowercase.empty()) << lowercase.size() << " help texts start in lower case:\n" << list;
}

// `agent status` reads the state and the installed apps; the enforcement options (package tools,
// hooks, back-off) belong to `once` and `run` only.
TEST_F(AppTest, AgentStatusHelpListsOnlyWhatStatusReads) {
  auto status = RunCli({"agent", "status", "--help"});
  EXPECT_EQ(status.exit_code, 0);
  for (const char* read : {"--state-dir", "--root", "--dpkg-admindir", "--json"}) {
    EXPECT_TRUE(Contains(status.out, read)) << read << " missing:\n" << status.out;
  }
  for (const char* act : {"--apt-get", "--apt-hook-command", "--monitor", "--backoff-max-ms", "--no-purge"}) {
    EXPECT_FALSE(Contains(status.out, act)) << act << " listed:\n" << status.out;
  }
  auto once = RunCli({"agent", "once", "--help"});
  EXPECT_TRUE(Contains(once.out, "--apt-get")) << once.out;
}

}  // namespace
}  // namespace appban::cli
