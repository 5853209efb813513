#include "appban/verify/rules_hash.h"

#include <gtest/gtest.h>

#include <string>

namespace appban::verify {
namespace {

const std::string kIssued(64, 'a');
const std::string kForged(64, 'f');

TEST(RulesHash, NothingAppliedYetMatches) { EXPECT_FALSE(CheckRulesHash(0, "", std::nullopt, std::nullopt, 100)); }

TEST(RulesHash, TheIssuedHashMatchesAndClearsAnEarlierMismatch) {
  EXPECT_FALSE(CheckRulesHash(7, kIssued, kIssued, std::nullopt, 100));
  EXPECT_FALSE(CheckRulesHash(7, kIssued, kIssued, store::RulesHashMismatch{kIssued, 50}, 100));
}

TEST(RulesHash, AnotherHashForTheClaimedVersionIsAMismatchStampedNow) {
  auto mismatch = CheckRulesHash(7, kForged, kIssued, std::nullopt, 100);
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->expected_hash, kIssued);
  EXPECT_EQ(mismatch->since, 100);
}

TEST(RulesHash, AContinuingMismatchKeepsWhenItBegan) {
  auto mismatch = CheckRulesHash(8, kForged, kIssued, store::RulesHashMismatch{std::string(64, 'b'), 40}, 100);
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->expected_hash, kIssued) << "what is expected now, for the version claimed now";
  EXPECT_EQ(mismatch->since, 40);
}

TEST(RulesHash, AVersionNeverIssuedMatchesNoHash) {
  auto forged = CheckRulesHash(5, kForged, std::nullopt, std::nullopt, 100);
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->expected_hash, "");
  EXPECT_TRUE(CheckRulesHash(5, "", std::nullopt, std::nullopt, 100)) << "an empty hash does not make it issued";
  EXPECT_TRUE(CheckRulesHash(0, kForged, std::nullopt, std::nullopt, 100)) << "a hash with nothing applied";
}

}  // namespace
}  // namespace appban::verify
