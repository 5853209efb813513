#include "appban/net/retry_after.h"

#include <gtest/gtest.h>

#include <string>

namespace appban::net {
namespace {

using std::chrono::seconds;

// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's own example date.
constexpr std::time_t kExampleDate = 784111777;

TEST(ParseRetryAfter, ReadsDelaySeconds) {
  EXPECT_EQ(ParseRetryAfter("120", 0), seconds(120));
  EXPECT_EQ(ParseRetryAfter("0", 0), seconds(0));
  EXPECT_EQ(ParseRetryAfter(" 7 ", 0), seconds(7)) << "optional whitespace around a field value";
}

TEST(ParseRetryAfter, ReadsEachHttpDateFormRelativeToNow) {
  const std::time_t now = kExampleDate - 90;
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), seconds(90)) << "IMF-fixdate";
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now), seconds(90)) << "RFC 850";
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:37 1994", now), seconds(90)) << "asctime";
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", kExampleDate + 5), seconds(0)) << "a past date";
}

TEST(ParseRetryAfter, CapsWhatNoClientShouldWaitFor) {
  EXPECT_EQ(ParseRetryAfter("999999999", 0), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999999", 0), kMaxRetryAfter) << "beyond 64 bits";
  EXPECT_EQ(ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", kExampleDate), kMaxRetryAfter);
}

TEST(ParseRetryAfter, AnythingElseIsNoAnswer) {
  for (const char* value : {"", "  ", "-5", "1.5", "12s", "soon", "Sun, 06 Nov 1994 08:49:37 PST",
                            "Sun, 06 Nov 1994 08:49:37 GMT trailing", "Sun, 32 Nov 1994 08:49:37 GMT"}) {
    EXPECT_FALSE(ParseRetryAfter(value, kExampleDate).has_value()) << "'" << value << "'";
  }
  EXPECT_FALSE(ParseRetryAfter(std::string(1000, '1') + "x", 0).has_value());
  EXPECT_FALSE(ParseRetryAfter(std::string(100, 'a'), 0).has_value()) << "longer than any date";
}

}  // namespace
}  // namespace appban::net
