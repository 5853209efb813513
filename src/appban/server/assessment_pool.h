// Assessment away from the request thread. Parsing and assessing an uploaded APK (up to
// limits.apk_max_bytes, 256 MiB by default) takes seconds of CPU; on the worker's io_context thread
// it would stall every connection of the worker — check-ins, long-polls, /healthz — for that long.
// A worker therefore owns one AssessmentPool: a few threads, a bounded queue, the knowledge base
// and risk model loaded once (KnowledgeCache), and a database connection of its own.
//
// Threads: Submit and the answers run on the io_context thread; jobs run on pool threads, which
// share the pool's KnowledgeCache (locked) and its database connection (locked, one job at a time:
// SQLite connections are not shared between threads in this code). The pool's connection, not the
// io_context's, stores the result, because storing it waits for the database's write lock and an
// fsync, which the io_context thread must not wait for either (docs/architecture.md, "The server").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "appban/assess/analysis.h"
#include "appban/assess/risk.h"
#include "appban/common/mutex.h"
#include "appban/common/status.h"
#include "appban/common/thread_annotations.h"
#include "appban/net/http.h"
#include "appban/server/answer_relay.h"
#include "appban/server/task_queue.h"
#include "appban/store/fleet.h"

namespace appban::server {

// What an assessment reads besides the APK: immutable once loaded, shared by the jobs using it.
struct AssessmentKnowledge {
  std::string data_dir;  // where it was loaded from
  assess::KnowledgeBase knowledge;
  assess::RiskModel model;
};

// The knowledge base (trackers.json, capabilities.json, vendors.json, packers.json) and the risk
// model (risk-model.toml) of the data directory (common/data_dir.h), loaded on first use and again
// when one of those files changes (size or modification time, looked at most once per
// `recheck_period`). Loading took longer than assessing a small APK, so it is not done per upload.
// Thread-safe.
class KnowledgeCache {
 public:
  // `data_dir_override` as for ResolveDataDir ("" resolves the usual way).
  explicit KnowledgeCache(std::string data_dir_override = "",
                          std::chrono::milliseconds recheck_period = std::chrono::seconds(5));

  // The current knowledge, or why it cannot be loaded (Internal, with the reason). A failed load is
  // retried when the files change or, if the directory could not be found, after recheck_period.
  Result<std::shared_ptr<const AssessmentKnowledge>> Get() EXCLUDES(mutex_);
  // How many times the files were read (tests).
  size_t loads() const EXCLUDES(mutex_);

 private:
  struct FileStamp {
    std::string path;
    bool exists = false;
    uint64_t size = 0;
    int64_t modified_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  static std::vector<FileStamp> Stamps(const std::string& data_dir);
  void Load(const std::string& data_dir) REQUIRES(mutex_);

  const std::string data_dir_override_;
  const std::chrono::milliseconds recheck_period_;
  mutable Mutex mutex_;
  std::optional<std::chrono::steady_clock::time_point> checked_at_ GUARDED_BY(mutex_);
  std::vector<FileStamp> stamps_ GUARDED_BY(mutex_);  // of the files current_/error_ came from
  std::shared_ptr<const AssessmentKnowledge> current_ GUARDED_BY(mutex_);
  Status error_ GUARDED_BY(mutex_);  // set when current_ is null
  size_t loads_ GUARDED_BY(mutex_) = 0;
};

// Lowers the calling thread's priority by `increment` nice levels (at most to 19); nice applies per
// thread on Linux, and lowering needs no privilege. Best effort: a thread that keeps its priority
// still works, only less politely. For the pool's threads and the AdminReader's.
void LowerThisThreadPriority(int increment);

class AssessmentPool {
 public:
  // Two threads per worker: the server runs a worker per core, so a few workers' pools already
  // cover the machine. Four waiting uploads per worker bound the memory held by queued bodies
  // (4 × apk_max_bytes at most) while a small burst of uploads still queues rather than fails.
  static constexpr size_t kDefaultThreads = 2;
  static constexpr size_t kDefaultMaxQueued = 4;
  // What a refused upload is told to wait before retrying (Retry-After, seconds).
  static constexpr int kRetryAfterSeconds = 5;

  struct Options {
    size_t threads = kDefaultThreads;
    size_t max_queued = kDefaultMaxQueued;  // waiting, not counting the jobs being run; at least 1
    // Nice levels the pool threads lower themselves by (from the priority they start with), so
    // the request thread preempts them at once: an assessment can wait, a check-in should not.
    int nice_increment = 0;
    std::string data_dir_override;  // for the KnowledgeCache
    std::chrono::milliseconds knowledge_recheck_period = std::chrono::seconds(5);
  };

  // Runs on a pool thread; the response it returns is sent on the io_context thread.
  using Job = std::function<net::HttpResponse(AssessmentPool& pool)>;

  // `fleet` is used only by the pool's threads from now on (through WithFleet).
  AssessmentPool(boost::asio::io_context& io, std::unique_ptr<store::FleetStore> fleet, Options options);
  // Lets running jobs finish and drops queued ones (their requests are answered 500 if their
  // connection is still open). Call on the io_context thread, after it stopped running.
  ~AssessmentPool();
  AssessmentPool(const AssessmentPool&) = delete;
  AssessmentPool& operator=(const AssessmentPool&) = delete;

  // Called on the io_context thread. Queues `job`; when it has run, its response goes to `respond`
  // on the io_context thread. When max_queued jobs are already waiting, nothing is queued and
  // `respond` is handed back for the caller to refuse the request (503 with Retry-After).
  std::optional<net::Responder> Submit(Job job, net::Responder respond);

  // For jobs: the knowledge and risk model to assess with.
  Result<std::shared_ptr<const AssessmentKnowledge>> Knowledge() { return knowledge_.Get(); }
  // For jobs: runs `use(store::FleetStore&)` on the pool's connection, one job at a time.
  template <typename Use>
  auto WithFleet(Use&& use) EXCLUDES(fleet_mutex_) {
    MutexLock lock(fleet_mutex_);
    return use(*fleet_);
  }

  size_t queued() const { return queue_.size(); }  // waiting, not yet running

 private:
  struct Task {
    uint64_t id = 0;
    Job job;
  };
  void RunThread();

  const Options options_;
  KnowledgeCache knowledge_;

  Mutex fleet_mutex_;
  const std::unique_ptr<store::FleetStore> fleet_ PT_GUARDED_BY(fleet_mutex_);

  TaskQueue<Task> queue_;

  AnswerRelay answers_;  // the requests whose answers are being prepared, by task id

  std::vector<std::thread> threads_;  // last: started once everything above exists
};

}  // namespace appban::server
