#include "appban/agent/process.h"

#include <gtest/gtest.h>

#include <chrono>

namespace appban::agent {
namespace {

TEST(RunCommand, CapturesOutputExitStatusAndStdin) {
  auto result = RunCommand({"sh", "-c", "cat; echo err >&2; exit 3"}, {}, "piped input\n");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->stdout_text, "piped input\n");
  EXPECT_EQ(result->stderr_text, "err\n");
  EXPECT_EQ(result->Describe(), "exit 3: err");
}

TEST(RunCommand, ExtraEnvironmentOverridesInherited) {
  ::setenv("APPBAN_PROCESS_TEST", "inherited", 1);
  auto result = RunCommand({"sh", "-c", "printf %s \"$APPBAN_PROCESS_TEST\""}, {"APPBAN_PROCESS_TEST=given"});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->stdout_text, "given");
}

TEST(RunCommand, MissingProgramIsUnavailable) {
  auto result = RunCommand({"/nonexistent/appban-no-such-tool"});
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(RunCommand({}).status().code(), StatusCode::kInvalidArgument);
}

TEST(RunCommand, DeadlineKillsTheChild) {
  CommandLimits limits;
  limits.timeout = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  auto result = RunCommand({"sleep", "30"}, {}, "", limits);
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));  // hang guard
}

TEST(RunCommand, OutputIsBoundedAndUnreadStdinIsHarmless) {
  CommandLimits limits;
  limits.max_output_bytes = 1000;
  // The child never reads its stdin and writes far more than the limit.
  auto result = RunCommand({"sh", "-c", "head -c 100000 /dev/zero"}, {}, std::string(1 << 20, 'x'), limits);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->stdout_text.size(), 1000u);
}

}  // namespace
}  // namespace appban::agent
