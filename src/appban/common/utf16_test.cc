#include "appban/common/utf16.h"

#include <gtest/gtest.h>

namespace appban {
namespace {

TEST(Utf16Test, DecodesPairsInEitherByteOrderAndReplacesLoneSurrogates) {
  // "é😀" then a lone high surrogate, then 'A', then an odd trailing byte.
  const uint8_t big[] = {0x00, 0xe9, 0xd8, 0x3d, 0xde, 0x00, 0xd8, 0x00, 0x00, 0x41, 0x7f};
  const uint8_t little[] = {0xe9, 0x00, 0x3d, 0xd8, 0x00, 0xde, 0x00, 0xd8, 0x41, 0x00};
  const std::string expected =
      "\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd"
      "A";
  EXPECT_EQ(Utf16ToUtf8(Bytes(big, sizeof big), Utf16Order::kBigEndian), expected);
  EXPECT_EQ(Utf16ToUtf8(Bytes(little, sizeof little), Utf16Order::kLittleEndian), expected);
  std::string out;
  AppendUtf8(0xdc00, &out);
  AppendUtf8(0x110000, &out);
  EXPECT_EQ(out, "\xef\xbf\xbd\xef\xbf\xbd");
}

}  // namespace
}  // namespace appban
