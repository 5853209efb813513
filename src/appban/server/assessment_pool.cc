#include "appban/server/assessment_pool.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "appban/common/data_dir.h"

namespace appban::server {
namespace {

// The files LoadKnowledgeBase and the risk model read, below the data directory.
constexpr const char* kKnowledgeFiles[] = {"trackers.json", "capabilities.json", "vendors.json", "packers.json",
                                           "risk-model.toml"};

}  // namespace

void LowerThisThreadPriority(int increment) {
  if (increment <= 0) return;
  const auto thread = static_cast<id_t>(gettid());
  errno = 0;
  int current = getpriority(PRIO_PROCESS, thread);
  if (current == -1 && errno != 0) return;
  (void)setpriority(PRIO_PROCESS, thread, std::min(19, current + increment));
}

// ---------------------------------------------------------------------------------------------
// KnowledgeCache

KnowledgeCache::KnowledgeCache(std::string data_dir_override, std::chrono::milliseconds recheck_period)
    : data_dir_override_(std::move(data_dir_override)), recheck_period_(recheck_period) {}

std::vector<KnowledgeCache::FileStamp> KnowledgeCache::Stamps(const std::string& data_dir) {
  std::vector<FileStamp> stamps;
  for (const char* name : kKnowledgeFiles) {
    FileStamp stamp;
    stamp.path = data_dir + "/" + name;
    struct stat info {};
    if (::stat(stamp.path.c_str(), &info) == 0) {
      stamp.exists = true;
      stamp.size = static_cast<uint64_t>(info.st_size);
      stamp.modified_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
    }
    stamps.push_back(std::move(stamp));
  }
  return stamps;
}

void KnowledgeCache::Load(const std::string& data_dir) {
  ++loads_;
  current_.reset();
  auto knowledge = assess::LoadKnowledgeBase(data_dir);
  if (!knowledge.ok()) {
    error_ = Status::Internal(knowledge.status().ToString());
    return;
  }
  auto model = assess::LoadRiskModel(data_dir + "/risk-model.toml");
  if (!model.ok()) {
    error_ = Status::Internal(model.status().ToString());
    return;
  }
  auto loaded = std::make_shared<AssessmentKnowledge>();
  loaded->data_dir = data_dir;
  loaded->knowledge = std::move(*knowledge);
  loaded->model = std::move(*model);
  current_ = std::move(loaded);
  error_ = Status::Ok();
}

Result<std::shared_ptr<const AssessmentKnowledge>> KnowledgeCache::Get() {
  MutexLock lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  bool due = !checked_at_ || now - *checked_at_ >= recheck_period_;
  if (due) {
    checked_at_ = now;
    auto data_dir = ResolveDataDir(data_dir_override_);
    if (!data_dir.ok()) {
      stamps_.clear();
      current_.reset();
      error_ = Status::Internal(data_dir.status().message());
    } else if (std::vector<FileStamp> stamps = Stamps(*data_dir); stamps != stamps_ || (!current_ && error_.ok())) {
      // A job holding the previous knowledge keeps it alive until it finishes.
      stamps_ = std::move(stamps);
      Load(*data_dir);
    }
  }
  if (current_) return current_;
  return error_;
}

size_t KnowledgeCache::loads() const {
  MutexLock lock(mutex_);
  return loads_;
}

// ---------------------------------------------------------------------------------------------
// AssessmentPool

AssessmentPool::AssessmentPool(boost::asio::io_context& io, std::unique_ptr<store::FleetStore> fleet, Options options)
    : options_(std::move(options)),
      knowledge_(options_.data_dir_override, options_.knowledge_recheck_period),
      fleet_(std::move(fleet)),
      queue_(options_.max_queued),
      answers_(io) {
  size_t threads = std::max<size_t>(1, options_.threads);  // a pool without threads would never answer
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { RunThread(); });
}

AssessmentPool::~AssessmentPool() {
  queue_.Stop();
  for (std::thread& thread : threads_) thread.join();
  // answers_' Responders are destroyed with it, here on the io_context thread: each answers 500
  // if its connection is still open.
}

std::optional<net::Responder> AssessmentPool::Submit(Job job, net::Responder respond) {
  uint64_t id = answers_.NewId();
  if (!queue_.Push(Task{id, std::move(job)})) return respond;
  answers_.Hold(id, std::move(respond));
  return std::nullopt;
}

void AssessmentPool::RunThread() {
  LowerThisThreadPriority(options_.nice_increment);
  while (std::optional<Task> task = queue_.Pop()) {
    net::HttpResponse response = AnswerRelay::Run([&] { return task->job(*this); });
    // Free the job (and the upload it holds, up to apk_max_bytes) here, not on the io_context thread.
    task->job = nullptr;
    answers_.Post(task->id, std::move(response));
  }
}

}  // namespace appban::server
