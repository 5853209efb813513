#include "appban/policy/json_util.h"

#include <gtest/gtest.h>

namespace appban::policy {
namespace {

// Regression (fuzz/inventory_fuzz.cc): ParseTimestamp accepts any four-digit year, but
// FormatTimestamp wrote years below 1000 without padding ("824-11-27T..."), which ParseTimestamp
// then refused, so a rule, waiver or bundle carrying such a date could not be read back.
TEST(PolicyTimestamps, YearsBelowOneThousandRoundTrip) {
  for (const char* text : {"0824-11-27T23:46:20Z", "0001-01-01T00:00:00Z", "0999-12-31T23:59:59Z"}) {
    auto at = ParseTimestamp(text);
    ASSERT_TRUE(at.ok()) << text;
    EXPECT_EQ(FormatTimestamp(*at), text);
  }
  // The ordinary case keeps its exact form (`date -u -d @1698624000 +%FT%TZ`).
  EXPECT_EQ(FormatTimestamp(1698624000), "2023-10-30T00:00:00Z");
}

}  // namespace
}  // namespace appban::policy
