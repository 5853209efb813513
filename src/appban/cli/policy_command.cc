// appban policy …: rules, waivers, groups, vendors, keys and signed bundles. Decisions (proposing,
// approving, publishing and revoking rules, waivers, groups, key rotation, pending changes) go
// through a server's admin API as the signed-in person (`appban login`, or an API token from a
// file); with --break-glass they are made in the local data directory (--data-dir DIR, default
// $APPBAN_DATA or ./appban-data) as the typed --user, recorded as break-glass; with neither they are
// refused. Read-only commands read the local data directory. docs/policy.md and docs/identity.md
// are the manual.
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "appban/cli/commands.h"
#include "appban/cli/policy_cli_support.h"
#include "appban/cli/server_login.h"
#include "appban/common/file.h"
#include "appban/decide/admin.h"
#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"
#include "appban/policy/keys.h"
#include "appban/policy/limits.h"

namespace appban::cli {
namespace {

struct PolicyOptions {
  DataOptions data;
  ServerOptions server;
  std::string command;  // "rules approve", for messages
  bool json = false;
  // rules add
  std::string id, title, action = "remove", effective, rationale, authority, instrument, note, reason;
  std::vector<std::string> targets, scope, references, assessments;
  // waivers add
  std::string rule, device, group, justification, expires, requested_by;
  // groups
  std::string name, description, country;
  std::vector<std::string> devices;
  // keys / bundle / evaluate
  bool rotate = false;
  std::string out, file, inventory, now;
  std::vector<std::string> keys;
  int64_t validity_days = 0;  // 0: the server's policy.bundle_validity_days
  int64_t held_version = -1;
};

void PrintJson(const Json& json) { std::cout << json.dump(2) << "\n"; }

Result<UnixSeconds> NowOrOverride(const std::string& text) {
  if (text.empty()) return decide::SystemClockNow();
  return ParseTimestamp(text);
}

// Opens the store and a PolicyAdmin acting as the resolved user.
struct Session {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<decide::PolicyAdmin> admin;
};
Result<Session> OpenSession(const PolicyOptions& options) {
  Session session;
  APPBAN_ASSIGN_OR_RETURN(session.store, OpenPolicyStore(options.data));
  session.admin = std::make_unique<decide::PolicyAdmin>(*session.store, LocalActor(options.data));
  return session;
}

Result<std::optional<AdminConnection>> DecisionTarget(const PolicyOptions& o) {
  return DecisionTargetFor(o.data, o.server, "appban policy " + o.command);
}

// Runs a decision through the API: `done` prints what a completed decision changed.
int RemoteDecision(AdminConnection& api, std::string_view method, const std::string& path, const Json* body,
                   const std::function<void(const Json&)>& done) {
  auto decided = Decide(api, method, path, body);
  if (!decided.ok()) return Fail(decided.status());
  if (*decided) done(**decided);
  return 0;
}

void PrintRule(const policy::Rule& rule) {
  std::cout << rule.id << "  [" << policy::RuleStateName(rule.state) << "]  " << policy::ActionName(rule.action)
            << "\n";
  std::cout << "  title       " << rule.title << "\n";
  for (const auto& target : rule.targets) std::cout << "  target      " << policy::TargetSpec(target) << "\n";
  std::string scope;
  for (const auto& g : rule.scope_groups) scope += (scope.empty() ? "" : ", ") + g;
  std::cout << "  scope       " << (scope.empty() ? "all devices" : scope) << "\n";
  std::cout << "  effective   " << (rule.effective_at ? FormatTimestamp(*rule.effective_at) : "immediately")
            << (rule.effective_note.empty() ? "" : "  (source: " + rule.effective_note + ")") << "\n";
  std::cout << "  rationale   " << rule.rationale << "\n";
  std::cout << "  authority   " << rule.authority << "\n";
  std::cout << "  instrument  " << rule.instrument << "\n";
  for (const auto& reference : rule.references) std::cout << "  reference   " << reference << "\n";
  for (const auto& a : rule.assessments) std::cout << "  assessment  " << a.apk_sha256 << " " << a.report << "\n";
  if (!rule.source.empty()) std::cout << "  source      catalog entry " << rule.source << "\n";
  for (const auto& t : rule.history) {
    std::cout << "  history     " << FormatTimestamp(t.at) << "  " << policy::RuleStateName(t.to) << " by " << t.by
              << (t.note.empty() ? "" : "  (" + t.note + ")") << "\n";
  }
}

int RulesAdd(const PolicyOptions& o) {
  policy::Rule rule;
  rule.id = o.id;
  rule.title = o.title;
  for (const auto& spec : o.targets) {
    auto target = policy::ParseTargetSpec(spec);
    if (!target.ok()) return Fail(target.status());
    rule.targets.push_back(*target);
  }
  auto action = policy::ParseAction(o.action);
  if (!action.ok()) return Fail(action.status());
  rule.action = *action;
  rule.scope_groups = o.scope;
  if (!o.effective.empty()) {
    auto at = ParseTimestamp(o.effective);
    if (!at.ok()) return Fail(at.status(), "--effective");
    rule.effective_at = *at;
  }
  rule.rationale = o.rationale;
  rule.authority = o.authority;
  rule.instrument = o.instrument;
  rule.references = o.references;
  for (const auto& spec : o.assessments) {
    size_t eq = spec.find('=');
    rule.assessments.push_back({spec.substr(0, eq), eq == std::string::npos ? "" : spec.substr(eq + 1)});
  }
  auto target = DecisionTarget(o);
  if (!target.ok()) return Fail(target.status());
  if (*target) {
    Json body = policy::RuleToJson(rule, false);
    if (!o.note.empty()) body["note"] = o.note;
    return RemoteDecision(**target, "POST", "rules", &body, [](const Json& stored) {
      std::cout << "proposed rule " << stored.value("id", "") << " (draft; another person must approve it)\n";
    });
  }
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto stored = session->admin->ProposeRule(std::move(rule), o.note);
  if (!stored.ok()) return Fail(stored.status());
  std::cout << "proposed rule " << stored->id << " (draft; another person must approve it)\n";
  return 0;
}

int RulesList(const PolicyOptions& o) {
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto rules = session->store->ListRules();
  if (!rules.ok()) return Fail(rules.status());
  if (o.json) {
    Json out = Json::array();
    for (const auto& rule : *rules) out.push_back(policy::RuleToJson(rule, true));
    PrintJson(out);
    return 0;
  }
  for (const auto& rule : *rules) {
    size_t unverified = 0;
    for (const auto& t : rule.targets) unverified += t.unverified ? 1 : 0;
    std::cout << rule.id << "  " << policy::RuleStateName(rule.state) << "  " << policy::ActionName(rule.action) << "  "
              << rule.targets.size() << " target(s)"
              << (unverified ? " (" + std::to_string(unverified) + " unverified)" : "") << "  " << rule.title << "\n";
  }
  return 0;
}

int RulesShow(const PolicyOptions& o) {
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto rule = session->store->GetRule(o.id);
  if (!rule.ok()) return Fail(rule.status());
  if (o.json) {
    PrintJson(policy::RuleToJson(*rule, true));
  } else {
    PrintRule(*rule);
  }
  return 0;
}

// What a break-glass proposal needs: two authenticated people, since its proposer counts as nobody.
constexpr int64_t kBreakGlassQuorum = store::ChangeLimits::kMinQuorum;

int RulesTransition(const PolicyOptions& o, const std::string& verb) {
  auto target = DecisionTarget(o);
  if (!target.ok()) return Fail(target.status());
  if (*target) {
    Json body = verb == "revoke" ? Json{{"reason", o.reason}} : Json::object();
    if (verb != "revoke" && !o.note.empty()) body["note"] = o.note;
    return RemoteDecision(**target, "POST", "rules/" + o.id + "/" + verb, &body, [](const Json& rule) {
      std::cout << "rule " << rule.value("id", "") << " is now " << rule.value("state", "") << "\n";
    });
  }
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  if (o.data.break_glass && verb == "revoke") {
    // Revoking a published rule relaxes enforcement: through break-glass it is only proposed.
    auto current = session->store->GetRule(o.id);
    if (!current.ok()) return Fail(current.status());
    if (current->state == policy::RuleState::kPublished) {
      auto change = session->admin->ProposeRuleRevocation(o.id, o.reason, kBreakGlassQuorum);
      if (!change.ok()) return Fail(change.status());
      PrintProposed(*change);
      return 0;
    }
  }
  Result<policy::Rule> rule = verb == "approve"   ? session->admin->ApproveRule(o.id, o.note)
                              : verb == "publish" ? session->admin->PublishRule(o.id, o.note)
                                                  : session->admin->RevokeRule(o.id, o.reason);
  if (!rule.ok()) return Fail(rule.status());
  std::cout << "rule " << rule->id << " is now " << policy::RuleStateName(rule->state) << "\n";
  return 0;
}

int WaiversAdd(const PolicyOptions& o) {
  if (o.device.empty() == o.group.empty())
    return Fail(Status::InvalidArgument("give exactly one of --device or --group"));
  policy::Waiver waiver;
  waiver.id = o.id;
  waiver.rule_id = o.rule;
  waiver.subject_kind = o.device.empty() ? policy::WaiverSubject::kGroup : policy::WaiverSubject::kDevice;
  waiver.subject = o.device.empty() ? o.group : o.device;
  waiver.justification = o.justification;
  waiver.requested_by = o.requested_by;
  auto expires = ParseTimestamp(o.expires);
  if (!expires.ok()) return Fail(expires.status(), "--expires");
  waiver.expires_at = *expires;
  auto target = DecisionTarget(o);
  if (!target.ok()) return Fail(target.status());
  if (*target) {
    if (!o.requested_by.empty()) {
      return Fail(Status::InvalidArgument(
          "--requested-by: through the server the requester is the person signed in; others approve it"));
    }
    Json body = policy::WaiverToJson(waiver, false);
    for (const char* server_set : {"approved_by", "created_at", "requested_by"}) body.erase(server_set);
    return RemoteDecision(**target, "POST", "waivers", &body,
                          [](const Json& result) { std::cout << "waiver " << result.value("id", "") << " added\n"; });
  }
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  if (o.data.break_glass) {
    auto change = session->admin->ProposeWaiver(std::move(waiver), kBreakGlassQuorum);
    if (!change.ok()) return Fail(change.status());
    PrintProposed(*change);
    return 0;
  }
  auto stored = session->admin->AddWaiver(std::move(waiver));
  if (!stored.ok()) return Fail(stored.status());
  std::cout << "waiver " << stored->id << " exempts " << policy::WaiverSubjectName(stored->subject_kind) << " "
            << stored->subject << " from rule " << stored->rule_id << " until " << FormatTimestamp(stored->expires_at)
            << "\n";
  return 0;
}

int WaiversList(const PolicyOptions& o) {
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto waivers = session->store->ListWaivers();
  if (!waivers.ok()) return Fail(waivers.status());
  UnixSeconds now = decide::SystemClockNow();
  if (o.json) {
    Json out = Json::array();
    for (const auto& w : *waivers) {
      Json j = policy::WaiverToJson(w, true);
      j["active"] = w.ActiveAt(now);
      out.push_back(std::move(j));
    }
    PrintJson(out);
    return 0;
  }
  for (const auto& w : *waivers) {
    std::cout << w.id << "  rule " << w.rule_id << "  " << policy::WaiverSubjectName(w.subject_kind) << " " << w.subject
              << "  until " << FormatTimestamp(w.expires_at) << "  "
              << (w.revoked_at ? "revoked" : (w.ActiveAt(now) ? "active" : "expired")) << "  approved by "
              << w.approved_by << "  — " << w.justification << "\n";
  }
  return 0;
}

int WaiversRevoke(const PolicyOptions& o) {
  auto target = DecisionTarget(o);
  if (!target.ok()) return Fail(target.status());
  if (*target) {
    Json body{{"reason", o.reason}};
    return RemoteDecision(**target, "POST", "waivers/" + o.id + "/revoke", &body,
                          [&](const Json&) { std::cout << "waiver " << o.id << " revoked\n"; });
  }
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto waiver = session->admin->RevokeWaiver(o.id, o.reason);
  if (!waiver.ok()) return Fail(waiver.status());
  std::cout << "waiver " << waiver->id << " revoked\n";
  return 0;
}

int GroupsAdd(const PolicyOptions& o) {
  auto target = DecisionTarget(o);
  if (!target.ok()) return Fail(target.status());
  if (*target) {
    Json body{{"name", o.name}, {"description", o.description}, {"devices", o.devices}};
    return RemoteDecision(**target, "POST", "groups", &body, [&](const Json&) {
      std::cout << "group " << o.name << " created with " << o.devices.size() << " device(s)\n";
    });
  }
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto group = session->admin->CreateGroup(policy::Group{o.name, o.description, o.devices, 0});
  if (!group.ok()) return Fail(group.status());
  std::cout << "group " << group->name << " created with " << group->devices.size() << " device(s)\n";
  return 0;
}

int GroupsAddDevices(const PolicyOptions& o) {
  auto target = DecisionTarget(o);
  if (!target.ok()) return Fail(target.status());
  if (*target) {
    Json body{{"devices", o.devices}};
    return RemoteDecision(**target, "POST", "groups/" + o.name + "/devices", &body, [&](const Json& group) {
      std::cout << "group " << o.name << " has " << group.value("devices", Json::array()).size() << " device(s)\n";
    });
  }
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto group = session->admin->AddDevices(o.name, o.devices);
  if (!group.ok()) return Fail(group.status());
  std::cout << "group " << group->name << " has " << group->devices.size() << " device(s)\n";
  return 0;
}

int GroupsRemove(const PolicyOptions& o) {
  auto target = DecisionTarget(o);
  if (!target.ok()) return Fail(target.status());
  if (*target) {
    return RemoteDecision(**target, "DELETE", "groups/" + o.name, nullptr,
                          [&](const Json&) { std::cout << "group " << o.name << " deleted\n"; });
  }
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  Status status = session->admin->DeleteGroup(o.name);
  if (!status.ok()) return Fail(status);
  std::cout << "group " << o.name << " deleted\n";
  return 0;
}

int GroupsList(const PolicyOptions& o) {
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto groups = session->store->ListGroups();
  if (!groups.ok()) return Fail(groups.status());
  if (o.json) {
    Json out = Json::array();
    for (const auto& g : *groups) out.push_back(policy::GroupToJson(g));
    PrintJson(out);
    return 0;
  }
  for (const auto& g : *groups) {
    std::cout << g.name << "  " << g.devices.size() << " device(s)  " << g.description << "\n";
  }
  return 0;
}

int VendorsAdd(const PolicyOptions& o) {
  policy::Vendor vendor{o.name, o.country, {}, 0};
  for (const auto& spec : o.targets) {
    auto target = policy::ParseTargetSpec(spec);
    if (!target.ok()) return Fail(target.status());
    vendor.identifiers.push_back(*target);
  }
  auto target = DecisionTarget(o);
  if (!target.ok()) return Fail(target.status());
  if (*target) {
    // A vendor that a rule in force targets widens that rule: the server answers with a change
    // that waits for more people (printed by Decide).
    Json body = policy::VendorToJson(vendor);
    if (!o.note.empty()) body["note"] = o.note;
    return RemoteDecision(**target, "POST", "vendors", &body, [](const Json& stored) {
      std::cout << "vendor " << stored.value("name", "") << " has " << stored.value("identifiers", Json::array()).size()
                << " identifier(s)\n";
    });
  }
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto merged = session->admin->MergeVendor(vendor, kBreakGlassQuorum, o.note);
  if (!merged.ok()) return Fail(merged.status());
  if (merged->state == store::ChangeState::kPending) {
    PrintProposed(*merged);
    return 0;
  }
  std::cout << "vendor " << vendor.name << " has " << merged->payload.value("identifiers", Json::array()).size()
            << " identifier(s)\n";
  return 0;
}

int VendorsList(const PolicyOptions& o) {
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto vendors = session->store->ListVendors();
  if (!vendors.ok()) return Fail(vendors.status());
  if (o.json) {
    Json out = Json::array();
    for (const auto& v : *vendors) out.push_back(policy::VendorToJson(v));
    PrintJson(out);
    return 0;
  }
  for (const auto& v : *vendors) {
    std::cout << v.name << (v.country.empty() ? "" : " (" + v.country + ")") << "\n";
    for (const auto& t : v.identifiers) std::cout << "  " << policy::TargetSpec(t) << "\n";
  }
  return 0;
}

int KeysInit(const PolicyOptions& o) {
  if (o.rotate) {
    // Rotating the key changes what every device trusts: it needs the quorum (docs/identity.md).
    auto target = DecisionTarget(o);
    if (!target.ok()) return Fail(target.status());
    if (*target) {
      Json body = Json::object();
      return RemoteDecision(**target, "POST", "keys/rotate", &body, [](const Json& result) {
        std::cout << "policy key rotated: " << result.value("result", Json::object()).dump() << "\n";
      });
    }
  }
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  if (Status actor = session->admin->CheckActor(); !actor.ok()) return Fail(actor);
  if (o.rotate) {
    auto change = session->admin->ProposeChange("key.rotate", "key:policy", Json::object(), kBreakGlassQuorum, "");
    if (!change.ok()) return Fail(change.status());
    PrintProposed(*change);
    return 0;
  }
  auto key = policy::CreateActiveKey(KeyDir(o.data), o.rotate);
  if (!key.ok()) return Fail(key.status());
  Status recorded = session->admin->Record(o.rotate ? "keys.rotate" : "keys.init", "key:" + key->key_id(),
                                           Json{{"key_id", key->key_id()}});
  if (!recorded.ok()) return Fail(recorded);
  std::cout << "policy key " << key->key_id() << "\n  private " << KeyDir(o.data) << "/" << key->key_id()
            << ".key (mode 0600)\n  public  " << KeyDir(o.data) << "/" << key->key_id() << ".pub\n";
  if (o.rotate) {
    std::cout << "  the retired key signed a rotation statement (" << KeyDir(o.data)
              << "/<old key id>.rotation); the next published bundle carries it to devices, which then pin the "
                 "new key and refuse the old one\n";
  }
  return 0;
}

int KeysShow(const PolicyOptions& o) {
  auto key = policy::LoadActiveKey(KeyDir(o.data));
  if (!key.ok()) return Fail(key.status());
  std::string pub_path = KeyDir(o.data) + "/" + key->key_id() + ".pub";
  if (o.json) {
    PrintJson(Json{{"key_id", key->key_id()},
                   {"public_key_file", pub_path},
                   {"public_key_pem", policy::PublicKeyPem(key->public_key())}});
  } else {
    std::cout << "key id      " << key->key_id() << "\npublic key  " << pub_path << "\n"
              << policy::PublicKeyPem(key->public_key());
  }
  return 0;
}

int ChangesList(const PolicyOptions& o) {
  auto api = AdminConnection::Open(o.server);
  if (!api.ok()) return Fail(api.status());
  if (!*api)
    return Fail(
        Status::InvalidArgument("pending changes are on the server: pass --server URL or sign in "
                                "with appban login"));
  auto reply = (*api)->Call("GET", "/v1/admin/changes");
  if (!reply.ok()) return Fail(reply.status());
  const Json& changes = reply->body.contains("changes") ? reply->body["changes"] : reply->body;
  if (o.json) {
    PrintJson(changes);
    return 0;
  }
  for (const Json& change : changes) {
    std::cout << change.value("id", "") << "  " << change.value("state", "") << "  " << change.value("kind", "") << "  "
              << change.value("object", "") << "  " << change.value("people", int64_t{0}) << "/"
              << change.value("quorum", int64_t{0}) << " people  proposed by " << change.value("proposer_name", "")
              << "\n";
  }
  return 0;
}

int ChangesDecide(const PolicyOptions& o, const std::string& verb) {
  if (o.data.break_glass) {
    return Fail(Status::PermissionDenied("break-glass cannot " + verb +
                                         " a change: the people who approve must sign in to the admin API"));
  }
  auto target = DecisionTarget(o);
  if (!target.ok()) return Fail(target.status());
  Json body = Json::object();
  if (verb == "approve" && !o.note.empty()) body["note"] = o.note;
  auto decided = Decide(**target, "POST", "changes/" + o.id + "/" + verb, &body);
  if (!decided.ok()) return Fail(decided.status());
  if (*decided) {
    const Json& change = (*decided)->contains("change") ? (**decided)["change"] : **decided;
    std::cout << "change " << change.value("id", o.id) << " is now " << change.value("state", "") << " ("
              << change.value("people", int64_t{0}) << " of " << change.value("quorum", int64_t{0}) << " people)\n";
  }
  return 0;
}

// What a break-glass publish on the host signs for when --validity-days is not given: the
// server's default (ServerConfig::policy.bundle_validity_days), which this command cannot read when
// the server runs from a configuration file elsewhere.
constexpr int64_t kDefaultBundleValidityDays = 30;

void PrintPublished(const Json& bundle) {
  std::cout << "published bundle version " << bundle.value("version", int64_t{0}) << " ("
            << (bundle.contains("rules") && bundle["rules"].is_array() ? bundle["rules"].size() : 0) << " rule(s), "
            << bundle.value("waivers", int64_t{0}) << " waiver(s)), valid until " << bundle.value("not_after", "")
            << "; devices receive it at their next check-in\n";
}

// Signs the published rules and active waivers into the next bundle version and serves it to the
// fleet: through the server (its key and validity), or with --break-glass on the host.
int BundlePublish(const PolicyOptions& o) {
  auto target = DecisionTarget(o);
  if (!target.ok()) return Fail(target.status());
  if (*target) {
    Json body = Json::object();
    if (o.validity_days > 0) body["validity_days"] = o.validity_days;
    return RemoteDecision(**target, "POST", "publish", &body, PrintPublished);
  }
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto key = policy::LoadActiveKey(KeyDir(o.data));
  if (!key.ok()) return Fail(key.status());
  const int64_t days = o.validity_days > 0 ? o.validity_days : kDefaultBundleValidityDays;
  if (days > policy::kMaxBundleValidityDays) {
    return Fail(Status::InvalidArgument("--validity-days " + std::to_string(days) + " is above the limit of " +
                                        std::to_string(policy::kMaxBundleValidityDays) + " days"));
  }
  auto envelope = session->admin->ExportBundle(*key, days * 86400);
  if (!envelope.ok()) return Fail(envelope.status());
  policy::VerifyOptions options;
  options.trusted_keys = {key->public_key()};
  options.now = static_cast<UnixSeconds>(std::time(nullptr));
  auto verified = policy::VerifyBundle(*envelope, options);
  if (!verified.ok()) return Fail(verified.status());
  Json rules = Json::array();
  for (const auto& rule : verified->bundle.rules) rules.push_back(rule.id);
  PrintPublished(Json{{"version", verified->bundle.version},
                      {"rules", rules},
                      {"waivers", verified->bundle.waivers.size()},
                      {"not_after", FormatTimestamp(verified->bundle.not_after)}});
  return 0;
}

// Writes the bundle the fleet is being served, byte for byte as it was signed: exporting signs
// nothing, records nothing and publishes nothing (`bundle publish` does).
int BundleExport(const PolicyOptions& o) {
  auto session = OpenSession(o);
  if (!session.ok()) return Fail(session.status());
  auto version = session->store->LatestBundleVersion();
  if (!version.ok()) return Fail(version.status());
  if (*version == 0) {
    return Fail(Status::NotFound("no bundle has been published yet; `appban policy bundle publish` signs one"));
  }
  auto record = session->store->GetBundle(*version);
  if (!record.ok()) return Fail(record.status());
  if (o.out.empty() || o.out == "-") {
    std::cout << record->envelope << "\n";
    return 0;
  }
  Status written = WriteFileAtomically(o.out, record->envelope, 0644);
  if (!written.ok()) return Fail(written);
  std::cerr << "wrote " << o.out << " (bundle version " << record->version << ", issued "
            << FormatTimestamp(record->issued_at) << ")\n";
  return 0;
}

Result<std::vector<policy::PublicKey>> LoadKeys(const std::vector<std::string>& paths) {
  std::vector<policy::PublicKey> keys;
  for (const auto& path : paths) {
    APPBAN_ASSIGN_OR_RETURN(policy::PublicKey key, policy::LoadPublicKeyFile(path));
    keys.push_back(std::move(key));
  }
  return keys;
}

Result<policy::VerifiedBundle> ReadVerified(const PolicyOptions& o) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(o.file, policy::kPolicyLimits.max_bundle_bytes));
  policy::VerifyOptions verify;
  APPBAN_ASSIGN_OR_RETURN(verify.trusted_keys, LoadKeys(o.keys));
  APPBAN_ASSIGN_OR_RETURN(verify.now, NowOrOverride(o.now));
  if (o.held_version >= 0) verify.held_version = o.held_version;
  return policy::VerifyBundle(text, verify);
}

int BundleVerify(const PolicyOptions& o) {
  auto verified = ReadVerified(o);
  if (!verified.ok()) {
    if (o.json)
      PrintJson(Json{
          {"ok", false}, {"code", StatusCodeName(verified.status().code())}, {"error", verified.status().message()}});
    std::cerr << "appban: bundle rejected: " << verified.status().ToString() << "\n";
    return 1;
  }
  const policy::Bundle& b = verified->bundle;
  if (o.json) {
    PrintJson(Json{{"ok", true},
                   {"version", b.version},
                   {"issued_at", FormatTimestamp(b.issued_at)},
                   {"not_after", FormatTimestamp(b.not_after)},
                   {"rules_hash", b.rules_hash},
                   {"key_id", verified->key_id},
                   {"rules", b.rules.size()},
                   {"waivers", b.waivers.size()}});
    return 0;
  }
  std::cout << "bundle OK: version " << b.version << ", " << b.rules.size() << " rule(s), " << b.waivers.size()
            << " waiver(s), issued " << FormatTimestamp(b.issued_at) << ", valid until " << FormatTimestamp(b.not_after)
            << "\n  rules hash " << b.rules_hash << "\n  signed by  " << verified->key_id << "\n";
  for (const auto& rule : b.rules)
    std::cout << "  rule " << rule.id << " (" << policy::ActionName(rule.action) << ")\n";
  return 0;
}

int Evaluate(const PolicyOptions& o) {
  auto verified = ReadVerified(o);
  if (!verified.ok()) return Fail(verified.status(), "bundle rejected");
  auto text = ReadFileToString(o.inventory, policy::kPolicyLimits.max_inventory_bytes);
  if (!text.ok()) return Fail(text.status());
  auto json = ParseJsonBounded(*text, policy::kPolicyLimits.max_inventory_bytes, policy::kPolicyLimits.max_json_depth,
                               o.inventory);
  if (!json.ok()) return Fail(json.status());
  auto inventory = policy::InventoryFromJson(*json);
  if (!inventory.ok()) return Fail(inventory.status(), o.inventory);
  auto index = policy::PolicyIndex::Build(verified->bundle);
  if (!index.ok()) return Fail(index.status());
  auto now = NowOrOverride(o.now);
  if (!now.ok()) return Fail(now.status());
  auto decisions = index->EvaluateAll(inventory->apps, inventory->device, *now);
  if (o.json) {
    PrintJson(Json{{"device", inventory->device.device_id},
                   {"policy_version", verified->bundle.version},
                   {"rules_hash", verified->bundle.rules_hash},
                   {"decisions", policy::DecisionsToJson(inventory->apps, decisions)}});
    return 0;
  }
  for (size_t i = 0; i < decisions.size(); ++i) {
    const auto& d = decisions[i];
    std::cout << policy::PlatformName(inventory->apps[i].platform) << ":" << inventory->apps[i].id << "  "
              << policy::VerdictName(d.verdict);
    if (d.waived_until) std::cout << " " << FormatTimestamp(*d.waived_until) << " (waiver " << d.waiver_id << ")";
    if (!d.rule_id.empty()) std::cout << "  rule " << d.rule_id << "  via " << d.matched_by;
    std::cout << "\n";
  }
  return 0;
}

// Builds the `policy` subcommands over one shared PolicyOptions: every subcommand's callback
// sets `action` to run its handler with the parsed options.
class PolicyCommandBuilder {
 public:
  PolicyCommandBuilder(std::shared_ptr<PolicyOptions> options, CommandAction* action)
      : o_(std::move(options)), action_(action) {}

  // policy rules add|list|show|approve|publish|revoke
  void AddRules(CLI::App* policy) const {
    CLI::App* rules = policy->add_subcommand("rules", "Propose, approve, publish and revoke ban rules");
    rules->require_subcommand(1);
    rules->fallthrough();
    CLI::App* add = rules->add_subcommand("add", "Propose a new rule (draft)");
    add->add_option("--id", o_->id, "Rule id")->required();
    add->add_option("--title", o_->title, "Title")->required();
    add->add_option("--target", o_->targets,
                    "KIND:VALUE; KIND is android, ios, deb, flatpak, snap, android-signer, apple-team or vendor")
        ->required();
    add->add_option("--action", o_->action, "One of remove (default), block or report");
    add->add_option("--scope", o_->scope, "Device group the rule applies to (repeatable; default all devices)");
    add->add_option("--effective", o_->effective, "Effective date (YYYY-MM-DD or RFC 3339 UTC)");
    add->add_option("--rationale", o_->rationale, "Why");
    add->add_option("--authority", o_->authority, "Who decided");
    add->add_option("--instrument", o_->instrument, "Legal instrument");
    add->add_option("--reference", o_->references, "Reference URL (repeatable)");
    add->add_option("--assessment", o_->assessments, "Linked assessment: APK_SHA256[=REPORT] (repeatable)");
    add->add_option("--note", o_->note, "Note recorded with the proposal");
    Bind(add, RulesAdd);
    CLI::App* list = rules->add_subcommand("list", "List rules");
    JsonFlag(list);
    Bind(list, RulesList);
    CLI::App* show = rules->add_subcommand("show", "Show one rule with its history");
    show->add_option("id", o_->id, "Rule id")->required();
    JsonFlag(show);
    Bind(show, RulesShow);
    for (const char* verb : {"approve", "publish", "revoke"}) {
      CLI::App* cmd =
          rules->add_subcommand(verb, std::string(verb) == "approve"   ? "Approve a draft (not by its proposer)"
                                      : std::string(verb) == "publish" ? "Publish an approved rule"
                                                                       : "Revoke a rule");
      cmd->add_option("id", o_->id, "Rule id")->required();
      if (std::string(verb) == "revoke") {
        cmd->add_option("--reason", o_->reason, "Why")->required();
      } else {
        cmd->add_option("--note", o_->note, "Note recorded with the transition");
      }
      std::string verb_copy = verb;
      cmd->fallthrough();
      cmd->callback([action = action_, o = o_, verb_copy] {
        o->command = "rules " + verb_copy;
        *action = [o, verb_copy] { return RulesTransition(*o, verb_copy); };
      });
    }
  }

  // policy waivers add|list|revoke
  void AddWaivers(CLI::App* policy) const {
    CLI::App* waivers = policy->add_subcommand("waivers", "Exempt a device or group from a rule until an expiry");
    waivers->require_subcommand(1);
    waivers->fallthrough();
    CLI::App* wadd = waivers->add_subcommand("add", "Grant a waiver (the acting user approves it)");
    wadd->add_option("--id", o_->id, "Waiver id")->required();
    wadd->add_option("--rule", o_->rule, "Rule id")->required();
    wadd->add_option("--device", o_->device, "Device id");
    wadd->add_option("--group", o_->group, "Group name");
    wadd->add_option("--justification", o_->justification, "Why")->required();
    wadd->add_option("--expires", o_->expires, "Expiry (YYYY-MM-DD or RFC 3339 UTC)")->required();
    wadd->add_option("--requested-by", o_->requested_by, "Who asked for it (must differ from the approver)");
    Bind(wadd, WaiversAdd);
    CLI::App* wlist = waivers->add_subcommand("list", "List waivers");
    JsonFlag(wlist);
    Bind(wlist, WaiversList);
    CLI::App* wrevoke = waivers->add_subcommand("revoke", "Revoke a waiver");
    wrevoke->add_option("id", o_->id, "Waiver id")->required();
    wrevoke->add_option("--reason", o_->reason, "Why")->required();
    Bind(wrevoke, WaiversRevoke);
  }

  // policy groups add|add-devices|remove|list
  void AddGroups(CLI::App* policy) const {
    CLI::App* groups = policy->add_subcommand("groups", "Device groups");
    groups->require_subcommand(1);
    groups->fallthrough();
    CLI::App* gadd = groups->add_subcommand("add", "Create a group");
    gadd->add_option("name", o_->name, "Group name")->required();
    gadd->add_option("--description", o_->description, "Description");
    gadd->add_option("--device", o_->devices, "Member device id (repeatable)");
    Bind(gadd, GroupsAdd);
    CLI::App* gdev = groups->add_subcommand("add-devices", "Add devices to a group");
    gdev->add_option("name", o_->name, "Group name")->required();
    gdev->add_option("devices", o_->devices, "Device ids")->required();
    Bind(gdev, GroupsAddDevices);
    CLI::App* gremove = groups->add_subcommand("remove", "Delete a group no live rule is scoped to");
    gremove->add_option("name", o_->name, "Group name")->required();
    Bind(gremove, GroupsRemove);
    CLI::App* glist = groups->add_subcommand("list", "List groups");
    JsonFlag(glist);
    Bind(glist, GroupsList);
  }

  // policy vendors add|list
  void AddVendors(CLI::App* policy) const {
    CLI::App* vendors = policy->add_subcommand("vendors", "Vendor records (what a vendor: target expands to)");
    vendors->require_subcommand(1);
    vendors->fallthrough();
    CLI::App* vadd = vendors->add_subcommand("add", "Create a vendor or add identifiers to it");
    vadd->add_option("name", o_->name, "Vendor name")->required();
    vadd->add_option("--country", o_->country, "ISO 3166 country code");
    vadd->add_option("--target", o_->targets, "KIND:VALUE identifier or signer (repeatable)");
    vadd->add_option("--note", o_->note, "Why (recorded; shown to approvers when the merge widens a rule in force)");
    Bind(vadd, VendorsAdd);
    CLI::App* vlist = vendors->add_subcommand("list", "List vendors");
    JsonFlag(vlist);
    Bind(vlist, VendorsList);
  }

  // policy changes list|approve|withdraw (through the admin API)
  void AddChanges(CLI::App* policy) const {
    CLI::App* changes =
        policy->add_subcommand("changes", "Pending changes that wait for the quorum (through the admin API)");
    changes->require_subcommand(1);
    changes->fallthrough();
    CLI::App* list = changes->add_subcommand("list", "List changes, pending and closed");
    JsonFlag(list);
    Bind(list, ChangesList);
    for (const char* verb : {"approve", "withdraw"}) {
      CLI::App* cmd = changes->add_subcommand(
          verb, std::string(verb) == "approve" ? "Agree to a change (not its proposer); the last approval applies it"
                                               : "Withdraw a change you proposed");
      cmd->add_option("id", o_->id, "Change id")->required();
      if (std::string(verb) == "approve") cmd->add_option("--note", o_->note, "Note recorded with the approval");
      std::string verb_copy = verb;
      cmd->fallthrough();
      cmd->callback([action = action_, o = o_, verb_copy] {
        o->command = "changes " + verb_copy;
        *action = [o, verb_copy] { return ChangesDecide(*o, verb_copy); };
      });
    }
  }

  // policy keys init|show
  void AddKeys(CLI::App* policy) const {
    CLI::App* keys = policy->add_subcommand("keys", "The Ed25519 policy signing key");
    keys->require_subcommand(1);
    keys->fallthrough();
    CLI::App* kinit = keys->add_subcommand("init", "Create the policy key (DATA/keys, private key mode 0600)");
    kinit->add_flag("--rotate", o_->rotate, "Replace the active key with a new one (see docs/policy.md)");
    Bind(kinit, KeysInit);
    CLI::App* kshow = keys->add_subcommand("show", "Show the active key id and public key");
    JsonFlag(kshow);
    Bind(kshow, KeysShow);
  }

  // policy bundle publish|export|verify
  void AddBundle(CLI::App* policy) const {
    CLI::App* bundle = policy->add_subcommand("bundle", "Publish, export and verify signed policy bundles");
    bundle->require_subcommand(1);
    bundle->fallthrough();
    CLI::App* bpublish = bundle->add_subcommand(
        "publish", "Sign the published rules and active waivers into the next bundle version and serve it to devices");
    bpublish->add_option("--validity-days", o_->validity_days,
                         "Days until the bundle's not_after (default: the server's policy.bundle_validity_days; "
                         "30 with --break-glass)");
    Bind(bpublish, BundlePublish);
    CLI::App* bexport = bundle->add_subcommand(
        "export", "Write the bundle devices are being served, as signed (publishes nothing, records nothing)");
    bexport->add_option("-o,--out", o_->out, "Output file (default: stdout)");
    Bind(bexport, BundleExport);
    CLI::App* bverify = bundle->add_subcommand("verify", "Verify a bundle's signature, version and validity");
    bverify->add_option("file", o_->file, "Bundle file")->required();
    bverify->add_option("--key", o_->keys, "Trusted public key file (PEM; repeatable)")->required();
    bverify->add_option("--held-version", o_->held_version, "Refuse versions older than this (rollback)");
    bverify->add_option("--now", o_->now, "Evaluate validity at this time instead of now");
    JsonFlag(bverify);
    Bind(bverify, BundleVerify);
  }

  // policy evaluate
  void AddEvaluate(CLI::App* policy) const {
    CLI::App* evaluate =
        policy->add_subcommand("evaluate", "Decide, per installed app, what a verified bundle requires");
    evaluate->add_option("--bundle", o_->file, "Bundle file")->required();
    evaluate->add_option("--key", o_->keys, "Trusted public key file (repeatable)")->required();
    evaluate->add_option("--inventory", o_->inventory, "Inventory JSON {device, groups, apps:[{platform,id,...}]}")
        ->required();
    evaluate->add_option("--now", o_->now, "Evaluate at this time instead of now");
    JsonFlag(evaluate);
    Bind(evaluate, Evaluate);
  }

 private:
  void JsonFlag(CLI::App* cmd) const { cmd->add_flag("--json", o_->json, "Print JSON"); }
  // fallthrough: options of `policy` itself (--data-dir, --user) may follow the subcommand's name.
  void Bind(CLI::App* cmd, int (*run)(const PolicyOptions&)) const {
    cmd->fallthrough();
    cmd->callback([action = action_, o = o_, run, cmd] {
      o->command = cmd->get_parent()->get_name() + " " + cmd->get_name();
      *action = [o, run] { return run(*o); };
    });
  }

  std::shared_ptr<PolicyOptions> o_;
  CommandAction* action_;
};

}  // namespace

void AddPolicyCommand(CLI::App& app, CommandAction* action) {
  auto o = std::make_shared<PolicyOptions>();
  CLI::App* policy =
      app.add_subcommand("policy", "Ban rules, waivers, groups, vendors, keys and signed policy bundles");
  policy->require_subcommand(1);
  AddDataDirOption(policy, &o->data.data_dir, "Data directory (default: $APPBAN_DATA, else ./appban-data)");
  policy->add_option("--user", o->data.user,
                     "Acting user for --break-glass and local set-up, recorded in the audit log (default: "
                     "$APPBAN_USER); through the server the signed-in person acts");
  policy->add_flag("--break-glass", o->data.break_glass,
                   "Decide on the host's database while the server is down, recorded as break-glass: revoking a "
                   "published rule, waivers and key rotation are only proposed (signed-in people approve them), "
                   "approvals are refused. Without it (and without --server or appban login) decisions are refused");
  AddServerOptions(policy, &o->server);
  PolicyCommandBuilder builder(o, action);
  builder.AddRules(policy);
  builder.AddWaivers(policy);
  builder.AddGroups(policy);
  builder.AddVendors(policy);
  builder.AddChanges(policy);
  builder.AddKeys(policy);
  builder.AddBundle(policy);
  builder.AddEvaluate(policy);
}

}  // namespace appban::cli
