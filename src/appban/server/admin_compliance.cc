// Admin API: compliance views of the fleet, of one rule and of one device, from the stored rule
// states (compliance.h does the counting).
#include "appban/server/admin_handlers.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>

#include "appban/decide/admin.h"
#include "appban/policy/model.h"
#include "appban/server/config.h"
#include "appban/server/metrics.h"
#include "appban/verify/compliance.h"

namespace appban::server::admin {

namespace {

using verify::ClassifyDeviceRule;
using verify::ComplianceDevice;
using verify::ComplianceParams;
using verify::ComplianceRule;
using verify::DeviceRuleStatus;
using verify::DeviceRuleStatusName;
using verify::FleetCompliance;
using verify::FleetMembership;
using verify::FleetTotals;
using verify::PublishedBundle;
using verify::RuleCompliance;
using verify::SummarizeRule;
using verify::TimeToCompliance;
using verify::WaiverLookup;

struct ComplianceInputs {
  const PublishedBundle* bundle = nullptr;
  std::vector<ComplianceRule> rules;
  ComplianceParams params;
};

ComplianceInputs LoadComplianceInputs(const WorkerContext& context) {
  ComplianceInputs inputs;
  inputs.params.now = context.clock ? context.clock() : decide::SystemClockNow();
  inputs.params.stale_after_seconds = ConfigOf(context).StaleAfterSeconds();
  if (!context.latest_bundle) return inputs;
  const PublishedBundle& latest = context.latest_bundle();
  if (latest.version == 0 || !latest.bundle) return inputs;
  inputs.bundle = &latest;
  inputs.rules = verify::ComplianceRulesOf(latest);
  return inputs;
}

// The fleet's membership, read page by page so only one page of store::Device is held at a time
// (100,000 full Device records would be tens of megabytes; the membership keeps ids and groups).
// Keyset pages (id > the last id read): an OFFSET page makes the database step over every row
// before it again, so the ten pages of a 100,000-device fleet read 550,000 rows instead of 100,000.
Result<FleetMembership> LoadMembership(const WorkerContext& context) {
  FleetMembership fleet;
  constexpr size_t kPage = 10000;
  std::string after;
  while (true) {
    APPBAN_ASSIGN_OR_RETURN(auto page, context.fleet->ListDevicesAfter(after, kPage));
    fleet.Add(page);
    if (page.size() < kPage) break;
    after = page.back().id;
  }
  APPBAN_ASSIGN_OR_RETURN(auto groups, context.store->ListGroups());
  fleet.Finish(groups);
  return fleet;
}

Json TimeJson(const TimeToCompliance& time) {
  auto optional = [](const std::optional<int64_t>& v) { return v ? Json(*v) : Json(nullptr); };
  Json curve = Json::array();
  for (const auto& point : time.curve) curve.push_back(Json{{"seconds", point.seconds}, {"devices", point.devices}});
  return Json{{"samples", time.samples},
              {"curve", std::move(curve)},
              {"median_seconds", optional(time.median_seconds)},
              {"p95_seconds", optional(time.p95_seconds)},
              {"max_seconds", optional(time.max_seconds)},
              {"method", "nearest-rank"}};
}

Json RuleComplianceJson(const RuleCompliance& rule) {
  return Json{{"rule_id", rule.rule.id},
              {"action", policy::ActionName(rule.rule.action)},
              {"scope_groups", rule.rule.scope_groups},
              {"first_version", rule.rule.first_version},
              {"first_published_at", FormatTimestamp(rule.rule.first_published_at)},
              {"targeted", rule.targeted},
              {"compliant", rule.compliant},
              {"remediated", rule.remediated},
              {"violating", rule.violating},
              {"waived", rule.waived},
              {"mismatch", rule.mismatch},
              {"cannot_enforce", rule.cannot_enforce},
              {"publisher_targets", rule.rule.publisher_targets},
              {"pending", rule.pending},
              {"stale", rule.stale},
              {"not_applicable", rule.not_applicable},
              {"time_to_compliance", TimeJson(rule.time_to_compliance)}};
}

Json ComplianceHeader(const ComplianceInputs& inputs) {
  return Json{{"bundle_version", inputs.bundle ? inputs.bundle->version : 0},
              {"generated_at", FormatTimestamp(inputs.params.now)},
              {"stale_after_seconds", inputs.params.stale_after_seconds}};
}

const std::vector<policy::Waiver>& BundleWaivers(const ComplianceInputs& inputs) {
  static const std::vector<policy::Waiver> kNone;
  return inputs.bundle ? inputs.bundle->bundle->waivers : kNone;
}

// The fleet's compliance computed now: the body of GET /v1/admin/compliance, and the worker's
// compliance metrics set from it.
Result<Json> ComputeFleetBody(const WorkerContext& context, const ComplianceInputs& inputs) {
  APPBAN_ASSIGN_OR_RETURN(FleetMembership fleet, LoadMembership(context));
  WaiverLookup waivers(BundleWaivers(inputs));
  // The stored states scanned device by device, none of them held (compliance.h).
  APPBAN_ASSIGN_OR_RETURN(FleetCompliance summary,
                          verify::SummarizeStoredFleet(*context.fleet, fleet, inputs.rules, waivers, inputs.params));
  if (context.metrics != nullptr) {
    // appban_compliance_devices{state}: pending here excludes the stale devices counted apart.
    const FleetTotals& totals = summary.totals;
    auto count = [](int64_t value) { return static_cast<uint64_t>(std::max<int64_t>(0, value)); };
    std::array<uint64_t, kDeviceComplianceCount> by_state{};
    by_state[static_cast<size_t>(DeviceCompliance::kCompliant)] = count(totals.fully_compliant);
    by_state[static_cast<size_t>(DeviceCompliance::kViolating)] = count(totals.violating_any);
    by_state[static_cast<size_t>(DeviceCompliance::kPending)] = count(totals.pending_any - totals.stale_any);
    by_state[static_cast<size_t>(DeviceCompliance::kStale)] = count(totals.stale_any);
    by_state[static_cast<size_t>(DeviceCompliance::kMismatch)] = count(totals.mismatch_any);
    by_state[static_cast<size_t>(DeviceCompliance::kCannotEnforce)] = count(totals.cannot_enforce_any);
    context.metrics->SetComplianceCounts(by_state);
  }
  Json body = ComplianceHeader(inputs);
  Json rules = Json::array();
  for (const auto& rule : summary.rules) rules.push_back(RuleComplianceJson(rule));
  body["rules"] = rules;
  body["totals"] = Json{{"devices", summary.totals.devices},
                        {"fully_compliant", summary.totals.fully_compliant},
                        {"mismatch_any", summary.totals.mismatch_any},
                        {"violating_any", summary.totals.violating_any},
                        {"cannot_enforce_any", summary.totals.cannot_enforce_any},
                        {"pending_any", summary.totals.pending_any},
                        {"stale_any", summary.totals.stale_any},
                        {"untargeted", summary.totals.untargeted}};
  return body;
}

// The summary the server keeps (docs/console.md, "How fresh the overview is"): the last body
// computed, for callers that accept numbers up to a given age. In server_settings, so every worker
// and node reads the one another computed.
constexpr const char* kStoredSummaryKey = "compliance.fleet_summary";

struct StoredSummary {
  int64_t bundle_version = 0;
  UnixSeconds computed_at = 0;
  Json body;
};

int64_t BundleVersion(const ComplianceInputs& inputs) { return inputs.bundle ? inputs.bundle->version : 0; }

// The stored summary's age when it may stand for now: computed for the bundle devices enforce now,
// and never in the future (a clock set back would make its age negative).
std::optional<int64_t> UsableAge(const std::optional<StoredSummary>& stored, const ComplianceInputs& inputs) {
  if (!stored || stored->bundle_version != BundleVersion(inputs) || stored->computed_at > inputs.params.now) {
    return std::nullopt;
  }
  return inputs.params.now - stored->computed_at;
}

// Nullopt when none is stored or what is stored does not read as one (then it is computed again).
std::optional<StoredSummary> LoadStoredSummary(store::FleetStore& fleet) {
  auto text = fleet.GetSetting(kStoredSummaryKey);
  if (!text.ok() || !text->has_value()) return std::nullopt;
  Json stored = Json::parse(**text, nullptr, false);
  if (!stored.is_object() || !stored.contains("body") || !stored["body"].is_object() ||
      !stored.value("bundle_version", Json()).is_number_integer() ||
      !stored.value("computed_at", Json()).is_number_integer()) {
    return std::nullopt;
  }
  return StoredSummary{stored["bundle_version"].get<int64_t>(), stored["computed_at"].get<int64_t>(),
                       std::move(stored["body"])};
}

// Best effort: a summary that cannot be kept (the database busy, a bundle of thousands of rules
// past the setting's size limit) only means the next reader computes it again.
void KeepSummary(store::FleetStore& fleet, const ComplianceInputs& inputs, const Json& body) {
  Json stored{{"bundle_version", BundleVersion(inputs)}, {"computed_at", inputs.params.now}, {"body", body}};
  if (Status kept = fleet.PutSetting(kStoredSummaryKey, stored.dump()); !kept.ok()) {
    spdlog::warn("the compliance summary was computed but not kept: {}", kept.ToString());
  }
}

}  // namespace

Status RefreshStoredCompliance(const WorkerContext& context, int64_t older_than_seconds) {
  ComplianceInputs inputs = LoadComplianceInputs(context);
  std::optional<int64_t> age = UsableAge(LoadStoredSummary(*context.fleet), inputs);
  if (age && *age < older_than_seconds) return Status::Ok();  // another worker or node computed it meanwhile
  APPBAN_ASSIGN_OR_RETURN(Json body, ComputeFleetBody(context, inputs));
  KeepSummary(*context.fleet, inputs, body);
  return Status::Ok();
}

HttpResponse FleetComplianceView(Call& call) {
  auto max_age = QueryInteger(call.request, "max_age_seconds", 0, kAdminLimits.max_summary_age_seconds);
  if (!max_age.ok()) return ErrorFrom(max_age.status());
  ComplianceInputs inputs = LoadComplianceInputs(call.context);
  if (max_age->has_value()) {
    std::optional<StoredSummary> stored = LoadStoredSummary(*call.context.fleet);
    if (std::optional<int64_t> age = UsableAge(stored, inputs); age && *age <= **max_age) {
      Json body = std::move(stored->body);
      body["age_seconds"] = *age;
      body["from_stored_summary"] = true;
      return JsonResponse(200, body);
    }
  }
  auto body = ComputeFleetBody(call.context, inputs);
  if (!body.ok()) return ErrorFrom(body.status());
  KeepSummary(*call.context.fleet, inputs, *body);
  (*body)["age_seconds"] = 0;
  (*body)["from_stored_summary"] = false;
  return JsonResponse(200, *body);
}

HttpResponse RuleComplianceView(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "rule id"); !s.ok()) return ErrorFrom(s);
  auto limit = QueryInteger(call.request, "limit", 0, kAdminLimits.max_compliance_ids);
  if (!limit.ok()) return ErrorFrom(limit.status());
  ComplianceInputs inputs = LoadComplianceInputs(call.context);
  auto rule =
      std::find_if(inputs.rules.begin(), inputs.rules.end(), [&](const ComplianceRule& r) { return r.id == id; });
  if (rule == inputs.rules.end()) {
    return ErrorResponse(404, "not_found",
                         "rule " + id + " is not in the latest bundle (version " +
                             std::to_string(inputs.bundle ? inputs.bundle->version : 0) + ")");
  }
  auto fleet = LoadMembership(call.context);
  if (!fleet.ok()) return ErrorFrom(fleet.status());
  auto rows = call.context.fleet->ListRuleStates(id);
  if (!rows.ok()) return ErrorFrom(rows.status());
  WaiverLookup waivers(BundleWaivers(inputs));
  RuleCompliance summary = SummarizeRule(*fleet, *rule, *rows, waivers, inputs.params,
                                         static_cast<size_t>(limit->value_or(kAdminLimits.default_compliance_ids)));
  Json body = ComplianceHeader(inputs);
  body["rule"] = RuleComplianceJson(summary);
  body["violating_devices"] = summary.violating_devices;
  body["mismatch_devices"] = summary.mismatch_devices;
  body["cannot_enforce_devices"] = summary.cannot_enforce_devices;
  body["pending_devices"] = summary.pending_devices;
  body["lists_truncated"] = summary.lists_truncated;
  return JsonResponse(200, body);
}

HttpResponse DeviceComplianceView(Call& call) {
  const std::string& id = call.params[0];
  if (Status s = CheckPathIdentifier(id, "device id"); !s.ok()) return ErrorFrom(s);
  auto device = call.context.fleet->GetDevice(id);
  if (!device.ok()) return ErrorFrom(device.status());
  device->inventory_json.clear();
  auto groups = call.context.store->ListGroups();
  if (!groups.ok()) return ErrorFrom(groups.status());
  FleetMembership fleet = FleetMembership::Build({*device}, *groups);
  const ComplianceDevice& member = fleet.devices().front();
  auto rows = call.context.fleet->ListDeviceRuleStates(id);
  if (!rows.ok()) return ErrorFrom(rows.status());
  std::map<std::string, const store::DeviceRuleState*> by_rule;
  for (const auto& row : *rows) by_rule[row.rule_id] = &row;

  ComplianceInputs inputs = LoadComplianceInputs(call.context);
  WaiverLookup waivers(BundleWaivers(inputs));
  Json rules = Json::array();
  for (const auto& rule : inputs.rules) {
    auto it = by_rule.find(rule.id);
    const store::DeviceRuleState* state = it == by_rule.end() ? nullptr : it->second;
    DeviceRuleStatus status = ClassifyDeviceRule(member, rule, state, waivers, inputs.params);
    Json entry{
        {"rule_id", rule.id}, {"status", DeviceRuleStatusName(status)}, {"action", policy::ActionName(rule.action)}};
    entry["since"] = state ? Json(FormatTimestamp(state->since)) : Json(nullptr);
    entry["compliant_at"] = state ? OptionalTime(state->compliant_at) : Json(nullptr);
    bool counts = (status == DeviceRuleStatus::kCompliant || status == DeviceRuleStatus::kRemediated) && state &&
                  state->compliant_at;
    entry["time_to_compliance_seconds"] =
        counts ? Json(verify::SecondsToCompliance(member, rule, *state->compliant_at)) : Json(nullptr);
    rules.push_back(std::move(entry));
  }
  Json body = ComplianceHeader(inputs);
  body["device_id"] = id;
  body["groups"] = member.groups;
  body["last_seen"] = TimeOrNull(member.last_seen);
  body["revoked"] = member.revoked;
  body["rules_hash_mismatch"] = RulesHashMismatchJson(*device);
  body["source"] = device->source;
  body["platform"] = device->platform;
  body["cannot_enforce"] = device->cannot_enforce.empty() ? Json(nullptr) : Json(device->cannot_enforce);
  body["rules"] = rules;
  return JsonResponse(200, body);
}

}  // namespace appban::server::admin
