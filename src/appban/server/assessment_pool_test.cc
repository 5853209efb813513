#include "appban/server/assessment_pool.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "appban/store/fleet.h"

namespace appban::server {
namespace {

namespace fs = std::filesystem;

// Stands in for a connection: keeps the one response it is given.
class CapturingSink : public net::detail::ResponseSink {
 public:
  void Complete(uint64_t, net::HttpResponse response) override { response_ = std::move(response); }
  bool ClientConnected() const override { return true; }
  const std::optional<net::HttpResponse>& response() const { return response_; }

 private:
  std::optional<net::HttpResponse> response_;
};

class TempDirectory {
 public:
  TempDirectory() {
    std::string pattern = (fs::temp_directory_path() / "appban-pool-XXXXXX").string();
    EXPECT_NE(mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
  }
  ~TempDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A copy of the shipped knowledge files, which a test may change.
std::string CopyKnowledge(const TempDirectory& dir) {
  std::string data = dir.path() + "/data";
  fs::create_directories(data);
  for (const char* name : {"trackers.json", "capabilities.json", "vendors.json", "packers.json", "risk-model.toml"}) {
    fs::copy_file(std::string(APPBAN_SOURCE_DIR) + "/data/" + name, data + "/" + name);
  }
  return data;
}

TEST(KnowledgeCache, LoadsOnceAndAgainWhenAFileChanges) {
  TempDirectory dir;
  std::string data = CopyKnowledge(dir);
  KnowledgeCache cache(data, std::chrono::milliseconds(0));
  auto first = cache.Get();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE((*first)->knowledge.trackers.trackers.empty());
  auto again = cache.Get();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), first->get()) << "unchanged files are not read again";
  EXPECT_EQ(cache.loads(), 1u);

  // A trailing newline changes the size, not the meaning.
  std::ofstream(data + "/vendors.json", std::ios::app) << "\n";
  auto reloaded = cache.Get();
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_NE(reloaded->get(), first->get());
  EXPECT_EQ(cache.loads(), 2u);

  // A broken file is an error naming it, until it is repaired.
  std::ofstream(data + "/packers.json", std::ios::trunc) << "{";
  auto broken = cache.Get();
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("packers.json"), std::string::npos) << broken.status().ToString();
  fs::copy_file(std::string(APPBAN_SOURCE_DIR) + "/data/packers.json", data + "/packers.json",
                fs::copy_options::overwrite_existing);
  EXPECT_TRUE(cache.Get().ok());
}

TEST(KnowledgeCache, LooksAtTheFilesAtMostOncePerPeriod) {
  TempDirectory dir;
  std::string data = CopyKnowledge(dir);
  KnowledgeCache cache(data, std::chrono::hours(1));
  auto first = cache.Get();
  ASSERT_TRUE(first.ok());
  std::ofstream(data + "/vendors.json", std::ios::app) << "\n";
  auto second = cache.Get();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->get(), first->get());
  EXPECT_EQ(cache.loads(), 1u);
}

class AssessmentPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fleet = store::OpenSqliteFleetStore(dir_.path() + "/appban.db");
    ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
    fleet_ = std::move(*fleet);
  }

  // Runs the io_context until every sink has its answer (or 30 s passed).
  void RunUntilAnswered(const std::vector<std::shared_ptr<CapturingSink>>& sinks) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto answered = [&] {
      for (const auto& sink : sinks) {
        if (!sink->response()) return false;
      }
      return true;
    };
    while (!answered() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
  }

  static net::HttpResponse Text(std::string body) {
    net::HttpResponse response;
    response.body = std::move(body);
    return response;
  }

  TempDirectory dir_;
  boost::asio::io_context io_{1};
  std::unique_ptr<store::FleetStore> fleet_;
};

TEST_F(AssessmentPoolTest, RunsJobsOffTheCallingThreadAndAnswersOnTheIoContext) {
  AssessmentPool::Options options;
  options.threads = 2;
  AssessmentPool pool(io_, std::move(fleet_), options);
  const auto io_thread = std::this_thread::get_id();
  std::atomic<int> off_thread{0};
  std::vector<std::shared_ptr<CapturingSink>> sinks;
  for (int i = 0; i < 3; ++i) {
    auto sink = std::make_shared<CapturingSink>();
    sinks.push_back(sink);
    auto refused = pool.Submit(
        [&, i](AssessmentPool&) {
          if (std::this_thread::get_id() != io_thread) ++off_thread;
          return Text("job " + std::to_string(i));
        },
        net::Responder(sink, 1));
    EXPECT_FALSE(refused.has_value());
  }
  // Nothing is answered until the io_context runs: the answers are sent from there.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (const auto& sink : sinks) EXPECT_FALSE(sink->response().has_value());
  RunUntilAnswered(sinks);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(sinks[i]->response().has_value());
    EXPECT_EQ(sinks[i]->response()->body, "job " + std::to_string(i));
  }
  EXPECT_EQ(off_thread.load(), 3);
}

TEST_F(AssessmentPoolTest, AFullQueueHandsTheResponderBack) {
  AssessmentPool::Options options;
  options.threads = 1;
  options.max_queued = 1;
  // Declared before the pool, which joins its threads when destroyed: they use these.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  AssessmentPool pool(io_, std::move(fleet_), options);
  auto running = std::make_shared<CapturingSink>();
  ASSERT_FALSE(pool.Submit(
                       [&started, released](AssessmentPool&) {
                         started.set_value();
                         released.wait();
                         return Text("first");
                       },
                       net::Responder(running, 1))
                   .has_value());
  started.get_future().wait();  // the only thread is busy; the queue is empty
  auto queued = std::make_shared<CapturingSink>();
  ASSERT_FALSE(pool.Submit([](AssessmentPool&) { return Text("second"); }, net::Responder(queued, 1)).has_value());
  EXPECT_EQ(pool.queued(), 1u);

  auto refused_sink = std::make_shared<CapturingSink>();
  auto refused = pool.Submit([](AssessmentPool&) { return Text("third"); }, net::Responder(refused_sink, 1));
  ASSERT_TRUE(refused.has_value()) << "a third job finds the queue full";
  EXPECT_TRUE(refused->pending()) << "the caller answers it";
  (*refused)(Text("refused"));

  release.set_value();
  RunUntilAnswered({running, queued});
  EXPECT_EQ(running->response()->body, "first");
  EXPECT_EQ(queued->response()->body, "second");
  EXPECT_EQ(refused_sink->response()->body, "refused");
}

TEST_F(AssessmentPoolTest, AJobThatThrowsIsAnswered500) {
  AssessmentPool pool(io_, std::move(fleet_), AssessmentPool::Options{});
  auto sink = std::make_shared<CapturingSink>();
  ASSERT_FALSE(pool.Submit([](AssessmentPool&) -> net::HttpResponse { throw std::runtime_error("boom"); },
                           net::Responder(sink, 1))
                   .has_value());
  RunUntilAnswered({sink});
  ASSERT_TRUE(sink->response().has_value());
  EXPECT_EQ(sink->response()->status, 500);
  EXPECT_NE(sink->response()->body.find("boom"), std::string::npos);
}

}  // namespace
}  // namespace appban::server
