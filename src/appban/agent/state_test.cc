#include "appban/agent/state.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "appban/agent/agent_test_support.h"

namespace appban::agent {
namespace {

using testing::MakeTempDir;

protocol::DeviceEvent Removed(const std::string& app) {
  protocol::DeviceEvent event;
  event.at = 1700000000;
  event.kind = protocol::EventKind::kRemoved;
  event.platform = "deb";
  event.app = app;
  event.rule_id = "ban-x";
  event.detail = "removed with apt-get purge";
  return event;
}

TEST(AgentState, ItemsAndCheckpointsSurviveReopen) {
  std::string dir = MakeTempDir("appban-state-");
  {
    auto state = AgentState::Open(dir);
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    EXPECT_FALSE(state->Read(StateItem::kCredential)->has_value());
    ASSERT_TRUE(state->Write(StateItem::kCredential, "d-1.secret").ok());
    ASSERT_TRUE(state->Write(StateItem::kBundle, "{\"envelope\":1}").ok());
    ASSERT_TRUE(state->SetBundleVersion(7, 1700000000).ok());
    ASSERT_TRUE(state->SetCheckpoint("last_checkin", 1700000123).ok());
    // A second opener (the same directory in use) is refused.
    EXPECT_EQ(AgentState::Open(dir).status().code(), StatusCode::kFailedPrecondition);
  }
  auto state = AgentState::Open(dir);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->Read(StateItem::kCredential)->value(), "d-1.secret");
  EXPECT_EQ(state->Read(StateItem::kBundle)->value(), "{\"envelope\":1}");
  EXPECT_EQ(state->bundle_version(), 7);
  EXPECT_EQ(state->Checkpoint("last_checkin"), 1700000123);
  EXPECT_FALSE(state->Checkpoint("never").has_value());
  EXPECT_EQ(std::filesystem::status(dir + "/credential").permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  std::filesystem::remove_all(dir);
}

TEST(AgentState, QueueNumbersEventsAndDropsOnlyAcknowledgedOnes) {
  std::string dir = MakeTempDir("appban-state-");
  {
    auto state = AgentState::Open(dir);
    ASSERT_TRUE(state.ok());
    for (int i = 1; i <= 5; ++i) EXPECT_EQ(*state->Append(Removed("p" + std::to_string(i))), i);
    ASSERT_TRUE(state->Acknowledge(3).ok());
    auto pending = state->Pending();
    ASSERT_EQ(pending.size(), 2u);
    EXPECT_EQ(pending[0].seq, 4);
    EXPECT_EQ(pending[0].app, "p4");
    EXPECT_EQ(state->Acknowledge(99).code(), StatusCode::kInvalidArgument);  // never sent
    ASSERT_TRUE(state->Acknowledge(5).ok());
    EXPECT_EQ(state->pending_count(), 0u);
  }
  // All acknowledged and the log compacted: numbering still continues after 5.
  auto state = AgentState::Open(dir);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->pending_count(), 0u);
  EXPECT_EQ(*state->Append(Removed("p6")), 6);
  std::filesystem::remove_all(dir);
}

TEST(AgentState, TornLastRecordIsDroppedAndAppendingContinues) {
  std::string dir = MakeTempDir("appban-state-");
  {
    auto state = AgentState::Open(dir);
    ASSERT_TRUE(state.ok());
    ASSERT_TRUE(state->Append(Removed("a")).ok());
    ASSERT_TRUE(state->Append(Removed("b")).ok());
  }
  {
    // What a crash in the middle of write(2) leaves: half a record, no newline.
    std::ofstream log(dir + "/events.log", std::ios::app | std::ios::binary);
    log << "0123456789abcdef {\"seq\":3,\"at\":17";
  }
  auto state = AgentState::Open(dir);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  ASSERT_EQ(state->pending_count(), 2u);
  EXPECT_EQ(*state->Append(Removed("c")), 3);
  state = Status::Unavailable("closed");  // releases the directory
  auto reopened = AgentState::Open(dir);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto pending = reopened->Pending();
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[2].app, "c");
  std::filesystem::remove_all(dir);
}

// A child appends events and reports each seq only after Append returned (the "recorded"
// acknowledgement); it is killed with SIGKILL at an arbitrary point. Every acknowledged event must
// be in the reopened queue, in order, without duplicates.
TEST(AgentState, AcknowledgedEventsSurviveKill9) {
  std::string dir = MakeTempDir("appban-state-");
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    auto state = AgentState::Open(dir);
    if (!state.ok()) ::_exit(3);
    for (int i = 0;; ++i) {
      auto seq = state->Append(Removed("pkg" + std::to_string(i)));
      if (!seq.ok()) ::_exit(4);
      int64_t value = *seq;
      if (::write(pipe_fds[1], &value, sizeof value) != sizeof value) ::_exit(5);
    }
  }
  ::close(pipe_fds[1]);
  int64_t last_acknowledged = 0;
  for (int received = 0; received < 200; ++received) {
    int64_t value = 0;
    ASSERT_EQ(::read(pipe_fds[0], &value, sizeof value), static_cast<ssize_t>(sizeof value));
    last_acknowledged = value;
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  ::close(pipe_fds[0]);

  auto state = AgentState::Open(dir);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  auto pending = state->Pending();
  ASSERT_GE(static_cast<int64_t>(pending.size()), last_acknowledged);
  for (size_t i = 0; i < pending.size(); ++i) {
    EXPECT_EQ(pending[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ(pending[i].app, "pkg" + std::to_string(i));
  }
  auto next = state->Append(Removed("after"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, static_cast<int64_t>(pending.size()) + 1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace appban::agent
