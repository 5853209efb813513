// Lock annotations the compiler can check: members a mutex guards say GUARDED_BY(mutex), functions
// that expect it held say REQUIRES(mutex). clang's -Wthread-safety turns a mistake into a warning;
// other compilers read them as documentation. std::mutex carries no annotations in libstdc++, so
// annotated code locks a server::Mutex through a MutexLock.
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define APPBAN_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define APPBAN_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(name) APPBAN_THREAD_ANNOTATION(capability(name))
#define SCOPED_CAPABILITY APPBAN_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(mutex) APPBAN_THREAD_ANNOTATION(guarded_by(mutex))
#define PT_GUARDED_BY(mutex) APPBAN_THREAD_ANNOTATION(pt_guarded_by(mutex))
#define REQUIRES(...) APPBAN_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) APPBAN_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) APPBAN_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) APPBAN_THREAD_ANNOTATION(release_capability(__VA_ARGS__))

namespace appban::server {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mutex_.lock(); }
  void unlock() RELEASE() { mutex_.unlock(); }

 private:
  friend class MutexLock;
  std::mutex mutex_;
};

// Holds a Mutex for its scope; Wait() releases it while blocked, as std::condition_variable does.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) ACQUIRE(mutex) : lock_(mutex.mutex_) {}
  ~MutexLock() RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  template <typename Predicate>
  void Wait(std::condition_variable& condition, Predicate ready) {
    condition.wait(lock_, ready);
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace appban::server
