#include "appban/policy/bundle.h"

#include <algorithm>
#include <map>
#include <set>

#include "appban/common/crypto.h"
#include "appban/common/json.h"
#include "appban/common/time.h"
#include "appban/policy/limits.h"

namespace appban::policy {
namespace {

std::optional<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;  // upper case is not canonical
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int high = nibble(hex[2 * i]), low = nibble(hex[2 * i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out[i] = static_cast<char>(high * 16 + low);
  }
  return out;
}

Json PolicyContentJson(const Bundle& bundle) {
  Json rules = Json::array(), waivers = Json::array(), vendors = Json::array();
  for (const auto& rule : bundle.rules) rules.push_back(RuleToJson(rule, false));
  for (const auto& waiver : bundle.waivers) waivers.push_back(WaiverToJson(waiver, false));
  for (const auto& vendor : bundle.vendors) vendors.push_back(VendorToJson(vendor));
  return Json{{"rules", rules}, {"vendors", vendors}, {"waivers", waivers}};
}

Status Malformed(const std::string& why) { return Status::Corruption("malformed bundle: " + why); }

// Strictly increasing keys: sorted as exported, and no two alike.
template <typename T, typename Key>
Status CheckSortedUnique(const std::vector<T>& items, Key key, std::string_view what) {
  for (size_t i = 1; i < items.size(); ++i) {
    if (key(items[i - 1]) == key(items[i])) return Malformed("duplicate " + std::string(what) + " " + key(items[i]));
    if (key(items[i - 1]) > key(items[i])) return Malformed(std::string(what) + "s are not sorted");
  }
  return Status::Ok();
}

Status CheckVersionAndValidity(int64_t version, UnixSeconds issued_at, UnixSeconds not_after,
                               UnixSeconds max_validity) {
  if (version <= 0) return Malformed("version " + std::to_string(version) + " is not positive");
  if (version > kMaxBundleVersion) {
    return Status::LimitExceeded("bundle version " + std::to_string(version) + " is above the limit " +
                                 std::to_string(kMaxBundleVersion) + " (versions go up by one per export)");
  }
  if (not_after <= issued_at) {
    return Malformed("issued_at " + FormatTimestamp(issued_at) + " is not before not_after " +
                     FormatTimestamp(not_after));
  }
  UnixSeconds limit = std::min(max_validity, kMaxBundleValiditySeconds);
  if (not_after - issued_at > limit) {
    return Status::LimitExceeded("bundle validity of " + std::to_string((not_after - issued_at) / 86400) +
                                 " days is longer than the limit of " + std::to_string(limit / 86400) + " days");
  }
  return Status::Ok();
}

Result<Bundle> BundleFromPayload(const Json& payload) {
  if (!payload.is_object()) return Malformed("payload is not a JSON object");
  static constexpr std::string_view kMembers[] = {"format",     "issued_at", "not_after", "rules",
                                                  "rules_hash", "vendors",   "version",   "waivers"};
  for (const auto& [key, value] : payload.items()) {
    if (std::find(std::begin(kMembers), std::end(kMembers), key) == std::end(kMembers)) {
      return Malformed("unknown payload member \"" + key + "\"");
    }
  }
  auto field = [&](const char* key) -> const Json* {
    auto it = payload.find(key);
    return it == payload.end() ? nullptr : &*it;
  };
  const Json* format = field("format");
  if (format == nullptr || !format->is_string() || format->get<std::string>() != kPayloadFormat) {
    return Malformed("payload format is not " + std::string(kPayloadFormat));
  }
  Bundle bundle;
  const Json* version = field("version");
  if (version == nullptr || !version->is_number_integer()) return Malformed("payload has no integer version");
  bundle.version = version->get<int64_t>();
  for (auto [key, out] : {std::pair{"issued_at", &bundle.issued_at}, std::pair{"not_after", &bundle.not_after}}) {
    const Json* text = field(key);
    if (text == nullptr || !text->is_string()) return Malformed(std::string("payload has no ") + key);
    auto at = ParseTimestamp(text->get<std::string>());
    if (!at.ok()) return Malformed(std::string(key) + ": " + at.status().message());
    *out = *at;
  }
  const Json* hash = field("rules_hash");
  if (hash == nullptr || !hash->is_string()) return Malformed("payload has no rules_hash");
  bundle.rules_hash = hash->get<std::string>();
  for (const char* key : {"rules", "waivers", "vendors"}) {
    const Json* list = field(key);
    if (list == nullptr || !list->is_array()) return Malformed(std::string("payload has no ") + key + " array");
  }
  if (payload["rules"].size() > kPolicyLimits.max_rules) return Status::LimitExceeded("bundle has too many rules");
  if (payload["waivers"].size() > kPolicyLimits.max_waivers)
    return Status::LimitExceeded("bundle has too many waivers");
  for (const auto& element : payload["rules"]) {
    auto rule = RuleFromJson(element);
    if (!rule.ok()) return Malformed(rule.status().message());
    bundle.rules.push_back(std::move(*rule));
  }
  for (const auto& element : payload["waivers"]) {
    auto waiver = WaiverFromJson(element);
    if (!waiver.ok()) return Malformed(waiver.status().message());
    bundle.waivers.push_back(std::move(*waiver));
  }
  for (const auto& element : payload["vendors"]) {
    auto vendor = VendorFromJson(element);
    if (!vendor.ok()) return Malformed(vendor.status().message());
    bundle.vendors.push_back(std::move(*vendor));
  }
  APPBAN_RETURN_IF_ERROR(CheckSortedUnique(
      bundle.rules, [](const Rule& r) { return r.id; }, "rule id"));
  APPBAN_RETURN_IF_ERROR(CheckSortedUnique(
      bundle.waivers, [](const Waiver& w) { return w.id; }, "waiver id"));
  APPBAN_RETURN_IF_ERROR(CheckSortedUnique(
      bundle.vendors, [](const Vendor& v) { return v.name; }, "vendor name"));
  return bundle;
}

}  // namespace

Result<std::string> ComputeRulesHash(const Bundle& bundle) {
  APPBAN_ASSIGN_OR_RETURN(std::string content, CanonicalJson(PolicyContentJson(bundle)));
  return Sha256Hex(AsBytes(content));
}

Result<Bundle> CompileBundle(const BundleInputs& inputs) {
  if (inputs.version <= 0) return Status::InvalidArgument("bundle version must be positive");
  if (inputs.not_after <= inputs.issued_at) return Status::InvalidArgument("bundle not_after must be after issued_at");
  if (Status limits =
          CheckVersionAndValidity(inputs.version, inputs.issued_at, inputs.not_after, kMaxBundleValiditySeconds);
      !limits.ok()) {
    return Status(limits.code(), "cannot export: " + limits.message());
  }
  Bundle bundle;
  bundle.version = inputs.version;
  bundle.issued_at = inputs.issued_at;
  bundle.not_after = inputs.not_after;
  std::set<std::string> rule_ids;
  std::set<std::string> vendor_names;
  for (const auto& rule : inputs.rules) {
    if (rule.state != RuleState::kPublished) continue;
    Rule stripped = rule;
    stripped.history.clear();
    stripped.proposed_by.clear();
    stripped.revision = 0;
    for (const auto& target : rule.targets) {
      if (target.kind == TargetKind::kVendor) vendor_names.insert(target.value);
    }
    rule_ids.insert(rule.id);
    bundle.rules.push_back(std::move(stripped));
  }
  if (bundle.rules.size() > kPolicyLimits.max_rules) return Status::LimitExceeded("too many published rules");
  for (const auto& waiver : inputs.waivers) {
    if (waiver.ActiveAt(inputs.issued_at) && rule_ids.count(waiver.rule_id) != 0) {
      Waiver copy = waiver;
      copy.revision = 0;
      bundle.waivers.push_back(std::move(copy));
    }
  }
  for (const auto& vendor : inputs.vendors) {
    if (vendor_names.erase(vendor.name) != 0) {
      Vendor copy = vendor;
      copy.revision = 0;
      bundle.vendors.push_back(std::move(copy));
    }
  }
  if (!vendor_names.empty()) {
    return Status::FailedPrecondition("a published rule targets vendor \"" + *vendor_names.begin() +
                                      "\" which has no vendor record");
  }
  std::sort(bundle.rules.begin(), bundle.rules.end(), [](const Rule& a, const Rule& b) { return a.id < b.id; });
  std::sort(bundle.waivers.begin(), bundle.waivers.end(), [](const Waiver& a, const Waiver& b) { return a.id < b.id; });
  std::sort(bundle.vendors.begin(), bundle.vendors.end(),
            [](const Vendor& a, const Vendor& b) { return a.name < b.name; });
  // The store keys rules and waivers by id; checked anyway, since the verifier refuses duplicates.
  if (Status unique = CheckSortedUnique(
          bundle.rules, [](const Rule& r) { return r.id; }, "rule id");
      !unique.ok()) {
    return Status::InvalidArgument("cannot export: " + unique.message());
  }
  if (Status unique = CheckSortedUnique(
          bundle.waivers, [](const Waiver& w) { return w.id; }, "waiver id");
      !unique.ok()) {
    return Status::InvalidArgument("cannot export: " + unique.message());
  }
  APPBAN_ASSIGN_OR_RETURN(bundle.rules_hash, ComputeRulesHash(bundle));
  return bundle;
}

Result<std::string> BundlePayload(const Bundle& bundle) {
  Json payload = PolicyContentJson(bundle);
  payload["format"] = kPayloadFormat;
  payload["version"] = bundle.version;
  payload["issued_at"] = FormatTimestamp(bundle.issued_at);
  payload["not_after"] = FormatTimestamp(bundle.not_after);
  payload["rules_hash"] = bundle.rules_hash;
  return CanonicalJson(payload);
}

Result<std::string> SignBundle(const Bundle& bundle, const SigningKey& key) {
  APPBAN_ASSIGN_OR_RETURN(std::string payload, BundlePayload(bundle));
  return SignPayload(payload, key);
}

Result<std::string> SignPayload(const std::string& payload, const SigningKey& key) {
  std::string message(kSignatureContext);
  message += payload;
  APPBAN_ASSIGN_OR_RETURN(std::string signature, key.Sign(message));
  Json envelope{{"format", kBundleFormat},
                {"key_id", key.key_id()},
                {"payload", payload},
                {"signature", HexLower(AsBytes(signature))}};
  return CanonicalJson(envelope);
}

Result<VerifiedBundle> VerifyBundle(std::string_view envelope_text, const VerifyOptions& options) {
  auto envelope =
      ParseJsonBounded(envelope_text, kPolicyLimits.max_bundle_bytes, kPolicyLimits.max_json_depth, "bundle");
  if (!envelope.ok()) return Malformed(envelope.status().message());
  if (!envelope->is_object() || envelope->size() != 4) {
    return Malformed("envelope must be an object with exactly format, key_id, payload and signature");
  }
  for (const char* key : {"format", "key_id", "payload", "signature"}) {
    auto it = envelope->find(key);
    if (it == envelope->end() || !it->is_string())
      return Malformed(std::string("envelope field ") + key + " missing or not a string");
  }
  if ((*envelope)["format"].get<std::string>() != kBundleFormat) {
    return Malformed("envelope format is not " + std::string(kBundleFormat));
  }
  const std::string& key_id = (*envelope)["key_id"].get_ref<const std::string&>();
  const std::string& payload_text = (*envelope)["payload"].get_ref<const std::string&>();
  auto signature = HexDecode((*envelope)["signature"].get_ref<const std::string&>());
  if (!signature || signature->size() != kEd25519SignatureBytes) {
    return Malformed("signature is not 128 lowercase hex digits");
  }

  const PublicKey* key = nullptr;
  for (const auto& candidate : options.trusted_keys) {
    if (candidate.key_id == key_id) key = &candidate;
  }
  if (key == nullptr) {
    std::string trusted;
    for (const auto& candidate : options.trusted_keys)
      trusted += (trusted.empty() ? "" : ", ") + candidate.key_id.substr(0, 16);
    return Status::NotFound("unknown key: bundle is signed by key " + key_id +
                            ", which is not trusted (trusted: " + (trusted.empty() ? "none" : trusted) + ")");
  }
  std::string message(kSignatureContext);
  message += payload_text;
  if (!VerifySignature(*key, message, *signature)) {
    return Status::BadSignature("the bundle's signature does not verify with key " + key_id +
                                "; its contents were altered or it was not signed by this key");
  }

  // Signed content is trusted to be ours, but is still parsed defensively.
  APPBAN_ASSIGN_OR_RETURN(Json payload, ParseJsonBounded(payload_text, kPolicyLimits.max_bundle_bytes,
                                                         kPolicyLimits.max_json_depth, "bundle payload"));
  APPBAN_ASSIGN_OR_RETURN(std::string canonical, CanonicalJson(payload));
  if (canonical != payload_text) return Malformed("payload is not in canonical form");
  APPBAN_ASSIGN_OR_RETURN(Bundle bundle, BundleFromPayload(payload));
  APPBAN_ASSIGN_OR_RETURN(std::string rules_hash, ComputeRulesHash(bundle));
  if (rules_hash != bundle.rules_hash) {
    return Malformed("rules_hash " + bundle.rules_hash + " does not match the rules it carries (" + rules_hash + ")");
  }
  APPBAN_RETURN_IF_ERROR(
      CheckVersionAndValidity(bundle.version, bundle.issued_at, bundle.not_after, options.max_validity));
  std::string payload_sha256 = Sha256Hex(AsBytes(payload_text));
  if (options.held_version && bundle.version < *options.held_version) {
    return Status::FailedPrecondition("rollback: bundle version " + std::to_string(bundle.version) +
                                      " is older than the held version " + std::to_string(*options.held_version));
  }
  if (options.held_version && bundle.version - *options.held_version > kMaxBundleVersionStep) {
    return Status::FailedPrecondition("version jump: bundle version " + std::to_string(bundle.version) +
                                      " is more than " + std::to_string(kMaxBundleVersionStep) +
                                      " above the held version " + std::to_string(*options.held_version));
  }
  if (options.held_version && options.held_payload_sha256 && bundle.version == *options.held_version &&
      payload_sha256 != *options.held_payload_sha256) {
    return Status::FailedPrecondition("conflicting bundle: version " + std::to_string(bundle.version) +
                                      " is already held with different content (a version is issued once)");
  }
  if (options.now >= bundle.not_after) {
    return Status::Expired("bundle version " + std::to_string(bundle.version) + " expired: it was valid until " +
                           FormatTimestamp(bundle.not_after) + " (now " + FormatTimestamp(options.now) +
                           "); fetch a fresh bundle");
  }
  return VerifiedBundle{std::move(bundle), key_id, std::move(payload_sha256)};
}

}  // namespace appban::policy
