#include "appban/common/bytes.h"

#include <gtest/gtest.h>

#include <vector>

#include "appban/common/crypto.h"

namespace appban {
namespace {

TEST(ByteReaderTest, ReadsLittleEndianAndNeverCrossesTheEnd) {
  std::vector<uint8_t> data = {0x01, 0x02, 0x03, 0x04, 0x05};
  ByteReader reader(data);
  EXPECT_EQ(reader.U16(), 0x0201);
  EXPECT_EQ(reader.U16(), 0x0403);
  EXPECT_EQ(reader.U16(), std::nullopt);  // only one byte left
  EXPECT_EQ(reader.position(), 4u);       // a failed read leaves the cursor alone
  EXPECT_EQ(reader.U8(), 0x05);
  EXPECT_TRUE(reader.empty());
  EXPECT_FALSE(reader.Skip(1));
  EXPECT_FALSE(reader.Take(1).has_value());
}

TEST(ByteReaderTest, Uleb128RejectsOverlongEncodings) {
  std::vector<uint8_t> ok = {0xe5, 0x8e, 0x26};  // 624485
  ByteReader good(ok);
  EXPECT_EQ(good.Uleb128(), 624485u);
  std::vector<uint8_t> overlong = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
  ByteReader bad(overlong);
  EXPECT_EQ(bad.Uleb128(), std::nullopt);
  std::vector<uint8_t> cut = {0x80, 0x80};
  ByteReader truncated(cut);
  EXPECT_EQ(truncated.Uleb128(), std::nullopt);
}

TEST(ByteReaderTest, SubSpanChecksOverflowingRanges) {
  std::vector<uint8_t> data(16);
  EXPECT_TRUE(SubSpan(data, 8, 8).has_value());
  EXPECT_FALSE(SubSpan(data, 8, 9).has_value());
  EXPECT_FALSE(SubSpan(data, UINT64_MAX, 2).has_value());
  EXPECT_FALSE(SubSpan(data, 2, UINT64_MAX).has_value());
}

TEST(CryptoTest, Sha256MatchesTheKnownVector) {
  EXPECT_EQ(Sha256Hex(AsBytes("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256Hasher hasher;
  hasher.Update(AsBytes("a"));
  hasher.Update(AsBytes("bc"));
  auto digest = hasher.Finish();
  EXPECT_EQ(HexLower(digest), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace appban
