#include "appban/agent/config.h"

#include <gtest/gtest.h>

#include <string>

namespace appban::agent {
namespace {

std::string ApplyError(std::string_view text) {
  DaemonConfig config;
  Status status = ApplyAgentConfig(text, "agent.toml", config);
  EXPECT_FALSE(status.ok()) << text;
  return status.message();
}

DaemonConfig Applied(std::string_view text) {
  DaemonConfig config;
  Status status = ApplyAgentConfig(text, "agent.toml", config);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return config;
}

TEST(AgentConfig, EveryDocumentedKeyIsRead) {
  DaemonConfig config = Applied(R"(state_dir = "/srv/appban"
monitor = true
purge = false
[paths]
dpkg_admindir = "/x/dpkg"
flatpak_system = ["/f/sys"]
flatpak_user = ["/f/user"]
snapd_state = "/s/state.json"
snap_mount_dir = "/s/mnt"
banned_list = "/b/list"
wake_file = "/w/file"
[tools]
apt_get = "my-apt-get"
dpkg = "my-dpkg"
dpkg_deb = "my-dpkg-deb"
flatpak = "my-flatpak"
snap = ["sudo", "snap"]
apt_env = ["A=1"]
apt_options = ["-oX=1"]
dpkg_options = ["--force-x"]
apt_hook_command = "hook"
[timing]
backoff_initial_ms = 20
backoff_max_ms = 40
checkin_interval_seconds = 7
request_timeout_ms = 500
full_cycle_seconds = 9
)");
  EXPECT_EQ(config.state_dir, "/srv/appban");
  EXPECT_TRUE(config.enforcement.monitor);
  EXPECT_FALSE(config.enforcement.purge);
  const SystemPaths& paths = config.enforcement.paths;
  EXPECT_EQ(paths.dpkg_admindir, "/x/dpkg");
  ASSERT_EQ(paths.flatpak_installations.size(), 2u);
  EXPECT_EQ(paths.flatpak_installations[0].path, "/f/sys");
  EXPECT_FALSE(paths.flatpak_installations[0].user);
  EXPECT_EQ(paths.flatpak_installations[1].path, "/f/user");
  EXPECT_TRUE(paths.flatpak_installations[1].user);
  EXPECT_EQ(paths.snapd_state, "/s/state.json");
  EXPECT_EQ(paths.snap_mount_dir, "/s/mnt");
  EXPECT_EQ(config.enforcement.banned_list_path, "/b/list");
  EXPECT_EQ(config.enforcement.wake_file, "/w/file");
  EXPECT_EQ(config.enforcement.apt_get, "my-apt-get");
  EXPECT_EQ(config.enforcement.dpkg, "my-dpkg");
  EXPECT_EQ(config.enforcement.dpkg_deb, "my-dpkg-deb");
  EXPECT_EQ(config.enforcement.flatpak, "my-flatpak");
  EXPECT_EQ(config.enforcement.snap_command, (std::vector<std::string>{"sudo", "snap"}));
  EXPECT_EQ(config.enforcement.apt_env, (std::vector<std::string>{"A=1"}));
  EXPECT_EQ(config.enforcement.apt_options, (std::vector<std::string>{"-oX=1"}));
  EXPECT_EQ(config.enforcement.dpkg_options, (std::vector<std::string>{"--force-x"}));
  EXPECT_EQ(config.enforcement.apt_hook_command, "hook");
  EXPECT_EQ(config.backoff_initial, std::chrono::milliseconds(20));
  EXPECT_EQ(config.backoff_max, std::chrono::milliseconds(40));
  EXPECT_EQ(config.checkin_interval_override, std::chrono::seconds(7));
  EXPECT_EQ(config.timeouts.request, std::chrono::milliseconds(500));
  EXPECT_EQ(config.full_cycle_interval, std::chrono::seconds(9));
}

TEST(AgentConfig, RootMovesDefaultsButNotExplicitPaths) {
  DaemonConfig config = Applied("[paths]\nroot = \"/scratch\"\nsnapd_state = \"/elsewhere/state.json\"\n");
  const SystemPaths moved = SystemPaths::UnderRoot("/scratch");
  const SystemPaths& paths = config.enforcement.paths;
  EXPECT_EQ(paths.root, moved.root);
  EXPECT_EQ(paths.dpkg_admindir, moved.dpkg_admindir);
  EXPECT_EQ(paths.snap_mount_dir, moved.snap_mount_dir);
  EXPECT_EQ(paths.snapd_state, "/elsewhere/state.json");
  ASSERT_EQ(paths.flatpak_installations.size(), moved.flatpak_installations.size());
}

TEST(AgentConfig, SwitchesAlsoTakeIntegers) {
  // toml++'s permissive reading, which the agent has always used for monitor and purge.
  DaemonConfig config = Applied("monitor = 1\npurge = 0\n");
  EXPECT_TRUE(config.enforcement.monitor);
  EXPECT_FALSE(config.enforcement.purge);
  EXPECT_EQ(ApplyError("monitor = \"yes\"\n"), "agent.toml:1: monitor: must be true or false");
}

TEST(AgentConfig, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(ApplyError("state_dir = \"/s\"\n[paths]\nroot = \"/tmp/x\"\ndpkg_admindr = \"/x\"\n"),
            "agent.toml:4: paths.dpkg_admindr: unknown key");
  EXPECT_EQ(ApplyError("statedir = \"/s\"\n"), "agent.toml:1: statedir: unknown key");
  EXPECT_EQ(ApplyError("paths = 5\n"), "agent.toml:1: paths: must be a table ([paths])");
  EXPECT_EQ(ApplyError("state_dir = 5\n"), "agent.toml:1: state_dir: must be a string");
  EXPECT_EQ(ApplyError("[tools]\nsnap = []\n"), "agent.toml:2: tools.snap: must not be empty");
  EXPECT_EQ(ApplyError("[tools]\napt_env = \"A=1\"\n"), "agent.toml:2: tools.apt_env: must be an array of strings");
  EXPECT_EQ(ApplyError("[timing]\nbackoff_initial_ms = 5\n"),
            "agent.toml:2: timing.backoff_initial_ms: 5 is outside 10..3600000");
  EXPECT_EQ(ApplyError("[timing]\nfull_cycle_seconds = 1.5\n"),
            "agent.toml:2: timing.full_cycle_seconds: must be an integer");
  EXPECT_EQ(ApplyError("[timing]\nfull_cycle_seconds = \n").rfind("agent.toml:2: ", 0), 0u);
}

// Hostile input: a key of 400,000 dotted parts once overflowed the stack inside toml++.
TEST(AgentConfig, DeeplyDottedKeyIsRefusedNotACrash) {
  std::string text = "a";
  for (int i = 0; i < 400'000; ++i) text += ".a";
  text += " = 1\n";
  EXPECT_NE(ApplyError(text).find("dotted parts"), std::string::npos);
}

TEST(AgentConfig, MissingFileIsNamed) {
  DaemonConfig config;
  Status status = ApplyAgentConfigFile("/nonexistent/agent.toml", config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("/nonexistent/agent.toml"), std::string::npos);
}

}  // namespace
}  // namespace appban::agent
