// Fuzzes the signed policy bundle verifier and the canonical JSON it rests on (policy/bundle.h,
// common/json.h). Each input is tried four ways:
//   1. as a whole envelope, verified against a fixed test key (envelope parsing; signatures from
//      the fuzzer never verify, so this stops at the signature check);
//   2. re-signed: when the input parses as an object with a string "payload", that payload is
//      signed with the fixed key and wrapped in a fresh envelope, so mutations of a real bundle's
//      payload reach payload parsing, the canonical-form check and BundleFromPayload;
//   3. the whole input as payload text, re-signed the same way;
//   4. canonical JSON: when the input parses, canonicalising, re-parsing and canonicalising again
//      must give identical bytes (the property bundle signatures depend on); ParseTimestamp
//      results must survive FormatTimestamp.
// The key is generated once per process (Ed25519 keys are random, so bundles in the seed corpus
// carry their own key id and are re-signed by step 2).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "appban/common/json.h"
#include "appban/common/time.h"
#include "appban/policy/bundle.h"
#include "appban/policy/keys.h"
#include "appban/policy/limits.h"

namespace {

using appban::Json;

const appban::policy::SigningKey& TestKey() {
  static const appban::policy::SigningKey key = [] {
    auto generated = appban::policy::SigningKey::Generate();
    if (!generated.ok()) __builtin_trap();
    return std::move(*generated);
  }();
  return key;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

// Signs `payload` with the test key and verifies the resulting envelope; returns whether it passed.
// `must_pass` is set for a payload we wrote ourselves from a verified bundle.
bool VerifyResigned(const std::string& payload, const appban::policy::VerifyOptions& options, bool must_pass = false) {
  std::string message(appban::policy::kSignatureContext);
  message += payload;
  auto signature = TestKey().Sign(message);
  if (!signature.ok()) __builtin_trap();
  Json envelope = {{"format", std::string(appban::policy::kBundleFormat)},
                   {"key_id", TestKey().key_id()},
                   {"payload", payload},
                   {"signature", Hex(*signature)}};
  std::string text;
  try {
    // The payload may hold invalid UTF-8; the envelope writer must not be what fails then.
    text = envelope.dump(-1, ' ', false, Json::error_handler_t::replace);
  } catch (const Json::exception&) {
    return false;
  }
  auto verified = appban::policy::VerifyBundle(text, options);
  if (!verified.ok()) {
    if (must_pass) __builtin_trap();
    return false;
  }
  // Whatever was accepted must write back out as a payload that is itself accepted (and then
  // reproduces itself byte for byte). Not byte-equal to the input on the first pass: the payload
  // reader ignores members it does not know, which BundlePayload then leaves out.
  auto rewritten = appban::policy::BundlePayload(verified->bundle);
  if (!rewritten.ok()) __builtin_trap();
  if (must_pass) {
    if (*rewritten != payload) __builtin_trap();
  } else {
    VerifyResigned(*rewritten, options, true);
  }
  return true;
}

void CheckCanonicalRoundTrip(std::string_view text) {
  const auto& limits = appban::policy::kPolicyLimits;
  auto parsed = appban::ParseJsonBounded(text, limits.max_bundle_bytes, limits.max_json_depth, "fuzz");
  if (!parsed.ok()) return;
  auto first = appban::CanonicalJson(*parsed);
  if (!first.ok()) return;
  auto again = appban::CanonicalJson(*parsed);
  if (!again.ok() || *again != *first) __builtin_trap();
  auto reparsed = appban::ParseJsonBounded(*first, limits.max_bundle_bytes, limits.max_json_depth, "fuzz");
  if (!reparsed.ok()) __builtin_trap();  // canonical output must be readable by our own parser
  auto second = appban::CanonicalJson(*reparsed);
  if (!second.ok() || *second != *first) __builtin_trap();
}

void CheckTimestamp(std::string_view text) {
  if (text.size() > 32) return;
  auto at = appban::ParseTimestamp(text);
  if (!at.ok()) return;
  auto back = appban::ParseTimestamp(appban::FormatTimestamp(*at));
  if (!back.ok() || *back != *at) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  appban::policy::VerifyOptions options;
  options.trusted_keys.push_back(TestKey().public_key());
  options.now = 1700000000;  // 2023-11-14: inside the validity of the seed bundles

  (void)appban::policy::VerifyBundle(text, options);

  const auto& limits = appban::policy::kPolicyLimits;
  auto envelope = appban::ParseJsonBounded(text, limits.max_bundle_bytes, limits.max_json_depth, "fuzz");
  if (envelope.ok() && envelope->is_object()) {
    auto payload = envelope->find("payload");
    if (payload != envelope->end() && payload->is_string()) VerifyResigned(payload->get<std::string>(), options);
  }
  VerifyResigned(std::string(text), options);
  CheckCanonicalRoundTrip(text);
  CheckTimestamp(text);
  return 0;
}
