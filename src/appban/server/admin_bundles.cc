// Admin API: publishing a signed bundle and reading the latest one.
#include "appban/server/admin_handlers.h"

#include "appban/policy/bundle.h"
#include "appban/policy/model.h"
#include "appban/server/config.h"

namespace appban::server::admin {

namespace {

Json BundleSummary(const policy::Bundle& bundle, const std::string& key_id) {
  Json rules = Json::array();
  for (const auto& rule : bundle.rules) rules.push_back(rule.id);
  return Json{{"version", bundle.version},
              {"rules_hash", bundle.rules_hash},
              {"issued_at", FormatTimestamp(bundle.issued_at)},
              {"not_after", FormatTimestamp(bundle.not_after)},
              {"key_id", key_id},
              {"rules", rules},
              {"waivers", bundle.waivers.size()}};
}

}  // namespace

HttpResponse Publish(Call& call) {
  if (call.context.refresh_keys) call.context.refresh_keys();
  if (call.context.signing_key == nullptr) return ErrorResponse(503, "unavailable", "no policy signing key is loaded");
  auto body = call.Body(true);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"validity_days"}, "body"); !s.ok()) return ErrorFrom(s);
  auto days = IntegerMember(*body, "validity_days", 1, call.config().policy.max_bundle_validity_days);
  if (!days.ok()) return ErrorFrom(days.status());
  int64_t validity_days = days->value_or(call.config().policy.bundle_validity_days);
  auto envelope = call.Admin().ExportBundle(*call.context.signing_key, validity_days * 24 * 3600);
  if (!envelope.ok()) return ErrorFrom(envelope.status());
  // Read back what was signed, with the key devices pin: a bundle the fleet would refuse must not
  // be reported as published.
  policy::VerifyOptions options;
  options.trusted_keys = {call.context.signing_key->public_key()};
  options.now = call.Now();
  auto verified = policy::VerifyBundle(*envelope, options);
  if (!verified.ok()) {
    return ErrorResponse(500, "internal", "the bundle just signed does not verify: " + verified.status().message());
  }
  if (call.context.notifier != nullptr) call.context.notifier->BundlePublished();
  return JsonResponse(201, BundleSummary(verified->bundle, verified->key_id));
}

HttpResponse LatestBundle(Call& call) {
  auto version = call.context.store->LatestBundleVersion();
  if (!version.ok()) return ErrorFrom(version.status());
  if (*version == 0) return ErrorResponse(404, "not_found", "no bundle has been published yet");
  auto record = call.context.store->GetBundle(*version);
  if (!record.ok()) return ErrorFrom(record.status());
  Json body{{"version", record->version},
            {"issued_at", FormatTimestamp(record->issued_at)},
            {"rules_hash", record->rules_hash},
            {"key_id", record->key_id},
            {"envelope", record->envelope}};
  // The contents, when the envelope verifies with the current key (after a key rotation an old
  // bundle is served as recorded, without the decoded summary).
  if (call.context.signing_key != nullptr) {
    policy::VerifyOptions options;
    options.trusted_keys = {call.context.signing_key->public_key()};
    options.now = record->issued_at;
    if (auto verified = policy::VerifyBundle(record->envelope, options); verified.ok()) {
      Json summary = BundleSummary(verified->bundle, verified->key_id);
      body["not_after"] = summary["not_after"];
      body["rules"] = summary["rules"];
      body["waivers"] = summary["waivers"];
    }
  }
  return JsonResponse(200, body);
}

}  // namespace appban::server::admin
