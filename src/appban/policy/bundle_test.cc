#include "appban/policy/bundle.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

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
  return VerifyOptions{{key.public_key()}, std::nullopt, now};
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
  EXPECT_EQ(verified.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(verified.status().message().find("bad signature"), std::string::npos);
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
  EXPECT_EQ(VerifyBundle(forged, Trusting(*key)).status().code(), StatusCode::kPermissionDenied);
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
