// Clang thread-safety analysis attributes (clang.llvm.org/docs/ThreadSafetyAnalysis.html). With
// clang and -Wthread-safety, touching a GUARDED_BY member without its mutex, or calling a
// REQUIRES function without holding it, is a compile error; other compilers see nothing. The
// annotated mutex these attributes are meant for is appban::Mutex (common/mutex.h): libstdc++'s
// std::mutex carries no capability attributes, so the analysis cannot follow it.
#pragma once

#if defined(__clang__)
#define APPBAN_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define APPBAN_THREAD_ANNOTATION(x)
#endif

// On a class: its objects are a capability (a lock) named `x` in diagnostics.
#define CAPABILITY(x) APPBAN_THREAD_ANNOTATION(capability(x))
// On a class: an RAII object that holds a capability for its lifetime.
#define SCOPED_CAPABILITY APPBAN_THREAD_ANNOTATION(scoped_lockable)

// On a member: reads and writes need the given capability held.
#define GUARDED_BY(x) APPBAN_THREAD_ANNOTATION(guarded_by(x))
// On a pointer member: the pointee needs the given capability (the pointer itself does not).
#define PT_GUARDED_BY(x) APPBAN_THREAD_ANNOTATION(pt_guarded_by(x))
// On a capability member: it must be acquired before / after the listed ones (lock order).
#define ACQUIRED_BEFORE(...) APPBAN_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) APPBAN_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))

// On a function: callers must hold the capabilities (exclusively / shared).
#define REQUIRES(...) APPBAN_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) APPBAN_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
// On a function: callers must not hold the capabilities (the function takes them itself).
#define EXCLUDES(...) APPBAN_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

// On a function: it acquires / releases the capabilities (`this` when none are named).
#define ACQUIRE(...) APPBAN_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) APPBAN_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) APPBAN_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) APPBAN_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) APPBAN_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// On a function: after it returns, the analysis assumes the capability is held (a checked claim).
#define ASSERT_CAPABILITY(x) APPBAN_THREAD_ANNOTATION(assert_capability(x))
// On a function: it returns a reference to the given capability.
#define RETURN_CAPABILITY(x) APPBAN_THREAD_ANNOTATION(lock_returned(x))

// On a function: the analysis skips its body. Only for code whose locking it cannot express;
// say why beside each use.
#define NO_THREAD_SAFETY_ANALYSIS APPBAN_THREAD_ANNOTATION(no_thread_safety_analysis)
