// A mutex, its scoped lock and a condition variable that clang's thread-safety analysis can
// follow (common/thread_annotations.h). They wrap std::mutex and std::condition_variable and add
// nothing at run time; they exist because libstdc++'s types carry no capability attributes, so
// GUARDED_BY(a_std_mutex) would be checked against nothing. Not copyable or movable; every
// member function is safe to call from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "appban/common/thread_annotations.h"

namespace appban {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mutex_.lock(); }
  void Unlock() RELEASE() { mutex_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mutex_;
};

// Holds `mutex` from construction to the end of the scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) ACQUIRE(mutex) : mutex_(mutex) { mutex_.Lock(); }
  ~MutexLock() RELEASE() { mutex_.Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mutex_;
};

// A condition variable used with an appban::Mutex. Wait takes no predicate: a lambda's body is
// analysed on its own, where the lock is not known to be held, so callers loop instead —
// `while (!ready_) cv_.Wait(mutex_);` — which the analysis checks.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mutex`, blocks until notified (or woken spuriously) and reacquires `mutex`.
  void Wait(Mutex& mutex) REQUIRES(mutex) {
    // The caller holds the lock: adopt it for the wait and hand it back still held.
    std::unique_lock<std::mutex> lock(mutex.mutex_, std::adopt_lock);
    condition_.wait(lock);
    lock.release();
  }
  // As Wait, but returns by `deadline` at the latest; false when it returned because time ran out.
  template <typename Clock, typename Duration>
  bool WaitUntil(Mutex& mutex, std::chrono::time_point<Clock, Duration> deadline) REQUIRES(mutex) {
    std::unique_lock<std::mutex> lock(mutex.mutex_, std::adopt_lock);
    const bool notified = condition_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return notified;
  }

  // As Wait, but returns after `timeout` at the latest.
  template <typename Rep, typename Period>
  void WaitFor(Mutex& mutex, std::chrono::duration<Rep, Period> timeout) REQUIRES(mutex) {
    std::unique_lock<std::mutex> lock(mutex.mutex_, std::adopt_lock);
    condition_.wait_for(lock, timeout);
    lock.release();
  }
  void NotifyOne() { condition_.notify_one(); }
  void NotifyAll() { condition_.notify_all(); }

 private:
  std::condition_variable condition_;
};

}  // namespace appban
