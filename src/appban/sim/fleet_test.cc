#include "appban/sim/fleet.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "appban/net/net_test_support.h"
#include "appban/policy/bundle.h"
#include "appban/protocol/messages.h"

namespace appban::sim {
namespace {

TEST(SimFleet, ChildSummariesAreMergedAcrossProcesses) {
  auto merged = RunForked(3, false, [](uint32_t child, const ChildChannel&) -> Result<ProcessSummary> {
    ProcessSummary s;
    s.devices = child + 1;
    s.requests = 10 * (child + 1);
    s.errors["read"] = 1;
    s.latency.Record(1000 * (child + 1));  // 1, 2, 3 ms
    s.bundles[4].first_received_ms = 5000 - child;
    s.bundles[4].received = child + 1;
    for (uint32_t i = 0; i <= child; ++i) s.bundles[4].acked_ms.push_back(6000 + 100 * child + i);
    s.new_devices.push_back(
        {{"index", child}, {"device_id", "d-" + std::to_string(child)}, {"credential", "c"}, {"group", ""}});
    return s;
  });
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->devices, 6u);
  EXPECT_EQ(merged->requests, 60u);
  EXPECT_EQ(merged->errors.at("read"), 3u);
  EXPECT_EQ(merged->latency.count(), 3u);
  EXPECT_EQ(merged->latency.max(), 3000u);
  const BundleTimeline& timeline = merged->bundles.at(4);
  EXPECT_EQ(timeline.first_received_ms, 4998);  // the earliest of the three
  EXPECT_EQ(timeline.received, 6u);
  EXPECT_EQ(timeline.acked_ms, (std::vector<int64_t>{6000, 6100, 6101, 6200, 6201, 6202}));
  EXPECT_EQ(merged->new_devices.size(), 3u);
  // 99% of 6 devices is the 6th acknowledgement; 50% the 3rd.
  EXPECT_DOUBLE_EQ(*SecondsToFraction(timeline.acked_ms, 6, 0.5, 5000), 1.101);
  EXPECT_DOUBLE_EQ(*SecondsToFraction(timeline.acked_ms, 6, 0.99, 5000), 1.202);
  EXPECT_FALSE(SecondsToFraction(timeline.acked_ms, 7, 1.0, 5000).has_value());
}

TEST(SimFleet, AFailingChildIsNamed) {
  auto merged = RunForked(2, false, [](uint32_t child, const ChildChannel&) -> Result<ProcessSummary> {
    if (child == 1) return Status::Unavailable("server went away");
    return ProcessSummary{};
  });
  ASSERT_FALSE(merged.ok());
  EXPECT_NE(merged.status().message().find("simulator process 1"), std::string::npos);
  EXPECT_NE(merged.status().message().find("server went away"), std::string::npos);
}

TEST(SimFleet, SteadyChildrenStartMeasuringTogether) {
  auto merged = RunForked(3, true, [](uint32_t, const ChildChannel& channel) -> Result<ProcessSummary> {
    if (write(channel.ready_fd, "ready\n", 6) != 6) return Status::Internal("write");
    char go = 0;
    if (read(channel.start_fd, &go, 1) != 1) return Status::Internal("read");
    ProcessSummary s;
    s.requests = 1;
    return s;
  });
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->requests, 3u);
}

// A child that finished early is held (its connections open) until every child has reported.
TEST(SimFleet, AnEarlyChildIsReleasedOnlyWhenTheLastHasReported) {
  std::string base =
      (std::filesystem::temp_directory_path() / ("appban-sim-release-" + std::to_string(getpid()))).string();
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  auto merged = RunForked(2, false, [&](uint32_t child, const ChildChannel& channel) -> Result<ProcessSummary> {
    if (child == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      std::ofstream(base + ".slow-reported") << now_ms();
      return ProcessSummary{};
    }
    channel.report_and_wait(ProcessSummary{});
    std::ofstream(base + ".early-released") << now_ms();
    return ProcessSummary{};
  });
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  int64_t slow_reported = 0, early_released = 0;
  ASSERT_TRUE(static_cast<bool>(std::ifstream(base + ".slow-reported") >> slow_reported));
  ASSERT_TRUE(static_cast<bool>(std::ifstream(base + ".early-released") >> early_released));
  std::filesystem::remove(base + ".slow-reported");
  std::filesystem::remove(base + ".early-released");
  EXPECT_GE(early_released, slow_reported) << "the early child was released before the slow child reported";
}

// A child that hangs (before this guard, a child deadlocked after fork kept the parent waiting
// until the test's 15-minute timeout) is killed once its time is up, and named.
TEST(SimFleet, AHungChildIsKilledAndNamedOnceItsTimeIsUp) {
  auto started = std::chrono::steady_clock::now();
  auto merged = RunForked(
      2, false,
      [](uint32_t child, const ChildChannel&) -> Result<ProcessSummary> {
        if (child == 1) pause();  // never reports
        return ProcessSummary{};
      },
      std::chrono::milliseconds(500));
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(merged.status().message().find("simulator process 1"), std::string::npos) << merged.status().ToString();
  EXPECT_NE(merged.status().message().find("reported nothing within 0.5 s"), std::string::npos)
      << merged.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));  // a hang guard
}

TEST(SimFleet, LatencyQuantilesAreWithinTheHistogramResolution) {
  LatencyHistogram histogram;
  for (uint64_t us = 1; us <= 10000; ++us) histogram.Record(us);
  EXPECT_NEAR(static_cast<double>(histogram.Quantile(0.5)), 5000, 5000 * 0.04);
  EXPECT_NEAR(static_cast<double>(histogram.Quantile(0.99)), 9900, 9900 * 0.04);
  EXPECT_EQ(histogram.Quantile(1.0), 10000u);
  auto copy = LatencyHistogram::FromJson(histogram.ToJson());
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->Quantile(0.5), histogram.Quantile(0.5));
}

// A stand-in for `appban server` speaking the device protocol with the protocol part's own strict
// parsers, so the simulator's requests are checked exactly as the real server checks them. All
// state lives on the server thread.
class FakeDeviceServer {
 public:
  FakeDeviceServer() : key_(std::move(policy::SigningKey::Generate()).value()) {
    server_ = std::make_unique<net::testing::ServerThread>(
        net::ServerOptions{},
        [this](net::HttpRequest request, net::Responder respond) { Handle(std::move(request), std::move(respond)); });
  }
  // The server thread stops before the members its handler touches are destroyed: a poll the
  // simulator sent just before it closed its connection may still be dispatched, and it must not
  // be pushed into a `polls_` that the destructor is freeing (the held Responders would be lost).
  ~FakeDeviceServer() { server_.reset(); }
  FakeDeviceServer(const FakeDeviceServer&) = delete;
  FakeDeviceServer& operator=(const FakeDeviceServer&) = delete;

  std::string url() const { return server_->url(); }
  size_t waiting_polls() {
    return server_->RunOnServer([this] { return polls_.size(); });
  }
  void Publish() {
    server_->RunOnServer([this] {
      policy::Rule rule;
      rule.id = "ban-wechat";
      rule.title = "WeChat";
      rule.targets.push_back(*policy::MakeTarget(policy::TargetKind::kDebPackage, "wechat"));
      rule.rationale = rule.authority = "test";
      rule.state = policy::RuleState::kPublished;
      UnixSeconds now = time(nullptr);
      auto bundle = policy::CompileBundle(policy::BundleInputs{{rule}, {}, {}, 1, now, now + 86400});
      envelope_ = *policy::SignBundle(*bundle, key_);
      version_ = 1;
      for (auto& poll : polls_) poll(Json{{"latest_version", 1}, {"bundle", envelope_}}.dump());
      polls_.clear();
      return 0;
    });
  }
  // (device, app) pairs reported removed; devices that acknowledged version 1; strict-parse errors.
  std::set<std::pair<std::string, std::string>> removed() {
    return server_->RunOnServer([this] { return removed_; });
  }
  std::set<std::string> compliant() {
    return server_->RunOnServer([this] { return compliant_; });
  }
  std::vector<std::string> rejected() {
    return server_->RunOnServer([this] { return rejected_; });
  }

 private:
  struct HeldPoll {
    net::Responder respond;
    void operator()(std::string body) {
      net::HttpResponse response;
      response.body = std::move(body);
      respond(std::move(response));
    }
  };

  void Handle(net::HttpRequest request, net::Responder respond) {
    auto reply = [&](int status, std::string body) {
      net::HttpResponse response;
      response.status = status;
      response.body = std::move(body);
      respond(std::move(response));
    };
    auto refuse = [&](std::string why) {
      rejected_.push_back(request.path + ": " + why);
      reply(400, protocol::ErrorBody("bad_request", why));
    };
    if (request.path == "/v1/admin/enrollment-tokens") {
      if (request.Header("authorization") != "Bearer admin-secret")
        return reply(401, protocol::ErrorBody("unauthenticated", "no"));
      Json asked = Json::parse(request.body);
      Json tokens = Json::array();
      for (int i = 0; i < asked.at("count").get<int>(); ++i) {
        tokens.push_back(
            {{"id", "t" + std::to_string(next_token_)}, {"token", "e-" + std::to_string(next_token_++) + ".x"}});
      }
      return reply(201, Json{{"tokens", tokens}}.dump());
    }
    if (request.path == protocol::kEnrollPath) {
      auto enroll = protocol::ParseEnrollRequest(request.body);
      if (!enroll.ok()) return refuse(enroll.status().ToString());
      if (!used_tokens_.insert(enroll->token).second) return reply(401, protocol::ErrorBody("token_invalid", "used"));
      protocol::EnrollResponse answer;
      char id[32];
      snprintf(id, sizeof id, "d-%016llx", static_cast<unsigned long long>(++next_device_));
      answer.device_id = id;
      answer.credential = std::string(id) + ".secret";
      answer.policy_keys_pem = {policy::PublicKeyPem(key_.public_key())};
      answer.checkin_interval = 300;
      answer.longpoll_timeout = 60;
      answer.server_time = time(nullptr);
      return reply(201, protocol::ToJson(answer).dump());
    }
    std::string device(protocol::BearerCredential(request.Header("authorization")).substr(0, 18));
    if (device.empty()) return reply(401, protocol::ErrorBody("unauthenticated", "no credential"));
    if (request.path == protocol::kCheckinPath) {
      auto checkin = protocol::ParseCheckinRequest(request.body);
      if (!checkin.ok()) return refuse(checkin.status().ToString());
      if (checkin->inventory && protocol::InventoryHash(*checkin->inventory) != checkin->inventory_hash) {
        return refuse("inventory does not match its hash");
      }
      if (checkin->inventory) inventory_hash_[device] = checkin->inventory_hash;
      int64_t& acked = events_acked_[device];
      for (const auto& event : checkin->events) {
        if (event.seq <= acked) continue;
        if (event.kind == protocol::EventKind::kRemoved) removed_.insert({device, event.app});
        acked = event.seq;
      }
      if (version_ > 0 && checkin->applied_version == version_) compliant_.insert(device);
      protocol::CheckinResponse answer;
      answer.server_time = time(nullptr);
      answer.latest_version = version_;
      if (version_ > checkin->applied_version) answer.bundle = envelope_;
      answer.send_inventory = inventory_hash_[device] != checkin->inventory_hash;
      answer.events_acked = acked;
      answer.checkin_interval = 300;
      answer.longpoll_timeout = 60;
      return reply(200, protocol::ToJson(answer).dump());
    }
    if (request.path == protocol::kPollPath) {
      int64_t version = std::stoll(request.QueryParam("version").value_or("0"));
      if (version_ > version) return reply(200, Json{{"latest_version", version_}, {"bundle", envelope_}}.dump());
      polls_.push_back(HeldPoll{std::move(respond)});
      return;
    }
    reply(404, protocol::ErrorBody("not_found", request.path));
  }

  policy::SigningKey key_;
  std::unique_ptr<net::testing::ServerThread> server_;
  std::string envelope_;
  int64_t version_ = 0;
  int next_token_ = 1;
  uint64_t next_device_ = 0;
  std::set<std::string> used_tokens_;
  std::map<std::string, std::string> inventory_hash_;
  std::map<std::string, int64_t> events_acked_;
  std::set<std::pair<std::string, std::string>> removed_;
  std::set<std::string> compliant_;
  std::vector<std::string> rejected_;
  std::vector<HeldPoll> polls_;
};

// The fake server in a process of its own, forked while this process has no other thread.
// RunSimulation forks its device processes, and a fork taken while another thread of the parent
// (the server thread, when the server ran in the test process) holds a lock — the sanitizer
// allocator's, a stream's — can leave the child deadlocked: it happened once in the ASan build.
// The server publishes the bundle by itself once `publish_when_waiting` long-polls are held, and
// answers "state" on a pipe with what it saw.
class FakeServerProcess {
 public:
  explicit FakeServerProcess(size_t publish_when_waiting) {
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) ADD_FAILURE() << "pipe";
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      close(to_child[1]);
      close(from_child[0]);
      Serve(to_child[0], from_child[1], publish_when_waiting);
      _exit(0);
    }
    close(to_child[0]);
    close(from_child[1]);
    commands_ = to_child[1];
    answers_ = from_child[0];
    url_ = ReadLine();
  }
  ~FakeServerProcess() {
    close(commands_);  // the server process exits at end of file
    close(answers_);
    waitpid(pid_, nullptr, 0);
  }
  FakeServerProcess(const FakeServerProcess&) = delete;
  FakeServerProcess& operator=(const FakeServerProcess&) = delete;

  const std::string& url() const { return url_; }
  // {"waiting_at_publish": n (0: not published), "removed": [[device, app]...], "compliant": [...],
  //  "rejected": [...]}
  Json State() {
    if (write(commands_, "state\n", 6) != 6) return Json();
    return Json::parse(ReadLine(), nullptr, false);
  }

 private:
  static void WriteLine(int fd, const std::string& text) {
    std::string line = text + "\n";
    for (size_t done = 0; done < line.size();) {
      ssize_t n = write(fd, line.data() + done, line.size() - done);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  std::string ReadLine() {
    std::string line;
    char c = 0;
    while (read(answers_, &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
  }
  static void Serve(int commands, int answers, size_t publish_when_waiting) {
    FakeDeviceServer server;
    WriteLine(answers, server.url());
    size_t waiting_at_publish = 0;
    std::string command;
    for (;;) {
      if (waiting_at_publish == 0) {
        size_t waiting = server.waiting_polls();
        if (waiting >= publish_when_waiting) {
          server.Publish();
          waiting_at_publish = waiting;
        }
      }
      pollfd readable{commands, POLLIN, 0};
      if (poll(&readable, 1, 20) <= 0) continue;
      char c = 0;
      if (read(commands, &c, 1) != 1) return;  // the test is done
      if (c != '\n') {
        command.push_back(c);
        continue;
      }
      if (command == "state") {
        Json removed = Json::array();
        for (const auto& [device, app] : server.removed()) removed.push_back({device, app});
        WriteLine(answers, Json{{"waiting_at_publish", waiting_at_publish},
                                {"removed", removed},
                                {"compliant", server.compliant()},
                                {"rejected", server.rejected()}}
                               .dump());
      }
      command.clear();
    }
  }

  pid_t pid_ = -1;
  int commands_ = -1, answers_ = -1;
  std::string url_;
};

size_t ThreadsOfThisProcess() {
  size_t threads = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++threads;
  return threads;
}

TEST(SimFleet, DevicesEnrolLongPollApplyAPublishedBanAndReportCompliance) {
  FakeServerProcess server(/*publish_when_waiting=*/40);
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("appban-sim-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  SimulationOptions options;
  options.server_url = server.url();
  options.devices = 40;
  options.processes = 2;
  options.admin_token = "admin-secret";
  options.state_file = (dir / "state.json").string();
  options.source_addresses = {"127.0.0.2", "127.0.0.3"};
  options.stop_after_bundles = 1;
  options.duration = std::chrono::seconds(60);  // a hang guard, not a timing goal
  options.inventory.banned = *ParseAppList("deb:wechat,deb:kesl");
  options.inventory.banned_fraction = 0.5;
  options.quiet = true;

  // The simulator forks its two device processes from this thread, with no other running.
  ASSERT_EQ(ThreadsOfThisProcess(), 1u);
  Result<ProcessSummary> summary = RunSimulation(options);
  Json state = server.State();
  ASSERT_TRUE(state.is_object()) << "the fake server process did not answer";
  EXPECT_EQ(state["waiting_at_publish"], 40) << "the bundle was published before every device long-polled";
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_TRUE(state["rejected"].empty()) << state["rejected"].dump();
  EXPECT_EQ(summary->devices, 40u);
  EXPECT_EQ(summary->enrolled_now, 40u);
  EXPECT_TRUE(summary->errors.empty()) << Json(summary->errors).dump();
  ASSERT_EQ(summary->bundles.count(1), 1u);
  EXPECT_EQ(summary->bundles.at(1).received, 40u);
  EXPECT_EQ(summary->bundles.at(1).acked_ms.size(), 40u);
  EXPECT_EQ(summary->bundle_verifications, 2u);  // once per process
  EXPECT_EQ(state["compliant"].size(), 40u);

  // Every device holding wechat (by the inventory generator, independently of the run) reported
  // its removal exactly once; nobody reported removing anything else.
  auto catalog = AppCatalog::Make(options.inventory);
  ASSERT_TRUE(catalog.ok());
  size_t holders = 0;
  for (uint64_t index = 0; index < 40; ++index) {
    for (AppIndex app : catalog->DeviceApps(index)) holders += catalog->app(app).id == "wechat";
  }
  EXPECT_GT(holders, 0u);
  EXPECT_EQ(state["removed"].size(), holders);
  for (const Json& pair : state["removed"]) EXPECT_EQ(pair[1], "wechat") << pair.dump();

  // The state file holds the 40 devices, owner-only; a second run enrols nobody.
  struct stat info {};
  ASSERT_EQ(stat(options.state_file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  options.admin_token.clear();
  options.processes = 1;
  auto again = RunSimulation(options);  // the bundle is already out: each device applies it at its first check-in
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->loaded_from_state, 40u);
  EXPECT_EQ(again->enrolled_now, 0u);
  EXPECT_EQ(again->bundles.at(1).acked_ms.size(), 40u);
  EXPECT_TRUE(again->errors.empty()) << Json(again->errors).dump();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace appban::sim
