#include "appban/common/status.h"

#include <gtest/gtest.h>

namespace appban {
namespace {

Result<int> Half(int value) {
  if (value % 2 != 0) return Status::InvalidArgument("odd value " + std::to_string(value));
  return value / 2;
}

Result<int> Quarter(int value) {
  APPBAN_ASSIGN_OR_RETURN(int half, Half(value));
  return Half(half);
}

TEST(StatusTest, OkAndErrorsCarryKindAndMessage) {
  EXPECT_TRUE(Status::Ok().ok());
  Status truncated = Status::Truncated("central directory ends at 120 but the file has 100 bytes");
  EXPECT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.code(), StatusCode::kTruncated);
  EXPECT_EQ(truncated.ToString(), "truncated: central directory ends at 120 but the file has 100 bytes");
  EXPECT_EQ(truncated.WithContext("classes2.dex").ToString(),
            "truncated: classes2.dex: central directory ends at 120 but the file has 100 bytes");
}

TEST(StatusTest, ResultPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> odd = Quarter(6);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().message(), "odd value 3");
}

TEST(StatusTest, ResultFromOkStatusIsAnInternalError) {
  Result<int> bogus = Status::Ok();
  ASSERT_FALSE(bogus.ok());
  EXPECT_EQ(bogus.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace appban
