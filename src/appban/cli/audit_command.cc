// appban audit list|verify: read and check the hash-chained audit log of a data directory.
#include <iostream>
#include <memory>

#include "appban/cli/commands.h"
#include "appban/cli/policy_cli_support.h"
#include "appban/common/text.h"

namespace appban::cli {
namespace {

struct AuditOptions {
  DataOptions data;
  bool json = false;
};

// "  [Bob Tremblay <sub bob at https://idp> via oidc, api from 10.0.0.7]" for entries that record
// who acted; "" for those that do not (written before schema 6, or by the server itself).
std::string DescribeIdentity(const std::string& identity_json) {
  Json who = Json::parse(identity_json.empty() ? "null" : identity_json, nullptr, false);
  if (!who.is_object()) return "";
  std::string text = "  [" + TerminalSafe(StringOr(who, "actor_name", StringOr(who, "user_id", "?")));
  if (who.contains("subject")) {
    text += " <sub " + TerminalSafe(StringOr(who, "subject")) + " at " + TerminalSafe(StringOr(who, "issuer")) + ">";
  }
  text += " via " + TerminalSafe(StringOr(who, "method", "?"));
  if (who.contains("token_id")) text += " " + TerminalSafe(StringOr(who, "token_id"));
  if (who.contains("certificate")) text += " sha256:" + TerminalSafe(StringOr(who, "certificate")).substr(0, 16) + "…";
  text += ", " + TerminalSafe(StringOr(who, "channel", "?"));
  if (who.contains("source")) text += " from " + TerminalSafe(StringOr(who, "source"));
  return text + "]";
}

int List(const AuditOptions& o) {
  auto store = OpenPolicyStore(o.data);
  if (!store.ok()) return Fail(store.status());
  auto entries = (*store)->ReadAudit();
  if (!entries.ok()) return Fail(entries.status());
  if (o.json) {
    Json out = Json::array();
    for (const auto& e : *entries) {
      out.push_back({{"seq", e.seq},
                     {"at", FormatTimestamp(e.at)},
                     {"actor", e.actor},
                     {"action", e.action},
                     {"object", e.object},
                     {"before", Json::parse(e.before_json, nullptr, false)},
                     {"after", Json::parse(e.after_json, nullptr, false)},
                     {"identity", Json::parse(e.identity_json.empty() ? "null" : e.identity_json, nullptr, false)},
                     {"prev_hash", e.prev_hash},
                     {"hash", e.hash}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& e : *entries) {
    std::cout << e.seq << "  " << FormatTimestamp(e.at) << "  " << e.actor << "  " << e.action << "  " << e.object
              << "  " << e.hash.substr(0, 16) << DescribeIdentity(e.identity_json) << "\n";
  }
  return 0;
}

int Verify(const AuditOptions& o) {
  auto store = OpenPolicyStore(o.data);
  if (!store.ok()) return Fail(store.status());
  auto result = (*store)->VerifyAudit();
  if (!result.ok()) return Fail(result.status());
  if (o.json) {
    Json problems = Json::array();
    for (const auto& p : result->problems) problems.push_back({{"seq", p.seq}, {"problem", p.what}});
    std::cout << Json{{"ok", result->ok()},
                      {"entries", result->entries},
                      {"head_hash", result->head_hash},
                      {"checkpoint_seq", result->checkpoint_seq},
                      {"checkpoint_key_id", result->checkpoint_key_id},
                      {"problems", problems}}
                     .dump(2)
              << "\n";
  } else if (result->ok()) {
    std::cout << "audit chain OK: " << result->entries << " entries, head " << result->head_hash << "\n";
    if (!result->checkpoint_key_id.empty()) {
      // Whoever can replace the checkpoint key can rewrite history: compare this id with the one
      // recorded when the data directory was set up (docs/policy.md, Audit chain).
      std::cout << "signed checkpoint at entry " << result->checkpoint_seq << ", checkpoint key "
                << result->checkpoint_key_id << "\n";
    }
  } else {
    std::cout << "audit chain BROKEN (" << result->problems.size() << " problem(s) in " << result->entries
              << " entries):\n";
    for (const auto& p : result->problems) std::cout << "  entry " << p.seq << ": " << p.what << "\n";
  }
  return result->ok() ? 0 : 1;
}

}  // namespace

void AddAuditCommand(CLI::App& app, CommandAction* action) {
  auto o = std::make_shared<AuditOptions>();
  CLI::App* audit = app.add_subcommand("audit", "The tamper-evident audit log of policy decisions and actions");
  audit->require_subcommand(1);
  AddDataDirOption(audit, &o->data.data_dir, "Data directory (default: $APPBAN_DATA, else ./appban-data)");
  CLI::App* list = audit->add_subcommand("list", "List audit entries");
  list->add_flag("--json", o->json, "Print JSON");
  list->fallthrough();
  list->callback([action, o] { *action = [o] { return List(*o); }; });
  CLI::App* verify =
      audit->add_subcommand("verify", "Check the hash chain; name every edited, deleted or reordered entry");
  verify->add_flag("--json", o->json, "Print JSON");
  verify->fallthrough();
  verify->callback([action, o] { *action = [o] { return Verify(*o); }; });
}

}  // namespace appban::cli
