// A bounded queue of jobs handed from the io_context thread to the threads that run them (the
// assessment pool's, the admin reader's). Thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

#include "appban/common/mutex.h"
#include "appban/common/thread_annotations.h"

namespace appban::server {

template <typename Task>
class TaskQueue {
 public:
  explicit TaskQueue(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}

  // Queues `task` unless `capacity` tasks already wait or the queue was stopped (false: `task`
  // was not queued).
  bool Push(Task task) EXCLUDES(mutex_) {
    {
      MutexLock lock(mutex_);
      if (stopped_ || tasks_.size() >= capacity_) return false;
      tasks_.push_back(std::move(task));
    }
    wake_.NotifyOne();
    return true;
  }

  // The oldest task, waiting for one; nullopt once the queue is stopped.
  std::optional<Task> Pop() EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    while (!stopped_ && tasks_.empty()) wake_.Wait(mutex_);
    if (stopped_) return std::nullopt;
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    return task;
  }

  // Drops the waiting tasks and ends every Pop, now and later.
  void Stop() EXCLUDES(mutex_) {
    {
      MutexLock lock(mutex_);
      stopped_ = true;
      tasks_.clear();
    }
    wake_.NotifyAll();
  }

  size_t size() const EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    return tasks_.size();
  }

 private:
  const size_t capacity_;
  mutable Mutex mutex_;
  CondVar wake_;  // a task was queued, or stopped_
  std::deque<Task> tasks_ GUARDED_BY(mutex_);
  bool stopped_ GUARDED_BY(mutex_) = false;
};

}  // namespace appban::server
