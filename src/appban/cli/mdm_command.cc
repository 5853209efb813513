// appban mdm plan|apply|status: drive the MDM connectors configured in the server's TOML
// ([[mdm.amapi]], [[mdm.intune]], [[mdm.apple]]: docs/mdm.md) against the latest bundle the server published.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "appban/cli/commands.h"
#include "appban/cli/mdm_cli.h"
#include "appban/cli/policy_cli_support.h"
#include "appban/decide/admin.h"
#include "appban/mdm/amapi_connector.h"
#include "appban/mdm/intune_connector.h"
#include "appban/policy/bundle.h"
#include "appban/policy/keys.h"
#include "appban/server/config.h"
#include "appban/server/mdm_sync.h"
#include "appban/store/fleet.h"
#include "appban/store/open.h"
#include "appban/store/store.h"

namespace appban::cli {
namespace {

struct MdmFlags {
  std::string config_file;
  std::string data_dir;
  std::string connector;  // empty: every configured connector
  std::string user;
  bool json = false;
};

enum class MdmVerb { kPlan, kApply, kStatus };

}  // namespace

// The latest bundle the server issued, verified against every public key in DATA_DIR/keys — the
// connector enforces exactly what devices are served, checked the way the server checks it.
Result<policy::Bundle> LatestPublishedBundle(store::Store& store, const std::string& data_dir) {
  APPBAN_ASSIGN_OR_RETURN(int64_t version, store.LatestBundleVersion());
  if (version == 0) return Status::NotFound("no bundle has been published yet (appban policy bundle publish)");
  APPBAN_ASSIGN_OR_RETURN(store::BundleRecord record, store.GetBundle(version));
  policy::VerifyOptions options;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir + "/keys", error)) {
    if (entry.path().extension() != ".pub") continue;
    APPBAN_ASSIGN_OR_RETURN(policy::PublicKey key, policy::LoadPublicKeyFile(entry.path().string()));
    options.trusted_keys.push_back(key);
  }
  if (options.trusted_keys.empty()) return Status::NotFound("no policy public key in " + data_dir + "/keys");
  // As the server does: verify at issue time, so an old bundle's content is still checked; a bundle
  // past not_after is still what is published, and phones keep its bans like agents keep theirs.
  options.now = record.issued_at;
  APPBAN_ASSIGN_OR_RETURN(policy::VerifiedBundle verified, policy::VerifyBundle(record.envelope, options));
  return verified.bundle;
}

namespace {
// One Intune connector (mdm/intune_connector.h); every operation apply sends is audited.
int RunIntune(MdmVerb verb, const MdmFlags& flags, const mdm::IntuneConnectorConfig& connector_config,
              const std::string& data_dir, const policy::Bundle& bundle, decide::PolicyAdmin& admin, Json& reports) {
  mdm::IntuneConnectorOptions options;
  options.state_dir = data_dir + "/mdm";
  auto connector = mdm::IntuneConnector::Create(connector_config, options);
  if (!connector.ok()) return Fail(connector.status(), "connector " + connector_config.name);
  Result<mdm::ConnectorReport> report = verb == MdmVerb::kPlan    ? (*connector)->Plan(bundle)
                                        : verb == MdmVerb::kApply ? (*connector)->Apply(bundle)
                                                                  : (*connector)->Survey(bundle);
  if (!report.ok()) return Fail(report.status(), "connector " + connector_config.name);
  int exit_code = report->failed ? 1 : 0;
  if (verb == MdmVerb::kApply) {
    for (const mdm::MdmPush& push : report->pushes) {
      if (Status recorded = admin.Record(push.action, push.object, push.what); !recorded.ok()) {
        exit_code = Fail(recorded, "audit");
      }
    }
  }
  if (flags.json) {
    reports.push_back(report->json);
  } else {
    std::cout << report->text;
  }
  return exit_code;
}

int RunMdm(MdmVerb verb, const MdmFlags& flags) {
  auto config = server::LoadServerConfigFile(flags.config_file);
  if (!config.ok()) return Fail(config.status());
  if (!flags.data_dir.empty()) config->data_dir = flags.data_dir;
  if (!config->mdm.HasConnectors()) {
    return Fail(Status::NotFound(flags.config_file +
                                 " configures no [[mdm.amapi]], [[mdm.intune]] or [[mdm.apple]] connector"));
  }
  auto database = config->Database();
  if (!database.ok()) return Fail(database.status());
  auto store = store::OpenStore(*database);
  if (!store.ok()) return Fail(store.status(), database->Describe());
  auto bundle = LatestPublishedBundle(**store, config->data_dir);
  if (!bundle.ok()) return Fail(bundle.status(), "latest bundle");

  std::string user = flags.user;
  if (user.empty()) user = ResolveUser(DataOptions{config->data_dir, ""});
  if (user.empty()) user = "appban-mdm";
  decide::PolicyAdmin admin(**store, user);

  int exit_code = 0;
  bool found = false;
  Json reports = Json::array();
  for (const mdm::AmapiConnectorConfig& connector_config : config->mdm.amapi) {
    if (!flags.connector.empty() && connector_config.name != flags.connector) continue;
    found = true;
    mdm::ConnectorOptions options;
    options.state_dir = config->data_dir + "/mdm";
    auto connector = mdm::AmapiConnector::Create(connector_config, options);
    if (!connector.ok()) {
      exit_code = Fail(connector.status(), "connector " + connector_config.name);
      continue;
    }
    if (verb == MdmVerb::kPlan) {
      auto plan = (*connector)->Plan(*bundle);
      if (!plan.ok()) {
        exit_code = Fail(plan.status(), "connector " + connector_config.name);
        continue;
      }
      if (flags.json)
        reports.push_back(plan->ToJson());
      else
        std::cout << plan->ToText();
      for (const auto& p : plan->policies) {
        if (!p.error.empty()) exit_code = 1;
      }
    } else if (verb == MdmVerb::kApply) {
      auto applied = (*connector)->Apply(*bundle);
      if (!applied.ok()) {
        exit_code = Fail(applied.status(), "connector " + connector_config.name);
        continue;
      }
      // Every push is audited: what, to which MDM object, by which bundle.
      for (const auto& outcome : applied->policies) {
        if (outcome.result != "patched" && outcome.result != "failed") continue;
        Json what = {{"connector", connector_config.name},
                     {"bundle_version", applied->bundle_version},
                     {"result", outcome.result},
                     {"blocked", outcome.blocked},
                     {"unblocked", outcome.unblocked}};
        if (!outcome.version.empty()) what["policy_version"] = outcome.version;
        if (!outcome.error.empty()) what["error"] = outcome.error;
        if (Status recorded = admin.Record("mdm.amapi.apply", "amapi:" + outcome.policy, what); !recorded.ok()) {
          exit_code = Fail(recorded, "audit");
        }
      }
      if (flags.json)
        reports.push_back(applied->ToJson());
      else
        std::cout << applied->ToText();
      if (applied->Failed()) exit_code = 1;
    } else {
      auto status = (*connector)->Survey(*bundle);
      if (!status.ok()) {
        exit_code = Fail(status.status(), "connector " + connector_config.name);
        continue;
      }
      // What the server's sync loop imported into the fleet (and so into compliance).
      Json sync = nullptr;
      auto fleet = store::OpenFleetStore(*database);
      if (fleet.ok()) {
        if (auto statuses = server::ReadMdmStatuses(**fleet, *config); statuses.ok()) {
          for (const auto& entry : *statuses) {
            if (entry.connector == connector_config.name) sync = entry.ToJson();
          }
        }
      }
      if (flags.json) {
        Json report = status->ToJson();
        report["sync"] = sync;
        reports.push_back(std::move(report));
      } else {
        std::cout << status->ToText();
        if (sync.is_object()) {
          std::cout << "server sync: " << sync["state"].get<std::string>() << ", " << sync["devices"].get<int64_t>()
                    << " device(s) imported into the fleet (" << sync["violating"].get<int64_t>() << " violating, "
                    << sync["cannot_enforce"].get<int64_t>() << " cannot-enforce), bundle "
                    << sync["pushed_version"].get<int64_t>() << " pushed";
          if (sync["error"].is_string()) std::cout << "; last error: " << sync["error"].get<std::string>();
          std::cout << "\n";
        }
      }
    }
  }
  for (const mdm::IntuneConnectorConfig& connector_config : config->mdm.intune) {
    if (!flags.connector.empty() && connector_config.name != flags.connector) continue;
    found = true;
    if (int code = RunIntune(verb, flags, connector_config, config->data_dir, *bundle, admin, reports); code != 0) {
      exit_code = code;
    }
  }
  for (const mdm::AppleConnectorConfig& apple : config->mdm.apple) {
    if (!flags.connector.empty() && apple.name != flags.connector) continue;
    found = true;
    const char* verb_name = verb == MdmVerb::kPlan ? "plan" : verb == MdmVerb::kApply ? "apply" : "status";
    exit_code =
        std::max(exit_code, RunAppleConnector(verb_name, apple, *bundle, config->data_dir, admin, flags.json, reports));
  }
  if (!found) return Fail(Status::NotFound("no connector named " + flags.connector));
  if (flags.json) std::cout << reports.dump(2) << "\n";
  return exit_code;
}

}  // namespace

void AddMdmCommand(CLI::App& app, CommandAction* action) {
  CLI::App* mdm = app.add_subcommand(
      "mdm", "Push bans to MDMs (Android Management API, Intune, Apple MDM) and read their devices back");
  mdm->require_subcommand(1);
  auto flags = std::make_shared<MdmFlags>();
  auto add = [&](const char* name, const char* help, MdmVerb verb) {
    CLI::App* command = mdm->add_subcommand(name, help);
    command
        ->add_option("--config", flags->config_file, "The server's TOML configuration ([[mdm.amapi]], [[mdm.intune]])")
        ->required();
    command->add_option("--data-dir", flags->data_dir, "Data directory (default: the configuration's data_dir)");
    command->add_option("--connector", flags->connector, "Only the connector with this name");
    command->add_option("--user", flags->user, "Who is acting, for the audit log (default $APPBAN_USER)");
    command->add_flag("--json", flags->json, "Print JSON");
    command->callback([flags, action, verb] { *action = [flags, verb] { return RunMdm(verb, *flags); }; });
  };
  add("plan", "Show what applying the latest bundle would change in each managed policy (changes nothing)",
      MdmVerb::kPlan);
  add("apply", "Patch each managed policy so it blocks what the latest bundle bans (idempotent)", MdmVerb::kApply);
  add("status", "List the MDM's devices and which still report a banned app installed", MdmVerb::kStatus);
  AddMdmAppleCommands(mdm, action);
}

}  // namespace appban::cli
