#include "appban/policy/bundle.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "appban/common/crypto.h"
#include "appban/common/json.h"
#include "appban/policy/evaluate.h"

namespace appban::policy {
namespace {

constexpr UnixSeconds kIssued = 1700000000;
constexpr UnixSeconds kNotAfter = kIssued + 7 * 86400;

Bundle SampleBundle(int64_t version) {
  Rule rule;
  rule.id = "ca-wechat-kaspersky-2023";
  rule.title = "WeChat and Kaspersky";
  rule.targets = {*MakeTarget(TargetKind::kAndroidPackage, "com.tencent.mm"),
                  *MakeTarget(TargetKind::kAndroidPackage, "com.kaspersky.security.cloud", true)};
  rule.rationale = "unacceptable level of risk to privacy and security";
  rule.state = RuleState::kPublished;
  Waiver waiver;
  waiver.id = "w1";
  waiver.rule_id = rule.id;
  waiver.subject = "phone-7";
  waiver.justification = "investigations unit";
  waiver.approved_by = "ciso";
  waiver.created_at = kIssued - 10;
  waiver.expires_at = kIssued + 86400;
  auto bundle = CompileBundle(BundleInputs{{rule}, {waiver}, {}, version, kIssued, kNotAfter});
  EXPECT_TRUE(bundle.ok()) << bundle.status().ToString();
  return *bundle;
}

VerifyOptions Trusting(const SigningKey& key, UnixSeconds now = kIssued + 60) {
  VerifyOptions options;
  options.trusted_keys = {key.public_key()};
  options.now = now;
  return options;
}

TEST(PolicyBundle, SignedBundleVerifiesAndRoundTrips) {
  auto key = SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  Bundle bundle = SampleBundle(3);
  auto envelope = SignBundle(bundle, *key);
  ASSERT_TRUE(envelope.ok()) << envelope.status().ToString();
  auto verified = VerifyBundle(*envelope, Trusting(*key));
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->key_id, key->key_id());
  EXPECT_EQ(verified->bundle.version, 3);
  EXPECT_EQ(verified->bundle.rules_hash, bundle.rules_hash);
  ASSERT_EQ(verified->bundle.rules.size(), 1u);
  EXPECT_TRUE(verified->bundle.rules[0].targets[1].unverified);
  EXPECT_EQ(verified->bundle.waivers.size(), 1u);
  // Verified content evaluates.
  auto index = PolicyIndex::Build(verified->bundle);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->Evaluate({Platform::kAndroid, "com.tencent.mm", "", "", ""}, {"phone-1", {}}, kIssued).verdict,
            Verdict::kRemove);
}

TEST(PolicyBundle, RulesHashDependsOnContentNotVersion) {
  EXPECT_EQ(SampleBundle(1).rules_hash, SampleBundle(2).rules_hash);
  EXPECT_EQ(SampleBundle(1).rules_hash.size(), 64u);
}

TEST(PolicyBundle, EveryFlippedByteIsRefused) {
  auto key = SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  auto envelope = SignBundle(SampleBundle(1), *key);
  ASSERT_TRUE(envelope.ok());
  for (size_t i = 0; i < envelope->size(); ++i) {
    std::string tampered = *envelope;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    auto verified = VerifyBundle(tampered, Trusting(*key));
    EXPECT_FALSE(verified.ok()) << "flipping byte " << i << " ('" << (*envelope)[i] << "') was accepted";
  }
}

TEST(PolicyBundle, FlippedPayloadByteIsABadSignature) {
  auto key = SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  auto envelope = SignBundle(SampleBundle(1), *key);
  ASSERT_TRUE(envelope.ok());
  size_t at = envelope->find("com.tencent.mm");
  ASSERT_NE(at, std::string::npos);
  std::string tampered = *envelope;
  tampered[at + 4] = 'X';  // com.Xencent.mm: a different app, same length
  auto verified = VerifyBundle(tampered, Trusting(*key));
  EXPECT_EQ(verified.status().code(), StatusCode::kBadSignature);
  EXPECT_NE(verified.status().message().find("does not verify with key " + key->key_id()), std::string::npos)
      << verified.status().message();
}

TEST(PolicyBundle, UnknownKeyIsRefused) {
  auto key = SigningKey::Generate();
  auto other = SigningKey::Generate();
  ASSERT_TRUE(key.ok() && other.ok());
  auto envelope = SignBundle(SampleBundle(1), *other);
  ASSERT_TRUE(envelope.ok());
  auto verified = VerifyBundle(*envelope, Trusting(*key));
  EXPECT_EQ(verified.status().code(), StatusCode::kNotFound);
  EXPECT_NE(verified.status().message().find("unknown key"), std::string::npos);
}

TEST(PolicyBundle, ForgedKeyIdIsABadSignature) {
  auto key = SigningKey::Generate();
  auto attacker = SigningKey::Generate();
  ASSERT_TRUE(key.ok() && attacker.ok());
  auto envelope = SignBundle(SampleBundle(1), *attacker);
  ASSERT_TRUE(envelope.ok());
  std::string forged = *envelope;
  size_t at = forged.find(attacker->key_id());
  ASSERT_NE(at, std::string::npos);
  forged.replace(at, 64, key->key_id());
  EXPECT_EQ(VerifyBundle(forged, Trusting(*key)).status().code(), StatusCode::kBadSignature);
}

TEST(PolicyBundle, OlderVersionThanHeldIsARollback) {
  auto key = SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  auto envelope = SignBundle(SampleBundle(4), *key);
  ASSERT_TRUE(envelope.ok());
  VerifyOptions options = Trusting(*key);
  options.held_version = 5;
  auto verified = VerifyBundle(*envelope, options);
  EXPECT_EQ(verified.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(verified.status().message().find("rollback"), std::string::npos);
  options.held_version = 4;  // the same version again (re-delivery) is fine
  EXPECT_TRUE(VerifyBundle(*envelope, options).ok());
}

TEST(PolicyBundle, ExpiredBundleIsRefused) {
  auto key = SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  auto envelope = SignBundle(SampleBundle(1), *key);
  ASSERT_TRUE(envelope.ok());
  EXPECT_TRUE(VerifyBundle(*envelope, Trusting(*key, kNotAfter - 1)).ok());
  auto verified = VerifyBundle(*envelope, Trusting(*key, kNotAfter));
  EXPECT_EQ(verified.status().code(), StatusCode::kExpired);
  EXPECT_NE(verified.status().message().find("expired"), std::string::npos);
}

TEST(PolicyBundle, GarbageAndDeepNestingAreMalformedNotCrashes) {
  auto key = SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  for (std::string text : {std::string(""), std::string("{"), std::string("[]"), std::string(100000, '['),
                           std::string("{\"format\":\"appban.bundle/1\"}")}) {
    auto verified = VerifyBundle(text, Trusting(*key));
    EXPECT_FALSE(verified.ok());
    EXPECT_TRUE(verified.status().code() == StatusCode::kCorruption) << verified.status().ToString();
  }
}

// Independent check of the signature with the openssl command-line tool: the bytes we sign are
// "appban-policy-bundle-v1\0" + payload, with the key written to disk as PEM.
TEST(PolicyBundle, OpensslCommandLineAcceptsOurSignature) {
  auto key = SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  auto envelope = SignBundle(SampleBundle(1), *key);
  ASSERT_TRUE(envelope.ok());
  auto json = Json::parse(*envelope);
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("appban-bundle-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(SavePublicKeyFile(key->public_key(), (dir / "pub.pem").string()).ok());
  {
    std::ofstream message(dir / "message", std::ios::binary);
    message << std::string(kSignatureContext) << json["payload"].get<std::string>();
    std::ofstream signature(dir / "sig", std::ios::binary);
    std::string hex = json["signature"].get<std::string>();
    for (size_t i = 0; i < hex.size(); i += 2)
      signature.put(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  std::string command = "openssl pkeyutl -verify -pubin -inkey " + (dir / "pub.pem").string() + " -rawin -in " +
                        (dir / "message").string() + " -sigfile " + (dir / "sig").string() + " >/dev/null 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  // And the key id is the SHA-256 of the raw public key that openssl extracts from the PEM.
  std::string raw_command = "openssl pkey -pubin -in " + (dir / "pub.pem").string() +
                            " -outform DER | tail -c 32 | sha256sum | cut -c1-64 > " + (dir / "kid").string();
  ASSERT_EQ(std::system(raw_command.c_str()), 0);
  std::ifstream kid(dir / "kid");
  std::string expected;
  kid >> expected;
  EXPECT_EQ(expected, key->key_id());
  std::filesystem::remove_all(dir);
}

TEST(PolicyKeys, PrivateKeyFileIsOwnerOnlyAndLoadsBack) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("appban-keys-" + std::to_string(getpid()));
  auto created = CreateActiveKey(dir.string(), false);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto path = dir / (created->key_id() + ".key");
  auto perms = std::filesystem::status(path).permissions();
  EXPECT_EQ(perms & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto loaded = LoadActiveKey(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->key_id(), created->key_id());
  EXPECT_EQ(CreateActiveKey(dir.string(), false).status().code(), StatusCode::kAlreadyExists);
  auto rotated = CreateActiveKey(dir.string(), true);
  ASSERT_TRUE(rotated.ok());
  EXPECT_NE(rotated->key_id(), created->key_id());
  EXPECT_EQ(LoadActiveKey(dir.string())->key_id(), rotated->key_id());
  std::filesystem::permissions(dir / (rotated->key_id() + ".key"), std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  EXPECT_EQ(LoadActiveKey(dir.string()).status().code(), StatusCode::kPermissionDenied);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace appban::policy

namespace appban::policy {
namespace {

// Hardening item 12: correctly signed bundles that still must be refused. Each payload is built
// from a good one, changed, given a matching rules_hash and signed with the trusted key, so only
// the check under test can refuse it.
class SignedButWrong : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    key_.emplace(std::move(*key));
  }
  Json GoodPayload(int64_t version = 3) {
    auto text = BundlePayload(SampleBundle(version));
    EXPECT_TRUE(text.ok());
    return Json::parse(*text);
  }
  std::string Sign(Json payload) {
    Json content{{"rules", payload["rules"]}, {"vendors", payload["vendors"]}, {"waivers", payload["waivers"]}};
    payload["rules_hash"] = Sha256Hex(AsBytes(*CanonicalJson(content)));
    auto envelope = SignPayload(*CanonicalJson(payload), *key_);
    EXPECT_TRUE(envelope.ok());
    return *envelope;
  }
  Result<VerifiedBundle> Verify(const std::string& envelope, std::optional<int64_t> held = std::nullopt,
                                std::optional<std::string> held_payload = std::nullopt) {
    VerifyOptions options = Trusting(*key_);
    options.held_version = held;
    options.held_payload_sha256 = held_payload;
    return VerifyBundle(envelope, options);
  }
  static std::string Says(const Result<VerifiedBundle>& result) { return result.status().ToString(); }
  std::optional<SigningKey> key_;
};

TEST_F(SignedButWrong, GoodPayloadVerifies) { EXPECT_TRUE(Verify(Sign(GoodPayload())).ok()); }

TEST_F(SignedButWrong, UnknownPayloadMemberIsRefused) {
  Json payload = GoodPayload();
  payload["next_keys"] = Json::array();
  auto result = Verify(Sign(payload));
  ASSERT_FALSE(result.ok()) << "an unknown member was accepted";
  EXPECT_EQ(result.status().code(), StatusCode::kCorruption) << Says(result);
  EXPECT_NE(Says(result).find("unknown payload member \"next_keys\""), std::string::npos) << Says(result);
}

TEST_F(SignedButWrong, DuplicateRuleIdsAreRefused) {
  Json payload = GoodPayload();
  payload["rules"].push_back(payload["rules"][0]);
  payload["rules"][1]["action"] = "report";  // which of the two would an agent enforce?
  auto result = Verify(Sign(payload));
  ASSERT_FALSE(result.ok()) << "duplicate rule ids were accepted";
  EXPECT_NE(Says(result).find("duplicate rule id ca-wechat-kaspersky-2023"), std::string::npos) << Says(result);
}

TEST_F(SignedButWrong, IssuedAfterNotAfterIsRefused) {
  Json payload = GoodPayload();
  payload["issued_at"] = FormatTimestamp(kNotAfter + 86400);
  auto result = Verify(Sign(payload));
  ASSERT_FALSE(result.ok()) << "issued_at after not_after was accepted";
  EXPECT_EQ(result.status().code(), StatusCode::kCorruption) << Says(result);
}

TEST_F(SignedButWrong, HundredYearValidityIsRefused) {
  Json payload = GoodPayload();
  payload["not_after"] = FormatTimestamp(kIssued + 100 * 366 * 86400LL);
  auto result = Verify(Sign(payload));
  ASSERT_FALSE(result.ok()) << "a 100-year validity was accepted";
  EXPECT_EQ(result.status().code(), StatusCode::kLimitExceeded) << Says(result);
  // A verifier may hold a shorter limit.
  payload["not_after"] = FormatTimestamp(kIssued + 40 * 86400);
  std::string forty_days = Sign(payload);
  EXPECT_TRUE(Verify(forty_days).ok());
  VerifyOptions strict = Trusting(*key_);
  strict.max_validity = 30 * 86400;
  EXPECT_EQ(VerifyBundle(forty_days, strict).status().code(), StatusCode::kLimitExceeded);
  // And the exporter refuses to make one.
  BundleInputs inputs{{}, {}, {}, 1, kIssued, kIssued + 100 * 366 * 86400LL};
  EXPECT_EQ(CompileBundle(inputs).status().code(), StatusCode::kLimitExceeded);
}

TEST_F(SignedButWrong, MaximalVersionIsRefused) {
  Json payload = GoodPayload();
  payload["version"] = std::numeric_limits<int64_t>::max();
  auto result = Verify(Sign(payload));
  ASSERT_FALSE(result.ok()) << "version 2^63-1 was accepted: no later update could ever be applied";
  EXPECT_EQ(result.status().code(), StatusCode::kLimitExceeded) << Says(result);
  BundleInputs inputs{{}, {}, {}, std::numeric_limits<int64_t>::max(), kIssued, kNotAfter};
  EXPECT_EQ(CompileBundle(inputs).status().code(), StatusCode::kLimitExceeded);
  inputs.version = kMaxBundleVersion;
  EXPECT_TRUE(CompileBundle(inputs).ok());
}

TEST_F(SignedButWrong, VersionJumpAboveTheHeldVersionIsRefused) {
  EXPECT_TRUE(Verify(Sign(GoodPayload(3 + kMaxBundleVersionStep)), 3).ok());
  auto result = Verify(Sign(GoodPayload(4 + kMaxBundleVersionStep)), 3);
  ASSERT_FALSE(result.ok()) << "a jump of more than kMaxBundleVersionStep was accepted";
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition) << Says(result);
  EXPECT_NE(Says(result).find("version jump"), std::string::npos) << Says(result);
}

TEST_F(SignedButWrong, SameVersionWithOtherContentIsRefused) {
  std::string held = Sign(GoodPayload(3));
  auto first = Verify(held);
  ASSERT_TRUE(first.ok());
  Json other = GoodPayload(3);
  other["rules"] = Json::array();
  other["waivers"] = Json::array();
  auto result = Verify(Sign(other), 3, first->payload_sha256);
  ASSERT_FALSE(result.ok()) << "a second, different version 3 was accepted";
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition) << Says(result);
  EXPECT_NE(Says(result).find("conflicting bundle"), std::string::npos) << Says(result);
  EXPECT_TRUE(Verify(held, 3, first->payload_sha256).ok()) << "re-delivery of the held bundle is fine";
}

}  // namespace
}  // namespace appban::policy
