// The agent end to end: the real `appban server` on loopback, the real `appban agent` (enroll,
// run, once, status) as separate processes, real dpkg/APT in a scratch root. What an operator
// would check: a publish reaches the running agent through the long-poll and the package is gone
// from the root within seconds; the server's compliance for the rule shows the device remediated;
// with the server down the agent keeps enforcing and queues the event, which the server has once
// it is back on the same port; a tampered cached bundle is refused by `agent once`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "appban/agent/agent_test_support.h"
#include "appban/agent/state.h"
#include "appban/common/file.h"
#include "appban/common/json.h"
#include "appban/common/time.h"
#include "appban/net/client.h"
#include "appban/policy/model.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;
using agent::testing::ScratchRoot;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The process `root` and its descendants, each with its state, kernel wait channel and command
// line: when a test waits in vain for the agent, this says what the agent (or the apt-get or dpkg
// it started) was blocked on.
std::string DescribeProcessTree(pid_t root) {
  std::map<pid_t, std::vector<pid_t>> children;
  std::map<pid_t, std::string> described;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    std::string stat = ReadAll(entry.path().string() + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    char state = '?';
    pid_t parent = 0;
    fields >> state >> parent;
    std::string command = ReadAll(entry.path().string() + "/cmdline");
    std::replace(command.begin(), command.end(), '\0', ' ');
    children[parent].push_back(pid);
    std::string waits;  // one per thread: the main loop and the poll thread of the agent
    std::error_code error;
    for (const auto& task : std::filesystem::directory_iterator(entry.path() / "task", error)) {
      waits += (waits.empty() ? "" : ",") + ReadAll(task.path().string() + "/wchan");
    }
    described[pid] = std::to_string(pid) + " " + state + " wchan=" + waits + " " + command.substr(0, 200);
  }
  std::string out;
  std::vector<std::pair<pid_t, int>> stack = {{root, 0}};
  while (!stack.empty()) {
    auto [pid, depth] = stack.back();
    stack.pop_back();
    out +=
        std::string(2 * depth, ' ') + (described.count(pid) ? described[pid] : std::to_string(pid) + " (gone)") + "\n";
    for (pid_t child : children[pid]) stack.emplace_back(child, depth + 1);
  }
  return out;
}

// A child process with its output in a log file; SIGTERM on Stop, SIGKILL as a last resort.
class Child {
 public:
  Child(std::vector<std::string> argv, std::string log_path) : log_path_(std::move(log_path)) {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      setpgid(0, 0);
      std::vector<char*> args;
      for (auto& arg : argv) args.push_back(arg.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) Stop(SIGKILL);
  }
  std::string output() const { return ReadAll(log_path_); }
  pid_t pid() const { return pid_; }
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  // The exit status (128+signal when killed).
  int Stop(int signal, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    if (pid_ <= 0) return -1;
    kill(signal == SIGKILL ? -pid_ : pid_, signal);
    auto deadline = Clock::now() + timeout;
    int status = 0;
    int result = -1;
    while (Clock::now() < deadline) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (result < 0) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      result = 128 + SIGKILL;
    }
    if (signal == SIGKILL) kill(-pid_, SIGKILL);
    pid_ = -1;
    return result;
  }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

template <typename Condition>
std::optional<std::chrono::milliseconds> TimeUntil(Condition condition, std::chrono::milliseconds limit) {
  auto start = Clock::now();
  while (Clock::now() - start < limit) {
    if (condition()) return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

class AgentEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    scratch_.BuildDeb("victim");
    scratch_.BuildDeb("bystander");
    std::filesystem::create_directories(scratch_.dir() + "/run");
    data_dir_ = dir_.path() / "data";
    state_dir_ = scratch_.dir() + "/state";
    // The second person of the two-person rule signs in at a real OpenID Connect provider.
    auto provider = testing::OidcProvider::Start(dir_.path() / "idp");
    ASSERT_TRUE(provider.has_value()) << "the OpenID Connect provider did not start";
    provider_.emplace(std::move(*provider));
    std::filesystem::path config = dir_.path() / "server.toml";
    std::ofstream(config) << provider_->ServerToml();
    auto started = testing::ServerProcess::Start(data_dir_, {"--config", config.string()});
    ASSERT_TRUE(started.has_value()) << "server did not start";
    server_.emplace(std::move(*started));
    admin_ = server_->admin_token();
    ASSERT_FALSE(admin_.empty()) << server_->output();
    url_ = server_->url();
    ca_path_ = (dir_.path() / "ca.pem").string();
    std::ofstream(ca_path_) << server_->ca_pem();
  }

  net::HttpResponse Admin(const std::string& method, const std::string& path, const Json& body = nullptr,
                          const std::string& token = "") {
    net::ClientOptions options;
    options.pinned_ca_pem = ReadAll(ca_path_);
    net::HttpClient client(*net::ParseUrl(url_), options);
    auto response = client.Request(method, path, body.is_null() ? "" : body.dump(),
                                   {{"authorization", "Bearer " + (token.empty() ? admin_ : token)}});
    EXPECT_TRUE(response.ok()) << method << " " << path << ": " << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }
  Json Body(const net::HttpResponse& response) { return Json::parse(response.body, nullptr, false); }

  std::string EnrollmentToken() {
    auto created = Admin("POST", "/v1/admin/enrollment-tokens", {{"count", 1}, {"ttl_seconds", 3600}});
    EXPECT_EQ(created.status, 201) << created.body;
    Json body = Body(created);
    if (!body.contains("tokens") || body["tokens"].empty()) return "";
    return body["tokens"][0].value("token", "");
  }

  // Proposed by the first administrator, approved by a second (two-person rule), published.
  void PublishBan(const std::string& rule_id, const std::string& package) {
    policy::Rule rule;
    rule.id = rule_id;
    rule.title = "Ban " + package;
    rule.targets.push_back(*policy::MakeTarget(policy::TargetKind::kDebPackage, package));
    rule.action = policy::Action::kRemove;
    rule.rationale = "security risk";
    rule.authority = "Chief Information Officer";
    auto proposed = Admin("POST", "/v1/admin/rules", policy::RuleToJson(rule, false));
    ASSERT_EQ(proposed.status, 201) << proposed.body;
    std::string bob = provider_->SignIn("bob");
    auto approved = Admin("POST", "/v1/admin/rules/" + rule_id + "/approve", Json::object(), bob);
    // The server may still be fetching the provider's keys when bob first calls.
    for (int i = 0; i < 100 && approved.status != 200 && approved.status != 409; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      approved = Admin("POST", "/v1/admin/rules/" + rule_id + "/approve", Json::object(), bob);
    }
    ASSERT_EQ(approved.status, 200) << approved.body;
    auto published = Admin("POST", "/v1/admin/rules/" + rule_id + "/publish", Json::object());
    ASSERT_EQ(published.status, 200) << published.body;
    auto bundle = Admin("POST", "/v1/admin/publish", Json::object());
    ASSERT_TRUE(bundle.status == 200 || bundle.status == 201) << bundle.status << " " << bundle.body;
  }

  // The scratch-root flags every agent command takes.
  std::vector<std::string> AgentFlags() const {
    return {"--state-dir", state_dir_, "--root", scratch_.root(), "--apt-env", scratch_.apt_env(),
            "--dpkg-option=--force-script-chrootless", "--wake-file", scratch_.dir() + "/run/dpkg-changed", "--snap",
            "true",
            // APT runs the pre-install hook even for a purge: the real `appban agent apt-hook`.
            "--apt-hook-command", testing::AppbanBinary() + " agent apt-hook", "--backoff-initial-ms", "200",
            "--backoff-max-ms", "1000", "--request-timeout-ms", "5000"};
  }
  // `status` reads; it takes where the state and the installed apps are, not the enforcement options.
  std::vector<std::string> InventoryFlags() const { return {"--state-dir", state_dir_, "--root", scratch_.root()}; }
  testing::CommandResult Agent(const std::string& subcommand, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {testing::AppbanBinary(), "agent", subcommand};
    auto flags = subcommand == "status" ? InventoryFlags() : AgentFlags();
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testing::RunCommand(argv);
  }
  void Enroll() {
    auto enrolled =
        testing::RunCommand({testing::AppbanBinary(), "agent", "enroll", "--server", url_, "--ca", ca_path_, "--token",
                             EnrollmentToken(), "--state-dir", state_dir_, "--hostname", "ws-e2e"});
    ASSERT_EQ(enrolled.exit_code, 0) << enrolled.out << enrolled.err;
    std::smatch match;
    ASSERT_TRUE(std::regex_search(enrolled.out, match, std::regex("enrolled as (d-[0-9a-f]+)"))) << enrolled.out;
    device_id_ = match[1];
  }
  std::unique_ptr<Child> StartAgent(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {testing::AppbanBinary(), "agent", "run"};
    auto flags = AgentFlags();
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Child>(argv, scratch_.dir() + "/agent.log");
  }
  // The rule's standing: {"targeted","compliant","remediated","violating","pending",...}.
  Json Compliance(const std::string& rule_id) {
    Json body = Body(Admin("GET", "/v1/admin/compliance/rules/" + rule_id));
    return body.is_object() && body.contains("rule") ? body["rule"] : body;
  }
  Json Device() { return Body(Admin("GET", "/v1/admin/devices/" + device_id_)); }
  int ServerEvents(const std::string& kind, const std::string& app) {
    Json device = Device();
    int count = 0;
    if (!device.contains("events")) return 0;
    for (const auto& event : device["events"]) {
      if (event.value("kind", "") == kind && event.value("app", "") == app) ++count;
    }
    return count;
  }

  testing::TempDir dir_;
  ScratchRoot scratch_;
  std::filesystem::path data_dir_;
  std::string state_dir_;
  std::optional<testing::ServerProcess> server_;
  std::optional<testing::OidcProvider> provider_;
  std::string admin_;
  std::string url_;
  std::string ca_path_;
  std::string device_id_;
};

TEST_F(AgentEndToEnd, PublishReachesTheRunningAgentByLongPollAndComplianceShowsItRemediated) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim", "bystander"}).ok());
  Enroll();
  auto agent = StartAgent();
  // The agent has checked in (with its inventory) once the server lists it with an inventory.
  ASSERT_TRUE(TimeUntil([&] { return Device().contains("inventory") && !Device()["inventory"].is_null(); },
                        std::chrono::seconds(20)))
      << agent->output();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the long-poll is open

  auto published_at = Clock::now();
  PublishBan("gc-ban-victim", "victim");
  auto publish_took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - published_at);
  auto removed = TimeUntil([&] { return !scratch_.Installed("victim"); }, std::chrono::seconds(20));
  ASSERT_TRUE(removed.has_value()) << agent->output();
  std::cout << "[ measured ] publish (4 admin calls, " << publish_took.count() << " ms) -> package removed from the "
            << "scratch root " << removed->count() + publish_took.count() << " ms after the publish began\n";
  EXPECT_LT(removed->count(), 5000) << "the long-poll, not a periodic check-in, must deliver the bundle";
  EXPECT_TRUE(scratch_.Installed("bystander"));

  auto remediated =
      TimeUntil([&] { return Compliance("gc-ban-victim").value("remediated", -1) == 1; }, std::chrono::seconds(20));
  ASSERT_TRUE(remediated.has_value()) << Compliance("gc-ban-victim").dump() << agent->output();
  Json compliance = Compliance("gc-ban-victim");
  EXPECT_EQ(compliance.value("targeted", -1), 1) << compliance.dump();
  EXPECT_EQ(compliance.value("compliant", -1), 1) << compliance.dump();
  EXPECT_EQ(compliance.value("violating", -1), 0) << compliance.dump();
  EXPECT_EQ(ServerEvents("removed", "victim"), 1);
  EXPECT_GE(ServerEvents("bundle_applied", ""), 1);

  // `agent status` while the daemon runs reads the status it writes.
  auto status = Agent("status", {"--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  Json report = Json::parse(status.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << status.out;
  EXPECT_EQ(report.value("policy_version", 0), 1);
  EXPECT_EQ(report["last_checkin"].value("result", ""), "ok");

  EXPECT_EQ(agent->Stop(SIGTERM), 0) << "SIGTERM stops the agent cleanly\n" << agent->output();
}

TEST_F(AgentEndToEnd, EventsFromWhileTheServerIsDownAreDeliveredWhenItReturnsOnTheSamePort) {
  ASSERT_TRUE(scratch_.DpkgInstall({"bystander"}).ok());
  Enroll();
  PublishBan("gc-ban-victim", "victim");
  auto agent = StartAgent();
  ASSERT_TRUE(TimeUntil(
      [&] {
        return Device().value("applied_version", 0) == 1 || Compliance("gc-ban-victim").value("compliant", -1) == 1;
      },
      std::chrono::seconds(20)))
      << Device().dump() << agent->output();

  // The server dies (as a crashed host would); while it is away a banned package is installed.
  std::string port = url_.substr(url_.rfind(':') + 1);
  server_->Stop(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  // The bound is generous for a loaded sanitizer run (well under a second unloaded, printed below).
  auto undone = TimeUntil([&] { return !scratch_.Installed("victim"); }, std::chrono::seconds(30));
  ASSERT_TRUE(undone.has_value()) << agent->output() << "the agent's processes:\n" << DescribeProcessTree(agent->pid());
  std::cout << "[ measured ] with the server down, dpkg -i undone after " << undone->count() << " ms\n";
  std::this_thread::sleep_for(std::chrono::seconds(2));  // a few failed, backed-off check-ins
  EXPECT_NE(agent->output().find("check-in failed"), std::string::npos) << agent->output();

  // The server comes back on the same port with the same data directory.
  Child restarted(
      {testing::AppbanBinary(), "server", "--data-dir", data_dir_.string(), "--address", "127.0.0.1", "--port", port},
      dir_.path().string() + "/server2.log");
  auto up = TimeUntil(
      [&] {
        net::ClientOptions options;
        options.pinned_ca_pem = ReadAll(ca_path_);
        options.connect_timeout = std::chrono::milliseconds(500);
        net::HttpClient client(*net::ParseUrl(url_), options);
        auto health = client.Request("GET", "/healthz");
        return health.ok() && health->status == 200;
      },
      std::chrono::seconds(30));
  ASSERT_TRUE(up.has_value()) << restarted.output();

  auto delivered = TimeUntil([&] { return ServerEvents("removed", "victim") == 1; }, std::chrono::seconds(20));
  ASSERT_TRUE(delivered.has_value()) << Device().dump() << agent->output();
  std::cout << "[ measured ] queued removal delivered " << delivered->count() << " ms after the server was back\n";
  EXPECT_EQ(agent->Stop(SIGTERM), 0) << agent->output();
  auto status = Agent("status", {"--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  Json report = Json::parse(status.out, nullptr, false);
  EXPECT_EQ(report.value("pending_events", -1), 0) << status.out;
  EXPECT_EQ(report.value("events_acked", -1), report.value("last_event_seq", -2)) << status.out;
  restarted.Stop(SIGTERM);
}

TEST_F(AgentEndToEnd, OnceAppliesTheBundleAndATamperedCacheIsRefusedOffline) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim", "bystander"}).ok());
  Enroll();
  PublishBan("gc-ban-victim", "victim");
  auto once = Agent("once");
  EXPECT_EQ(once.exit_code, 0) << once.err;
  EXPECT_FALSE(scratch_.Installed("victim"));
  EXPECT_TRUE(scratch_.Installed("bystander"));
  EXPECT_EQ(ServerEvents("removed", "victim"), 1);

  // Offline from here. The cached bundle is altered on disk; the package comes back.
  server_->Stop(SIGTERM);
  std::string path = state_dir_ + "/bundle.json";
  std::string bundle = ReadAll(path);
  size_t at = bundle.find("gc-ban-victim");
  ASSERT_NE(at, std::string::npos);
  bundle[at] = 'G';
  ASSERT_TRUE(WriteFileAtomically(path, bundle).ok());
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  auto offline = Agent("once");
  EXPECT_EQ(offline.exit_code, 3) << offline.err;
  EXPECT_TRUE(scratch_.Installed("victim")) << "a tampered bundle must not be enforced\n" << offline.err;
  auto status = Agent("status", {"--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  Json report = Json::parse(status.out, nullptr, false);
  EXPECT_TRUE(report.contains("cached_bundle_refused")) << status.out;
  EXPECT_GE(report.value("pending_events", 0), 1) << status.out;

  auto text = Agent("status");
  EXPECT_NE(text.out.find("pending events"), std::string::npos) << text.out;
}

TEST_F(AgentEndToEnd, AQueueLongerThanOneCheckinCarriesIsDeliveredInBatches) {
  Enroll();
  constexpr int kQueued = 2500;  // the server takes at most 1000 events per check-in
  {
    auto state = agent::AgentState::Open(state_dir_);
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    for (int i = 0; i < kQueued; ++i) {
      protocol::DeviceEvent event;
      event.at = static_cast<int64_t>(std::time(nullptr));
      event.kind = protocol::EventKind::kRemoveFailed;
      event.platform = "deb";
      event.app = "pkg-" + std::to_string(i);
      event.detail = "queued while offline";
      ASSERT_TRUE(state->Append(event).ok());
    }
  }
  auto once = Agent("once");
  EXPECT_EQ(once.exit_code, 0) << once.err;
  auto status = Agent("status", {"--json"});
  Json report = Json::parse(status.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << status.out << status.err;
  EXPECT_EQ(report.value("pending_events", -1), 0) << status.out;
  EXPECT_EQ(report.value("events_acked", -1), kQueued) << status.out;
  EXPECT_EQ(ServerEvents("remove_failed", "pkg-" + std::to_string(kQueued - 1)), 1);
}

TEST_F(AgentEndToEnd, MonitorModeReportsWhatItWouldRemoveAndRemovesNothing) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  Enroll();
  PublishBan("gc-ban-victim", "victim");
  auto once = Agent("once", {"--monitor"});
  EXPECT_EQ(once.exit_code, 0) << once.err;
  EXPECT_TRUE(scratch_.Installed("victim"));
  EXPECT_EQ(ServerEvents("monitor_would_remove", "victim"), 1) << Device().dump();
  EXPECT_EQ(ServerEvents("removed", "victim"), 0);
  EXPECT_FALSE(std::filesystem::exists(scratch_.root() + "/etc/apt/preferences.d/appban"));
}

TEST_F(AgentEndToEnd, AWaivedDeviceKeepsThePackageUntilTheWaiverExpiresWithoutANewBundle) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  Enroll();
  PublishBan("gc-ban-victim", "victim");
  int64_t expires = static_cast<int64_t>(std::time(nullptr)) + 6;
  auto waiver = Admin("POST", "/v1/admin/waivers",
                      {{"id", "w-e2e"},
                       {"rule_id", "gc-ban-victim"},
                       {"subject_kind", "device"},
                       {"subject", device_id_},
                       {"justification", "evaluation of a replacement"},
                       {"expires_at", FormatTimestamp(expires)}});
  // The administrator requests the waiver; bob, a second person, grants it.
  ASSERT_EQ(waiver.status, 202) << waiver.body;
  auto granted = Admin("POST", "/v1/admin/changes/" + Body(waiver)["change"]["id"].get<std::string>() + "/approve",
                       Json::object(), provider_->SignIn("bob"));
  ASSERT_EQ(granted.status, 200) << granted.body;
  auto republished = Admin("POST", "/v1/admin/publish", Json::object());
  ASSERT_TRUE(republished.status == 200 || republished.status == 201) << republished.body;
  ASSERT_EQ(Body(republished).value("waivers", 0), 1) << republished.body;

  auto agent = StartAgent();
  ASSERT_TRUE(TimeUntil([&] { return ServerEvents("waiver_applied", "victim") == 1; }, std::chrono::seconds(5)))
      << agent->output();
  EXPECT_TRUE(scratch_.Installed("victim"));
  // 40 s: under AddressSanitizer beside other tests (CI, 2026-12-06) 15 s once passed without the
  // removal; a check-in in flight holds the agent's loop for up to its 30 s read timeout. If it
  // fails again, the process tree below says where the agent waits.
  auto removed = TimeUntil([&] { return !scratch_.Installed("victim"); }, std::chrono::seconds(40));
  ASSERT_TRUE(removed.has_value()) << agent->output() << "the agent's processes:\n"
                                   << DescribeProcessTree(agent->pid());
  int64_t removed_at = static_cast<int64_t>(std::time(nullptr));
  std::cout << "[ measured ] waived package removed " << removed_at - expires << " s after the waiver expired\n";
  EXPECT_GE(removed_at, expires);
  // Woken by the expiry itself: long before the 5-minute full cycle or the next check-in would
  // have enforced it. How soon is printed above (1-2 s on an idle machine), not asserted tightly:
  // under AddressSanitizer beside other builds it took 9 s once.
  EXPECT_LE(removed_at, expires + 15);
  EXPECT_TRUE(TimeUntil([&] { return ServerEvents("removed", "victim") == 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(ServerEvents("bundle_applied", ""), 1) << "the expiry needed no new bundle";
  EXPECT_EQ(agent->Stop(SIGTERM), 0) << agent->output();
}

// What a newcomer does with `appban agent sandbox`: one command prepares a root; the printed
// commands install a stand-in WeChat, enrol, enforce a published ban and refuse the reinstall —
// and this machine's own dpkg database is the same before and after.
TEST_F(AgentEndToEnd, SandboxCommandGivesANewcomerAWorkingScratchSystem) {
  auto host_status = [] { return ReadAll("/var/lib/dpkg/status"); };
  std::string host_before = host_status();
  std::string sandbox = (dir_.path() / "sandbox").string();
  auto made = testing::RunCommand({testing::AppbanBinary(), "agent", "sandbox", sandbox});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("sandbox ready in " + sandbox), std::string::npos) << made.out;
  EXPECT_NE(made.out.find("export APT_CONFIG=" + sandbox + "/apt.conf"), std::string::npos) << made.out;
  EXPECT_NE(made.out.find("--config " + sandbox + "/agent.toml"), std::string::npos) << made.out;
  EXPECT_NE(made.out.find("wechat kesl appban-sandbox-hello"), std::string::npos) << made.out;
  std::string apt_env = "APT_CONFIG=" + sandbox + "/apt.conf";
  std::string config = sandbox + "/agent.toml";
  auto apt_get = [&](const std::string& package) {
    auto run = agent::RunCommand({"apt-get", "install", "-y", "-q", package}, {apt_env});
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    return run.ok() ? *run : agent::CommandResult{};
  };
  auto installed = [&](const std::string& name) {
    auto status = agent::ReadDpkgStatus(sandbox + "/root/var/lib/dpkg");
    if (!status.ok()) return false;
    for (const auto& package : status->packages)
      if (package.name == name && package.FilesPresent()) return true;
    return false;
  };

  // The stand-in banned app installs from the sandbox's repository, as the printed command says.
  auto install = apt_get("wechat");
  ASSERT_EQ(install.exit_code, 0) << install.Describe();
  ASSERT_TRUE(installed("wechat"));

  // Enrol and enforce with nothing but --config (plus what the server hands out).
  auto enrolled = testing::RunCommand({testing::AppbanBinary(), "agent", "enroll", "--config", config, "--server", url_,
                                       "--ca", ca_path_, "--token", EnrollmentToken()});
  ASSERT_EQ(enrolled.exit_code, 0) << enrolled.err;
  std::smatch enrolled_as;
  ASSERT_TRUE(std::regex_search(enrolled.out, enrolled_as, std::regex("enrolled as (d-[0-9a-f]+)"))) << enrolled.out;
  device_id_ = enrolled_as[1];
  PublishBan("sandbox-wechat", "wechat");
  auto once = testing::RunCommand({testing::AppbanBinary(), "agent", "once", "--config", config});
  EXPECT_EQ(once.exit_code, 0) << once.err;
  EXPECT_FALSE(installed("wechat")) << once.err;

  // The reinstall is refused, and APT's "no installation candidate" comes with the rule that
  // bans it (the JSON hook); the refusal reaches the server as an event. An unrelated package
  // still installs.
  auto again = apt_get("wechat");
  EXPECT_NE(again.exit_code, 0) << again.stdout_text;
  EXPECT_FALSE(installed("wechat"));
  EXPECT_NE(again.stderr_text.find("wechat is banned on this device by policy rule sandbox-wechat"), std::string::npos)
      << again.Describe();
  auto reported = testing::RunCommand({testing::AppbanBinary(), "agent", "once", "--config", config});
  EXPECT_EQ(reported.exit_code, 0) << reported.err;
  EXPECT_EQ(ServerEvents("install_refused", "wechat"), 1) << Device().dump();
  auto hello = apt_get("appban-sandbox-hello");
  EXPECT_EQ(hello.exit_code, 0) << hello.Describe();
  EXPECT_TRUE(installed("appban-sandbox-hello"));

  // Made once: a second run into the same directory is refused, and the host was never touched.
  auto twice = testing::RunCommand({testing::AppbanBinary(), "agent", "sandbox", sandbox});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_NE(twice.err.find("is not empty"), std::string::npos) << twice.err;
  EXPECT_EQ(host_status(), host_before) << "the sandbox touched this machine's dpkg database";
}

// `appban agent unenrol` leaves the machine as before enrolment (less what enforcement removed):
// the pin and hooks are gone so the banned package installs again, the state directory is gone,
// and the server has revoked the device in an audited "device.unenroll" and stopped counting it.
TEST_F(AgentEndToEnd, UnenrolRemovesPinsAndHooksTellsTheServerAndLeavesNoState) {
  ASSERT_TRUE(scratch_.DpkgInstall({"victim"}).ok());
  scratch_.RefreshRepository();
  Enroll();
  PublishBan("gc-ban-victim", "victim");
  auto once = Agent("once");
  ASSERT_EQ(once.exit_code, 0) << once.err;
  ASSERT_FALSE(scratch_.Installed("victim"));
  std::string pin = scratch_.root() + "/etc/apt/preferences.d/appban";
  std::string hooks = scratch_.root() + "/etc/apt/apt.conf.d/50appban";
  ASSERT_TRUE(std::filesystem::exists(pin));
  ASSERT_TRUE(std::filesystem::exists(hooks));
  ASSERT_EQ(Compliance("gc-ban-victim").value("targeted", -1), 1);

  auto left = Agent("unenrol");
  ASSERT_EQ(left.exit_code, 0) << left.err;
  EXPECT_NE(left.err.find(device_id_ + " unenrolled"), std::string::npos) << left.err;
  EXPECT_FALSE(std::filesystem::exists(pin));
  EXPECT_FALSE(std::filesystem::exists(hooks));
  EXPECT_FALSE(std::filesystem::exists(scratch_.root() + "/etc/dpkg/dpkg.cfg.d/appban"));
  EXPECT_FALSE(std::filesystem::exists(state_dir_)) << "the state directory (credential included) is deleted";

  // The package the ban kept out installs again through APT.
  auto reinstall = agent::RunCommand({"apt-get", "install", "-y", "-q", "victim"}, {scratch_.apt_env()});
  ASSERT_TRUE(reinstall.ok());
  EXPECT_EQ(reinstall->exit_code, 0) << reinstall->Describe();
  EXPECT_TRUE(scratch_.Installed("victim"));

  // The server: revoked by the device itself, audited as an unenrolment, no longer targeted.
  Json device = Device();
  EXPECT_FALSE(device.value("revoked_at", Json()).is_null()) << device.dump();
  Json audit = Body(Admin("GET", "/v1/admin/audit?limit=500"));
  bool audited = false;
  for (const auto& entry : audit.value("entries", Json::array())) {
    if (entry.value("action", "") == "device.unenroll" && entry.value("object", "") == "device:" + device_id_) {
      audited = true;
      EXPECT_EQ(entry.value("actor", ""), "device:" + device_id_);
    }
  }
  EXPECT_TRUE(audited) << audit.dump();
  EXPECT_EQ(Compliance("gc-ban-victim").value("targeted", -1), 0) << Compliance("gc-ban-victim").dump();

  // Its credential is dead: a fresh state directory cannot borrow it, and unenrolling twice says
  // there is nothing to leave.
  auto again = Agent("unenrol");
  EXPECT_EQ(again.exit_code, 1);
}

TEST_F(AgentEndToEnd, ConfigFileWithAnUnknownKeyIsRefusedNamingIt) {
  std::string config = scratch_.dir() + "/agent.toml";
  std::ofstream(config) << "state_dir = \"" << state_dir_ << "\"\n[paths]\nroot = \"/tmp/x\"\ndpkg_admindr = \"/x\"\n";
  auto result = testing::RunCommand({testing::AppbanBinary(), "agent", "once", "--config", config});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("agent.toml:4: paths.dpkg_admindr: unknown key"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace appban
