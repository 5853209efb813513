#include "appban/agent/enforce.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "appban/agent/agent_test_support.h"
#include "appban/agent/watch.h"
#include "appban/common/file.h"
#include "appban/common/json.h"

namespace appban::agent {
namespace {

// APT runs the pre-install hook as a shell command. The tests point it at this very binary with
// APPBAN_AGENT_TEST_APT_HOOK set: before gtest starts, the binary then behaves exactly like
// `appban agent apt-hook LIST` (which the CLI wires to the same function) and exits.
const bool kRanAsAptHook = [] {
  const char* list = std::getenv("APPBAN_AGENT_TEST_APT_HOOK");
  if (list == nullptr) return false;
  ::_exit(RunAptPreInstallHook(std::cin, list, std::cerr));
}();

using policy::Platform;
using protocol::EventKind;
using testing::MustRun;
using testing::ScratchRoot;
using testing::WriteText;

constexpr UnixSeconds kNow = 1800000000;

std::string SelfExe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

policy::Rule MakeRule(const std::string& id, policy::Action action, policy::TargetKind kind, const std::string& value) {
  policy::Rule rule;
  rule.id = id;
  rule.title = id;
  rule.action = action;
  rule.targets = {*policy::MakeTarget(kind, value)};
  rule.state = policy::RuleState::kPublished;
  return rule;
}

policy::Bundle MakeBundle(std::vector<policy::Rule> rules, std::vector<policy::Waiver> waivers = {}) {
  policy::BundleInputs inputs;
  inputs.version = 1;
  inputs.issued_at = kNow - 100;
  inputs.not_after = kNow + 86400 * 30;
  inputs.rules = std::move(rules);
  inputs.waivers = std::move(waivers);
  auto bundle = policy::CompileBundle(inputs);
  EXPECT_TRUE(bundle.ok()) << bundle.status().ToString();
  return *bundle;
}

const policy::DeviceContext kDevice{"dev-1", {"staff"}};

// Evaluates inventories against `bundle` the way the daemon will.
struct Policy {
  policy::Bundle bundle;
  policy::PolicyIndex index;
  explicit Policy(policy::Bundle b) : bundle(std::move(b)), index(*policy::PolicyIndex::Build(bundle)) {}
  DecideFn Decider(const UnixSeconds* now) const {
    return [this, now](const LocalInventory& inventory) {
      auto apps = inventory.Apps();
      return index.EvaluateAll(apps, kDevice, *now);
    };
  }
};

struct Recorder {
  std::vector<protocol::DeviceEvent> events;
  RecordFn Fn() {
    return [this](std::vector<protocol::DeviceEvent> batch) {
      events.insert(events.end(), batch.begin(), batch.end());
      return Status::Ok();
    };
  }
  const protocol::DeviceEvent* Find(EventKind kind, const std::string& app) const {
    for (const auto& event : events) {
      if (event.kind == kind && event.app == app) return &event;
    }
    return nullptr;
  }
};

class EnforceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scratch_.BuildDeb("banned");
    scratch_.BuildDeb("unrelated");
    scratch_.BuildDeb("coreish", "Essential: yes\nPriority: required\n");
    scratch_.BuildDeb("dependent", "Depends: banned\n");
    scratch_.BuildDeb("libbanned");
    scratch_.BuildDeb("coredep", "Priority: required\nDepends: libbanned\n");
    scratch_.BuildDeb("libvirtual", "Provides: banned-feature\n");
    scratch_.BuildDeb("corevirt", "Priority: required\nDepends: banned-feature\n");
  }
  ScratchRoot scratch_;
};

// The standard rules: ban `banned` (remove), try to ban the Essential `coreish` (must be refused).
Policy StandardPolicy() {
  return Policy(
      MakeBundle({MakeRule("ban-banned", policy::Action::kRemove, policy::TargetKind::kDebPackage, "banned"),
                  MakeRule("ban-core", policy::Action::kRemove, policy::TargetKind::kDebPackage, "coreish")}));
}

TEST_F(EnforceTest, RemovesBannedPackageAndDependentsLeavesUnrelatedAndEssential) {
  ASSERT_TRUE(scratch_.DpkgInstall({"banned", "unrelated", "coreish", "dependent"}).ok());
  Policy policy = StandardPolicy();
  UnixSeconds now = kNow;
  Enforcer enforcer(scratch_.Config());
  Recorder recorder;
  auto status = EnforceOnce(enforcer.config().paths, enforcer, policy.Decider(&now), recorder.Fn(), now);
  ASSERT_TRUE(status.ok()) << status.ToString();

  EXPECT_FALSE(scratch_.Installed("banned"));
  EXPECT_FALSE(scratch_.Installed("dependent"));  // APT takes what depends on it along
  EXPECT_TRUE(scratch_.Installed("unrelated"));
  EXPECT_TRUE(scratch_.Installed("coreish"));
  const auto* removed = recorder.Find(EventKind::kRemoved, "banned");
  ASSERT_NE(removed, nullptr);
  EXPECT_EQ(removed->rule_id, "ban-banned");
  EXPECT_NE(removed->detail.find("apt-get purge"), std::string::npos) << removed->detail;
  const auto* dependent = recorder.Find(EventKind::kRemoved, "dependent");
  ASSERT_NE(dependent, nullptr);
  EXPECT_NE(dependent->detail.find("depends on banned"), std::string::npos) << dependent->detail;
  const auto* refused = recorder.Find(EventKind::kRemoveFailed, "coreish");
  ASSERT_NE(refused, nullptr);
  EXPECT_NE(refused->detail.find("Essential"), std::string::npos);

  // A second cycle changes nothing and repeats no event.
  Recorder again;
  ASSERT_TRUE(EnforceOnce(enforcer.config().paths, enforcer, policy.Decider(&now), again.Fn(), now).ok());
  EXPECT_TRUE(again.events.empty());
}

TEST_F(EnforceTest, RefusesRemovalThatWouldTakeARequiredPackageWithIt) {
  ASSERT_TRUE(scratch_.DpkgInstall({"libbanned", "coredep", "libvirtual", "corevirt"}).ok());
  Policy policy(
      MakeBundle({MakeRule("ban-lib", policy::Action::kRemove, policy::TargetKind::kDebPackage, "libbanned"),
                  MakeRule("ban-virt", policy::Action::kRemove, policy::TargetKind::kDebPackage, "libvirtual")}));
  UnixSeconds now = kNow;
  Enforcer enforcer(scratch_.Config());
  Recorder recorder;
  ASSERT_TRUE(EnforceOnce(enforcer.config().paths, enforcer, policy.Decider(&now), recorder.Fn(), now).ok());
  EXPECT_TRUE(scratch_.Installed("libbanned"));
  EXPECT_TRUE(scratch_.Installed("coredep"));
  // The dpkg database says a required package depends on it: protected, never even tried.
  const auto* refused = recorder.Find(EventKind::kRemoveFailed, "libbanned");
  ASSERT_NE(refused, nullptr);
  EXPECT_NE(refused->detail.find("needed by coredep, which is Priority: required"), std::string::npos)
      << refused->detail;
  // Through a virtual package only APT's simulation sees the dependency.
  EXPECT_TRUE(scratch_.Installed("libvirtual"));
  EXPECT_TRUE(scratch_.Installed("corevirt"));
  const auto* simulated = recorder.Find(EventKind::kRemoveFailed, "libvirtual");
  ASSERT_NE(simulated, nullptr);
  EXPECT_NE(simulated->detail.find("would also remove corevirt"), std::string::npos) << simulated->detail;
}

// APT unusable: dpkg alone. It removes a package nothing depends on, and refuses (with its own
// stderr in the event) one that another package still needs.
// Regression: with a root other than "/", APT must hand dpkg that root and its database. Without
// the DPkg::Options, dpkg acted on the running system's own database (found in a manual run; the
// other tests could not see it because their dpkg wrapper refuses to leave the scratch root).
TEST_F(EnforceTest, AptIsToldToRunDpkgInsideTheRoot) {
  ASSERT_TRUE(scratch_.DpkgInstall({"banned"}).ok());
  auto config = scratch_.Config();
  const std::string argv_file = scratch_.dir() + "/apt-argv";
  const std::string recorder = scratch_.dir() + "/recording-apt-get";
  {
    std::ofstream script(recorder);
    script << "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '" << argv_file << "'; done\nexit 100\n";
  }
  std::filesystem::permissions(recorder, std::filesystem::perms::owner_all);
  config.apt_get = recorder;
  Policy policy(
      MakeBundle({MakeRule("ban-banned", policy::Action::kRemove, policy::TargetKind::kDebPackage, "banned")}));
  UnixSeconds now = kNow;
  Enforcer enforcer(config);
  Recorder events;
  (void)EnforceOnce(config.paths, enforcer, policy.Decider(&now), events.Fn(), now);
  std::ifstream in(argv_file);
  std::vector<std::string> argv;
  for (std::string line; std::getline(in, line);) argv.push_back(line);
  ASSERT_FALSE(argv.empty()) << "APT was not run";
  auto has = [&](const std::string& wanted) { return std::find(argv.begin(), argv.end(), wanted) != argv.end(); };
  EXPECT_TRUE(has("DPkg::Options::=--root=" + config.paths.root));
  EXPECT_TRUE(has("DPkg::Options::=--admindir=" + config.paths.dpkg_admindir));
  EXPECT_TRUE(has("Dir::State::status=" + config.paths.dpkg_admindir + "/status"));
  EXPECT_NE(config.paths.root, "/");
}

TEST_F(EnforceTest, DpkgFallbackWhenAptCannotSimulate) {
  ASSERT_TRUE(scratch_.DpkgInstall({"banned", "dependent", "unrelated"}).ok());
  auto config = scratch_.Config();
  config.apt_get = scratch_.dir() + "/no-such-apt-get";
  Policy policy(
      MakeBundle({MakeRule("ban-banned", policy::Action::kRemove, policy::TargetKind::kDebPackage, "banned"),
                  MakeRule("ban-unrelated", policy::Action::kRemove, policy::TargetKind::kDebPackage, "unrelated")}));
  UnixSeconds now = kNow;
  Enforcer enforcer(config);
  Recorder recorder;
  ASSERT_TRUE(EnforceOnce(config.paths, enforcer, policy.Decider(&now), recorder.Fn(), now).ok());
  EXPECT_FALSE(scratch_.Installed("unrelated"));
  EXPECT_TRUE(scratch_.Installed("banned"));
  EXPECT_TRUE(scratch_.Installed("dependent"));
  const auto* removed = recorder.Find(EventKind::kRemoved, "unrelated");
  ASSERT_NE(removed, nullptr);
  EXPECT_NE(removed->detail.find("dpkg --purge"), std::string::npos);
  const auto* failed = recorder.Find(EventKind::kRemoveFailed, "banned");
  ASSERT_NE(failed, nullptr);
  EXPECT_NE(failed->detail.find("dependency problems"), std::string::npos) << failed->detail;
}

TEST_F(EnforceTest, MonitorModeAndReportRulesOnlyReport) {
  ASSERT_TRUE(scratch_.DpkgInstall({"banned", "unrelated"}).ok());
  UnixSeconds now = kNow;
  {
    auto config = scratch_.Config();
    config.monitor = true;
    Policy policy = StandardPolicy();
    Enforcer enforcer(config);
    Recorder recorder;
    ASSERT_TRUE(EnforceOnce(config.paths, enforcer, policy.Decider(&now), recorder.Fn(), now).ok());
    ASSERT_TRUE(enforcer.WriteInstallBlocks(InstallBlocklist(policy.bundle, policy.index, kDevice, now)).ok());
    EXPECT_TRUE(scratch_.Installed("banned"));
    ASSERT_NE(recorder.Find(EventKind::kMonitorWouldRemove, "banned"), nullptr);
    EXPECT_FALSE(std::filesystem::exists(scratch_.root() + "/etc/apt/preferences.d/appban"));
  }
  {
    Policy policy(
        MakeBundle({MakeRule("watch-banned", policy::Action::kReport, policy::TargetKind::kDebPackage, "banned")}));
    Enforcer enforcer(scratch_.Config());
    Recorder recorder;
    ASSERT_TRUE(EnforceOnce(enforcer.config().paths, enforcer, policy.Decider(&now), recorder.Fn(), now).ok());
    EXPECT_TRUE(scratch_.Installed("banned"));
    const auto* would = recorder.Find(EventKind::kMonitorWouldRemove, "banned");
    ASSERT_NE(would, nullptr);
    EXPECT_EQ(would->rule_id, "watch-banned");
  }
}

TEST_F(EnforceTest, WaiverKeepsPackageUntilItExpires) {
  ASSERT_TRUE(scratch_.DpkgInstall({"banned"}).ok());
  policy::Waiver waiver;
  waiver.id = "w-1";
  waiver.rule_id = "ban-banned";
  waiver.subject_kind = policy::WaiverSubject::kDevice;
  waiver.subject = "dev-1";
  waiver.justification = "liaison work";
  waiver.approved_by = "ciso";
  waiver.created_at = kNow - 1000;
  waiver.expires_at = kNow + 3600;
  Policy policy(MakeBundle({MakeRule("ban-banned", policy::Action::kRemove, policy::TargetKind::kDebPackage, "banned")},
                           {waiver}));
  UnixSeconds now = kNow;
  Enforcer enforcer(scratch_.Config());
  Recorder recorder;
  ASSERT_TRUE(EnforceOnce(enforcer.config().paths, enforcer, policy.Decider(&now), recorder.Fn(), now).ok());
  EXPECT_TRUE(scratch_.Installed("banned"));
  ASSERT_NE(recorder.Find(EventKind::kWaiverApplied, "banned"), nullptr);

  auto inventory = CollectInventory(enforcer.config().paths);
  ASSERT_TRUE(inventory.ok());
  auto decisions = policy.Decider(&now)(*inventory);
  ASSERT_EQ(NextWaiverExpiry(decisions), kNow + 3600);

  now = kNow + 3600;  // the same bundle, evaluated at the expiry
  ASSERT_TRUE(EnforceOnce(enforcer.config().paths, enforcer, policy.Decider(&now), recorder.Fn(), now).ok());
  EXPECT_FALSE(scratch_.Installed("banned"));
  ASSERT_NE(recorder.Find(EventKind::kRemoved, "banned"), nullptr);
}

TEST_F(EnforceTest, AptRefusesBannedPackageFromRepositoryAndAsLocalDeb) {
  scratch_.RefreshRepository();
  Policy policy = StandardPolicy();
  auto config = scratch_.Config();
  config.apt_hook_command =
      "APPBAN_AGENT_TEST_APT_HOOK=" + config.paths.root + "/var/lib/appban/apt-banned " + SelfExe();
  Enforcer enforcer(config);
  auto blocklist = InstallBlocklist(policy.bundle, policy.index, kDevice, kNow);
  ASSERT_EQ(blocklist.size(), 2u);  // banned and coreish, both deb
  ASSERT_TRUE(enforcer.WriteInstallBlocks(blocklist).ok());

  // From the repository: the pin leaves APT no candidate.
  auto from_repo = MustRun({"apt-get", "-y", "-q", "install", "banned"}, {scratch_.apt_env()});
  EXPECT_FALSE(from_repo.ok());
  EXPECT_NE(from_repo.stderr_text.find("has no installation candidate"), std::string::npos) << from_repo.Describe();
  EXPECT_FALSE(scratch_.Installed("banned"));

  // As a local file the pin does not apply: the pre-install hook refuses it, naming the rule.
  auto local = MustRun({"apt-get", "-y", "-q", "install", scratch_.deb("banned")}, {scratch_.apt_env()});
  EXPECT_FALSE(local.ok());
  EXPECT_NE(local.stderr_text.find("refusing to install banned"), std::string::npos) << local.Describe();
  EXPECT_NE(local.stderr_text.find("rule ban-banned"), std::string::npos) << local.Describe();
  EXPECT_FALSE(scratch_.Installed("banned"));

  // The refusal reaches the agent's event stream.
  auto refusals = enforcer.CollectRefusals(kNow);
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].kind, EventKind::kInstallRefused);
  EXPECT_EQ(refusals[0].app, "banned");
  EXPECT_EQ(refusals[0].rule_id, "ban-banned");
  EXPECT_TRUE(enforcer.CollectRefusals(kNow).empty());

  // Unrelated packages still install, through the same hook.
  auto unrelated = MustRun({"apt-get", "-y", "-q", "install", scratch_.deb("unrelated")}, {scratch_.apt_env()});
  EXPECT_TRUE(unrelated.ok()) << unrelated.Describe();
  EXPECT_TRUE(scratch_.Installed("unrelated"));

  // Remove and reinstall ban lists: a hook program that is not installed must not break APT.
  auto missing_hook = scratch_.Config();
  missing_hook.apt_hook_command = scratch_.dir() + "/not-installed/appban agent apt-hook";
  Enforcer without_agent(missing_hook);
  ASSERT_TRUE(without_agent.WriteInstallBlocks(blocklist).ok());
  auto purge = MustRun({"apt-get", "-y", "-q", "purge", "unrelated"}, {scratch_.apt_env()});
  EXPECT_TRUE(purge.ok()) << purge.Describe();
  EXPECT_FALSE(scratch_.Installed("unrelated"));

  // The dpkg post-invoke file is written for real roots (dpkg reads it from /etc/dpkg only).
  auto dpkg_cfg = ReadFileToString(config.paths.root + "/etc/dpkg/dpkg.cfg.d/appban", 4096);
  ASSERT_TRUE(dpkg_cfg.ok());
  EXPECT_NE(dpkg_cfg->find("post-invoke=\"touch " + config.wake_file), std::string::npos);
}

// Regression (hardening #13): a rule naming a package the system cannot lose was refused for
// removal, but the agent still pinned it at -1 and its APT hook refused its upgrades ("banned by
// policy"), so one bad rule blocked security updates fleet-wide. `coreish` plays dpkg (Essential),
// `fakelibc` plays libc6 (Priority: optional, but coreish depends on it).
TEST_F(EnforceTest, ProtectedPackagesAreNeverPinnedNorRefusedAndTheirUpgradesGoThrough) {
  const std::string core_control = "Essential: yes\nPriority: required\nDepends: fakelibc (>= 1.0)\n";
  scratch_.BuildDeb("fakelibc");
  scratch_.BuildDeb("coreish", core_control);
  ASSERT_TRUE(scratch_.DpkgInstall({"fakelibc", "coreish", "banned"}).ok());
  scratch_.BuildDeb("fakelibc", "", "2.0");
  scratch_.BuildDeb("coreish", core_control, "2.0");
  scratch_.BuildDeb("banned", "", "2.0");
  scratch_.RefreshRepository();

  Policy policy(
      MakeBundle({MakeRule("ban-banned", policy::Action::kRemove, policy::TargetKind::kDebPackage, "banned"),
                  MakeRule("ban-core", policy::Action::kRemove, policy::TargetKind::kDebPackage, "coreish"),
                  MakeRule("ban-libc", policy::Action::kBlock, policy::TargetKind::kDebPackage, "fakelibc")}));
  auto config = scratch_.Config();
  config.apt_hook_command =
      "APPBAN_AGENT_TEST_APT_HOOK=" + config.paths.root + "/var/lib/appban/apt-banned " + SelfExe();
  Enforcer enforcer(config);
  UnixSeconds now = kNow;
  Recorder recorder;
  ASSERT_TRUE(EnforceOnce(config.paths, enforcer, policy.Decider(&now), recorder.Fn(), now).ok());
  EXPECT_FALSE(scratch_.Installed("banned"));
  EXPECT_TRUE(scratch_.Installed("coreish"));
  const auto* core_event = recorder.Find(EventKind::kRemoveFailed, "coreish");
  ASSERT_NE(core_event, nullptr);
  EXPECT_NE(core_event->detail.find("not enforced"), std::string::npos) << core_event->detail;
  EXPECT_NE(core_event->detail.find("Essential: yes"), std::string::npos) << core_event->detail;

  auto blocklist = InstallBlocklist(policy.bundle, policy.index, kDevice, now);
  ASSERT_EQ(blocklist.size(), 3u);
  auto unenforced = enforcer.WriteInstallBlocks(blocklist);
  ASSERT_TRUE(unenforced.ok()) << unenforced.status().ToString();
  ASSERT_EQ(unenforced->size(), 2u);
  EXPECT_EQ((*unenforced)[0].app.id, "coreish");
  EXPECT_NE((*unenforced)[0].reason.find("Essential: yes"), std::string::npos) << (*unenforced)[0].reason;
  EXPECT_EQ((*unenforced)[1].app.id, "fakelibc");
  EXPECT_NE((*unenforced)[1].reason.find("needed by coreish"), std::string::npos) << (*unenforced)[1].reason;
  auto preferences = ReadFileToString(config.paths.root + "/etc/apt/preferences.d/appban", 1 << 16);
  ASSERT_TRUE(preferences.ok());
  EXPECT_NE(preferences->find("Package: banned\n"), std::string::npos) << *preferences;
  EXPECT_EQ(preferences->find("Package: coreish"), std::string::npos) << *preferences;
  EXPECT_EQ(preferences->find("Package: fakelibc"), std::string::npos) << *preferences;
  auto list = ReadFileToString(enforcer.config().banned_list_path, 1 << 16);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, "banned\tban-banned\n");

  // Upgrades from the repository go through the pin and the hook.
  auto upgrade = MustRun({"apt-get", "-y", "-q", "install", "fakelibc", "coreish"}, {scratch_.apt_env()});
  EXPECT_TRUE(upgrade.ok()) << upgrade.Describe();
  EXPECT_EQ(scratch_.InstalledVersion("fakelibc"), "2.0");
  EXPECT_EQ(scratch_.InstalledVersion("coreish"), "2.0");
  // The banned package still cannot come back.
  auto banned = MustRun({"apt-get", "-y", "-q", "install", "banned"}, {scratch_.apt_env()});
  EXPECT_FALSE(banned.ok());
  EXPECT_FALSE(scratch_.Installed("banned"));

  // A banned list that names an Essential package anyway (written by an older agent, or by hand)
  // does not make the hook refuse its update either: the .deb's own control file decides.
  WriteText(enforcer.config().banned_list_path, "coreish\tban-core\nbanned\tban-banned\n");
  scratch_.BuildDeb("coreish", core_control, "3.0");
  auto local = MustRun({"apt-get", "-y", "-q", "install", scratch_.deb("coreish", "3.0")}, {scratch_.apt_env()});
  EXPECT_TRUE(local.ok()) << local.Describe();
  EXPECT_EQ(scratch_.InstalledVersion("coreish"), "3.0");
  EXPECT_NE(local.stderr_text.find("not refusing coreish"), std::string::npos) << local.Describe();
  EXPECT_TRUE(enforcer.CollectRefusals(now).empty());
}

TEST_F(EnforceTest, AptHookReadsPackageNamesFromDebFiles) {
  std::string list = scratch_.dir() + "/banned-list";
  WriteText(list, "banned\tban-banned\n");
  std::istringstream in(scratch_.deb("unrelated") + "\n\nVERSION 2\n" + scratch_.deb("banned") + "\n");
  std::ostringstream err;
  // A refusal touches the wake file, so the daemon reports it at once.
  std::string wake = scratch_.dir() + "/wake-after-refusal";
  EXPECT_EQ(RunAptPreInstallHook(in, list, err, "dpkg-deb", wake), 1);
  EXPECT_NE(err.str().find("refusing to install banned"), std::string::npos) << err.str();
  EXPECT_TRUE(std::filesystem::exists(wake));
  std::filesystem::remove(wake);
  std::istringstream allowed(scratch_.deb("unrelated") + "\n");
  std::ostringstream quiet;
  EXPECT_EQ(RunAptPreInstallHook(allowed, list, quiet, "dpkg-deb", wake), 0);
  EXPECT_FALSE(std::filesystem::exists(wake)) << "nothing refused, nothing to report";
  std::istringstream no_list(scratch_.deb("banned") + "\n");
  EXPECT_EQ(RunAptPreInstallHook(no_list, scratch_.dir() + "/absent", quiet), 0);  // nothing banned yet
  WriteText(scratch_.dir() + "/broken.deb", "not an ar archive");
  std::istringstream broken(scratch_.dir() + "/broken.deb\n");
  EXPECT_EQ(RunAptPreInstallHook(broken, list, quiet), 2);
}

// A `dpkg -i` that bypasses APT is undone by the running watcher.
TEST_F(EnforceTest, WatcherUndoesDpkgInstallWithinASecond) {
  Policy policy = StandardPolicy();
  UnixSeconds now = kNow;
  auto config = scratch_.Config();
  Enforcer enforcer(config);
  auto watcher = ChangeWatcher::Open(config.paths, config.wake_file);
  ASSERT_TRUE(watcher.ok()) << watcher.status().ToString();
  std::mutex mutex;
  Recorder recorder;
  RecordFn record = [&](std::vector<protocol::DeviceEvent> batch) {
    std::lock_guard lock(mutex);
    return recorder.Fn()(std::move(batch));
  };
  Status loop_status;
  std::jthread loop([&](std::stop_token stop) {
    loop_status = WatchAndEnforce(*watcher, config.paths, enforcer, policy.Decider(&now), record, stop);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the first cycle has run

  auto installed = scratch_.DpkgInstall({"banned"});
  auto installed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(installed.ok()) << installed.Describe();
  bool gone = false;
  while (std::chrono::steady_clock::now() - installed_at < std::chrono::seconds(10)) {
    if (!scratch_.Installed("banned")) {
      gone = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  double undone_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - installed_at).count();
  std::cout << "[ measure  ] dpkg -i undone " << undone_ms << " ms after dpkg exited\n";
  loop.request_stop();
  loop.join();
  ASSERT_TRUE(loop_status.ok()) << loop_status.ToString();
  ASSERT_TRUE(gone) << "banned package still installed 10 s after dpkg -i";
  // Within a second is the requirement; the guard leaves room for a loaded shared build machine.
  EXPECT_LT(undone_ms, 3000.0);
  std::lock_guard lock(mutex);
  EXPECT_NE(recorder.Find(EventKind::kRemoved, "banned"), nullptr);
}

// snapd cannot run here: the snap client is a stub script that records its arguments.
TEST_F(EnforceTest, SnapRemovalRunsTheConfiguredSnapCommand) {
  std::string root = scratch_.root();
  WriteText(root + "/var/lib/snapd/state.json",
            R"({"data":{"snaps":{"banned-snap":{"active":true,"current":"7"},"fine-snap":{"current":"3"}}}})");
  std::string calls = scratch_.dir() + "/snap-calls";
  WriteText(scratch_.dir() + "/snap-stub", "#!/bin/sh\necho \"$@\" >> '" + calls + "'\n", true);
  auto config = scratch_.Config();
  config.snap_command = {scratch_.dir() + "/snap-stub"};
  Policy policy(
      MakeBundle({MakeRule("ban-snap", policy::Action::kRemove, policy::TargetKind::kSnapName, "banned-snap")}));
  UnixSeconds now = kNow;
  Enforcer enforcer(config);
  Recorder recorder;
  ASSERT_TRUE(EnforceOnce(config.paths, enforcer, policy.Decider(&now), recorder.Fn(), now).ok());
  auto recorded = ReadFileToString(calls, 4096);
  ASSERT_TRUE(recorded.ok());
  EXPECT_EQ(*recorded, "remove banned-snap\n");
  ASSERT_NE(recorder.Find(EventKind::kRemoved, "banned-snap"), nullptr);
}

// A snap appearing under the snap mount directory wakes the watcher, which removes it.
TEST_F(EnforceTest, WatcherRemovesANewlyInstalledBannedSnap) {
  std::string root = scratch_.root();
  std::filesystem::create_directories(root + "/snap");
  std::string calls = scratch_.dir() + "/snap-calls";
  WriteText(scratch_.dir() + "/snap-stub", "#!/bin/sh\necho \"$@\" >> '" + calls + "'\n", true);
  auto config = scratch_.Config();
  config.snap_command = {scratch_.dir() + "/snap-stub"};
  Policy policy(
      MakeBundle({MakeRule("ban-snap", policy::Action::kRemove, policy::TargetKind::kSnapName, "banned-snap")}));
  UnixSeconds now = kNow;
  Enforcer enforcer(config);
  auto watcher = ChangeWatcher::Open(config.paths, config.wake_file);
  ASSERT_TRUE(watcher.ok());
  std::mutex mutex;
  Recorder recorder;
  RecordFn record = [&](std::vector<protocol::DeviceEvent> batch) {
    std::lock_guard lock(mutex);
    return recorder.Fn()(std::move(batch));
  };
  Status loop_status;
  std::jthread loop([&](std::stop_token stop) {
    loop_status = WatchAndEnforce(*watcher, config.paths, enforcer, policy.Decider(&now), record, stop);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // What `snap install` leaves: snapd's state, then the mount point and its current link.
  WriteText(root + "/var/lib/snapd/state.json", R"({"data":{"snaps":{"banned-snap":{"active":true,"current":"5"}}}})");
  std::filesystem::create_directories(root + "/snap/banned-snap/5");
  std::filesystem::create_directory_symlink("5", root + "/snap/banned-snap/current");
  auto installed_at = std::chrono::steady_clock::now();
  bool removed = false;
  while (!removed && std::chrono::steady_clock::now() - installed_at < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::lock_guard lock(mutex);
    removed = recorder.Find(EventKind::kRemoved, "banned-snap") != nullptr;
  }
  double removed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - installed_at).count();
  std::cout << "[ measure  ] new snap removed " << removed_ms << " ms after it appeared\n";
  loop.request_stop();
  loop.join();
  ASSERT_TRUE(loop_status.ok()) << loop_status.ToString();
  EXPECT_TRUE(removed);
  EXPECT_LT(removed_ms, 3000.0);  // hang guard; the requirement is a second
  auto recorded = ReadFileToString(calls, 4096);
  ASSERT_TRUE(recorded.ok());
  EXPECT_EQ(*recorded, "remove banned-snap\n");
}

TEST(EnforcePlan, NextWaiverExpiryIsTheEarliest) {
  std::vector<policy::AppDecision> decisions(3);
  decisions[0].verdict = policy::Verdict::kWaived;
  decisions[0].waived_until = 500;
  decisions[1].verdict = policy::Verdict::kRemove;
  decisions[2].verdict = policy::Verdict::kWaived;
  decisions[2].waived_until = 300;
  EXPECT_EQ(NextWaiverExpiry(decisions), 300);
  EXPECT_FALSE(NextWaiverExpiry(std::span<const policy::AppDecision>(decisions).subspan(1, 1)).has_value());
}

}  // namespace
}  // namespace appban::agent

namespace appban::agent {
namespace {

// A real Flatpak user installation built offline: a one-file runtime and app exported into a
// local repository, added as an unsigned remote, installed under a scratch FLATPAK_USER_DIR.
class FlatpakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RunCommand({"flatpak", "--version"}).ok())
      GTEST_SKIP() << "flatpak is not installed (scripts/setup.sh --test)";
    dir_ = testing::MakeTempDir("appban-flatpak-");
    user_dir_ = dir_ + "/user";
    env_ = {"FLATPAK_USER_DIR=" + user_dir_, "HOME=" + dir_};
    testing::WriteText(dir_ + "/rt/metadata",
                       "[Runtime]\nname=org.appban.TestPlatform\nruntime=org.appban.TestPlatform/x86_64/1\n"
                       "sdk=org.appban.TestPlatform/x86_64/1\n");
    // build-export wants files/ in any build directory; a runtime's content is its usr/.
    testing::WriteText(dir_ + "/rt/files/marker", "runtime\n");
    testing::WriteText(dir_ + "/rt/usr/marker", "runtime\n");
    Run({"flatpak", "build-export", "--runtime", "--arch=x86_64", dir_ + "/repo", dir_ + "/rt", "1"});
    Run({"flatpak", "--user", "remote-add", "--no-gpg-verify", "local", "file://" + dir_ + "/repo"});
    Run({"flatpak", "--user", "install", "-y", "--noninteractive", "local", "org.appban.TestPlatform//1"});
    Run({"flatpak", "build-init", "--arch=x86_64", dir_ + "/app", "org.appban.Hello", "org.appban.TestPlatform",
         "org.appban.TestPlatform", "1"});
    testing::WriteText(dir_ + "/app/files/bin/hello", "#!/bin/sh\necho hello\n", true);
    Run({"flatpak", "build-finish", dir_ + "/app", "--command=hello"});
    Run({"flatpak", "build-export", "--arch=x86_64", dir_ + "/repo", dir_ + "/app", "stable"});
    Install();
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void Run(const std::vector<std::string>& argv) {
    auto result = testing::MustRun(argv, env_);
    ASSERT_TRUE(result.ok()) << argv[1] << ": " << result.Describe();
  }
  void Install() { Run({"flatpak", "--user", "install", "-y", "--noninteractive", "local", "org.appban.Hello"}); }
  SystemPaths Paths() const {
    SystemPaths paths = SystemPaths::UnderRoot(dir_ + "/no-root");
    paths.flatpak_installations = {{user_dir_, true}};
    return paths;
  }
  bool Listed() {
    auto list = testing::MustRun({"flatpak", "--user", "list", "--app", "--columns=application"}, env_);
    return list.stdout_text.find("org.appban.Hello") != std::string::npos;
  }

  std::string dir_, user_dir_;
  std::vector<std::string> env_;
};

TEST_F(FlatpakTest, InventoryUninstallMaskAndWatcherAgainstRealFlatpak) {
  auto inventory = CollectInventory(Paths());
  ASSERT_TRUE(inventory.ok()) << inventory.status().ToString();
  ASSERT_EQ(inventory->entries.size(), 1u);  // the app; runtimes are not apps
  const auto& entry = inventory->entries[0];
  EXPECT_EQ(entry.app.platform, Platform::kFlatpak);
  EXPECT_EQ(entry.app.id, "org.appban.Hello");
  EXPECT_EQ(entry.app.version, "stable");
  EXPECT_EQ(entry.origin, "local");  // the remote, as `flatpak list --columns=origin` shows it
  EXPECT_EQ(entry.detail, "app/org.appban.Hello/x86_64/stable");
  EXPECT_TRUE(entry.flatpak_user);

  Policy policy(MakeBundle(
      {MakeRule("ban-hello", policy::Action::kRemove, policy::TargetKind::kFlatpakApp, "org.appban.Hello")}));
  UnixSeconds now = kNow;
  EnforcementConfig config;
  config.paths = Paths();
  config.wake_file = dir_ + "/wake";
  config.banned_list_path = dir_ + "/apt-banned";
  Enforcer enforcer(config);
  Recorder recorder;
  ASSERT_TRUE(EnforceOnce(config.paths, enforcer, policy.Decider(&now), recorder.Fn(), now).ok());
  ASSERT_NE(recorder.Find(EventKind::kRemoved, "org.appban.Hello"), nullptr);
  EXPECT_FALSE(Listed());

  // The mask is recorded in the installation (flatpak mask lists it) ...
  auto blocklist = InstallBlocklist(policy.bundle, policy.index, kDevice, now);
  ASSERT_TRUE(enforcer.WriteInstallBlocks(blocklist).ok());
  auto masks = testing::MustRun({"flatpak", "--user", "mask"}, env_);
  EXPECT_NE(masks.stdout_text.find("org.appban.Hello"), std::string::npos) << masks.Describe();

  // ... but flatpak-mask(1) only stops updates and automatic installs, not a manual install: the
  // watcher undoes that.
  auto watcher = ChangeWatcher::Open(config.paths, config.wake_file);
  ASSERT_TRUE(watcher.ok());
  Status loop_status;
  std::mutex mutex;
  RecordFn record = [&](std::vector<protocol::DeviceEvent> batch) {
    std::lock_guard lock(mutex);
    return recorder.Fn()(std::move(batch));
  };
  std::jthread loop([&](std::stop_token stop) {
    loop_status = WatchAndEnforce(*watcher, config.paths, enforcer, policy.Decider(&now), record, stop);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Install();
  auto installed_at = std::chrono::steady_clock::now();
  bool gone = false;
  while (std::chrono::steady_clock::now() - installed_at < std::chrono::seconds(10)) {
    if (!Listed()) {
      gone = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double undone_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - installed_at).count();
  std::cout << "[ measure  ] flatpak install undone " << undone_ms << " ms after it finished\n";
  loop.request_stop();
  loop.join();
  ASSERT_TRUE(loop_status.ok()) << loop_status.ToString();
  EXPECT_TRUE(gone);

  // The ban is lifted: the next bundle bans nothing, and the mask appban set goes with it, while a
  // mask the administrator set by hand stays.
  testing::MustRun({"flatpak", "--user", "mask", "org.example.AdminMasked"}, env_);
  ASSERT_TRUE(enforcer.WriteInstallBlocks({}).ok());
  auto after = testing::MustRun({"flatpak", "--user", "mask"}, env_);
  EXPECT_EQ(after.stdout_text.find("org.appban.Hello"), std::string::npos) << after.Describe();
  EXPECT_NE(after.stdout_text.find("org.example.AdminMasked"), std::string::npos) << after.Describe();
}

}  // namespace
}  // namespace appban::agent

namespace appban::agent {
namespace {

// APT's side of the JSON hook protocol, over a real socket pair: hello, the install.fail
// notification for `apt-get install wechat=3.9 hello kesl-`, bye.
TEST(AptJsonHook, NamesTheRuleOfABannedPackageAptFoundNoCandidateForAndRecordsIt) {
  char pattern[] = "/tmp/appban-json-hook-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  std::string dir = pattern;
  std::string list = dir + "/apt-banned";
  std::ofstream(list) << "wechat\tgc-wechat-2023\nkesl\tgc-kaspersky-2023\n";
  int sockets[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sockets), 0);
  std::ostringstream err;
  int result = -1;
  std::string wake = dir + "/wake";
  std::thread hook([&] { result = RunAptJsonHook(sockets[1], list, err, wake); });
  auto send = [&](const std::string& text) {
    std::string message = text + "\n\n";
    ASSERT_EQ(::write(sockets[0], message.data(), message.size()), static_cast<ssize_t>(message.size()));
  };
  send(R"({"jsonrpc":"2.0","method":"org.debian.apt.hooks.hello","id":0,"params":{"versions":["0.1","0.2"]}})");
  std::string answer;
  while (answer.find("\n\n") == std::string::npos) {
    char chunk[256];
    ssize_t got = ::read(sockets[0], chunk, sizeof(chunk));
    ASSERT_GT(got, 0);
    answer.append(chunk, static_cast<size_t>(got));
  }
  Json hello = Json::parse(answer.substr(0, answer.find("\n\n")));
  EXPECT_EQ(hello["id"], 0);
  EXPECT_EQ(hello["result"]["version"], "0.1");
  send(R"({"jsonrpc":"2.0","method":"org.debian.apt.hooks.install.fail","params":{"command":"install",)"
       R"("search-terms":["wechat=3.9","hello","kesl-"],"unknown-packages":[],"packages":[]}})");
  send(R"({"jsonrpc":"2.0","method":"org.debian.apt.hooks.bye","params":{}})");
  hook.join();
  ::close(sockets[0]);
  ::close(sockets[1]);
  EXPECT_EQ(result, 0);
  EXPECT_NE(err.str().find("wechat is banned on this device by policy rule gc-wechat-2023"), std::string::npos)
      << err.str();
  EXPECT_EQ(err.str().find("kesl"), std::string::npos) << "a removal (kesl-) is not an install: " << err.str();
  std::ifstream spool(list + ".refused");
  std::string line;
  ASSERT_TRUE(std::getline(spool, line));
  EXPECT_TRUE(line.starts_with("wechat\tgc-wechat-2023\tAPT refused `install wechat`")) << line;
  EXPECT_FALSE(std::getline(spool, line)) << "one refusal, one line";
  EXPECT_TRUE(std::filesystem::exists(wake)) << "the daemon is woken to report it at once";
  std::filesystem::remove_all(dir);
}

// Whatever APT (or anything else) sends, the hook never fails and never hangs APT.
TEST(AptJsonHook, MalformedOrOversizedInputEndsTheHookWithAWarningNeverAFailure) {
  for (const std::string& input : {std::string("not json\n\n"), std::string(R"({"jsonrpc":"2.0"})") + "\n\n",
                                   std::string(kMaxAptHookMessageBytes + 10, 'x'), std::string()}) {
    int sockets[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sockets), 0);
    std::ostringstream err;
    int result = -1;
    std::thread hook([&] { result = RunAptJsonHook(sockets[1], "/nonexistent/apt-banned", err); });
    size_t written = 0;
    while (written < input.size()) {
      ssize_t put = ::write(sockets[0], input.data() + written, input.size() - written);
      if (put <= 0) break;
      written += static_cast<size_t>(put);
    }
    ::shutdown(sockets[0], SHUT_WR);
    hook.join();
    ::close(sockets[0]);
    ::close(sockets[1]);
    EXPECT_EQ(result, 0) << input.substr(0, 40);
    if (!input.empty()) {
      EXPECT_FALSE(err.str().empty()) << input.substr(0, 40);
    }
  }
}

TEST(AptJsonHook, ItsCommandFollowsThePreInstallHooksCommand) {
  EXPECT_EQ(AptJsonHookCommand("/usr/bin/appban agent apt-hook"), "/usr/bin/appban agent apt-json-hook");
  EXPECT_EQ(AptJsonHookCommand("/opt/x/appban agent apt-hook"), "/opt/x/appban agent apt-json-hook");
  EXPECT_EQ(AptJsonHookCommand("/usr/local/bin/my-checker"), "");
}

}  // namespace
}  // namespace appban::agent
