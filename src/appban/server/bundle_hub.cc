#include "appban/server/bundle_hub.h"

#include <nlohmann/json.hpp>

#include "appban/policy/bundle.h"
#include "appban/protocol/messages.h"

namespace appban::server {

BundleHub::BundleHub(store::Store& store, std::vector<policy::PublicKey> trusted_keys)
    : store_(store), trusted_keys_(std::move(trusted_keys)) {
  poll_body_ = std::make_shared<const std::string>(protocol::ToJson(protocol::PollResponse{}).dump());
}

void BundleHub::SetKeys(std::vector<policy::PublicKey> trusted_keys, std::vector<std::string> key_rotations) {
  trusted_keys_ = std::move(trusted_keys);
  key_rotations_ = std::move(key_rotations);
  if (latest_.version > 0) BuildBodies();
}

void BundleHub::BuildBodies() {
  protocol::PollResponse poll{latest_.version, *latest_.envelope, key_rotations_};
  poll_body_ = std::make_shared<const std::string>(protocol::ToJson(poll).dump());
  bundle_member_ = "\"bundle\":" + nlohmann::json(*latest_.envelope).dump();
  if (!key_rotations_.empty()) bundle_member_ += ",\"key_rotations\":" + nlohmann::json(key_rotations_).dump();
}

Result<bool> BundleHub::Refresh() {
  APPBAN_ASSIGN_OR_RETURN(int64_t version, store_.LatestBundleVersion());
  if (version <= latest_.version) return false;
  APPBAN_RETURN_IF_ERROR(Load(version));
  return true;
}

Status BundleHub::Load(int64_t version) {
  APPBAN_ASSIGN_OR_RETURN(store::BundleRecord record, store_.GetBundle(version));
  policy::VerifyOptions options;
  options.trusted_keys = trusted_keys_;
  // The server serves what it issued even after expiry (devices refuse expired bundles and say so
  // in a bundle_refused event); verify at issue time so the content checks still run.
  options.now = record.issued_at;
  auto verified = policy::VerifyBundle(record.envelope, options);
  if (!verified.ok()) {
    return Status(verified.status().code(),
                  "stored bundle " + std::to_string(version) + " does not verify: " + verified.status().message());
  }
  APPBAN_ASSIGN_OR_RETURN(policy::PolicyIndex index, policy::PolicyIndex::Build(verified->bundle));

  verify::PublishedBundle next;
  next.version = version;
  next.issued_at = record.issued_at;
  next.rules_hash = verified->bundle.rules_hash;
  next.envelope = std::make_shared<const std::string>(record.envelope);
  next.bundle = std::make_shared<const policy::Bundle>(std::move(verified->bundle));
  next.index = std::make_shared<const policy::PolicyIndex>(std::move(index));
  // When was each rule first published? Known rules keep their first version; for rules new to
  // this worker, walk back through the issued bundles while they still carry the rule.
  for (const policy::Rule& rule : next.bundle->rules) {
    if (auto known = latest_.rule_first_published.find(rule.id); known != latest_.rule_first_published.end()) {
      next.rule_first_published.insert(*known);
      continue;
    }
    std::pair<int64_t, UnixSeconds> first{version, record.issued_at};
    for (int64_t earlier = version - 1; earlier >= 1; --earlier) {
      auto older = store_.GetBundle(earlier);
      if (!older.ok()) break;
      auto parsed = nlohmann::json::parse(older->envelope, nullptr, false);
      if (parsed.is_discarded() || !parsed.contains("payload") || !parsed["payload"].is_string()) break;
      auto payload = nlohmann::json::parse(parsed["payload"].get<std::string>(), nullptr, false);
      if (payload.is_discarded() || !payload.contains("rules") || !payload["rules"].is_array()) break;
      bool carried = false;
      for (const auto& carried_rule : payload["rules"]) {
        if (carried_rule.is_object() && StringOr(carried_rule, "id") == rule.id) carried = true;
      }
      if (!carried) break;
      first = {earlier, older->issued_at};
    }
    next.rule_first_published.emplace(rule.id, first);
  }
  latest_ = std::move(next);

  BuildBodies();
  return Status::Ok();
}

void BundleHub::AddPoll(int64_t known_version, net::Responder respond, int64_t deadline, std::string device_id) {
  polls_by_deadline_[deadline].push_back(Poll{known_version, std::move(respond), std::move(device_id)});
  ++waiting_;
}

void BundleHub::WakePolls() {
  for (auto& [deadline, polls] : polls_by_deadline_) {
    std::vector<Poll> still_waiting;
    for (Poll& poll : polls) {
      if (poll.known_version < latest_.version) {
        net::HttpResponse response;
        response.shared_body = poll_body_;
        poll.respond(std::move(response));
        --waiting_;
      } else {
        still_waiting.push_back(std::move(poll));
      }
    }
    polls = std::move(still_waiting);
  }
  std::erase_if(polls_by_deadline_, [](const auto& bucket) { return bucket.second.empty(); });
}

void BundleHub::ExpirePolls(int64_t now_steady) {
  while (!polls_by_deadline_.empty() && polls_by_deadline_.begin()->first <= now_steady) {
    for (Poll& poll : polls_by_deadline_.begin()->second) {
      net::HttpResponse response;
      response.status = 204;
      response.content_type.clear();
      poll.respond(std::move(response));
      --waiting_;
    }
    polls_by_deadline_.erase(polls_by_deadline_.begin());
  }
}

void BundleHub::DrainPolls(int status, std::string_view code, std::string_view message) {
  for (auto& [deadline, polls] : polls_by_deadline_) {
    for (Poll& poll : polls) poll.respond(net::MakeErrorResponse(status, code, message));
  }
  polls_by_deadline_.clear();
  waiting_ = 0;
}

void BundleHub::DropDevicePolls(const std::string& device_id) {
  for (auto& [deadline, polls] : polls_by_deadline_) {
    std::erase_if(polls, [&](Poll& poll) {
      if (poll.device_id != device_id) return false;
      poll.respond(net::MakeErrorResponse(403, "device_revoked", "this device was revoked by an administrator"));
      --waiting_;
      return true;
    });
  }
}

}  // namespace appban::server
