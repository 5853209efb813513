#include "appban/verify/compliance.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace appban::verify {

std::string_view DeviceRuleStatusName(DeviceRuleStatus status) {
  switch (status) {
    case DeviceRuleStatus::kNotTargeted:
      return "not_targeted";
    case DeviceRuleStatus::kNotApplicable:
      return "not_applicable";
    case DeviceRuleStatus::kWaived:
      return "waived";
    case DeviceRuleStatus::kMismatch:
      return "mismatch";
    case DeviceRuleStatus::kViolating:
      return "violating";
    case DeviceRuleStatus::kCannotEnforce:
      return "cannot_enforce";
    case DeviceRuleStatus::kCompliant:
      return "compliant";
    case DeviceRuleStatus::kRemediated:
      return "remediated";
    case DeviceRuleStatus::kPending:
      return "pending";
    case DeviceRuleStatus::kStale:
      return "stale";
  }
  return "unknown";
}

uint8_t PlatformFamilyOf(std::string_view platform) {
  if (platform.empty()) return kAllFamilies;
  if (platform == "linux") return kFamilyLinux;
  if (platform == "android") return kFamilyAndroid;
  if (platform == "ios" || platform == "ipados") return kFamilyApple;
  return 0;
}

uint8_t PlatformFamilyOf(policy::TargetKind kind) {
  switch (kind) {
    case policy::TargetKind::kDebPackage:
    case policy::TargetKind::kFlatpakApp:
    case policy::TargetKind::kSnapName:
      return kFamilyLinux;
    case policy::TargetKind::kAndroidPackage:
    case policy::TargetKind::kAndroidSigner:
      return kFamilyAndroid;
    case policy::TargetKind::kIosBundle:
    case policy::TargetKind::kAppleTeam:
      return kFamilyApple;
    case policy::TargetKind::kVendor:
      return 0;
  }
  return 0;
}

FleetMembership FleetMembership::Build(const std::vector<store::Device>& devices,
                                       const std::vector<policy::Group>& groups) {
  FleetMembership fleet;
  fleet.Add(devices);
  fleet.Finish(groups);
  return fleet;
}

void FleetMembership::Add(const std::vector<store::Device>& devices) {
  devices_.reserve(devices_.size() + devices.size());
  for (const auto& device : devices) {
    if (index_.count(device.id)) continue;  // the store lists each id once; be safe anyway
    ComplianceDevice entry;
    entry.id = device.id;
    entry.family = PlatformFamilyOf(device.platform);
    if (!device.group.empty()) entry.groups.push_back(device.group);
    entry.last_seen = device.last_seen;
    entry.enrolled_at = device.enrolled_at;
    entry.revoked = device.revoked_at.has_value();
    entry.rules_hash_mismatch = device.rules_hash_mismatch.has_value();
    entry.mdm = device.IsMdm();
    entry.cannot_enforce = !device.cannot_enforce.empty();
    for (const auto& group : device.mdm_groups) entry.groups.push_back(group);
    if (!entry.revoked) ++active_devices_;
    index_.emplace(entry.id, devices_.size());
    devices_.push_back(std::move(entry));
  }
}

void FleetMembership::Finish(const std::vector<policy::Group>& groups) {
  for (const auto& group : groups) {
    for (const auto& member : group.devices) {
      auto it = index_.find(member);
      if (it != index_.end()) devices_[it->second].groups.push_back(group.name);
    }
  }
  for (auto& device : devices_) {
    std::sort(device.groups.begin(), device.groups.end());
    device.groups.erase(std::unique(device.groups.begin(), device.groups.end()), device.groups.end());
  }
}

std::optional<size_t> FleetMembership::Find(std::string_view device_id) const {
  auto it = index_.find(device_id);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

WaiverLookup::WaiverLookup(const std::vector<policy::Waiver>& waivers) {
  for (const auto& waiver : waivers) by_rule_[waiver.rule_id].push_back(&waiver);
}

const WaiverLookup::List* WaiverLookup::ForRule(std::string_view rule_id) const {
  auto it = by_rule_.find(rule_id);
  return it == by_rule_.end() ? nullptr : &it->second;
}

bool WaiverLookup::Exempts(std::string_view rule_id, const ComplianceDevice& device, UnixSeconds now) const {
  return Exempts(ForRule(rule_id), device, now);
}

bool WaiverLookup::Exempts(const List* waivers, const ComplianceDevice& device, UnixSeconds now) {
  if (waivers == nullptr) return false;
  for (const policy::Waiver* waiver : *waivers) {
    if (!waiver->ActiveAt(now)) continue;
    if (waiver->subject_kind == policy::WaiverSubject::kDevice) {
      if (waiver->subject == device.id) return true;
    } else if (std::binary_search(device.groups.begin(), device.groups.end(), waiver->subject)) {
      return true;
    }
  }
  return false;
}

bool InScope(const ComplianceDevice& device, const ComplianceRule& rule) {
  if (rule.scope_groups.empty()) return true;
  for (const auto& group : rule.scope_groups) {
    if (std::binary_search(device.groups.begin(), device.groups.end(), group)) return true;
  }
  return false;
}

DeviceRuleStatus ClassifyDeviceRule(const ComplianceDevice& device, const ComplianceRule& rule,
                                    const store::DeviceRuleState* state, const WaiverLookup& waivers,
                                    const ComplianceParams& params) {
  return ClassifyDeviceRule(device, rule, state, waivers.ForRule(rule.id), params);
}

DeviceRuleStatus ClassifyDeviceRule(const ComplianceDevice& device, const ComplianceRule& rule,
                                    const store::DeviceRuleState* state, const WaiverLookup::List* rule_waivers,
                                    const ComplianceParams& params) {
  if (device.revoked || !InScope(device, rule)) return DeviceRuleStatus::kNotTargeted;
  if ((device.family & rule.families) == 0) return DeviceRuleStatus::kNotApplicable;
  if (WaiverLookup::Exempts(rule_waivers, device, params.now)) return DeviceRuleStatus::kWaived;
  if (state != nullptr && state->state == store::ComplianceState::kWaived) return DeviceRuleStatus::kWaived;
  // Before the stored state: that was evaluated from what the device claims, and a device that
  // does not enforce the version it claims has earned no belief in the rest.
  if (device.rules_hash_mismatch) return DeviceRuleStatus::kMismatch;
  if (state != nullptr && state->state == store::ComplianceState::kViolating) return DeviceRuleStatus::kViolating;
  // An app the MDM still reports is evidence (violating above); its absence proves nothing when
  // the MDM cannot enforce or cannot see what the rule names.
  if (device.mdm && (device.cannot_enforce || rule.publisher_targets)) return DeviceRuleStatus::kCannotEnforce;
  if (state != nullptr) {
    switch (state->state) {
      case store::ComplianceState::kWaived:
        return DeviceRuleStatus::kWaived;
      case store::ComplianceState::kViolating:
        return DeviceRuleStatus::kViolating;
      case store::ComplianceState::kCompliant:
        return state->had_app ? DeviceRuleStatus::kRemediated : DeviceRuleStatus::kCompliant;
    }
  }
  // Never heard from counts as stale: a device that enrolled and vanished is exactly what an
  // administrator needs to chase.
  bool heard_recently = device.last_seen > 0 && params.now - device.last_seen <= params.stale_after_seconds;
  return heard_recently ? DeviceRuleStatus::kPending : DeviceRuleStatus::kStale;
}

int64_t NearestRank(std::vector<int64_t>& seconds, int percentile) {
  size_t n = seconds.size();
  // ceil(p * n / 100) computed in integers; at least rank 1.
  size_t rank = (static_cast<size_t>(percentile) * n + 99) / 100;
  if (rank == 0) rank = 1;
  auto nth = seconds.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(seconds.begin(), nth, seconds.end());
  return *nth;
}

int64_t SecondsToCompliance(const ComplianceDevice& device, const ComplianceRule& rule, UnixSeconds compliant_at) {
  // A device that enrolled after the publish could not have received the rule before it enrolled:
  // its clock starts then, not at the publish.
  const UnixSeconds could_receive_at = std::max(rule.first_published_at, device.enrolled_at);
  return std::max<int64_t>(0, compliant_at - could_receive_at);
}

TimeToCompliance SummarizeDurations(std::vector<int64_t>& seconds) {
  TimeToCompliance summary;
  summary.samples = static_cast<int64_t>(seconds.size());
  if (seconds.empty()) return summary;
  summary.max_seconds = *std::max_element(seconds.begin(), seconds.end());
  summary.median_seconds = NearestRank(seconds, 50);
  summary.p95_seconds = NearestRank(seconds, 95);
  // One pass: count each sample in the first mark it fits under, then sum the counts up. Sorting
  // instead would cost n log n per rule on every compliance read.
  constexpr size_t kMarks = std::size(kCurveMarksSeconds);
  std::array<int64_t, kMarks> per_mark{};
  for (int64_t value : seconds) {
    auto mark = std::lower_bound(std::begin(kCurveMarksSeconds), std::end(kCurveMarksSeconds), value);
    if (mark != std::end(kCurveMarksSeconds)) ++per_mark[static_cast<size_t>(mark - std::begin(kCurveMarksSeconds))];
  }
  int64_t within = 0;
  for (size_t i = 0; i < kMarks; ++i) {
    within += per_mark[i];
    summary.curve.push_back({kCurveMarksSeconds[i], within});
    if (kCurveMarksSeconds[i] >= *summary.max_seconds) break;
  }
  return summary;
}

namespace {

// Rows of one rule laid out by device index, so classification is one pass over the fleet.
std::vector<const store::DeviceRuleState*> StatesByDevice(const FleetMembership& fleet,
                                                          const std::vector<store::DeviceRuleState>& states) {
  std::vector<const store::DeviceRuleState*> by_device(fleet.devices().size(), nullptr);
  for (const auto& state : states) {
    if (auto index = fleet.Find(state.device_id)) by_device[*index] = &state;
  }
  return by_device;
}

// Per-device flags accumulated over rules for the fleet totals.
enum DeviceFlag : uint8_t {
  kTargeted = 1,
  kViolatingAny = 2,
  kPendingAny = 4,
  kStaleAny = 8,
  kCannotEnforceAny = 16,
};

}  // namespace

// One rule's counts as its devices are classified, in any order (SummarizeRule goes rule by rule,
// FleetSummarizer device by device).
struct RuleTally {
  RuleCompliance result;
  const WaiverLookup::List* waivers = nullptr;
  size_t list_limit = 0;
  std::vector<int64_t> durations;

  RuleTally(const ComplianceRule& rule, const WaiverLookup& lookup, size_t limit)
      : waivers(lookup.ForRule(rule.id)), list_limit(limit) {
    result.rule = rule;
  }

  // Classifies one device; returns its DeviceFlag bits for the fleet totals (0: not targeted).
  uint8_t Count(const ComplianceDevice& device, const store::DeviceRuleState* state, const ComplianceParams& params) {
    const ComplianceRule& rule = result.rule;
    DeviceRuleStatus status = ClassifyDeviceRule(device, rule, state, waivers, params);
    if (status == DeviceRuleStatus::kNotTargeted) return 0;
    if (status == DeviceRuleStatus::kNotApplicable) {
      ++result.not_applicable;
      return 0;
    }
    ++result.targeted;
    uint8_t flag = kTargeted;
    switch (status) {
      case DeviceRuleStatus::kWaived:
        ++result.waived;
        break;
      case DeviceRuleStatus::kMismatch:
        ++result.mismatch;
        if (list_limit > 0) result.mismatch_devices.push_back(device.id);
        break;
      case DeviceRuleStatus::kViolating:
        ++result.violating;
        flag |= kViolatingAny;
        if (list_limit > 0) result.violating_devices.push_back(device.id);
        break;
      case DeviceRuleStatus::kCannotEnforce:
        ++result.cannot_enforce;
        flag |= kCannotEnforceAny;
        if (list_limit > 0) result.cannot_enforce_devices.push_back(device.id);
        break;
      case DeviceRuleStatus::kRemediated:
        ++result.remediated;
        [[fallthrough]];
      case DeviceRuleStatus::kCompliant:
        ++result.compliant;
        if (state != nullptr && state->compliant_at) {
          durations.push_back(SecondsToCompliance(device, rule, *state->compliant_at));
        }
        break;
      case DeviceRuleStatus::kPending:
        ++result.pending;
        flag |= kPendingAny;
        if (list_limit > 0) result.pending_devices.push_back(device.id);
        break;
      case DeviceRuleStatus::kStale:
        ++result.stale;
        flag |= kStaleAny;
        if (list_limit > 0) result.pending_devices.push_back(device.id);
        break;
      case DeviceRuleStatus::kNotTargeted:
      case DeviceRuleStatus::kNotApplicable:
        break;
    }
    return flag;
  }

  RuleCompliance Finish() {
    result.time_to_compliance = SummarizeDurations(durations);
    for (auto* list : {&result.violating_devices, &result.mismatch_devices, &result.cannot_enforce_devices,
                       &result.pending_devices}) {
      std::sort(list->begin(), list->end());
      if (list->size() > list_limit) {
        list->resize(list_limit);
        result.lists_truncated = true;
      }
    }
    return std::move(result);
  }
};

RuleCompliance SummarizeRule(const FleetMembership& fleet, const ComplianceRule& rule,
                             const std::vector<store::DeviceRuleState>& states, const WaiverLookup& waivers,
                             const ComplianceParams& params, size_t list_limit) {
  RuleTally tally(rule, waivers, list_limit);
  auto by_device = StatesByDevice(fleet, states);
  const auto& devices = fleet.devices();
  for (size_t i = 0; i < devices.size(); ++i) tally.Count(devices[i], by_device[i], params);
  return tally.Finish();
}

FleetSummarizer::FleetSummarizer(const FleetMembership& fleet, const std::vector<ComplianceRule>& rules,
                                 const WaiverLookup& waivers, const ComplianceParams& params)
    : fleet_(fleet), params_(params), flags_(fleet.devices().size(), 0), added_(fleet.devices().size(), false) {
  tallies_.reserve(rules.size());
  for (const auto& rule : rules) tallies_.emplace_back(rule, waivers, 0);
}

FleetSummarizer::~FleetSummarizer() = default;

void FleetSummarizer::AddDevice(size_t index, std::span<const store::DeviceRuleState* const> states) {
  if (index >= added_.size() || added_[index]) return;
  added_[index] = true;
  const ComplianceDevice& device = fleet_.devices()[index];
  uint8_t flags = 0;
  for (size_t r = 0; r < tallies_.size(); ++r) {
    flags |= tallies_[r].Count(device, r < states.size() ? states[r] : nullptr, params_);
  }
  flags_[index] = flags;
}

bool FleetSummarizer::Added(size_t index) const { return index < added_.size() && added_[index]; }

FleetCompliance FleetSummarizer::Finish() {
  for (size_t i = 0; i < added_.size(); ++i) AddDevice(i, {});
  FleetCompliance result;
  for (auto& tally : tallies_) result.rules.push_back(tally.Finish());
  const auto& devices = fleet_.devices();
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i].revoked) continue;
    ++result.totals.devices;
    uint8_t flag = flags_[i];
    if (!(flag & kTargeted)) {
      ++result.totals.untargeted;
    } else if (devices[i].rules_hash_mismatch) {
      ++result.totals.mismatch_any;
    } else if (flag & kViolatingAny) {
      ++result.totals.violating_any;
    } else if (flag & kCannotEnforceAny) {
      ++result.totals.cannot_enforce_any;
    } else if (flag & (kPendingAny | kStaleAny)) {
      ++result.totals.pending_any;
      if (flag & kStaleAny) ++result.totals.stale_any;
    } else {
      ++result.totals.fully_compliant;
    }
  }
  return result;
}

FleetCompliance SummarizeFleet(const FleetMembership& fleet, const std::vector<ComplianceRule>& rules,
                               const std::vector<std::vector<store::DeviceRuleState>>& states_by_rule,
                               const WaiverLookup& waivers, const ComplianceParams& params) {
  static const std::vector<store::DeviceRuleState> kNoStates;
  std::vector<std::vector<const store::DeviceRuleState*>> by_rule;
  for (size_t r = 0; r < rules.size(); ++r) {
    by_rule.push_back(StatesByDevice(fleet, r < states_by_rule.size() ? states_by_rule[r] : kNoStates));
  }
  FleetSummarizer summarizer(fleet, rules, waivers, params);
  std::vector<const store::DeviceRuleState*> states(rules.size(), nullptr);
  for (size_t i = 0; i < fleet.devices().size(); ++i) {
    for (size_t r = 0; r < rules.size(); ++r) states[r] = by_rule[r][i];
    summarizer.AddDevice(i, states);
  }
  return summarizer.Finish();
}

Result<FleetCompliance> SummarizeStoredFleet(store::FleetStore& store, const FleetMembership& fleet,
                                             const std::vector<ComplianceRule>& rules, const WaiverLookup& waivers,
                                             const ComplianceParams& params, size_t devices_per_scan) {
  std::unordered_map<std::string_view, size_t> rule_index;
  for (size_t r = 0; r < rules.size(); ++r) rule_index.emplace(rules[r].id, r);
  FleetSummarizer summarizer(fleet, rules, waivers, params);
  // One device's rows at a time: the scan passes them together, in device id order.
  std::vector<store::DeviceRuleState> scratch(rules.size());
  std::vector<const store::DeviceRuleState*> states(rules.size(), nullptr);
  std::optional<size_t> current;
  auto flush = [&] {
    if (current) summarizer.AddDevice(*current, states);
    std::fill(states.begin(), states.end(), nullptr);
    current.reset();
  };
  Status grouping = Status::Ok();
  const auto& devices = fleet.devices();
  const size_t step = std::max<size_t>(1, devices_per_scan);
  for (size_t first = 0; first < devices.size(); first += step) {
    const size_t last = std::min(devices.size(), first + step) - 1;
    APPBAN_RETURN_IF_ERROR(
        store.ScanRuleStates(devices[first].id, devices[last].id, [&](const store::RuleStateRow& row) {
          auto rule = rule_index.find(row.rule_id);
          if (rule == rule_index.end()) return;  // a rule no longer in the bundle
          if (!current || devices[*current].id != row.device_id) {
            flush();
            std::optional<size_t> index = fleet.Find(row.device_id);
            if (!index) return;  // enrolled after the fleet was read: not in these numbers
            if (summarizer.Added(*index)) {
              grouping = Status::Internal("the rule states of device " + devices[*index].id +
                                          " did not come together; compliance would count it twice");
              return;
            }
            current = index;
          }
          store::DeviceRuleState& cell = scratch[rule->second];
          cell.state = row.state;
          cell.had_app = row.had_app;
          cell.compliant_at = row.compliant_at;
          states[rule->second] = &cell;
        }));
    APPBAN_RETURN_IF_ERROR(grouping);
  }
  flush();
  return summarizer.Finish();
}

std::vector<ComplianceRule> ComplianceRulesOf(const PublishedBundle& latest) {
  std::vector<ComplianceRule> rules;
  if (latest.version == 0 || !latest.bundle) return rules;
  auto is_publisher = [](policy::TargetKind kind) {
    return kind == policy::TargetKind::kAndroidSigner || kind == policy::TargetKind::kAppleTeam;
  };
  for (const auto& rule : latest.bundle->rules) {
    ComplianceRule entry{rule.id, rule.action, rule.scope_groups, latest.version, latest.issued_at};
    if (auto it = latest.rule_first_published.find(rule.id); it != latest.rule_first_published.end()) {
      entry.first_version = it->second.first;
      entry.first_published_at = it->second.second;
    }
    entry.families = 0;
    for (const auto& target : rule.targets) {
      if (is_publisher(target.kind)) entry.publisher_targets = true;
      entry.families |= PlatformFamilyOf(target.kind);
      if (target.kind != policy::TargetKind::kVendor) continue;
      for (const auto& vendor : latest.bundle->vendors) {
        if (vendor.name != target.value) continue;
        for (const auto& identifier : vendor.identifiers) {
          if (is_publisher(identifier.kind)) entry.publisher_targets = true;
          entry.families |= PlatformFamilyOf(identifier.kind);
        }
      }
    }
    rules.push_back(std::move(entry));
  }
  return rules;
}

}  // namespace appban::verify
