#include "appban/sim/device.h"

#include <algorithm>

#include "appban/policy/rotation.h"

namespace appban::sim {

namespace {

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += id + ",";
  return out;
}

}  // namespace

BundleVerifier::BundleVerifier(std::vector<policy::PublicKey> pinned_keys) : pinned_keys_(std::move(pinned_keys)) {
  for (const auto& key : pinned_keys_) {
    enrolment_key_ids_.push_back(key.key_id);
    known_keys_.emplace(key.key_id, key);
  }
}

Result<std::shared_ptr<const VerifiedPolicy>> BundleVerifier::Verify(const std::string& envelope, UnixSeconds now) {
  return Verify(envelope, now, enrolment_key_ids_);
}

std::vector<std::string> BundleVerifier::FollowRotations(const std::vector<std::string>& pinned_key_ids,
                                                         const std::vector<std::string>& statements) {
  std::string cache_key = JoinIds(pinned_key_ids) + "|" + JoinIds(statements);
  if (auto it = rotations_cache_.find(cache_key); it != rotations_cache_.end()) return it->second;
  std::vector<policy::PublicKey> pinned;
  for (const auto& id : pinned_key_ids) {
    if (auto known = known_keys_.find(id); known != known_keys_.end()) pinned.push_back(known->second);
  }
  std::vector<std::string> result = pinned_key_ids;
  if (auto followed = policy::FollowKeyRotations(pinned, statements); followed.ok()) {
    result.clear();
    for (const auto& key : *followed) {
      known_keys_.emplace(key.key_id, key);
      result.push_back(key.key_id);
    }
  }
  rotations_cache_.emplace(std::move(cache_key), result);
  return result;
}

Result<std::shared_ptr<const VerifiedPolicy>> BundleVerifier::Verify(const std::string& envelope, UnixSeconds now,
                                                                     const std::vector<std::string>& pinned_key_ids) {
  std::string cache_key = pinned_key_ids == enrolment_key_ids_ ? envelope : envelope + "|" + JoinIds(pinned_key_ids);
  if (auto it = cache_.find(cache_key); it != cache_.end()) return it->second;
  ++full_verifications_;
  policy::VerifyOptions options;
  for (const auto& id : pinned_key_ids) {
    if (auto known = known_keys_.find(id); known != known_keys_.end()) options.trusted_keys.push_back(known->second);
  }
  options.now = now;
  Result<std::shared_ptr<const VerifiedPolicy>> outcome = [&]() -> Result<std::shared_ptr<const VerifiedPolicy>> {
    APPBAN_ASSIGN_OR_RETURN(policy::VerifiedBundle verified, policy::VerifyBundle(envelope, options));
    APPBAN_ASSIGN_OR_RETURN(policy::PolicyIndex index, policy::PolicyIndex::Build(verified.bundle));
    return std::make_shared<const VerifiedPolicy>(VerifiedPolicy{std::move(verified.bundle), std::move(index)});
  }();
  cache_.emplace(std::move(cache_key), outcome);
  return outcome;
}

SimDevice::SimDevice(DeviceIdentity identity, std::vector<AppIndex> apps, const AppCatalog& catalog)
    : identity_(std::move(identity)), apps_(std::move(apps)) {
  Rehash(catalog);
}

void SimDevice::Rehash(const AppCatalog& catalog) {
  std::vector<policy::InstalledApp> installed = catalog.Materialize(apps_);
  inventory_hash_ = protocol::InventoryHash(installed);
}

protocol::CheckinRequest SimDevice::NextCheckin(const AppCatalog& catalog) const {
  protocol::CheckinRequest request;
  request.applied_version = applied_version_;
  request.rules_hash = rules_hash_;
  request.inventory_hash = inventory_hash_;
  if (send_inventory_) request.inventory = catalog.Materialize(apps_);
  request.events = events_;
  request.agent_version = "appban-simulate/0.1.0";
  return request;
}

void SimDevice::OnCheckinAnswer(const protocol::CheckinResponse& answer) {
  std::erase_if(events_, [&](const protocol::DeviceEvent& e) { return e.seq <= answer.events_acked; });
  send_inventory_ = answer.send_inventory;
  // A device reloaded from a state file starts counting after what the server already holds, or
  // its new events would be taken for resent duplicates.
  next_seq_ = std::max(next_seq_, answer.events_acked + 1);
}

BundleOutcome SimDevice::ApplyBundle(const std::string& envelope, BundleVerifier& verifier, const AppCatalog& catalog,
                                     UnixSeconds now, const std::vector<std::string>& key_rotations) {
  if (pinned_key_ids_.empty()) pinned_key_ids_ = verifier.enrolment_key_ids();
  if (!key_rotations.empty()) pinned_key_ids_ = verifier.FollowRotations(pinned_key_ids_, key_rotations);
  BundleOutcome outcome;
  auto refuse = [&](Status why, int64_t version) {
    outcome.kind = BundleOutcome::Kind::kRefused;
    outcome.version = version;
    protocol::DeviceEvent event;
    event.seq = next_seq_++;
    event.at = now;
    event.kind = protocol::EventKind::kBundleRefused;
    event.detail = why.ToString().substr(0, protocol::kProtocolLimits.max_detail);
    events_.push_back(std::move(event));
    outcome.refusal = std::move(why);
    return outcome;
  };
  auto verified = verifier.Verify(envelope, now, pinned_key_ids_);
  if (!verified.ok()) return refuse(verified.status(), 0);
  const policy::Bundle& bundle = (*verified)->bundle;
  outcome.version = bundle.version;
  if (bundle.version <= applied_version_) return outcome;  // already enforced (or a rollback): nothing to do
  if (now >= bundle.not_after) {
    return refuse(Status::Expired("bundle version " + std::to_string(bundle.version) + " expired"), bundle.version);
  }

  policy::DeviceContext context;
  context.device_id = identity_.device_id;
  if (!identity_.group.empty()) context.groups.push_back(identity_.group);
  std::vector<AppIndex> kept;
  kept.reserve(apps_.size());
  for (AppIndex index : apps_) {
    const policy::InstalledApp& app = catalog.app(index);
    // Most apps are named by no rule: skip evaluating those (as the server does).
    if (!(*verified)->index.Mentions(app.platform, app.id, app.signer_sha256, app.team_id)) {
      kept.push_back(index);
      continue;
    }
    policy::AppDecision decision = (*verified)->index.Evaluate(app, context, now);
    if (decision.verdict != policy::Verdict::kRemove) {
      kept.push_back(index);
      continue;
    }
    protocol::DeviceEvent event;
    event.seq = next_seq_++;
    event.at = now;
    event.kind = protocol::EventKind::kRemoved;
    event.platform = std::string(policy::PlatformName(app.platform));
    event.app = app.id;
    event.rule_id = decision.rule_id;
    events_.push_back(std::move(event));
    ++outcome.removed;
  }
  if (outcome.removed > 0) {
    apps_ = std::move(kept);
    Rehash(catalog);
    send_inventory_ = true;
  }
  applied_version_ = bundle.version;
  rules_hash_ = bundle.rules_hash;
  outcome.kind = BundleOutcome::Kind::kApplied;
  return outcome;
}

}  // namespace appban::sim
