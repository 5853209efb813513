#include "appban/common/time.h"

#include <gtest/gtest.h>

namespace appban {
namespace {

TEST(TimestampTest, ParseAndFormat) {
  EXPECT_EQ(*ParseTimestamp("1970-01-01"), 0);
  EXPECT_EQ(*ParseTimestamp("2023-10-30T00:00:00Z"), 1698624000);  // `date -u -d 2023-10-30 +%s`
  EXPECT_EQ(FormatTimestamp(1698624000), "2023-10-30T00:00:00Z");
  EXPECT_FALSE(ParseTimestamp("2023-02-30").ok());
  EXPECT_FALSE(ParseTimestamp("as soon as practicable").ok());
}

// Regression (fuzz/inventory_fuzz.cc): ParseTimestamp accepts any four-digit year, but
// FormatTimestamp wrote years below 1000 without padding ("824-11-27T..."), which ParseTimestamp
// then refused, so a rule, waiver or bundle carrying such a date could not be read back.
TEST(TimestampTest, YearsBelowOneThousandRoundTrip) {
  for (const char* text : {"0824-11-27T23:46:20Z", "0001-01-01T00:00:00Z", "0999-12-31T23:59:59Z"}) {
    auto at = ParseTimestamp(text);
    ASSERT_TRUE(at.ok()) << text;
    EXPECT_EQ(FormatTimestamp(*at), text);
  }
  // The ordinary case keeps its exact form (`date -u -d @1698624000 +%FT%TZ`).
  EXPECT_EQ(FormatTimestamp(1698624000), "2023-10-30T00:00:00Z");
}

}  // namespace
}  // namespace appban
