#include "appban/server/admin_reader.h"

#include <algorithm>
#include <utility>

#include "appban/server/assessment_pool.h"

namespace appban::server {

AdminReader::AdminReader(boost::asio::io_context& io, std::unique_ptr<store::Store> store,
                         std::unique_ptr<store::FleetStore> fleet, Options options)
    : options_(options), store_(std::move(store)), fleet_(std::move(fleet)), answers_(io) {
  thread_ = std::thread([this] { RunThread(); });
}

AdminReader::~AdminReader() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.NotifyAll();
  thread_.join();
  // answers_' Responders are destroyed with it, here on the io_context thread: each answers 500
  // if its connection is still open.
}

std::optional<net::Responder> AdminReader::Submit(Job job, net::Responder respond) {
  uint64_t id = answers_.NewId();
  {
    MutexLock lock(mutex_);
    if (queue_.size() >= std::max<size_t>(1, options_.max_queued)) return respond;
    queue_.push_back(Task{id, std::move(job)});
  }
  answers_.Hold(id, std::move(respond));
  wake_.NotifyOne();
  return std::nullopt;
}

void AdminReader::RunThread() {
  LowerThisThreadPriority(options_.nice_increment);
  for (;;) {
    Task task;
    {
      MutexLock lock(mutex_);
      while (!stopping_ && queue_.empty()) wake_.Wait(mutex_);
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    net::HttpResponse response = AnswerRelay::Run([&] { return task.job(*store_, *fleet_); });
    task.job = nullptr;
    answers_.Post(task.id, std::move(response));
  }
}

}  // namespace appban::server
