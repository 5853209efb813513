// The Apple MDM connector in the CLI: its part of `appban mdm plan|apply|status`, and
//   appban mdm apple-profile  the signed restrictions profile, for any MDM or Apple Configurator
//   appban mdm apple-webhook  the receiver for the MDM's webhook (device answers → results file)
#include <pthread.h>

#include <cctype>
#include <csignal>
#include <iostream>

#include "appban/cli/mdm_cli.h"
#include "appban/cli/policy_cli_support.h"
#include "appban/common/file.h"
#include "appban/mdm/apple_connector.h"
#include "appban/mdm/apple_webhook.h"
#include "appban/mdm/credential_file.h"
#include "appban/net/client.h"
#include "appban/server/config.h"
#include "appban/store/open.h"

namespace appban::cli {
namespace {

mdm::AppleConnectorOptions Options(const std::string& data_dir) {
  mdm::AppleConnectorOptions options;
  options.state_dir = data_dir + "/mdm";
  return options;
}

struct AppleFlags {
  std::string config_file;
  std::string data_dir;
  std::string connector;
  std::vector<std::string> groups;
  std::string output;
  std::string listen = "127.0.0.1:9100";
  std::string secret_file;
};

Result<server::ServerConfig> LoadConfig(const AppleFlags& flags) {
  APPBAN_ASSIGN_OR_RETURN(server::ServerConfig config, server::LoadServerConfigFile(flags.config_file));
  if (!flags.data_dir.empty()) config.data_dir = flags.data_dir;
  return config;
}

Result<mdm::AppleConnectorConfig> PickConnector(const server::ServerConfig& config, const AppleFlags& flags) {
  for (const mdm::AppleConnectorConfig& apple : config.mdm.apple) {
    if (flags.connector.empty() || apple.name == flags.connector) return apple;
  }
  return Status::NotFound(flags.connector.empty() ? flags.config_file + " configures no [[mdm.apple]] connector"
                                                  : "no [[mdm.apple]] connector named " + flags.connector);
}

int RunAppleProfile(const AppleFlags& flags) {
  auto config = LoadConfig(flags);
  if (!config.ok()) return Fail(config.status());
  auto apple = PickConnector(*config, flags);
  if (!apple.ok()) return Fail(apple.status());
  auto database = config->Database();
  if (!database.ok()) return Fail(database.status());
  auto store = store::OpenStore(*database);
  if (!store.ok()) return Fail(store.status(), database->Describe());
  auto bundle = LatestPublishedBundle(**store, config->data_dir);
  if (!bundle.ok()) return Fail(bundle.status(), "latest bundle");
  auto connector = mdm::AppleConnector::Create(*apple, Options(config->data_dir));
  if (!connector.ok()) return Fail(connector.status(), "connector " + apple->name);
  auto profile = (*connector)->SignedProfile(*bundle, flags.groups);
  if (!profile.ok()) return Fail(profile.status());
  if (Status written = WriteFileAtomically(flags.output, *profile, 0644); !written.ok()) return Fail(written);
  auto blocked = (*connector)->BlockedFor(*bundle, flags.groups);
  if (!blocked.ok()) return Fail(blocked.status());
  std::cout << "wrote " << flags.output << " (" << profile->size() << " bytes, CMS-signed by " << (*connector)->signer()
            << ")\n"
            << "PayloadIdentifier " << apple->profile_identifier << ", bundle version " << bundle->version << "\n"
            << "blockedAppBundleIDs:";
  for (const std::string& id : *blocked) std::cout << " " << id;
  std::cout << (blocked->empty() ? " (none)\n" : "\n");
  return 0;
}

int RunAppleWebhook(const AppleFlags& flags) {
  auto config = LoadConfig(flags);
  if (!config.ok()) return Fail(config.status());
  auto apple = PickConnector(*config, flags);
  if (!apple.ok()) return Fail(apple.status());
  size_t colon = flags.listen.rfind(':');
  if (colon == std::string::npos) return Fail(Status::InvalidArgument("--listen must be ADDRESS:PORT"));
  int port = 0;
  try {
    port = std::stoi(flags.listen.substr(colon + 1));
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) return Fail(Status::InvalidArgument("--listen: bad port"));
  mdm::AppleWebhookOptions options;
  options.results_path = config->data_dir + "/mdm/apple-" + apple->name + "-results.json";
  if (!flags.secret_file.empty()) {
    auto secret = mdm::ReadCredentialFile(flags.secret_file, 4096, "the webhook secret");
    if (!secret.ok()) return Fail(secret.status());
    while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r')) secret->pop_back();
    for (char c : *secret) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
        return Fail(
            Status::InvalidArgument(flags.secret_file + ": the secret may hold only letters, digits, '-' and '_'"));
      }
    }
    options.path_secret = *secret;
  }
  // SIGTERM/SIGINT are taken by this thread with sigwait; the receiver's thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto receiver = mdm::AppleWebhookReceiver::Start(flags.listen.substr(0, colon), static_cast<uint16_t>(port), options);
  if (!receiver.ok()) return Fail(receiver.status(), "listen " + flags.listen);
  std::cout << "apple connector " << apple->name << ": webhook on http://" << flags.listen.substr(0, colon) << ":"
            << (*receiver)->port() << (options.path_secret.empty() ? "/webhook" : "/webhook/…") << ", results in "
            << options.results_path << std::endl;
  int received = 0;
  sigwait(&signals, &received);
  std::cout << "stopping: " << (*receiver)->recorded() << " result(s) recorded, " << (*receiver)->rejected()
            << " refused\n";
  return 0;
}

}  // namespace

int RunAppleConnector(std::string_view verb, const mdm::AppleConnectorConfig& config, const policy::Bundle& bundle,
                      const std::string& data_dir, decide::PolicyAdmin& admin, bool json, Json& reports) {
  const std::string context = "connector " + config.name;
  auto connector = mdm::AppleConnector::Create(config, Options(data_dir));
  if (!connector.ok()) return Fail(connector.status(), context);
  Result<mdm::ConnectorReport> report = verb == "plan"    ? (*connector)->Plan(bundle)
                                        : verb == "apply" ? (*connector)->Apply(bundle)
                                                          : (*connector)->Survey(bundle);
  if (!report.ok()) return Fail(report.status(), context);
  int exit_code = report->failed ? 1 : 0;
  if (verb == "apply") {
    // Every push is audited: what, to which device of which MDM, by which bundle.
    for (const mdm::MdmPush& push : report->pushes) {
      if (Status recorded = admin.Record(push.action, push.object, push.what); !recorded.ok()) {
        exit_code = Fail(recorded, "audit");
      }
    }
  }
  if (json) {
    reports.push_back(report->json);
  } else {
    std::cout << report->text;
  }
  return exit_code;
}

void AddMdmAppleCommands(CLI::App* mdm, CommandAction* action) {
  auto flags = std::make_shared<AppleFlags>();
  CLI::App* profile = mdm->add_subcommand(
      "apple-profile", "Write the signed restrictions profile (blockedAppBundleIDs) of the latest bundle");
  profile->add_option("--config", flags->config_file, "The server's TOML configuration ([[mdm.apple]])")->required();
  profile->add_option("--data-dir", flags->data_dir, "Data directory (default: the configuration's data_dir)");
  profile->add_option("--connector", flags->connector, "The [[mdm.apple]] connector (default: the first)");
  profile->add_option("--group", flags->groups,
                      "The appban group of the devices it is for (scopes, waivers); repeatable");
  profile->add_option("-o,--output", flags->output, "Where to write the .mobileconfig (CMS, DER)")->required();
  profile->callback([flags, action] { *action = [flags] { return RunAppleProfile(*flags); }; });

  CLI::App* webhook = mdm->add_subcommand(
      "apple-webhook", "Receive the MDM's webhook (device answers) for an [[mdm.apple]] connector until SIGTERM");
  webhook->add_option("--config", flags->config_file, "The server's TOML configuration ([[mdm.apple]])")->required();
  webhook->add_option("--data-dir", flags->data_dir, "Data directory (default: the configuration's data_dir)");
  webhook->add_option("--connector", flags->connector, "The [[mdm.apple]] connector (default: the first)");
  webhook->add_option("--listen", flags->listen, "ADDRESS:PORT to listen on (default 127.0.0.1:9100)");
  webhook->add_option("--secret-file", flags->secret_file,
                      "File holding a secret URL path part (POST /webhook/SECRET)");
  webhook->callback([flags, action] { *action = [flags] { return RunAppleWebhook(*flags); }; });
}

}  // namespace appban::cli
