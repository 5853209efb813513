#include "appban/policy/rotation.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "appban/common/json.h"

namespace appban::policy {
namespace {

namespace fs = std::filesystem;

SigningKey NewKey() { return std::move(SigningKey::Generate()).value(); }

std::vector<std::string> Ids(const std::vector<PublicKey>& keys) {
  std::vector<std::string> ids;
  for (const auto& key : keys) ids.push_back(key.key_id);
  return ids;
}

TEST(KeyRotation, SignedByTheOldKeyVerifiesWithItOnly) {
  SigningKey k1 = NewKey(), k2 = NewKey();
  auto statement = SignKeyRotation(k1, k2.public_key(), 1700000000);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  auto rotation = VerifyKeyRotation(*statement, k1.public_key());
  ASSERT_TRUE(rotation.ok()) << rotation.status().ToString();
  EXPECT_EQ(rotation->old_key_id, k1.key_id());
  EXPECT_EQ(rotation->new_key.key_id, k2.key_id());
  EXPECT_EQ(rotation->new_key.raw, k2.public_key().raw);
  EXPECT_EQ(VerifyKeyRotation(*statement, k2.public_key()).status().code(), StatusCode::kPermissionDenied);
  for (size_t i = 0; i < statement->size(); ++i) {
    std::string tampered = *statement;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    EXPECT_FALSE(VerifyKeyRotation(tampered, k1.public_key()).ok()) << "flipping byte " << i << " was accepted";
  }
}

TEST(KeyRotation, AStatementNotSignedByThePinnedKeyIsRefused) {
  SigningKey k1 = NewKey(), attacker = NewKey();
  // The attacker claims to speak for k1.
  Json forged = Json::parse(*SignKeyRotation(attacker, attacker.public_key(), 1700000000));
  Json statement = Json::parse(forged["statement"].get<std::string>());
  statement["old_key_id"] = k1.key_id();
  forged["statement"] = *CanonicalJson(statement);
  auto followed = FollowKeyRotations({k1.public_key()}, {*CanonicalJson(forged)});
  EXPECT_EQ(followed.status().code(), StatusCode::kBadSignature) << followed.status().ToString();
}

TEST(KeyRotation, ADeviceFollowsTheChainFromWhereverItIs) {
  SigningKey k1 = NewKey(), k2 = NewKey(), k3 = NewKey();
  std::vector<std::string> chain = {*SignKeyRotation(k1, k2.public_key(), 1700000000),
                                    *SignKeyRotation(k2, k3.public_key(), 1700000100)};
  std::vector<KeyRotation> followed;
  auto from_k1 = FollowKeyRotations({k1.public_key()}, chain, &followed);
  ASSERT_TRUE(from_k1.ok()) << from_k1.status().ToString();
  EXPECT_EQ(Ids(*from_k1), std::vector<std::string>{k3.key_id()});
  EXPECT_EQ(followed.size(), 2u);
  auto from_k2 = FollowKeyRotations({k2.public_key()}, chain);
  EXPECT_EQ(Ids(*from_k2), std::vector<std::string>{k3.key_id()});
  // Already on the newest key: nothing to follow, nothing changes.
  followed.clear();
  auto from_k3 = FollowKeyRotations({k3.public_key()}, chain, &followed);
  EXPECT_EQ(Ids(*from_k3), std::vector<std::string>{k3.key_id()});
  EXPECT_TRUE(followed.empty());
}

TEST(KeyRotation, KeysInitRotateWritesTheStatementChain) {
  std::string pattern = (fs::temp_directory_path() / "appban-rotation-XXXXXX").string();
  std::string dir = mkdtemp(pattern.data());
  auto k1 = CreateActiveKey(dir, false);
  ASSERT_TRUE(k1.ok());
  EXPECT_TRUE(LoadKeyRotations(dir, k1->key_id())->empty());
  auto k2 = CreateActiveKey(dir, true);
  auto k3 = CreateActiveKey(dir, true);
  ASSERT_TRUE(k2.ok() && k3.ok());
  auto chain = LoadKeyRotations(dir, k3->key_id());
  ASSERT_TRUE(chain.ok()) << chain.status().ToString();
  ASSERT_EQ(chain->size(), 2u);
  auto followed = FollowKeyRotations({k1->public_key()}, *chain);
  ASSERT_TRUE(followed.ok());
  EXPECT_EQ(Ids(*followed), std::vector<std::string>{k3->key_id()});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace appban::policy
