// The agent's control loop against real dpkg in scratch roots and real Ed25519 bundles signed here
// with a key the state directory pins. The server is unreachable in these tests (a closed loopback
// port): they show what the agent does alone — enforce the cached verified bundle, refuse tampered
// and rolled-back bundles, honour monitor mode and waiver expiry, undo a `dpkg -i` — and that
// every event stays queued durably. tests/agent_e2e_test.cc runs it against the real server.
#include "appban/agent/daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <sstream>
#include <thread>

#include "appban/agent/agent_test_support.h"
#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/common/json.h"
#include "appban/policy/bundle.h"
#include "appban/policy/keys.h"
#include "appban/policy/rotation.h"

namespace appban::agent {
namespace {

using protocol::EventKind;
using testing::ScratchRoot;
using Clock = std::chrono::steady_clock;

UnixSeconds Now() { return static_cast<UnixSeconds>(std::time(nullptr)); }

// A loopback port nothing listens on: bound, read, closed.
uint16_t ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

policy::Rule BanRule(const std::string& id, const std::string& package) {
  policy::Rule rule;
  rule.id = id;
  rule.title = id;
  rule.action = policy::Action::kRemove;
  rule.targets = {*policy::MakeTarget(policy::TargetKind::kDebPackage, package)};
  rule.state = policy::RuleState::kPublished;
  return rule;
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scratch_.BuildDeb("victim");
    scratch_.BuildDeb("bystander");
    scratch_.BuildDeb("coreish", "Essential: yes\nPriority: required\n");
    std::filesystem::create_directories(scratch_.dir() + "/run");
    state_dir_ = scratch_.dir() + "/state";
    auto key = policy::SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    key_.emplace(std::move(*key));

    config_.state_dir = state_dir_;
    config_.enforcement = scratch_.Config();
    // APT runs the pre-install hook even for a purge. enforce_test.cc makes this binary act as
    // `appban agent apt-hook LIST` when APPBAN_AGENT_TEST_APT_HOOK names the list.
    config_.enforcement.apt_hook_command = "APPBAN_AGENT_TEST_APT_HOOK=" + scratch_.root() +
                                           "/var/lib/appban/apt-banned " +
                                           std::filesystem::read_symlink("/proc/self/exe").string();
    config_.backoff_initial = std::chrono::milliseconds(100);
    config_.backoff_max = std::chrono::milliseconds(400);
    config_.timeouts.connect = std::chrono::milliseconds(500);
    config_.timeouts.request = std::chrono::milliseconds(1000);

    // What `appban agent enroll` leaves behind, for a server that is not there.
    auto state = AgentState::Open(state_dir_);
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    ASSERT_TRUE(state->Write(StateItem::kPolicyKeys, policy::PublicKeyPem(key_->public_key())).ok());
    ASSERT_TRUE(state->Write(StateItem::kCredential, "d-0123456789abcdef." + std::string(64, 'a')).ok());
    Enrollment enrollment{"http://127.0.0.1:" + std::to_string(ClosedPort()), kDeviceId, "staff", 300, 60};
    ASSERT_TRUE(WriteEnrollment(state_dir_, enrollment).ok());
  }

  std::string SignedBundle(int64_t version, std::vector<policy::Rule> rules, std::vector<policy::Waiver> waivers = {},
                           UnixSeconds not_after = 0) {
    policy::BundleInputs inputs;
    inputs.version = version;
    inputs.issued_at = Now() - 60;
    inputs.not_after = not_after != 0 ? not_after : Now() + 86400;
    inputs.rules = std::move(rules);
    inputs.waivers = std::move(waivers);
    auto bundle = policy::CompileBundle(inputs);
    EXPECT_TRUE(bundle.ok()) << bundle.status().ToString();
    auto signed_text = policy::SignBundle(*bundle, *key_);
    EXPECT_TRUE(signed_text.ok()) << signed_text.status().ToString();
    return signed_text.ok() ? *signed_text : "";
  }

  // Adopts `envelope` as the cached bundle the way a check-in would (verified first).
  void CacheBundle(const std::string& envelope) {
    auto agent = Agent::Open(config_, Agent::Mode::kAct);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    auto applied = agent->ApplyBundle(envelope, Now());
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
    ASSERT_TRUE(applied->applied);
  }

  std::vector<protocol::DeviceEvent> PendingEvents() {
    auto state = AgentState::Open(state_dir_);
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    return state.ok() ? state->Pending() : std::vector<protocol::DeviceEvent>{};
  }
  static const protocol::DeviceEvent* Find(const std::vector<protocol::DeviceEvent>& events, EventKind kind,
                                           const std::string& app = "") {
    for (const auto& event : events) {
      if (event.kind == kind && (app.empty() || event.app == app)) return &event;
    }
    return nullptr;
  }

  static constexpr const char* kDeviceId = "d-0123456789abcdef";
  ScratchRoot scratch_;
  std::string state_dir_;
  std::optional<policy::SigningKey> key_;
  DaemonConfig config_;
};

// Before enrolment: one plain answer naming the directory once and the command that enrols, and
// a status query creates nothing.
TEST(AgentOpen, NotEnrolledSaysSoOnceAndCreatesNoStateDirectory) {
  std::string parent = testing::MakeTempDir("appban-not-enrolled-");
  DaemonConfig config;
  config.state_dir = parent + "/state";
  auto opened = Agent::Open(config, Agent::Mode::kInspect);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kNotFound);
  const std::string& message = opened.status().message();
  EXPECT_NE(message.find("this device is not enrolled: " + config.state_dir), std::string::npos) << message;
  EXPECT_NE(message.find("appban agent enroll"), std::string::npos) << message;
  EXPECT_EQ(message.find(config.state_dir), message.rfind(config.state_dir)) << "the path twice: " << message;
  EXPECT_FALSE(std::filesystem::exists(config.state_dir));
  std::filesystem::remove_all(parent);
}

TEST(Backoff, DoublesWithJitterUpToTheCap) {
  Backoff backoff(std::chrono::milliseconds(100), std::chrono::milliseconds(1000), 0.1);
  std::vector<int64_t> waits;
  for (int i = 0; i < 8; ++i) waits.push_back(backoff.Next().count());
  // Bases 100, 200, 400, 800, 1000, 1000, ... each within ±10%.
  int64_t bases[] = {100, 200, 400, 800, 1000, 1000, 1000, 1000};
  for (int i = 0; i < 8; ++i) {
    EXPECT_GE(waits[i], bases[i] * 9 / 10) << i;
    EXPECT_LE(waits[i], bases[i] * 11 / 10) << i;
  }
  backoff.Reset();
  EXPECT_LE(backoff.Next().count(), 110);
}

TEST_F(DaemonTest, OnceOfflineEnforcesTheCachedBundleAndKeepsEventsQueued) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim", "bystander", "coreish"}).ok());
  CacheBundle(SignedBundle(1, {BanRule("ban-victim", "victim"), BanRule("ban-core", "coreish")}));

  EXPECT_EQ(RunOnce(config_, {}), kOnceOffline) << "the server is unreachable";
  EXPECT_FALSE(scratch_.Installed("victim"));
  EXPECT_TRUE(scratch_.Installed("bystander"));
  EXPECT_TRUE(scratch_.Installed("coreish")) << "an Essential package is never removed";

  auto events = PendingEvents();
  const auto* removed = Find(events, EventKind::kRemoved, "victim");
  ASSERT_NE(removed, nullptr);
  EXPECT_EQ(removed->rule_id, "ban-victim");
  EXPECT_NE(Find(events, EventKind::kBundleApplied), nullptr);
  // Sequence numbers strictly increase: the server stores each (device, seq) once.
  for (size_t i = 1; i < events.size(); ++i) EXPECT_GT(events[i].seq, events[i - 1].seq);

  // The APT pin that refuses a reinstall was written for the banned package.
  auto pin = ReadFileToString(scratch_.root() + "/etc/apt/preferences.d/appban", 1 << 20);
  ASSERT_TRUE(pin.ok()) << pin.status().ToString();
  EXPECT_NE(pin->find("victim"), std::string::npos);
  EXPECT_NE(pin->find("-1"), std::string::npos);
  // ... and not for the Essential one (hardening #13: that froze its security updates); the status
  // says the rule is not enforced on it and why, and so does the remove_failed event.
  EXPECT_EQ(pin->find("coreish"), std::string::npos) << *pin;
  const auto* core = Find(events, EventKind::kRemoveFailed, "coreish");
  ASSERT_NE(core, nullptr);
  EXPECT_NE(core->detail.find("not enforced"), std::string::npos) << core->detail;

  // The status file says what happened and that the server was not reached.
  auto status = ReadFileToString(state_dir_ + "/status.json", 1 << 20);
  ASSERT_TRUE(status.ok());
  auto report = Json::parse(*status);
  EXPECT_EQ(report["policy_version"], 1);
  EXPECT_EQ(report["last_checkin"]["ok_at"], 0);
  EXPECT_NE(report["last_checkin"]["result"].get<std::string>().find("check-in"), std::string::npos) << report.dump();
  EXPECT_EQ(report["pending_events"].get<size_t>(), events.size());
  ASSERT_EQ(report["not_enforced"].size(), 1u) << report.dump();
  EXPECT_EQ(report["not_enforced"][0]["id"], "coreish");
  EXPECT_EQ(report["not_enforced"][0]["rule"], "ban-core");
  EXPECT_NE(report["not_enforced"][0]["reason"].get<std::string>().find("Essential: yes"), std::string::npos);
}

TEST_F(DaemonTest, TamperedCachedBundleIsRefusedAndNothingIsRemoved) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  std::string envelope = SignedBundle(1, {BanRule("ban-victim", "victim")});
  {
    // Store it as the cached bundle, then alter one byte of the signed payload on disk.
    auto state = AgentState::Open(state_dir_);
    ASSERT_TRUE(state.ok());
    ASSERT_TRUE(state->Write(StateItem::kBundle, envelope).ok());
    ASSERT_TRUE(state->SetBundleVersion(1, Now()).ok());
  }
  std::string path = state_dir_ + "/bundle.json";
  auto stored = ReadFileToString(path, 1 << 20);
  ASSERT_TRUE(stored.ok());
  size_t at = stored->find("ban-victim");
  ASSERT_NE(at, std::string::npos);
  (*stored)[at] = 'B';  // "Ban-victim": still JSON, no longer what was signed
  ASSERT_TRUE(WriteFileAtomically(path, *stored).ok());

  (void)RunOnce(config_, {});
  EXPECT_TRUE(scratch_.Installed("victim")) << "a bundle that fails verification is never applied";
  auto events = PendingEvents();
  EXPECT_EQ(Find(events, EventKind::kRemoved), nullptr);
  const auto* refused = Find(events, EventKind::kBundleRefused);
  ASSERT_NE(refused, nullptr);
  EXPECT_NE(refused->detail.find("version 1"), std::string::npos) << refused->detail;
}

TEST_F(DaemonTest, RolledBackAndForeignAndExpiredBundlesAreRefused) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  CacheBundle(SignedBundle(5, {BanRule("ban-other", "something-else")}));
  auto agent = Agent::Open(config_, Agent::Mode::kAct);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();

  // Version 4 bans victim, correctly signed: an older policy must not come back.
  auto rollback = agent->ApplyBundle(SignedBundle(4, {BanRule("ban-victim", "victim")}), Now());
  ASSERT_FALSE(rollback.ok());
  EXPECT_EQ(rollback.status().code(), StatusCode::kFailedPrecondition) << rollback.status().ToString();

  // Signed by a key the device never pinned.
  auto other_key = policy::SigningKey::Generate();
  ASSERT_TRUE(other_key.ok());
  policy::BundleInputs inputs;
  inputs.version = 9;
  inputs.issued_at = Now() - 10;
  inputs.not_after = Now() + 3600;
  inputs.rules = {BanRule("ban-victim", "victim")};
  auto foreign = policy::SignBundle(*policy::CompileBundle(inputs), *other_key);
  ASSERT_TRUE(foreign.ok());
  auto refused_foreign = agent->ApplyBundle(*foreign, Now());
  ASSERT_FALSE(refused_foreign.ok());
  EXPECT_EQ(refused_foreign.status().code(), StatusCode::kNotFound) << refused_foreign.status().ToString();

  // Newer but already expired.
  auto expired = agent->ApplyBundle(SignedBundle(6, {BanRule("ban-victim", "victim")}, {}, Now() - 1), Now());
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), StatusCode::kExpired) << expired.status().ToString();

  EXPECT_EQ(agent->held_version(), 5);
  ASSERT_TRUE(agent->EnforceCycle(Now()).ok());
  EXPECT_TRUE(scratch_.Installed("victim"));
  auto events = agent->state().Pending();
  int refused = 0;
  bool rollback_named = false;
  for (const auto& event : events) {
    if (event.kind != EventKind::kBundleRefused) continue;
    ++refused;
    if (event.detail.find("version 4") != std::string::npos) rollback_named = true;
  }
  EXPECT_EQ(refused, 3);
  EXPECT_TRUE(rollback_named);
  EXPECT_EQ(Find(events, EventKind::kRemoved), nullptr);

  // The same refused bundle offered again (a server resending it) is reported once.
  ASSERT_FALSE(agent->ApplyBundle(*foreign, Now()).ok());
  EXPECT_EQ(agent->state().pending_count(), events.size());
}

// Hardening item 12 at the agent: bundles signed with the pinned key that must still be refused.
// The payload is the one SignedBundle would sign, changed, with a matching rules_hash.
TEST_F(DaemonTest, SignedButWrongBundlesAreRefused) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  CacheBundle(SignedBundle(5, {BanRule("ban-other", "something-else")}));
  auto sign = [&](int64_t version, const std::function<void(Json&)>& change) {
    policy::BundleInputs inputs;
    inputs.version = 6;  // what CompileBundle accepts; the payload then says `version`
    inputs.issued_at = Now() - 60;
    inputs.not_after = Now() + 86400;
    inputs.rules = {BanRule("ban-victim", "victim")};
    auto payload = Json::parse(*policy::BundlePayload(*policy::CompileBundle(inputs)));
    payload["version"] = version;
    change(payload);
    Json content{{"rules", payload["rules"]}, {"vendors", payload["vendors"]}, {"waivers", payload["waivers"]}};
    payload["rules_hash"] = Sha256Hex(AsBytes(*CanonicalJson(content)));
    return *policy::SignPayload(*CanonicalJson(payload), *key_);
  };
  auto nothing = [](Json&) {};
  struct Case {
    std::string name;
    std::string envelope;
    StatusCode code;
  };
  std::vector<Case> cases = {
      {"same version, other content", sign(5, nothing), StatusCode::kFailedPrecondition},
      {"unknown member", sign(6, [](Json& p) { p["next_keys"] = Json::array(); }), StatusCode::kCorruption},
      {"duplicate rule id", sign(6, [](Json& p) { p["rules"].push_back(p["rules"][0]); }), StatusCode::kCorruption},
      {"issued after not_after", sign(6, [](Json& p) { p["issued_at"] = FormatTimestamp(Now() + 2 * 86400); }),
       StatusCode::kCorruption},
      {"100-year validity", sign(6, [](Json& p) { p["not_after"] = FormatTimestamp(Now() + 100LL * 366 * 86400); }),
       StatusCode::kLimitExceeded},
      {"version 2^63-1", sign(std::numeric_limits<int64_t>::max(), nothing), StatusCode::kLimitExceeded},
      {"version jump", sign(5 + policy::kMaxBundleVersionStep + 1, nothing), StatusCode::kFailedPrecondition},
  };
  for (int restart = 0; restart < 2; ++restart) {  // the held bundle's identity survives a restart
    auto agent = Agent::Open(config_, Agent::Mode::kAct);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    for (const auto& c : cases) {
      auto applied = agent->ApplyBundle(c.envelope, Now());
      ASSERT_FALSE(applied.ok()) << c.name << " was applied";
      EXPECT_EQ(applied.status().code(), c.code) << c.name << ": " << applied.status().ToString();
    }
    EXPECT_EQ(agent->held_version(), 5);
    ASSERT_TRUE(agent->EnforceCycle(Now()).ok());
    EXPECT_TRUE(scratch_.Installed("victim")) << "a refused bundle was enforced";
  }
}

// Hardening item 10 at the agent: the pinned key hands over to a new key through a statement it
// signed; the agent follows it (durably), applies the new key's bundle and from then on refuses
// the old key, even for a higher version with no rules.
TEST_F(DaemonTest, KeyRotationIsFollowedAndTheOldKeyRefused) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  CacheBundle(SignedBundle(5, {BanRule("ban-other", "something-else")}));
  auto new_key = policy::SigningKey::Generate();
  ASSERT_TRUE(new_key.ok());
  auto sign_with = [&](const policy::SigningKey& key, int64_t version, std::vector<policy::Rule> rules) {
    policy::BundleInputs inputs;
    inputs.version = version;
    inputs.issued_at = Now() - 60;
    inputs.not_after = Now() + 86400;
    inputs.rules = std::move(rules);
    return *policy::SignBundle(*policy::CompileBundle(inputs), key);
  };
  std::string rotation = *policy::SignKeyRotation(*key_, new_key->public_key(), Now());
  {
    auto agent = Agent::Open(config_, Agent::Mode::kAct);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    // Without the statement the new key is unknown (what stranded the fleet before).
    std::string v6 = sign_with(*new_key, 6, {BanRule("ban-victim", "victim")});
    EXPECT_EQ(agent->ApplyBundle(v6, Now()).status().code(), StatusCode::kNotFound);
    // A statement signed by another key is not followed.
    auto stranger = policy::SigningKey::Generate();
    std::string forged = *policy::SignKeyRotation(*stranger, new_key->public_key(), Now());
    EXPECT_FALSE(agent->ApplyBundle(v6, Now(), {forged}).ok());
    ASSERT_EQ(agent->pinned_keys().size(), 1u);
    EXPECT_EQ(agent->pinned_keys()[0].key_id, key_->key_id());
    // With it: followed, and the new key's bundle applies.
    auto applied = agent->ApplyBundle(v6, Now(), {rotation});
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
    EXPECT_TRUE(applied->applied);
    ASSERT_EQ(agent->pinned_keys().size(), 1u);
    EXPECT_EQ(agent->pinned_keys()[0].key_id, new_key->key_id());
    ASSERT_TRUE(agent->EnforceCycle(Now()).ok());
    EXPECT_FALSE(scratch_.Installed("victim"));
  }
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  auto agent = Agent::Open(config_, Agent::Mode::kAct);  // the new pin survives a restart
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  EXPECT_EQ(agent->held_version(), 6);
  // The retired key signs a higher version with no rules: refused, the ban stays.
  auto old_key_bundle = agent->ApplyBundle(sign_with(*key_, 7, {}), Now(), {rotation});
  ASSERT_FALSE(old_key_bundle.ok()) << "a bundle signed by the rotated-out key was accepted";
  EXPECT_EQ(old_key_bundle.status().code(), StatusCode::kNotFound) << old_key_bundle.status().ToString();
  EXPECT_EQ(agent->held_version(), 6);
  ASSERT_TRUE(agent->EnforceCycle(Now()).ok());
  EXPECT_FALSE(scratch_.Installed("victim"));
}

TEST_F(DaemonTest, MonitorModeRemovesNothingAndReportsWhatItWouldRemove) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim", "bystander"}).ok());
  CacheBundle(SignedBundle(1, {BanRule("ban-victim", "victim")}));
  config_.enforcement.monitor = true;
  (void)RunOnce(config_, {});
  EXPECT_TRUE(scratch_.Installed("victim"));
  auto events = PendingEvents();
  const auto* would = Find(events, EventKind::kMonitorWouldRemove, "victim");
  ASSERT_NE(would, nullptr);
  EXPECT_EQ(would->rule_id, "ban-victim");
  EXPECT_EQ(Find(events, EventKind::kRemoved), nullptr);
  EXPECT_FALSE(std::filesystem::exists(scratch_.root() + "/etc/apt/preferences.d/appban"))
      << "monitor mode writes no APT pin";
}

class RunningDaemon {
 public:
  explicit RunningDaemon(const DaemonConfig& config)
      : thread_([this, config](std::stop_token stop) {
          result_ = RunDaemon(config, stop, [](std::string_view line) { std::cerr << "daemon: " << line << "\n"; });
        }) {}
  Status Stop() {
    thread_.request_stop();
    thread_.join();
    return result_;
  }
  ~RunningDaemon() {
    if (thread_.joinable()) (void)Stop();
  }

 private:
  Status result_;
  std::jthread thread_;
};

// Waits until `condition` holds; returns the time it took, or nullopt after `limit`.
template <typename Condition>
std::optional<std::chrono::milliseconds> TimeUntil(Condition condition, std::chrono::milliseconds limit) {
  auto start = Clock::now();
  while (Clock::now() - start < limit) {
    if (condition()) return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

TEST_F(DaemonTest, RunningDaemonUndoesDpkgInstallOfABannedPackageWithoutWaitingForItsCycle) {
  ASSERT_TRUE(scratch_.DpkgInstall({"bystander"}).ok());
  CacheBundle(SignedBundle(1, {BanRule("ban-victim", "victim")}));
  RunningDaemon daemon(config_);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // first cycle done, watcher armed

  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  auto undone = TimeUntil([&] { return !scratch_.Installed("victim"); }, std::chrono::seconds(10));
  ASSERT_TRUE(undone.has_value()) << "the dpkg -i was not undone";
  std::cout << "[ measured ] dpkg -i of a banned package undone by the daemon after " << undone->count() << " ms\n";
  // The watcher, not the next cycle (minutes away), undid it. Typically ~100-300 ms idle; the bound
  // leaves room for a loaded 2-core CI machine (1.2 s seen) — speed is measured, not tested.
  EXPECT_LT(undone->count(), 5000);
  EXPECT_TRUE(scratch_.Installed("bystander"));
  ASSERT_TRUE(daemon.Stop().ok());
  EXPECT_NE(Find(PendingEvents(), EventKind::kRemoved, "victim"), nullptr) << "queued while the server is away";
}

TEST_F(DaemonTest, WaiverKeepsThePackageUntilItExpiresThenTheDaemonRemovesItWithoutANewBundle) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  policy::Waiver waiver;
  waiver.id = "w-victim";
  waiver.rule_id = "ban-victim";
  waiver.subject_kind = policy::WaiverSubject::kDevice;
  waiver.subject = kDeviceId;
  waiver.justification = "evaluation";
  waiver.approved_by = "cio";
  waiver.created_at = Now() - 30;
  UnixSeconds expires = Now() + 4;
  waiver.expires_at = expires;
  CacheBundle(SignedBundle(1, {BanRule("ban-victim", "victim")}, {waiver}));
  // Nothing wakes the daemon at expiry but the expiry itself: no new bundle, no local change,
  // and the periodic full cycle is far away.
  config_.full_cycle_interval = std::chrono::hours(1);
  RunningDaemon daemon(config_);

  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_TRUE(scratch_.Installed("victim")) << "waived until " << expires;
  auto removed = TimeUntil([&] { return !scratch_.Installed("victim"); }, std::chrono::seconds(10));
  ASSERT_TRUE(removed.has_value()) << "the expired waiver was not enforced";
  UnixSeconds removed_at = Now();
  std::cout << "[ measured ] removed " << removed_at - expires << " s after the waiver expired\n";
  EXPECT_GE(removed_at, expires);
  EXPECT_LE(removed_at, expires + 2);
  ASSERT_TRUE(daemon.Stop().ok());

  auto events = PendingEvents();
  EXPECT_NE(Find(events, EventKind::kWaiverApplied, "victim"), nullptr);
  EXPECT_NE(Find(events, EventKind::kRemoved, "victim"), nullptr);
}

// Regression (hardening #14): the agent removed a package, then could not write events.log
// (ENOSPC); once space was freed the server showed the device compliant with no record of the
// removal. A full disk must stop the agent before it acts; the refusal and, once space is back,
// the removal itself reach the event queue. The state directory lives on a 256 KiB tmpfs filled
// to the last page (mounting needs CAP_SYS_ADMIN: without it the test is skipped).
TEST_F(DaemonTest, AFullDiskStopsRemovalsUntilTheyCanBeRecorded) {
  const std::string small = scratch_.dir() + "/small";
  std::filesystem::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=256k,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs for the state directory: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{small};
  std::filesystem::copy(state_dir_, small + "/state", std::filesystem::copy_options::recursive);
  config_.state_dir = small + "/state";
  state_dir_ = config_.state_dir;
  ASSERT_TRUE(scratch_.DpkgInstall({"victim", "bystander"}).ok());
  CacheBundle(SignedBundle(1, {BanRule("ban-victim", "victim"), BanRule("ban-bystander", "bystander")}));

  // Fill the file system to the last byte.
  const std::string filler = small + "/filler";
  {
    int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    std::string block(4096, 'x');
    while (::write(fd, block.data(), block.size()) > 0) {
    }
    while (::write(fd, block.data(), 1) > 0) {
    }
    EXPECT_EQ(errno, ENOSPC);
    ::close(fd);
  }
  {
    auto agent = Agent::Open(config_, Agent::Mode::kAct);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    (void)agent->EnforceCycle(Now());  // may fail: its refusal event may not fit either
    EXPECT_TRUE(scratch_.Installed("victim")) << "removed while the removal could not be recorded";
    EXPECT_TRUE(scratch_.Installed("bystander"));
    EXPECT_FALSE(agent->state().intent().has_value());

    // Space comes back: the next cycle writes the refusal, then removes and records.
    ::unlink(filler.c_str());
    Status cycle = agent->EnforceCycle(Now());
    EXPECT_TRUE(cycle.ok()) << cycle.ToString();
    EXPECT_FALSE(scratch_.Installed("victim"));
    EXPECT_FALSE(scratch_.Installed("bystander"));
    EXPECT_FALSE(agent->state().intent().has_value());
  }
  auto events = PendingEvents();
  // The first removal planned was refused (and the agent stopped there).
  const auto* refused = Find(events, EventKind::kRemoveFailed);
  ASSERT_NE(refused, nullptr);
  EXPECT_NE(refused->detail.find("cannot record the action"), std::string::npos) << refused->detail;
  EXPECT_NE(refused->detail.find("No space left on device"), std::string::npos) << refused->detail;
  EXPECT_NE(Find(events, EventKind::kRemoved, "victim"), nullptr);
  EXPECT_NE(Find(events, EventKind::kRemoved, "bystander"), nullptr);
  for (size_t i = 1; i < events.size(); ++i) EXPECT_EQ(events[i].seq, events[i - 1].seq + 1);
}

// An agent killed between a removal and the record of its outcome leaves the intent behind; the
// next start reports what happened to the package instead of nothing.
TEST_F(DaemonTest, AnInterruptedRemovalIsReportedAtTheNextCycle) {
  ASSERT_TRUE(scratch_.DpkgInstall({"bystander"}).ok());
  CacheBundle(SignedBundle(1, {BanRule("ban-victim", "victim")}));
  {
    auto state = AgentState::Open(state_dir_);
    ASSERT_TRUE(state.ok());
    // victim is gone (the removal ran), bystander is not (it was interrupted before).
    ASSERT_TRUE(state->RecordIntent({"deb", "victim", "ban-victim", Now() - 5}).ok());
  }
  {
    auto agent = Agent::Open(config_, Agent::Mode::kAct);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    ASSERT_TRUE(agent->state().intent().has_value());
    ASSERT_TRUE(agent->EnforceCycle(Now()).ok());
    EXPECT_FALSE(agent->state().intent().has_value());
  }
  auto events = PendingEvents();
  const auto* late = Find(events, EventKind::kRemoved, "victim");
  ASSERT_NE(late, nullptr);
  EXPECT_EQ(late->rule_id, "ban-victim");
  EXPECT_NE(late->detail.find("recorded late"), std::string::npos) << late->detail;
  {
    auto state = AgentState::Open(state_dir_);
    ASSERT_TRUE(state.ok());
    ASSERT_TRUE(state->RecordIntent({"deb", "bystander", "ban-victim", Now() - 5}).ok());
  }
  {
    auto agent = Agent::Open(config_, Agent::Mode::kAct);
    ASSERT_TRUE(agent.ok());
    ASSERT_TRUE(agent->EnforceCycle(Now()).ok());
  }
  events = PendingEvents();
  const auto* interrupted = Find(events, EventKind::kRemoveFailed, "bystander");
  ASSERT_NE(interrupted, nullptr);
  EXPECT_NE(interrupted->detail.find("interrupted"), std::string::npos) << interrupted->detail;
  EXPECT_TRUE(scratch_.Installed("bystander")) << "no rule bans it";
}

TEST_F(DaemonTest, AStateDirectoryWithoutEnrolmentIsAClearError) {
  DaemonConfig config = config_;
  config.state_dir = scratch_.dir() + "/empty-state";
  auto agent = Agent::Open(config, Agent::Mode::kAct);
  ASSERT_FALSE(agent.ok());
  EXPECT_NE(agent.status().message().find("enroll"), std::string::npos) << agent.status().ToString();
}

}  // namespace
}  // namespace appban::agent
