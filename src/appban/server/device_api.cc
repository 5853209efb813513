#include "appban/server/device_api.h"

#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include <openssl/crypto.h>

#include "appban/common/bytes.h"
#include "appban/decide/admin.h"
#include "appban/protocol/messages.h"
#include "appban/store/match_records.h"
#include "appban/verify/rule_states.h"
#include "appban/verify/rules_hash.h"

namespace appban::server {
namespace {

using net::HttpResponse;
using net::MakeErrorResponse;

HttpResponse JsonResponse(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

HttpResponse StoreTrouble(const Status& status) {
  if (status.code() == StatusCode::kUnavailable) {
    return MakeErrorResponse(503, "unavailable", "the database is busy; retry shortly");
  }
  return MakeErrorResponse(500, "internal", "the server could not complete the request: " + status.message());
}

// An inventory stored as JSON before match records existed (schema 2).
Result<std::vector<policy::InstalledApp>> StoredInventoryApps(const std::string& json_text) {
  APPBAN_ASSIGN_OR_RETURN(
      auto json, ParseJsonBounded(json_text, store::kFleetLimits.max_inventory_json_bytes, 16, "stored inventory"));
  return protocol::InventoryFromJsonArray(json, "stored inventory");
}

HttpResponse RefusalFor(const Status& status) {
  if (status.code() == StatusCode::kPermissionDenied) {
    return MakeErrorResponse(403, "device_revoked", "this device was revoked by an administrator");
  }
  if (store::IsNotAuthenticated(status)) return MakeErrorResponse(401, "unauthenticated", status.message());
  return StoreTrouble(status);
}

// Far above the number of bundles a server issues; a hostile device could only make the map
// hold versions up to the latest anyway.
constexpr size_t kMaxIssuedRulesHashes = 4096;

// A bound on the cache, far above what one worker serves (its connections are capped by the
// descriptor limit); each entry is a few hundred bytes.
constexpr size_t kMaxCachedDevices = size_t{1} << 21;

int64_t SteadySeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The apps of the device that some rule of the bundle mentions: only those can decide a standing,
// and the usual device holds none, so evaluation builds and evaluates nothing for the rest. Taken
// from the inventory the check-in sent (its apps are moved out), else from the stored match
// records, else from an inventory stored as JSON before match records existed. nullopt: the
// stored inventory cannot be read.
std::optional<std::vector<policy::InstalledApp>> MentionedApps(const policy::PolicyIndex& index,
                                                               std::optional<std::vector<policy::InstalledApp>>& sent,
                                                               const store::EvaluationInput& stored) {
  std::vector<policy::InstalledApp> mentioned;
  if (sent) {
    for (policy::InstalledApp& app : *sent) {
      if (index.Mentions(app.platform, app.id, app.signer_sha256, app.team_id)) mentioned.push_back(std::move(app));
    }
  } else if (stored.match_records) {
    Status decoded = store::ForEachMatchRecord(*stored.match_records, [&](const store::MatchRecord& record) {
      if (index.Mentions(record.platform, record.id, record.signer_sha256, record.team_id)) {
        mentioned.push_back(policy::InstalledApp{record.platform, std::string(record.id), "",
                                                 std::string(record.signer_sha256), std::string(record.team_id)});
      }
    });
    if (!decoded.ok()) return std::nullopt;
  } else if (stored.inventory_json) {
    auto apps = StoredInventoryApps(*stored.inventory_json);
    if (!apps.ok()) return std::nullopt;
    for (policy::InstalledApp& app : *apps) {
      if (index.Mentions(app.platform, app.id, app.signer_sha256, app.team_id)) mentioned.push_back(std::move(app));
    }
  }
  return mentioned;
}

}  // namespace

DeviceApi::DeviceApi(WorkerContext& context, BundleHub& hub, CheckinWriter& writer, DeviceApiSettings settings,
                     std::function<void()> catch_up)
    : context_(context),
      hub_(hub),
      writer_(writer),
      settings_(settings),
      catch_up_(std::move(catch_up)),
      cache_(*context.generations, kMaxCachedDevices) {
  enrollment_limiter_ = settings_.enrollment_limiter;
  if (enrollment_limiter_ == nullptr) {
    // Without buckets every enrolment would be refused (AllowEnrollment): make this worker's own.
    auto own =
        SharedRateLimiter::Create(std::max<uint32_t>(1, settings_.enrollment_burst), settings_.enrollment_per_minute);
    if (own.ok()) {
      own_enrollment_limiter_.emplace(std::move(*own));
      enrollment_limiter_ = &*own_enrollment_limiter_;
    }
  }
}

bool DeviceApi::AllowEnrollment(const std::string& address) {
  return enrollment_limiter_ != nullptr && enrollment_limiter_->Allow(address, std::chrono::steady_clock::now());
}

void DeviceApi::CountEnrollment(EnrollmentResult result) {
  if (context_.metrics != nullptr) context_.metrics->RecordEnrollment(result);
}

void DeviceApi::Enroll(const net::HttpRequest& request, net::Responder respond) {
  if (!AllowEnrollment(request.remote_address)) {
    CountEnrollment(EnrollmentResult::kRateLimited);
    HttpResponse response = MakeErrorResponse(429, "rate_limited", "too many enrolment attempts from this address");
    response.headers.emplace_back(
        "Retry-After", std::to_string(enrollment_limiter_ != nullptr ? enrollment_limiter_->RetryAfterSeconds() : 60));
    return respond(std::move(response));
  }
  auto parsed = protocol::ParseEnrollRequest(request.body);
  if (!parsed.ok()) {
    CountEnrollment(EnrollmentResult::kBadRequest);
    return respond(MakeErrorResponse(400, "bad_request", parsed.status().message()));
  }
  store::EnrollmentRequest enrollment{std::move(parsed->token), std::move(parsed->hostname),
                                      std::move(parsed->platform), std::move(parsed->agent_version)};
  // std::function needs a copyable target; the Responder is move-only, so it travels in a shared_ptr.
  auto held = std::make_shared<net::Responder>(std::move(respond));
  // The node's own limit (above) is checked here; the one every node shares (several nodes on
  // PostgreSQL) by the writer, in the database.
  CheckinWriter::SharedLimit shared{"enroll:" + request.remote_address,
                                    std::max<uint32_t>(1, settings_.enrollment_burst), settings_.enrollment_per_minute};
  writer_.SubmitEnrollment(
      std::move(enrollment), context_.clock(),
      [this, held](Result<store::Enrollment> enrolled) { FinishEnrollment(enrolled, *held); }, std::move(shared));
}

// On the io_context thread, after the enrolment's transaction committed (or failed).
void DeviceApi::FinishEnrollment(const Result<store::Enrollment>& enrolled, net::Responder& respond) {
  if (!enrolled.ok()) {
    const Status& status = enrolled.status();
    if (status.code() == StatusCode::kLimitExceeded) {  // the limit every node shares
      CountEnrollment(EnrollmentResult::kRateLimited);
      HttpResponse response = MakeErrorResponse(429, "rate_limited", status.message());
      response.headers.emplace_back(
          "Retry-After",
          std::to_string(std::max<uint32_t>(1, 60 / std::max<uint32_t>(1, settings_.enrollment_per_minute))));
      return respond(std::move(response));
    }
    if (status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kInternal ||
        status.code() == StatusCode::kCorruption) {
      CountEnrollment(EnrollmentResult::kError);
      return respond(StoreTrouble(status));
    }
    switch (status.code()) {
      case StatusCode::kExpired:
        CountEnrollment(EnrollmentResult::kTokenExpired);
        break;
      case StatusCode::kFailedPrecondition:  // already used, or revoked
        CountEnrollment(EnrollmentResult::kTokenUsed);
        break;
      default:  // unknown token, wrong secret, malformed token text
        CountEnrollment(EnrollmentResult::kTokenInvalid);
        break;
    }
    return respond(MakeErrorResponse(401, "token_invalid", "enrolment refused: " + status.message()));
  }
  CountEnrollment(EnrollmentResult::kEnrolled);
  if (!enrolled->group.empty()) {
    // The enrolment token's group also lists the device in the policy store, so administrators
    // see it there; evaluation already counts the token's group (device.group).
    decide::PolicyAdmin admin(*context_.store, "enrollment:" + enrolled->device.enrollment_token_id, context_.clock);
    (void)admin.AddDevices(enrolled->group, {enrolled->device.id});
    InvalidateGroups();
  }
  protocol::EnrollResponse answer;
  answer.device_id = enrolled->device.id;
  answer.credential = enrolled->credential;
  answer.policy_keys_pem.push_back(policy::PublicKeyPem(context_.signing_key->public_key()));
  answer.group = enrolled->group;
  answer.checkin_interval = settings_.checkin_interval;
  answer.longpoll_timeout = settings_.longpoll_timeout;
  answer.server_time = context_.clock();
  respond(JsonResponse(201, protocol::ToJson(answer).dump()));
}

Result<DeviceApi::AuthenticatedDevice> DeviceApi::Authenticate(const net::HttpRequest& request, HttpResponse* refusal) {
  std::string_view credential = protocol::BearerCredential(request.Header("authorization"));
  if (credential.empty()) {
    *refusal = MakeErrorResponse(401, "unauthenticated", "missing \"Authorization: Bearer <device credential>\"");
    return Status::InvalidArgument("no credential");
  }
  auto parts = store::SplitPresented(credential);
  if (parts.ok() && parts->id.starts_with("d-")) {
    // The digest is computed either way: a cached device costs no database read, and a wrong
    // secret takes the same path as for an uncached one (the store's answer).
    Sha256Digest digest = Sha256(AsBytes(parts->secret));
    if (CachedDevice* known = cache_.Find(parts->id);
        known != nullptr && CRYPTO_memcmp(known->secret_digest.data(), digest.data(), digest.size()) == 0) {
      return AuthenticatedDevice{std::move(parts->id), known};
    }
    DeviceCache::Snapshot snapshot = cache_.Take(parts->id);
    auto device = context_.fleet->AuthenticateDevice(credential, context_.clock());
    if (device.ok()) return AuthenticatedDevice{device->id, &cache_.Store(*device, digest, snapshot)};
    *refusal = RefusalFor(device.status());
    return device.status();
  }
  // Malformed, or not a device credential: the store says which, in its words.
  auto device = context_.fleet->AuthenticateDevice(credential, context_.clock());
  Status status = device.ok() ? Status::Internal("a malformed credential was accepted") : device.status();
  *refusal = RefusalFor(status);
  return status;
}

std::vector<std::string> DeviceApi::GroupsOf(const std::string& device_id, const std::string& token_group) {
  auto now = std::chrono::steady_clock::now();
  if (groups_loaded_at_ == std::chrono::steady_clock::time_point{} ||
      now - groups_loaded_at_ > std::chrono::seconds(5)) {
    auto groups = context_.store->ListGroups();
    if (groups.ok()) {
      groups_by_device_.clear();
      for (const auto& group : *groups) {
        for (const auto& member : group.devices) groups_by_device_[member].push_back(group.name);
      }
      groups_loaded_at_ = now;
    }
  }
  std::vector<std::string> groups;
  if (auto it = groups_by_device_.find(device_id); it != groups_by_device_.end()) groups = it->second;
  if (!token_group.empty()) groups.push_back(token_group);
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  return groups;
}

std::string DeviceApi::CheckinBody(int64_t applied_version, bool send_inventory, int64_t events_acked,
                                   bool rules_hash_mismatch) const {
  const verify::PublishedBundle& latest = hub_.latest();
  // Built by hand so the (possibly large) escaped envelope is reused, not re-escaped per device.
  std::string body = "{\"server_time\":" + std::to_string(context_.clock()) +
                     ",\"latest_version\":" + std::to_string(latest.version) +
                     ",\"send_inventory\":" + (send_inventory ? "true" : "false") +
                     ",\"events_acked\":" + std::to_string(events_acked) +
                     ",\"checkin_interval\":" + std::to_string(settings_.checkin_interval) +
                     ",\"longpoll_timeout\":" + std::to_string(settings_.longpoll_timeout);
  // A device that does not enforce the version it claims gets the signed bundle again, so an
  // honest agent whose copy went wrong can replace it (docs/protocol.md, "Compliance").
  if (rules_hash_mismatch) body += ",\"rules_hash_mismatch\":true";
  if ((latest.version > applied_version || rules_hash_mismatch) && !hub_.bundle_member().empty()) {
    body += ",";
    body += hub_.bundle_member();
  }
  body += "}";
  return body;
}

void DeviceApi::Checkin(const net::HttpRequest& request, net::Responder respond) {
  HttpResponse refusal;
  auto authenticated = Authenticate(request, &refusal);
  if (!authenticated.ok()) return respond(std::move(refusal));
  const std::string& id = authenticated->id;
  // Valid until this function returns: nothing else runs on this thread meanwhile.
  CachedDevice& known = *authenticated->state;
  auto parsed = protocol::ParseCheckinRequest(request.body);
  if (!parsed.ok()) return respond(MakeErrorResponse(400, "bad_request", parsed.status().message()));
  protocol::CheckinRequest& checkin = *parsed;
  const UnixSeconds now = context_.clock();
  // Another worker may have published since this one's last 200 ms refresh.
  catch_up_();
  const verify::PublishedBundle& latest = hub_.latest();
  if (checkin.applied_version > latest.version) {
    return respond(MakeErrorResponse(400, "bad_request",
                                     "checkin.applied_version: " + std::to_string(checkin.applied_version) +
                                         " is newer than any bundle this server issued (" +
                                         std::to_string(latest.version) + ")"));
  }
  auto issued_hash = IssuedRulesHash(checkin.applied_version, latest);
  if (!issued_hash.ok()) return respond(StoreTrouble(issued_hash.status()));
  std::optional<store::RulesHashMismatch> mismatch =
      verify::CheckRulesHash(checkin.applied_version, checkin.rules_hash, *issued_hash, known.rules_hash_mismatch, now);
  CheckinPlan plan = PlanCheckin(id, known, checkin, std::move(mismatch), now);
  if (plan.refusal) return respond(MakeErrorResponse(400, "bad_request", *plan.refusal));
  if (plan.rules_hash_mismatch && context_.metrics != nullptr) context_.metrics->RecordRulesHashMismatch();
  // Re-evaluate compliance when what it depends on changed: the bundle, the applied version, the
  // inventory, or a removal was reported. Not while the device's rules_hash is wrong: its rule
  // states would be evaluated from a claim it does not live up to (and stamp compliant_at for
  // it); compliance counts it as mismatch until a check-in with the right hash, which re-evaluates.
  const bool needs_evaluation =
      latest.version > 0 && !plan.send_inventory && !plan.rules_hash_mismatch &&
      (plan.write.applied || plan.write.rules_hash || known.evaluated_version != latest.version ||
       known.evaluated_inventory_hash != checkin.inventory_hash || !plan.removed_rule_ids.empty());
  if (needs_evaluation) {
    Status evaluated = EvaluateCompliance(id, known, checkin, latest, now, plan);
    if (!evaluated.ok()) return respond(StoreTrouble(evaluated));
  }
  const int64_t applied_version = checkin.applied_version;
  if (!plan.durable) {
    // Nothing the device must be able to rely on: answer now; record last_seen now and then.
    if (now - known.last_seen_written >= settings_.last_seen_resolution) {
      known.last_seen_written = now;
      writer_.Submit(std::move(plan.write),
                     [](const store::CheckinWrite&, store::CheckinOutcome, std::optional<uint64_t>) {});
    }
    return respond(JsonResponse(
        200, CheckinBody(applied_version, plan.send_inventory, known.last_event_seq, plan.rules_hash_mismatch)));
  }
  known.last_seen_written = now;
  AnswerAfterCommit(std::move(plan.write), applied_version, plan.send_inventory, plan.rules_hash_mismatch,
                    plan.stored_seq_before, std::move(respond));
}

Result<std::optional<std::string>> DeviceApi::IssuedRulesHash(int64_t version, const verify::PublishedBundle& latest) {
  if (version <= 0) return std::optional<std::string>();
  if (version == latest.version) return std::optional<std::string>(latest.rules_hash);
  if (auto it = issued_rules_hashes_.find(version); it != issued_rules_hashes_.end()) return it->second;
  auto record = context_.store->GetBundle(version);
  std::optional<std::string> hash;
  if (record.ok()) {
    hash = std::move(record->rules_hash);
  } else if (record.status().code() != StatusCode::kNotFound) {
    return record.status();
  }
  if (issued_rules_hashes_.size() >= kMaxIssuedRulesHashes) issued_rules_hashes_.clear();
  issued_rules_hashes_.emplace(version, hash);
  return hash;
}

DeviceApi::CheckinPlan DeviceApi::PlanCheckin(const std::string& id, const CachedDevice& known,
                                              protocol::CheckinRequest& checkin,
                                              std::optional<store::RulesHashMismatch> rules_hash_mismatch,
                                              UnixSeconds now) {
  CheckinPlan plan;
  store::CheckinWrite& write = plan.write;
  write.device_id = id;
  write.last_seen = now;
  plan.rules_hash_mismatch = rules_hash_mismatch.has_value();
  if (rules_hash_mismatch != known.rules_hash_mismatch) {
    if (rules_hash_mismatch) {
      spdlog::warn(
          "device {}: reports rules_hash {} for bundle version {}, which was issued with {}", id, checkin.rules_hash,
          checkin.applied_version,
          rules_hash_mismatch->expected_hash.empty() ? "no hash (never issued)" : rules_hash_mismatch->expected_hash);
    }
    write.rules_hash = store::RulesHashUpdate{std::move(rules_hash_mismatch)};
    plan.durable = true;
  }
  if (checkin.applied_version != known.applied_version || checkin.rules_hash != known.applied_rules_hash) {
    write.applied = store::AppliedPolicy{checkin.applied_version, checkin.rules_hash};
    plan.durable = true;
  }
  const bool inventory_sent = checkin.inventory.has_value();
  // Stored whenever sent, even when the hash is unchanged: the server asks again only when its
  // copy is missing or unreadable, and then the copy must be replaced.
  if (inventory_sent) {
    write.inventory = store::InventoryUpdate{checkin.inventory_hash, std::move(checkin.canonical_inventory),
                                             store::EncodeMatchRecords(*checkin.inventory), now};
    plan.durable = true;
  }
  plan.send_inventory = !inventory_sent && checkin.inventory_hash != known.inventory_hash;
  plan.stored_seq_before = known.last_event_seq;
  int64_t highest_seq = known.last_event_seq;
  for (size_t i = 0; i < checkin.events.size(); ++i) {
    const protocol::DeviceEvent& event = checkin.events[i];
    // A device counts its events up by one: a huge jump would make every later, smaller seq look
    // "already stored" and be acknowledged without being stored.
    if (event.seq - highest_seq > protocol::kProtocolLimits.max_event_seq_jump) {
      plan.refusal = "checkin.events[" + std::to_string(i) + "].seq: " + std::to_string(event.seq) + " is more than " +
                     std::to_string(protocol::kProtocolLimits.max_event_seq_jump) + " above the highest seq so far (" +
                     std::to_string(highest_seq) + "); a device counts its events up by one";
      return plan;
    }
    highest_seq = std::max(highest_seq, event.seq);
    // A seq at or below the highest stored one goes to the store too, which checks that it holds
    // this very event (a resent queue) rather than acknowledging an event it never stored.
    store::DeviceEvent stored;
    stored.device_id = id;
    stored.seq = event.seq;
    stored.at = event.at;
    stored.kind = std::string(protocol::EventKindName(event.kind));
    stored.platform = event.platform;
    stored.app = event.app;
    stored.rule_id = event.rule_id;
    stored.detail = event.detail;
    stored.received_at = now;
    if (event.kind == protocol::EventKind::kRemoved && !event.rule_id.empty()) {
      plan.removed_rule_ids.insert(event.rule_id);
    }
    write.events.push_back(std::move(stored));
    plan.durable = true;
  }
  return plan;
}

Status DeviceApi::EvaluateCompliance(const std::string& id, const CachedDevice& known,
                                     protocol::CheckinRequest& checkin, const verify::PublishedBundle& latest,
                                     UnixSeconds now, CheckinPlan& plan) {
  auto input = context_.fleet->GetEvaluationInput(id, /*with_rule_states=*/known.evaluated_version != 0);
  if (!input.ok()) return input.status();
  auto mentioned = MentionedApps(*latest.index, checkin.inventory, *input);
  // A stored inventory that cannot be read is asked for again rather than evaluated as empty.
  if (!mentioned) {
    spdlog::warn("device {}: stored inventory unreadable, asking the device to send it again", id);
    plan.send_inventory = true;
    return Status::Ok();
  }
  policy::DeviceContext device{id, GroupsOf(id, known.group)};
  auto standings = verify::EvaluateRuleStandings(latest, device, *mentioned, checkin.applied_version, now);
  verify::RuleStateDiff diff =
      verify::DiffRuleStates(id, standings, input->rule_states, plan.removed_rule_ids, latest.version, now);
  plan.write.rule_states = std::move(diff.upserts);
  plan.write.cleared_rule_ids = std::move(diff.cleared_rule_ids);
  plan.write.evaluated = store::EvaluationMark{latest.version, checkin.inventory_hash};
  plan.durable = true;
  return Status::Ok();
}

void DeviceApi::AnswerAfterCommit(store::CheckinWrite write, int64_t applied_version, bool send_inventory,
                                  bool rules_hash_mismatch, int64_t stored_seq_before, net::Responder respond) {
  // Counted once stored, by the fixed kind set (an unknown kind string cannot add a series).
  std::vector<EventKind> event_kinds;
  event_kinds.reserve(write.events.size());
  for (const store::DeviceEvent& event : write.events) {
    if (event.seq > stored_seq_before) event_kinds.push_back(EventKindFromName(event.kind));  // not a resend
  }
  // std::function needs a copyable target; the Responder is move-only, so it travels in a shared_ptr.
  auto held = std::make_shared<net::Responder>(std::move(respond));
  writer_.Submit(std::move(write), [this, applied_version, send_inventory, rules_hash_mismatch, held,
                                    event_kinds = std::move(event_kinds)](const store::CheckinWrite& written,
                                                                          store::CheckinOutcome outcome,
                                                                          std::optional<uint64_t> generation_before) {
    net::Responder& respond = *held;
    if (generation_before) {
      cache_.AfterWrite(written, outcome.highest_seq, *generation_before);
    } else if (!outcome.status.ok()) {
      cache_.Erase(written.device_id);
    }
    if (!outcome.status.ok()) {
      if (outcome.status.code() == StatusCode::kPermissionDenied) {
        return respond(MakeErrorResponse(403, "device_revoked", "this device was revoked by an administrator"));
      }
      if (outcome.status.code() == StatusCode::kInvalidArgument ||
          outcome.status.code() == StatusCode::kLimitExceeded) {
        return respond(MakeErrorResponse(400, "bad_request", outcome.status.message()));
      }
      return respond(StoreTrouble(outcome.status));
    }
    if (context_.metrics != nullptr) {
      for (EventKind kind : event_kinds) context_.metrics->RecordEvent(kind);
    }
    respond(JsonResponse(200, CheckinBody(applied_version, send_inventory, outcome.highest_seq, rules_hash_mismatch)));
  });
}

void DeviceApi::Unenroll(const net::HttpRequest& request, net::Responder respond) {
  HttpResponse refusal;
  auto device = Authenticate(request, &refusal);
  if (!device.ok()) return respond(std::move(refusal));
  std::string id = device->id;
  // The device speaks for itself: the audit entry's actor is the device, and the store records a
  // device that revokes itself as "device.unenroll". Rare, so written directly (no group commit).
  store::AuditIdentity who;
  who.actor_name = id;
  who.method = "device-credential";
  who.channel = "agent";
  who.source = request.remote_address;
  store::AuditRecord audit{"device:" + id, "", "", nullptr, nullptr, context_.clock(), store::AuditIdentityJson(who)};
  if (Status revoked = context_.fleet->RevokeDevice(id, audit); !revoked.ok()) return respond(StoreTrouble(revoked));
  (void)cache_.Take(id);
  if (context_.notifier != nullptr) context_.notifier->DeviceRevoked(id);
  respond(JsonResponse(200, Json{{"device_id", id}, {"unenrolled_at", FormatTimestamp(audit.at)}}.dump()));
}

void DeviceApi::Poll(const net::HttpRequest& request, net::Responder respond) {
  HttpResponse refusal;
  auto device = Authenticate(request, &refusal);
  if (!device.ok()) return respond(std::move(refusal));
  auto version_text = request.QueryParam("version");
  int64_t version = -1;
  if (version_text && !version_text->empty() && version_text->size() <= 18 &&
      std::all_of(version_text->begin(), version_text->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    version = std::stoll(*version_text);
  }
  if (version < 0) {
    return respond(
        MakeErrorResponse(400, "bad_request", "poll: query parameter \"version\" must be a non-negative integer"));
  }
  catch_up_();
  if (hub_.latest().version > version) {
    HttpResponse response;
    response.shared_body = hub_.poll_body();
    return respond(std::move(response));
  }
  // Up to 10% jitter so a fleet that connected together does not come back together.
  poll_jitter_state_ ^= poll_jitter_state_ << 13;
  poll_jitter_state_ ^= poll_jitter_state_ >> 7;
  poll_jitter_state_ ^= poll_jitter_state_ << 17;
  int64_t jitter =
      settings_.longpoll_timeout / 10 > 0
          ? static_cast<int64_t>(poll_jitter_state_ % static_cast<uint64_t>(settings_.longpoll_timeout / 10 + 1))
          : 0;
  hub_.AddPoll(version, std::move(respond), SteadySeconds() + settings_.longpoll_timeout + jitter, device->id);
}

}  // namespace appban::server
