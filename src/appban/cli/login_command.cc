// appban login / appban logout: signing a person in to an appban server from the command line with
// the OAuth 2.0 device authorization grant (server_login.h; docs/identity.md, "The command line").
#include <iostream>
#include <memory>
#include <thread>

#include "appban/cli/commands.h"
#include "appban/cli/policy_cli_support.h"
#include "appban/cli/server_login.h"

namespace appban::cli {

namespace {

void AddServerLocation(CLI::App* command, ServerOptions* options) {
  command->add_option("--server", options->server,
                      "The appban server's URL (default: $APPBAN_SERVER, else the last one signed in to)");
  command->add_option("--ca", options->ca_file, "The server's CA certificate (PEM) to pin")->check(CLI::ExistingFile);
  command->add_option("--ca-sha256", options->ca_sha256,
                      "Refuse a --ca file whose SHA-256 fingerprint is not this (as the server printed it)");
  command
      ->add_option("--client-cert", options->cert_file,
                   "Sign in with this client certificate (PEM), for a server that accepts them "
                   "(default: $APPBAN_CLIENT_CERT)")
      ->check(CLI::ExistingFile);
  command
      ->add_option("--client-key", options->key_file,
                   "The client certificate's unencrypted PEM private key (default: $APPBAN_CLIENT_KEY)")
      ->check(CLI::ExistingFile);
  command->add_option("--credentials", options->credentials,
                      "Credentials file (default: $APPBAN_CREDENTIALS, else "
                      "$XDG_CONFIG_HOME/appban/credentials.json)");
}

}  // namespace

void AddDataDirOption(CLI::App* command, std::string* data_dir, const std::string& description) {
  command->add_option("--data-dir", *data_dir, description);
  command->add_option("--data", *data_dir, "Older spelling of --data-dir")->group("");
}

void AddServerOptions(CLI::App* command, ServerOptions* options) {
  AddServerLocation(command, options);
  command->add_option("--token-file", options->token_file,
                      "File holding an API token to send instead of a sign-in (default: $APPBAN_TOKEN_FILE)");
}

void AddLoginCommands(CLI::App& app, CommandAction* action) {
  auto request = std::make_shared<LoginRequest>();
  CLI::App* login = app.add_subcommand(
      "login", "Sign in to an appban server through its identity provider (OAuth 2.0 device authorization grant)");
  AddServerLocation(login, &request->server);
  login->add_option("--provider", request->provider, "Which of the server's providers (when it trusts several)");
  login->callback([action, request] {
    *action = [request] {
      request->sleep = [](std::chrono::seconds wait) { std::this_thread::sleep_for(wait); };
      auto who = Login(*request, std::cout);
      if (!who.ok()) return Fail(who.status(), "login");
      const Json& user = (*who)["user"];
      std::cout << "signed in as " << user.value("display_name", "") << " (" << user.value("id", "") << ", role "
                << who->value("role", "") << ") to "
                << (request->server.server.empty() ? "the server" : request->server.server) << "; credentials saved in "
                << CredentialsPath(request->server) << "\n";
      if (who->value("method", "") == "client-certificate") {
        std::cout << "signed in with the client certificate sha256:" << who->value("certificate", "")
                  << "; every later command presents it (the credentials file names the key, never copies it)\n";
      }
      return 0;
    };
  });

  auto out = std::make_shared<ServerOptions>();
  CLI::App* logout = app.add_subcommand("logout", "Forget the saved sign-in to a server");
  logout->add_option("--server", out->server, "The server's URL (default: the last one signed in to)");
  logout->add_option("--credentials", out->credentials, "Credentials file (as for appban login)");
  logout->callback([action, out] {
    *action = [out] {
      auto removed = RemoveLogin(CredentialsPath(*out), out->server);
      if (!removed.ok()) return Fail(removed.status(), "logout");
      std::cout << (*removed ? "signed out" : "not signed in") << (out->server.empty() ? "" : " of " + out->server)
                << "\n";
      return 0;
    };
  });
}

}  // namespace appban::cli
